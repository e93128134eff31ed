"""The deadline sweep [R5]: whoever never answered is expired, suppressed (no_response), and their
personal data goes per retention policy (a channel granted or confirmed since the request
was made is kept, and so is the person). Suppressed people are never messaged again, even after a
re-import, because the suppression entry (a keyed hash) outlives the profile."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, and_, func, or_, select, true, update
from sqlmodel import Session, col

from orchestrator.consent import enrolments, ledger, suppression, webhooks
from orchestrator.consent.ledger import Proof
from orchestrator.consent.prior import held_channels
from orchestrator.domain import b2b as pro
from orchestrator.domain.audience import months_before
from orchestrator.domain.clock import as_utc
from orchestrator.domain.model import (
    CampaignState,
    Channel,
    ConsentAction,
    ConsentSource,
    DeliveryState,
    Purpose,
    RequestState,
    SkipReason,
    SuppressionReason,
)
from orchestrator.proof.retention import erase_many, scrub_profile
from orchestrator.runtime import Runtime
from orchestrator.store.db import session_scope
from orchestrator.store.models import Campaign, ConsentEvent, Contact, Enrolment, OutboxMessage, SuppressionEntry

BATCH = 5000


@dataclass
class SweepReport:
    campaigns: list[int] = field(default_factory=list)
    expired: int = 0
    suppressed: int = 0
    anonymised: int = 0
    deleted: int = 0
    #: professionals of a notice campaign who did not object: kept under the opt-out regime
    kept: int = 0

    def summary(self) -> str:
        kept = f", {self.kept} kept (B2B notice, no objection)" if self.kept else ""
        return (f"{len(self.campaigns)} campaign(s) past deadline: {self.expired} expired, "
                f"{self.suppressed} addresses suppressed (no_response), {self.anonymised} anonymised, "
                f"{self.deleted} deleted{kept}")


def sweep(rt: Runtime) -> SweepReport:
    """Close every running or paused campaign past its deadline."""
    report = SweepReport()
    now = rt.clock.now()
    with session_scope(rt.engine) as session:
        due = list(session.execute(select(col(Campaign.id)).where(
            col(Campaign.state).in_([CampaignState.RUNNING.value, CampaignState.PAUSED.value]),
            col(Campaign.deadline_at) <= now,
        )).scalars())
    for campaign_id in due:
        report.campaigns.append(campaign_id)
        expire_pending(rt, campaign_id, now, report)
        settle_notice_sms(rt, campaign_id, now, report)
        with session_scope(rt.engine) as session:
            session.execute(update(OutboxMessage).where(
                col(OutboxMessage.campaign_id) == campaign_id, _abandoned(now),
            ).values(status=DeliveryState.SKIPPED.value, skip_reason=SkipReason.EXPIRED.value,
                     claimed_by=None, claimed_until=None, updated_at=now))
            campaign = session.get(Campaign, campaign_id)
            assert campaign is not None
            campaign.state = CampaignState.COMPLETED.value
            campaign.completed_at = now
            session.add(campaign)
            counts = dict(session.execute(
                select(col(Enrolment.state), func.count()).where(col(Enrolment.campaign_id) == campaign_id)
                .group_by(col(Enrolment.state))).all())
            webhooks.campaign_completed(session, campaign_id, campaign.name,
                                        {s.value: int(counts.get(s.value, 0)) for s in RequestState}, now)
    return report


def expire_pending(rt: Runtime, campaign_id: int, now: datetime, report: SweepReport, *,
                   own_deadline_only: bool = False) -> None:
    """Expire a campaign's pending requests in batches (all of them, or with ``own_deadline_only``
    those whose per-person deadline has passed, as in the standing evergreen campaign)."""
    last_id = 0
    with session_scope(rt.engine) as session:
        plan = session.execute(select(col(Campaign.plan)).where(col(Campaign.id) == campaign_id)).scalar()
    regime = ((plan or {}).get("audience") or {}).get("b2b_regime", pro.CONSENT)
    while True:
        # Keyset pagination over the campaign's pending enrolments: each batch is one
        # transaction of a handful of set-based statements, whatever its size (see bench/).
        with session_scope(rt.engine) as session:
            query: Select[*tuple[Any, ...]] = (
                select(col(Enrolment.id), col(Enrolment.contact_id).label("enrolled"), col(Enrolment.enrolled_at),
                       col(Contact.id).label("contact_id"), col(Contact.email),
                       col(Contact.phone), col(Contact.email_key), col(Contact.phone_key), col(Contact.erased_at),
                       col(Enrolment.enrolled_at), col(Contact.b2b))
                .join(Contact, col(Contact.id) == col(Enrolment.contact_id), isouter=True)
                .where(col(Enrolment.campaign_id) == campaign_id, col(Enrolment.state) == RequestState.PENDING.value,
                       col(Enrolment.id) > last_id)
                .order_by(col(Enrolment.id)).limit(BATCH)
            )
            if own_deadline_only:
                query = query.where(col(Enrolment.deadline_at) <= now)
            batch = session.execute(query).all()
            if not batch:
                return
            last_id = batch[-1].id
            _expire_batch(rt, session, batch, campaign_id, now, report, regime)


def _abandoned(now: datetime) -> Any:
    """Outbox rows nobody is sending: queued, or claimed by a worker whose lease ran out. A row
    whose sender still holds its lease is left alone, so a send in flight is recorded as sent."""
    return or_(
        col(OutboxMessage.status) == DeliveryState.PENDING.value,
        and_(col(OutboxMessage.status) == DeliveryState.SENDING.value, col(OutboxMessage.claimed_until) < now),
    )


def _expire_batch(rt: Runtime, session: Session, batch: Sequence[Row[Any]], campaign_id: int, now: datetime,
                  report: SweepReport, regime: str = pro.CONSENT) -> None:
    """Expire a batch of pending enrolments: per contact and reachable channel, one suppression entry
    (no_response) unless one exists and one ``expired`` ledger event; then the retention policy.

    A professional under the notice (``b2b_regime = "notice"``) who did not object is kept instead:
    the request closes as ``kept``, the email address is not suppressed, a ``notified`` ledger event
    (source sweep) records that they were informed and did not object, and their data stays. Their
    other channel (SMS, opt-in) is expired as anyone's (and so is that of a professional who answered
    "keep", which asks nothing about SMS: :func:`settle_notice_sms`)."""
    notice = _notice_rows(session, batch, regime)
    kept = enrolments.close(session, RequestState.KEPT, now, ids=sorted(notice))
    # Conditional on still being pending: a person who answered between the batch's SELECT and this
    # UPDATE keeps their answer (PostgreSQL re-checks the condition after waiting for their commit;
    # SQLite refuses the stale write). Only the rows this statement expired go on.
    expired = enrolments.close(session, RequestState.EXPIRED, now, ids=[r.id for r in batch if r.id not in notice])
    if len(expired) + len(kept) != len(batch):
        batch = [r for r in batch if r.id in expired or r.id in kept]
    report.expired += len(expired)
    report.kept += len(kept)
    # An enrolment's outbox rows are its campaign's rows for its contact: this finds them through the
    # (campaign_id, contact_id, …) unique index, where enrolment_id (not indexed) scanned every
    # pending row of the outbox once per batch (quadratic in the audience).
    session.execute(
        update(OutboxMessage).where(col(OutboxMessage.campaign_id) == campaign_id,
                                    col(OutboxMessage.contact_id).in_([r.enrolled for r in batch]),
                                    _abandoned(now))
        .values(status=DeliveryState.SKIPPED.value, skip_reason=SkipReason.EXPIRED.value,
                claimed_by=None, claimed_until=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    live = [r for r in batch if r.contact_id is not None and r.erased_at is None]  # erased: nothing to do
    # A channel whose consent was granted or confirmed after the request was made (a START, an API
    # grant) is the person's current choice, and so is a channel the campaign did not ask on because
    # its consent was recent (issue 17 §4): neither is expired nor suppressed, and the person's data
    # stays (erasing it would lose that consent).
    months = rt.config.contacts.recent_consent_months
    keep = given_since_request(session, live) | (
        held_channels(session.connection(), [(r.contact_id, _months_earlier(r.enrolled_at, months)) for r in live])
        if months > 0 and live else set()) | {(r.contact_id, Channel.EMAIL.value) for r in live if r.id in kept}
    holding = {contact_id for contact_id, _ in keep}
    live_ids = [r.contact_id for r in live if r.contact_id not in holding]
    email, sms = Channel.EMAIL.value, Channel.SMS.value
    reach = [(r.contact_id, channel, key) for r in live
             for channel, address, key in ((email, r.email, r.email_key), (sms, r.phone, r.phone_key))
             if address and (r.contact_id, channel) not in keep]
    # ON CONFLICT DO NOTHING: an entry added meanwhile by an unsubscribe keeps its reason.
    report.suppressed += suppression.suppress_many(session.connection(), ((key, channel) for _, channel, key in reach),
                                                   SuppressionReason.NO_RESPONSE, f"campaign:{campaign_id}", now)
    proof = Proof(source=ConsentSource.SWEEP.value, campaign_id=campaign_id)
    purpose, action = Purpose.MARKETING.value, ConsentAction.EXPIRED.value
    ledger.append_many(session, [
        {"contact_id": contact_id, "channel": channel, "purpose": purpose, "action": action, "at": now, "proof": proof}
        for contact_id, channel, _ in reach
    ] + [  # informed by the notice, no objection: the proof of their standing under the opt-out regime
        {"contact_id": r.contact_id, "channel": Channel.EMAIL.value, "purpose": purpose,
         "action": ConsentAction.NOTIFIED.value, "at": now, "proof": proof} for r in live if r.id in kept
    ])
    policy = rt.config.retention.after_expiry
    if policy in ("anonymise", "delete") and live_ids:
        erase_many(session, live_ids, now, policy)
        if policy == "anonymise":
            report.anonymised += len(live_ids)
        else:
            report.deleted += len(live_ids)


def given_since_request(session: Session, rows: Sequence[Row[Any]]) -> set[tuple[int, str]]:
    """(contact, channel) pairs of these enrolment rows whose newest marketing event is a grant or a
    confirmation made at or after the request (``enrolled_at``): one set-based query per batch."""
    if not rows:
        return set()
    enrolled = {r.contact_id: as_utc(r.enrolled_at) for r in rows}
    newest = (select(func.max(col(ConsentEvent.id)))
              .where(col(ConsentEvent.contact_id).in_(list(enrolled)),
                     col(ConsentEvent.purpose) == Purpose.MARKETING.value)
              .group_by(col(ConsentEvent.contact_id), col(ConsentEvent.channel)))
    found = session.execute(
        select(col(ConsentEvent.contact_id), col(ConsentEvent.channel), col(ConsentEvent.action),
               col(ConsentEvent.occurred_at))
        .where(col(ConsentEvent.id).in_(newest))
    ).all()
    return {(contact_id, channel) for contact_id, channel, action, at in found
            if action in ledger.GIVEN and as_utc(at) >= enrolled[contact_id]}


def _months_earlier(at: datetime, months: int) -> datetime:
    at = as_utc(at)
    return datetime.combine(months_before(at.date(), months), at.timetz())


#: kept for callers of the skeleton's name; see :func:`orchestrator.proof.retention.scrub_profile`
anonymise = scrub_profile



def _notice_rows(session: Session, batch: Sequence[Row[Any]], regime: str) -> set[int]:
    """The enrolment ids of the batch under the notice (:func:`orchestrator.domain.b2b.under_notice`):
    kept at the deadline. Not one whose email address was suppressed meanwhile (a bounce, a
    complaint): that request expires as anyone's."""
    if regime != pro.NOTICE:
        return set()
    rows = [r for r in batch if r.contact_id is not None and r.erased_at is None
            and pro.under_notice(regime, bool(r.b2b), r.email)]
    if not rows:
        return set()
    barred = set(session.execute(select(col(SuppressionEntry.key)).where(
        col(SuppressionEntry.channel) == Channel.EMAIL.value,
        col(SuppressionEntry.key).in_([r.email_key for r in rows if r.email_key]))).scalars())
    return {r.id for r in rows if r.email_key not in barred}


