"""Campaign lifecycle: create (validate + check templates), preview, launch (freeze the audience),
pause/resume, and status (the funnel, SPEC §10 ``campaign status --json``)."""

from __future__ import annotations

import tomllib
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, exists, func, insert, literal, or_, select, text, update
from sqlmodel import Session, col

from orchestrator.campaigns import regime
from orchestrator.campaigns.ask_partner import check_partner, partner_audience
from orchestrator.config import SenderConfig
from orchestrator.consent.alternatives import paused_clause
from orchestrator.consent.prior import recently_given
from orchestrator.domain.audience import months_before
from orchestrator.domain.campaign import CampaignPlan
from orchestrator.domain.clock import as_utc
from orchestrator.domain.model import CampaignState, Channel, ConsentAction, DeliveryState, RequestState
from orchestrator.domain.segments import count_segments
from orchestrator.errors import InputError, NotFoundError, StateError
from orchestrator.rendering.brand import read_brand
from orchestrator.rendering.checks import (
    BUILD_FAILURE,
    check_template,
    describe_error,
    render_context,
    sample_contexts,
)
from orchestrator.rendering.template_store import pin_wordings
from orchestrator.runtime import Runtime
from orchestrator.store.db import session_scope, table_of
from orchestrator.store.models import Campaign, ConsentEvent, Contact, Enrolment, OutboxMessage, SuppressionEntry


def load_plan(path: Path) -> CampaignPlan:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML: {exc}") from None
    return CampaignPlan.from_mapping(data, where=str(path))


def sample_context(rt: Runtime, locale: str) -> dict[str, Any]:
    """Context for previews: an invented person, links of realistic length."""
    return sample_contexts(rt.config, locale, rt.clock.now(), read_brand(rt))[0]


def message_context(rt: Runtime, *, first_name: str | None, page_url: str, unsubscribe_url: str,
                    short_url: str, deadline: Any, locale: str, sender: SenderConfig | None = None) -> dict[str, Any]:
    """The template variables; ``sender``: the sender as this recipient sees it (an SMS abroad names
    its country's number), else the configured one."""
    return render_context(sender or rt.config.sender, first_name=first_name, page_url=page_url,
                          unsubscribe_url=unsubscribe_url, short_url=short_url, deadline=deadline, locale=locale,
                          brand=read_brand(rt), base_url=rt.config.public.base_url)


def plan_problems(rt: Runtime, plan: CampaignPlan) -> list[str]:
    """Every problem of the plan's templates, one line each (orchestrator.rendering.checks): each
    template and channel of its steps, in every locale the campaign may use."""
    problems: list[str] = []
    seen: set[tuple[str, Channel]] = set()
    for step in (*plan.steps, *plan.notice_steps()):
        if (step.template, step.channel) in seen:
            continue
        seen.add((step.template, step.channel))
        for problem in check_template(rt.renderer, step.template, step.channel, plan.locales, rt.config,
                                      now=rt.clock.now(), wording=plan.wording):
            problems.append(f"steps[{step.index}] ({step.channel.value}): {problem}")
    return problems


def check_plan(rt: Runtime, plan: CampaignPlan) -> None:
    """Refuse (one line) a plan whose templates have a problem: a broken template never reaches the
    queue. Called at creation (file and console) and again at launch."""
    check_partner(rt, plan.audience)
    problems = plan_problems(rt, plan)
    if problems:
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise InputError(problems[0] + more)


def create_campaign(rt: Runtime, plan: CampaignPlan) -> int:
    """A draft campaign; the versions of the imported templates it sends are pinned now."""
    plan = pin_wordings(rt, plan)
    check_plan(rt, plan)
    with session_scope(rt.engine) as session:
        campaign = Campaign(name=plan.name, state=CampaignState.DRAFT, plan=plan.to_mapping(),
                            created_at=rt.clock.now())
        session.add(campaign)
        session.flush()
        assert campaign.id is not None
        return campaign.id


def get_campaign(session: Session, campaign_id: int) -> tuple[Campaign, CampaignPlan]:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFoundError(f"campaign {campaign_id} does not exist")
    return campaign, CampaignPlan.from_mapping(campaign.plan, where=f"campaign {campaign_id}", stored=True)


@dataclass(frozen=True)
class StepPreview:
    step: int
    day: int
    channel: str
    template: str
    locale: str
    subject: str | None
    text: str
    html: str | None
    encoding: str | None = None
    segments: int | None = None
    ucs2_chars: tuple[str, ...] = ()
    #: why this step cannot be rendered in this locale (one line), instead of the rendering
    problem: str | None = None


