"""Consent the company already holds (issue 17 §4): recorded from the contacts CSV, honoured by audiences.

The CSV's optional ``email_consent_at``, ``sms_consent_at`` (when the person gave it), ``consent_source``
(where: "webform 2024", "shop checkout") and ``consent_wording`` (the text they agreed to) become
``granted`` ledger events with source ``import``, dated when the consent was given, the company's
source as the wording name and the wording stored once by version — the same proof as any event.

An imported consent never overrides the person: it is not recorded when the address is on the
suppression list for that channel, or when a marketing event of that channel at the same time or
later is on record (a withdrawal, an answer, or the same import run again).

A campaign's audience then skips a channel whose consent — imported or given through Reconsent —
is younger than ``contacts.recent_consent_months`` (:func:`recently_given`): there is nothing to
re-ask yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Table, and_, exists, func, select
from sqlalchemy.engine import Connection
from sqlmodel import Session

from orchestrator.consent import ledger
from orchestrator.consent.ledger import GIVEN, Proof
from orchestrator.consent.standing import EventFacts, events_of
from orchestrator.consent.suppression import is_suppressed
from orchestrator.domain.clock import as_utc
from orchestrator.domain.model import Channel, ConsentAction, ConsentSource, Purpose
from orchestrator.store.models import ConsentEvent, Contact

_EVENT: Table = ConsentEvent.metadata.tables["consent_event"]
_CONTACT: Table = Contact.metadata.tables["contact"]


@dataclass(frozen=True)
class PriorConsent:
    """A contact's prior consent as read from its CSV row: channel → when (UTC), and the proof."""

    contact_id: int
    email_key: str | None
    phone_key: str | None
    locale: str
    given_at: dict[str, datetime]
    source: str | None = None
    wording: str | None = None


@dataclass
class PriorReport:
    recorded: int = 0
    #: why some were not recorded → how many
    ignored: dict[str, int] = field(default_factory=dict)

    def ignore(self, why: str) -> None:
        self.ignored[why] = self.ignored.get(why, 0) + 1


def record_prior(session: Session, people: Sequence[PriorConsent], now: datetime) -> PriorReport:
    """Append a ``granted`` event per (person, channel) the rules above allow, in the caller's transaction."""
    report = PriorReport()
    events: list[dict[str, Any]] = []
    wordings: dict[tuple[str, str], str] = {}
    for p in people:
        for channel, at in sorted(p.given_at.items()):
            key = p.email_key if channel == Channel.EMAIL.value else p.phone_key
            if as_utc(at) > as_utc(now):
                report.ignore("dated in the future")
            elif is_suppressed(session, key, channel):
                report.ignore("the address is on the suppression list")
            elif _later_event(session, p.contact_id, channel, at):
                report.ignore("a later answer or the same consent is already on record")
            else:
                wording_hash = None
                if p.wording:
                    cache = (p.locale, p.wording)
                    if cache not in wordings:
                        wordings[cache] = ledger.remember_wording(session, name="import", locale=p.locale,
                                                                  text_shown=p.wording, at=now)
                    wording_hash = wordings[cache]
                proof = Proof(source=ConsentSource.IMPORT.value, wording_name=(p.source or "import")[:200],
                              wording_hash=wording_hash, locale=p.locale)
                events.append({"contact_id": p.contact_id, "channel": channel, "purpose": Purpose.MARKETING.value,
                               "action": ConsentAction.GRANTED.value, "at": at, "proof": proof})
    report.recorded = ledger.append_many(session, events)
    return report


def _later_event(session: Session, contact_id: int, channel: str, at: datetime) -> bool:
    return session.execute(select(_EVENT.c.id).where(
        _EVENT.c.contact_id == contact_id, _EVENT.c.channel == channel,
        _EVENT.c.purpose == Purpose.MARKETING.value, _EVENT.c.occurred_at >= as_utc(at)).limit(1)).first() is not None


def held_channels(conn: Connection, people: Sequence[tuple[int, datetime]]) -> set[tuple[int, str]]:
    """The (contact, channel) pairs whose newest marketing event gave consent after that person's
    ``since``: the channels a campaign did not ask on (:func:`recently_given` at launch), which its
    sweep must not expire either. One query for all the people."""
    since = dict(people)
    held = set()
    for contact_id, events in events_of(conn, list(since)).items():
        newest: dict[str, EventFacts] = {}
        for e in events:
            if e.purpose == Purpose.MARKETING.value:
                newest[e.channel] = e
        held |= {(contact_id, ch) for ch, e in newest.items()
                 if e.action in GIVEN and e.occurred_at > as_utc(since[contact_id])}
    return held


def recently_given(channel: Channel, since: datetime) -> Any:
    """SQL condition on ``contact``: its newest marketing event on ``channel`` gave consent after ``since``."""
    newer = _EVENT.alias("newer")
    newest = (select(func.max(newer.c.id)).where(
        newer.c.contact_id == _CONTACT.c.id, newer.c.channel == channel.value,
        newer.c.purpose == Purpose.MARKETING.value).correlate(_CONTACT).scalar_subquery())
    event = _EVENT.alias("given")
    return exists().where(and_(event.c.id == newest, event.c.action.in_(sorted(GIVEN)),
                               event.c.occurred_at > since)).correlate(_CONTACT)
