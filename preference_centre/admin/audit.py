"""The console's audit log: every action, who did it and when. Targets are ids or suppression keys
(keyed hashes), never an address, so the log itself holds no one's contact details."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlmodel import col

from orchestrator.runtime import Runtime
from orchestrator.store.db import session_scope
from orchestrator.store.models import AdminAudit
from preference_centre.admin.auth import Operator


def record(rt: Runtime, who: Operator | None, action: str, *, target: str | None = None,
           outcome: str = "ok", ip: str | None = None, login: str | None = None, **detail: Any) -> None:
    """Append one entry. ``login`` names the account for sign-in attempts (no Operator yet)."""
    with session_scope(rt.engine) as session:
        session.add(AdminAudit(at=rt.clock.now(), user_id=who.id if who else None,
                               user_email=who.email if who else (login or "-"), action=action,
                               target=target, outcome=outcome, detail=detail, ip=ip))


def recent(rt: Runtime, limit: int = 200) -> list[AdminAudit]:
    with session_scope(rt.engine) as session:
        return list(session.execute(select(AdminAudit).order_by(col(AdminAudit.id).desc()).limit(limit)).scalars())
