"""Who is inactive [R4]: customers after N months without activity (default 12), prospects after
N months (default 36, the CNIL's three-year rule).

>>> from datetime import date
>>> rule = AudienceRule()
>>> rule.is_inactive("customer", date(2024, 1, 1), today=date(2026, 1, 2))
True
>>> rule.is_inactive("prospect", date(2024, 1, 1), today=date(2026, 1, 2))
False
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from orchestrator.domain.model import ContactKind


def months_before(day: date, months: int) -> date:
    """The same day ``months`` months earlier, clamped to the month's end.

    >>> months_before(date(2026, 3, 31), 1)
    datetime.date(2026, 2, 28)
    """
    total = day.year * 12 + (day.month - 1) - months
    year, month0 = divmod(total, 12)
    month = month0 + 1
    for last in (31, 30, 29, 28):
        try:
            return date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class AudienceRule:
    kinds: tuple[ContactKind, ...] = field(
        default=(ContactKind.CUSTOMER, ContactKind.PROSPECT)
    )
    customer_inactive_months: int = 12
    prospect_inactive_months: int = 36
    #: issue 18: ask about this newly listed partner the people who grant some partner and were never
    #: asked about this one (instead of the inactivity rule); None: an ordinary re-consent audience
    ask_partner: str | None = None
    #: professionals in the audience: include | exclude | only (orchestrator.domain.b2b)
    b2b: str = "include"
    #: what professionals receive: consent (a request) | notice (opt-out, email only)
    b2b_regime: str = "consent"
    #: the template of the notice (b2b_regime = "notice")
    notice_template: str = "notice"

    def months_for(self, kind: str) -> int:
        if kind == ContactKind.CUSTOMER:
            return self.customer_inactive_months
        return self.prospect_inactive_months

    def cutoff(self, kind: str, today: date) -> date:
        """Contacts of ``kind`` whose last activity is on or before this day are inactive."""
        return months_before(today, self.months_for(kind))

    def is_inactive(self, kind: str, last_activity: date | None, *, today: date) -> bool:
        if kind not in self.kinds:
            return False
        if last_activity is None:
            return True  # never active: nothing shows a live relationship
        return last_activity <= self.cutoff(kind, today)
