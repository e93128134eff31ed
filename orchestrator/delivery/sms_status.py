"""Twilio delivery status callbacks [S2], applied to the outbox (the webhook verifies and parses).

Callbacks are idempotent: a status already reached (or passed) is a no-op, and neither our delivery
state nor the stored provider status ever moves backwards (``delivered`` is final: a late ``failed``
changes nothing). A callback only ever matches an SMS row (``unknown message`` otherwise). An error
code meaning the number cannot receive SMS marks the message bounced and suppresses the number;
21610 (the person sent STOP to the provider) suppresses it as an SMS stop.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import col

from orchestrator.consent.service import withdraw
from orchestrator.domain.model import Channel, DeliveryState, SuppressionReason
from orchestrator.runtime import Runtime
from orchestrator.store.db import session_scope
from orchestrator.store.models import Contact, OutboxMessage

#: Twilio MessageStatus → our delivery state
STATUS_MAP = {
    "accepted": DeliveryState.SENT, "scheduled": DeliveryState.SENT, "queued": DeliveryState.SENT,
    "sending": DeliveryState.SENT, "sent": DeliveryState.SENT, "delivered": DeliveryState.DELIVERED,
    "read": DeliveryState.DELIVERED, "undelivered": DeliveryState.FAILED, "failed": DeliveryState.FAILED,
    "canceled": DeliveryState.FAILED,
}
#: Twilio's own order, so the stored provider status never moves backwards either
PROVIDER_RANK = {"accepted": 0, "scheduled": 0, "queued": 1, "sending": 2, "sent": 3, "delivered": 4,
                 "undelivered": 4, "failed": 4, "canceled": 4, "read": 5}
#: callback ErrorCodes meaning the number cannot receive SMS at all: marked undeliverable
UNREACHABLE_CODES = {"30005", "30006", "21211", "21614"}


def apply_sms_status(rt: Runtime, sid: str, status: str, error: str = "") -> str:
    """Apply one callback; returns what happened: ``ignored`` (no sid, or a status we do not map),
    ``unknown message`` (no message has this provider id) or ``ok``.

    ``status`` is Twilio's MessageStatus, lower-cased; ``error`` its ErrorCode (may be empty).
    """
    target = STATUS_MAP.get(status)
    if not sid or target is None:
        return "ignored"
    error = error.strip()[:10]
    now = rt.clock.now()
    with session_scope(rt.engine) as session:
        # SMS rows only: an email row's provider id is its Message-ID, which a callback must never touch
        row = session.execute(select(OutboxMessage).where(
            col(OutboxMessage.provider_id) == sid, col(OutboxMessage.channel) == Channel.SMS.value,
        )).scalar_one_or_none()
        if row is None:
            return "unknown message"
        if target is DeliveryState.FAILED and error in UNREACHABLE_CODES:
            target = DeliveryState.BOUNCED
        if PROVIDER_RANK.get(status, 0) > PROVIDER_RANK.get(row.provider_status or "", -1):
            row.provider_status = status
            session.add(row)
        if not DeliveryState.can_move(DeliveryState(row.status), target):
            return "ok"  # repeated or out of order: nothing moves backwards
        row.status = target.value
        row.updated_at = now
        if error:
            row.last_error = f"Twilio error {error}"
        session.add(row)
        reason = (SuppressionReason.SMS_STOP if error == "21610"
                  else SuppressionReason.BOUNCED if target is DeliveryState.BOUNCED else None)
        if reason is not None:
            contact = session.get(Contact, row.contact_id)
            if contact is not None:
                withdraw(session, contact.phone_key, Channel.SMS.value, reason, f"twilio:{error}", now)
    return "ok"
