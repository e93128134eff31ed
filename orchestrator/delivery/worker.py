"""The outbox worker [O2]: claim due rows, re-check everything, render, sign, send, record.

Exactly-once as far as a protocol without idempotency keys allows:

1. **claim** — a batch of due rows moves to ``sending`` with a lease (``claimed_by``,
   ``claimed_until``) in one short transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), read per
   running campaign from the index in (due_at, id) order, each claim starting at the next running
   campaign in turn (campaigns running together share the workers). A live
   worker renews its leases every third of ``dispatch.lease_seconds`` (heartbeat), so only a dead
   worker's rows expire and are taken over.
2. **re-check and mark**, one *group* (``dispatch.group_size`` rows) at a time, in one transaction:
   one query reads every row's facts, skips/deferrals/pauses are written, and the rest get
   ``send_started_at`` (with the deterministic Message-ID) — committed before any of them is handed
   to the provider. Rows claimed but not marked have certainly not been sent: a graceful stop
   releases them, a takeover sends them without any risk. Rows marked but not handed over when the
   worker stops gracefully get their mark undone exactly. A row whose message cannot be built (a
   template error no check at create or launch could foresee) is failed with the reason, never put
   back in the queue: one run never retries what failed in it, so ``dispatch --once`` always ends;
   too many such failures pause the campaign (``dispatch.failure_pause_threshold``).
3. **send**, then **record** the result: "sent" results are written behind, by one flush at a time
   (one executemany UPDATE, one transaction, in the record thread; the next flush starts as soon as
   it commits), retrying on "database is locked" and friends (a send that happened is never
   forgotten because the database was busy).

A row found ``sending`` with an expired lease *and* the mark set has an unknown outcome: its worker
died between steps 2 and 3. It is sent again (no message is ever lost) and counted
(``reconsent_unknown_outcome_resends``); it is a duplicate only if the provider accepted it before
the crash. **The duplicate window**: a message holds a slot of the recorder's window from just
before it is handed to the channel until its "sent" is committed, and the window has
``dispatch.concurrency + dispatch.group_size`` slots; so a crash duplicates at most that many
messages (8 + 32 by default). In practice it is the results waiting for the flush in progress (a
result lingers at most ``RECORD_LINGER_SECONDS`` for others to share its commit): the SIGKILL test
(3 workers, 24 kills, 2,000 messages) sees 1–2 duplicates per kill, against ~0.3 when every result
had a transaction of its own. The deterministic Message-ID lets anyone downstream recognise a
duplicate.

Hot path. The re-check before a send (row still ours, campaign running, request still pending,
address not suppressed for the channel, address present, deadline not passed) is one indexed query
per group (``id IN (…)``, primary keys and the suppression list's key), in the transaction of the
group's mark, run once the previous group has been handed over — so between a row's re-check and
its send there are at most ``group_size`` messages of its own group and the previous group's last
``concurrency`` sends [R3, R7, O3]; an unsubscribe, an answer or a pause committed before a group's
re-check stops every message of the group. Messages are built on the event loop one at a time just
before their send (CPU work in a thread would hold the GIL against the sends); database work takes
one thread hop per group and per flush. Statements are prepared Core statements on a bare
connection; campaign plans are parsed once per worker.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, case, func, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from orchestrator.campaigns.service import message_context
from orchestrator.consent.service import key_of, withdraw
from orchestrator.delivery.channels import MessageChannel, build_channels
from orchestrator.domain.campaign import CampaignPlan
from orchestrator.domain.clock import Clock, SystemClock, as_utc
from orchestrator.domain.eligibility import SendFacts, skip_reason
from orchestrator.domain.message import OutboundMessage
from orchestrator.domain.model import CampaignState, Channel, DeliveryState
from orchestrator.domain.windows import SendWindow
from orchestrator.errors import PermanentSendError, TransientSendError
from orchestrator.ops import metrics
from orchestrator.rendering.checks import BUILD_FAILURE, describe_error
from orchestrator.rendering.links import LinkClaims
from orchestrator.rendering.template_store import load_pinned
from orchestrator.runtime import Runtime
from orchestrator.store.db import (
    is_transient_db_error,
    make_engine,
    run_in_connection,
    run_in_transaction,
)
from orchestrator.store.models import Campaign, Contact, Enrolment, OutboxMessage, SuppressionEntry

log = logging.getLogger("reconsent.dispatch")
MAX_BACKOFF = timedelta(hours=6)
#: how long a "sent" result may wait for others to share its commit (fewer are enough: group_size)
RECORD_LINGER_SECONDS = 0.005
TWILIO_MAX_VALIDITY = 36000


@dataclass
class DispatchReport:
    sent: int = 0
    failed: int = 0
    retried: int = 0
    deferred: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        skipped = ", ".join(f"{n} {reason}" for reason, n in sorted(self.skipped.items())) or "none"
        return (f"sent {self.sent}, failed {self.failed}, retry later {self.retried}, "
                f"waiting for send window {self.deferred}, skipped: {skipped}")

    def add(self, other: DispatchReport) -> None:
        self.sent += other.sent
        self.failed += other.failed
        self.retried += other.retried
        self.deferred += other.deferred
        self.skipped.update(other.skipped)


def window_for(rt: Runtime, channel: Channel) -> SendWindow:
    w = rt.config.windows
    preset = w.sms if channel is Channel.SMS else w.email
    if preset == "custom":
        return SendWindow.parse(w.custom_start, w.custom_end, w.custom_days, w.holiday_country)
    return SendWindow.preset(preset)


@dataclass
class _Claim:
    """One batch: row id → True when that row was already marked by a dead worker (unknown outcome).

    ``marked``: rows this worker marked, with their (send_started_at, first_attempt_at, message_id)
    before the mark, so a marked row never handed to the channel can be given back exactly as it was.
    ``started``: rows handed to the channel. ``unrecorded``: of those, rows whose result is not
    committed yet (the claim stays leased, and renewed, until it is 0)."""

    claim_id: str
    rows: dict[int, bool]
    started: set[int] = field(default_factory=set)
    marked: dict[int, tuple[Any, Any, Any]] = field(default_factory=dict)
    unrecorded: int = 0
    finished: bool = False
    #: marked rows whose message could not be built, their failure not written yet: (row, campaign, reason)
    unbuilt: list[tuple[int, int, str]] = field(default_factory=list)
    #: (campaign, reason) → messages that could not be built, logged once per batch
    build_errors: Counter[tuple[int, str]] = field(default_factory=Counter)


@dataclass
class _Prepared:
    """What one group's re-check found (filled in a worker thread, applied on the event loop)."""

    ready: list[_Ready] = field(default_factory=list)  # marked: to build and send
    done: list[int] = field(default_factory=list)  # skipped, deferred, paused or no longer ours
    skipped: Counter[str] = field(default_factory=Counter)
    deferred: int = 0


