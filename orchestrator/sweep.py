"""The deadline sweep [R5]: whoever never answered is expired, suppressed (no_response), and their
personal data goes per retention policy. Suppressed people are never messaged again, even after a
re-import, because the suppression entry (a keyed hash) outlives the profile."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, update
from sqlmodel import Session

from orchestrator import ledger
from orchestrator.consent import contact_channels, key_of, suppress
from orchestrator.domain.model import (
    CampaignState,
    ConsentAction,
    ConsentSource,
    DeliveryState,
    Purpose,
    RequestState,
    SkipReason,
    SuppressionReason,
)
from orchestrator.ledger import Proof
from orchestrator.retention import erase_contact, scrub_profile
from orchestrator.runtime import Runtime
from orchestrator.store.db import session_scope
from orchestrator.store.models import Campaign, Contact, Enrolment, OutboxMessage

BATCH = 1000


@dataclass
class SweepReport:
    campaigns: list[int] = field(default_factory=list)
    expired: int = 0
    suppressed: int = 0
    anonymised: int = 0
    deleted: int = 0

    def summary(self) -> str:
        return (f"{len(self.campaigns)} campaign(s) past deadline: {self.expired} expired, "
                f"{self.suppressed} addresses suppressed (no_response), {self.anonymised} anonymised, "
                f"{self.deleted} deleted")


def sweep(rt: Runtime) -> SweepReport:
    report = SweepReport()
    now = rt.clock.now()
    with session_scope(rt.engine) as session:
        due = list(session.execute(select(Campaign.id).where(
            Campaign.state.in_([CampaignState.RUNNING.value, CampaignState.PAUSED.value]),  # type: ignore[attr-defined]
            Campaign.deadline_at <= now,  # type: ignore[operator]
        )).scalars())
    for campaign_id in due:
        report.campaigns.append(campaign_id)
        while True:
            with session_scope(rt.engine) as session:
                batch = list(session.execute(
                    select(Enrolment).where(Enrolment.campaign_id == campaign_id,
                                            Enrolment.state == RequestState.PENDING.value).limit(BATCH)
                ).scalars())
                if not batch:
                    break
                for enrolment in batch:
                    _expire(rt, session, enrolment, campaign_id, now, report)
        with session_scope(rt.engine) as session:
            session.execute(update(OutboxMessage).where(
                OutboxMessage.campaign_id == campaign_id,
                OutboxMessage.status.in_([DeliveryState.PENDING.value, DeliveryState.SENDING.value]),  # type: ignore[attr-defined]
            ).values(status=DeliveryState.SKIPPED.value, skip_reason=SkipReason.EXPIRED.value,
                     claimed_by=None, claimed_until=None, updated_at=now))
            campaign = session.get(Campaign, campaign_id)
            assert campaign is not None
            campaign.state = CampaignState.COMPLETED.value
            campaign.completed_at = now
            session.add(campaign)
    return report


def _expire(rt: Runtime, session: Session, enrolment: Enrolment, campaign_id: int, now: datetime,
            report: SweepReport) -> None:
    enrolment.state = RequestState.EXPIRED.value
    enrolment.answered_at = None
    session.add(enrolment)
    report.expired += 1
    contact = session.get(Contact, enrolment.contact_id)
    if contact is None or contact.erased_at is not None:
        return
    proof = Proof(source=ConsentSource.SWEEP, campaign_id=campaign_id)
    for channel in contact_channels(contact):
        if suppress(session, key_of(contact, channel), channel.value, SuppressionReason.NO_RESPONSE,
                    f"campaign:{campaign_id}", now):
            report.suppressed += 1
        ledger.append(session, contact_id=contact.id, channel=channel, purpose=Purpose.MARKETING,  # type: ignore[arg-type]
                      action=ConsentAction.EXPIRED, at=now, proof=proof)
    policy = rt.config.retention.after_expiry
    if policy == "keep":
        return
    session.add(enrolment)
    session.flush()  # the expiry is written before a 'delete' removes the person's rows
    erase_contact(session, contact, now, policy)
    if policy == "anonymise":
        report.anonymised += 1
    else:
        report.deleted += 1


#: kept for callers of the skeleton's name; see :func:`orchestrator.retention.scrub_profile`
anonymise = scrub_profile
