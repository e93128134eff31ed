"""What each enrolled person of a campaign did: the console's results page and its CSV export.

One outcome per enrolment, decided in SQL (so filters, search and paging happen in the database):

    unsubscribed   a consent withdrawal recorded for this campaign (unsubscribe link, STOP, page)
    confirmed      the request confirmed
    declined       the request declined (no withdrawal recorded)
    bounced        a message of the campaign bounced and the person never answered
    expired        the deadline passed without an answer (moved to the suppression list)
    pending        no answer yet

Rates: per step, the people whose answer came after that step's message (the last one sent to them
before they answered) over the people the step reached; per locale, answered and confirmed over
enrolled. The time to answer is counted from enrolment (the launch) in whole hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, exists, func, literal, or_, select, true
from sqlalchemy.sql.elements import ColumnElement

from orchestrator.domain.clock import as_utc
from orchestrator.domain.model import ConsentAction, DeliveryState, RequestState
from orchestrator.runtime import Runtime
from orchestrator.store.db import table_of
from orchestrator.store.models import ConsentEvent, Contact, Enrolment, OutboxMessage

OUTCOMES = ("confirmed", "declined", "unsubscribed", "bounced", "expired", "pending", "kept")
PAGE_SIZE = 50
CSV_COLUMNS = ("external_id", "kind", "outcome", "state", "locale", "email", "phone", "enrolled_at", "answered_at",
               "answered_after_step")

_ENROLMENT, _CONTACT = table_of(Enrolment), table_of(Contact)
_E, _C = _ENROLMENT.c, _CONTACT.c
_O = table_of(OutboxMessage).c
_V = table_of(ConsentEvent).c


@dataclass(frozen=True)
class Outcome:
    """One enrolled person: ``answered_after_step`` is the 0-based step whose message came last
    before the answer (None: no answer, or an answer before any message was sent)."""

    contact_id: int
    external_id: str | None
    kind: str | None
    email: str | None
    phone: str | None
    locale: str | None
    state: str
    outcome: str
    enrolled_at: datetime
    answered_at: datetime | None
    answered_after_step: int | None

    def csv_row(self) -> list[str]:
        def text(value: datetime | None) -> str:
            return as_utc(value).isoformat().replace("+00:00", "Z") if value else ""

        step = "" if self.answered_after_step is None else str(self.answered_after_step + 1)
        return [self.external_id or "", self.kind or "", self.outcome, self.state, self.locale or "",
                self.email or "", self.phone or "", text(self.enrolled_at), text(self.answered_at), step]


@dataclass(frozen=True)
class OutcomePage:
    rows: list[Outcome]
    total: int  # matching the filter
    page: int
    pages: int
    counts: dict[str, int]  # per outcome, whole campaign ("kept", a B2B notice's, only when there are some)


def _outcome_column(campaign_id: int) -> ColumnElement[str]:
    unsubscribed = exists().where(_V.campaign_id == campaign_id, _V.contact_id == _E.contact_id,
                                  _V.action == ConsentAction.WITHDRAWN.value)
    bounced = exists().where(_O.enrolment_id == _E.id, _O.status == DeliveryState.BOUNCED.value)
    return case(
        (unsubscribed, literal("unsubscribed")),
        (_E.state == RequestState.CONFIRMED.value, literal("confirmed")),
        (_E.state == RequestState.DECLINED.value, literal("declined")),
        (bounced, literal("bounced")),
        (_E.state == RequestState.EXPIRED.value, literal("expired")),
        (_E.state == RequestState.KEPT.value, literal("kept")),  # a B2B notice, no objection
        else_=literal("pending"),
    )


def _base(campaign_id: int) -> Any:
    outcome = _outcome_column(campaign_id).label("outcome")
    locale = select(func.max(_O.locale)).where(_O.enrolment_id == _E.id).scalar_subquery()
    after = select(func.max(_O.step)).where(
        _O.enrolment_id == _E.id, _O.sent_at.is_not(None), _E.answered_at.is_not(None),
        _O.sent_at <= _E.answered_at).scalar_subquery()
    inner = (select(_E.contact_id, _C.external_id, _C.kind, _C.email, _C.phone,
                    func.coalesce(locale, _C.locale).label("locale"), _E.state, outcome, _E.enrolled_at,
                    _E.answered_at, after.label("after"), _E.id.label("enrolment_id"))
             .select_from(_ENROLMENT.join(_CONTACT, _C.id == _E.contact_id, isouter=True))
             .where(_E.campaign_id == campaign_id))
    return inner.subquery("outcomes")


def _matching(sub: Any, outcomes: list[str] | None, search: str | None) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if outcomes:
        where.append(sub.c.outcome.in_([o for o in outcomes if o in OUTCOMES]))
    if search and search.strip():
        term = search.strip().lower()
        digits = "".join(ch for ch in term if ch.isdigit())
        tests = [func.lower(sub.c.email).contains(term, autoescape=True),
                 func.lower(sub.c.external_id).contains(term, autoescape=True)]
        if len(digits) >= 4:  # 06 12 34 56 78, +33 6 12…: the national digits after the leading 0
            tests.append(sub.c.phone.contains(digits.lstrip("0"), autoescape=True))
        where.append(or_(*tests))
    return where


def campaign_outcomes(rt: Runtime, campaign_id: int, *, outcomes: list[str] | None = None,
                      search: str | None = None, page: int = 1, page_size: int = PAGE_SIZE) -> OutcomePage:
    """One page of the campaign's people, filtered by outcome and searched by email, phone or id."""
    sub = _base(campaign_id)
    where = _matching(sub, outcomes, search)
    with rt.engine.connect() as conn:
        counts: dict[str, int] = dict(conn.execute(select(sub.c.outcome, func.count()).group_by(sub.c.outcome)).all())
        total = int(conn.execute(select(func.count()).select_from(sub).where(and_(true(), *where))).scalar_one())
        pages = max(1, -(-total // page_size))
        page = min(max(page, 1), pages)
        rows = conn.execute(select(sub).where(and_(true(), *where)).order_by(sub.c.enrolment_id)
                            .limit(page_size).offset((page - 1) * page_size)).all()
    return OutcomePage([_outcome(r) for r in rows], total, page, pages,
                       {o: int(counts.get(o, 0)) for o in OUTCOMES if o != "kept" or counts.get(o)})


def export_outcomes(rt: Runtime, campaign_id: int, *, outcomes: list[str] | None = None,
                    search: str | None = None) -> list[Outcome]:
    """Every row of the filter (the CSV export of the results page)."""
    sub = _base(campaign_id)
    with rt.engine.connect() as conn:
        rows = conn.execute(select(sub).where(and_(true(), *_matching(sub, outcomes, search)))
                            .order_by(sub.c.enrolment_id)).all()
    return [_outcome(r) for r in rows]


def response_rates(rt: Runtime, campaign_id: int) -> dict[str, Any]:
    """``steps``: [{step, reached, answered, confirmed}], ``locales``: [{locale, enrolled, answered,
    confirmed}], ``hours``: the hours from enrolment to each answer, sorted."""
    sub = _base(campaign_id)
    answered = sub.c.answered_at.is_not(None)
    with rt.engine.connect() as conn:
        reached: dict[int, int] = dict(conn.execute(
            select(_O.step, func.count(func.distinct(_O.enrolment_id)))
            .where(_O.campaign_id == campaign_id, _O.sent_at.is_not(None)).group_by(_O.step)).all())
        after = {step: (int(n), int(c or 0)) for step, n, c in conn.execute(
            select(sub.c.after, func.count(), func.sum(case((sub.c.state == "confirmed", 1), else_=0)))
            .where(answered, sub.c.after.is_not(None)).group_by(sub.c.after)).all()}
        locales = conn.execute(
            select(sub.c.locale, func.count(), func.sum(case((answered, 1), else_=0)),
                   func.sum(case((sub.c.state == "confirmed", 1), else_=0)))
            .group_by(sub.c.locale).order_by(sub.c.locale)).all()
        times = conn.execute(select(sub.c.enrolled_at, sub.c.answered_at).where(answered)).all()
    steps = [{"step": step, "reached": int(n), "answered": after.get(step, (0, 0))[0],
              "confirmed": after.get(step, (0, 0))[1]} for step, n in sorted(reached.items())]
    hours = sorted(max(0, int((as_utc(a) - as_utc(e)).total_seconds() // 3600)) for e, a in times)
    return {"steps": steps,
            "locales": [{"locale": loc or "?", "enrolled": int(n), "answered": int(a or 0), "confirmed": int(c or 0)}
                        for loc, n, a, c in locales],
            "hours": hours}


def _outcome(row: Any) -> Outcome:
    return Outcome(contact_id=row.contact_id, external_id=row.external_id, kind=row.kind, email=row.email,
                   phone=row.phone, locale=row.locale, state=row.state, outcome=row.outcome,
                   enrolled_at=row.enrolled_at, answered_at=row.answered_at, answered_after_step=row.after)
