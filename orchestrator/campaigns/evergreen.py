"""Evergreen enrolment: a standing re-consent campaign that people join as they go inactive.

``scheduler.evergreen_campaign_file`` names a campaign TOML (SPEC §10 format). The evergreen job
(``scheduler.evergreen_cron``):

1. starts the standing campaign from that file the first time (state running, no campaign-wide
   deadline: each person gets their own, ``enrolled_at + deadline_days``);
2. enrols the contacts the plan's audience rule selects *now* and who were never in this standing
   campaign — i.e. people newly past the inactivity threshold — with outbox rows due at their own
   ``enrolled_at + day`` for every step;
3. expires the standing campaign's people whose own deadline has passed (as the sweep does for a
   whole campaign: expired, suppressed no_response, retention policy).

Identity of the standing campaign: the newest campaign with the plan's name that is running or
paused (pause it to stop enrolment and sending; a completed one is replaced by a new one).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import and_, exists, select
from sqlmodel import col

from orchestrator.campaigns.service import audience_query, check_plan, enrol, load_plan, recent_consent_since
from orchestrator.campaigns.sweep import SweepReport, expire_pending
from orchestrator.domain.model import CampaignState
from orchestrator.rendering.template_store import pin_wordings
from orchestrator.runtime import Runtime
from orchestrator.store.db import session_scope
from orchestrator.store.models import Campaign, Contact, Enrolment


@dataclass
class EvergreenReport:
    campaign_id: int | None = None
    started: bool = False
    enrolled: int = 0
    expired: int = 0
    note: str = ""

    def summary(self) -> str:
        if self.campaign_id is None:
            return self.note or "evergreen enrolment is off (scheduler.evergreen_campaign_file is empty)"
        head = f"standing campaign {self.campaign_id}" + (" started" if self.started else "")
        note = f" ({self.note})" if self.note else ""
        return f"{head}: {self.enrolled} newly enrolled, {self.expired} expired{note}"


def enrol_newcomers(rt: Runtime) -> EvergreenReport:
    report = EvergreenReport()
    path = rt.config.scheduler.evergreen_campaign_file.strip()
    if not path:
        return report
    plan = load_plan(rt.config.path(path))
    now = rt.clock.now()
    with session_scope(rt.engine) as session:
        campaign = session.execute(
            select(Campaign).where(col(Campaign.name) == plan.name,
                                   col(Campaign.state).in_([CampaignState.RUNNING.value, CampaignState.PAUSED.value]))
            .order_by(col(Campaign.id).desc())
        ).scalars().first()
        if campaign is None:
            plan = pin_wordings(rt, plan)
            check_plan(rt, plan)
            campaign = Campaign(name=plan.name, state=CampaignState.RUNNING.value, plan=plan.to_mapping(),
                                created_at=now, launched_at=now, deadline_at=None)
            session.add(campaign)
            session.flush()
            report.started = True
        assert campaign.id is not None
        report.campaign_id = campaign_id = campaign.id
        if campaign.state == CampaignState.PAUSED.value:
            report.note = "paused: nobody enrolled"
        else:
            already = exists().where(and_(col(Enrolment.campaign_id) == campaign_id,
                                          col(Enrolment.contact_id) == col(Contact.id)))
            newcomers = audience_query(rt, plan).where(~already).subquery()
            report.enrolled = enrol(session, campaign_id, plan, newcomers, now,
                                    deadline=now + timedelta(days=plan.deadline_days),
                                    recent_since=recent_consent_since(rt))
    report.expired = expire_overdue(rt, campaign_id)
    return report


def expire_overdue(rt: Runtime, campaign_id: int) -> int:
    """Expire the standing campaign's pending people whose own deadline has passed."""
    sweep_report = SweepReport()
    expire_pending(rt, campaign_id, rt.clock.now(), sweep_report, own_deadline_only=True)
    return sweep_report.expired
