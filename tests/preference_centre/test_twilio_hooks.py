"""Twilio webhooks [S2–S4]: signature checked against the public URL, idempotent status callbacks,
keywords on the whole body in every configured language, each a ledger event with its source."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlmodel import Session, select
from starlette.testclient import TestClient
from twilio.request_validator import RequestValidator

from orchestrator.consent import ledger
from orchestrator.delivery.worker import dispatch_once
from orchestrator.runtime import Runtime
from orchestrator.store.models import (
    ConsentEvent,
    Enrolment,
    OutboxMessage,
    SuppressionEntry,
    Wording,
)
from preference_centre.app import create_app
from tests.support.factories import launch, person, run
from tests.support.twilio_standin import TwilioStandIn

TOKEN = "test-auth-token"
PUBLIC = "https://prefs.example.com"
PHONE = "+33612340001"


@pytest.fixture
def sms_rt(make_rt: Callable[..., Runtime], twilio: TwilioStandIn) -> Runtime:
    return make_rt(sms={"transport": "twilio", "account_sid": twilio.account_sid, "auth_token": TOKEN,
                        "api_base_url": twilio.base_url})


def post(client: TestClient, path: str, params: dict[str, str], *, url: str | None = None,
         headers: dict[str, str] | None = None) -> object:
    signature = RequestValidator(TOKEN).compute_signature(url or PUBLIC + path, params)
    return client.post(path, data=params, headers={"X-Twilio-Signature": signature, **(headers or {})})


def sent_sms(rt: Runtime, write_csv: Callable[..., Path], twilio: TwilioStandIn, n: int = 1) -> str:
    launch(rt, write_csv([person(i) for i in range(1, n + 1)]), steps=[{"day": 0, "channel": "sms", "template": "reconsent"}])
    assert run(dispatch_once(rt)).sent == n
    return twilio.created[0]["sid"]


def row_of(rt: Runtime, sid: str) -> OutboxMessage:
    with Session(rt.engine) as s:
        return s.exec(select(OutboxMessage).where(OutboxMessage.provider_id == sid)).one()


def test_dispatch_stores_sid_and_initial_status(sms_rt: Runtime, twilio: TwilioStandIn, write_csv: Callable[..., Path]) -> None:
    sid = sent_sms(sms_rt, write_csv, twilio)
    row = row_of(sms_rt, sid)
    assert (row.status, row.provider_status) == ("sent", "queued")
    assert twilio.created[0]["StatusCallback"] == f"{PUBLIC}/twilio/status"


def test_status_callbacks_move_forward_only_and_repeat_as_no_ops(
    sms_rt: Runtime, twilio: TwilioStandIn, write_csv: Callable[..., Path]
) -> None:
    sid = sent_sms(sms_rt, write_csv, twilio)
    client = TestClient(create_app(sms_rt))
    base = {"MessageSid": sid, "AccountSid": twilio.account_sid, "ApiVersion": "2010-04-01",
            "SomeFieldTwilioAddsNextYear": "whatever"}  # unknown fields are accepted
    assert post(client, "/twilio/status", {**base, "MessageStatus": "sent"}).status_code == 200  # type: ignore[attr-defined]
    assert post(client, "/twilio/status", {**base, "MessageStatus": "delivered"}).status_code == 200  # type: ignore[attr-defined]
    first = row_of(sms_rt, sid)
    assert (first.status, first.provider_status) == ("delivered", "delivered")
    # late "sent" and a duplicate "delivered": nothing changes, not even updated_at
    assert post(client, "/twilio/status", {**base, "MessageStatus": "sent"}).status_code == 200  # type: ignore[attr-defined]
    assert post(client, "/twilio/status", {**base, "MessageStatus": "delivered"}).status_code == 200  # type: ignore[attr-defined]
    again = row_of(sms_rt, sid)
    assert (again.status, again.provider_status, again.updated_at) == ("delivered", "delivered", first.updated_at)


def test_undelivered_to_a_dead_number_marks_it_undeliverable(
    sms_rt: Runtime, twilio: TwilioStandIn, write_csv: Callable[..., Path]
) -> None:
    sid = sent_sms(sms_rt, write_csv, twilio)
    client = TestClient(create_app(sms_rt))
    post(client, "/twilio/status", {"MessageSid": sid, "MessageStatus": "undelivered", "ErrorCode": "30005"})
    assert row_of(sms_rt, sid).status == "bounced"
    with Session(sms_rt.engine) as s:
        (entry,) = s.exec(select(SuppressionEntry))
    assert (entry.channel, entry.reason, entry.key) == ("sms", "bounced", sms_rt.key_for(PHONE))


def test_a_21610_callback_suppresses_as_sms_stop(
    sms_rt: Runtime, twilio: TwilioStandIn, write_csv: Callable[..., Path]
) -> None:
    sid = sent_sms(sms_rt, write_csv, twilio)
    post(TestClient(create_app(sms_rt)), "/twilio/status",
         {"MessageSid": sid, "MessageStatus": "failed", "ErrorCode": "21610"})
    row = row_of(sms_rt, sid)
    assert (row.status, row.last_error) == ("failed", "Twilio error 21610")
    with Session(sms_rt.engine) as s:
        assert [(e.channel, e.reason) for e in s.exec(select(SuppressionEntry))] == [("sms", "sms_stop")]


def test_stop_from_an_unknown_number_still_suppresses_it(sms_rt: Runtime) -> None:
    resp = post(TestClient(create_app(sms_rt)), "/twilio/inbound", {"From": "+33655555555", "Body": "STOP"})
    assert resp.status_code == 200  # type: ignore[attr-defined]
    with Session(sms_rt.engine) as s:
        assert [e.key for e in s.exec(select(SuppressionEntry))] == [sms_rt.key_for("+33655555555")]
    assert events(sms_rt) == []  # no contact, so no consent event to record


def test_bad_or_missing_signature_is_403_and_changes_nothing(
    sms_rt: Runtime, twilio: TwilioStandIn, write_csv: Callable[..., Path]
) -> None:
    sid = sent_sms(sms_rt, write_csv, twilio)
    client = TestClient(create_app(sms_rt))
    params = {"MessageSid": sid, "MessageStatus": "delivered"}
    assert client.post("/twilio/status", data=params).status_code == 403
    forged = RequestValidator("someone-elses-token").compute_signature(PUBLIC + "/twilio/status", params)
    assert client.post("/twilio/status", data=params, headers={"X-Twilio-Signature": forged}).status_code == 403
    tampered = post(client, "/twilio/status", {**params, "MessageStatus": "sent"})
    assert tampered.status_code == 200  # type: ignore[attr-defined]
    signed = RequestValidator(TOKEN).compute_signature(PUBLIC + "/twilio/status", params)
    resp = client.post("/twilio/status", data={**params, "MessageStatus": "failed"}, headers={"X-Twilio-Signature": signed})
    assert resp.status_code == 403  # a parameter changed after signing
    stop = {"From": PHONE, "Body": "STOP"}
    assert client.post("/twilio/inbound", data=stop).status_code == 403
    assert row_of(sms_rt, sid).status == "sent"
    with Session(sms_rt.engine) as s:
        assert list(s.exec(select(SuppressionEntry))) == []


def test_signature_is_checked_against_the_public_url_behind_a_proxy(
    make_rt: Callable[..., Runtime], twilio: TwilioStandIn, write_csv: Callable[..., Path]
) -> None:
    rt = make_rt(sms={"transport": "twilio", "account_sid": twilio.account_sid, "auth_token": TOKEN,
                      "api_base_url": twilio.base_url},
                 public={"base_url": "https://www.boutique.example/preferences"})
    sid = sent_sms(rt, write_csv, twilio)
    assert twilio.created[0]["StatusCallback"] == "https://www.boutique.example/preferences/twilio/status"
    # The proxy strips the prefix and talks plain http to an internal host.
    client = TestClient(create_app(rt), base_url="http://10.0.0.7:8000")
    params = {"MessageSid": sid, "MessageStatus": "delivered"}
    internal = post(client, "/twilio/status", params, url="http://10.0.0.7:8000/twilio/status")
    assert internal.status_code == 403  # type: ignore[attr-defined]
    public = post(client, "/twilio/status", params, url="https://www.boutique.example/preferences/twilio/status",
                  headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "www.boutique.example"})
    assert public.status_code == 200  # type: ignore[attr-defined]
    assert row_of(rt, sid).status == "delivered"


def events(rt: Runtime) -> list[ConsentEvent]:
    with Session(rt.engine) as s:
        return list(s.exec(select(ConsentEvent).order_by(ConsentEvent.id)))


STOP_BODIES = ["STOP", " stop ", "Arrêt", "ARRÊTE", "arrete!", "StopAll", "unsubscribe", "Cancel", "END", "quit",
               "revoke", "OptOut"]


def test_every_stop_word_withdraws_and_suppresses_with_proof(
    sms_rt: Runtime, twilio: TwilioStandIn, write_csv: Callable[..., Path]
) -> None:
    n = len(STOP_BODIES)
    sent_sms(sms_rt, write_csv, twilio, n=n)
    client = TestClient(create_app(sms_rt))
    for i, body in enumerate(STOP_BODIES, start=1):
        resp = post(client, "/twilio/inbound", {"From": f"+3361234{i:04d}", "Body": body, "To": "36111"})
        assert resp.status_code == 200  # type: ignore[attr-defined]
    with Session(sms_rt.engine) as s:
        entries = {e.key: e for e in s.exec(select(SuppressionEntry))}
        enrolments = [e.state for e in s.exec(select(Enrolment))]
        wordings = {e.contact_id: s.get(Wording, e.wording_hash) for e in events(sms_rt)}
    assert set(entries) == {sms_rt.key_for(f"+3361234{i:04d}") for i in range(1, n + 1)}
    assert {(e.channel, e.reason) for e in entries.values()} == {("sms", "sms_stop")}
    evs = events(sms_rt)
    assert len(evs) == n
    assert {(e.action, e.channel, e.source) for e in evs} == {("withdrawn", "sms", "sms_keyword")}
    assert all(e.campaign_id is not None and e.step == 0 for e in evs)
    assert [json.loads(wordings[i].text)["reply"] for i in range(1, n + 1)] == [b.strip() for b in STOP_BODIES]  # type: ignore[union-attr]
    assert enrolments == ["declined"] * n  # an answer: no further step of this campaign


@pytest.mark.parametrize("body", ["STOP please", "stop stop", "STOPPER", "Je veux arrêter", ""])
def test_only_the_whole_body_counts(sms_rt: Runtime, twilio: TwilioStandIn, write_csv: Callable[..., Path], body: str) -> None:
    sent_sms(sms_rt, write_csv, twilio)
    resp = post(TestClient(create_app(sms_rt)), "/twilio/inbound", {"From": PHONE, "Body": body})
    assert resp.status_code == 200  # type: ignore[attr-defined]
    # not a keyword: only the short "reply OUI or NON" help (nothing for an empty body), nothing recorded
    assert ("répondez OUI" in resp.text) is bool(body)  # type: ignore[attr-defined]
    assert events(sms_rt) == []


def test_start_after_stop_regrants_with_proof_and_lifts_the_opt_out(
    sms_rt: Runtime, twilio: TwilioStandIn, write_csv: Callable[..., Path]
) -> None:
    sent_sms(sms_rt, write_csv, twilio)
    client = TestClient(create_app(sms_rt))
    post(client, "/twilio/inbound", {"From": PHONE, "Body": "STOP"})
    post(client, "/twilio/inbound", {"From": PHONE, "Body": "Unstop"})
    assert [(e.action, e.wording_name) for e in events(sms_rt)] == [
        ("withdrawn", "sms_keyword:STOP"), ("granted", "sms_keyword:UNSTOP")]
    with Session(sms_rt.engine) as s:
        assert list(s.exec(select(SuppressionEntry))) == []
        assert ledger.verify(s).broken_at is None


def test_start_does_not_lift_a_bounce(sms_rt: Runtime, twilio: TwilioStandIn, write_csv: Callable[..., Path]) -> None:
    sid = sent_sms(sms_rt, write_csv, twilio)
    client = TestClient(create_app(sms_rt))
    post(client, "/twilio/status", {"MessageSid": sid, "MessageStatus": "failed", "ErrorCode": "30006"})
    post(client, "/twilio/inbound", {"From": PHONE, "Body": "START"})
    with Session(sms_rt.engine) as s:
        assert [e.reason for e in s.exec(select(SuppressionEntry))] == ["bounced"]
    assert [e.action for e in events(sms_rt)] == ["granted"]


def test_help_gets_a_twiml_reply_in_the_contacts_language(
    sms_rt: Runtime, twilio: TwilioStandIn, write_csv: Callable[..., Path]
) -> None:
    launch(sms_rt, write_csv([person(1), person(2, locale="en")]),
           steps=[{"day": 0, "channel": "sms", "template": "reconsent"}])
    run(dispatch_once(sms_rt))
    client = TestClient(create_app(sms_rt))
    fr = post(client, "/twilio/inbound", {"From": PHONE, "Body": "Info"})
    assert fr.headers["content-type"].startswith("application/xml")  # type: ignore[attr-defined]
    assert re.search(r"<Message>Boutique Lumière : .*STOP au 36111.*</Message>", fr.text)  # type: ignore[attr-defined]
    en = post(client, "/twilio/inbound", {"From": "+33612340002", "Body": "help"})
    assert "Reply STOP to 36111" in en.text  # type: ignore[attr-defined]
    assert events(sms_rt) == []  # HELP changes no consent


def test_keyword_lists_are_configurable_per_locale(
    make_rt: Callable[..., Runtime], twilio: TwilioStandIn, write_csv: Callable[..., Path]
) -> None:
    rt = make_rt(sms={"transport": "twilio", "account_sid": twilio.account_sid, "auth_token": TOKEN,
                      "api_base_url": twilio.base_url},
                 keywords={"stop": {"fr": ["STOP", "DÉSABONNER"], "es": ["BAJA"]}})
    sent_sms(rt, write_csv, twilio, n=2)
    client = TestClient(create_app(rt))
    post(client, "/twilio/inbound", {"From": PHONE, "Body": "desabonner"})
    post(client, "/twilio/inbound", {"From": "+33612340002", "Body": "Baja"})
    post(client, "/twilio/inbound", {"From": PHONE, "Body": "ARRET"})  # no longer in the list
    assert [(e.contact_id, e.wording_name) for e in events(rt)] == [
        (1, "sms_keyword:DESABONNER"), (2, "sms_keyword:BAJA")]


@pytest.mark.parametrize("last", ["delivered", "read"])
def test_a_late_failure_after_delivery_changes_nothing(
    sms_rt: Runtime, twilio: TwilioStandIn, write_csv: Callable[..., Path], last: str
) -> None:
    sid = sent_sms(sms_rt, write_csv, twilio)
    client = TestClient(create_app(sms_rt))
    post(client, "/twilio/status", {"MessageSid": sid, "MessageStatus": "delivered"})
    post(client, "/twilio/status", {"MessageSid": sid, "MessageStatus": last})
    before = row_of(sms_rt, sid)
    for status, code in (("failed", "30005"), ("undelivered", "30006"), ("failed", "21610")):
        post(client, "/twilio/status", {"MessageSid": sid, "MessageStatus": status, "ErrorCode": code})
    after = row_of(sms_rt, sid)
    assert (after.status, after.provider_status, after.updated_at, after.last_error) == (
        "delivered", last, before.updated_at, None)
    with Session(sms_rt.engine) as s:
        assert list(s.exec(select(SuppressionEntry))) == []


def test_a_status_callback_never_touches_an_email(
    sms_rt: Runtime, twilio: TwilioStandIn, write_csv: Callable[..., Path]
) -> None:
    launch(sms_rt, write_csv([person(1)]), steps=[{"day": 0, "channel": "email", "template": "reconsent"}])
    assert run(dispatch_once(sms_rt)).sent == 1
    with Session(sms_rt.engine) as s:
        email = s.exec(select(OutboxMessage)).one()
    assert email.channel == "email" and email.provider_id
    resp = post(TestClient(create_app(sms_rt)), "/twilio/status",
                {"MessageSid": email.provider_id, "MessageStatus": "undelivered", "ErrorCode": "30005"})
    assert resp.text == "unknown message"  # type: ignore[attr-defined]
    with Session(sms_rt.engine) as s:
        again = s.get(OutboxMessage, email.id)
        assert again is not None and (again.status, again.provider_status, again.last_error, again.updated_at) == (
            "sent", email.provider_status, None, email.updated_at)
        assert list(s.exec(select(SuppressionEntry))) == []
