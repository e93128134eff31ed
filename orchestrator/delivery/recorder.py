"""Write-behind results: sends hand their "sent" to the recorder and move on; one flush at a time
writes everything waiting with one executemany UPDATE in one transaction, in the record thread, and
the next flush starts as soon as it commits, retrying on "database is locked" and friends (a send
that happened is never forgotten because the database was busy).

``window`` bounds the messages handed to the provider whose result is not committed (a slot is
acquired before a send and released after the commit): the most a crash can duplicate.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from datetime import datetime

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from orchestrator.delivery import outbox
from orchestrator.delivery.claims import Claim, Sent
from orchestrator.delivery.retry import RetryPolicy, draw_jitter
from orchestrator.domain.model import DeliveryState
from orchestrator.errors import PermanentSendError, TransientSendError
from orchestrator.runtime import Runtime
from orchestrator.store.db import is_transient_db_error, make_engine, run_in_connection

log = logging.getLogger("reconsent.dispatch")
#: how long a "sent" result may wait for others to share its commit (fewer are enough: group_size)
RECORD_LINGER_SECONDS = 0.005


def record_sent(engine: Engine, now: Callable[[], datetime], batch: list[Sent]) -> list[Sent]:
    """Record a flush (record thread); returns the results recorded. Sent is sent: insist on
    recording it (a long run of "database is locked" only delays it); a row the database refuses
    for good is written alone so it cannot take the rest of its flush down with it."""
    def write(part: list[Sent]) -> None:
        def work(conn: Connection) -> None:
            outbox.write_sent(conn, [s.values for s in part], now())

        run_in_connection(engine, work, attempts=60)

    try:
        write(batch)
        return batch
    except DBAPIError as exc:
        if len(batch) == 1 or is_transient_db_error(exc):
            raise
    recorded = []
    for one in batch:
        try:
            write([one])
            recorded.append(one)
        except DBAPIError:
            log.exception("could not record outbox row %s as sent; it will be sent again after the lease",
                          one.row_id)
    return recorded


class ResultWriter:
    """Where a worker's results are written: "sent" flushes (``record_engine``) and transient or
    permanent failures (``retry`` decides when a transient one is tried again)."""

    def __init__(self, rt: Runtime, retry: RetryPolicy) -> None:
        self.rt = rt
        self.retry = retry
        self._record_engine: Engine | None = None

    @property
    def record_engine(self) -> Engine:
        """Where "sent" is recorded. On PostgreSQL a pool whose commits do not wait for the WAL
        flush: the crash-to-commit window (the only source of duplicates) shrinks to one network
        round trip. A database *server* crash may then forget a "sent" — the row keeps its mark and
        is sent again: a possible duplicate, never a loss."""
        if self._record_engine is None:
            if self.rt.engine.dialect.name == "postgresql":
                self._record_engine = make_engine(self.rt.config.database_url, async_commit=True)
            else:
                self._record_engine = self.rt.engine
        return self._record_engine

    def sent(self, batch: list[Sent]) -> list[Sent]:
        return record_sent(self.record_engine, self.rt.clock.now, batch)

    def transient(self, row_id: int, exc: TransientSendError) -> bool:
        """Back to the queue for a later attempt, or failed past the horizon (returns True)."""
        def next_due(now: datetime, first: datetime | None, attempts: int) -> datetime | None:
            return self.retry.next_due(now, first_attempt_at=first, attempts=attempts,
                                       retry_after=exc.retry_after, jitter=draw_jitter())

        return outbox.record_transient(self.rt.engine, row_id, exc.reason, self.rt.clock.now, next_due)

    def permanent(self, row_id: int, exc: PermanentSendError) -> DeliveryState:
        """Record a refusal; returns the row's state (bounced or failed, ``refusal_state``)."""
        return outbox.record_permanent(self.rt.engine, row_id, exc.reason, exc.suppress, self.rt.clock.now)

    def close(self) -> None:
        if self._record_engine is not None and self._record_engine is not self.rt.engine:
            self._record_engine.dispose()


class Recorder:
    """The write-behind recorder of one event loop. ``write(batch)`` records a flush in ``pool``
    (returns the results recorded); ``settled(claim)`` is called when a finished claim's last result
    is committed (its lease need no longer be renewed)."""

    def __init__(self, *, write: Callable[[list[Sent]], list[Sent]], pool: Executor,
                 settled: Callable[[Claim], None], window: int, enough: int) -> None:
        self.write = write
        self.pool = pool
        self.settled = settled
        self.loop = asyncio.get_running_loop()
        self.window = asyncio.Semaphore(window)
        self.enough = enough
        self.waiting: list[Sent] = []
        self.flushing: asyncio.Task[None] | None = None
        self.now = asyncio.Event()  # flush without lingering: enough results, or someone waits

    async def begin(self, claim: Claim) -> None:
        """Take a slot of the window for a message about to be handed to its channel."""
        if self.window.locked():
            self.now.set()  # a send waits for a slot: free the slots now
        await self.window.acquire()
        claim.unrecorded += 1

    def end(self, claim: Claim) -> None:
        """Give the slot back (result committed, or the message never handed over)."""
        self.window.release()
        claim.unrecorded -= 1
        if claim.finished and claim.unrecorded == 0:
            self.settled(claim)

    def add(self, sent: Sent) -> None:
        self.waiting.append(sent)
        if len(self.waiting) >= self.enough:
            self.now.set()
        if self.flushing is None or self.flushing.done():
            self.flushing = self.loop.create_task(self._flush())

    async def _flush(self) -> None:
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
                recorded = await self.loop.run_in_executor(self.pool, self.write, batch)
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
