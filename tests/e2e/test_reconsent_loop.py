"""The whole loop: launch → email over real SMTP → GET page (no change) → POST confirm → no further
step; a non-responder → sweep → suppressed → never enrolled again and refused on re-import."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Callable

from sqlmodel import Session, select
from starlette.testclient import TestClient

from orchestrator.consent import ledger
from orchestrator.campaigns.service import campaign_status, create_campaign, launch_campaign
from orchestrator.contacts.service import import_contacts
from orchestrator.delivery.worker import dispatch_once
from orchestrator.domain.clock import FixedClock
from orchestrator.runtime import Runtime
from orchestrator.store.models import ConsentEvent, Contact, Enrolment, SuppressionEntry
from orchestrator.campaigns.sweep import sweep
from preference_centre.app import create_app
from tests.support.factories import launch, person, plan, run
from tests.support.smtp import SmtpServer


def test_confirmer_and_non_responder(make_rt: Callable[..., Runtime], smtp_server: SmtpServer,
                                     write_csv: Callable[..., Path], clock: FixedClock) -> None:
    rt = make_rt(email={"transport": "smtp", "host": "127.0.0.1", "port": smtp_server.port})
    contacts_csv = write_csv([person(1), person(2)])
    campaign_id = launch(rt, contacts_csv)
    assert run(dispatch_once(rt)).sent == 2

    mail = next(r.message for r in smtp_server.received if r.rcpt_tos == ["person1@example.org"])
    link = re.search(r"https://prefs\.example\.com(/p/\S+)", mail.get_body(("plain",)).get_content()).group(1)  # type: ignore[union-attr]
    client = TestClient(create_app(rt))
    assert client.get(link).status_code == 200
    assert campaign_status(rt, campaign_id)["pending"] == 2  # GET changed nothing
    assert client.post(link, data={"email": "yes", "sms": "yes", "action": "confirm"}).status_code == 200
    assert campaign_status(rt, campaign_id)["confirmed"] == 1

    clock.advance(timedelta(days=7))
    run(dispatch_once(rt))
    clock.advance(timedelta(days=3))
    run(dispatch_once(rt))
    assert [r.rcpt_tos for r in smtp_server.received].count(["person1@example.org"]) == 1  # no further step
    assert [r.rcpt_tos for r in smtp_server.received].count(["person2@example.org"]) == 2  # reminder too

    clock.advance(timedelta(days=21))
    report = sweep(rt)
    assert (report.expired, report.suppressed) == (1, 2)
    status = campaign_status(rt, campaign_id)
    assert (status["state"], status["confirmed"], status["expired"], status["pending"]) == ("completed", 1, 1, 0)
    with Session(rt.engine) as s:
        keys = {(e.key, e.channel, e.reason) for e in s.exec(select(SuppressionEntry))}
        expired_events = list(s.exec(select(ConsentEvent).where(ConsentEvent.action == "expired")))
        gone = s.get(Contact, 2)
        assert ledger.verify(s).broken_at is None
    assert keys == {(rt.key_for("person2@example.org"), "email", "no_response"),
                    (rt.key_for("+33612340002"), "sms", "no_response")}
    assert len(expired_events) == 2
    assert gone is not None and gone.email is None and gone.erased_at is not None  # anonymised

    report2 = import_contacts(rt, contacts_csv)  # re-import of the same file
    assert [r.line for r in report2.rejects] == [3]
    second = create_campaign(rt, plan(name="Spring"))
    launch_campaign(rt, second)
    with Session(rt.engine) as s:
        enrolled = [e.contact_id for e in s.exec(select(Enrolment).where(Enrolment.campaign_id == second))]
    assert 2 not in enrolled
    sent_before = len(smtp_server.received)
    clock.advance(timedelta(days=1))
    run(dispatch_once(rt))
    assert all(r.rcpt_tos != ["person2@example.org"] for r in smtp_server.received[sent_before:])
