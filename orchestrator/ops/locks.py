"""One active scheduler at a time: a database lock held by the active one, waited for by standbys.

* PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) on a connection kept open
  for the scheduler's lifetime. The server frees it the moment that connection dies — a killed
  scheduler's standby takes over within one poll.
* SQLite (or anything else): a row in ``service_lock`` with a lease, renewed by the holder every
  third of the lease; a standby takes it once the lease has expired.

Leases are timed with a real clock in production (``SystemClock``), not the business clock
(RECONSENT_NOW may freeze that); tests pass a controllable one.
"""

from __future__ import annotations

import logging
import uuid
import zlib
from datetime import timedelta
from typing import Protocol

from sqlalchemy import delete, text, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Session, col

from orchestrator.domain.clock import Clock, SystemClock
from orchestrator.store.db import rows_changed, run_in_transaction
from orchestrator.store.models import ServiceLock

log = logging.getLogger("reconsent.locks")


class LeaderLock(Protocol):
    holder: str

    def acquire(self) -> bool:
        """Take the lock if free; True when this process holds it (idempotent)."""
        ...

    def renew(self) -> bool:
        """Keep holding it; False when it was lost (stop acting as the leader)."""
        ...

    def release(self) -> None: ...


class AdvisoryLock:
    """PostgreSQL session advisory lock."""

    def __init__(self, engine: Engine, name: str) -> None:
        self.engine = engine
        self.name = name
        self.key = zlib.crc32(f"reconsent:{name}".encode()) & 0x7FFFFFFF  # stable, fits objid
        self.holder = uuid.uuid4().hex[:12]
        self._conn: Connection | None = None

    def acquire(self) -> bool:
        if self._conn is not None:
            return self.renew()
        conn = self.engine.connect()
        try:
            got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar())
            conn.commit()
        except SQLAlchemyError:
            conn.close()
            raise
        if got:
            self._conn = conn
        else:
            conn.close()
        return got

    def renew(self) -> bool:
        if self._conn is None:
            return False
        try:
            held = self._conn.execute(text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND pid = pg_backend_pid() AND classid = 0 AND objid = :k AND objsubid = 1"), {"k": self.key}).scalar()
            self._conn.commit()
            return bool(held)
        except SQLAlchemyError:
            log.exception("lost the database connection holding the scheduler lock")
            self._drop()
            return False

    def release(self) -> None:
        if self._conn is None:
            return
        try:
            self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
            self._conn.commit()
        except SQLAlchemyError:  # the connection is gone: so is the lock
            pass
        self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except SQLAlchemyError:  # pragma: no cover
                pass
            self._conn = None


class LeaseLock:
    """A lock row with a lease (portable; used on SQLite)."""

    def __init__(self, engine: Engine, name: str, lease_seconds: float, clock: Clock | None = None,
                 holder: str | None = None) -> None:
        self.engine = engine
        self.name = name
        self.lease = timedelta(seconds=lease_seconds)
        self.clock: Clock = clock or SystemClock()
        self.holder = holder or uuid.uuid4().hex[:12]

    def acquire(self) -> bool:
        now = self.clock.now()

        def take(session: Session) -> bool:
            result = session.execute(
                update(ServiceLock)
                .where(col(ServiceLock.name) == self.name,
                       (col(ServiceLock.holder) == self.holder) | (col(ServiceLock.lease_until) < now))
                .values(holder=self.holder, lease_until=now + self.lease, acquired_at=now)
            )
            if rows_changed(result):
                return True
            if session.get(ServiceLock, self.name) is not None:
                return False
            session.add(ServiceLock(name=self.name, holder=self.holder, lease_until=now + self.lease,
                                    acquired_at=now))
            return True

        try:
            return run_in_transaction(self.engine, take)
        except IntegrityError:  # another process inserted the row first
            return False

    def renew(self) -> bool:
        now = self.clock.now()

        def extend(session: Session) -> bool:
            result = session.execute(
                update(ServiceLock)
                .where(col(ServiceLock.name) == self.name, col(ServiceLock.holder) == self.holder,
                       col(ServiceLock.lease_until) >= now)
                .values(lease_until=now + self.lease)
            )
            return bool(rows_changed(result))

        try:
            return run_in_transaction(self.engine, extend)
        except SQLAlchemyError:
            log.exception("could not renew the scheduler lock")
            return False

    def release(self) -> None:
        def drop(session: Session) -> None:
            session.execute(delete(ServiceLock).where(col(ServiceLock.name) == self.name,
                                                      col(ServiceLock.holder) == self.holder))

        try:
            run_in_transaction(self.engine, drop)
        except SQLAlchemyError:  # pragma: no cover - the lease runs out anyway
            log.exception("could not release the scheduler lock")


def leader_lock(engine: Engine, name: str, lease_seconds: float, clock: Clock | None = None) -> LeaderLock:
    if engine.dialect.name == "postgresql":
        return AdvisoryLock(engine, name)
    return LeaseLock(engine, name, lease_seconds, clock)
