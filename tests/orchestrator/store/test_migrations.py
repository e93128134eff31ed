"""Alembic migrations: one head, upgrade/downgrade both ways, and the schema matches the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlmodel import SQLModel

import orchestrator.store.models  # noqa: F401
from orchestrator.runtime import Runtime
from orchestrator.store.db import alembic_config, downgrade, migrate


def test_single_head() -> None:
    from orchestrator.store.db import make_engine

    script = ScriptDirectory.from_config(alembic_config(make_engine("sqlite://")))
    assert len(script.get_heads()) == 1


def test_migrated_schema_matches_the_models(rt: Runtime) -> None:
    with rt.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": False})
        diff = compare_metadata(ctx, SQLModel.metadata)
    assert diff == []


def test_downgrade_to_base_and_upgrade_again(rt: Runtime) -> None:
    downgrade(rt.engine, "base")
    assert set(inspect(rt.engine).get_table_names()) <= {"alembic_version"}
    migrate(rt.engine)
    assert "consent_event" in inspect(rt.engine).get_table_names()
