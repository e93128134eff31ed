"""Professional (B2B) contacts in campaigns, as SQL: the audience filter of ``[audience] b2b``, who
gets the notice of ``b2b_regime = "notice"`` and which template, the counts ``campaign preview`` and
``campaign status`` show (whether a link's person is under the notice is read with the page:
``Person.notice`` in :mod:`orchestrator.consent.service`).
The rules themselves are :mod:`orchestrator.domain.b2b`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, case, false, func, literal, select, true
from sqlmodel import Session, col

from orchestrator.domain import b2b as pro
from orchestrator.domain.campaign import CampaignPlan, Step
from orchestrator.domain.model import Channel
from orchestrator.runtime import Runtime
from orchestrator.store.db import session_scope
from orchestrator.store.models import Contact, Enrolment


def audience_filter(plan: CampaignPlan) -> Any:
    """The condition ``[audience] b2b`` puts on contacts (``include``: none, today's audience)."""
    mode = plan.audience.b2b
    if mode == pro.EXCLUDE:
        return col(Contact.b2b).is_(false())
    if mode == pro.ONLY:
        return col(Contact.b2b).is_(true())
    return true()


def notice_condition(plan: CampaignPlan) -> Any:
    """The contacts who get the notice rather than the request (:func:`orchestrator.domain.b2b.under_notice`)."""
    if plan.audience.b2b_regime != pro.NOTICE:
        return false()
    return and_(col(Contact.b2b).is_(true()), col(Contact.email).is_not(None))


def step_rows(plan: CampaignPlan, step: Step) -> tuple[Any, Any]:
    """``(template column, extra condition)`` of a step's outbox rows at enrolment: an email step
    sends the notice template to those under the notice; an SMS step is not sent to them (SMS stays
    opt-in: the notice is email only)."""
    if plan.audience.b2b_regime != pro.NOTICE:
        return literal(step.template), true()
    if step.channel is Channel.EMAIL:
        return case((notice_condition(plan), literal(plan.audience.notice_template)),
                    else_=literal(step.template)), true()
    return literal(step.template), ~notice_condition(plan)


def b2b_counts(session: Session, contacts: Any, plan: CampaignPlan) -> dict[str, Any]:
    """``{"b2b": mode, "b2b_regime": regime, "professional": n, "consumer": n, "notice": n}`` over the
    contact ids a subquery selects (its ``id`` column)."""
    pro_n, all_n, notice_n = session.execute(
        select(func.coalesce(func.sum(case((col(Contact.b2b).is_(true()), 1), else_=0)), 0), func.count(),
               func.coalesce(func.sum(case((notice_condition(plan), 1), else_=0)), 0))
        .where(col(Contact.id).in_(select(contacts.c.id)))
    ).one()
    return {"b2b": plan.audience.b2b, "b2b_regime": plan.audience.b2b_regime, "professional": int(pro_n),
            "consumer": int(all_n) - int(pro_n), "notice": int(notice_n)}


def enrolled_counts(session: Session, campaign_id: int, plan: CampaignPlan) -> dict[str, Any]:
    """:func:`b2b_counts` of a campaign's enrolled people (``campaign status``)."""
    enrolled: Any = select(col(Enrolment.contact_id).label("id")).where(col(Enrolment.campaign_id) == campaign_id)
    return b2b_counts(session, enrolled.subquery(), plan)


def audience_counts(rt: Runtime, campaign_id: int) -> dict[str, Any]:
    """:func:`b2b_counts` of the audience a launch would enrol now (``campaign preview``)."""
    from orchestrator.campaigns.service import audience_query, get_campaign  # the service imports this module
    with session_scope(rt.engine) as session:
        _, plan = get_campaign(session, campaign_id)
        return b2b_counts(session, audience_query(rt, plan).subquery(), plan)
