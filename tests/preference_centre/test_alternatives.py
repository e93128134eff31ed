"""Alternatives to leaving (issue 18 §1): "fewer messages" and "pause for N months" on the preference
page and the unsubscribe landing page; the events they record, the pause honoured by the dispatcher
and the launch, the pause's end written once, and what the results show."""

from __future__ import annotations

import csv
import io
import json
import threading
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select
from starlette.testclient import TestClient

from orchestrator.campaigns.results import RESULT_COLUMNS, iter_results
from orchestrator.campaigns.service import audience_query
from orchestrator.config import load_config
from orchestrator.consent.alternatives import end_pauses, pause_end
from orchestrator.consent.ledger import verify
from orchestrator.contacts.export import export_table
from orchestrator.contacts.profile import contact_events, contact_profile
from orchestrator.domain.clock import FixedClock
from orchestrator.domain.model import Channel
from orchestrator.errors import ConfigError
from orchestrator.proof.evidence import campaign_evidence
from orchestrator.proof.evidence import write_csv as write_evidence_csv
from orchestrator.rendering.links import LinkClaims
from orchestrator.resources import DEFAULT_CONFIG
from orchestrator.runtime import Runtime
from orchestrator.store.models import ConsentEvent, Enrolment, SuppressionEntry, WebhookDelivery
from orchestrator.webhook_settings import WebhookEndpoint
from preference_centre.app import create_app
from preference_centre.i18n import catalog
from preference_centre.public.alternatives import STRINGS
from tests.orchestrator.test_dispatch_recheck import claim_then
from tests.support.factories import launch, person, plan

NBSP = "\u00a0"


def _events(rt: Runtime, contact_id: int) -> list[tuple[str, str, str, str | None]]:
    with Session(rt.engine) as s:
        rows = s.exec(select(ConsentEvent).where(ConsentEvent.contact_id == contact_id).order_by(ConsentEvent.id))
        return [(e.channel, e.purpose, e.action, e.detail) for e in rows]


def _state(rt: Runtime, contact_id: int, campaign_id: int) -> str:
    with Session(rt.engine) as s:
        return s.exec(select(Enrolment.state).where(Enrolment.contact_id == contact_id,
                                                    Enrolment.campaign_id == campaign_id)).one()


def _suppressed(rt: Runtime) -> set[str]:
    with Session(rt.engine) as s:
        return {e.key for e in s.exec(select(SuppressionEntry))}


def test_page_offers_both_alternatives_before_the_refusal_in_natural_french(
        rt: Runtime, write_csv: Callable[..., Path]) -> None:
    campaign_id = launch(rt, write_csv([person(1)]))
    page = TestClient(create_app(rt)).get(f"/p/{rt.links.dumps('page', LinkClaims(1, campaign_id, 'email'))}").text
    fewer = f"Recevoir moins de messages{NBSP}: une fois par mois"
    assert fewer in page and "Faire une pause de 3 mois" in page and "Plutôt que de partir" in page
    assert page.index('value="fewer"') < page.index('value="pause-3"') < page.index('value="decline"')
    english = TestClient(create_app(rt)).get(
        f"/p/{rt.links.dumps('page', LinkClaims(1, campaign_id, 'email'))}?lang=en").text
    assert "Receive fewer messages: once a month" in english and "Take a break for 3 months" in english


def test_fewer_messages_on_the_page_confirms_the_channels_and_records_the_frequency(
        rt: Runtime, write_csv: Callable[..., Path]) -> None:
    campaign_id = launch(rt, write_csv([person(1)]))
    client = TestClient(create_app(rt))
    # first an unsubscribe from email: the address is suppressed
    client.post(f"/u/{rt.links.dumps('unsubscribe', LinkClaims(1, None, 'email'))}",
                data={"List-Unsubscribe": "One-Click"})
    assert rt.key_for("person1@example.org") in _suppressed(rt)
    before = len(_events(rt, 1))
    done = client.post(f"/p/{rt.links.dumps('page', LinkClaims(1, campaign_id, 'email'))}", data={"action": "fewer"})
    assert done.status_code == 200
    assert f"C’est noté{NBSP}: nous vous écrirons au plus une fois par mois." in done.text
    # nothing ticked: every channel the person has is confirmed, with the frequency, and stays
    assert _events(rt, 1)[before:] == [
        ("email", "marketing", "confirmed", None), ("email", "frequency", "granted", "monthly"),
        ("sms", "marketing", "confirmed", None), ("sms", "frequency", "granted", "monthly")]
    assert _state(rt, 1, campaign_id) == "confirmed"
    assert _suppressed(rt) == set()  # the unsubscribe is lifted, like a yes
    with Session(rt.engine) as s:
        assert verify(s).broken_at is None  # the detail is in the chain, the chain holds
        event = s.exec(select(ConsentEvent).where(ConsentEvent.purpose == "frequency")).first()
        assert event is not None and event.wording_hash  # with the wording shown, alternatives included


