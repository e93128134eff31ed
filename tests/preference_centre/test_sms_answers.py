"""Answers by SMS (issue 14 §1): OUI/NON/START replies to a re-consent SMS close its request with a
ledger event and its proof; anything else gets one short help reply a day; a shared number answers
the requests it was asked; the sweep keeps a channel granted after the request."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select
from starlette.testclient import TestClient

from orchestrator.campaigns.sweep import sweep
from orchestrator.consent import ledger
from orchestrator.delivery.worker import dispatch_once
from orchestrator.domain.clock import FixedClock
from orchestrator.runtime import Runtime
from orchestrator.store.models import ConsentEvent, Contact, Enrolment, SuppressionEntry, Wording
from preference_centre.app import create_app
from tests.preference_centre.test_twilio_hooks import PHONE, TOKEN, post, sent_sms
from tests.support.factories import launch, person, run
from tests.support.twilio_standin import TwilioStandIn


@pytest.fixture
def sms_rt(make_rt: Callable[..., Runtime], twilio: TwilioStandIn) -> Runtime:
    return make_rt(sms={"transport": "twilio", "account_sid": twilio.account_sid, "auth_token": TOKEN,
                        "api_base_url": twilio.base_url})


def events(rt: Runtime) -> list[ConsentEvent]:
    with Session(rt.engine) as s:
        return list(s.exec(select(ConsentEvent).order_by(ConsentEvent.id)))


def states(rt: Runtime) -> dict[int, str]:
    with Session(rt.engine) as s:
        return {e.contact_id: e.state for e in s.exec(select(Enrolment))}


def suppressed(rt: Runtime) -> dict[tuple[str, str], str]:
    with Session(rt.engine) as s:
        return {(e.key, e.channel): e.reason for e in s.exec(select(SuppressionEntry))}


def proof_of(rt: Runtime, event: ConsentEvent) -> dict[str, object]:
    with Session(rt.engine) as s:
        wording = s.get(Wording, event.wording_hash)
    assert wording is not None and wording.name == "sms_reply"
    document: dict[str, object] = json.loads(wording.text)
    return document


_SIDS = itertools.count(1)


def inbound(client: TestClient, body: str, sid: str = "", sender: str = PHONE) -> str:
    """Post one signed inbound SMS (each with a MessageSid of its own unless ``sid`` is given)."""
    params = {"From": sender, "To": "+33700000000", "Body": body, "MessageSid": sid or f"SMin{next(_SIDS)}"}
    resp = post(client, "/twilio/inbound", params)
    assert resp.status_code == 200  # type: ignore[attr-defined]
    return str(resp.text)  # type: ignore[attr-defined]


@pytest.mark.parametrize("body", ["Oui", "OUI !", " o ", "yes", "Y", "Yès"])
def test_a_yes_confirms_the_sms_request_with_its_proof_and_the_sweep_leaves_it(
    sms_rt: Runtime, twilio: TwilioStandIn, write_csv: Callable[..., Path], clock: FixedClock, body: str
) -> None:
    out_sid = sent_sms(sms_rt, write_csv, twilio)
    client = TestClient(create_app(sms_rt))
    assert "<Message>" not in inbound(client, body, sid="SMreply42")
    (event,) = events(sms_rt)
    assert (event.channel, event.action, event.source, event.step) == ("sms", "confirmed", "sms_keyword", 0)
    assert event.wording_name in {"sms_keyword:OUI", "sms_keyword:O", "sms_keyword:YES", "sms_keyword:Y"}
    document = proof_of(sms_rt, event)
    assert document["reply"] == body.strip() and document["message_sid"] == "SMreply42"
    assert document["received_at"] == clock.now().isoformat()
    answered = document["answered"]
    assert isinstance(answered, dict)
    assert (answered["provider_id"], answered["template"], answered["locale"]) == (out_sid, "reconsent", "fr")
    assert answered["template_version"]  # the wording version of the SMS they answered, and its text
    assert str(answered["wording"]).startswith("{{ sender.name }} : voulez-vous encore recevoir nos offres ?")
    assert states(sms_rt) == {1: "confirmed"}

    clock.advance(timedelta(days=31))
    sweep(sms_rt)
    assert [e.action for e in events(sms_rt)] == ["confirmed"]  # nothing expired
    assert suppressed(sms_rt) == {}
    with Session(sms_rt.engine) as s:
        contact = s.get(Contact, 1)
        assert contact is not None and contact.phone == PHONE and contact.erased_at is None
        assert ledger.verify(s).broken_at is None


@pytest.mark.parametrize("body", ["Non", "NO", "non."])
def test_a_no_declines_and_suppresses_the_number(
    sms_rt: Runtime, twilio: TwilioStandIn, write_csv: Callable[..., Path], body: str
) -> None:
    sent_sms(sms_rt, write_csv, twilio)
    assert "<Message>" not in inbound(TestClient(create_app(sms_rt)), body)
    (event,) = events(sms_rt)
    assert (event.channel, event.action, event.campaign_id) == ("sms", "declined", 1)
    assert proof_of(sms_rt, event)["reply"] == body
    assert states(sms_rt) == {1: "declined"}
    assert suppressed(sms_rt) == {(sms_rt.key_for(PHONE), "sms"): "unsubscribed"}


def test_start_confirms_a_pending_request_and_the_sweep_does_not_expire_it(
    sms_rt: Runtime, twilio: TwilioStandIn, write_csv: Callable[..., Path], clock: FixedClock
) -> None:
    sent_sms(sms_rt, write_csv, twilio)
    inbound(TestClient(create_app(sms_rt)), "START")
    assert [(e.action, e.wording_name) for e in events(sms_rt)] == [("confirmed", "sms_keyword:START")]
    assert states(sms_rt) == {1: "confirmed"}
    clock.advance(timedelta(days=31))
    sweep(sms_rt)
    assert [e.action for e in events(sms_rt)] == ["confirmed"]
    assert suppressed(sms_rt) == {}


def test_a_reply_not_understood_gets_one_help_reply_a_day_and_changes_nothing(
    sms_rt: Runtime, twilio: TwilioStandIn, write_csv: Callable[..., Path], clock: FixedClock
) -> None:
    sent_sms(sms_rt, write_csv, twilio)
    client = TestClient(create_app(sms_rt))
    first = inbound(client, "C'est qui ?")
    assert "<Message>Boutique Lumière : répondez OUI" in first and "STOP au 36111" in first
    assert "<Message>" not in inbound(client, "Allo ?")  # the same day: no second answer
    assert "<Message>" in inbound(client, "Info")  # HELP is always answered
    assert "<Message>" not in inbound(client, "")  # nothing written, nothing answered
    clock.advance(timedelta(days=1))
    assert "<Message>" in inbound(client, "Allo ?")
    assert events(sms_rt) == [] and states(sms_rt) == {1: "pending"} and suppressed(sms_rt) == {}


def test_a_yes_with_no_pending_request_is_not_an_answer(
    sms_rt: Runtime, twilio: TwilioStandIn, write_csv: Callable[..., Path]
) -> None:
    sent_sms(sms_rt, write_csv, twilio)
    client = TestClient(create_app(sms_rt))
    inbound(client, "NON")
    assert "répondez OUI" in inbound(client, "OUI")  # the request is closed: nothing to confirm
    assert [e.action for e in events(sms_rt)] == ["declined"] and states(sms_rt) == {1: "declined"}
    assert "répondez OUI" in inbound(client, "Oui", sender="+33655555555")  # a number we never asked
    assert len(events(sms_rt)) == 1


def test_a_shared_number_answers_the_requests_it_was_asked(
    sms_rt: Runtime, twilio: TwilioStandIn, write_csv: Callable[..., Path]
) -> None:
    # contacts 1, 2 and 3 share a phone and were each asked by SMS; contact 4 shares it too but was
    # active recently, so not asked: a "oui" answers the three requests the phone received, no more
    rows = [person(1), person(2, phone=PHONE), person(3, phone=PHONE), person(4, phone=PHONE, last_activity_at="2026-11-01")]
    launch(sms_rt, write_csv(rows), steps=[{"day": 0, "channel": "sms", "template": "reconsent"}])
    with Session(sms_rt.engine) as s:
        assert sorted(e.contact_id for e in s.exec(select(Enrolment))) == [1, 2, 3]
    assert run(dispatch_once(sms_rt)).sent == 3
    inbound(TestClient(create_app(sms_rt)), "oui")
    assert sorted((e.contact_id, e.action) for e in events(sms_rt)) == [(1, "confirmed"), (2, "confirmed"), (3, "confirmed")]
    assert states(sms_rt) == {1: "confirmed", 2: "confirmed", 3: "confirmed"}


def test_a_shared_number_does_not_answer_a_request_sent_by_email(
    sms_rt: Runtime, twilio: TwilioStandIn, write_csv: Callable[..., Path]
) -> None:
    launch(sms_rt, write_csv([person(1), person(2, phone=PHONE)]),
           steps=[{"day": 0, "channel": "email", "template": "reconsent"}])
    run(dispatch_once(sms_rt))
    client = TestClient(create_app(sms_rt))
    assert "répondez OUI" in inbound(client, "Oui")  # nobody was asked by SMS: not an answer
    assert events(sms_rt) == [] and states(sms_rt) == {1: "pending", 2: "pending"}
    inbound(client, "Non")  # a no is honoured anyway: the number stops receiving SMS
    assert sorted((e.contact_id, e.action) for e in events(sms_rt)) == [(1, "withdrawn"), (2, "withdrawn")]
    assert states(sms_rt) == {1: "pending", 2: "pending"}  # their email request stands


def test_answer_words_are_configurable_per_locale(
    make_rt: Callable[..., Runtime], twilio: TwilioStandIn, write_csv: Callable[..., Path]
) -> None:
    rt = make_rt(sms={"transport": "twilio", "account_sid": twilio.account_sid, "auth_token": TOKEN,
                      "api_base_url": twilio.base_url},
                 keywords={"yes": {"es": ["SÍ"]}, "no": {"es": ["NO"]}})
    sent_sms(rt, write_csv, twilio, n=2)
    client = TestClient(create_app(rt))
    inbound(client, "si")
    assert "<Message>" in inbound(client, "Oui", sender="+33612340002")  # no longer a yes here
    assert [(e.contact_id, e.action, e.locale) for e in events(rt)] == [(1, "confirmed", "es")]


def test_the_sweep_keeps_a_channel_granted_after_the_request(
    sms_rt: Runtime, write_csv: Callable[..., Path], clock: FixedClock
) -> None:
    # asked by email only; the person texts START during the campaign: SMS granted, request pending
    campaign_id = launch(sms_rt, write_csv([person(1), person(2)]),
                         steps=[{"day": 0, "channel": "email", "template": "reconsent"}])
    clock.advance(timedelta(days=2))
    assert "<Message>" not in inbound(TestClient(create_app(sms_rt)), "START")
    assert states(sms_rt) == {1: "pending", 2: "pending"}
    clock.advance(timedelta(days=30))
    sweep(sms_rt)
    by_contact = sorted((e.contact_id, e.channel, e.action) for e in events(sms_rt))
    assert by_contact == [(1, "email", "expired"), (1, "sms", "granted"),
                          (2, "email", "expired"), (2, "sms", "expired")]
    entries = suppressed(sms_rt)
    assert (sms_rt.key_for(PHONE), "sms") not in entries
    assert entries[(sms_rt.key_for("person1@example.org"), "email")] == "no_response"
    assert entries[(sms_rt.key_for("+33612340002"), "sms")] == "no_response"
    with Session(sms_rt.engine) as s:
        kept, gone = s.get(Contact, 1), s.get(Contact, 2)
        assert kept is not None and kept.phone == PHONE and kept.erased_at is None  # not anonymised
        assert gone is not None and gone.erased_at is not None
    with Session(sms_rt.engine) as s:
        assert all(e.campaign_id == campaign_id for e in s.exec(select(ConsentEvent).where(ConsentEvent.action == "expired")))


def test_the_shipped_sms_invite_the_answer_and_fit_one_segment(make_rt: Callable[..., Runtime]) -> None:
    from orchestrator.campaigns.service import create_campaign, preview_campaign
    from tests.support.factories import plan

    rt = make_rt(public={"base_url": "https://www.boutique.example/preferences"})  # a long public URL
    steps = [{"day": 0, "channel": "sms", "template": "reconsent"}, {"day": 7, "channel": "sms", "template": "reminder"}]
    campaign_id = create_campaign(rt, plan(steps=steps))  # refused if a locale's SMS were over one segment
    previews = preview_campaign(rt, campaign_id)
    assert {(p.locale, p.encoding, p.segments) for p in previews} == {("fr", "GSM-7", 1), ("en", "GSM-7", 1)}
    shown = " | ".join(p.text for p in previews)
    for invite in ("Répondez OUI ou NON, ou https://", "Répondez OUI, ou https://", "Reply YES or NO, or",
                   "Reply YES to stay, or"):
        assert invite in shown


def test_the_proof_holds_the_text_of_an_imported_wording(
    sms_rt: Runtime, twilio: TwilioStandIn, write_csv: Callable[..., Path], tmp_path: Path
) -> None:
    from orchestrator.rendering.template_store import import_templates
    from tests.orchestrator.test_template_store import PROMO, write_templates

    import_templates(sms_rt, write_templates(tmp_path / "wordings", "promo", PROMO))
    launch(sms_rt, write_csv([person(1)]), steps=[{"day": 0, "channel": "sms", "template": "promo"}])
    assert run(dispatch_once(sms_rt)).sent == 1
    inbound(TestClient(create_app(sms_rt)), "OUI")
    (event,) = events(sms_rt)
    answered = proof_of(sms_rt, event)["answered"]
    assert isinstance(answered, dict) and answered["template"] == "promo"
    assert answered["wording"] == PROMO["fr"]["sms.txt"]


def test_the_same_inbound_sms_twice_changes_nothing_the_second_time(
    sms_rt: Runtime, twilio: TwilioStandIn, write_csv: Callable[..., Path]
) -> None:
    sent_sms(sms_rt, write_csv, twilio)
    client = TestClient(create_app(sms_rt))
    inbound(client, "STOP", sid="SMdup")
    assert "<Message>" not in inbound(client, "STOP", sid="SMdup")  # Twilio delivered it again
    assert [e.action for e in events(sms_rt)] == ["withdrawn"]
    assert "<Message>" in inbound(client, "HELP", sid="SMhelp1")
    assert "<Message>" not in inbound(client, "HELP", sid="SMhelp1")
    assert "<Message>" in inbound(client, "HELP", sid="SMhelp2")  # another message: answered


def test_a_yes_that_the_sweep_beat_records_nothing(
    sms_rt: Runtime, twilio: TwilioStandIn, write_csv: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14 §3 for SMS answers: the sweep expires the request between the reply's read of the
    pending requests and its write; the reply must then record nothing (the sweep won)."""
    from sqlalchemy import text

    from orchestrator.consent import sms_replies

    sent_sms(sms_rt, write_csv, twilio)
    found = sms_replies.asked_requests

    def read_then_swept(conn, contact_ids):  # type: ignore[no-untyped-def]
        rows = found(conn, contact_ids)
        conn.execute(text("UPDATE enrolment SET state = 'expired'"))  # the sweep's transition, in between
        return rows

    monkeypatch.setattr(sms_replies, "asked_requests", read_then_swept)
    inbound(TestClient(create_app(sms_rt)), "Oui")
    assert [e.action for e in events(sms_rt)] == []
    assert states(sms_rt) == {1: "expired"}
