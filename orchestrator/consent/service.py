"""Recording what people answer: the preference page, one-click unsubscribe, sweeps (SMS replies:
``orchestrator.consent.sms_replies``).

Consent changes only through an explicit, recorded action [R1]; each change is a ledger event with
proof [R2] and, when it stops messages, a suppression entry that takes effect before the next send [R7].

LOCK ORDER. Every transaction that writes consent takes its row locks in one order: the person's
requests (enrolment rows), then suppression entries, then the ledger's chain head (appending events
locks it until commit), then contact rows. On PostgreSQL two writers that took them in different
orders could each wait for the other: the server aborts one (a lost answer when it is the person's).
The deadline sweep, the answers, unsubscribes and :func:`withdraw` keep this order
(tests/orchestrator/test_lock_order.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol
from weakref import WeakKeyDictionary

from sqlalchemy import Table, bindparam, exists, func, literal_column, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from orchestrator.consent import enrolments, ledger
from orchestrator.consent.alternatives import pause_ends
from orchestrator.consent.choices import choice_events, granted_choices
from orchestrator.consent.ledger import Proof
from orchestrator.consent.suppression import LIFTABLE, is_suppressed, lift, suppress
from orchestrator.domain import b2b as pro
from orchestrator.domain.clock import as_utc
from orchestrator.domain.model import (
    Channel,
    ConsentAction,
    Purpose,
    RequestState,
    SuppressionReason,
)
from orchestrator.errors import NotFoundError, RequestExpired
from orchestrator.runtime import Runtime
from orchestrator.store.db import session_scope
from orchestrator.store.models import Campaign, ConsentEvent, Contact, Enrolment, OutboxMessage, SuppressionEntry

__all__ = ["LIFTABLE", "Answer", "PageFacts", "Person", "apply_answer", "contact_channels", "is_suppressed", "key_of",
           "lift", "live_person", "page_facts", "record_answer", "record_unsubscribe", "suppress", "withdraw"]


@dataclass(frozen=True)
class Answer:
    """What the person ticked: marketing per channel; ``choices``: each topic and named partner offered
    (purpose ``topic:<id>`` / ``partner:<id>`` → ticked, see :mod:`orchestrator.consent.choices`);
    ``partners``: the old unnamed partner sharing (kept for old callers; the page no longer offers it)."""

    channels: dict[str, bool]
    partners: bool = False
    choices: Mapping[str, bool] = field(default_factory=dict)
    #: the channels the page asked about (None: every channel the person has; an unticked one is then
    #: "not granted"); nothing is recorded or suppressed on another (the B2B notice asks about email
    #: only; an alternative to leaving applies to the channels it ticks)
    asked: tuple[str, ...] | None = None
    #: an alternative to leaving (:mod:`orchestrator.consent.alternatives`): ``(purpose, detail)`` of
    #: the ``granted`` event added on each confirmed channel, after its marketing event
    also: tuple[tuple[str, str], ...] = ()

    @property
    def confirms(self) -> bool:
        return any(self.channels.values())

    def asks(self, channel: str) -> bool:
        return self.asked is None or channel in self.asked


class Reachable(Protocol):
    """What the channel helpers read from a contact: a :class:`Contact` row or a :class:`Person`."""

    @property
    def email(self) -> str | None: ...
    @property
    def phone(self) -> str | None: ...
    @property
    def email_key(self) -> str | None: ...
    @property
    def phone_key(self) -> str | None: ...


@dataclass(frozen=True)
class Person:
    """The contact fields the pages and an answer need, read with one Core query (no ORM object)."""

    id: int
    email: str | None
    phone: str | None
    email_key: str | None
    phone_key: str | None
    first_name: str | None
    locale: str
    #: the link's campaign informs this person by a B2B notice (opt-out) rather than asking
    #: (:func:`orchestrator.domain.b2b.under_notice`); read in the same statement as the rest
    notice: bool = False
    #: the person has some ``pause`` event (an answer then checks whether one runs, to end it); True
    #: when not read, so that nothing is skipped
    has_paused: bool = True


@dataclass(frozen=True)
class PageFacts:
    """Everything the preference page shows, read in one statement (see :func:`page_facts`).

    ``given``: the newest marketing event of the channel is granted/confirmed (as
    :func:`orchestrator.consent.ledger.current_consent` decides); ``suppressed``: the channel's address is on
    the suppression list; ``enrolment_state``: the request of the link's campaign, None when none.
    """

    contact: Person
    enrolment_state: str | None
    given: dict[str, bool]
    suppressed: dict[str, bool]
    #: when the link's request expires: the person's own deadline, else the campaign's (None: no request)
    deadline: datetime | None = None

    def current(self) -> dict[str, bool]:
        """Per channel the person has: ticked only for their own, still-current consent [R1]."""
        return {c.value: self.given[c.value] and not self.suppressed[c.value] for c in contact_channels(self.contact)}


def contact_channels(contact: Reachable) -> list[Channel]:
    return [c for c, present in ((Channel.EMAIL, contact.email), (Channel.SMS, contact.phone)) if present]


def key_of(contact: Reachable, channel: Channel | str) -> str | None:
    return contact.email_key if channel == Channel.EMAIL else contact.phone_key


def withdraw(session: Session, key: str | None, channel: Channel | str, reason: SuppressionReason | str,
             source: str, now: datetime, *, decline: Iterable[int] = (), campaign_id: int | None = None,
             replace: bool = False) -> bool:
    """Stop messaging this address on this channel — the one way every path says it: an unsubscribe,
    a "no" on the preference page, an SMS STOP, an erasure, a hard bounce, a carrier opt-out (Twilio
    21610) or a provider's permanent failure.

    Declines the open requests of the contacts in ``decline`` (in ``campaign_id`` only, when given:
    the person answered, no further step goes out [O3]) and adds the suppression entry (the first
    reason stays; ``replace``: this reason wins, as an erasure does). Inside the caller's transaction;
    returns whether a new entry was added. Ledger events are the caller's (each path has its proof),
    appended after this call: see LOCK ORDER.
    """
    for contact_id in decline:  # the requests first: see LOCK ORDER
        enrolments.close(session, RequestState.DECLINED, now, contact_id=contact_id, campaign_id=campaign_id)
    return suppress(session, key, channel, reason, source, now, replace=replace)


# -- the preference page's reads and writes, as Core statements built once ---------------------------
_CONTACT: Table = Contact.metadata.tables["contact"]
_ENROLMENT: Table = Enrolment.metadata.tables["enrolment"]
_EVENT: Table = ConsentEvent.metadata.tables["consent_event"]
_SUPPRESSION: Table = SuppressionEntry.metadata.tables["suppression"]
_CAMPAIGN: Table = Campaign.metadata.tables["campaign"]


def _newest_marketing_action(channel: Channel) -> Any:
    """The action of the newest marketing event of (this contact, channel): max(id) decides, as in
    ``ledger.current_consent``."""
    return (select(_EVENT.c.action)
            .where(_EVENT.c.contact_id == _CONTACT.c.id, _EVENT.c.channel == _constant(channel.value),
                   _EVENT.c.purpose == _constant(Purpose.MARKETING.value))
            .order_by(_EVENT.c.id.desc()).limit(1).scalar_subquery())


def _on_suppression_list(channel: Channel, key: Any) -> Any:
    return exists().where(_SUPPRESSION.c.key == key, _SUPPRESSION.c.channel == _constant(channel.value))


def _constant(word: str) -> Any:
    """A fixed word written into the SQL text (no bind parameter to process on every execution).

    >>> str(_constant("email"))
    "'email'"
    """
    assert word.isidentifier()  # only our own enum values, never input
    return literal_column(f"'{word}'")


#: the link's request (one per contact and campaign) and its campaign, when there is one
_WITH_REQUEST = (
    _CONTACT.outerjoin(_ENROLMENT, (_ENROLMENT.c.contact_id == _CONTACT.c.id)
                       & (_ENROLMENT.c.campaign_id == bindparam("campaign_id")))
    .outerjoin(_CAMPAIGN, _CAMPAIGN.c.id == _ENROLMENT.c.campaign_id)
)
#: the person's columns, then what decides the B2B notice: the contact's flag and the campaign's regime
_PERSON = (_CONTACT.c.id, _CONTACT.c.email, _CONTACT.c.phone, _CONTACT.c.email_key, _CONTACT.c.phone_key,
           _CONTACT.c.first_name, _CONTACT.c.locale, _CONTACT.c.b2b,
           _CAMPAIGN.c.plan[("audience", "b2b_regime")].as_string(), _CONTACT.c.erased_at)

#: one statement for the whole page: the contact, the campaign's request, and per channel the newest
#: marketing event and the suppression entry (instead of three sessions and a query per channel)
_PAGE_FACTS = select(
    *_PERSON,
    _ENROLMENT.c.state,
    _newest_marketing_action(Channel.EMAIL), _newest_marketing_action(Channel.SMS),
    _on_suppression_list(Channel.EMAIL, _CONTACT.c.email_key), _on_suppression_list(Channel.SMS, _CONTACT.c.phone_key),
    func.coalesce(_ENROLMENT.c.deadline_at, _CAMPAIGN.c.deadline_at),
).select_from(_WITH_REQUEST).where(_CONTACT.c.id == bindparam("contact_id"))

_LIVE_PERSON = select(
    *_PERSON, exists().where(_EVENT.c.contact_id == _CONTACT.c.id, _EVENT.c.purpose == _constant("pause")),
).select_from(_WITH_REQUEST).where(_CONTACT.c.id == bindparam("contact_id"))


def _person(row: Any, has_paused: bool = True) -> Person:
    """The :class:`Person` of a row starting with :data:`_PERSON`'s columns."""
    return Person(id=row[0], email=row[1], phone=row[2], email_key=row[3], phone_key=row[4], first_name=row[5],
                  locale=row[6], notice=pro.under_notice(row[8] or pro.CONSENT, bool(row[7]), row[1]),
                  has_paused=has_paused)


