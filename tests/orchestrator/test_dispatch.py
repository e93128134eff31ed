from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Callable

from sqlmodel import Session, select
from starlette.testclient import TestClient

from orchestrator.campaigns.service import campaign_status
from orchestrator.delivery.worker import dispatch_once
from orchestrator.domain.clock import FixedClock
from orchestrator.runtime import Runtime
from orchestrator.store.models import OutboxMessage, SuppressionEntry
from preference_centre.app import create_app
from tests.support.factories import launch, person, run
from tests.support.smtp import SmtpServer
from tests.support.twilio_standin import TwilioStandIn


def smtp_rt(make_rt: Callable[..., Runtime], server: SmtpServer, **more: dict) -> Runtime:
    return make_rt(email={"transport": "smtp", "host": "127.0.0.1", "port": server.port, "pool_size": 2}, **more)


def rows(rt: Runtime) -> list[OutboxMessage]:
    with Session(rt.engine) as s:
        return list(s.exec(select(OutboxMessage).order_by(OutboxMessage.id)))


def test_email_through_real_smtp_has_both_parts_headers_and_working_links(
    make_rt: Callable[..., Runtime], smtp_server: SmtpServer, write_csv: Callable[..., Path]
) -> None:
    rt = smtp_rt(make_rt, smtp_server)
    launch(rt, write_csv([person(1, first_name="Chloé"), person(2, locale="en")]))
    report = run(dispatch_once(rt))
    assert report.sent == 2
    assert len(smtp_server.received) == 2
    by_rcpt = {r.rcpt_tos[0]: r.message for r in smtp_server.received}
    fr = by_rcpt["person1@example.org"]
    assert fr.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in fr.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    assert fr["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert re.fullmatch(r"<https://prefs\.example\.com/u/[^>]+>, <mailto:[^>]+>", fr["List-Unsubscribe"])
    assert "Boutique Lumière" in str(fr["From"]) and fr["Date"] and fr["Message-ID"]
    assert fr["Subject"].startswith("Boutique Lumière")
    text = fr.get_body(("plain",)).get_content()
    html = fr.get_body(("html",)).get_content()
    assert "Bonjour Chloé" in text and "12 rue des Lilas" in text and "12 rue des Lilas" in html
    assert "person1" not in fr["List-Unsubscribe"]  # no PII in links
    en = by_rcpt["person2@example.org"]
    assert "Hello" in en.get_body(("plain",)).get_content()
    stored = {r.message_id for r in rows(rt) if r.message_id}
    assert {m["Message-ID"] for m in by_rcpt.values()} <= stored

    client = TestClient(create_app(rt))
    page = re.search(r"https://prefs\.example\.com(/p/\S+)", text).group(1)  # type: ignore[union-attr]
    unsub = re.search(r"https://prefs\.example\.com(/u/\S+)", text).group(1)  # type: ignore[union-attr]
    assert client.get(page).status_code == 200
    assert client.get(unsub).status_code == 200
    assert page in html  # the same link in the HTML part


def test_later_steps_only_to_people_who_have_not_answered_and_never_to_suppressed(
    make_rt: Callable[..., Runtime], smtp_server: SmtpServer, write_csv: Callable[..., Path], clock: FixedClock
) -> None:
    rt = smtp_rt(make_rt, smtp_server)
    campaign_id = launch(rt, write_csv([person(1), person(2), person(3)]))
    run(dispatch_once(rt))
    client = TestClient(create_app(rt))
    links = {r.rcpt_tos[0]: r.message.get_body(("plain",)).get_content() for r in smtp_server.received}
    page = re.search(r"https://prefs\.example\.com(/p/\S+)", links["person1@example.org"]).group(1)  # type: ignore[union-attr]
    assert client.post(page, data={"email": "yes", "action": "confirm"}).status_code == 200
    unsub = re.search(r"https://prefs\.example\.com(/u/\S+)", links["person2@example.org"]).group(1)  # type: ignore[union-attr]
    assert client.post(unsub, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    clock.advance(timedelta(days=7))
    report = run(dispatch_once(rt))
    assert report.sent == 1
    assert dict(report.skipped) == {"answered": 1, "suppressed": 1}
    assert [r.rcpt_tos[0] for r in smtp_server.received[3:]] == ["person3@example.org"]
    assert campaign_id


def test_sms_through_twilio_standin_with_short_link_and_stop(
    make_rt: Callable[..., Runtime], twilio: TwilioStandIn, write_csv: Callable[..., Path]
) -> None:
    rt = make_rt(sms={"transport": "twilio", "account_sid": twilio.account_sid, "auth_token": twilio.auth_token,
                      "api_base_url": twilio.base_url})
    twilio.errors = {"+33612340002": 21610, "+33612340003": 21211}
    launch(rt, write_csv([person(1), person(2), person(3)]), steps=[{"day": 0, "channel": "sms", "template": "reconsent"}])
    report = run(dispatch_once(rt))
    assert (report.sent, report.failed, report.bounced) == (1, 1, 1)  # 21610 failed, 21211 bounced
    (sms,) = twilio.created
    assert "STOP au 36111" in sms["Body"]
    code = re.search(r"/s/(\w+)", sms["Body"]).group(1)  # type: ignore[union-attr]
    assert len(sms["Body"]) <= 160
    with Session(rt.engine) as s:
        entries = list(s.exec(select(SuppressionEntry)))
    # 21610 → sms_stop; 21211 (invalid number) → the number is marked undeliverable (bounced)
    assert sorted((e.channel, e.reason) for e in entries) == [("sms", "bounced"), ("sms", "sms_stop")]
    statuses = sorted(r.status for r in rows(rt))
    assert statuses == ["bounced", "failed", "sent"]
    assert any(r.provider_id == sms["sid"] for r in rows(rt))
    page = TestClient(create_app(rt)).get(f"/s/{code}")
    assert page.status_code == 200 and "SMS" in page.text


def test_transient_failures_retry_with_backoff_then_send(
    make_rt: Callable[..., Runtime], smtp_server: SmtpServer, write_csv: Callable[..., Path], clock: FixedClock
) -> None:
    rt = smtp_rt(make_rt, smtp_server)
    launch(rt, write_csv([person(1)]), steps=[{"day": 0, "channel": "email", "template": "reconsent"}])
    smtp_server.handler.data_replies.extend(["451 4.3.0 Try again later"])
    first = run(dispatch_once(rt))
    assert (first.sent, first.retried) == (0, 1)
    (row,) = rows(rt)
    assert row.status == "pending" and row.last_error and "451" in row.last_error
    assert run(dispatch_once(rt)).sent == 0  # not due yet: backoff
    clock.advance(timedelta(hours=1))
    assert run(dispatch_once(rt)).sent == 1
    assert len(smtp_server.received) == 1


def test_hard_bounce_suppresses_and_is_not_retried(
    make_rt: Callable[..., Runtime], smtp_server: SmtpServer, write_csv: Callable[..., Path]
) -> None:
    rt = smtp_rt(make_rt, smtp_server)
    smtp_server.handler.rcpt_replies["person1@example.org"] = "550 5.1.1 No such user"
    campaign_id = launch(rt, write_csv([person(1), person(2)]),
                         steps=[{"day": 0, "channel": "email", "template": "reconsent"}])
    report = run(dispatch_once(rt))
    assert (report.sent, report.failed, report.bounced) == (1, 0, 1)
    assert sorted(r.status for r in rows(rt)) == ["bounced", "sent"]
    # the dispatch summary and `campaign status` say the same thing about a 5.1.1 refused at send time
    assert report.summary().startswith("sent 1, failed 0, bounced 1,")
    status = campaign_status(rt, campaign_id)
    assert (status["email"]["sent"], status["email"]["failed"], status["email"]["bounced"]) == (1, 0, 1)
    with Session(rt.engine) as s:
        (entry,) = s.exec(select(SuppressionEntry))
    assert entry.reason == "bounced" and entry.key == rt.key_for("person1@example.org")


def test_sms_waits_for_the_send_window(
    make_rt: Callable[..., Runtime], write_csv: Callable[..., Path], clock: FixedClock
) -> None:
    clock.at = clock.at.replace(hour=21)  # 22:00 in Paris
    rt = make_rt()
    launch(rt, write_csv([person(1)]), steps=[{"day": 0, "channel": "sms", "template": "reconsent"}])
    report = run(dispatch_once(rt))
    assert (report.sent, report.deferred) == (0, 1)
    (row,) = rows(rt)
    assert row.skip_reason == "outside_window" and row.due_at.hour == 7  # 08:00 Paris next day
    clock.advance(timedelta(hours=10))
    assert run(dispatch_once(rt)).sent == 1


def test_paused_campaign_sends_nothing_and_resume_sends_each_once(
    make_rt: Callable[..., Runtime], write_csv: Callable[..., Path]
) -> None:
    from orchestrator.campaigns.service import set_paused

    rt = make_rt()
    campaign_id = launch(rt, write_csv([person(i) for i in range(1, 6)]),
                         steps=[{"day": 0, "channel": "email", "template": "reconsent"}])
    set_paused(rt, campaign_id, True)
    assert run(dispatch_once(rt)).sent == 0
    set_paused(rt, campaign_id, False)
    assert run(dispatch_once(rt)).sent == 5
    assert run(dispatch_once(rt)).sent == 0
    assert len(list((Path(rt.config.email.outbox_dir)).glob("*.eml"))) == 5


def test_claims_take_running_campaigns_in_turn_and_never_a_paused_ones_rows(
    make_rt: Callable[..., Runtime], write_csv: Callable[..., Path]
) -> None:
    """The claim reads each running campaign's due rows in order: campaigns running together share
    the workers claim by claim, and a paused campaign's due rows are left where they are."""
    from orchestrator.campaigns.service import set_paused
    from orchestrator.delivery.worker import Dispatcher

    rt = make_rt(dispatch={"batch_size": 2})
    email_now = [{"day": 0, "channel": "email", "template": "reconsent"}]
    first = launch(rt, write_csv([person(i) for i in range(1, 5)]), steps=email_now)
    paused = launch(rt, write_csv([person(i) for i in range(5, 9)]), steps=email_now)
    set_paused(rt, paused, True)
    second = launch(rt, write_csv([person(i) for i in range(9, 13)]), steps=email_now)
    with Session(rt.engine) as s:
        campaign_of = {r.id: r.campaign_id for r in s.exec(select(OutboxMessage))}
    assert {first, paused, second} <= set(campaign_of.values())

    dispatcher = Dispatcher(rt, {})
    claimed = []
    while True:
        _, ids = dispatcher.claim()
        if not ids:
            break
        claimed.append({campaign_of[i] for i in ids})
    assert all(len(campaigns) == 1 for campaigns in claimed)  # batch of 2, each from one campaign
    order = [campaigns.pop() for campaigns in claimed]
    assert paused not in order
    assert order.count(first) == order.count(second) == 2  # 4 rows each, 2 per claim
    assert order[0] != order[1] and order[2] != order[3]  # in turn
    with Session(rt.engine) as s:
        left = {r.campaign_id for r in s.exec(select(OutboxMessage).where(OutboxMessage.status == "pending"))}
    assert left == {paused}
