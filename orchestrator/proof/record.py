"""The one read of "everything held about a person": the contact row, their consent events, the
messages sent to them, their requests (enrolments), the suppression entries under their addresses,
and the wordings their events point at.

Three readers format it their own way: the data-subject export (:func:`orchestrator.proof.rights.
export_person`, ``dsr export``), the auditor's evidence (:mod:`orchestrator.proof.evidence`) and the
console's person page (:func:`person_record`). They differ only in which contacts they ask about
and, for a campaign's evidence, in keeping that campaign's messages and requests only.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlmodel import Session, col

from orchestrator.runtime import Runtime
from orchestrator.store.db import session_scope
from orchestrator.store.models import (
    Campaign,
    ConsentEvent,
    Contact,
    Enrolment,
    OutboxMessage,
    SuppressionEntry,
    Wording,
)

CHUNK = 500  # contact ids per IN (...) list


@dataclass(frozen=True)
class PersonRecord:
    """One contact and everything linked to it, each list oldest first (by id)."""

    contact: Contact
    events: list[ConsentEvent]
    messages: list[OutboxMessage]
    enrolments: list[Enrolment]
    #: entries under the contact's address keys: email first, then SMS
    suppression: list[SuppressionEntry]


@dataclass(frozen=True)
class Records:
    people: list[PersonRecord]
    #: content hash → wording, for every wording the people's events point at
    wordings: dict[str, Wording]


def contacts_by_key(session: Session, key: str, column: str | None = None) -> list[Contact]:
    """The contacts whose ``column`` (``email_key`` or ``phone_key``; None: either) is ``key``, by id."""
    if column is None:
        where = or_(col(Contact.email_key) == key, col(Contact.phone_key) == key)
    else:
        where = getattr(Contact, column) == key
    return list(session.execute(select(Contact).where(where).order_by(col(Contact.id))).scalars())


def read_records(session: Session, contacts: list[Contact], *, campaign_id: int | None = None) -> Records:
    """Everything about these contacts (in the caller's transaction); ``campaign_id``: that
    campaign's messages and requests only (consent events and suppression stay whole)."""
    ids = [c.id for c in contacts]
    messages: dict[int, list[OutboxMessage]] = defaultdict(list)
    events: dict[int, list[ConsentEvent]] = defaultdict(list)
    enrolments: dict[int, list[Enrolment]] = defaultdict(list)
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        q = select(OutboxMessage).where(col(OutboxMessage.contact_id).in_(chunk))
        if campaign_id is not None:
            q = q.where(col(OutboxMessage.campaign_id) == campaign_id)
        for m in session.execute(q.order_by(col(OutboxMessage.id))).scalars():
            messages[m.contact_id].append(m)
        for e in session.execute(select(ConsentEvent).where(col(ConsentEvent.contact_id).in_(chunk))
                                 .order_by(col(ConsentEvent.id))).scalars():
            events[e.contact_id].append(e)
        q2 = select(Enrolment).where(col(Enrolment.contact_id).in_(chunk))
        if campaign_id is not None:
            q2 = q2.where(col(Enrolment.campaign_id) == campaign_id)
        for r in session.execute(q2.order_by(col(Enrolment.id))).scalars():
            enrolments[r.contact_id].append(r)
    people = []
    for c in contacts:
        assert c.id is not None
        entries = [s for ch, key in (("email", c.email_key), ("sms", c.phone_key)) if key
                   if (s := session.get(SuppressionEntry, (key, ch))) is not None]
        people.append(PersonRecord(c, events[c.id], messages[c.id], enrolments[c.id], entries))
    hashes = {e.wording_hash for p in people for e in p.events if e.wording_hash}
    wordings = {w.content_hash: w for w in session.execute(
        select(Wording).where(col(Wording.content_hash).in_(hashes))).scalars()} if hashes else {}
    return Records(people, wordings)


@dataclass(frozen=True)
class PersonFile:
    """What the console shows about the people with one address key."""

    people: list[PersonRecord]
    campaign_names: dict[int, str]
    #: every suppression entry under the key, whatever the channel (also when no contact is left)
    suppressed: list[SuppressionEntry]

    def context(self) -> dict[str, Any]:
        return {"people": self.people, "campaign_names": self.campaign_names, "suppressed": self.suppressed}


def person_record(rt: Runtime, key: str) -> PersonFile:
    """Everything about the people whose email or phone key is ``key`` (the console's person page)."""
    with session_scope(rt.engine) as session:
        records = read_records(session, contacts_by_key(session, key))
        names = {i: n for i, n in session.execute(select(col(Campaign.id), col(Campaign.name)))}
        suppressed = list(session.execute(select(SuppressionEntry).where(col(SuppressionEntry.key) == key)).scalars())
    return PersonFile(records.people, names, suppressed)