def page_facts(conn: Connection, contact_id: int, campaign_id: int | None) -> PageFacts:
    """What the preference page needs about a live contact; NotFoundError when gone or erased."""
    row = conn.execute(_PAGE_FACTS, {"contact_id": contact_id, "campaign_id": campaign_id}).first()
    if row is None or row[9] is not None:
        raise NotFoundError("contact gone")
    person = _person(row)
    return PageFacts(
        contact=person, enrolment_state=row[10],
        given={"email": row[11] in ledger.GIVEN, "sms": row[12] in ledger.GIVEN},
        suppressed={"email": bool(row[13]) and bool(person.email_key), "sms": bool(row[14]) and bool(person.phone_key)},
        deadline=as_utc(row[15]) if row[15] is not None else None,
    )


def live_person(conn: Connection, contact_id: int, campaign_id: int | None = None) -> Person:
    """The contact as a :class:`Person` (``notice`` for the request of ``campaign_id``);
    NotFoundError when gone or erased."""
    row = conn.execute(_LIVE_PERSON, {"contact_id": contact_id, "campaign_id": campaign_id}).first()
    if row is None or row[9] is not None:
        raise NotFoundError("unknown contact")
    return _person(row, has_paused=bool(row[10]))


def record_answer(rt: Runtime, contact_id: int, campaign_id: int | None, answer: Answer, proof: Proof) -> str:
    """Apply a preference-page answer; returns the enrolment's state afterwards ("" when none).
    RequestExpired (nothing recorded) when the deadline sweep expired the request first."""
    now = rt.clock.now()
    with session_scope(rt.engine) as session:
        return apply_answer(session, live_person(session.connection(), contact_id), campaign_id, answer, proof, now)


