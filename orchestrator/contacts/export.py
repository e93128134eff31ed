"""``contacts export``: the import format (SPEC §10 columns first, unchanged), then where each person
stands — consent per channel and purpose, suppression per channel — then the extra attribute
columns they were imported with, so a CRM can read it back and a re-import changes nothing.

Consent words are :mod:`orchestrator.consent.standing`'s (granted | withdrawn | expired | none);
suppression is the entry's reason (unsubscribed, no_response, bounced, sms_stop…) or empty. Rows are
read page by page (keyset on the contact id) on one connection: memory stays flat.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, bindparam, select
from sqlalchemy.engine import Connection

from orchestrator.consent.alternatives import person_choices_of
from orchestrator.consent.choices import choice_columns
from orchestrator.consent.standing import NONE, events_of, standing
from orchestrator.contacts.columns import COLUMNS
from orchestrator.contacts.rows import EXPORT_ONLY
from orchestrator.domain.model import Channel, Purpose
from orchestrator.runtime import Runtime
from orchestrator.store.models import Contact, SuppressionEntry

PAGE = 2000
_CONTACT: Table = Contact.metadata.tables["contact"]
_SUPPRESSION: Table = SuppressionEntry.metadata.tables["suppression"]
_LIVE = _CONTACT.c.erased_at.is_(None)
_PAGE = (select(_CONTACT).where(_LIVE, _CONTACT.c.id > bindparam("after")).order_by(_CONTACT.c.id)
         .limit(bindparam("limit")))
_ENTRIES = select(_SUPPRESSION.c.key, _SUPPRESSION.c.channel, _SUPPRESSION.c.reason).where(
    _SUPPRESSION.c.key.in_(bindparam("keys", expanding=True)))


@dataclass
class ExportTable:
    header: list[str]
    rows: Iterator[list[str]]


def export_table(rt: Runtime, *, page: int = PAGE) -> ExportTable:
    """The header and a stream of rows of every contact not erased, by id."""
    conn = rt.engine.connect()
    try:
        attributes = _attribute_names(conn)
    except BaseException:
        conn.close()
        raise
    extra = [a for a in attributes if a not in EXPORT_ONLY]
    return ExportTable([*COLUMNS, *EXPORT_ONLY, *extra], _rows(conn, extra, page))


def _attribute_names(conn: Connection) -> list[str]:
    names: set[str] = set()
    for (attributes,) in conn.execute(select(_CONTACT.c.attributes).where(_LIVE).execution_options(yield_per=PAGE)):
        names.update(attributes or {})
    return sorted(n for n in names if n not in COLUMNS)


def _rows(conn: Connection, extra: list[str], page: int) -> Iterator[list[str]]:
    with conn:
        after = 0
        while True:
            contacts = conn.execute(_PAGE, {"after": after, "limit": page}).mappings().all()
            if not contacts:
                return
            events = events_of(conn, [c["id"] for c in contacts])
            keys = [k for c in contacts for k in (c["email_key"], c["phone_key"]) if k]
            entries = {(k, ch): r for k, ch, r in conn.execute(_ENTRIES, {"keys": keys})} if keys else {}
            for c in contacts:
                theirs = events.get(c["id"], [])
                mine = person_choices_of(theirs)
                yield [*_profile(c), *_standing(c, theirs, entries),
                       mine.get("frequency", ""), mine.get("paused_until", ""),
                       *(_cell((c["attributes"] or {}).get(a)) for a in extra)]
            after = contacts[-1]["id"]


def _profile(c: Any) -> list[str]:
    return [c["external_id"], c["kind"], c["email"] or "", c["phone"] or "", c["first_name"] or "", c["locale"],
            c["timezone"] or "", c["last_activity_at"].isoformat() if c["last_activity_at"] else "",
            "true" if c["b2b"] else "false"]


def _standing(c: Any, events: list[Any], entries: dict[tuple[str, str], str]) -> list[str]:
    state = standing(events)
    email, sms = Channel.EMAIL.value, Channel.SMS.value
    marketing, partners = Purpose.MARKETING.value, Purpose.PARTNERS.value
    return [state.get((email, marketing), NONE), state.get((sms, marketing), NONE),
            state.get((email, partners), NONE), state.get((sms, partners), NONE),
            entries.get((c["email_key"], email), "") if c["email_key"] else "",
            entries.get((c["phone_key"], sms), "") if c["phone_key"] else "",
            *choice_columns(events).values()]  # topics, partners: the ids granted now (issue 18)


def _cell(value: object) -> str:
    return "" if value is None else value if isinstance(value, str) else str(value)
