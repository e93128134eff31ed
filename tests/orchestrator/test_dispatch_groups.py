"""The dispatcher's mini-batches: a group of rows is re-checked and marked in one transaction just
before its sends, "sent" results are written behind in flushes. Pinned against the group-of-one
path (``group_size = 1``: one re-check, one mark, one flush per message, the old per-message
shape), and against the guarantees the module docstring states."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import Session, select

from orchestrator.consent.service import key_of, suppress
from orchestrator.delivery.worker import Dispatcher, DispatchReport
from orchestrator.domain.message import OutboundMessage, SendResult
from orchestrator.domain.model import Channel
from orchestrator.runtime import Runtime
from orchestrator.store.models import Contact, Enrolment, OutboxMessage
from tests.support.factories import launch, person, run


def run_once_and_close(dispatcher: Dispatcher) -> DispatchReport:
    async def go() -> DispatchReport:
        try:
            return await dispatcher.run_once()
        finally:
            await dispatcher.close()

    return run(go())


BOTH_NOW = [{"day": 0, "channel": "email", "template": "reconsent"},
            {"day": 0, "channel": "sms", "template": "reconsent"}]
EMAIL_ONLY = BOTH_NOW[:1]
COLUMNS = ("status", "attempts", "skip_reason", "message_id", "provider_id", "provider_status", "template_version",
           "locale", "claimed_by", "claimed_until", "send_started_at", "first_attempt_at", "sent_at", "due_at")


class Recorder:
    """Accepts every message; ``on_send`` runs before each acceptance."""

    def __init__(self, channel: Channel, on_send: Callable[[OutboundMessage], None] | None = None,
                 provider_id: Callable[[OutboundMessage], str] | None = None) -> None:
        self.channel = channel
        self.sent: list[OutboundMessage] = []
        self.on_send = on_send
        self.provider_id = provider_id or (lambda m: f"rec-{m.idempotency_key}")

    async def send(self, message: OutboundMessage) -> SendResult:
        if self.on_send:
            self.on_send(message)
        self.sent.append(message)
        return SendResult(provider_id=self.provider_id(message))

    async def close(self) -> None:
        pass


def rt_with(make_rt: Callable[..., Runtime], **dispatch: Any) -> Runtime:
    return make_rt(dispatch={"batch_size": 50, **dispatch})


def snapshot(rt: Runtime) -> list[dict[str, Any]]:
    with Session(rt.engine) as s:
        return [{c: getattr(r, c) for c in ("id", *COLUMNS)} for r in s.exec(select(OutboxMessage).order_by(OutboxMessage.id))]


def restore(rt: Runtime, rows: list[dict[str, Any]]) -> None:
    with Session(rt.engine) as s:
        for row in rows:
            s.execute(update(OutboxMessage).where(OutboxMessage.id == row["id"])  # type: ignore[arg-type]
                      .values({c: row[c] for c in COLUMNS}))
        s.commit()


def dispatch_with(rt: Runtime) -> tuple[DispatchReport, list[tuple[str, str, str]]]:
    channels = {c: Recorder(c) for c in Channel}
    dispatcher = Dispatcher(rt, channels)  # type: ignore[arg-type]

    report = run_once_and_close(dispatcher)
    sent = sorted((m.channel.value, m.recipient, m.text) for ch in channels.values() for m in ch.sent)
    return report, sent


@pytest.mark.parametrize("group_size", [2, 5, 32])
def test_groups_write_what_one_message_at_a_time_writes(
    make_rt: Callable[..., Runtime], write_csv: Callable[..., Path], group_size: int
) -> None:
    """Same messages, same rows (status, skip reasons, Message-IDs, results) as groups of one, with
    suppressed, answered and erased people spread over the groups."""
    rt = rt_with(make_rt, group_size=1, concurrency=3)
    launch(rt, write_csv([person(i) for i in range(1, 14)]), steps=BOTH_NOW)
    with Session(rt.engine) as s:
        contacts = {c.external_id: c for c in s.exec(select(Contact))}
        now = rt.clock.now()
        for n in (2, 7):
            suppress(s, key_of(contacts[f"C-{n}"], Channel.EMAIL), Channel.EMAIL.value, "unsubscribed", "test", now)
        suppress(s, key_of(contacts["C-5"], Channel.SMS), Channel.SMS.value, "unsubscribed", "test", now)
        answered = s.exec(select(Enrolment).where(Enrolment.contact_id == contacts["C-11"].id)).one()
        answered.state, answered.answered_at = "confirmed", now
        s.add(answered)
        erased = contacts["C-9"]
        erased.email, erased.phone, erased.erased_at = None, None, now
        s.add(erased)
        s.commit()
    before = snapshot(rt)
    reference_report, reference_sent = dispatch_with(rt)
    reference = snapshot(rt)
    assert reference_report.sent == 26 - 2 - 1 - 2 - 2 and reference_report.skipped  # the mix is really there

    restore(rt, before)
    grouped_report, grouped_sent = dispatch_with(rt_with(make_rt, group_size=group_size, concurrency=3))
    assert grouped_sent == reference_sent
    assert snapshot(rt) == reference
    assert (grouped_report.sent, grouped_report.skipped) == (reference_report.sent, reference_report.skipped)


def test_an_unsubscribe_committed_during_a_group_stops_the_next_group_not_its_own(
    make_rt: Callable[..., Runtime], write_csv: Callable[..., Path]
) -> None:
    """Rows 1-3 form the first group, 4-6 the second: the re-check of a group is one query, run
    once the previous group has been handed over."""
    rt = rt_with(make_rt, group_size=3, concurrency=1)
    launch(rt, write_csv([person(i) for i in range(1, 7)]), steps=EMAIL_ONLY)

    def unsubscribe_2_and_5(message: OutboundMessage) -> None:
        if message.recipient != "person1@example.org":
            return
        with Session(rt.engine) as s:
            for n in (2, 5):
                c = s.exec(select(Contact).where(Contact.external_id == f"C-{n}")).one()
                suppress(s, key_of(c, Channel.EMAIL), Channel.EMAIL.value, "unsubscribed", "test", rt.clock.now())
            s.commit()

    channels = {c: Recorder(c, on_send=unsubscribe_2_and_5) for c in Channel}
    dispatcher = Dispatcher(rt, channels)  # type: ignore[arg-type]

    report = run_once_and_close(dispatcher)
    sent = [m.recipient for m in channels[Channel.EMAIL].sent]
    # 2 was re-checked with its group before the unsubscribe: sent; 5's group was re-checked after: stopped
    assert sent == [f"person{n}@example.org" for n in (1, 2, 3, 4, 6)]
    assert report.sent == 5 and dict(report.skipped) == {"suppressed": 1}


def test_a_graceful_stop_undoes_the_mark_of_rows_not_handed_over(
    make_rt: Callable[..., Runtime], write_csv: Callable[..., Path]
) -> None:
    rt = rt_with(make_rt, group_size=5, concurrency=1)
    launch(rt, write_csv([person(i) for i in range(1, 11)]), steps=EMAIL_ONLY)
    before = {r["id"]: r for r in snapshot(rt)}
    dispatcher: Dispatcher

    def stop_after_two(message: OutboundMessage) -> None:
        if len(channels[Channel.EMAIL].sent) == 1:  # this is the second send
            dispatcher.stopping = True

    channels = {c: Recorder(c, on_send=stop_after_two) for c in Channel}
    dispatcher = Dispatcher(rt, channels)  # type: ignore[arg-type]

    report = run_once_and_close(dispatcher)
    assert report.sent == 2
    rows = snapshot(rt)
    assert [r["status"] for r in rows] == ["sent"] * 2 + ["pending"] * 8
    # rows 3-5 were marked with the first group, never handed over: exactly as before the claim
    assert rows[2:] == [before[r["id"]] for r in rows[2:]]


def test_a_row_the_database_refuses_does_not_take_its_flush_down(
    make_rt: Callable[..., Runtime], write_csv: Callable[..., Path]
) -> None:
    """Two messages get the same provider id (unique): the first is recorded, the second keeps its
    mark (sent again after the lease, never lost), every other result of the flush is recorded."""
    rt = rt_with(make_rt, group_size=8, concurrency=8)
    launch(rt, write_csv([person(i) for i in range(1, 7)]), steps=EMAIL_ONLY)
    same = {"person2@example.org", "person4@example.org"}
    channels = {c: Recorder(c, provider_id=lambda m: "dup" if m.recipient in same else f"ok-{m.recipient}")
                for c in Channel}
    dispatcher = Dispatcher(rt, channels)  # type: ignore[arg-type]

    report = run_once_and_close(dispatcher)
    assert report.sent == 5
    rows = snapshot(rt)
    assert [r["status"] for r in rows] == ["sent"] * 3 + ["sending"] + ["sent"] * 2
    assert rows[3]["send_started_at"] is not None and rows[3]["attempts"] == 1


def test_results_waiting_for_their_commit_are_bounded_by_the_window(
    make_rt: Callable[..., Runtime], write_csv: Callable[..., Path]
) -> None:
    """With the recorder stuck, sends stop after concurrency + group_size messages (the most a
    crash can duplicate); once it commits, everything goes."""
    rt = rt_with(make_rt, group_size=4, concurrency=2)
    launch(rt, write_csv([person(i) for i in range(1, 21)]), steps=EMAIL_ONLY)
    channels = {c: Recorder(c) for c in Channel}
    dispatcher = Dispatcher(rt, channels)  # type: ignore[arg-type]
    stuck = threading.Event()
    record = dispatcher._record_sent

    def slow_record(batch: Any) -> Any:
        stuck.wait(30)
        return record(batch)

    dispatcher._record_sent = slow_record  # type: ignore[method-assign]

    async def go() -> tuple[int, DispatchReport]:
        task = asyncio.create_task(dispatcher.run_once())
        try:
            for _ in range(300):
                if len(channels[Channel.EMAIL].sent) >= 6:
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.3)  # would keep sending if nothing held it back
            handed = len(channels[Channel.EMAIL].sent)
            stuck.set()
            return handed, await task
        finally:
            stuck.set()
            await dispatcher.close()

    handed, report = run(go())
    assert handed == 2 + 4
    assert report.sent == 20
    assert {r["status"] for r in snapshot(rt)} == {"sent"}