def preview_campaign(rt: Runtime, campaign_id: int) -> list[StepPreview]:
    """Every step in every locale for an invented contact. A step that cannot be rendered (its
    template changed since the campaign was created, say) has its ``problem`` instead: never raises
    for a template."""
    with session_scope(rt.engine) as session:
        _, plan = get_campaign(session, campaign_id)
    out = []
    for step in (*plan.steps, *plan.notice_steps()):  # then the notice professionals get (b2b_regime)
        for locale in plan.locales:
            try:
                version = plan.wording(step.template, locale, step.channel)
                r = rt.renderer.render(step.template, step.channel, locale, sample_context(rt, locale), version)
            except Exception as exc:
                problem = _first(check_template(rt.renderer, step.template, step.channel, [locale], rt.config,
                                                now=rt.clock.now(), wording=plan.wording)) \
                    or describe_error(exc, step.template, step.channel, locale)
                out.append(StepPreview(step.index, step.day, step.channel.value, step.template, locale,
                                       None, "", None, problem=problem))
                continue
            seg = count_segments(r.text) if step.channel is Channel.SMS else None
            out.append(StepPreview(step.index, step.day, step.channel.value, step.template, locale,
                                   r.subject, r.text, r.html,
                                   seg.encoding if seg else None, seg.segments if seg else None,
                                   seg.ucs2_chars if seg else ()))
    return out


def _first(problems: list[str]) -> str | None:
    return problems[0] if problems else None


def _address_column(channel: Channel) -> Any:
    return col(Contact.email) if channel is Channel.EMAIL else col(Contact.phone)


def _key_column(channel: Channel) -> Any:
    return col(Contact.email_key) if channel is Channel.EMAIL else col(Contact.phone_key)


def _not_suppressed(channel: Channel) -> Any:
    return ~exists().where(and_(col(SuppressionEntry.key) == _key_column(channel),
                                col(SuppressionEntry.channel) == channel.value))


def recent_consent_since(rt: Runtime) -> datetime | None:
    """Consent given after this time is recent: the audience skips that channel (None: never skip)."""
    months = rt.config.contacts.recent_consent_months
    if months <= 0:
        return None
    today = rt.clock.now()
    return datetime.combine(months_before(today.date(), months), today.timetz())


def audience_query(rt: Runtime, plan: CampaignPlan, *, skip_recent: bool = True) -> Any:
    """The contacts a launch would enrol now, as one set-based SELECT of contact ids.

    Inactive per kind [R4], reachable on the first step's channel, not suppressed there, not erased,
    not already pending in another campaign, and not confirmed since the inactivity cut-off. With
    ``skip_recent``, a channel whose consent is recent (:func:`recent_consent_since`; imported or
    given) is not asked again: a person is left out when no channel of the plan is left to ask on.
    """
    today = rt.clock.now().date()
    rule = plan.audience
    first = plan.first_channel
    per_kind = []
    for kind in rule.kinds:
        cutoff = rule.cutoff(kind, today)
        per_kind.append(and_(
            col(Contact.kind) == kind.value,
            or_(col(Contact.last_activity_at).is_(None), col(Contact.last_activity_at) <= cutoff),
            or_(col(Contact.consented_at).is_(None), func.date(col(Contact.consented_at)) <= cutoff),
        ))
    busy = exists().where(and_(
        col(Enrolment.contact_id) == col(Contact.id),
        col(Enrolment.state) == RequestState.PENDING.value,
    ))
    if rule.ask_partner:  # a campaign about a new partner (orchestrator.campaigns.ask_partner)
        per_kind = [partner_audience(rt, rule)]
    query = select(col(Contact.id)).where(
        or_(*per_kind),
        col(Contact.erased_at).is_(None),
        _address_column(first).is_not(None),
        _not_suppressed(first),
        ~busy,
        ~paused_clause(first, today),  # a pause the person chose (issue 18)
        regime.audience_filter(plan),
    )
    since = recent_consent_since(rt) if skip_recent and not rule.ask_partner else None
    if since is not None:
        others = [c for c in dict.fromkeys(s.channel for s in plan.steps) if c is not first]
        query = query.where(or_(~recently_given(first, since), *(
            and_(_address_column(c).is_not(None), _not_suppressed(c), ~recently_given(c, since)) for c in others)))
    return query