def test_pause_on_the_page_for_the_ticked_channel_records_its_end(
        rt: Runtime, write_csv: Callable[..., Path]) -> None:
    campaign_id = launch(rt, write_csv([person(1)]))
    client = TestClient(create_app(rt))
    done = client.post(f"/p/{rt.links.dumps('page', LinkClaims(1, campaign_id, 'email'))}",
                       data={"action": "pause-3", "sms": "yes"})
    end = pause_end(rt.clock.now().date(), 3)
    assert end == date(2027, 2, 25)
    assert f"C’est noté{NBSP}: nous ne vous écrirons plus jusqu’au 25 février 2027." in done.text
    assert _events(rt, 1) == [("sms", "marketing", "confirmed", None), ("sms", "pause", "granted", "2027-02-25")]
    assert _state(rt, 1, campaign_id) == "confirmed"
    # a pause length the config does not offer is not an answer: nothing recorded
    refused = client.post(f"/p/{rt.links.dumps('page', LinkClaims(1, campaign_id, 'email'))}",
                          data={"action": "pause-12"})
    assert refused.status_code == 400 and len(_events(rt, 1)) == 2


def test_landing_offers_the_alternatives_and_one_click_still_unsubscribes(
        rt: Runtime, write_csv: Callable[..., Path]) -> None:
    campaign_id = launch(rt, write_csv([person(1), person(2), person(3)]))
    client = TestClient(create_app(rt))
    link = f"/u/{rt.links.dumps('unsubscribe', LinkClaims(1, campaign_id, 'email'))}"
    landing = client.get(link)
    assert landing.status_code == 200 and _events(rt, 1) == []  # GET never changes state
    assert 'value="fewer"' in landing.text and 'value="pause-3"' in landing.text
    assert landing.text.count("<form") == 2  # the unsubscribe button keeps its own form, first
    chose = client.post(link, data={"action": "pause-3"})
    assert chose.status_code == 200 and "25 février 2027" in chose.text
    # only the link's channel: the SMS consent is left as it was
    assert _events(rt, 1) == [("email", "marketing", "confirmed", None), ("email", "pause", "granted", "2027-02-25")]
    assert _state(rt, 1, campaign_id) == "confirmed"

    # RFC 8058 one-click: unsubscribed at once, exactly as before
    one_click = client.post(f"/u/{rt.links.dumps('unsubscribe', LinkClaims(2, campaign_id, 'email'))}",
                            data={"List-Unsubscribe": "One-Click"})
    assert (one_click.status_code, one_click.text) == (200, "unsubscribed")
    assert _events(rt, 2) == [("email", "marketing", "withdrawn", None)]
    assert _state(rt, 2, campaign_id) == "declined"
    # the landing's own button too
    button = client.post(f"/u/{rt.links.dumps('unsubscribe', LinkClaims(3, campaign_id, 'email'))}",
                         data={"action": "unsubscribe"})
    assert button.status_code == 200 and _events(rt, 3) == [("email", "marketing", "withdrawn", None)]
    assert rt.key_for("person3@example.org") in _suppressed(rt)


def test_nothing_offered_when_the_config_offers_nothing(make_rt: Callable[..., Runtime],
                                                        write_csv: Callable[..., Path]) -> None:
    rt = make_rt(choices={"fewer": "", "pause_months": []})
    campaign_id = launch(rt, write_csv([person(1)]))
    client = TestClient(create_app(rt))
    page = client.get(f"/p/{rt.links.dumps('page', LinkClaims(1, campaign_id, 'email'))}").text
    landing = client.get(f"/u/{rt.links.dumps('unsubscribe', LinkClaims(1, campaign_id, 'email'))}").text
    assert "Plutôt que de partir" not in page and "Plutôt que de partir" not in landing
    assert client.post(f"/p/{rt.links.dumps('page', LinkClaims(1, campaign_id, 'email'))}",
                       data={"action": "fewer"}).status_code == 400


