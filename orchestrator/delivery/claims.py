"""What a worker holds in memory about one claimed batch, and about one sent message waiting for its
commit. Plain data: the outbox (``outbox.py``) writes, the worker and the recorder update these."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from orchestrator.delivery.webhooks import WebhookReport


@dataclass
class DispatchReport:
    sent: int = 0
    failed: int = 0
    retried: int = 0
    #: refused for good because the address is dead (5.1.x): the rows ``campaign status`` counts as bounced
    bounced: int = 0
    deferred: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    #: webhooks posted in the same run (issue 17); None before the run's webhook task ended
    webhooks: WebhookReport | None = None

    def summary(self) -> str:
        skipped = ", ".join(f"{n} {reason}" for reason, n in sorted(self.skipped.items())) or "none"
        hooks = self.webhooks
        posted = (f"; webhooks: {hooks.delivered} delivered, {hooks.failed_attempts} failed attempt(s)"
                  if hooks is not None and (hooks.delivered or hooks.failed_attempts) else "")
        return (f"sent {self.sent}, failed {self.failed}, bounced {self.bounced}, retry later {self.retried}, "
                f"waiting for send window {self.deferred}, skipped: {skipped}{posted}")

    def add(self, other: DispatchReport) -> None:
        self.sent += other.sent
        self.failed += other.failed
        self.bounced += other.bounced
        self.retried += other.retried
        self.deferred += other.deferred
        self.skipped.update(other.skipped)
        if other.webhooks is not None:
            if self.webhooks is None:
                self.webhooks = other.webhooks
            else:
                self.webhooks.delivered += other.webhooks.delivered
                self.webhooks.failed_attempts += other.webhooks.failed_attempts
                self.webhooks.given_up += other.webhooks.given_up


#: a marked row before its mark: (send_started_at, first_attempt_at, message_id)
Before = tuple[datetime | None, datetime | None, str | None]


@dataclass
class Claim:
    """One batch: row id → True when that row was already marked by a dead worker (unknown outcome).

    ``marked``: rows this worker marked, with what they were before the mark, so a marked row never
    handed to the channel can be given back exactly as it was. ``started``: rows handed to the
    channel. ``unrecorded``: of those, rows whose result is not committed yet (the claim stays
    leased, and renewed, until it is 0)."""

    claim_id: str
    rows: dict[int, bool]
    started: set[int] = field(default_factory=set)
    marked: dict[int, Before] = field(default_factory=dict)
    unrecorded: int = 0
    finished: bool = False
    #: marked rows whose message could not be built, their failure not written yet: (row, campaign, reason)
    unbuilt: list[tuple[int, int, str]] = field(default_factory=list)
    #: (campaign, reason) → messages that could not be built, logged once per batch
    build_errors: Counter[tuple[int, str]] = field(default_factory=Counter)


@dataclass
class Sent:
    """A message the provider accepted, its "sent" waiting for the recorder's flush; ``values``:
    the bind parameters of ``outbox.write_sent``."""

    row_id: int
    values: dict[str, Any]
    report: DispatchReport
    claim: Claim
