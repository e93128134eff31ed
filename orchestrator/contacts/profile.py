"""One contact as the HTTP API shows it (issue 17 §2): the profile, where the person stands per
channel and purpose (:mod:`orchestrator.consent.standing`), the suppression state per channel, and
the ledger events a page at a time. Looked up by the CRM's ``external_id``; an anonymised contact
keeps its id and outcome, nothing else (``erased_at`` says when)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.engine import Connection

from orchestrator.consent.alternatives import person_choices_of
from orchestrator.consent.choices import PARTNER, TOPIC, granted_of
from orchestrator.consent.standing import NONE, events_of, events_page, iso, standing
from orchestrator.domain.model import Channel, Purpose
from orchestrator.errors import NotFoundError
from orchestrator.runtime import Runtime
from orchestrator.store.models import Contact, SuppressionEntry

_CONTACT: Table = Contact.metadata.tables["contact"]
_SUPPRESSION: Table = SuppressionEntry.metadata.tables["suppression"]


def _find(conn: Connection, external_id: str) -> Any:
    row = conn.execute(select(_CONTACT).where(_CONTACT.c.external_id == external_id)).mappings().first()
    if row is None:
        raise NotFoundError("external_id: no contact has this id (import it first)")
    return row


def contact_id_of(rt: Runtime, external_id: str) -> int:
    """The internal id of the contact with this CRM id; NotFoundError when there is none."""
    with rt.engine.connect() as conn:
        return int(_find(conn, external_id)["id"])


def contact_profile(rt: Runtime, external_id: str) -> dict[str, Any]:
    """The profile, ``consent`` ({channel: {purpose: granted|withdrawn|expired|none}}) and
    ``suppression`` ({channel: reason or None}) of one contact, as JSON values."""
    with rt.engine.connect() as conn:
        c = _find(conn, external_id)
        events = events_of(conn, [c["id"]]).get(c["id"], [])
        state = standing(events)
        chosen = person_choices_of(events)
        suppression: dict[str, str | None] = {}
        for channel, key in ((Channel.EMAIL.value, c["email_key"]), (Channel.SMS.value, c["phone_key"])):
            reason = None
            if key:
                reason = conn.execute(select(_SUPPRESSION.c.reason).where(
                    _SUPPRESSION.c.key == key, _SUPPRESSION.c.channel == channel)).scalar()
            suppression[channel] = reason
    consent = {ch.value: {p.value: state.get((ch.value, p.value), NONE) for p in Purpose} for ch in Channel}
    return {
        "external_id": c["external_id"], "kind": c["kind"], "email": c["email"], "phone": c["phone"],
        "first_name": c["first_name"], "locale": c["locale"], "timezone": c["timezone"],
        "last_activity_at": c["last_activity_at"].isoformat() if c["last_activity_at"] else None,
        "b2b": bool(c["b2b"]), "attributes": dict(c["attributes"] or {}),
        "created_at": iso(c["created_at"]), "updated_at": iso(c["updated_at"]), "erased_at": iso(c["erased_at"]),
        "consent": consent, "suppression": suppression,
        # issue 18: the topic and named partner ids the person grants now
        "topics": granted_of(events, TOPIC), "partners": granted_of(events, PARTNER),
        "frequency": chosen.get("frequency"), "paused_until": chosen.get("paused_until"),  # issue 18
    }


def contact_events(rt: Runtime, external_id: str, *, after: int = 0,
                   limit: int = 100) -> tuple[list[dict[str, Any]], int | None]:
    """One page of the contact's ledger events (oldest first) and the next cursor (None on the last)."""
    with rt.engine.connect() as conn:
        c = _find(conn, external_id)
        found = events_page(conn, c["id"], after, limit + 1)
    more = len(found) > limit
    rows = found[:limit]
    return [e.as_dict() for e in rows], rows[-1].id if more and rows else None