def apply_answer(session: Session, contact: Person, campaign_id: int | None, answer: Answer, proof: Proof,
                 now: datetime) -> str:
    """:func:`record_answer` inside the caller's transaction, for a contact it read there (the page
    also stores the wording shown in it). The events of one answer are appended under one lock of the
    chain head, channel by channel: marketing, then partners; then topics and named partners."""
    conn = session.connection()
    contact_id = contact.id
    reachable = [c for c in contact_channels(contact) if answer.asks(c.value)]
    # Only a "yes" on a channel the person has counts: a forged or stale form ticking a channel
    # we hold no address for must not close the request as confirmed without a confirmation event.
    confirms = any(answer.channels.get(c.value) for c in reachable)
    # The request's transition comes first, before anything else is written: it is the one place an
    # answer and the deadline sweep meet. Whichever moves the pending request first wins (PostgreSQL
    # holds the row lock until commit and re-checks the other's condition; on SQLite this first write
    # takes the database's write lock). When the sweep won, nothing of the answer is recorded.
    target = RequestState.CONFIRMED if confirms else RequestState.DECLINED
    state = enrolments.answer(conn, contact_id, campaign_id, target, now)
    if state == RequestState.EXPIRED:
        raise RequestExpired("the campaign is over: this request expired before the answer")
    events: list[dict[str, Any]] = []
    for channel in reachable:
        chosen = bool(answer.channels.get(channel.value))
        # a channel left unticked next to one confirmed is "not granted", not a refusal of the request
        refusal = ConsentAction.NOT_GRANTED if confirms else ConsentAction.DECLINED
        action = ConsentAction.CONFIRMED if chosen else refusal
        events.append({"contact_id": contact_id, "channel": channel.value, "purpose": Purpose.MARKETING.value,
                       "action": action.value, "at": now, "proof": proof})
        if answer.partners:
            events.append({"contact_id": contact_id, "channel": channel.value, "purpose": Purpose.PARTNERS.value,
                           "action": ConsentAction.GRANTED.value, "at": now, "proof": proof})
        if chosen:
            events.extend({"contact_id": contact_id, "channel": channel.value, "purpose": purpose, "detail": detail,
                           "action": ConsentAction.GRANTED.value, "at": now, "proof": proof}
                          for purpose, detail in answer.also)
    if contact.has_paused:  # a "yes" ends a running pause on the channels it confirms (consent.alternatives)
        events += pause_ends(conn, contact_id, [c.value for c in reachable if answer.channels.get(c.value)],
                             answer.also, now, proof)
    if answer.choices:
        events += choice_events(contact_id, reachable, answer.choices, granted_choices(conn, contact_id), proof, now)
    for channel in reachable:  # suppression entries, then the ledger: see LOCK ORDER
        key = key_of(contact, channel)
        if not key:
            continue
        if answer.channels.get(channel.value):
            lift(conn, key, channel)
        else:
            reason = SuppressionReason.NOT_GRANTED if confirms else SuppressionReason.UNSUBSCRIBED
            withdraw(session, key, channel, reason, str(proof.source), now)
    ledger.append_many(session, events)
    if confirms:
        conn.execute(_CONSENTED, {"contact_id": contact_id, "now": now})
    return state


