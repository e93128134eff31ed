"""After an alternative to leaving: a later "yes" ends a running pause (the person wants messages
again), and once the person unsubscribes, their frequency and pause are no longer told to the CRM."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from sqlmodel import Session, select
from starlette.testclient import TestClient

from orchestrator.campaigns.results import iter_results
from orchestrator.consent.alternatives import chosen_values_of, end_pauses, paused
from orchestrator.consent.ledger import verify
from orchestrator.contacts.profile import contact_profile
from orchestrator.domain.clock import FixedClock
from orchestrator.rendering.links import LinkClaims
from orchestrator.runtime import Runtime
from orchestrator.store.models import ConsentEvent
from preference_centre.app import create_app
from tests.support.factories import launch, person


def _pause_events(rt: Runtime, contact_id: int) -> list[tuple[str, str, str | None]]:
    with Session(rt.engine) as s:
        rows = s.exec(select(ConsentEvent).where(ConsentEvent.contact_id == contact_id,
                                                 ConsentEvent.purpose == "pause").order_by(ConsentEvent.id))
        return [(e.channel, e.action, e.detail) for e in rows]


def test_a_yes_ends_a_running_pause_on_the_channels_it_confirms(rt: Runtime, write_csv: Callable[..., Path]) -> None:
    first = launch(rt, write_csv([person(1)]), steps=[{"day": 0, "channel": "email", "template": "reconsent"}])
    client = TestClient(create_app(rt))
    # a pause of email and SMS from the unsubscribe page of no campaign...
    client.post(f"/u/{rt.links.dumps('unsubscribe', LinkClaims(1, None, 'email'))}", data={"action": "pause-3"})
    client.post(f"/u/{rt.links.dumps('unsubscribe', LinkClaims(1, None, 'sms'))}", data={"action": "pause-3"})
    assert set(chosen_values_of(rt, 1)) == {(1, "email"), (1, "sms")}
    # ...then "yes" by email only on the campaign's page: email resumes, the SMS pause runs on
    page = f"/p/{rt.links.dumps('page', LinkClaims(1, first, 'email'))}"
    assert client.post(page, data={"action": "confirm", "email": "yes"}).status_code == 200
    assert _pause_events(rt, 1) == [("email", "granted", "2027-02-25"), ("sms", "granted", "2027-02-25"),
                                    ("email", "withdrawn", "2027-02-25")]
    assert set(chosen_values_of(rt, 1)) == {(1, "sms")}
    # what the dispatcher's re-check asks before each send: email is no longer paused, SMS still is
    with rt.engine.connect() as conn:
        assert paused(conn, [(1, "email"), (1, "sms")], rt.clock.now().date()) == {(1, "sms")}
    # the end-of-pause job has nothing to end on email (the person ended it), and the chain holds
    assert end_pauses(rt) == 0
    with Session(rt.engine) as s:
        assert verify(s).broken_at is None


def test_a_new_pause_replaces_the_running_one_without_an_end_event(
        rt: Runtime, write_csv: Callable[..., Path], clock: FixedClock) -> None:
    campaign_id = launch(rt, write_csv([person(1)]))
    client = TestClient(create_app(rt))
    page = f"/p/{rt.links.dumps('page', LinkClaims(1, campaign_id, 'email'))}"
    client.post(page, data={"action": "pause-3", "email": "yes"})
    clock.advance(timedelta(days=10))
    client.post(page, data={"action": "pause-3", "email": "yes"})
    assert _pause_events(rt, 1) == [("email", "granted", "2027-02-25"), ("email", "granted", "2027-03-05")]


def test_after_an_unsubscribe_the_crm_no_longer_reads_a_frequency(
        rt: Runtime, write_csv: Callable[..., Path]) -> None:
    campaign_id = launch(rt, write_csv([person(1)]))
    client = TestClient(create_app(rt))
    client.post(f"/p/{rt.links.dumps('page', LinkClaims(1, campaign_id, 'email'))}",
                data={"action": "fewer", "email": "yes"})
    row = next(iter_results(rt, campaign_id))
    assert (row.email_consent, row.frequency) == ("granted", "monthly")
    client.post(f"/u/{rt.links.dumps('unsubscribe', LinkClaims(1, campaign_id, 'email'))}",
                data={"List-Unsubscribe": "One-Click"})
    row = next(iter_results(rt, campaign_id))
    assert (row.email_consent, row.frequency, row.paused_until) == ("withdrawn", None, None)
    assert "frequency" not in contact_profile(rt, "C-1").get("choices", {}) and \
        contact_profile(rt, "C-1").get("frequency") in (None, "")
