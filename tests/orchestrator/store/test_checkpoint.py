"""The web server checkpoints SQLite's write-ahead log from a thread of its own: its connections
never checkpoint in a commit (no stall for the request that crosses the threshold), and the log is
still copied into the database file, beat after beat."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import text
from starlette.testclient import TestClient

from orchestrator.runtime import Runtime
from orchestrator.store.db import WalCheckpointer, make_engine
from preference_centre.app import create_app


def wal_state(path: Path) -> tuple[int, int]:
    """(frames in the log, frames already copied into the database) — from a connection of its own."""
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        _busy, log, done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return log, done
    finally:
        conn.close()


def test_connections_leave_checkpoints_to_the_thread(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
        assert conn.execute(text("PRAGMA wal_autocheckpoint")).scalar_one() == 1000  # SQLite's default
    checkpointer = WalCheckpointer(engine, interval=0.05)
    checkpointer.start()
    try:
        with engine.begin() as conn:
            assert conn.execute(text("PRAGMA wal_autocheckpoint")).scalar_one() == 0
        for n in range(30):  # ~1,500 pages: past the default threshold many times over
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO t (v) VALUES (:v)"), [{"v": "x" * 2000}] * 50)
        deadline = time.monotonic() + 10
        while checkpointer.checkpoints < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert checkpointer.checkpoints >= 2
    finally:
        checkpointer.stop()
    log, done = wal_state(path)
    assert log == done  # everything in the log is in the database file
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar_one() == 1500
    engine.dispose()


def test_the_server_runs_the_checkpointer_on_sqlite_only(make_rt: Callable[..., Runtime]) -> None:
    rt = make_rt()
    app = create_app(rt)
    checkpointer: WalCheckpointer = app.state.checkpointer
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        assert (checkpointer._thread is not None) == (rt.engine.dialect.name == "sqlite")
    assert checkpointer._thread is None


def test_sqlite_pool_hands_out_the_connection_returned_last(tmp_path: Path) -> None:
    """A read nested inside a transaction opens a second connection; afterwards the first one keeps
    serving (taking turns, each would find the other's writes and drop its page cache)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    with engine.begin() as outer:
        outer.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        first = outer.connection.dbapi_connection
        with engine.connect() as nested:  # e.g. read_brand inside an answer's session
            assert nested.connection.dbapi_connection is not first
            nested.execute(text("SELECT 1"))
    for _ in range(3):
        with engine.begin() as conn:
            assert conn.connection.dbapi_connection is first
            conn.execute(text("INSERT INTO t DEFAULT VALUES"))
    engine.dispose()
