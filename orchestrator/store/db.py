"""Engine and sessions. SQLite runs in WAL mode with a busy timeout; PostgreSQL via psycopg."""

from __future__ import annotations

import logging
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Table, event, inspect
from sqlalchemy.engine import Connection, CursorResult, Engine, Result, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import Session, SQLModel, create_engine

from orchestrator.config_values import hide_credentials
from orchestrator.errors import ConfigError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
log = logging.getLogger("reconsent.db")
T = TypeVar("T")
#: SQLite busy timeout in milliseconds (tests lower it to provoke "database is locked")
SQLITE_BUSY_TIMEOUT_MS = 30000
#: called with the error's short name each time a transaction is retried (metrics hook)
on_retry: list[Callable[[str], None]] = []


def make_engine(url: str, *, echo: bool = False, busy_timeout_ms: int | None = None,
                async_commit: bool = False) -> Engine:
    """``async_commit`` (PostgreSQL): commits return before the WAL is flushed to disk — a commit
    survives the client's death, not the database server's crash (used to record sends: see
    orchestrator.delivery.worker)."""
    busy = SQLITE_BUSY_TIMEOUT_MS if busy_timeout_ms is None else busy_timeout_ms
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # LIFO: the connection returned last is the next one handed out. A connection opened for a
        # nested read (e.g. the brand, inside an answer's transaction) then stays idle instead of
        # taking turns with the first: SQLite drops a connection's page cache whenever another
        # connection wrote since its last read, and alternating two of them re-read the pages of
        # every answer from the file (~19 reads per POST /p/{token}; bench/RESULTS.md).
        # (a file only: an in-memory database has one connection per thread, no queue to order)
        database = make_url(url).database or ""
        on_file = database not in ("", ":memory:") and "mode=memory" not in url
        engine = create_engine(url, echo=echo, **({"pool_use_lifo": True} if on_file else {}),
                               connect_args={"timeout": busy / 1000, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={int(busy)}")
            cur.close()

        return engine
    if url.startswith("postgresql"):
        try:
            connect_args = {"options": "-c synchronous_commit=off"} if async_commit else {}
            return create_engine(url, echo=echo, pool_pre_ping=True, connect_args=connect_args)
        except ModuleNotFoundError:
            raise ConfigError("database.url: PostgreSQL needs psycopg: pip install 'reconsent[postgres]'") from None
    raise ConfigError(f"database.url: expected sqlite:///… or postgresql+psycopg://…, got {hide_credentials(url)!r}")


class WalCheckpointer:
    """Checkpoints a SQLite database's write-ahead log from a thread of its own.

    By default SQLite checkpoints in whichever connection's commit pushes the WAL past 1,000 pages:
    that commit then copies the log into the database file and waits for its fsync, a stall of up
    to hundreds of milliseconds on a large database, paid by one unlucky request. A long-running
    process (the web server) turns that off for its own connections and checkpoints here instead,
    every ``interval`` seconds (PASSIVE: never waits for readers or writers, which go on meanwhile).
    Other processes keep SQLite's default, so the log stays bounded even if this one stops.
    No-op on anything but a SQLite file."""

    def __init__(self, engine: Engine, interval: float = 1.0) -> None:
        self.engine = engine
        self.interval = interval
        self.path = engine.url.database if engine.dialect.name == "sqlite" else None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.checkpoints = 0

    def start(self) -> None:
        if not self.path or self.path == ":memory:" or self._thread is not None:
            return

        @event.listens_for(self.engine, "connect")
        def _no_autocheckpoint(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.execute("PRAGMA wal_autocheckpoint=0")

        self.engine.dispose()  # pooled connections opened before now are replaced by ones with the pragma
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=10)
        self._thread = None
        self.checkpoint()  # leave a short log behind

    def checkpoint(self) -> None:
        assert self.path
        conn = sqlite3.connect(self.path, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            self.checkpoints += 1
        finally:
            conn.close()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.checkpoint()
            except sqlite3.Error:  # e.g. busy: the next beat tries again
                log.warning("WAL checkpoint failed; retrying in %.1f s", self.interval, exc_info=True)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def is_transient_db_error(exc: BaseException) -> bool:
    """Errors worth retrying the whole transaction for: SQLite busy/locked, PostgreSQL
    serialization failures and deadlocks, and a dropped connection.

    >>> is_transient_db_error(ValueError("database is locked"))
    False
    """
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    text = str(exc.orig).lower() if exc.orig is not None else ""
    if isinstance(exc, OperationalError) and ("database is locked" in text or "database is busy" in text
                                              or "database table is locked" in text):
        return True
    code = getattr(exc.orig, "sqlstate", None) or getattr(getattr(exc.orig, "diag", None), "sqlstate", None)
    return code in {"40001", "40P01", "55P03", "57P01", "08006", "08003", "08001"}


def run_in_transaction(engine: Engine, work: Callable[[Session], T], *, attempts: int = 20,
                       max_delay: float = 2.0, sleep: Callable[[float], None] = time.sleep) -> T:
    """Run ``work(session)`` in its own transaction, retrying it from the start on a transient
    database error ("database is locked", serialization failure, deadlock) with jittered backoff.

    ``work`` must be safe to run again (it re-reads what it needs). The last error is re-raised
    when every attempt failed; callers then leave the row as it was (nothing is lost).
    """
    return _retrying(lambda: session_scope(engine), work, attempts=attempts, max_delay=max_delay, sleep=sleep)


def run_in_connection(engine: Engine, work: Callable[[Connection], T], *, attempts: int = 20,
                      max_delay: float = 2.0, sleep: Callable[[float], None] = time.sleep) -> T:
    """As ``run_in_transaction``, for Core statements on a bare connection (no ORM session: a
    fraction of the overhead, for the dispatcher's per-message statements)."""
    return _retrying(engine.begin, work, attempts=attempts, max_delay=max_delay, sleep=sleep)


def _retrying(scope: Callable[[], Any], work: Callable[[Any], T], *, attempts: int, max_delay: float,
              sleep: Callable[[float], None]) -> T:
    delay = 0.02
    for attempt in range(1, attempts + 1):
        try:
            with scope() as handle:
                return work(handle)
        except DBAPIError as exc:
            if not is_transient_db_error(exc) or attempt == attempts:
                raise
            kind = type(exc.orig).__name__ if exc.orig is not None else type(exc).__name__
            for hook in on_retry:
                hook(kind)
            log.warning("database busy (%s), retrying the transaction (attempt %d)", kind, attempt)
            sleep(min(max_delay, delay) * random.uniform(0.5, 1.5))
            delay *= 2
    raise AssertionError("unreachable")  # pragma: no cover


def alembic_config(engine: Engine) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (``reconsent init`` and the demo call this)."""
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    command.downgrade(alembic_config(engine), revision)


def is_initialised(engine: Engine) -> bool:
    return inspect(engine).has_table("alembic_version")


def schema_problem(engine: Engine) -> str | None:
    """Why this code cannot work on the database, or None: not initialised, or its schema is at
    another revision than this version's migrations (an upgrade without `reconsent init`)."""
    if not is_initialised(engine):
        return "is not initialised: run `reconsent init` first"
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    heads = set(ScriptDirectory.from_config(alembic_config(engine)).get_heads())
    with engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    if current != heads:
        return (f"has schema revision {', '.join(sorted(current)) or 'none'} but this version of Reconsent needs "
                f"{', '.join(sorted(heads))}: run `reconsent init` to upgrade it")
    return None


def table_of(model: type[SQLModel]) -> Table:
    """The Core table of a SQLModel table class (what its metaclass sets, untyped, as ``__table__``)."""
    table = inspect(model).local_table
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not a table model")
    return table


def rows_changed(result: Result[Any]) -> int:
    """How many rows the UPDATE or DELETE that gave ``result`` changed (``execute`` is typed as returning
    a plain Result; a DML statement's is a CursorResult, which has the count)."""
    return cast(CursorResult[Any], result).rowcount


class _Row(Protocol):
    @property
    def id(self) -> int | None: ...


def saved_id(row: _Row) -> int:
    """The primary key of a row read from (or flushed to) the database: SQLModel types it ``int | None``
    because a new object has none yet."""
    if row.id is None:
        raise ValueError(f"{type(row).__name__} has no id yet: flush it first")
    return row.id
