"""The data-subject request register as the console shows it: the same register as
``reconsent dsr list`` (:mod:`orchestrator.proof.requests`), one row per request with its due date
(received + one calendar month) and whether it is done or overdue.

Requests recorded here, from the CLI (`dsr add`), or by the preference centre's self-service pages
all land in that one table; an export or erasure done from the console closes the person's open
request of that kind (``handled_by`` = the operator).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from orchestrator.domain.clock import as_utc
from orchestrator.proof import requests as dsr
from orchestrator.runtime import Runtime


@dataclass(frozen=True)
class RequestRow:
    id: int
    kind: str  # one of orchestrator.proof.requests.KINDS
    key: str  # suppression key of the address (never the address)
    received_on: date
    due_on: date
    handled_by: str
    completed_on: date | None

    def overdue(self, today: date) -> bool:
        """Not completed and past its due date.

        >>> r = RequestRow(1, "access", "k", date(2026, 1, 1), date(2026, 2, 1), "", None)
        >>> r.overdue(date(2026, 2, 2)), r.overdue(date(2026, 2, 1))
        (True, False)
        """
        return self.completed_on is None and today > self.due_on


def list_requests(rt: Runtime) -> list[RequestRow]:
    """Every request of the register, open ones first, earliest due first."""
    rows = []
    for r in dsr.list_requests(rt):
        assert r.id is not None
        done = as_utc(r.handled_at).date() if r.state != dsr.OPEN and r.handled_at else None
        rows.append(RequestRow(r.id, r.kind, r.subject_key, as_utc(r.received_at).date(),
                               as_utc(r.due_at).date(), r.handled_by or "", done))
    return sorted(rows, key=lambda r: (r.completed_on is not None, r.due_on, r.id))
