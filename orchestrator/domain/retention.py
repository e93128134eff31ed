"""Retention clocks: when a contact's personal data must go, and why. Pure: facts in, decision out.

>>> from datetime import date
>>> policy = RetentionPolicy(prospect_months=36, customer_months=36, action="anonymise",
...                          after_expiry="anonymise", after_decline="keep")
>>> facts = ContactFacts(contact_id=7, kind="prospect", last_activity=date(2022, 1, 31),
...                      relationship_ended=None, consented_on=None, created_on=date(2021, 6, 1))
>>> decide(facts, policy, date(2025, 1, 30)) is None
True
>>> decide(facts, policy, date(2025, 1, 31)).reason
'prospect, last activity 2022-01-31: retention.prospect_months = 36 reached on 2025-01-31'
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date

KEEP = "keep"


@dataclass(frozen=True)
class RetentionPolicy:
    prospect_months: int
    customer_months: int
    action: str  # anonymise | delete, when a clock runs out
    after_expiry: str  # keep | anonymise | delete, after an unanswered re-consent request
    after_decline: str  # keep | anonymise | delete, after a refusal


@dataclass(frozen=True)
class ContactFacts:
    contact_id: int
    kind: str  # customer | prospect
    last_activity: date | None
    relationship_ended: date | None
    consented_on: date | None  # last explicit confirmation: a new consent restarts the clock
    created_on: date
    #: the newest answered consent request: confirmed | declined | expired (None: never asked)
    last_request: str | None = None
    request_pending: bool = False


@dataclass(frozen=True)
class Decision:
    contact_id: int
    action: str  # anonymise | delete
    reason: str


def add_months(day: date, months: int) -> date:
    """Calendar months, clamped to the month's end.

    >>> add_months(date(2026, 1, 31), 1)
    datetime.date(2026, 2, 28)
    """
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def decide(facts: ContactFacts, policy: RetentionPolicy, today: date) -> Decision | None:
    """None keeps the contact; otherwise what to do and a sentence saying why.

    A contact with a pending request is left alone: the campaign's sweep decides at its deadline.
    An answer decides first (per ``after_expiry`` / ``after_decline``), then the clock of the kind.
    """
    if facts.request_pending:
        return None
    if facts.last_request == "expired" and policy.after_expiry != KEEP:
        return Decision(facts.contact_id, policy.after_expiry,
                        f"{facts.kind}, did not answer a re-consent request: "
                        f"retention.after_expiry = {policy.after_expiry}")
    if facts.last_request == "declined" and policy.after_decline != KEEP:
        return Decision(facts.contact_id, policy.after_decline,
                        f"{facts.kind}, refused a re-consent request: retention.after_decline = {policy.after_decline}")
    if facts.kind == "customer":
        label, months, setting = "relationship ended", policy.customer_months, "customer_months"
        start = facts.relationship_ended
        if start is None:
            label, start = "last activity", facts.last_activity
    else:
        label, months, setting = "last activity", policy.prospect_months, "prospect_months"
        start = facts.last_activity
    if start is None:
        label, start = "imported", facts.created_on
    if facts.consented_on is not None and facts.consented_on > start:
        label, start = "last confirmed consent", facts.consented_on
    ends = add_months(start, months)
    if today < ends:
        return None
    return Decision(facts.contact_id, policy.action,
                    f"{facts.kind}, {label} {start.isoformat()}: "
                    f"retention.{setting} = {months} reached on {ends.isoformat()}")