@dataclass
class _Ready:
    """A marked row and what its message is built from (the facts row of the group's query)."""

    row_id: int
    facts: Any
    plan: CampaignPlan
    window: SendWindow
    tz: str
    address: str
    deadline: datetime
    before: tuple[Any, Any, Any]  # send_started_at, first_attempt_at, message_id before the mark
    code: str  # the row's short code (in the Message-ID of the mark and in the message's short link)

    @property
    def unknown(self) -> bool:
        """Marked by a worker that died before recording the result."""
        return self.before[0] is not None


@dataclass
class _Sent:
    row_id: int
    values: dict[str, Any]
    report: DispatchReport
    claim: _Claim


class _Recorder:
    """Write-behind results: sends hand their "sent" here and move on; one flush at a time writes
    everything waiting with one executemany UPDATE in one transaction, in the record thread, and
    the next flush starts as soon as it commits. ``window`` bounds the messages handed to the
    provider whose result is not committed (acquired before a send, released after the commit):
    the most a crash can duplicate."""

    def __init__(self, dispatcher: Dispatcher, window: int, enough: int) -> None:
        self.dispatcher = dispatcher
        self.loop = asyncio.get_running_loop()
        self.window = asyncio.Semaphore(window)
        self.enough = enough
        self.waiting: list[_Sent] = []
        self.flushing: asyncio.Task[None] | None = None
        self.now = asyncio.Event()  # flush without lingering: enough results, or someone waits

    async def begin(self, claim: _Claim) -> None:
        if self.window.locked():
            self.now.set()  # a send waits for a slot: free the slots now
        await self.window.acquire()
        claim.unrecorded += 1

    def end(self, claim: _Claim) -> None:
        self.window.release()
        claim.unrecorded -= 1
        if claim.finished and claim.unrecorded == 0:
            self.dispatcher._active.pop(claim.claim_id, None)

    def add(self, sent: _Sent) -> None:
        self.waiting.append(sent)
        if len(self.waiting) >= self.enough:
            self.now.set()
        if self.flushing is None or self.flushing.done():
            self.flushing = self.loop.create_task(self._flush())

    async def _flush(self) -> None:
        d = self.dispatcher
        while self.waiting:
            if not self.now.is_set():
                # a result waits a few milliseconds for others to share its transaction: at a
                # provider's pace results come one by one, and one commit each costs as much CPU as
                # the rest of the pipeline
                try:
                    await asyncio.wait_for(self.now.wait(), RECORD_LINGER_SECONDS)
                except TimeoutError:
                    pass
            self.now.clear()
            batch, self.waiting = self.waiting, []
            try:
                recorded = await self.loop.run_in_executor(d._record_pool, d._record_sent, batch)
            except Exception:
                log.exception("could not record %d sent message(s); they will be sent again after the lease",
                              len(batch))
            else:
                for sent in recorded:
                    sent.report.sent += 1
            finally:
                for sent in batch:
                    self.end(sent.claim)

    async def wait(self) -> None:
        """Until every result handed over so far is committed (or given up)."""
        while self.flushing is not None and not self.flushing.done():
            self.now.set()
            await asyncio.shield(self.flushing)


