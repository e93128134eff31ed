"""Planned launches and drafts: ``campaign launch ID --at``, ``unschedule``, ``edit``, ``delete``.

A scheduled campaign keeps its plan and has no audience yet: the scheduler's ``launch`` job (every
minute, also under ``reconsent run``) launches it once its time has come, freezing the audience then
(:func:`launch_due`). Times are read through the runtime's clock, so ``RECONSENT_NOW`` applies.
Only a draft or a scheduled campaign can be edited (its audience is not frozen yet) or deleted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlmodel import col

from orchestrator.campaigns.service import check_plan, get_campaign, launch_campaign
from orchestrator.domain.campaign import CampaignPlan
from orchestrator.domain.clock import as_utc
from orchestrator.domain.model import CampaignState
from orchestrator.errors import InputError, ReconsentError, StateError
from orchestrator.rendering.template_store import pin_wordings
from orchestrator.runtime import Runtime
from orchestrator.store.db import session_scope
from orchestrator.store.models import Campaign

log = logging.getLogger("reconsent.campaigns")
_NOT_LAUNCHED = (CampaignState.DRAFT.value, CampaignState.SCHEDULED.value)


def parse_launch_time(text: str, timezone: str) -> datetime:
    """An ISO 8601 time; without an offset it is read in ``timezone`` (``scheduler.timezone``).

    >>> parse_launch_time("2026-12-01T09:00", "Europe/Paris").isoformat()
    '2026-12-01T08:00:00+00:00'
    """
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"--at {text!r}: expected an ISO 8601 time such as 2026-12-01T09:00 or "
                         "2026-12-01T08:00:00Z") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=ZoneInfo(timezone))
    return as_utc(when)


def schedule_launch(rt: Runtime, campaign_id: int, at: datetime) -> datetime:
    """Schedule a draft (or move a scheduled campaign) to launch at ``at``; returns it in UTC."""
    at = as_utc(at)
    if at <= rt.clock.now():
        raise InputError(f"the launch time {at.isoformat().replace('+00:00', 'Z')} is not in the future; "
                         f"to launch now: reconsent campaign launch {campaign_id}")
    with session_scope(rt.engine) as session:
        campaign, plan = get_campaign(session, campaign_id)
        if campaign.state not in _NOT_LAUNCHED:
            raise StateError(f"campaign {campaign_id} is {campaign.state}; only a draft can be scheduled")
        check_plan(rt, plan)  # refused now rather than at the planned time
        campaign.state, campaign.launch_at, campaign.paused_reason = CampaignState.SCHEDULED, at, None
        session.add(campaign)
    return at


def unschedule(rt: Runtime, campaign_id: int) -> None:
    """A scheduled campaign back to draft (StateError for any other)."""
    with session_scope(rt.engine) as session:
        campaign, _ = get_campaign(session, campaign_id)
        if campaign.state != CampaignState.SCHEDULED:
            raise StateError(f"campaign {campaign_id} is {campaign.state}, not scheduled")
        campaign.state, campaign.launch_at = CampaignState.DRAFT, None
        session.add(campaign)


@dataclass
class LaunchRun:
    launched: list[tuple[int, int]] = field(default_factory=list)  # (campaign id, people enrolled)
    failed: list[tuple[int, str]] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"campaign {cid} launched: {n} contact(s) enrolled" for cid, n in self.launched]
        parts += [f"campaign {cid} not launched: {why}" for cid, why in self.failed]
        return "; ".join(parts) or "no scheduled launch due"


def launch_due(rt: Runtime) -> LaunchRun:
    """Launch every scheduled campaign whose time has come (the scheduler's ``launch`` job).

    Two schedulers never launch one campaign twice: :func:`launch_campaign` moves the campaign out of
    ``scheduled`` with a conditional UPDATE in its transaction. A launch that fails (a template
    broken since scheduling) puts the campaign back to draft with the reason, instead of retrying
    every minute.
    """
    now = rt.clock.now()
    with session_scope(rt.engine) as session:
        due = list(session.execute(
            select(col(Campaign.id)).where(col(Campaign.state) == CampaignState.SCHEDULED.value,
                                           col(Campaign.launch_at) <= now).order_by(col(Campaign.launch_at))
        ).scalars())
    run = LaunchRun()
    for campaign_id in due:
        try:
            run.launched.append((campaign_id, launch_campaign(rt, campaign_id)))
        except StateError:
            continue  # launched (or unscheduled) meanwhile by someone else
        except ReconsentError as exc:
            run.failed.append((campaign_id, str(exc)))
            with session_scope(rt.engine) as session:
                session.execute(update(Campaign).where(col(Campaign.id) == campaign_id,
                                                       col(Campaign.state) == CampaignState.SCHEDULED.value)
                                .values(state=CampaignState.DRAFT.value,
                                        paused_reason=f"the planned launch failed: {exc}"))
            log.warning("campaign %s: the planned launch failed: %s", campaign_id, exc)
    return run


def edit_campaign(rt: Runtime, campaign_id: int, plan: CampaignPlan) -> None:
    """Replace the plan of a draft or scheduled campaign (checked as at creation)."""
    plan = pin_wordings(rt, plan)
    check_plan(rt, plan)
    with session_scope(rt.engine) as session:
        campaign, _ = get_campaign(session, campaign_id)
        if campaign.state not in _NOT_LAUNCHED:
            raise StateError(f"campaign {campaign_id} is {campaign.state}: a launched campaign's audience and "
                             "steps cannot change (create a new campaign)")
        campaign.name, campaign.plan = plan.name, plan.to_mapping()
        session.add(campaign)


def delete_campaign(rt: Runtime, campaign_id: int) -> None:
    """Delete a draft or scheduled campaign (nothing was sent or recorded for it)."""
    with session_scope(rt.engine) as session:
        campaign, _ = get_campaign(session, campaign_id)
        if campaign.state not in _NOT_LAUNCHED:
            raise StateError(f"campaign {campaign_id} is {campaign.state}: only a draft can be deleted (its "
                             "messages and answers are proof)")
        session.delete(campaign)


def launch_time_text(value: datetime | None) -> str | None:
    return as_utc(value).isoformat().replace("+00:00", "Z") if value is not None else None
