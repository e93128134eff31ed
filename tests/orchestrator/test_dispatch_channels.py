"""Dispatch through the real adapters: retries, windows, SMS parameters and rate limits [E3, S1, S5, R9]."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import dkim
from sqlmodel import Session, select

from orchestrator.delivery.channels import build_channels
from orchestrator.delivery.channels.rate import TokenBucket
from orchestrator.delivery.channels.sms_twilio import TwilioChannel
from orchestrator.delivery.worker import dispatch_once
from orchestrator.domain.clock import FixedClock, as_utc
from orchestrator.domain.model import Channel
from orchestrator.runtime import Runtime
from orchestrator.store.models import OutboxMessage
from tests.orchestrator.delivery.channels.test_email_smtp import dkim_key
from tests.support.factories import launch, person, run
from tests.support.smtp import SmtpServer
from tests.support.twilio_standin import TwilioStandIn

EMAIL_ONLY = [{"day": 0, "channel": "email", "template": "reconsent"}]
SMS_ONLY = [{"day": 0, "channel": "sms", "template": "reconsent"}]


def rows(rt: Runtime) -> list[OutboxMessage]:
    with Session(rt.engine) as s:
        return list(s.exec(select(OutboxMessage).order_by(OutboxMessage.id)))


def twilio_rt(make_rt: Callable[..., Runtime], twilio: TwilioStandIn, **sms: object) -> Runtime:
    return make_rt(sms={"transport": "twilio", "account_sid": twilio.account_sid, "auth_token": twilio.auth_token,
                        "api_base_url": twilio.base_url, **sms})


# -- email ---------------------------------------------------------------------------------------
def test_message_id_is_on_the_sending_domain_stored_and_dkim_signed_from_config(
    make_rt: Callable[..., Runtime], smtp_server: SmtpServer, write_csv: Callable[..., Path], tmp_path: Path
) -> None:
    key_path, txt = dkim_key(tmp_path)
    rt = make_rt(email={"transport": "smtp", "host": "127.0.0.1", "port": smtp_server.port,
                        "message_id_domain": "mail.boutique-lumiere.example", "dkim_key_path": str(key_path),
                        "dkim_selector": "s1"})
    launch(rt, write_csv([person(1, first_name="Hélène")]), steps=EMAIL_ONLY)
    assert run(dispatch_once(rt)).sent == 1
    (got,) = smtp_server.received
    (row,) = rows(rt)
    assert got.message["Message-ID"] == row.message_id == row.provider_id
    assert got.message["Date"].datetime == rt.clock.now()  # from the Clock, not the wall clock
    assert row.message_id.endswith("@mail.boutique-lumiere.example>")  # type: ignore[union-attr]
    assert dkim.verify(got.data, dnsfunc=lambda name, timeout=5: txt)
    assert b"d=boutique-lumiere.example" in got.data.split(b"\r\n\r\n")[0].replace(b"\r\n", b"")


def test_transient_failures_back_off_exponentially_with_jitter_then_fail_at_the_horizon(
    make_rt: Callable[..., Runtime], smtp_server: SmtpServer, write_csv: Callable[..., Path], clock: FixedClock
) -> None:
    rt = make_rt(email={"transport": "smtp", "host": "127.0.0.1", "port": smtp_server.port},
                 dispatch={"retry_base_seconds": 60.0, "retry_horizon_hours": 2.0})
    launch(rt, write_csv([person(1)]), steps=EMAIL_ONLY)
    smtp_server.handler.data_replies.extend(["451 4.3.0 Try again later"] * 50)
    start = clock.now()
    delays = []
    while True:
        report = run(dispatch_once(rt))
        (row,) = rows(rt)
        if row.status != "pending":
            break
        assert report.retried == 1
        delays.append((as_utc(row.due_at) - clock.now()).total_seconds())
        clock.at = as_utc(row.due_at)
    assert row.status == "failed" and "451" in (row.last_error or "")
    assert clock.now() - start >= timedelta(hours=2)
    for n, delay in enumerate(delays):
        assert 0.5 * 60 * 2 ** n <= delay <= 1.5 * 60 * 2 ** n  # doubling, with ±50 % jitter
    assert len(delays) >= 5 and len(set(delays)) == len(delays)
    assert smtp_server.received == []


def test_a_message_the_relay_cannot_take_does_not_block_the_queue(
    make_rt: Callable[..., Runtime], write_csv: Callable[..., Path]
) -> None:
    server = SmtpServer(smtputf8=False).start()
    try:
        rt = make_rt(email={"transport": "smtp", "host": "127.0.0.1", "port": server.port, "pool_size": 1})
        launch(rt, write_csv([person(1), person(2, email="jérôme@exemple.fr"), person(3)]), steps=EMAIL_ONLY)
        report = run(dispatch_once(rt))
    finally:
        server.stop()
    assert (report.sent, report.failed, report.retried) == (2, 1, 0)
    assert sorted(r.rcpt_tos[0] for r in server.received) == ["person1@example.org", "person3@example.org"]
    assert sorted(r.status for r in rows(rt)) == ["failed", "sent", "sent"]


# -- SMS -----------------------------------------------------------------------------------------
def test_sms_uses_from_without_a_messaging_service_and_validity_ends_before_the_window_closes(
    make_rt: Callable[..., Runtime], twilio: TwilioStandIn, write_csv: Callable[..., Path], clock: FixedClock
) -> None:
    clock.at = clock.at.replace(hour=19, minute=30)  # 20:30 in Paris: the window closes at 21:30
    rt = twilio_rt(make_rt, twilio)
    launch(rt, write_csv([person(1)]), steps=SMS_ONLY)
    assert run(dispatch_once(rt)).sent == 1
    (sent,) = twilio.created
    assert sent["From"] == "+33700000000" and "MessagingServiceSid" not in sent
    # one hour to closing, minus a minute of margin: the carrier drops it rather than deliver after 21:30
    assert sent["ValidityPeriod"] == str(3600 - 60)


def test_sms_with_a_messaging_service(make_rt: Callable[..., Runtime], twilio: TwilioStandIn,
                                      write_csv: Callable[..., Path]) -> None:
    rt = twilio_rt(make_rt, twilio, messaging_service_sid="MG" + "2" * 32)
    launch(rt, write_csv([person(1)]), steps=SMS_ONLY)
    run(dispatch_once(rt))
    (sent,) = twilio.created
    assert sent["MessagingServiceSid"] == "MG" + "2" * 32 and "From" not in sent


def test_rate_limit_is_per_sender_in_segments_per_second(twilio: TwilioStandIn) -> None:
    from dataclasses import replace

    from orchestrator.config import SmsConfig
    from tests.orchestrator.delivery.channels.test_contract import SMS

    now = [0.0]

    async def fake_sleep(seconds: float) -> None:
        now[0] += seconds

    def bucket() -> TokenBucket:
        return TokenBucket(rate=4, burst=4, monotonic=lambda: now[0], sleep=fake_sleep)

    cfg = SmsConfig(transport="twilio", account_sid=twilio.account_sid, auth_token=twilio.auth_token,
                    api_base_url=twilio.base_url, segments_per_second=4)
    buckets = {"+33700000001": bucket(), "+33700000002": bucket()}
    channel = TwilioChannel(cfg, sms_from="+33700000001", buckets=buckets)
    two_parts = "x" * 200  # 2 segments

    async def go() -> None:
        for i in range(6):
            await channel.send(replace(SMS, sender="+33700000001", text=two_parts, idempotency_key=f"a{i}"))
        await channel.send(replace(SMS, sender="+33700000002", idempotency_key="b"))
        await channel.close()

    run(go())
    assert len(twilio.created) == 7
    # 12 segments at 4/s with 4 in the bucket: 8 segments of waiting = 2 s, all on the first sender
    assert buckets["+33700000001"].waited == 2.0
    assert buckets["+33700000002"].waited == 0.0


def test_429_backs_off_the_row_and_holds_the_sender(
    make_rt: Callable[..., Runtime], twilio: TwilioStandIn, write_csv: Callable[..., Path], clock: FixedClock
) -> None:
    rt = twilio_rt(make_rt, twilio, rate_limit_pause_seconds=0.01)
    launch(rt, write_csv([person(1)]), steps=SMS_ONLY)
    twilio.next_errors.append(20429)
    channels = build_channels(rt.config)
    sms = channels[Channel.SMS]
    assert isinstance(sms, TwilioChannel)
    seen: dict[str, object] = {}

    async def go() -> None:
        seen["first"] = await dispatch_once(rt, channels)
        (row,) = rows(rt)
        seen["row"] = row
        seen["tokens"] = sms.buckets["+33700000000"].tokens
        clock.at = as_utc(row.due_at)
        seen["second"] = await dispatch_once(rt, channels)
        for ch in channels.values():
            await ch.close()

    run(go())
    first, row, second = seen["first"], seen["row"], seen["second"]
    assert (first.sent, first.retried, first.failed) == (0, 1, 0)  # type: ignore[attr-defined]
    assert row.status == "pending" and "20429" in (row.last_error or "")  # type: ignore[attr-defined]
    assert seen["tokens"] < 0  # type: ignore[operator]  # the sender was held
    assert second.sent == 1  # type: ignore[attr-defined]
    assert len(twilio.created) == 1


# -- send windows ----------------------------------------------------------------------------------
def test_window_uses_the_contacts_time_zone(
    make_rt: Callable[..., Runtime], write_csv: Callable[..., Path], clock: FixedClock
) -> None:
    clock.at = clock.at.replace(hour=22)  # 23:00 Paris, 18:00 Martinique
    rt = make_rt()
    launch(rt, write_csv([person(1), person(2, timezone="America/Martinique"), person(3, timezone="")]),
           steps=SMS_ONLY)
    report = run(dispatch_once(rt))
    assert (report.sent, report.deferred) == (1, 2)
    by_contact = {r.contact_id: r for r in rows(rt)}
    assert by_contact[2].status == "sent"
    for waiting in (by_contact[1], by_contact[3]):  # no time zone: config default Europe/Paris
        assert waiting.status == "pending" and waiting.skip_reason == "outside_window"
        assert as_utc(waiting.due_at) == clock.now().replace(hour=7) + timedelta(days=1)


def test_strict_preset_waits_from_saturday_to_monday(
    make_rt: Callable[..., Runtime], write_csv: Callable[..., Path], clock: FixedClock
) -> None:
    clock.at = clock.at.replace(day=28)  # Saturday 10:00 Paris
    rt = make_rt(windows={"sms": "strict"})
    launch(rt, write_csv([person(1)]), steps=SMS_ONLY)
    assert run(dispatch_once(rt)).deferred == 1
    (row,) = rows(rt)
    assert as_utc(row.due_at) == clock.now().replace(day=30, hour=7)  # Monday 08:00 Paris
    default = make_rt()  # same database, default preset: Saturday is open
    assert run(dispatch_once(default)).sent == 0  # not due before Monday any more
    clock.at = as_utc(row.due_at)
    assert run(dispatch_once(rt)).sent == 1


def test_public_holiday_defers_sms_but_not_email_unless_configured(
    make_rt: Callable[..., Runtime], write_csv: Callable[..., Path], clock: FixedClock
) -> None:
    clock.at = clock.at.replace(month=12, day=25)  # Christmas, a Friday, 10:00 Paris
    rt = make_rt()
    launch(rt, write_csv([person(1)]), steps=[*EMAIL_ONLY, {"day": 0, "channel": "sms", "template": "reconsent"}])
    report = run(dispatch_once(rt))
    assert (report.sent, report.deferred) == (1, 1)  # email has no window by default
    sms_row = next(r for r in rows(rt) if r.channel == "sms")
    assert sms_row.skip_reason == "outside_window" and as_utc(sms_row.due_at) == clock.now().replace(day=26, hour=7)


def test_email_window_is_optional(make_rt: Callable[..., Runtime], write_csv: Callable[..., Path],
                                  clock: FixedClock) -> None:
    clock.at = clock.at.replace(day=29)  # Sunday
    rt = make_rt(windows={"email": "default"})
    launch(rt, write_csv([person(1)]), steps=EMAIL_ONLY)
    assert run(dispatch_once(rt)).deferred == 1
    (row,) = rows(rt)
    assert row.skip_reason == "outside_window"
