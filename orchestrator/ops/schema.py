"""The database seen from the commands: is its schema the one this version needs, bring it there, and
say in one line why it cannot be used.

``reconsent init`` upgrades; every other command that needs the database refuses to run on a schema
that is missing or at another revision (SPEC §11), naming what to do.
"""

from __future__ import annotations

import re

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from orchestrator.config_values import hide_credentials
from orchestrator.runtime import Runtime
from orchestrator.store.db import migrate, schema_problem


def schema_refusal(rt: Runtime) -> str | None:
    """Why the commands cannot work on this runtime's database, or None when its schema is current
    ("is not initialised: run `reconsent init` first", "has schema revision … run `reconsent init`…")."""
    return schema_problem(rt.engine)


def upgrade_schema(rt: Runtime) -> None:
    """Create the schema, or upgrade it to this version's migrations (idempotent)."""
    migrate(rt.engine)


def database_problem(exc: BaseException, url: str | None) -> str | None:
    """One line naming the database (its host, or its file) and why it cannot be used, for an error
    of the database or its driver; None for any other error. Never shows a password.

    >>> from sqlalchemy.exc import OperationalError
    >>> err = OperationalError("SELECT 1", {}, Exception('connection failed: connection to server at '
    ...     '"10.0.0.5", port 5432 failed: FATAL:  password authentication failed for user "app"'))
    >>> database_problem(err, "postgresql://app:s3cret@db:5432/crm").split(") cannot be used: ")
    ['database db:5432 (postgresql://app:***@db:5432/crm', 'password authentication failed for user "app"']
    """
    if isinstance(exc, sa_exc.ArgumentError | sa_exc.NoSuchModuleError):
        return hide_credentials(f"database.url: {exc}")
    if not isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.DataError):
        return None
    reason = str(exc.orig if exc.orig is not None else exc)
    reason = re.sub(r"^connection failed: (connection to server at .*?, port \d+ failed: )?", "", reason)
    reason = ". ".join(part.strip() for part in reason.splitlines() if part.strip())
    reason = re.sub(r"\s+", " ", reason).replace("FATAL: ", "")
    return hide_credentials(f"database {_where(url)} cannot be used: {reason}")


def _where(url: str | None) -> str:
    """``host:port (url)`` for a database server, the file for SQLite."""
    if not url:
        return "(unknown)"
    try:
        parsed = make_url(url)
    except sa_exc.ArgumentError:
        return hide_credentials(url)
    if parsed.get_backend_name() == "sqlite":
        return f"file {parsed.database}"
    host = f"{parsed.host or 'localhost'}:{parsed.port}" if parsed.port else parsed.host or "localhost"
    return f"{host} ({hide_credentials(url)})"