def skipped_for_recent_consent(rt: Runtime, campaign_id: int) -> dict[str, int]:
    """Per channel of the plan: contacts of the audience not asked on it because their consent there
    is recent (``contacts.recent_consent_months``) — what the preview reports."""
    since = recent_consent_since(rt)
    with session_scope(rt.engine) as session:
        _, plan = get_campaign(session, campaign_id)
        if since is None:
            return {}
        base = audience_query(rt, plan, skip_recent=False).subquery()
        counts = {}
        for channel in dict.fromkeys(s.channel for s in plan.steps):
            counts[channel.value] = int(session.execute(
                select(func.count()).select_from(Contact).where(
                    col(Contact.id).in_(select(base.c.id)), _address_column(channel).is_not(None),
                    recently_given(channel, since))).scalar_one())
        return counts


def audience_size(rt: Runtime, campaign_id: int) -> int:
    with session_scope(rt.engine) as session:
        _, plan = get_campaign(session, campaign_id)
        return int(session.execute(select(func.count()).select_from(audience_query(rt, plan).subquery())).scalar_one())


def launch_campaign(rt: Runtime, campaign_id: int) -> int:
    """Freeze the audience into enrolments and one outbox row per step and reachable channel [O1, O2].

    Returns the number of people enrolled. Set-based SQL: no per-contact round trips.
    """
    now = rt.clock.now()
    with session_scope(rt.engine) as session:
        campaign, plan = get_campaign(session, campaign_id)
        if campaign.state not in (CampaignState.DRAFT, CampaignState.SCHEDULED):
            raise StateError(f"campaign {campaign_id} is {campaign.state}; only a draft can be launched")
        check_plan(rt, plan)
        # claimed by a conditional UPDATE: a concurrent launch (a second scheduler) finds it taken
        claimed = session.connection().execute(
            update(table_of(Campaign)).where(table_of(Campaign).c.id == campaign_id,
                                             table_of(Campaign).c.state == campaign.state)
            .values(state=CampaignState.RUNNING.value))
        if claimed.rowcount != 1:
            raise StateError(f"campaign {campaign_id} was launched or changed meanwhile")
        _refresh_statistics(session, "contact", "enrolment", "suppression")
        enrolled = enrol(session, campaign_id, plan, audience_query(rt, plan).subquery(), now,
                         recent_since=recent_consent_since(rt))
        campaign.state = CampaignState.RUNNING
        campaign.launched_at = now
        campaign.deadline_at = now + timedelta(days=plan.deadline_days)
        session.add(campaign)
        return enrolled


def enrol(session: Session, campaign_id: int, plan: CampaignPlan, contacts: Any, now: datetime, *,
          deadline: datetime | None = None, recent_since: datetime | None = None) -> int:
    """Enrol the contacts a subquery selects (its ``id`` column) as pending consent requests, with
    one outbox row per step and reachable channel, due ``step.day`` days after ``now`` [O1, O2].

    ``deadline`` gives each person their own deadline (the standing evergreen campaign);
    ``recent_since``: no row on a channel whose consent was given after it (issue 17 §4). Set-based:
    two INSERT … SELECT per step, whatever the audience size. Returns how many were enrolled.
    """
    # the new enrolments are those above the highest id so far, within this campaign
    before = session.execute(select(func.coalesce(func.max(col(Enrolment.id)), 0))).scalar_one()
    columns = ["campaign_id", "contact_id", "state", "enrolled_at"]
    values = [literal(campaign_id), contacts.c.id, literal(RequestState.PENDING.value),
              literal(now, type_=table_of(Enrolment).c.enrolled_at.type)]
    if deadline is not None:
        columns.append("deadline_at")
        values.append(literal(deadline, type_=table_of(Enrolment).c.deadline_at.type))
    session.execute(insert(Enrolment).from_select(columns, select(*values)))
    _refresh_statistics(session, "enrolment")  # it may just have grown by a whole audience
    new = and_(col(Enrolment.campaign_id) == campaign_id, col(Enrolment.id) > before)
    for step in plan.steps:
        due = now + timedelta(days=step.day)
        template, only = regime.step_rows(plan, step)  # the notice, for professionals (b2b_regime)
        session.execute(insert(OutboxMessage).from_select(
            ["campaign_id", "contact_id", "enrolment_id", "step", "channel", "template", "status", "due_at",
             "attempts"],
            select(
                literal(campaign_id), col(Enrolment.contact_id), col(Enrolment.id), literal(step.index),
                literal(step.channel.value), template, literal(DeliveryState.PENDING.value),
                literal(due, type_=table_of(OutboxMessage).c.due_at.type), literal(0),
            ).join(Contact, col(Contact.id) == col(Enrolment.contact_id))
            .where(new, _address_column(step.channel).is_not(None), only,
                   *([~recently_given(step.channel, recent_since)] if recent_since is not None else [])),
        ))
    return int(session.execute(select(func.count()).select_from(Enrolment).where(new)).scalar_one())