_CONSENTED = update(_CONTACT).where(_CONTACT.c.id == bindparam("contact_id")).values(consented_at=bindparam("now"))


def record_unsubscribe(rt: Runtime, contact_id: int, campaign_id: int | None, channel: str, proof: Proof) -> bool:
    """One-click or link unsubscribe from one channel. Idempotent: False when already unsubscribed."""
    now = rt.clock.now()
    with session_scope(rt.engine) as session:
        contact = session.get(Contact, contact_id)
        if contact is None:
            raise NotFoundError("unknown contact")
        key = key_of(contact, channel)
        if contact.erased_at is not None or is_suppressed(session, key, channel):
            enrolments.answer(session, contact_id, campaign_id, RequestState.DECLINED, now)
            return False
        withdraw(session, key, channel, SuppressionReason.UNSUBSCRIBED, proof.source, now,
                 decline=[contact_id] if campaign_id is not None else (), campaign_id=campaign_id)
        ledger.append(session, contact_id=contact_id, channel=channel, purpose=Purpose.MARKETING,
                      action=ConsentAction.WITHDRAWN, at=now, proof=proof)
        return True


def _live_contact(session: Session, contact_id: int) -> Contact:
    contact = session.get(Contact, contact_id)
    if contact is None or contact.erased_at is not None:
        raise NotFoundError("unknown contact")
    return contact


