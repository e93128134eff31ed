"""Heartbeats: dispatchers and schedulers say they are alive; the console reads who is.

Every long-running process — ``reconsent run``, ``reconsent dispatch`` (also ``--once``),
``reconsent scheduler`` — keeps one row of ``service_heartbeat`` per role it plays (role, host, pid,
state, started, last seen), rewritten every :data:`BEAT_SECONDS` by a thread of its own, so a
dispatcher busy sending a million messages still beats. A process is **alive** when its row was
seen less than :data:`ALIVE_WITHIN` ago and it has not stopped (a graceful stop marks its row
stopped at once; a killed process just goes stale). ``dispatch --once`` does not mark its row stopped:
run from cron every minute, it keeps counting as a dispatcher. Rows not seen for
:data:`FORGET_AFTER` are deleted by the next process that starts.

Time. Liveness is about processes, not about business time: heartbeats are written and compared with
a real clock (a ``SystemClock``, a Clock like any other — as the leases of orchestrator.ops.locks and the
dispatcher's claims are), never with ``rt.clock``. Under ``RECONSENT_NOW`` that clock is frozen; a
heartbeat stamped with it would look fresh forever, or stale from the first second. Tests hand a
``FixedClock`` in.

>>> ServiceStatus(RoleStatus("dispatcher", (), None), RoleStatus("scheduler", (), None)).dispatching
False
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col

from orchestrator.domain.clock import Clock, SystemClock, as_utc
from orchestrator.store.db import run_in_transaction, session_scope
from orchestrator.store.models import ServiceHeartbeat

if TYPE_CHECKING:
    from orchestrator.runtime import Runtime

log = logging.getLogger("reconsent.heartbeat")

#: how often a process rewrites its row
BEAT_SECONDS = 10.0
#: a row seen longer ago than this is a process that is gone (covers `dispatch --once` every minute)
ALIVE_WITHIN = timedelta(seconds=90)
#: rows not seen for this long are deleted
FORGET_AFTER = timedelta(days=7)

DISPATCHER = "dispatcher"
SCHEDULER = "scheduler"


class Heartbeat:
    """This process's row for one role. ``start()`` writes it and keeps it fresh from a daemon
    thread; ``update()`` changes the state (a scheduler becoming active) and writes at once;
    ``stop()`` ends the thread and marks the row stopped. A failed write is logged, never raised:
    the service goes on, and the row just looks stale."""

    def __init__(self, engine: Engine, role: str, *, state: str = "running", detail: str = "",
                 clock: Clock | None = None, interval: float = BEAT_SECONDS) -> None:
        self.engine = engine
        self.role = role
        self.state = state
        self.detail = detail
        self.clock: Clock = clock or SystemClock()
        self.interval = interval
        self.id = uuid.uuid4().hex[:12]
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.started_at = self.clock.now()
        self._write = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False

    def start(self) -> Heartbeat:
        self._forget_old()
        self.beat()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{self.role}", daemon=True)
        self._thread.start()
        return self

    def update(self, state: str, detail: str = "") -> None:
        self.state, self.detail = state, detail
        self.beat()

    def beat(self, *, stopped: bool = False) -> bool:
        now = self.clock.now()

        def write(session: Session) -> None:
            row = session.get(ServiceHeartbeat, self.id)
            if row is None:
                row = ServiceHeartbeat(id=self.id, role=self.role, host=self.host, pid=self.pid,
                                       state=self.state, detail=self.detail, started_at=self.started_at,
                                       seen_at=now)
            row.state, row.detail, row.seen_at = self.state, self.detail, now
            row.stopped_at = now if stopped else None
            session.add(row)

        with self._write:
            try:
                run_in_transaction(self.engine, write, attempts=5)
            except SQLAlchemyError:
                if not self._failing:
                    log.warning("could not write the %s heartbeat; retrying in %.0f s", self.role,
                                self.interval, exc_info=True)
                self._failing = True
                return False
        if self._failing:
            log.info("%s heartbeat written again", self.role)
            self._failing = False
        return True

    def stop(self, *, mark_stopped: bool = True) -> None:
        """End the beats; the row says stopped (``mark_stopped``) or just ages (``dispatch --once``)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        if mark_stopped:
            self.beat(stopped=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.beat()

    def _forget_old(self) -> None:
        horizon = self.clock.now() - FORGET_AFTER

        def forget(session: Session) -> None:
            session.execute(delete(ServiceHeartbeat).where(col(ServiceHeartbeat.seen_at) < horizon))

        try:
            run_in_transaction(self.engine, forget, attempts=5)
        except SQLAlchemyError:  # pragma: no cover - tidying only; the next start tries again
            log.warning("could not delete old heartbeats", exc_info=True)


# -- reading ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProcessSeen:
    role: str
    host: str
    pid: int
    state: str
    jobs: tuple[str, ...]
    started_at: datetime
    seen_at: datetime


@dataclass(frozen=True)
class RoleStatus:
    role: str
    #: the processes of this role alive now (most recently seen first)
    processes: tuple[ProcessSeen, ...]
    #: when any process of this role was last seen (None: never, or not this week)
    last_seen: datetime | None

    @property
    def alive(self) -> bool:
        return bool(self.processes)


@dataclass(frozen=True)
class ServiceStatus:
    dispatcher: RoleStatus
    scheduler: RoleStatus

    @property
    def active_scheduler(self) -> ProcessSeen | None:
        return next((p for p in self.scheduler.processes if p.state == "active"), None)

    @property
    def standby_schedulers(self) -> int:
        return sum(p.state == "standby" for p in self.scheduler.processes)

    @property
    def scheduler_dispatches(self) -> bool:
        """The active scheduler runs the ``dispatch`` job (``reconsent scheduler`` with dispatch_cron)."""
        active = self.active_scheduler
        return active is not None and "dispatch" in active.jobs

    @property
    def dispatching(self) -> bool:
        """Something sends due messages: a live dispatcher, or the active scheduler's dispatch job."""
        return self.dispatcher.alive or self.scheduler_dispatches


def service_status(rt: Runtime, clock: Clock | None = None) -> ServiceStatus:
    """Who is alive, from the heartbeats (a real clock by default, not ``rt.clock``: see the
    module's docstring)."""
    now = (clock or SystemClock()).now()
    with session_scope(rt.engine) as session:
        rows = list(session.execute(select(ServiceHeartbeat).order_by(
            col(ServiceHeartbeat.seen_at).desc())).scalars())

    def role_status(role: str) -> RoleStatus:
        mine = [r for r in rows if r.role == role]
        alive = tuple(
            ProcessSeen(r.role, r.host, r.pid, r.state, tuple(j for j in r.detail.split(", ") if j),
                        as_utc(r.started_at), as_utc(r.seen_at))
            for r in mine if r.stopped_at is None and now - as_utc(r.seen_at) <= ALIVE_WITHIN)
        return RoleStatus(role, alive, as_utc(mine[0].seen_at) if mine else None)

    return ServiceStatus(role_status(DISPATCHER), role_status(SCHEDULER))
