"""Data-subject rights [R8]: export a person's whole record as JSON; erase their personal data while
keeping the hashed suppression entries, so a re-import cannot bring them back. Every request lands
in the register (:mod:`orchestrator.proof.requests`), whether an operator or the preference centre took it."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from orchestrator.consent import enrolments, ledger
from orchestrator.consent.ledger import Proof
from orchestrator.consent.service import contact_channels, key_of, withdraw
from orchestrator.domain import addresses
from orchestrator.domain.clock import as_utc
from orchestrator.domain.model import ConsentAction, ConsentSource, Purpose, RequestState, SuppressionReason
from orchestrator.errors import InputError, NotFoundError
from orchestrator.proof import requests as dsr
from orchestrator.proof.record import contacts_by_key, read_records
from orchestrator.proof.retention import ANONYMISE, erase_contact
from orchestrator.runtime import Runtime
from orchestrator.store.db import saved_id, session_scope
from orchestrator.store.models import (
    ConsentEvent,
    Contact,
    SuppressionEntry,
)


def address_key(rt: Runtime, *, email: str | None = None, phone: str | None = None) -> tuple[str, str]:
    """(column, key) to find a person by address; phones are normalised to E.164 first."""
    if email:
        return "email_key", rt.key_for(email)
    if phone:
        return "phone_key", rt.key_for(normalise_phone(phone, rt.config.contacts.default_region))
    raise InputError("give --email or --phone")


def subject_of(rt: Runtime, *, email: str | None = None, phone: str | None = None) -> dsr.Subject:
    column, key = address_key(rt, email=email, phone=phone)
    return dsr.Subject(key, "email" if column == "email_key" else "sms")


def normalise_phone(phone: str, region: str) -> str:
    try:
        return addresses.normalise_phone(phone, region)
    except addresses.AddressError as err:
        raise InputError(f"--phone: {err.reason}") from None


def _find(session: Any, rt: Runtime, email: str | None, phone: str | None) -> list[Contact]:
    column, key = address_key(rt, email=email, phone=phone)
    return contacts_by_key(session, key, column)


def _event(e: ConsentEvent, wordings: Mapping[str, str]) -> dict[str, Any]:
    out = {k: _json(getattr(e, k)) for k in (
        "id", "channel", "purpose", "action", "occurred_at", "source", "campaign_id", "step",
        "wording_name", "wording_hash", "locale", "ip", "user_agent", "prev_hash", "hash")}
    out["wording_text"] = wordings.get(e.wording_hash or "")
    return out


def _entry(s: SuppressionEntry) -> dict[str, Any]:
    return {"channel": s.channel, "reason": s.reason, "source": s.source, "created_at": _json(s.created_at)}


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def _people(session: Any, contacts: list[Contact]) -> list[dict[str, Any]]:
    """The export's "people": each contact's profile, consent, messages, requests and suppression."""
    records = read_records(session, contacts)
    wordings = {h: w.text for h, w in records.wordings.items()}
    people = []
    for record in records.people:
        c, events, messages, enrolments = record.contact, record.events, record.messages, record.enrolments
        # the channels the person still has an address for (an erased profile shows none)
        held = {ch.value for ch in contact_channels(c)}
        suppression = [s for s in record.suppression if s.channel in held]
        people.append({
            "profile": {k: _json(getattr(c, k)) for k in (
                "id", "external_id", "kind", "email", "phone", "first_name", "locale", "timezone",
                "last_activity_at", "consented_at", "b2b", "attributes", "created_at", "updated_at")},
            "current_consent": [
                {"channel": ch, "purpose": p, "state": state}
                for (_, ch, p), state in sorted(ledger.current_consent(session, [saved_id(c)]).items())
            ],
            "consent_events": [_event(e, wordings) for e in events],
            "messages": [{k: _json(getattr(m, k)) for k in (
                "campaign_id", "step", "channel", "template", "template_version", "locale", "status",
                "sent_at", "message_id", "provider_id", "skip_reason")} for m in messages],
            "enrolments": [{k: _json(getattr(e, k)) for k in (
                "campaign_id", "state", "enrolled_at", "answered_at")} for e in enrolments],
            "suppression": [_entry(s) for s in suppression],
        })
    return people


def export_person(rt: Runtime, *, email: str | None = None, phone: str | None = None,
                  handled_by: str | None = None) -> dict[str, Any]:
    """Everything held about every contact with this address (the operator's ``dsr export``), as one
    JSON-ready dict. With ``handled_by``, the access request is also recorded as handled in the register.
    """
    with session_scope(rt.engine) as session:
        contacts = _find(session, rt, email, phone)
        if not contacts:
            raise NotFoundError("no contact with that address (it may have been erased already)")
        people = _people(session, contacts)
        subject = subject_of(rt, email=email, phone=phone)
        if handled_by:
            dsr.record_handled(session, rt, "access", subject, handled_by=handled_by)
    requests = dsr.list_requests(rt, subject_keys=[subject.key])
    return {"generated_at": rt.clock.now().isoformat(), "people": people,
            "requests": [dsr.as_dict(r) for r in requests]}


def export_contact(rt: Runtime, contact_id: int) -> dict[str, Any]:
    """Everything held about one contact (a rights link names one person: another contact sharing
    their email or phone is not in it), in the shape of :func:`export_person`."""
    with session_scope(rt.engine) as session:
        contact = _live(session, contact_id)
        people = _people(session, [contact])
        keys = [k for k in (contact.email_key, contact.phone_key) if k]
    requests = dsr.list_requests(rt, subject_keys=keys)
    # the register is per address: at a shared one, another person's request shows too; its dates and
    # state concern the address, the staff's name and free-text note do not leave through a link
    staff_only = ("handled_by", "note")
    return {"generated_at": rt.clock.now().isoformat(), "people": people,
            "requests": [{k: v for k, v in dsr.as_dict(r).items() if k not in staff_only} for r in requests]}


def _live(session: Any, contact_id: int) -> Contact:
    contact: Contact | None = session.get(Contact, contact_id)
    if contact is None or contact.erased_at is not None:
        raise NotFoundError("unknown contact (it may have been erased already)")
    return contact


def erase_person(rt: Runtime, *, email: str | None = None, phone: str | None = None,
                 source: str = ConsentSource.OPERATOR, handled_by: str | None = None) -> int:
    """:func:`erase_by_address`; returns how many contacts were erased."""
    return len(erase_by_address(rt, email=email, phone=phone, source=source, handled_by=handled_by))


def erase_by_address(rt: Runtime, *, email: str | None = None, phone: str | None = None,
                     source: str = ConsentSource.OPERATOR, handled_by: str | None = None) -> list[str]:
    """Erase every contact with this address (the operator's ``dsr erase``); returns their
    external_ids, in id order.

    Each address gets (or keeps) a suppression entry whose reason becomes ``erased``: a re-import of
    any row carrying one of them is refused. The consent events stay, their IP/user agent redacted.
    With ``handled_by``, the erasure request is recorded as handled in the register.
    """
    now = rt.clock.now()
    with session_scope(rt.engine) as session:
        contacts = _find(session, rt, email, phone)
        if not contacts:
            raise NotFoundError("no contact with that address (it may have been erased already)")
        subject = subject_of(rt, email=email, phone=phone)
        erased = [c.external_id for c in contacts]
        for c in contacts:
            _erase(session, c, now, source, stop=set())
        if handled_by:
            dsr.record_handled(session, rt, "erasure", subject, handled_by=handled_by,
                               source="preference_centre" if source == ConsentSource.PREFERENCE_CENTRE else "operator")
        return erased


def shared_channels(rt: Runtime, contact_id: int) -> list[str]:
    """The channels whose address this contact shares with another live contact (a family email, a
    shop's phone), email first; NotFoundError when the contact is gone or erased."""
    with session_scope(rt.engine) as session:
        return sorted(_shared(session, _live(session, contact_id)))


def _shared(session: Any, contact: Contact) -> set[str]:
    shared = set()
    for channel, column, key in (("email", Contact.email_key, contact.email_key),
                                 ("sms", Contact.phone_key, contact.phone_key)):
        if key and session.execute(select(col(Contact.id)).where(
                col(column) == key, col(Contact.id) != contact.id, col(Contact.erased_at).is_(None)).limit(1)).first():
            shared.add(channel)
    return shared


def erase_contact_self(rt: Runtime, contact_id: int, *, stop: Collection[str] = ()) -> dict[str, str]:
    """The person's own erasure from their rights link: this contact only, never another one that
    shares an address. Returns, per channel the contact had, what became of the address:

    - ``erased``: only this person used it; it is suppressed (reason ``erased``) so a re-import
      cannot bring them back;
    - ``stopped``: someone else uses it too and the person asked (``stop``) to end all messages to
      it: suppressed as ``unsubscribed``, which stops messages to everyone who uses it;
    - ``kept``: someone else uses it too and the person did not ask: not suppressed, the other
      contact goes on receiving what they agreed to.
    """
    now = rt.clock.now()
    with session_scope(rt.engine) as session:
        contact = _live(session, contact_id)
        shared = _shared(session, contact)
        outcome = {ch.value: ("erased" if ch.value not in shared else "stopped" if ch.value in stop else "kept")
                   for ch in contact_channels(contact)}
        _erase(session, contact, now, ConsentSource.PREFERENCE_CENTRE, stop={c for c in stop if c in shared},
               shared=shared)
        return outcome


def _erase(session: Any, c: Contact, now: datetime, source: str, *, stop: set[str],
           shared: set[str] | None = None) -> None:
    """Erase one contact: per channel a withdrawal event, the address suppressed as ``erased`` (an
    address in ``shared``: as ``unsubscribed`` when in ``stop``, else left alone), the open requests
    declined, then the profile anonymised."""
    for channel in contact_channels(c):
        key = key_of(c, channel)
        # a request still pending is answered by the erasure: no further step, and the campaign's
        # figures count it as a refusal rather than waiting for the deadline
        if shared is None or channel.value not in shared:
            withdraw(session, key, channel, SuppressionReason.ERASED, "erasure", now, replace=True,
                     decline=[saved_id(c)])
        elif channel.value in stop:
            withdraw(session, key, channel, SuppressionReason.UNSUBSCRIBED, "erasure", now, decline=[saved_id(c)])
        else:
            enrolments.close(session, RequestState.DECLINED, now, contact_id=saved_id(c))
    for channel in contact_channels(c):  # the ledger after every suppression (consent.service: LOCK ORDER)
        ledger.append(session, contact_id=saved_id(c), channel=channel, purpose=Purpose.MARKETING,
                      action=ConsentAction.WITHDRAWN, at=now, proof=Proof(source=source))
    erase_contact(session, c, now, ANONYMISE, keep_crm_id=False)  # the person asked: the CRM id goes too


def self_service_request(rt: Runtime, contact_id: int, kind: str, *, done: bool = False) -> int:
    """A request the person made on the preference centre (signed link = identity checked).

    Records it in the same register as operator requests and returns its id. Pass ``done=True`` when
    the page served it on the spot (e.g. the download was given); otherwise it stays open, due in a
    month, and shows in ``reconsent dsr list``. Call it *before* :func:`erase_person` for an erasure
    (afterwards the contact holds no address to identify the request by).
    """
    with session_scope(rt.engine) as session:
        contact = session.get(Contact, contact_id)
        if contact is None:
            raise NotFoundError("unknown contact")
        request = dsr.record(session, rt, kind, dsr.subject_of_contact(contact), source="preference_centre",
                             handled_by="self-service" if done else None, done=done)
        assert request.id is not None
        return request.id