# -- the public pages' door (preference_centre calls these, never the store) -------------------------
def read_page_facts(rt: Runtime, contact_id: int, campaign_id: int | None) -> PageFacts:
    """:func:`page_facts` on a connection of its own (read only); NotFoundError when gone or erased."""
    with rt.engine.connect() as conn:
        return page_facts(conn, contact_id, campaign_id)


@dataclass(frozen=True)
class Shown:
    """The exact wording a page showed, stored once per version as proof of what was agreed to [R2]."""

    name: str
    locale: str
    text: str


@dataclass(frozen=True)
class PageAnswer:
    """An answer from a page: what was chosen, the proof (its wording fields are filled in with the
    stored ``shown``) and the wording shown."""

    answer: Answer
    proof: Proof
    shown: Shown
    #: how to record it instead of :func:`apply_answer` (an alternative to leaving: ``consent.alternatives``)
    apply: Callable[[Session, Person, int | None, Answer, Proof, datetime], str] | None = None


#: per database, the wordings already stored ((name, locale, text) → content hash). A wording row is
#: written once and never deleted, so after the first answer in a language the look-up is skipped.
_stored_wordings: WeakKeyDictionary[Engine, dict[tuple[str, str, str], str]] = WeakKeyDictionary()


def answer_from_page(rt: Runtime, contact_id: int, campaign_id: int | None,
                     decide: Callable[[Person], PageAnswer | None]) -> tuple[Person, PageAnswer | None, str]:
    """Record a page's answer in one transaction: read the live person, let ``decide`` build the
    answer from them (None: the form was not an answer, nothing is written), store the wording shown
    and apply it. Returns (person, the answer, the enrolment's state afterwards: "" when none).
    NotFoundError when the person is gone or erased; RequestExpired (nothing written) when the
    deadline sweep expired the request first.

    Two first answers in one language at the same moment both store its wording: the loser's
    transaction rolls back whole and is run again, when it finds the wording and records the answer.
    """
    try:
        return _answer_from_page(rt, contact_id, campaign_id, decide)
    except IntegrityError:
        return _answer_from_page(rt, contact_id, campaign_id, decide)


def _answer_from_page(rt: Runtime, contact_id: int, campaign_id: int | None,
                      decide: Callable[[Person], PageAnswer | None]) -> tuple[Person, PageAnswer | None, str]:
    now = rt.clock.now()
    with session_scope(rt.engine) as session:
        person = live_person(session.connection(), contact_id, campaign_id)
        decided = decide(person)
        if decided is None:
            return person, None, ""
        shown = decided.shown
        known = _stored_wordings.get(rt.engine, {}).get((shown.name, shown.locale, shown.text))
        wording_hash = known if known is not None else ledger.remember_wording(
            session, name=shown.name, locale=shown.locale, text_shown=shown.text, at=now)
        proof = replace(decided.proof, wording_name=shown.name, wording_hash=wording_hash)
        state = (decided.apply or apply_answer)(session, person, campaign_id, decided.answer, proof, now)
    _stored_wordings.setdefault(rt.engine, {})[(shown.name, shown.locale, shown.text)] = wording_hash
    return person, decided, state


def find_person(rt: Runtime, contact_id: int) -> Person | None:
    """The contact as a :class:`Person`, erased or not (an erased one has no address); None when
    there is no such contact. For pages that speak the person's language even on a dead link."""
    with session_scope(rt.engine) as session:
        c = session.get(Contact, contact_id)
        if c is None or c.id is None:
            return None
        return Person(c.id, c.email, c.phone, c.email_key, c.phone_key, c.first_name, c.locale)


@dataclass(frozen=True)
class SentLink:
    """What a short SMS link stands for: the message it was sent in (see ``links.resolve_short_code``)."""

    contact_id: int
    campaign_id: int
    channel: str
    sent_at: datetime | None


def sent_link(rt: Runtime, outbox_id: int) -> SentLink | None:
    """The message a short code names, or None when there is no such message."""
    with session_scope(rt.engine) as session:
        row = session.get(OutboxMessage, outbox_id)
        if row is None:
            return None
        return SentLink(row.contact_id, row.campaign_id, row.channel,
                        as_utc(row.sent_at) if row.sent_at is not None else None)
