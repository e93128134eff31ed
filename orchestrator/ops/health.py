"""What the web server asks of the database outside any feature: is it there, and (SQLite) the
write-ahead log checkpointer its lifespan runs. The web layer calls these instead of the store."""

from __future__ import annotations

import logging

from sqlalchemy import text

from orchestrator.runtime import Runtime
from orchestrator.store.db import WalCheckpointer

log = logging.getLogger("reconsent.web")


def database_reachable(rt: Runtime) -> bool:
    """One ``SELECT 1``; False (and the reason logged) when the database does not answer."""
    try:
        with rt.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception:
        log.exception("health check failed")
        return False
    return True


def wal_checkpointer(rt: Runtime) -> WalCheckpointer:
    """The checkpointer of the runtime's database (a no-op outside SQLite), not started yet."""
    return WalCheckpointer(rt.engine)