def test_a_pause_skips_the_due_message_and_keeps_the_person_out_of_launches(
        rt: Runtime, write_csv: Callable[..., Path]) -> None:
    first = launch(rt, write_csv([person(1), person(2)]), steps=[{"day": 0, "channel": "email",
                                                                   "template": "reconsent"}])
    # person 1 pauses email from a link of no campaign (their request in `first` stays pending)
    client = TestClient(create_app(rt))
    client.post(f"/u/{rt.links.dumps('unsubscribe', LinkClaims(1, None, 'email'))}", data={"action": "pause-3"})
    assert _state(rt, 1, first) == "pending"
    sent, report = claim_then(rt, lambda session: None)
    assert report.skipped["paused"] == 1
    assert [m.recipient for m in sent[Channel.EMAIL].sent] == ["person2@example.org"]
    # a new campaign leaves the paused person out (their email is paused)
    with Session(rt.engine) as s:
        ids = set(s.exec(audience_query(rt, plan(steps=[{"day": 0, "channel": "email", "template": "reconsent"}]),
                                        skip_recent=False)).all())
    assert 1 not in ids


def test_the_end_of_a_pause_is_written_once_even_with_two_runners(
        rt: Runtime, clock: FixedClock, write_csv: Callable[..., Path]) -> None:
    campaign_id = launch(rt, write_csv([person(1), person(2)]))
    client = TestClient(create_app(rt))
    client.post(f"/p/{rt.links.dumps('page', LinkClaims(1, campaign_id, 'email'))}", data={"action": "pause-3"})
    assert end_pauses(rt) == 0  # not over yet
    results = {r.external_id: r for r in iter_results(rt, campaign_id)}
    assert (results["C-1"].paused_until, results["C-2"].paused_until) == ("2027-02-25", None)
    clock.advance(timedelta(days=92))  # 2027-02-25: messages may resume
    counts: list[int] = []
    runners = [threading.Thread(target=lambda: counts.append(end_pauses(rt))) for _ in range(2)]
    for t in runners:
        t.start()
    for t in runners:
        t.join()
    assert sorted(counts) == [0, 2]  # email and SMS, once
    assert end_pauses(rt) == 0
    ended = [e for e in _events(rt, 1) if e[1] == "pause"]
    assert ended[-2:] == [("email", "pause", "expired", "2027-02-25"), ("sms", "pause", "expired", "2027-02-25")]
    assert iter_results(rt, campaign_id).__next__().paused_until is None
    with Session(rt.engine) as s:
        assert verify(s).broken_at is None


def test_results_add_the_choice_columns_after_the_spec_columns(
        rt: Runtime, write_csv: Callable[..., Path]) -> None:
    assert RESULT_COLUMNS == ("external_id", "kind", "state", "email_consent", "sms_consent", "partners_consent",
                              "answered_at", "source", "wording_version", "event_hash", "topics", "partners",
                              "frequency", "paused_until")
    campaign_id = launch(rt, write_csv([person(1)]))
    TestClient(create_app(rt)).post(f"/p/{rt.links.dumps('page', LinkClaims(1, campaign_id, 'email'))}",
                                    data={"action": "fewer"})
    row = next(iter_results(rt, campaign_id))
    assert (row.state, row.email_consent, row.frequency, row.paused_until) == ("confirmed", "granted", "monthly", None)
    assert row.as_dict()["frequency"] == "monthly"


