"""Domain vocabulary: channels, purposes, consent actions and the explicit state machines.

A transition that goes backwards is refused here, in one place, not checked ad hoc elsewhere.

>>> DeliveryState.can_move(DeliveryState.DELIVERED, DeliveryState.SENT)
False
>>> DeliveryState.can_move(DeliveryState.DELIVERED, DeliveryState.FAILED)
False
>>> RequestState.can_move(RequestState.PENDING, RequestState.CONFIRMED)
True
"""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"


class Purpose(StrEnum):
    #: our own news and offers
    MARKETING = "marketing"
    #: sharing with partners: a separate purpose, never implied, never pre-selected
    PARTNERS = "partners"


class ContactKind(StrEnum):
    CUSTOMER = "customer"
    PROSPECT = "prospect"


class ConsentAction(StrEnum):
    GRANTED = "granted"
    CONFIRMED = "confirmed"
    DECLINED = "declined"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"
    #: the person confirmed another channel and left this one unticked: no consent here, but neither
    #: an unsubscribe (withdrawn) nor a refusal of the whole request (declined)
    NOT_GRANTED = "not_granted"
    #: a professional informed by a notice (opt-out regime, orchestrator.domain.b2b) who did not object
    #: by the deadline: not a consent, the proof that they were informed and may still be written to
    NOTIFIED = "notified"


class ConsentSource(StrEnum):
    CAMPAIGN = "campaign"
    PREFERENCE_CENTRE = "preference_centre"
    ONE_CLICK = "one_click"
    SMS_KEYWORD = "sms_keyword"
    IMPORT = "import"
    OPERATOR = "operator"
    API = "api"
    SWEEP = "sweep"


class SuppressionReason(StrEnum):
    UNSUBSCRIBED = "unsubscribed"
    NO_RESPONSE = "no_response"
    BOUNCED = "bounced"
    COMPLAINT = "complaint"
    SMS_STOP = "sms_stop"
    ERASED = "erased"
    IMPORTED = "imported"
    #: a channel left unticked by someone who confirmed another (see ConsentAction.NOT_GRANTED)
    NOT_GRANTED = "not_granted"


class CampaignState(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"

    @staticmethod
    def can_move(old: CampaignState, new: CampaignState) -> bool:
        return new in _CAMPAIGN_MOVES.get(old, frozenset())


_CAMPAIGN_MOVES: dict[CampaignState, frozenset[CampaignState]] = {
    CampaignState.DRAFT: frozenset({CampaignState.SCHEDULED, CampaignState.RUNNING}),
    CampaignState.SCHEDULED: frozenset({CampaignState.RUNNING, CampaignState.DRAFT}),
    CampaignState.RUNNING: frozenset({CampaignState.PAUSED, CampaignState.COMPLETED}),
    CampaignState.PAUSED: frozenset({CampaignState.RUNNING, CampaignState.COMPLETED}),
    CampaignState.COMPLETED: frozenset(),
}


class RequestState(StrEnum):
    """State of one enrolment (a consent request) [R10]."""

    PENDING = "pending"
    CONFIRMED = "confirmed"
    DECLINED = "declined"
    EXPIRED = "expired"
    #: a notice (opt-out regime) whose deadline passed without an objection: the person stays
    KEPT = "kept"

    @staticmethod
    def can_move(old: RequestState, new: RequestState) -> bool:
        # Only a pending request moves; an answer is final for that campaign. A person can still
        # change their mind later through the preference centre, which records new consent events
        # without reopening the request.
        return old is RequestState.PENDING and new is not RequestState.PENDING


class DeliveryState(StrEnum):
    """State of one outbox row. Ranks only go up; terminal states never change."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    BOUNCED = "bounced"
    FAILED = "failed"
    SKIPPED = "skipped"

    @staticmethod
    def can_move(old: DeliveryState, new: DeliveryState) -> bool:
        if old in _DELIVERY_TERMINAL:
            return False
        return _DELIVERY_RANK[new] > _DELIVERY_RANK[old] or (
            old is DeliveryState.SENDING and new is DeliveryState.PENDING  # released claim / retry
        )


_DELIVERY_RANK = {
    DeliveryState.PENDING: 0,
    DeliveryState.SENDING: 1,
    DeliveryState.SENT: 2,
    DeliveryState.DELIVERED: 3,
    DeliveryState.BOUNCED: 4,
    DeliveryState.FAILED: 4,
    DeliveryState.SKIPPED: 4,
}
#: delivered is final too: a late "failed" or "undelivered" report after the handset confirmed
#: receipt (out-of-order provider callbacks) must not turn a received message into a failure
_DELIVERY_TERMINAL = frozenset(
    {DeliveryState.DELIVERED, DeliveryState.BOUNCED, DeliveryState.FAILED, DeliveryState.SKIPPED}
)


def refusal_state(suppress: str | None) -> DeliveryState:
    """The one classification of a provider's final refusal at send time: **bounced** when it
    suppresses the address as bounced (SMTP 5.1.x "no such mailbox", a Twilio invalid number), else
    **failed**. The outbox row, the dispatch summary and ``campaign status`` all read it.

    >>> refusal_state("bounced"), refusal_state("sms_stop"), refusal_state(None)
    (<DeliveryState.BOUNCED: 'bounced'>, <DeliveryState.FAILED: 'failed'>, <DeliveryState.FAILED: 'failed'>)
    """
    return DeliveryState.BOUNCED if suppress == SuppressionReason.BOUNCED.value else DeliveryState.FAILED


class SkipReason(StrEnum):
    """Why dispatch did not send a due message (counted, like warehouse's reasons)."""

    SUPPRESSED = "suppressed"
    ANSWERED = "answered"
    EXPIRED = "expired"
    NO_ADDRESS = "no_address"
    OUTSIDE_WINDOW = "outside_window"
    CAMPAIGN_NOT_RUNNING = "campaign_not_running"
    #: the person chose a pause on this channel that has not ended (issue 18; consent.alternatives)
    PAUSED = "paused"
