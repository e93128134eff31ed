"""Dispatcher behaviour the service relies on, in-process with real SMTP/Twilio stand-ins:
leases and takeover (controllable lease clock), the send mark, pause/resume, faults, retries."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlmodel import Session, select

from orchestrator.ops import metrics
from orchestrator.campaigns.service import set_paused
from orchestrator.delivery.worker import DispatchReport, Dispatcher, dispatch_once
from orchestrator.domain.clock import FixedClock
from orchestrator.runtime import Runtime
from orchestrator.store.models import OutboxMessage
from tests.conftest import T0
from tests.support.factories import launch, person, run
from tests.support.smtp import SmtpServer
from tests.support.twilio_standin import TwilioStandIn

EMAIL_ONLY = [{"day": 0, "channel": "email", "template": "reconsent"}]
SMS_ONLY = [{"day": 0, "channel": "sms", "template": "reconsent"}]


def smtp_rt(make_rt: Callable[..., Runtime], port: int, **dispatch: object) -> Runtime:
    return make_rt(email={"transport": "smtp", "host": "127.0.0.1", "port": port, "pool_size": 2, "timeout": 5.0},
                   dispatch={"lease_seconds": 60, "retry_base_seconds": 60.0, **dispatch})


def run_then_close(dispatcher: Dispatcher, *coros: Any) -> list[Any]:
    """Await each coroutine in order, then close the channels — all in one event loop."""

    async def go() -> list[Any]:
        try:
            return [await c for c in coros]
        finally:
            await dispatcher.close()

    return run(go())


def outbox(rt: Runtime) -> list[OutboxMessage]:
    with Session(rt.engine) as s:
        return list(s.exec(select(OutboxMessage).order_by(OutboxMessage.id)))


def received_ids(server: SmtpServer) -> Counter[str]:
    return Counter(r.message["Message-ID"] for r in server.received)


def test_a_dead_workers_claims_are_taken_over_only_after_the_lease(
    make_rt: Callable[..., Runtime], smtp_server: SmtpServer, write_csv: Callable[..., Path]
) -> None:
    rt = smtp_rt(make_rt, smtp_server.port)
    launch(rt, write_csv([person(i) for i in range(1, 6)]), steps=EMAIL_ONLY)
    lease_clock = FixedClock(T0)
    dead = Dispatcher(rt, lease_clock=lease_clock)
    _, ids = dead.claim()  # ...and the worker dies before sending anything
    assert len(ids) == 5
    other = Dispatcher(rt, lease_clock=lease_clock)
    lease_clock.advance(timedelta(seconds=59))
    assert other.claim()[1] == []  # still leased
    lease_clock.advance(timedelta(seconds=2))
    report = run_then_close(other, other.run_once())[0]
    assert report.sent == 5
    assert sorted(received_ids(smtp_server).values()) == [1] * 5
    assert {r.status for r in outbox(rt)} == {"sent"}


def test_a_live_worker_renews_its_leases(make_rt: Callable[..., Runtime], write_csv: Callable[..., Path]) -> None:
    rt = make_rt(dispatch={"lease_seconds": 60})
    launch(rt, write_csv([person(1), person(2)]), steps=EMAIL_ONLY)
    lease_clock = FixedClock(T0)
    alive = Dispatcher(rt, lease_clock=lease_clock)
    _, ids = alive.claim()
    lease_clock.advance(timedelta(seconds=50))
    assert alive.renew_leases() == 2
    lease_clock.advance(timedelta(seconds=50))  # 100 s after the claim, 50 s after the heartbeat
    assert Dispatcher(rt, lease_clock=lease_clock).claim()[1] == []
    lease_clock.advance(timedelta(seconds=11))
    assert Dispatcher(rt, lease_clock=lease_clock).claim()[1] == ids


def test_a_row_marked_by_a_dead_worker_is_sent_again_and_counted(
    make_rt: Callable[..., Runtime], smtp_server: SmtpServer, write_csv: Callable[..., Path]
) -> None:
    rt = smtp_rt(make_rt, smtp_server.port)
    launch(rt, write_csv([person(1), person(2)]), steps=EMAIL_ONLY)
    lease_clock = FixedClock(T0)
    dead = Dispatcher(rt, lease_clock=lease_clock)
    _, ids = dead.claim()
    with Session(rt.engine) as s:  # the dead worker had marked the first row (handed to the provider)
        row = s.get(OutboxMessage, ids[0])
        assert row is not None
        row.send_started_at, row.attempts = lease_clock.now(), 1
        s.add(row)
        s.commit()
    before = metrics.UNKNOWN_OUTCOME_RESENDS._value.get()
    lease_clock.advance(timedelta(seconds=61))
    restarted = Dispatcher(rt, lease_clock=lease_clock)
    report = run_then_close(restarted, restarted.run_once())[0]
    assert report.sent == 2
    assert metrics.UNKNOWN_OUTCOME_RESENDS._value.get() == before + 1
    rows = outbox(rt)
    assert [r.status for r in rows] == ["sent", "sent"]
    assert all(r.send_started_at is None and r.claimed_by is None for r in rows)
    assert rows[0].attempts == 2 and rows[1].attempts == 1


def test_stopping_releases_claimed_rows_not_yet_sent(
    make_rt: Callable[..., Runtime], smtp_server: SmtpServer, write_csv: Callable[..., Path]
) -> None:
    rt = smtp_rt(make_rt, smtp_server.port, concurrency=1, batch_size=50)
    launch(rt, write_csv([person(i) for i in range(1, 11)]), steps=EMAIL_ONLY)
    dispatcher = Dispatcher(rt)
    sends = 0
    original = dispatcher.channels  # the real SMTP channel; stop after the third send

    class StopAfterThree:
        def __init__(self, inner: object) -> None:
            self.inner = inner

        async def send(self, message: object) -> object:
            nonlocal sends
            result = await self.inner.send(message)  # type: ignore[attr-defined]
            sends += 1
            if sends == 3:
                dispatcher.stopping = True
            return result

        async def close(self) -> None:
            await self.inner.close()  # type: ignore[attr-defined]

    dispatcher.channels = {c: StopAfterThree(ch) for c, ch in original.items()}  # type: ignore[misc]
    report = run_then_close(dispatcher, dispatcher.run_once())[0]
    assert report.sent == 3
    statuses = Counter(r.status for r in outbox(rt))
    assert statuses == {"sent": 3, "pending": 7}
    assert all(r.claimed_by is None for r in outbox(rt))
    assert run(dispatch_once(rt)).sent == 7  # the released rows go at once, no lease to wait for
    assert sorted(received_ids(smtp_server).values()) == [1] * 10


def test_pause_and_resume_mid_campaign_neither_resend_nor_skip(
    make_rt: Callable[..., Runtime], smtp_server: SmtpServer, write_csv: Callable[..., Path]
) -> None:
    rt = smtp_rt(make_rt, smtp_server.port, batch_size=4, concurrency=2)
    campaign_id = launch(rt, write_csv([person(i) for i in range(1, 13)]), steps=EMAIL_ONLY)
    first = Dispatcher(rt)
    claim_id, ids = first.claim()  # one batch in hand when the pause comes
    report = DispatchReport()

    async def pause_then_continue() -> None:
        await first.process(claim_id, ids[0], report)
        set_paused(rt, campaign_id, True)
        for row_id in ids[1:]:
            await first.process(claim_id, row_id, report)  # sees the pause: puts the rows back

    run_then_close(first, pause_then_continue())
    assert report.sent == 1 and not report.skipped
    assert run(dispatch_once(rt)).sent == 0  # paused: nothing claimed
    assert Counter(r.status for r in outbox(rt)) == {"sent": 1, "pending": 11}
    set_paused(rt, campaign_id, False)
    resumed = run(dispatch_once(rt))
    assert resumed.sent == 11 and not resumed.skipped
    assert sorted(received_ids(smtp_server).values()) == [1] * 12
    assert {r.status for r in outbox(rt)} == {"sent"}


def test_smtp_server_down_messages_wait_and_go_when_it_returns(
    make_rt: Callable[..., Runtime], write_csv: Callable[..., Path], clock: FixedClock
) -> None:
    server = SmtpServer()  # not started yet: its port refuses connections
    rt = smtp_rt(make_rt, server.port)
    launch(rt, write_csv([person(i) for i in range(1, 6)]), steps=EMAIL_ONLY)
    down = run(dispatch_once(rt))
    assert down.retried == 5 and down.sent == 0
    clock.advance(timedelta(minutes=2))
    assert run(dispatch_once(rt)).retried == 5  # still down: wait again (backoff), nothing lost
    assert Counter(r.status for r in outbox(rt)) == {"pending": 5}
    server.start()
    try:
        clock.advance(timedelta(minutes=10))
        back = run(dispatch_once(rt))
    finally:
        server.stop()
    assert back.sent == 5
    assert sorted(received_ids(server).values()) == [1] * 5
    assert all(r.attempts == 3 for r in outbox(rt))


def test_smtp_421_and_451_are_retried(
    make_rt: Callable[..., Runtime], smtp_server: SmtpServer, write_csv: Callable[..., Path], clock: FixedClock
) -> None:
    rt = smtp_rt(make_rt, smtp_server.port, concurrency=1)
    launch(rt, write_csv([person(1), person(2)]), steps=EMAIL_ONLY)
    smtp_server.handler.data_replies.extend(["451 4.3.0 Try again later", "421 4.7.0 Too busy, closing"])
    first = run(dispatch_once(rt))
    assert first.retried == 2 and first.sent == 0
    clock.advance(timedelta(minutes=5))
    assert run(dispatch_once(rt)).sent == 2
    assert sorted(received_ids(smtp_server).values()) == [1, 1]
    assert all("4" in (r.last_error or "")[:9] for r in outbox(rt))


def test_twilio_429_and_500_back_off_then_succeed(
    make_rt: Callable[..., Runtime], twilio: TwilioStandIn, write_csv: Callable[..., Path], clock: FixedClock
) -> None:
    rt = make_rt(sms={"transport": "twilio", "account_sid": twilio.account_sid, "auth_token": twilio.auth_token,
                      "api_base_url": twilio.base_url}, dispatch={"retry_base_seconds": 60.0, "concurrency": 1})
    launch(rt, write_csv([person(1)]), steps=SMS_ONLY)
    twilio.next_errors.extend([20429, 20500])
    due_times = []
    for _ in range(2):
        report = run(dispatch_once(rt))
        assert report.retried == 1 and report.sent == 0
        row = outbox(rt)[0]
        assert row.status == "pending" and row.due_at > clock.now()  # backed off, not hammered
        due_times.append(row.due_at - clock.now())
        assert run(dispatch_once(rt)).sent == 0  # nothing due before the backoff ends
        clock.at = row.due_at
    assert due_times[1] > timedelta(seconds=0)
    final = run(dispatch_once(rt))
    assert final.sent == 1
    assert len(twilio.created) == 1
    assert outbox(rt)[0].status == "sent" and outbox(rt)[0].attempts == 3


def test_database_locked_is_retried_never_a_lost_message(
    make_rt: Callable[..., Runtime], smtp_server: SmtpServer, write_csv: Callable[..., Path]
) -> None:
    """Another connection holds the write lock for a while; every dispatcher transaction that hits
    it ("database is locked" on SQLite, lock_not_available on PostgreSQL) is retried."""
    rt = smtp_rt(make_rt, smtp_server.port)
    launch(rt, write_csv([person(i) for i in range(1, 9)]), steps=EMAIL_ONLY)
    rt = smtp_rt(make_rt, smtp_server.port)  # a fresh engine with a short busy timeout
    rt.config.database.busy_timeout_ms = 50
    if rt.engine.dialect.name == "postgresql":
        @event.listens_for(rt.engine, "connect")
        def short_lock_timeout(dbapi_conn: object, _record: object) -> None:
            cur = dbapi_conn.cursor()  # type: ignore[attr-defined]
            cur.execute("SET lock_timeout = '50ms'")
            cur.close()
            dbapi_conn.commit()  # type: ignore[attr-defined]
    else:
        from orchestrator.store.db import make_engine

        rt.__dict__["engine"] = make_engine(rt.config.database_url, busy_timeout_ms=50)
    locked, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        blocker = make_rt().engine
        with blocker.connect() as conn:
            if blocker.dialect.name == "postgresql":
                conn.execute(text("LOCK TABLE outbox IN ACCESS EXCLUSIVE MODE"))
            else:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                conn.execute(text("UPDATE outbox SET attempts = attempts"))
            locked.set()
            release.wait(30)
            conn.rollback()

    before = sum(s.value for m in metrics.DB_RETRIES.collect() for s in m.samples if s.name.endswith("_total"))
    holder = threading.Thread(target=hold_lock)
    holder.start()
    assert locked.wait(30)
    timer = threading.Timer(0.8, release.set)
    timer.start()
    try:
        report = run(dispatch_once(rt))
    finally:
        release.set()
        holder.join(30)
        timer.cancel()
        rt.engine.dispose()
    after = sum(s.value for m in metrics.DB_RETRIES.collect() for s in m.samples if s.name.endswith("_total"))
    assert after > before  # the lock was really hit, and retried
    assert report.sent == 8
    assert sorted(received_ids(smtp_server).values()) == [1] * 8


def test_concurrent_dispatchers_in_one_process_never_send_twice(
    make_rt: Callable[..., Runtime], smtp_server: SmtpServer, write_csv: Callable[..., Path]
) -> None:
    rt = smtp_rt(make_rt, smtp_server.port, batch_size=7, concurrency=4)
    launch(rt, write_csv([person(i) for i in range(1, 61)]), steps=EMAIL_ONLY)

    async def three() -> list[DispatchReport]:
        workers = [Dispatcher(rt) for _ in range(3)]
        try:
            return list(await asyncio.gather(*(w.run_once() for w in workers)))
        finally:
            for w in workers:
                await w.close()

    reports = run(three())
    assert sum(r.sent for r in reports) == 60
    assert sorted(received_ids(smtp_server).values()) == [1] * 60
