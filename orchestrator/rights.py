"""Data-subject rights [R8]: export a person's whole record as JSON; erase their personal data while
keeping the hashed suppression entries, so a re-import cannot bring them back."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import phonenumbers
from sqlalchemy import select

from orchestrator import ledger
from orchestrator.consent import contact_channels, key_of, suppress
from orchestrator.domain.model import ConsentAction, ConsentSource, Purpose, SuppressionReason
from orchestrator.errors import InputError, NotFoundError
from orchestrator.ledger import Proof
from orchestrator.runtime import Runtime
from orchestrator.store.db import session_scope
from orchestrator.store.models import ConsentEvent, Contact, Enrolment, OutboxMessage, Wording
from orchestrator.sweep import anonymise


def address_key(rt: Runtime, *, email: str | None = None, phone: str | None = None) -> tuple[str, str]:
    """(column, key) to find a person by address; phones are normalised to E.164 first."""
    if email:
        return "email_key", rt.key_for(email)
    if phone:
        return "phone_key", rt.key_for(normalise_phone(phone, rt.config.contacts.default_region))
    raise InputError("give --email or --phone")


def normalise_phone(phone: str, region: str) -> str:
    try:
        parsed = phonenumbers.parse(phone, region)
    except phonenumbers.NumberParseException:
        raise InputError(f"--phone: not a phone number: {phone!r}") from None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _find(session: Any, rt: Runtime, email: str | None, phone: str | None) -> list[Contact]:
    column, key = address_key(rt, email=email, phone=phone)
    return list(session.execute(select(Contact).where(getattr(Contact, column) == key)).scalars())


def _json(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


def export_person(rt: Runtime, *, email: str | None = None, phone: str | None = None) -> dict[str, Any]:
    with session_scope(rt.engine) as session:
        contacts = _find(session, rt, email, phone)
        if not contacts:
            raise NotFoundError("no contact with that address (it may have been erased already)")
        people = []
        for c in contacts:
            events = session.execute(select(ConsentEvent).where(ConsentEvent.contact_id == c.id)
                                     .order_by(ConsentEvent.id)).scalars()
            wordings = {w.content_hash: w.text for w in session.execute(select(Wording)).scalars()}
            messages = session.execute(select(OutboxMessage).where(OutboxMessage.contact_id == c.id)
                                       .order_by(OutboxMessage.id)).scalars()
            enrolments = session.execute(select(Enrolment).where(Enrolment.contact_id == c.id)).scalars()
            people.append({
                "profile": {k: _json(getattr(c, k)) for k in (
                    "id", "external_id", "kind", "email", "phone", "first_name", "locale", "timezone",
                    "last_activity_at", "b2b", "attributes", "created_at", "updated_at")},
                "consent_events": [{
                    **{k: _json(getattr(e, k)) for k in (
                        "id", "channel", "purpose", "action", "occurred_at", "source", "campaign_id", "step",
                        "wording_name", "wording_hash", "locale", "ip", "user_agent", "hash")},
                    "wording_text": wordings.get(e.wording_hash or ""),
                } for e in events],
                "messages": [{k: _json(getattr(m, k)) for k in (
                    "campaign_id", "step", "channel", "template", "template_version", "locale", "status",
                    "sent_at", "message_id", "provider_id", "skip_reason")} for m in messages],
                "enrolments": [{k: _json(getattr(e, k)) for k in (
                    "campaign_id", "state", "enrolled_at", "answered_at")} for e in enrolments],
            })
        return {"generated_at": rt.clock.now().isoformat(), "people": people}


def erase_person(rt: Runtime, *, email: str | None = None, phone: str | None = None,
                 source: str = ConsentSource.OPERATOR) -> int:
    """Erase every contact with this address; returns how many. Suppression entries stay."""
    now = rt.clock.now()
    with session_scope(rt.engine) as session:
        contacts = _find(session, rt, email, phone)
        if not contacts:
            raise NotFoundError("no contact with that address (it may have been erased already)")
        for c in contacts:
            for channel in contact_channels(c):
                suppress(session, key_of(c, channel), channel.value, SuppressionReason.ERASED, "erasure", now)
                ledger.append(session, contact_id=c.id, channel=channel, purpose=Purpose.MARKETING,  # type: ignore[arg-type]
                              action=ConsentAction.WITHDRAWN, at=now, proof=Proof(source=source))
            anonymise(c, now)
            session.add(c)
        return len(contacts)