def _refresh_statistics(session: Session, *tables: str) -> None:
    """ANALYZE on PostgreSQL before a set-based statement over freshly loaded tables.

    Right after a bulk import the planner still believes ``contact`` is empty and picks nested-loop
    anti-joins: 50k contacts then took 53 s to launch instead of ~3 s (bench/RESULTS.md). ANALYZE
    samples a bounded number of rows, so it costs well under a second even at millions of rows.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"ANALYZE {', '.join(tables)}"))


def set_paused(rt: Runtime, campaign_id: int, paused: bool) -> str:
    target = CampaignState.PAUSED if paused else CampaignState.RUNNING
    with session_scope(rt.engine) as session:
        campaign, _ = get_campaign(session, campaign_id)
        if not CampaignState.can_move(CampaignState(campaign.state), target):
            raise StateError(f"campaign {campaign_id} is {campaign.state}; cannot move to {target}")
        campaign.state = target
        campaign.paused_reason = None  # an operator's pause needs no reason; a resume clears dispatch's
        if not paused:
            campaign.build_failures = 0  # dispatch.failure_pause_threshold counts from here again
        session.add(campaign)
        # Claimed rows are left alone: a dispatcher finds the pause before sending and puts its rows
        # back in the queue itself; a dead worker's rows are taken over when their lease expires.
        return target.value


def campaign_status(rt: Runtime, campaign_id: int) -> dict[str, Any]:
    """The funnel, per channel and per step. Keys of SPEC §10 are always present."""
    with session_scope(rt.engine) as session:
        campaign, plan = get_campaign(session, campaign_id)
        states = dict(session.execute(
            select(col(Enrolment.state), func.count()).where(col(Enrolment.campaign_id) == campaign_id)
            .group_by(col(Enrolment.state))
        ).all())
        keys = (col(OutboxMessage.step), col(OutboxMessage.channel), col(OutboxMessage.status),
                col(OutboxMessage.skip_reason))
        rows = session.execute(
            select(*keys, func.count()).where(col(OutboxMessage.campaign_id) == campaign_id).group_by(*keys)
        ).all()
        unsub = _unsubscribed_counts(session, campaign_id)
        unbuilt = build_failure_reasons(session, campaign_id)
        professionals = regime.enrolled_counts(session, campaign_id, plan)
    channels: dict[str, dict[str, int]] = {c.value: _empty_counts() for c in Channel}
    steps = []
    for step in plan.steps:
        steps.append({"step": step.index, "day": step.day, "channel": step.channel.value,
                      "template": step.template, **_empty_counts()})
    for step_no, channel, status, skip_reason, n in rows:
        for bucket in (channels[channel], steps[step_no]):
            _count(bucket, status, skip_reason, n)
    for channel, per_action in unsub.items():
        channels[channel].update(per_action)
    enrolled = sum(states.values())
    return {
        "id": campaign.id,
        "name": campaign.name,
        "state": campaign.state,
        "launched_at": _utc_text(campaign.launched_at),
        "launch_at": _utc_text(campaign.launch_at),
        "deadline_at": _utc_text(campaign.deadline_at),
        "enrolled": enrolled,
        "pending": states.get(RequestState.PENDING.value, 0),
        "confirmed": states.get(RequestState.CONFIRMED.value, 0),
        "declined": states.get(RequestState.DECLINED.value, 0),
        "expired": states.get(RequestState.EXPIRED.value, 0),
        "kept": states.get(RequestState.KEPT.value, 0),
        "audience": professionals,
        "channels": channels,
        **channels,
        "steps": steps,
        "paused_reason": campaign.paused_reason,
        "failure_reasons": unbuilt,
    }


def campaign_failures(rt: Runtime, campaign_id: int) -> list[dict[str, Any]]:
    """:func:`build_failure_reasons` of one campaign (the console's campaign page)."""
    with session_scope(rt.engine) as session:
        return build_failure_reasons(session, campaign_id)


def build_failure_reasons(session: Session, campaign_id: int, limit: int = 20) -> list[dict[str, Any]]:
    """Why messages of the campaign could not be built: ``{step, channel, reason, count}``, most
    frequent first (rows failed at send time by a template error, issue 12; read through the
    ``ix_outbox_due`` index: failed rows of this campaign only)."""
    t = table_of(OutboxMessage).c
    n = func.count().label("n")
    rows = session.execute(
        select(t.step, t.channel, t.last_error, n)
        .where(t.status == DeliveryState.FAILED.value, t.campaign_id == campaign_id,
               t.last_error.like(f"{BUILD_FAILURE}%"))
        .group_by(t.step, t.channel, t.last_error).order_by(n.desc(), t.step, t.channel).limit(limit)
    ).all()
    return [{"step": step, "channel": channel, "reason": reason, "count": count}
            for step, channel, reason, count in rows]


def messages_due(rt: Runtime, campaign_id: int) -> int:
    """The campaign's messages waiting to be sent whose time has come (a later step's are not due
    yet): what a dispatcher would be sending now. The console's "queued but no dispatcher" warning."""
    with session_scope(rt.engine) as session:
        return int(session.execute(
            select(func.count()).where(col(OutboxMessage.campaign_id) == campaign_id,
                                       col(OutboxMessage.status).in_([DeliveryState.PENDING.value,
                                                                      DeliveryState.SENDING.value]),
                                       col(OutboxMessage.due_at) <= rt.clock.now())
        ).scalar_one())


def _utc_text(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z: ``2026-11-25T09:00:00Z``."""
    return as_utc(value).isoformat().replace("+00:00", "Z") if value is not None else None


def _empty_counts() -> dict[str, int]:
    return {"queued": 0, "sent": 0, "delivered": 0, "failed": 0, "bounced": 0, "skipped": 0, "unsubscribed": 0,
            "declined": 0, "not_granted": 0}


def _count(bucket: dict[str, int], status: str, skip_reason: str | None, n: int) -> None:
    if status in (DeliveryState.PENDING, DeliveryState.SENDING):
        bucket["queued"] += n
    elif status == DeliveryState.SENT:
        bucket["sent"] += n
    elif status == DeliveryState.DELIVERED:
        bucket["sent"] += n
        bucket["delivered"] += n
    elif status == DeliveryState.BOUNCED:
        bucket["bounced"] += n
    elif status == DeliveryState.FAILED:
        bucket["failed"] += n
    elif status == DeliveryState.SKIPPED:
        bucket["skipped"] += n


#: per channel, the people of a campaign whose answer on that channel was no, kept apart: an unsubscribe
#: (link, one-click, STOP), a "no thanks" to the whole request, and a channel left unticked by someone
#: who confirmed another (counted as an unsubscribe before, so a "yes by email" showed an SMS one)
_NO_ON_A_CHANNEL = {"unsubscribed": ConsentAction.WITHDRAWN.value, "declined": ConsentAction.DECLINED.value,
                    "not_granted": ConsentAction.NOT_GRANTED.value}


def _unsubscribed_counts(session: Session, campaign_id: int) -> dict[str, dict[str, int]]:
    """{channel: {"unsubscribed": n, "declined": n, "not_granted": n}} for the campaign's events."""
    counts: dict[str, dict[str, int]] = {}
    by_action = {action: column for column, action in _NO_ON_A_CHANNEL.items()}
    people = func.count(func.distinct(col(ConsentEvent.contact_id)))
    for channel, action, n in session.execute(
        select(col(ConsentEvent.channel), col(ConsentEvent.action), people)
        .where(col(ConsentEvent.campaign_id) == campaign_id, col(ConsentEvent.action).in_(sorted(by_action)))
        .group_by(col(ConsentEvent.channel), col(ConsentEvent.action))
    ).all():
        counts.setdefault(channel, {})[by_action[action]] = n
    return counts


# -- the console's reads (preference_centre.admin calls these, never the store) ---------------------
def read_campaign(rt: Runtime, campaign_id: int) -> tuple[Campaign, CampaignPlan]:
    """:func:`get_campaign` in a transaction of its own; NotFoundError when there is none."""
    with session_scope(rt.engine) as session:
        return get_campaign(session, campaign_id)


def list_campaigns(rt: Runtime, *, newest_first: bool = True) -> list[Campaign]:
    """Every campaign, newest first (the console) or oldest first (``reconsent campaign list``)."""
    order = col(Campaign.id).desc() if newest_first else col(Campaign.id)
    with session_scope(rt.engine) as session:
        return list(session.execute(select(Campaign).order_by(order)).scalars())


def confirmations_by_day(rt: Runtime, campaign_id: int) -> list[tuple[Any, int]]:
    """(date, confirmations that day), days with none left out; dates are UTC."""
    with session_scope(rt.engine) as session:
        answered = session.execute(select(col(Enrolment.answered_at)).where(
            col(Enrolment.campaign_id) == campaign_id, col(Enrolment.state) == RequestState.CONFIRMED.value,
            col(Enrolment.answered_at).is_not(None))).scalars().all()
    return sorted(Counter(as_utc(a).date() for a in answered if a is not None).items())