class Dispatcher:
    """One worker. ``lease_clock`` times claims (a real clock in a long-running worker: leases must
    expire while business time, ``rt.clock``, may be frozen by RECONSENT_NOW); tests pass a
    controllable one."""

    def __init__(self, rt: Runtime, channels: dict[Channel, MessageChannel] | None = None, *,
                 lease_clock: Clock | None = None) -> None:
        self.rt = rt
        self.channels = channels if channels is not None else build_channels(rt.config)
        self.windows = {c: window_for(rt, c) for c in Channel}
        self.lease_clock: Clock = lease_clock or SystemClock()
        self.worker_id = uuid.uuid4().hex[:12]
        self.stopping = False
        self._active: dict[str, _Claim] = {}
        self._batches = 0
        # Results and lease renewals get their own threads: they must never queue behind the
        # preparation (rendering, "database is locked" waits) of the next messages.
        self._record_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="record")
        self._heartbeat_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="heartbeat")
        self._record_engine: Engine | None = None
        self._plans: dict[tuple[int, Any], CampaignPlan] = {}
        self._recorder: _Recorder | None = None

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.rt.config.dispatch.lease_seconds)

    # -- claiming -------------------------------------------------------------------------------
    def claim(self) -> tuple[str, list[int]]:
        """Claim a batch of due rows (and rows whose lease expired); returns (claim id, row ids)."""
        claim = self._claim()
        return claim.claim_id, sorted(claim.rows)

    def _claim(self) -> _Claim:
        cfg = self.rt.config.dispatch
        now = self.rt.clock.now()
        lease_now = self.lease_clock.now()
        self._batches += 1
        claim_id = f"{self.worker_id}-{self._batches}"
        # Per running campaign, two statements, each walking ix_outbox_due (status, campaign_id,
        # due_at, id) in order: first rows whose lease expired (a dead worker's; few), then due rows.
        # Keyed by campaign so that the due rows of a paused or draft campaign (a million of them,
        # say) are never walked past on every claim; no ``OR`` (SQLite would merge two index scans
        # and sort every due row). Each claim starts at the next running campaign in turn, so
        # campaigns running at the same time share the workers.
        postgres = self.rt.engine.dialect.name == "postgresql"

        def take(session: Session, due: Any, limit: int) -> list[tuple[int, Any, Any]]:
            due = due.order_by(OutboxMessage.due_at, OutboxMessage.id).limit(limit)
            if postgres:
                due = due.with_for_update(skip_locked=True, of=OutboxMessage)  # type: ignore[arg-type]
            return list(session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(due.scalar_subquery()))  # type: ignore[union-attr]
                .values(status=DeliveryState.SENDING.value, claimed_by=claim_id,
                        claimed_until=lease_now + self.lease, updated_at=now)
                .returning(OutboxMessage.id, OutboxMessage.send_started_at, OutboxMessage.attempts)  # type: ignore[arg-type]
            ).all())

        def work(session: Session) -> list[tuple[int, Any, Any]]:
            running = list(session.execute(
                select(Campaign.id).where(Campaign.state == CampaignState.RUNNING.value).order_by(Campaign.id)
            ).scalars())
            if not running:
                return []
            turn = self._batches % len(running)
            running = running[turn:] + running[:turn]
            expired = [select(OutboxMessage.id).where(
                OutboxMessage.status == DeliveryState.SENDING.value, OutboxMessage.campaign_id == campaign_id,
                OutboxMessage.claimed_until < lease_now) for campaign_id in running]  # type: ignore[operator]
            due = [select(OutboxMessage.id).where(
                OutboxMessage.status == DeliveryState.PENDING.value, OutboxMessage.campaign_id == campaign_id,
                OutboxMessage.due_at <= now) for campaign_id in running]  # type: ignore[operator]
            got: list[tuple[int, Any, Any]] = []
            for query in expired + due:
                if len(got) >= cfg.batch_size:
                    break
                got += take(session, query, cfg.batch_size - len(got))
            return got

        got = run_in_transaction(self.rt.engine, work)
        claim = _Claim(claim_id, {row_id: started is not None for row_id, started, _ in got})
        if claim.rows:
            self._active[claim_id] = claim
            taken = sum(1 for _, started, attempts in got if attempts and started is not None)
            if taken:
                metrics.TAKEOVERS.inc(taken)
                log.warning("took over %d row(s) handed to the provider by a worker that stopped", taken)
        return claim

    def renew_leases(self) -> int:
        """Heartbeat: push the lease of every row this worker holds (returns rows renewed)."""
        if not self._active:
            return 0
        until = self.lease_clock.now() + self.lease
        ids = list(self._active)

        def work(session: Session) -> int:
            result = session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.claimed_by.in_(ids), OutboxMessage.status == DeliveryState.SENDING.value)  # type: ignore[union-attr]
                .values(claimed_until=until)
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

        return run_in_transaction(self.rt.engine, work)

    def release(self, claim: _Claim) -> int:
        """Give back rows of ``claim`` this worker has not handed to the provider (graceful stop).
        Rows it marked but never handed over get their mark undone exactly (attempt count, times):
        they were certainly not sent."""
        todo = [i for i in claim.rows if i not in claim.started]
        if not todo:
            return 0
        unmarked = [i for i in todo if i not in claim.marked]
        restore = [{"row_id": i, "claim_id": claim.claim_id, "prev_started": claim.marked[i][0],
                    "prev_first": claim.marked[i][1], "prev_message_id": claim.marked[i][2]}
                   for i in todo if i in claim.marked]

        def work(conn: Connection) -> int:
            n = 0
            if unmarked:
                t = OutboxMessage.__table__.c  # type: ignore[attr-defined]
                n += int(conn.execute(
                    update(OutboxMessage.__table__)  # type: ignore[arg-type]
                    .where(t.id.in_(unmarked), t.claimed_by == claim.claim_id,
                           t.status == DeliveryState.SENDING.value)
                    .values(status=DeliveryState.PENDING.value, claimed_by=None, claimed_until=None)
                ).rowcount or 0)
            if restore:
                n += int(conn.execute(self._unmark_stmt, restore).rowcount or 0)
            return n

        n = run_in_connection(self.rt.engine, work)
        if n:
            log.info("released %d claimed row(s) not yet sent", n)
        return n

    def _finish_claim(self, claim: _Claim) -> None:
        """The claim's lease is no longer renewed once its released and every result is committed."""
        claim.finished = True
        if claim.unrecorded == 0:
            self._active.pop(claim.claim_id, None)

    # -- running --------------------------------------------------------------------------------
    async def run_once(self, progress: Any = None) -> DispatchReport:
        """Send everything due now, then return (stops early, releasing claims, when ``stopping``)."""
        report = DispatchReport()
        heartbeat = asyncio.create_task(self._heartbeat())
        try:
            try:
                while not self.stopping and await self.dispatch_batch(report, progress):
                    pass
            finally:
                await self.flush()
        finally:
            heartbeat.cancel()
            try:
                await heartbeat
            except asyncio.CancelledError:
                pass
        return report

    async def dispatch_batch(self, report: DispatchReport, progress: Any = None) -> int:
        """Claim one batch and send it (results may still be waiting for their commit: ``flush``);
        returns the number of rows claimed (0: nothing due)."""
        claim = await asyncio.to_thread(self._claim)
        if not claim.rows:
            return 0
        claimed = len(claim.rows)
        try:
            errors = await self._send_rows(claim, sorted(claim.rows), report, progress)
        finally:
            # every send has been handed over or given up before the claim is released
            await asyncio.to_thread(self.release, claim)
            self._finish_claim(claim)
        for error in errors:
            if not isinstance(error, Exception):
                raise error
            log.error("outbox row left for a later attempt: %s", type(error).__name__, exc_info=error)
        return claimed

    async def flush(self) -> None:
        """Until every result handed to the write-behind recorder is committed."""
        if self._recorder is not None and self._recorder.loop is asyncio.get_running_loop():
            await self._recorder.wait()

    def _recorder_here(self) -> _Recorder:
        if self._recorder is None or self._recorder.loop is not asyncio.get_running_loop():
            cfg = self.rt.config.dispatch
            self._recorder = _Recorder(self, cfg.concurrency + cfg.group_size, cfg.group_size)
        return self._recorder

    async def _send_rows(self, claim: _Claim, ids: list[int], report: DispatchReport,
                         progress: Any = None) -> list[BaseException]:
        """The pipeline for some rows of ``claim``: each group of ``dispatch.group_size`` rows is
        re-checked and marked (one transaction, one worker-thread hop) once the previous group has
        been handed over, then its messages are built and handed to their channel with at most
        ``dispatch.concurrency`` sends in flight (the previous group's last sends overlap the next
        group's re-check); "sent" results go to the write-behind recorder."""
        cfg = self.rt.config.dispatch
        recorder = self._recorder_here()
        in_flight = asyncio.Semaphore(cfg.concurrency)
        tasks: list[asyncio.Task[None]] = []
        try:
            for start in range(0, len(ids), cfg.group_size):
                if self.stopping:
                    break
                if claim.unbuilt:  # written before the next re-check, which then sees a pause they caused
                    await self._record_unbuilt(claim, report)
                prepared = await self._prepare_group(claim, ids[start:start + cfg.group_size])
                self._apply(claim, prepared, report, progress)
                for ready in prepared.ready:
                    await recorder.begin(claim)
                    await in_flight.acquire()
                    if self.stopping:  # marked but not handed over: the claim's release undoes the mark
                        in_flight.release()
                        recorder.end(claim)
                        break
                    tasks.append(asyncio.create_task(
                        self._send_one(claim, ready, report, in_flight, recorder, progress)))
        finally:
            results = await asyncio.gather(*tasks, return_exceptions=True)
        if claim.unbuilt:
            await self._record_unbuilt(claim, report)
        for (campaign_id, reason), n in sorted(claim.build_errors.items()):
            log.error("campaign %s: %d message(s) could not be built, marked failed: %s", campaign_id, n, reason)
        claim.build_errors.clear()
        return [e for e in results if e is not None]

    async def _record_unbuilt(self, claim: _Claim, report: DispatchReport) -> None:
        """Write the failures of the claim's rows whose message could not be built (one transaction):
        they are failed for good, never sent, never retried in this run or any other [issue 12]."""
        unbuilt, claim.unbuilt = claim.unbuilt, []
        paused = await asyncio.to_thread(run_in_connection, self.rt.engine,
                                         functools.partial(self._write_unbuilt, claim.claim_id, unbuilt))
        for row_id, campaign_id, reason in unbuilt:
            claim.rows.pop(row_id, None)  # nothing left for the claim's release to give back
            claim.marked.pop(row_id, None)
            claim.build_errors[(campaign_id, reason)] += 1
        report.failed += len(unbuilt)
        for campaign_id, why in paused:
            log.warning("campaign %s %s", campaign_id, why)

    def _apply(self, claim: _Claim, prepared: _Prepared, report: DispatchReport, progress: Any) -> None:
        for row_id in prepared.done:
            claim.rows.pop(row_id, None)
        for ready in prepared.ready:
            claim.marked[ready.row_id] = ready.before
        report.skipped.update(prepared.skipped)
        report.deferred += prepared.deferred
        if progress and prepared.done:
            progress(len(prepared.done))

    async def _prepare_group(self, claim: _Claim, ids: list[int]) -> _Prepared:
        return await asyncio.to_thread(run_in_connection, self.rt.engine,
                                       functools.partial(self._recheck_and_mark, claim.claim_id, ids))

    async def _send_one(self, claim: _Claim, ready: _Ready, report: DispatchReport, in_flight: asyncio.Semaphore,
                        recorder: _Recorder, progress: Any) -> None:
        handed = False
        row_id = ready.row_id
        try:
            try:
                # built here, on the event loop, one message at a time: CPU work in a thread would
                # hold the GIL for whole switch intervals while sends wait for it
                message = self.build_message(ready.facts, ready.facts, ready.plan, ready.deadline, ready.window,
                                             ready.tz, ready.address, code=ready.code)
            except Exception as exc:
                in_flight.release()
                metrics.SENDS.labels(channel=ready.facts.channel, outcome="unbuilt").inc()
                claim.unbuilt.append((row_id, ready.facts.campaign_id, self._build_failure(ready, exc)))
                return
            except BaseException:
                in_flight.release()  # marked, never handed over: the claim's release undoes the mark
                raise
            claim.started.add(row_id)
            if ready.unknown:
                metrics.UNKNOWN_OUTCOME_RESENDS.inc()
                log.warning("outbox row %s was handed to the provider by a worker that died before recording "
                            "the result; sending it again (Message-ID unchanged)", row_id)
            channel = message.channel
            started = time.perf_counter()
            loop = asyncio.get_running_loop()
            try:
                try:
                    result = await self.channels[channel].send(message)
                finally:
                    in_flight.release()
            except TransientSendError as exc:
                metrics.SENDS.labels(channel=channel.value, outcome="transient").inc()
                await loop.run_in_executor(self._record_pool, self._record_transient, row_id, claim.claim_id, exc, report)
                return
            except PermanentSendError as exc:
                metrics.SENDS.labels(channel=channel.value, outcome="permanent").inc()
                await loop.run_in_executor(self._record_pool, self._record_permanent, row_id, claim.claim_id, exc, report)
                return
            latency, sends = _sent_metrics(channel)
            latency.observe(time.perf_counter() - started)
            sends.inc()
            values: dict[str, Any] = {
                "row_id": row_id, "template_version": message.meta.get("template_version"),
                "locale": message.meta.get("locale"), "provider_status": result.status,
                "provider_id": result.provider_id or None,
            }
            recorder.add(_Sent(row_id, values, report, claim))
            handed = True
        finally:
            if not handed:
                recorder.end(claim)
            if progress:
                progress(1)

    async def process(self, claim_id: str, row_id: int, report: DispatchReport, *, claim: _Claim | None = None) -> None:
        """One row of a claim through the same pipeline (a group of one), its result committed on return."""
        claim = claim or self._active.get(claim_id) or _Claim(claim_id, {row_id: False})
        errors = await self._send_rows(claim, [row_id], report)
        await self.flush()
        for error in errors:
            raise error

    async def _heartbeat(self) -> None:
        interval = max(0.2, self.rt.config.dispatch.lease_seconds / 3)
        while True:
            await asyncio.sleep(interval)
            try:
                await asyncio.get_running_loop().run_in_executor(self._heartbeat_pool, self.renew_leases)
            except Exception:
                log.exception("could not renew leases")

    async def run_forever(self, stop: asyncio.Event) -> DispatchReport:
        """Poll until ``stop`` is set; then finish the sends in flight, release the rest, return."""
        total = DispatchReport()

        async def watch() -> None:
            await stop.wait()
            self.stopping = True

        watcher = asyncio.create_task(watch())
        try:
            while not stop.is_set():
                try:
                    total.add(await self.run_once())
                except Exception:
                    log.exception("dispatch round failed; retrying after the poll interval")
                try:
                    await asyncio.wait_for(stop.wait(), timeout=self.rt.config.dispatch.poll_seconds)
                except TimeoutError:
                    pass
        finally:
            watcher.cancel()
        return total

    async def close(self) -> None:
        await self.flush()  # results waiting for their commit are recorded before the pools go
        for channel in self.channels.values():
            await channel.close()
        self._record_pool.shutdown(wait=True)
        self._heartbeat_pool.shutdown(wait=True)
        if self._record_engine is not None and self._record_engine is not self.rt.engine:
            self._record_engine.dispose()

    @property
    def record_engine(self) -> Engine:
        """Where results are recorded. On PostgreSQL a pool whose commits do not wait for the WAL
        flush: the crash-to-commit window (the only source of duplicates) shrinks to one network
        round trip. A database *server* crash may then forget a "sent" — the row keeps its mark and
        is sent again: a possible duplicate, never a loss."""
        if self._record_engine is None:
            cfg = self.rt.config
            if self.rt.engine.dialect.name == "postgresql":
                self._record_engine = make_engine(cfg.database_url, async_commit=True)
            else:
                self._record_engine = self.rt.engine
        return self._record_engine

    # -- one message ----------------------------------------------------------------------------
    @functools.cached_property
    def _send_facts_query(self) -> Any:
        """One row per outbox id of a group: the row, its contact, enrolment and campaign, and whether the
        address is on the suppression list (the key matching the row's channel, as ``key_of``)."""
        key = case((OutboxMessage.channel == Channel.EMAIL.value, Contact.email_key), else_=Contact.phone_key)
        suppressed = (
            select(SuppressionEntry.key)
            .where(SuppressionEntry.key == key, SuppressionEntry.channel == OutboxMessage.channel)
            .exists()
        )
        return (
            select(
                OutboxMessage.id, OutboxMessage.contact_id, OutboxMessage.campaign_id, OutboxMessage.step,
                OutboxMessage.channel, OutboxMessage.template, OutboxMessage.status, OutboxMessage.claimed_by,
                OutboxMessage.send_started_at, OutboxMessage.first_attempt_at, OutboxMessage.message_id,
                Contact.email, Contact.phone, Contact.first_name, Contact.locale, Contact.timezone,
                Contact.erased_at,
                Enrolment.state.label("request_state"),  # type: ignore[attr-defined]
                Enrolment.deadline_at.label("enrolment_deadline_at"),  # type: ignore[union-attr]
                Campaign.state.label("campaign_state"),  # type: ignore[attr-defined]
                Campaign.deadline_at.label("campaign_deadline_at"),  # type: ignore[union-attr]
                Campaign.created_at.label("campaign_created_at"),  # type: ignore[attr-defined]
                suppressed.label("suppressed"),
            )
            .join(Contact, Contact.id == OutboxMessage.contact_id)  # type: ignore[arg-type]
            .join(Enrolment, Enrolment.id == OutboxMessage.enrolment_id)  # type: ignore[arg-type]
            .join(Campaign, Campaign.id == OutboxMessage.campaign_id)  # type: ignore[arg-type]
            .where(OutboxMessage.id.in_(bindparam("row_ids", expanding=True)))  # type: ignore[union-attr]
        )

    # The statements are built once (bind parameters; executemany per group or flush): building a
    # statement costs more CPU than running it on SQLite.
    @functools.cached_property
    def _mark_stmt(self) -> Any:
        t = OutboxMessage.__table__.c  # type: ignore[attr-defined]
        return (
            update(OutboxMessage.__table__)  # type: ignore[arg-type]
            .where(t.id == bindparam("row_id"), t.claimed_by == bindparam("claim_id"),
                   t.status == DeliveryState.SENDING.value)
            .values(message_id=bindparam("message_id", type_=t.message_id.type),
                    first_attempt_at=bindparam("first_attempt_at", type_=t.first_attempt_at.type),
                    attempts=t.attempts + 1,
                    send_started_at=bindparam("send_started_at", type_=t.send_started_at.type))
        )

    @functools.cached_property
    def _unmark_stmt(self) -> Any:
        """A marked row never handed to the channel, back to the queue exactly as before its mark."""
        t = OutboxMessage.__table__.c  # type: ignore[attr-defined]
        return (
            update(OutboxMessage.__table__)  # type: ignore[arg-type]
            .where(t.id == bindparam("row_id"), t.claimed_by == bindparam("claim_id"),
                   t.status == DeliveryState.SENDING.value)
            .values(status=DeliveryState.PENDING.value, claimed_by=None, claimed_until=None,
                    attempts=t.attempts - 1,
                    send_started_at=bindparam("prev_started", type_=t.send_started_at.type),
                    first_attempt_at=bindparam("prev_first", type_=t.first_attempt_at.type),
                    message_id=bindparam("prev_message_id", type_=t.message_id.type))
        )

    @functools.cached_property
    def _sent_stmt(self) -> Any:
        t = OutboxMessage.__table__.c  # type: ignore[attr-defined]
        names = ["template_version", "locale", "provider_status", "sent_at", "updated_at"]
        return (
            update(OutboxMessage.__table__)  # type: ignore[arg-type]
            .where(t.id == bindparam("row_id"),
                   or_(t.status == DeliveryState.SENDING.value, t.status == DeliveryState.PENDING.value))
            .values(status=DeliveryState.SENT.value, claimed_by=None, claimed_until=None, send_started_at=None,
                    # a channel without a provider id keeps the one recorded before, if any
                    provider_id=func.coalesce(bindparam("provider_id", type_=t.provider_id.type), t.provider_id),
                    **{n: bindparam(n, type_=t[n].type) for n in names})
        )

    @staticmethod
    def _by_id(*params: str, **fixed: Any) -> Any:
        """``UPDATE outbox SET <fixed values>, <column> = :<column> … WHERE id = :row_id``."""
        t = OutboxMessage.__table__.c  # type: ignore[attr-defined]
        return (update(OutboxMessage.__table__)  # type: ignore[arg-type]
                .where(t.id == bindparam("row_id"))
                .values(**fixed, **{p: bindparam(p, type_=t[p].type) for p in params}))

    @functools.cached_property
    def _unbuilt_stmt(self) -> Any:
        """A marked row whose message could not be built: failed, with the reason (still ours only)."""
        t = OutboxMessage.__table__.c  # type: ignore[attr-defined]
        return (
            update(OutboxMessage.__table__)  # type: ignore[arg-type]
            .where(t.id == bindparam("row_id"), t.claimed_by == bindparam("claim_id"),
                   t.status == DeliveryState.SENDING.value)
            .values(status=DeliveryState.FAILED.value, claimed_by=None, claimed_until=None, send_started_at=None,
                    last_error=bindparam("last_error", type_=t.last_error.type),
                    updated_at=bindparam("updated_at", type_=t.updated_at.type))
        )

    def _write_unbuilt(self, claim_id: str, unbuilt: list[tuple[int, int, str]], conn: Connection) -> list[tuple[int, str]]:
        """Fail the rows, count them on their campaign, and pause a running campaign whose count since
        launch or the last resume reaches ``dispatch.failure_pause_threshold``; returns the
        (campaign, reason) of each campaign paused."""
        now = self.rt.clock.now()
        conn.execute(self._unbuilt_stmt, [{"row_id": row_id, "claim_id": claim_id, "last_error": reason,
                                           "updated_at": now} for row_id, _, reason in unbuilt])
        per_campaign: dict[int, tuple[int, str]] = {}
        for _, campaign_id, reason in unbuilt:
            per_campaign[campaign_id] = (per_campaign.get(campaign_id, (0, ""))[0] + 1, reason)
        threshold = self.rt.config.dispatch.failure_pause_threshold
        c = Campaign.__table__.c  # type: ignore[attr-defined]
        paused = []
        for campaign_id, (n, last) in sorted(per_campaign.items()):
            total = conn.execute(update(Campaign.__table__).where(c.id == campaign_id)  # type: ignore[arg-type]
                                 .values(build_failures=c.build_failures + n).returning(c.build_failures)).scalar()
            if not threshold or total is None or total < threshold:
                continue
            why = (f"paused by dispatch: {total} message(s) could not be built since launch or the last resume "
                   f"(dispatch.failure_pause_threshold = {threshold}); last: {last}")
            if conn.execute(update(Campaign.__table__)  # type: ignore[arg-type]
                            .where(c.id == campaign_id, c.state == CampaignState.RUNNING.value)
                            .values(state=CampaignState.PAUSED.value, paused_reason=why)).rowcount:
                paused.append((campaign_id, why))
        return paused

    def _build_failure(self, ready: _Ready, exc: Exception) -> str:
        """The reason recorded on a row whose message could not be built: one line, the same for
        every row of the same template, locale and error (so a batch logs it once, with a count)."""
        facts = ready.facts
        try:
            locale = ready.plan.pick_locale(facts.locale)
        except Exception:
            locale = str(facts.locale)
        return f"{BUILD_FAILURE}: {describe_error(exc, facts.template, facts.channel, locale)}"[:500]

    @functools.cached_property
    def _pause_stmt(self) -> Any:
        return self._by_id(status=DeliveryState.PENDING.value, claimed_by=None, claimed_until=None)

    @functools.cached_property
    def _skip_stmt(self) -> Any:
        return self._by_id("updated_at", "skip_reason", status=DeliveryState.SKIPPED.value, claimed_by=None,
                           claimed_until=None)

    @functools.cached_property
    def _defer_stmt(self) -> Any:
        return self._by_id("due_at", status=DeliveryState.PENDING.value, claimed_by=None, claimed_until=None,
                           skip_reason="outside_window")

    def _plan(self, conn: Connection, campaign_id: int, created_at: Any) -> CampaignPlan:
        """The campaign's parsed plan, read and parsed once per worker (a plan never changes after
        the campaign is created; the creation time guards against a reused id), with the sources of
        the imported wording versions it pins handed to the renderer (messages are built on the
        event loop: no query there)."""
        cache_key = (campaign_id, created_at)
        plan = self._plans.get(cache_key)
        if plan is None:
            mapping = conn.execute(select(Campaign.plan).where(Campaign.id == campaign_id)).scalar_one()
            plan = CampaignPlan.from_mapping(mapping, stored=True)
            load_pinned(conn, self.rt.renderer, plan)
            self._plans[cache_key] = plan
        return plan

    def _recheck_and_mark(self, claim_id: str, ids: list[int], conn: Connection) -> _Prepared:
        """One group, one transaction: read every row's facts with one query (primary keys and the
        suppression list's key), decide each row, build the messages, write the skips, deferrals and
        pauses, and mark the rest (one executemany) — an unsubscribe, an answer or a pause committed
        before this query stops every message of the group [R3, R7, O3]."""
        rt = self.rt
        out = _Prepared()
        now = rt.clock.now()
        facts_rows = {f.id: f for f in conn.execute(self._send_facts_query, {"row_ids": ids})}
        paused: list[dict[str, Any]] = []
        skips: list[dict[str, Any]] = []
        defers: list[dict[str, Any]] = []
        marks: list[dict[str, Any]] = []
        stamp = self.lease_clock.now()
        for row_id in ids:
            facts_row = facts_rows.get(row_id)
            if facts_row is None or facts_row.claimed_by != claim_id or facts_row.status != DeliveryState.SENDING.value:
                out.done.append(row_id)
                continue
            channel = Channel(facts_row.channel)
            if facts_row.campaign_state == CampaignState.PAUSED.value:
                # paused after the claim: back to the queue untouched (no skip, no send)
                paused.append({"row_id": row_id})
                out.done.append(row_id)
                continue
            address = facts_row.email if channel is Channel.EMAIL else facts_row.phone
            deadline_at = facts_row.enrolment_deadline_at or facts_row.campaign_deadline_at
            facts = SendFacts(
                campaign_state=facts_row.campaign_state,
                request_state=facts_row.request_state,
                suppressed=bool(facts_row.suppressed),
                has_address=bool(address) and facts_row.erased_at is None,
                deadline=as_utc(deadline_at) if deadline_at else now + timedelta(days=1),
                now=now,
            )
            reason = skip_reason(facts)
            if reason is not None:
                if DeliveryState.can_move(DeliveryState(facts_row.status), DeliveryState.SKIPPED):
                    skips.append({"row_id": row_id, "updated_at": now, "skip_reason": reason.value})
                out.skipped[reason.value] += 1
                out.done.append(row_id)
                continue
            tz = facts_row.timezone or rt.config.windows.default_timezone
            window = self.windows[channel]
            opening = window.next_opening(now, tz)
            if opening > now:
                defers.append({"row_id": row_id, "due_at": opening})
                out.deferred += 1
                out.done.append(row_id)
                continue
            plan = self._plan(conn, facts_row.campaign_id, facts_row.campaign_created_at)
            code = self.rt.links.short_code(row_id)
            marks.append({"row_id": row_id, "claim_id": claim_id,
                          "message_id": self.message_id(row_id, code) if channel is Channel.EMAIL else None,
                          "first_attempt_at": facts_row.first_attempt_at or now, "send_started_at": stamp})
            out.ready.append(_Ready(row_id, facts_row, plan, window, tz, address, as_utc(deadline_at),  # type: ignore[arg-type]
                                    (facts_row.send_started_at, facts_row.first_attempt_at, facts_row.message_id), code))
        for stmt, params in ((self._pause_stmt, paused), (self._skip_stmt, skips), (self._defer_stmt, defers)):
            if params:
                conn.execute(stmt, params)
        if marks:
            # The mark: handed to the provider from now on. Conditional on still holding the claim,
            # so a worker whose lease ran out (and was taken over) can never start a second send.
            marked = conn.execute(self._mark_stmt, marks).rowcount
            if marked != len(marks):  # some row is no longer ours: find which (rare)
                t = OutboxMessage.__table__.c  # type: ignore[attr-defined]
                ours = set(conn.execute(select(t.id).where(
                    t.id.in_([m["row_id"] for m in marks]), t.claimed_by == claim_id,
                    t.status == DeliveryState.SENDING.value)).scalars())
                out.done += [r.row_id for r in out.ready if r.row_id not in ours]
                out.ready = [r for r in out.ready if r.row_id in ours]
        return out

    def _record_sent(self, batch: list[_Sent]) -> list[_Sent]:
        """Record a flush (record thread); returns the results recorded. Sent is sent: insist on
        recording it (a long run of "database is locked" only delays it); a row the database refuses
        for good is written alone so it cannot take the rest of its flush down with it."""
        try:
            run_in_connection(self.record_engine, functools.partial(self._write_sent, batch), attempts=60)
            return batch
        except DBAPIError as exc:
            if len(batch) == 1 or is_transient_db_error(exc):
                raise
        recorded = []
        for one in batch:
            try:
                run_in_connection(self.record_engine, functools.partial(self._write_sent, [one]), attempts=60)
                recorded.append(one)
            except DBAPIError:
                log.exception("could not record outbox row %s as sent; it will be sent again after the lease",
                              one.row_id)
        return recorded

    def _write_sent(self, batch: list[_Sent], conn: Connection) -> None:
        # one statement for the whole flush, no read first: the time between the provider's
        # "accepted" and this commit is the only window in which a crash causes a duplicate
        now = self.rt.clock.now()
        conn.execute(self._sent_stmt, [{**s.values, "sent_at": now, "updated_at": now} for s in batch])

    def message_id(self, row_id: int, code: str | None = None) -> str:
        """The deterministic Message-ID of an outbox row's email (committed with its mark)."""
        cfg = self.rt.config
        domain = cfg.email.message_id_domain or cfg.sender.email_from.rpartition("@")[2] or "localhost"
        return f"<rc.{code or self.rt.links.short_code(row_id)}@{domain}>"

    def build_message(self, row: Any, contact: Any, plan: CampaignPlan, deadline: datetime,
                      window: SendWindow, tz: str, address: str, *, code: str | None = None) -> OutboundMessage:
        """``row`` has the outbox row's columns (id, contact_id, campaign_id, step, channel, template),
        ``contact`` the contact's (first_name, locale): ORM objects or one row of the facts query;
        ``code``: the row's short code when already computed (it is in the mark's Message-ID)."""
        rt = self.rt
        cfg = rt.config
        channel = Channel(row.channel)
        locale = plan.pick_locale(contact.locale)
        claims = LinkClaims(contact_id=row.contact_id, campaign_id=row.campaign_id, channel=channel.value)
        page_url = rt.url("/p/" + rt.links.dumps("page", claims))
        unsubscribe_url = rt.url("/u/" + rt.links.dumps("unsubscribe", claims))
        assert row.id is not None
        code = code or rt.links.short_code(row.id)
        ctx = message_context(rt, first_name=contact.first_name, page_url=page_url, unsubscribe_url=unsubscribe_url,
                              short_url=rt.url("/s/" + code), deadline=deadline, locale=locale)
        rendered = rt.renderer.render(row.template, channel, locale, ctx, plan.wording(row.template, locale, channel))
        meta = {"template_version": rendered.version, "locale": locale}
        key = f"c{row.campaign_id}-k{row.contact_id}-s{row.step}-{channel.value}"
        if channel is Channel.EMAIL:
            mailto = cfg.sender.unsubscribe_mailto or cfg.sender.email_from
            return OutboundMessage(
                channel=channel, recipient=address, idempotency_key=key, text=rendered.text,
                subject=rendered.subject, html=rendered.html, sender=cfg.sender.email_from,
                sender_name=cfg.sender.name, message_id=self.message_id(row.id, code), date=rt.clock.now(),
                headers=(
                    ("List-Unsubscribe", f"<{unsubscribe_url}>, <mailto:{mailto}?subject=unsubscribe>"),
                    ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
                ),
                meta=meta,
            )
        now = rt.clock.now()
        validity = int((window.closes_at(now, tz) - now).total_seconds()) - 60
        return OutboundMessage(
            channel=channel, recipient=address, idempotency_key=key, text=rendered.text,
            sender=cfg.sender.sms_from, status_callback=rt.url("/twilio/status"),
            validity_period=max(60, min(validity, TWILIO_MAX_VALIDITY)), meta=meta,
        )

    def _record_transient(self, row_id: int, claim_id: str, exc: TransientSendError, report: DispatchReport) -> None:
        rt = self.rt
        cfg = rt.config.dispatch
        counted: dict[str, bool] = {}

        def work(session: Session) -> None:
            now = rt.clock.now()
            row = session.get(OutboxMessage, row_id)
            assert row is not None
            first = as_utc(row.first_attempt_at) if row.first_attempt_at else now
            row.last_error = exc.reason[:500]
            row.send_started_at = None  # the provider refused it: the outcome is known
            if now - first >= timedelta(hours=cfg.retry_horizon_hours):
                _finish(row, DeliveryState.FAILED, now)
                counted["failed"] = True
            else:
                delay = timedelta(seconds=cfg.retry_base_seconds * 2 ** max(0, row.attempts - 1))
                delay = min(delay, MAX_BACKOFF) * random.uniform(0.5, 1.5)
                if exc.retry_after:
                    delay = max(delay, timedelta(seconds=exc.retry_after))
                row.status = DeliveryState.PENDING.value
                row.due_at = (now + delay)
                row.claimed_by = row.claimed_until = None
                counted["failed"] = False
            session.add(row)

        run_in_transaction(rt.engine, work, attempts=60)
        if counted["failed"]:
            report.failed += 1
        else:
            report.retried += 1
        log.info("transient failure on outbox row %s: %s", row_id, exc.reason)

    def _record_permanent(self, row_id: int, claim_id: str, exc: PermanentSendError, report: DispatchReport) -> None:
        rt = self.rt

        def work(session: Session) -> None:
            now = rt.clock.now()
            row = session.get(OutboxMessage, row_id)
            assert row is not None
            contact = session.get(Contact, row.contact_id)
            state = DeliveryState.BOUNCED if exc.suppress == "bounced" else DeliveryState.FAILED
            _finish(row, state, now)
            row.send_started_at = None
            row.last_error = exc.reason[:500]
            session.add(row)
            if exc.suppress and contact is not None:
                withdraw(session, key_of(contact, row.channel), row.channel, exc.suppress, "provider", now)

        run_in_transaction(rt.engine, work, attempts=60)
        report.failed += 1
        log.info("permanent failure on outbox row %s: %s", row_id, exc.reason)


@functools.cache
def _sent_metrics(channel: Channel) -> tuple[Any, Any]:
    """The latency histogram and "sent" counter of a channel (looking labels up costs per message)."""
    return (metrics.SEND_LATENCY.labels(channel=channel.value),
            metrics.SENDS.labels(channel=channel.value, outcome="sent"))


def _finish(row: OutboxMessage, state: DeliveryState, now: datetime, *, skip_reason: str | None = None,
            provider_id: str | None = None) -> None:
    if not DeliveryState.can_move(DeliveryState(row.status), state):
        return
    row.status = state.value
    row.claimed_by = row.claimed_until = None
    row.updated_at = now
    if skip_reason:
        row.skip_reason = skip_reason
    if provider_id:
        row.provider_id = provider_id


async def dispatch_once(rt: Runtime, channels: dict[Channel, MessageChannel] | None = None, progress: Any = None) -> DispatchReport:
    dispatcher = Dispatcher(rt, channels)
    try:
        return await dispatcher.run_once(progress)
    finally:
        if channels is None:
            await dispatcher.close()
