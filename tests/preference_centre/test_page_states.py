"""What the preference page tells the person before an answer, after one, and after the campaign is
over (issue 14 §3, §7)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from sqlmodel import Session, select
from starlette.testclient import TestClient

from orchestrator.campaigns.sweep import sweep
from orchestrator.domain.clock import FixedClock
from orchestrator.rendering.links import LinkClaims
from orchestrator.runtime import Runtime
from orchestrator.store.models import ConsentEvent, Contact, Enrolment
from preference_centre.app import create_app
from tests.support.factories import launch, person


def test_an_answer_after_the_sweep_says_the_campaign_is_over_and_records_nothing(
        make_rt: Callable[..., Runtime], write_csv: Callable[..., Path], clock: FixedClock) -> None:
    rt = make_rt(retention={"after_expiry": "keep"})
    campaign_id = launch(rt, write_csv([person(1)]))
    page = rt.links.dumps("page", LinkClaims(1, campaign_id, "email"))
    client = TestClient(create_app(rt))
    clock.advance(timedelta(days=31))
    sweep(rt)
    with Session(rt.engine) as s:
        before = [(e.action, e.channel) for e in s.exec(select(ConsentEvent).order_by(ConsentEvent.id))]
    resp = client.post(f"/p/{page}", data={"action": "confirm", "email": "yes"})
    assert resp.status_code == 409
    assert "Cette campagne est terminée" in resp.text and "Merci" not in resp.text
    with Session(rt.engine) as s:
        after = [(e.action, e.channel) for e in s.exec(select(ConsentEvent).order_by(ConsentEvent.id))]
        enrolment = s.exec(select(Enrolment)).one()
        contact = s.get(Contact, 1)
    assert after == before == [("expired", "email"), ("expired", "sms")]
    assert enrolment.state == "expired" and contact is not None and contact.consented_at is None
