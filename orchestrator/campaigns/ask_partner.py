"""A campaign about a newly listed partner (issue 18 §2): ``[audience] ask_partner = "<id>"``.

Consent to partners is per partner id, so a partner added to ``[[partners]]`` is covered by nobody.
Such a campaign's audience is the people who grant some partner now — a named ``partner:<id>`` or the
old unnamed ``partners`` purpose, the newest event of that purpose deciding — and have no event at
all for the new one and were not enrolled in an earlier campaign asking about it (someone who left
it unticked then has no event for it: nothing is recorded for a choice never granted); the inactivity
rule does not apply. The rest of the
audience rule stays (kinds, reachable and not suppressed on the first step's channel, not erased,
not pending elsewhere). The preference page they reach lists the partners, the new one unticked.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import aliased
from sqlmodel import col

from orchestrator.domain.audience import AudienceRule
from orchestrator.domain.model import ConsentAction, Purpose
from orchestrator.errors import InputError
from orchestrator.runtime import Runtime
from orchestrator.store.models import Campaign, ConsentEvent, Contact, Enrolment

_GIVEN = (ConsentAction.GRANTED.value, ConsentAction.CONFIRMED.value)


def check_partner(rt: Runtime, rule: AudienceRule, where: str = "[audience] ask_partner") -> None:
    """Refuse a campaign asking about a partner the config does not list (one line)."""
    if rule.ask_partner is None:
        return
    known = [p.id for p in rt.config.partners]
    if rule.ask_partner not in known:
        listed = ", ".join(known) if known else "none: add a [[partners]] table to the config first"
        raise InputError(f"{where}: no partner {rule.ask_partner!r} in the config (partners listed: {listed})")


def partner_audience(rt: Runtime, rule: AudienceRule) -> Any:
    """The condition on ``Contact`` that replaces the inactivity rule when ``rule.ask_partner`` is set."""
    assert rule.ask_partner is not None
    with rt.engine.connect() as conn:  # the campaigns that asked about it before (few rows: plans are small)
        earlier = [cid for cid, plan in conn.execute(select(col(Campaign.id), col(Campaign.plan)))
                   if ((plan or {}).get("audience") or {}).get("ask_partner") == rule.ask_partner]
    asked_before = exists().where(and_(col(Enrolment.contact_id) == col(Contact.id),
                                       col(Enrolment.campaign_id).in_(earlier)))
    granted, later = aliased(ConsentEvent), aliased(ConsentEvent)
    is_partner = or_(col(granted.purpose) == Purpose.PARTNERS.value, col(granted.purpose).like("partner:%"))
    grants_some = exists().where(and_(
        col(granted.contact_id) == col(Contact.id), is_partner, col(granted.action).in_(_GIVEN),
        ~exists().where(and_(col(later.contact_id) == col(granted.contact_id),
                             col(later.purpose) == col(granted.purpose), col(later.id) > col(granted.id))),
    ))
    asked = aliased(ConsentEvent)
    never_asked = ~exists().where(and_(col(asked.contact_id) == col(Contact.id),
                                       col(asked.purpose) == f"partner:{rule.ask_partner}"))
    return and_(col(Contact.kind).in_([k.value for k in rule.kinds]), grants_some, never_asked, ~asked_before)
