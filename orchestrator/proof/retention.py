"""Retention [R5]: find contacts whose data has outlived its purpose and anonymise or delete them.

Whatever the action, the hashed suppression entries stay (so a re-import is refused) and consent
events stay (the proof), pointing at a contact row that no longer holds personal data; the IP
addresses and user agents inside those events are redacted (see :func:`ledger.redact_requests`).

- ``anonymise``: profile fields replaced, statistics kept (kind, dates, enrolments, message rows).
  The CRM's ``external_id`` stays: the company's CRM already holds the person, and with the outcome
  it is the proof of why they must not be messaged (``campaign results`` still lists them; docs/proof.md).
- ``delete``: the same, and the person's message rows, enrolments, dates and ``external_id`` go too.
  A tombstone row with only the id remains because the append-only ledger refers to it.
- An erasure the person asked for (``dsr erase``) removes the ``external_id`` too (``keep_crm_id=False``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import String, cast, delete, func, literal, select, update
from sqlmodel import Session, col

from orchestrator.consent import ledger, webhooks
from orchestrator.domain.clock import as_utc
from orchestrator.domain.model import RequestState
from orchestrator.domain.retention import ContactFacts, Decision, RetentionPolicy, decide
from orchestrator.runtime import Runtime
from orchestrator.store.db import session_scope
from orchestrator.store.models import Contact, Enrolment, OutboxMessage

ANONYMISE = "anonymise"
DELETE = "delete"
BATCH = 500


def policy_of(rt: Runtime) -> RetentionPolicy:
    r = rt.config.retention
    return RetentionPolicy(prospect_months=r.prospect_months, customer_months=r.customer_months,
                           action=r.action, after_expiry=r.after_expiry, after_decline=r.after_decline)


def scrub_profile(contact: Contact, now: datetime, *, keep_crm_id: bool = True) -> None:
    """Replace personal data on an in-memory row (the values :func:`erase_many` writes)."""
    if not keep_crm_id:
        contact.external_id = f"erased-{contact.id}"
    contact.email = contact.phone = contact.first_name = contact.timezone = None
    contact.email_key = contact.phone_key = None
    contact.attributes = {}
    contact.erased_at = now
    contact.updated_at = now


def erase_many(session: Session, contact_ids: Sequence[int], now: datetime, action: str = ANONYMISE, *,
               keep_crm_id: bool | None = None) -> None:
    """Apply ``anonymise`` or ``delete`` to many contacts in a few set-based statements.

    Suppression entries are never touched; the person's consent events keep their proof with IP
    and user agent redacted. The sweep erases whole batches of non-responders through this.
    ``keep_crm_id`` (default: only when anonymising) keeps the ``external_id``.
    """
    if not contact_ids:
        return
    ids = list(contact_ids)
    webhooks.erased(session, ids, now, action)  # while their CRM id is still there
    ledger.redact_requests_many(session, ids)
    values: dict[str, Any] = {
        "email": None, "phone": None,
        "first_name": None, "timezone": None, "email_key": None, "phone_key": None, "attributes": {},
        "erased_at": now, "updated_at": now,
    }
    if not (action == ANONYMISE if keep_crm_id is None else keep_crm_id):
        values["external_id"] = literal("erased-", String) + cast(col(Contact.id), String)
    if action == DELETE:
        values.update(last_activity_at=None, consented_at=None, b2b=False)
    session.execute(update(Contact).where(col(Contact.id).in_(ids)).values(**values)
                    .execution_options(synchronize_session=False))
    if action == DELETE:
        session.execute(delete(OutboxMessage).where(col(OutboxMessage.contact_id).in_(ids)),
                        execution_options={"synchronize_session": False})
        session.execute(delete(Enrolment).where(col(Enrolment.contact_id).in_(ids)),
                        execution_options={"synchronize_session": False})


def erase_contact(session: Session, contact: Contact, now: datetime, action: str = ANONYMISE, *,
                  keep_crm_id: bool | None = None) -> None:
    """:func:`erase_many` for one contact already loaded in ``session`` (it is reloaded after)."""
    assert contact.id is not None
    session.flush()  # the caller's pending changes (e.g. a request just declined) go first
    erase_many(session, [contact.id], now, action, keep_crm_id=keep_crm_id)
    session.expire(contact)


@dataclass
class RetentionReport:
    dry_run: bool
    decisions: list[Decision] = field(default_factory=list)

    def count(self, action: str) -> int:
        return sum(1 for d in self.decisions if d.action == action)

    def lines(self) -> Iterator[str]:
        verb = {ANONYMISE: "would anonymise" if self.dry_run else "anonymised",
                DELETE: "would delete" if self.dry_run else "deleted"}
        for d in self.decisions:
            yield f"contact {d.contact_id}: {verb[d.action]} — {d.reason}"

    def summary(self) -> str:
        a, d = self.count(ANONYMISE), self.count(DELETE)
        if self.dry_run:
            return f"dry run: {a + d} contact(s) would go ({a} anonymise, {d} delete); nothing changed"
        return f"retention: {a} contact(s) anonymised, {d} deleted; suppression entries kept"


def _facts(session: Session) -> Iterator[ContactFacts]:
    pending = set(session.execute(
        select(col(Enrolment.contact_id)).where(col(Enrolment.state) == RequestState.PENDING.value).distinct()
    ).scalars())
    newest = select(col(Enrolment.contact_id), func.max(col(Enrolment.id)).label("last_id")).where(
        col(Enrolment.state) != RequestState.PENDING.value).group_by(col(Enrolment.contact_id)).subquery()
    last_request = dict(session.execute(
        select(col(Enrolment.contact_id), col(Enrolment.state)).join(newest, newest.c.last_id == col(Enrolment.id))
    ).all())
    rows = session.execute(
        select(col(Contact.id), col(Contact.kind), col(Contact.last_activity_at), col(Contact.consented_at),
               col(Contact.created_at), col(Contact.attributes))
        .where(col(Contact.erased_at).is_(None)).order_by(col(Contact.id))
    )
    for cid, kind, last, consented, created, attributes in rows:
        yield ContactFacts(
            contact_id=cid, kind=kind, last_activity=last,
            relationship_ended=_date((attributes or {}).get("relationship_ended_at")),
            consented_on=as_utc(consented).date() if consented else None,
            created_on=as_utc(created).date(),
            last_request=last_request.get(cid), request_pending=cid in pending,
        )


def _date(value: object) -> date | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError:
        return None


def run_retention(rt: Runtime, *, dry_run: bool = False,
                  progress: Callable[[int], None] | None = None) -> RetentionReport:
    """Decide for every live contact; unless ``dry_run``, apply the decisions in batches."""
    now = rt.clock.now()
    policy = policy_of(rt)
    report = RetentionReport(dry_run=dry_run)
    with session_scope(rt.engine) as session:
        report.decisions = [d for f in _facts(session) if (d := decide(f, policy, now.date())) is not None]
    if dry_run:
        return report
    for start in range(0, len(report.decisions), BATCH):
        with session_scope(rt.engine) as session:
            for d in report.decisions[start:start + BATCH]:
                contact = session.get(Contact, d.contact_id)
                in_flight = session.execute(select(col(Enrolment.id)).where(
                    col(Enrolment.contact_id) == d.contact_id, col(Enrolment.state) == RequestState.PENDING.value,
                ).limit(1)).first()
                if contact is not None and contact.erased_at is None and in_flight is None:
                    erase_contact(session, contact, now, d.action)
                if progress:
                    progress(1)
    return report
