"""The database schema seen from the commands: is it the one this version needs, and bring it there.

``reconsent init`` upgrades; every other command that needs the database refuses to run on a schema
that is missing or at another revision (SPEC §11), naming what to do.
"""

from __future__ import annotations

from orchestrator.runtime import Runtime
from orchestrator.store.db import migrate, schema_problem


def schema_refusal(rt: Runtime) -> str | None:
    """Why the commands cannot work on this runtime's database, or None when its schema is current
    ("is not initialised: run `reconsent init` first", "has schema revision … run `reconsent init`…")."""
    return schema_problem(rt.engine)


def upgrade_schema(rt: Runtime) -> None:
    """Create the schema, or upgrade it to this version's migrations (idempotent)."""
    migrate(rt.engine)