@pytest.mark.parametrize(("key", "value", "says"), [
    ("pause_months", "[0]", "each 1 to 24"), ("pause_months", "[25]", "each 1 to 24"),
    ("pause_months", "three", "each 1 to 24"), ("pause_months", "[3, 3]", "each 1 to 24"),
    ("fewer", "daily", "one of"),
])
def test_config_errors_name_the_setting(key: str, value: str, says: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(DEFAULT_CONFIG, env={f"RECONSENT_CHOICES__{key.upper()}": value,
                                         "RECONSENT_SECURITY__SIGNING_KEYS": "k", "RECONSENT_SECURITY__SUPPRESSION_KEY": "s"})
    assert f"RECONSENT_CHOICES__{key.upper()}" in str(exc.value) and says in str(exc.value)


def test_shipped_defaults_and_env_lists() -> None:
    cfg = load_config(DEFAULT_CONFIG, env={"RECONSENT_CHOICES__PAUSE_MONTHS": "1,6"})
    assert (cfg.choices.fewer, cfg.choices.pause_months) == ("monthly", [1, 6])
    assert load_config(DEFAULT_CONFIG, env={}).choices.pause_months == [3]


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_every_choice_string_is_translated(lang: str) -> None:
    missing = [s for s in STRINGS if not catalog(lang).get(s)]
    assert missing == []


def test_webhooks_tell_the_choice_and_the_end_of_the_pause_with_its_value(
        make_rt: Callable[..., Runtime], clock: FixedClock, write_csv: Callable[..., Path]) -> None:
    rt = make_rt(webhooks={"endpoints": [WebhookEndpoint("http://127.0.0.1:9/hook", "whsec_" + "A" * 40)]})
    campaign_id = launch(rt, write_csv([person(1, phone="")]))
    TestClient(create_app(rt)).post(f"/p/{rt.links.dumps('page', LinkClaims(1, campaign_id, 'email'))}",
                                    data={"action": "pause-3"})
    clock.advance(timedelta(days=92))
    assert end_pauses(rt) == 1
    with Session(rt.engine) as s:
        bodies = [json.loads(d.body) for d in s.exec(select(WebhookDelivery).order_by(WebhookDelivery.id))]
    told = [(b["type"], b["data"]["purpose"], b["data"].get("detail")) for b in bodies]
    assert told == [("consent.confirmed", "marketing", None), ("consent.granted", "pause", "2027-02-25"),
                    ("consent.expired", "pause", "2027-02-25")]


def test_the_sending_tools_see_it_in_the_api_the_contacts_export_and_the_evidence(
        rt: Runtime, write_csv: Callable[..., Path]) -> None:
    campaign_id = launch(rt, write_csv([person(1), person(2)]))
    client = TestClient(create_app(rt))
    client.post(f"/p/{rt.links.dumps('page', LinkClaims(1, campaign_id, 'email'))}", data={"action": "fewer"})
    client.post(f"/u/{rt.links.dumps('unsubscribe', LinkClaims(2, campaign_id, 'email'))}", data={"action": "pause-3"})
    profile = contact_profile(rt, "C-2")
    assert (profile["frequency"], profile["paused_until"]) == (None, "2027-02-25")
    assert contact_profile(rt, "C-1")["frequency"] == "monthly"
    events, _ = contact_events(rt, "C-2")
    assert [(e["purpose"], e["detail"]) for e in events] == [("marketing", None), ("pause", "2027-02-25")]
    table = export_table(rt)
    rows = {r[0]: dict(zip(table.header, r, strict=True)) for r in table.rows}
    assert (rows["C-1"]["frequency"], rows["C-1"]["paused_until"]) == ("monthly", "")
    assert (rows["C-2"]["frequency"], rows["C-2"]["paused_until"]) == ("", "2027-02-25")
    evidence = campaign_evidence(rt, campaign_id)
    out = io.StringIO()
    write_evidence_csv(evidence, out)
    recorded = [r for r in csv.DictReader(io.StringIO(out.getvalue())) if r["record"] == "consent_event"]
    assert sorted((r["purpose"], r["detail"]) for r in recorded if r["detail"]) == [
        ("frequency", "monthly"), ("frequency", "monthly"), ("pause", "2027-02-25")]


def test_a_test_send_preview_shows_the_alternatives_and_records_nothing(rt: Runtime) -> None:
    token = rt.links.dumps("preview", LinkClaims(0, 0, "email"))
    client = TestClient(create_app(rt))
    assert 'value="pause-3"' in client.get(f"/p/{token}").text
    assert 'value="fewer"' in client.get(f"/u/{token}").text
    shown = client.post(f"/u/{token}", data={"action": "pause-3"})
    assert shown.status_code == 200 and "25 février 2027" in shown.text
    assert "une fois par mois" in client.post(f"/p/{token}", data={"action": "fewer"}).text
    with Session(rt.engine) as s:
        assert s.exec(select(ConsentEvent)).first() is None


def test_topics_ticked_beside_an_alternative_count_as_with_yes(rt: Runtime, write_csv: Callable[..., Path]) -> None:
    """The page shows the topics above every button: "fewer messages" with a topic ticked grants it, as
    "yes" would (issue 18 §1 with §1-§2's topics); an old form's ``partners=yes`` records no unnamed
    partner sharing."""
    from orchestrator.choices_settings import Topic

    rt.config.topics = [Topic("news", (("fr", "Nouveautés"), ("en", "News")))]
    campaign_id = launch(rt, write_csv([person(1)]))
    page = f"/p/{rt.links.dumps('page', LinkClaims(1, campaign_id, 'email'))}"
    done = TestClient(create_app(rt)).post(page, data={"action": "fewer", "email": "yes", "topic": "news",
                                                       "partners": "yes"})
    assert done.status_code == 200
    purposes = {(e[1], e[2]) for e in _events(rt, 1)}
    assert ("topic:news", "granted") in purposes and ("frequency", "granted") in purposes
    assert not any(p == "partners" for p, _ in purposes)
