"""Who holds claims, and whether it is still alive: a dead dispatcher's rows are taken over in
seconds, not when their lease (``dispatch.lease_seconds``, 300 s by default) runs out.

Every dispatcher registers itself in ``dispatch_worker`` under its worker id (the part of each of its
claim ids before the last ``-``) before its first claim, and says whether it is alive in a way another
dispatcher can check:

* **PostgreSQL**: it holds a session advisory lock ``(NAMESPACE, lock_key)`` on a connection kept for
  its lifetime. The server frees the lock the moment the process dies (kill -9, a crash, a lost
  machine: the connection goes), so a claimant whose lock is free in ``pg_locks`` is dead.
* **SQLite** (one machine by nature): its host and pid. A claimant on this host whose process is gone
  (or is a zombie, or whose pid now belongs to a process started at another time) is dead. A
  claimant on another host (a shared volume: unusual) is dead when its row was not renewed for
  :data:`STALE_AFTER` — a short heartbeat lease, renewed every :data:`BEAT_SECONDS`.

Before each claim (at most once every :data:`CHECK_SECONDS`), :func:`take_over_dead` looks at the
claimants of rows still ``sending`` under a live lease; the leases of the dead ones' rows are ended
there and then, and the ordinary path of expired leases claims them in the same transaction (a row
marked as handed to the provider is an unknown outcome, sent again as before). A claimant with no
row here (an older version) keeps the lease rule. Times come from a real clock (``lease_clock``),
never the business clock.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Table, delete, insert, select, text, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import SQLModel

from orchestrator.domain.clock import Clock, as_utc
from orchestrator.domain.model import DeliveryState
from orchestrator.store.db import run_in_connection
from orchestrator.store.models import DispatchWorker, OutboxMessage

log = logging.getLogger("reconsent.dispatch")

WORKERS: Table = SQLModel.metadata.tables[str(DispatchWorker.__tablename__)]
OUTBOX: Table = SQLModel.metadata.tables[str(OutboxMessage.__tablename__)]
_w = WORKERS.c
_o = OUTBOX.c
SENDING = DeliveryState.SENDING.value

#: the first key of every dispatcher's advisory lock (the scheduler's lock uses the one-key form)
NAMESPACE = zlib.crc32(b"reconsent:dispatch-worker") & 0x7FFFFFFF
#: how often a dispatcher renews its row (and, on PostgreSQL, checks its lock connection)
BEAT_SECONDS = 5.0
#: a claimant on another host whose row was not renewed for this long is dead (SQLite only)
STALE_AFTER = timedelta(seconds=60)
#: the most often one dispatcher looks for dead claimants
CHECK_SECONDS = 1.0


def worker_of(claim_id: str) -> str:
    """The worker id a claim id starts with.

    >>> worker_of("3f2a9c01bd7e-17")
    '3f2a9c01bd7e'
    """
    return claim_id.rsplit("-", 1)[0]


def this_host() -> str:
    """This machine as seen by pids: the host name, and the pid namespace where there is one (two
    containers with one host name do not see each other's processes)."""
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return socket.gethostname()
    return f"{socket.gethostname()}#{namespace}"


def process_start(pid: int) -> int:
    """When process ``pid`` started (clock ticks since boot, Linux); 0 when unknown, -1 when there is
    no such process or it is a zombie (dead, not yet reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        return -1
    except OSError:
        return 0
    fields = stat.rpartition(")")[2].split()
    if not fields or fields[0] in ("Z", "X"):
        return -1
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return 0


def process_alive(pid: int, started: int) -> bool:
    """Whether process ``pid`` (started at ``started`` ticks, 0: unknown) still runs on this host."""
    now_started = process_start(pid)
    if now_started == -1:
        return False
    if now_started and started and now_started != started:
        return False  # the pid was reused by a later process
    if now_started:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class Registration:
    """This dispatcher's row (and, on PostgreSQL, its advisory lock). ``ensure()`` before claiming;
    ``beat()`` from the lease heartbeat; ``close()`` when the worker stops (a killed worker's lock
    goes with its connection, its row with the next check of another worker)."""

    engine: Engine
    worker_id: str
    clock: Clock
    _conn: Connection | None = None
    _key: int = 0
    _registered: bool = False
    _beaten: float = 0.0
    _guard: threading.Lock = field(default_factory=threading.Lock)

    @property
    def postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def ensure(self) -> None:
        """Registered (once), and the row renewed when the last beat is older than BEAT_SECONDS."""
        with self._guard:
            if not self._registered:
                self._register()
            elif time.monotonic() - self._beaten >= BEAT_SECONDS:
                self._beat()

    def beat(self) -> None:
        """Renew the row; on PostgreSQL, take the lock again on a new connection if it was lost."""
        with self._guard:
            if self._registered:
                self._beat()

    def _register(self) -> None:
        if self.postgres:
            self._lock()
        now = self.clock.now()
        values = {"id": self.worker_id, "host": this_host(), "pid": os.getpid(), "lock_key": self._key,
                  "proc_start": max(0, process_start(os.getpid())), "started_at": now, "seen_at": now}

        def write(conn: Connection) -> None:
            conn.execute(delete(WORKERS).where(_w.id == self.worker_id))
            conn.execute(insert(WORKERS).values(**values))

        run_in_connection(self.engine, write)
        self._registered = True
        self._beaten = time.monotonic()

    def _lock(self) -> None:
        """Take a free advisory key of the dispatcher namespace on a connection of our own."""
        conn = self.engine.connect()
        try:
            for _ in range(20):
                key = random.randrange(1, 0x7FFFFFFF)
                if conn.execute(text("SELECT pg_try_advisory_lock(:ns, :k)"), {"ns": NAMESPACE, "k": key}).scalar():
                    conn.commit()
                    self._conn, self._key = conn, key
                    return
            raise RuntimeError("no free dispatcher lock key after 20 tries")  # pragma: no cover
        except BaseException:
            conn.close()
            raise

    def _beat(self) -> None:
        if self.postgres and not self._lock_held():
            log.warning("dispatcher %s lost its database lock connection; taking it again", self.worker_id)
            self._drop()
            self._register()
            return
        now = self.clock.now()

        def renew(conn: Connection) -> int:
            return int(conn.execute(update(WORKERS).where(_w.id == self.worker_id).values(seen_at=now)).rowcount or 0)

        if not run_in_connection(self.engine, renew):  # another worker took us for dead: say we live
            self._drop()
            self._register()
        self._beaten = time.monotonic()

    def _lock_held(self) -> bool:
        if self._conn is None:
            return False
        try:
            self._conn.execute(text("SELECT 1")).scalar()
            self._conn.commit()
            return True
        except SQLAlchemyError:
            return False

    def close(self) -> None:
        with self._guard:
            self._close()

    def _close(self) -> None:
        if self._registered:
            try:
                run_in_connection(self.engine, lambda conn: conn.execute(
                    delete(WORKERS).where(_w.id == self.worker_id)), attempts=5)
            except SQLAlchemyError:  # pragma: no cover - the next check of another worker removes it
                log.warning("could not remove dispatcher %s from the workers' table", self.worker_id)
            self._registered = False
        self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                # invalidated, not returned to the pool: the session ends and the advisory lock with it
                self._conn.invalidate()
                self._conn.close()
            except SQLAlchemyError:  # pragma: no cover
                pass
            self._conn = None


def _live_keys(conn: Connection) -> set[int]:
    """The dispatcher lock keys held now in this database (PostgreSQL)."""
    return set(conn.execute(text(
        "SELECT objid::bigint FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = :ns "
        "AND objsubid = 2 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"),
        {"ns": NAMESPACE}).scalars())


def take_over_dead(conn: Connection, *, me: str, lease_now: datetime) -> int:
    """End the leases of every row claimed by a dead dispatcher (and forget the dead), in ``conn``'s
    transaction, so the claim that follows takes them; returns the rows whose lease was ended."""
    workers = conn.execute(select(_w.id, _w.host, _w.pid, _w.lock_key, _w.proc_start, _w.seen_at)
                           .where(_w.id != me)).all()
    if not workers:
        return 0
    if conn.dialect.name == "postgresql":
        live = _live_keys(conn)
        dead = {w.id: w for w in workers if w.lock_key not in live}
    else:
        host = this_host()
        stale = lease_now - STALE_AFTER
        dead = {w.id: w for w in workers
                if (not process_alive(w.pid, w.proc_start) if w.host == host else as_utc(w.seen_at) < stale)}
    if not dead:
        return 0
    claims = [c for c in conn.execute(select(_o.claimed_by).distinct().where(
        _o.status == SENDING, _o.claimed_until >= lease_now)).scalars() if c and worker_of(c) in dead]
    ended = 0
    if claims:
        ended = int(conn.execute(update(OUTBOX).where(_o.claimed_by.in_(claims), _o.status == SENDING)
                                 .values(claimed_until=lease_now - timedelta(microseconds=1))).rowcount or 0)
    conn.execute(delete(WORKERS).where(_w.id.in_(list(dead))))
    if ended:
        log.warning("dispatcher(s) %s gone (pid %s): %d claimed row(s) taken over now, without waiting for "
                    "their lease", ", ".join(sorted(dead)), ", ".join(str(w.pid) for w in dead.values()), ended)
    return ended
