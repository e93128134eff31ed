"""Whether one due outbox row may be sent now, decided immediately before the send [R3, O3, R7].

>>> from datetime import datetime, timezone
>>> t = datetime(2026, 1, 1, tzinfo=timezone.utc)
>>> skip_reason(SendFacts(campaign_state="running", request_state="confirmed", suppressed=False,
...     has_address=True, deadline=t, now=t))
<SkipReason.ANSWERED: 'answered'>
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from orchestrator.domain.model import CampaignState, RequestState, SkipReason


@dataclass(frozen=True)
class SendFacts:
    campaign_state: str
    request_state: str
    suppressed: bool
    has_address: bool
    deadline: datetime
    now: datetime


def skip_reason(facts: SendFacts) -> SkipReason | None:
    """None means send; otherwise the reason the row is skipped for good.

    Order matters only for which reason is recorded: suppression first (the legal bar), then an
    answer, then the deadline.
    """
    if not facts.has_address:
        return SkipReason.NO_ADDRESS
    if facts.suppressed:
        return SkipReason.SUPPRESSED
    if facts.request_state != RequestState.PENDING:
        closed = facts.request_state in (RequestState.EXPIRED, RequestState.KEPT)  # the deadline, not an answer
        return SkipReason.EXPIRED if closed else SkipReason.ANSWERED
    if facts.now >= facts.deadline:
        return SkipReason.EXPIRED
    if facts.campaign_state == CampaignState.COMPLETED:
        return SkipReason.CAMPAIGN_NOT_RUNNING
    return None
