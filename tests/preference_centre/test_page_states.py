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


def test_the_deadline_warning_shows_before_an_answer_only(
        make_rt: Callable[..., Runtime], write_csv: Callable[..., Path], clock: FixedClock) -> None:
    rt = make_rt(retention={"after_expiry": "keep"})
    campaign_id = launch(rt, write_csv([person(1), person(2)]))  # deadline: 30 days after 25 November
    client = TestClient(create_app(rt))
    pages = {i: "/p/" + rt.links.dumps("page", LinkClaims(i, campaign_id, "email")) for i in (1, 2)}
    warning = "Sans réponse de votre part"
    before = client.get(pages[1]).text
    assert f"{warning} d’ici le 25 décembre 2026, nous cesserons" in before
    done = client.post(pages[1], data={"action": "confirm", "email": "yes"}).text
    assert "Merci" in done and warning not in done
    assert warning not in client.get(pages[1]).text  # answered: no more threat
    clock.advance(timedelta(days=31))
    sweep(rt)
    over = client.get(pages[2]).text  # never answered, now expired
    assert warning not in over and "Cette campagne est terminée" in over and "<form" not in over.split("<main")[1]


def test_the_invalid_link_page_says_how_to_stop_messages_anyway(rt: Runtime, write_csv: Callable[..., Path]) -> None:
    campaign_id = launch(rt, write_csv([person(1)]))
    client = TestClient(create_app(rt))
    token = rt.links.dumps("page", LinkClaims(1, campaign_id, "email"))
    resp = client.get(f"/p/{token[:-3]}xyz")
    assert resp.status_code == 400
    sender = rt.config.sender
    assert f"envoyez STOP au {sender.stop_number}" in resp.text
    assert f'href="mailto:{sender.unsubscribe_mailto or sender.email_from}"' in resp.text
    assert f'href="{sender.privacy_url}"' in resp.text
    # nothing about the link or whom it was for
    assert token[:20] not in resp.text and "example.org" not in resp.text and "Prénom1" not in resp.text


def test_a_favicon_is_served_from_the_package(rt: Runtime) -> None:
    client = TestClient(create_app(rt))
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/x-icon"
    assert icon.content[:4] == b"\x00\x00\x01\x00"  # an ICO file
    assert icon.headers["cache-control"] == "public, max-age=86400"
    assert '<link rel="icon" href="/favicon.ico"' in client.get("/nowhere").text
