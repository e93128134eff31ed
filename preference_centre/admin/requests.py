"""The data-subject request register as the console shows it: received, due, done, overdue.

Issue 5 is adding a DSR register to ``orchestrator.rights``; until it lands on this branch the console
keeps its own, derived from the audit log: an operator records a request when it arrives
(``dsr.received``: kind, received date, the address's suppression key), and a later export (access)
or erasure (erasure) of the same key completes it. ``list_requests`` is the one query the page
uses, so switching it to issue 5's register is a change in this module only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select
from sqlmodel import col

from orchestrator.domain.clock import as_utc
from orchestrator.runtime import Runtime
from orchestrator.store.db import session_scope
from orchestrator.store.models import AdminAudit

KINDS = {"access": "dsr.export", "erasure": "dsr.erase"}


@dataclass(frozen=True)
class DsrRequest:
    id: int
    kind: str  # access | erasure
    key: str  # suppression key of the address (never the address)
    received_on: date
    due_on: date
    recorded_by: str
    completed_on: date | None

    def overdue(self, today: date) -> bool:
        """Not completed and past its due date.

        >>> r = DsrRequest(1, "access", "k", date(2026, 1, 1), date(2026, 1, 31), "a@b.c", None)
        >>> r.overdue(date(2026, 2, 1)), r.overdue(date(2026, 1, 31))
        (True, False)
        """
        return self.completed_on is None and today > self.due_on


def list_requests(rt: Runtime) -> list[DsrRequest]:
    """Every recorded request, oldest due first; open ones before completed ones."""
    due_days = rt.config.admin.dsr_due_days
    with session_scope(rt.engine) as session:
        rows = list(session.execute(
            select(AdminAudit).where(col(AdminAudit.action).in_(["dsr.received", *KINDS.values()]),
                                     col(AdminAudit.outcome) == "ok").order_by(col(AdminAudit.id))).scalars())
    out = []
    for row in rows:
        if row.action != "dsr.received":
            continue
        kind = str(row.detail.get("kind", "access"))
        received = date.fromisoformat(str(row.detail.get("received_on") or as_utc(row.at).date().isoformat()))
        done = next((as_utc(r.at).date() for r in rows
                     if r.id > (row.id or 0) and r.action == KINDS.get(kind) and r.target == row.target), None)
        assert row.id is not None and row.target is not None
        out.append(DsrRequest(row.id, kind, row.target, received, received + timedelta(days=due_days),
                              row.user_email, done))
    return sorted(out, key=lambda r: (r.completed_on is not None, r.due_on, r.id))
