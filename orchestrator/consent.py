"""Recording what people answer: the preference page, one-click unsubscribe, SMS keywords, sweeps.

Consent changes only through an explicit, recorded action [R1]; each change is a ledger event with
proof [R2] and, when it stops messages, a suppression entry that takes effect before the next send [R7].
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlmodel import Session

from orchestrator import ledger
from orchestrator.domain.model import (
    ConsentAction,
    Channel,
    Purpose,
    RequestState,
    SuppressionReason,
)
from orchestrator.errors import NotFoundError
from orchestrator.ledger import Proof
from orchestrator.runtime import Runtime
from orchestrator.store.db import session_scope
from orchestrator.store.models import Contact, Enrolment, SuppressionEntry

#: reasons an explicit new confirmation may lift (the person opted out and now opts back in)
LIFTABLE = {SuppressionReason.UNSUBSCRIBED.value, SuppressionReason.SMS_STOP.value}


@dataclass(frozen=True)
class Answer:
    """What the person ticked: marketing per channel, and partner sharing (separate purpose)."""

    channels: dict[str, bool]
    partners: bool = False

    @property
    def confirms(self) -> bool:
        return any(self.channels.values())


def contact_channels(contact: Contact) -> list[Channel]:
    return [c for c, present in ((Channel.EMAIL, contact.email), (Channel.SMS, contact.phone)) if present]


def key_of(contact: Contact, channel: Channel | str) -> str | None:
    return contact.email_key if channel == Channel.EMAIL else contact.phone_key


def is_suppressed(session: Session, key: str | None, channel: str) -> bool:
    if not key:
        return False
    return session.get(SuppressionEntry, (key, channel)) is not None


def suppress(session: Session, key: str | None, channel: str, reason: str, source: str, at: datetime) -> bool:
    """Add a suppression entry; False when one was already there (the first reason stays)."""
    if not key or is_suppressed(session, key, channel):
        return False
    session.add(SuppressionEntry(key=key, channel=channel, reason=reason, source=source,
                                 created_at=at))
    session.flush()
    return True


def record_answer(rt: Runtime, contact_id: int, campaign_id: int | None, answer: Answer, proof: Proof) -> str:
    """Apply a preference-page answer; returns the enrolment's state afterwards ("" when none)."""
    now = rt.clock.now()
    with session_scope(rt.engine) as session:
        contact = _live_contact(session, contact_id)
        reachable = contact_channels(contact)
        # Only a "yes" on a channel the person has counts: a forged or stale form ticking a channel
        # we hold no address for must not close the request as confirmed without a confirmation event.
        confirms = any(answer.channels.get(c.value) for c in reachable)
        for channel in reachable:
            chosen = bool(answer.channels.get(channel.value))
            key = key_of(contact, channel)
            if chosen:
                ledger.append(session, contact_id=contact_id, channel=channel, purpose=Purpose.MARKETING,
                              action=ConsentAction.CONFIRMED, at=now, proof=proof)
                session.execute(delete(SuppressionEntry).where(
                    SuppressionEntry.key == key, SuppressionEntry.channel == channel.value,
                    SuppressionEntry.reason.in_(LIFTABLE),  # type: ignore[attr-defined]
                ))
            else:
                ledger.append(session, contact_id=contact_id, channel=channel, purpose=Purpose.MARKETING,
                              action=ConsentAction.DECLINED, at=now, proof=proof)
                suppress(session, key, channel, SuppressionReason.UNSUBSCRIBED, proof.source, now)
            if answer.partners:
                ledger.append(session, contact_id=contact_id, channel=channel, purpose=Purpose.PARTNERS,
                              action=ConsentAction.GRANTED, at=now, proof=proof)
        if confirms:
            contact.consented_at = now
            session.add(contact)
        target = RequestState.CONFIRMED if confirms else RequestState.DECLINED
        return _close_enrolment(session, contact_id, campaign_id, target, now)


def record_unsubscribe(rt: Runtime, contact_id: int, campaign_id: int | None, channel: str, proof: Proof) -> bool:
    """One-click or link unsubscribe from one channel. Idempotent: False when already unsubscribed."""
    now = rt.clock.now()
    with session_scope(rt.engine) as session:
        contact = session.get(Contact, contact_id)
        if contact is None:
            raise NotFoundError("unknown contact")
        key = key_of(contact, channel)
        if contact.erased_at is not None or is_suppressed(session, key, channel):
            _close_enrolment(session, contact_id, campaign_id, RequestState.DECLINED, now)
            return False
        ledger.append(session, contact_id=contact_id, channel=channel, purpose=Purpose.MARKETING,
                      action=ConsentAction.WITHDRAWN, at=now, proof=proof)
        suppress(session, key, channel, SuppressionReason.UNSUBSCRIBED, proof.source, now)
        _close_enrolment(session, contact_id, campaign_id, RequestState.DECLINED, now)
        return True


def _live_contact(session: Session, contact_id: int) -> Contact:
    contact = session.get(Contact, contact_id)
    if contact is None or contact.erased_at is not None:
        raise NotFoundError("unknown contact")
    return contact


def _close_enrolment(session: Session, contact_id: int, campaign_id: int | None, target: RequestState, now: datetime) -> str:
    if campaign_id is None:
        return ""
    enrolment = session.execute(
        select(Enrolment).where(Enrolment.contact_id == contact_id, Enrolment.campaign_id == campaign_id)
    ).scalar_one_or_none()
    if enrolment is None:
        return ""
    if RequestState.can_move(RequestState(enrolment.state), target):
        enrolment.state = target.value
        enrolment.answered_at = now
        session.add(enrolment)
    return enrolment.state
