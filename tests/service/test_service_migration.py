"""Migration 0003_service down and up again, on SQLite and PostgreSQL, keeping existing rows."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import inspect, text

from orchestrator.runtime import Runtime
from orchestrator.store.db import downgrade, migrate
from tests.support.factories import launch, person


def test_service_migration_downgrades_and_upgrades_with_data(
    make_rt: Callable[..., Runtime], write_csv: Callable[..., Path]
) -> None:
    rt = make_rt()
    launch(rt, write_csv([person(1), person(2)]))
    downgrade(rt.engine, "0001")
    insp = inspect(rt.engine)
    assert "service_lock" not in insp.get_table_names() and "apscheduler_jobs" not in insp.get_table_names()
    assert "send_started_at" not in {c["name"] for c in insp.get_columns("outbox")}
    assert "deadline_at" not in {c["name"] for c in insp.get_columns("enrolment")}
    migrate(rt.engine)
    insp = inspect(rt.engine)
    assert {"service_lock", "apscheduler_jobs"} <= set(insp.get_table_names())
    assert "send_started_at" in {c["name"] for c in insp.get_columns("outbox")}
    with rt.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM outbox WHERE send_started_at IS NULL")).scalar_one() == 6