def settle_notice_sms(rt: Runtime, campaign_id: int, now: datetime, report: SweepReport) -> None:
    """At a notice campaign's deadline, the SMS of the professionals who answered "keep receiving them"
    is settled as a silent professional's is: the notice asks about email only, so "keep" recorded
    nothing on SMS, and SMS stays opt-in — without an SMS consent given since the request (or held
    when it was made, issue 17 §4), their phone is expired and suppressed (no_response), in batches.
    One who said anything about SMS since the request (a grant, a STOP) is left as they chose."""
    with session_scope(rt.engine) as session:
        plan = session.execute(select(col(Campaign.plan)).where(col(Campaign.id) == campaign_id)).scalar()
    if ((plan or {}).get("audience") or {}).get("b2b_regime", pro.CONSENT) != pro.NOTICE:
        return
    months = rt.config.contacts.recent_consent_months
    sms, last_id = Channel.SMS.value, 0
    while True:
        with session_scope(rt.engine) as session:
            batch = session.execute(
                select(col(Enrolment.id), col(Enrolment.contact_id), col(Enrolment.enrolled_at), col(Contact.phone_key))
                .join(Contact, col(Contact.id) == col(Enrolment.contact_id))
                .where(col(Enrolment.campaign_id) == campaign_id, col(Enrolment.id) > last_id,
                       col(Enrolment.state) == RequestState.CONFIRMED.value, col(Contact.b2b).is_(true()),
                       col(Contact.email).is_not(None), col(Contact.phone_key).is_not(None),
                       col(Contact.erased_at).is_(None))
                .order_by(col(Enrolment.id)).limit(BATCH)).all()
            if not batch:
                return
            last_id = batch[-1].id
            since = {r.contact_id: as_utc(r.enrolled_at) for r in batch}
            spoke = {contact_id for contact_id, at in session.execute(
                select(col(ConsentEvent.contact_id), func.max(col(ConsentEvent.occurred_at)))
                .where(col(ConsentEvent.contact_id).in_(list(since)), col(ConsentEvent.channel) == sms,
                       col(ConsentEvent.purpose) == Purpose.MARKETING.value)
                .group_by(col(ConsentEvent.contact_id))) if as_utc(at) >= since[contact_id]}
            held = {c for c, ch in held_channels(session.connection(), [
                (r.contact_id, _months_earlier(r.enrolled_at, months)) for r in batch]) if ch == sms} \
                if months > 0 else set()
            reach = [r for r in batch if r.contact_id not in spoke | held]
            report.suppressed += suppression.suppress_many(
                session.connection(), ((r.phone_key, sms) for r in reach), SuppressionReason.NO_RESPONSE,
                f"campaign:{campaign_id}", now)
            proof = Proof(source=ConsentSource.SWEEP.value, campaign_id=campaign_id)
            ledger.append_many(session, [
                {"contact_id": r.contact_id, "channel": sms, "purpose": Purpose.MARKETING.value,
                 "action": ConsentAction.EXPIRED.value, "at": now, "proof": proof} for r in reach])
