"""The outbox worker [O2]: claim due rows, re-check everything, render, sign, send, record.

This module only runs the pipeline and its async loop; the parts are ``outbox`` (every statement),
``recheck`` (the re-check and mark of a group), ``messages`` (the one message factory), ``retry``
(when a transient failure is tried again), ``recorder`` (write-behind results) and ``claims``.

Exactly-once as far as a protocol without idempotency keys allows:

1. **claim** — a batch of due rows moves to ``sending`` with a lease (``claimed_by``,
   ``claimed_until``) in one short transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), read per
   running campaign from the index in (due_at, id) order, each claim starting at the next running
   campaign in turn (campaigns running together share the workers). A live
   worker renews its leases every third of ``dispatch.lease_seconds`` (heartbeat), so only a dead
   worker's rows expire and are taken over — and a worker seen dead (``claimants``: its PostgreSQL
   advisory lock free, or its process gone from this host) has its leases ended at once.
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
died between steps 2 and 3. A channel that can ask its provider (``SentLookup``: Twilio's message
list) is asked first, and a message found is recorded, not sent (``reconsent_unknown_outcome_found``);
otherwise it is sent again (no message is ever lost) and counted
(``reconsent_unknown_outcome_resends``) — a duplicate only if the provider accepted it before the
crash (email: the same Message-ID, which receiving systems de-duplicate on).

**The duplicate window**: a message holds a slot of the recorder's window from just before it is
handed to the channel until its "sent" is committed, and the window has
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
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import Counter as PromCounter
from prometheus_client import Histogram
from sqlalchemy.engine import Engine

from orchestrator.delivery import outbox
from orchestrator.delivery.channels import MessageChannel, SentLookup, build_channels
from orchestrator.delivery.claimants import BEAT_SECONDS, CHECK_SECONDS, Registration, take_over_dead
from orchestrator.delivery.claims import Claim, DispatchReport, Sent
from orchestrator.delivery.messages import (
    OutboxRowLike,
    PersonLike,
    campaign_message,
    outbox_message_id,
)
from orchestrator.delivery.recheck import GroupCheck, GroupChecker, Progress, Ready, window_for
from orchestrator.delivery.recorder import Recorder, ResultWriter
from orchestrator.delivery.retry import RetryPolicy
from orchestrator.delivery.webhooks import WebhookSender
from orchestrator.domain.campaign import CampaignPlan
from orchestrator.domain.clock import Clock, SystemClock, as_utc
from orchestrator.domain.message import OutboundMessage, SendResult
from orchestrator.domain.model import Channel, DeliveryState
from orchestrator.domain.windows import SendWindow
from orchestrator.errors import PermanentSendError, TransientSendError
from orchestrator.ops import metrics
from orchestrator.runtime import Runtime
from orchestrator.store.db import run_in_connection

__all__ = ["DispatchReport", "Dispatcher", "dispatch_once", "window_for"]

log = logging.getLogger("reconsent.dispatch")


class Dispatcher:
    """One worker. ``lease_clock`` times claims (a real clock in a long-running worker: leases must
    expire while business time, ``rt.clock``, may be frozen by RECONSENT_NOW); tests pass a
    controllable one."""

    def __init__(self, rt: Runtime, channels: dict[Channel, MessageChannel] | None = None, *,
                 lease_clock: Clock | None = None) -> None:
        self.rt = rt
        self.channels = channels if channels is not None else build_channels(rt.config)
        self.lease_clock: Clock = lease_clock or SystemClock()
        self.checker = GroupChecker(rt, self.lease_clock)
        self.windows = self.checker.windows
        self.results = ResultWriter(rt, RetryPolicy.from_config(rt.config.dispatch))
        self.worker_id = uuid.uuid4().hex[:12]
        #: this worker in ``dispatch_worker``: how the others tell it is dead (``claimants``)
        self.registration = Registration(rt.engine, self.worker_id, self.lease_clock)
        self._checked_at = -CHECK_SECONDS
        self.stopping = False
        self._active: dict[str, Claim] = {}
        self._batches = 0
        # Results and lease renewals get their own threads: they must never queue behind the
        # preparation (rendering, "database is locked" waits) of the next messages.
        self._record_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="record")
        self._heartbeat_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="heartbeat")
        self._recorder: Recorder | None = None
        # webhooks (issue 17): a queue and a task of their own, so an endpoint never holds up a message
        self.webhooks = WebhookSender(rt, worker_id=self.worker_id, lease_clock=self.lease_clock, lease=self.lease,
                                      stopping=self.stop_requested)

    def stop_requested(self) -> bool:
        """``stopping`` read afresh (a SIGTERM may set it while this task awaited)."""
        return self.stopping

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.rt.config.dispatch.lease_seconds)

    # -- claiming -------------------------------------------------------------------------------
    def claim(self) -> tuple[str, list[int]]:
        """Claim a batch of due rows (and rows whose lease expired); returns (claim id, row ids)."""
        claim = self._claim()
        return claim.claim_id, sorted(claim.rows)

    def _claim(self) -> Claim:
        self._batches += 1
        claim_id = f"{self.worker_id}-{self._batches}"
        self.registration.ensure()
        lease_now = self.lease_clock.now()
        before = None
        if time.monotonic() - self._checked_at >= CHECK_SECONDS:  # a dead claimant's rows: taken over now
            self._checked_at = time.monotonic()
            before = functools.partial(take_over_dead, me=self.worker_id, lease_now=lease_now)
        got = outbox.claim_due(self.rt.engine, claim_id=claim_id, turn=self._batches,
                               limit=self.rt.config.dispatch.batch_size, now=self.rt.clock.now(),
                               lease_now=lease_now, lease_until=lease_now + self.lease, before=before)
        claim = Claim(claim_id, {row_id: started is not None for row_id, started, _ in got})
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
        return outbox.renew(self.rt.engine, list(self._active), self.lease_clock.now() + self.lease)

    def release(self, claim: Claim) -> int:
        """Give back rows of ``claim`` this worker has not handed to the provider (graceful stop).
        Rows it marked but never handed over get their mark undone exactly (attempt count, times):
        they were certainly not sent."""
        todo = [i for i in claim.rows if i not in claim.started]
        if not todo:
            return 0
        n = outbox.release(self.rt.engine, claim.claim_id, [i for i in todo if i not in claim.marked],
                           [outbox.Unmark(i, *claim.marked[i]) for i in todo if i in claim.marked])
        if n:
            log.info("released %d claimed row(s) not yet sent", n)
        return n

    def _finish_claim(self, claim: Claim) -> None:
        """The claim's lease is no longer renewed once its released and every result is committed."""
        claim.finished = True
        if claim.unrecorded == 0:
            self._settled(claim)

    def _settled(self, claim: Claim) -> None:
        self._active.pop(claim.claim_id, None)

    # -- running --------------------------------------------------------------------------------
    async def run_once(self, progress: Progress = None) -> DispatchReport:
        """Send everything due now, then return (stops early, releasing claims, when ``stopping``)."""
        report = DispatchReport()
        heartbeat = asyncio.create_task(self._heartbeat())
        hooks = asyncio.create_task(self.webhooks.run_once())
        try:
            try:
                while not self.stopping and await self.dispatch_batch(report, progress):
                    pass
            finally:
                await self.flush()
                report.webhooks = await hooks
        finally:
            heartbeat.cancel()
            try:
                await heartbeat
            except asyncio.CancelledError:
                pass
        return report

    async def dispatch_batch(self, report: DispatchReport, progress: Progress = None) -> int:
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

    def _recorder_here(self) -> Recorder:
        if self._recorder is None or self._recorder.loop is not asyncio.get_running_loop():
            cfg = self.rt.config.dispatch
            # ``_record_sent`` looked up at each flush (a test slows it down)
            self._recorder = Recorder(write=lambda batch: self._record_sent(batch), pool=self._record_pool,
                                      settled=self._settled, window=cfg.concurrency + cfg.group_size,
                                      enough=cfg.group_size)
        return self._recorder

    async def _send_rows(self, claim: Claim, ids: list[int], report: DispatchReport,
                         progress: Progress = None) -> list[BaseException]:
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
                prepared.apply_to(claim, report, progress)
                for ready in prepared.ready:
                    await recorder.begin(claim)
                    await in_flight.acquire()
                    if self.stop_requested():  # marked but not handed over: the claim's release undoes the mark
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

    async def _record_unbuilt(self, claim: Claim, report: DispatchReport) -> None:
        """Write the failures of the claim's rows whose message could not be built (one transaction):
        they are failed for good, never sent, never retried in this run or any other [issue 12]."""
        unbuilt, claim.unbuilt = claim.unbuilt, []
        work = functools.partial(outbox.write_unbuilt, claim_id=claim.claim_id, unbuilt=unbuilt,
                                 now=self.rt.clock.now(), threshold=self.rt.config.dispatch.failure_pause_threshold)
        paused = await asyncio.to_thread(run_in_connection, self.rt.engine, work)
        for row_id, campaign_id, reason in unbuilt:
            claim.rows.pop(row_id, None)  # nothing left for the claim's release to give back
            claim.marked.pop(row_id, None)
            claim.build_errors[(campaign_id, reason)] += 1
        report.failed += len(unbuilt)
        for campaign_id, why in paused:
            log.warning("campaign %s %s", campaign_id, why)

    async def _prepare_group(self, claim: Claim, ids: list[int]) -> GroupCheck:
        return await asyncio.to_thread(run_in_connection, self.rt.engine,
                                       functools.partial(self.checker.recheck_and_mark, claim.claim_id, ids))

    async def _send_one(self, claim: Claim, ready: Ready, report: DispatchReport, in_flight: asyncio.Semaphore,
                        recorder: Recorder, progress: Progress) -> None:
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
                claim.unbuilt.append((row_id, ready.facts.campaign_id, ready.build_failure(exc)))
                return
            except BaseException:
                in_flight.release()  # marked, never handed over: the claim's release undoes the mark
                raise
            claim.started.add(row_id)
            channel = message.channel
            started = time.perf_counter()
            loop = asyncio.get_running_loop()
            try:
                try:
                    found = await self._already_sent(ready, message) if ready.unknown else None
                    result = found or await self.channels[channel].send(message)
                finally:
                    in_flight.release()
            except TransientSendError as exc:
                metrics.SENDS.labels(channel=channel.value, outcome="transient").inc()
                await loop.run_in_executor(self._record_pool, self._record_transient, row_id, claim.claim_id,
                                           exc, report)
                return
            except PermanentSendError as exc:
                metrics.SENDS.labels(channel=channel.value, outcome="permanent").inc()
                await loop.run_in_executor(self._record_pool, self._record_permanent, row_id, claim.claim_id,
                                           exc, report)
                return
            if found is None:
                latency, sends = _sent_metrics(channel)
                latency.observe(time.perf_counter() - started)
                sends.inc()
            values: dict[str, Any] = {
                "row_id": row_id, "template_version": message.meta.get("template_version"),
                "locale": message.meta.get("locale"), "provider_status": result.status,
                "provider_id": result.provider_id or None,
            }
            recorder.add(Sent(row_id, values, report, claim))
            handed = True
        finally:
            if not handed:
                recorder.end(claim)
            if progress:
                progress(1)

    async def _already_sent(self, ready: Ready, message: OutboundMessage) -> SendResult | None:
        """A row handed to the provider by a worker that died before recording the result: what the
        provider says it accepted (a channel that can look it up: SMS), else None — then it is sent
        again (email: with the same Message-ID, which the receiving side de-duplicates)."""
        adapter = self.channels[message.channel]
        marked_at = ready.before[0]
        found = None
        if isinstance(adapter, SentLookup) and marked_at is not None:
            found = await adapter.find_sent(message, as_utc(marked_at))
        if found is not None:
            metrics.UNKNOWN_OUTCOME_FOUND.inc()
            log.warning("outbox row %s was handed to the provider by a worker that died before recording the "
                        "result; the provider has it (%s): recorded, not sent again", ready.row_id, found.provider_id)
        else:
            metrics.UNKNOWN_OUTCOME_RESENDS.inc()
            log.warning("outbox row %s was handed to the provider by a worker that died before recording the "
                        "result; sending it again (Message-ID unchanged)", ready.row_id)
        return found

    async def process(self, claim_id: str, row_id: int, report: DispatchReport, *, claim: Claim | None = None) -> None:
        """One row of a claim through the same pipeline (a group of one), its result committed on return."""
        claim = claim or self._active.get(claim_id) or Claim(claim_id, {row_id: False})
        errors = await self._send_rows(claim, [row_id], report)
        await self.flush()
        for error in errors:
            raise error

    async def _heartbeat(self) -> None:
        """Renew the leases every third of a lease, and this worker's row every BEAT_SECONDS."""
        interval = max(0.2, self.rt.config.dispatch.lease_seconds / 3)
        tick = min(interval, BEAT_SECONDS)
        loop = asyncio.get_running_loop()
        renewed = time.monotonic()
        while True:
            await asyncio.sleep(tick)
            try:
                await loop.run_in_executor(self._heartbeat_pool, self.registration.beat)
                if time.monotonic() - renewed >= interval - tick / 2:
                    renewed = time.monotonic()
                    await loop.run_in_executor(self._heartbeat_pool, self.renew_leases)
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
        self.results.close()
        await asyncio.to_thread(self.registration.close)

    @property
    def record_engine(self) -> Engine:
        return self.results.record_engine

    # -- results and messages -------------------------------------------------------------------
    def _record_sent(self, batch: list[Sent]) -> list[Sent]:
        """Record a flush of "sent" results (record thread); returns the results recorded."""
        return self.results.sent(batch)

    def _record_transient(self, row_id: int, claim_id: str, exc: TransientSendError, report: DispatchReport) -> None:
        if self.results.transient(row_id, exc):
            report.failed += 1
        else:
            report.retried += 1
        log.info("transient failure on outbox row %s: %s", row_id, exc.reason)

    def _record_permanent(self, row_id: int, claim_id: str, exc: PermanentSendError, report: DispatchReport) -> None:
        state = self.results.permanent(row_id, exc)
        if state is DeliveryState.BOUNCED:  # counted as `campaign status` counts it: the row's state
            report.bounced += 1
        else:
            report.failed += 1
        log.info("permanent failure on outbox row %s (%s): %s", row_id, state.value, exc.reason)

    def message_id(self, row_id: int, code: str | None = None) -> str:
        """The deterministic Message-ID of an outbox row's email (committed with its mark)."""
        return outbox_message_id(self.rt, row_id, code)

    def build_message(self, row: OutboxRowLike, contact: PersonLike, plan: CampaignPlan, deadline: datetime,
                      window: SendWindow, tz: str, address: str, *, code: str | None = None) -> OutboundMessage:
        """The campaign message of an outbox row (``messages.campaign_message``)."""
        return campaign_message(self.rt, row, contact, plan, deadline, window, tz, address, code=code)


@functools.cache
def _sent_metrics(channel: Channel) -> tuple[Histogram, PromCounter]:
    """The latency histogram and "sent" counter of a channel (looking labels up costs per message)."""
    return (metrics.SEND_LATENCY.labels(channel=channel.value),
            metrics.SENDS.labels(channel=channel.value, outcome="sent"))


async def dispatch_once(rt: Runtime, channels: dict[Channel, MessageChannel] | None = None,
                        progress: Progress = None) -> DispatchReport:
    dispatcher = Dispatcher(rt, channels)
    try:
        return await dispatcher.run_once(progress)
    finally:
        if channels is None:
            await dispatcher.close()
        else:  # the caller's channels stay open; this worker is gone
            await dispatcher.flush()
            await asyncio.to_thread(dispatcher.registration.close)
