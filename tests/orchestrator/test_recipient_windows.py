"""Send windows that follow the recipient (issue 14 §5): the time zone of the phone number when the
contact has none, the holidays of their region (from the number, else the ``region`` attribute), and
the STOP number of their country."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlmodel import Session, select
from starlette.testclient import TestClient
from twilio.request_validator import RequestValidator

from orchestrator.delivery.worker import dispatch_once
from orchestrator.domain.clock import FixedClock, as_utc
from orchestrator.runtime import Runtime
from orchestrator.store.models import OutboxMessage
from preference_centre.app import create_app
from tests.support.factories import launch, person, run
from tests.support.twilio_standin import TwilioStandIn

SMS_ONLY = [{"day": 0, "channel": "sms", "template": "reconsent"}]
TOKEN = "test-auth-token"
UK = "+447400123456"


def by_contact(rt: Runtime) -> dict[int, OutboxMessage]:
    with Session(rt.engine) as s:
        return {r.contact_id: r for r in s.exec(select(OutboxMessage))}


def test_a_contact_without_time_zone_gets_the_zone_of_their_number(
    make_rt: Callable[..., Runtime], write_csv: Callable[..., Path], clock: FixedClock
) -> None:
    clock.at = datetime(2026, 11, 25, 7, 30, tzinfo=UTC)  # 08:30 Paris, 03:30 Antilles, 11:30 Réunion
    rt = make_rt()
    launch(rt, write_csv([
        person(1, timezone=""), person(2, phone="+590690001122", timezone=""),
        person(3, phone="+596696001122", timezone=""), person(4, phone="+262692001122", timezone=""),
        person(5, phone="+590690123456", timezone="Europe/Paris"),  # the column wins over the number
    ]), steps=SMS_ONLY)
    report = run(dispatch_once(rt))
    assert (report.sent, report.deferred) == (3, 2)
    rows = by_contact(rt)
    assert {i for i, r in rows.items() if r.status == "sent"} == {1, 4, 5}
    for waiting in (rows[2], rows[3]):  # 08:00 in Guadeloupe and Martinique (UTC-4)
        assert waiting.skip_reason == "outside_window"
        assert as_utc(waiting.due_at) == datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_regional_holidays_from_the_number_and_the_region_attribute(
    make_rt: Callable[..., Runtime], write_csv: Callable[..., Path], clock: FixedClock
) -> None:
    clock.at = datetime(2027, 3, 26, 9, 0, tzinfo=UTC)  # Good Friday: a holiday in Alsace-Moselle only
    rt = make_rt()
    launch(rt, write_csv([
        person(1), person(2, region="Alsace-Moselle"), person(3, region="67"), person(4, region="Bretagne"),
        person(5, phone="+590690001122", timezone=""),  # Guadeloupe keeps Good Friday too
        person(6, phone="+596696001122", timezone=""),  # Martinique does not
    ]), steps=SMS_ONLY)
    clock.at = datetime(2027, 3, 26, 13, 0, tzinfo=UTC)  # 14:00 Paris, 09:00 Antilles
    report = run(dispatch_once(rt))
    rows = by_contact(rt)
    assert {i for i, r in rows.items() if r.status == "sent"} == {1, 4, 6}
    assert report.deferred == 3
    assert as_utc(rows[2].due_at) == as_utc(rows[3].due_at) == datetime(2027, 3, 27, 7, 0, tzinfo=UTC)
    assert as_utc(rows[5].due_at) == datetime(2027, 3, 27, 12, 0, tzinfo=UTC)


def test_abolition_of_slavery_day_of_each_department(
    make_rt: Callable[..., Runtime], write_csv: Callable[..., Path], clock: FixedClock
) -> None:
    clock.at = datetime(2027, 5, 27, 13, 0, tzinfo=UTC)  # 27 May: Guadeloupe's day; 15:00 Paris
    rt = make_rt()
    launch(rt, write_csv([person(1), person(2, phone="+590690001122", timezone=""),
                          person(3, phone="+596696001122", timezone="")]), steps=SMS_ONLY)
    run(dispatch_once(rt))
    rows = by_contact(rt)
    assert (rows[1].status, rows[2].status, rows[3].status) == ("sent", "pending", "sent")
    assert as_utc(rows[2].due_at) == datetime(2027, 5, 28, 12, 0, tzinfo=UTC)


def _twilio_rt(make_rt: Callable[..., Runtime], twilio: TwilioStandIn, **sender: object) -> Runtime:
    return make_rt(sms={"transport": "twilio", "account_sid": twilio.account_sid, "auth_token": TOKEN,
                        "api_base_url": twilio.base_url}, sender=sender)


def test_the_stop_number_follows_the_recipients_country(
    make_rt: Callable[..., Runtime], twilio: TwilioStandIn, write_csv: Callable[..., Path], clock: FixedClock
) -> None:
    clock.at = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)  # open in Paris, London and Guadeloupe
    rt = _twilio_rt(make_rt, twilio)
    launch(rt, write_csv([person(1), person(2, phone=UK, locale="en", timezone=""),
                          person(3, phone="+590690001122", timezone="")]), steps=SMS_ONLY)
    assert run(dispatch_once(rt)).sent == 3
    sent = {m["To"]: m for m in twilio.created}
    assert sent["+33612340001"]["Body"].endswith("STOP au 36111")
    assert sent["+590690001122"]["Body"].endswith("STOP au 36111")  # one numbering plan with France
    uk = sent[UK]
    assert "36111" not in uk["Body"] and uk["Body"].endswith("STOP to +33700000000")  # the number they can reply to
    assert uk["From"] == "+33700000000"


def test_a_country_with_its_own_number_gets_it_in_the_sms_and_the_help_reply(
    make_rt: Callable[..., Runtime], twilio: TwilioStandIn, write_csv: Callable[..., Path], clock: FixedClock
) -> None:
    clock.at = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)  # open in Paris, London and Guadeloupe
    rt = _twilio_rt(make_rt, twilio, sms_countries={"GB": ["+447700900123"]})
    launch(rt, write_csv([person(1), person(2, phone=UK, locale="en", timezone="")]), steps=SMS_ONLY)
    assert run(dispatch_once(rt)).sent == 2
    sent = {m["To"]: m for m in twilio.created}
    assert sent[UK]["From"] == "+447700900123" and sent[UK]["Body"].endswith(" STOP to +447700900123")
    assert sent["+33612340001"]["From"] == "+33700000000" and sent["+33612340001"]["Body"].endswith(" STOP au 36111")
    params = {"From": UK, "To": "+447700900123", "Body": "help", "MessageSid": "SMh"}
    signature = RequestValidator(TOKEN).compute_signature("https://prefs.example.com/twilio/inbound", params)
    reply = TestClient(create_app(rt)).post("/twilio/inbound", data=params, headers={"X-Twilio-Signature": signature})
    assert "Reply STOP to +447700900123" in reply.text and "36111" not in reply.text
