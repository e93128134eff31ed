"""Where a person stands, per channel and purpose, read from the ledger for many people at once.

The words a company's systems understand: ``granted`` (the newest event granted or confirmed),
``withdrawn`` (declined, withdrawn or left unticked: unsubscribe, STOP, bounce, erasure,
not_granted…), ``expired`` (asked and never answered), ``none`` (never recorded). Like
:func:`orchestrator.consent.ledger.current_consent` the newest event (highest id) of each (contact,
channel, purpose) decides; nothing stores the result.

Reads are per page of contacts (``contact_id IN (…)`` on the indexed column), so a caller that walks
a million people page by page keeps its memory flat (``campaigns.results``, ``contacts export``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, select
from sqlalchemy.engine import Connection

from orchestrator.domain.clock import as_utc
from orchestrator.domain.model import Channel, Purpose
from orchestrator.store.models import ConsentEvent

GRANTED, WITHDRAWN, EXPIRED, NONE = "granted", "withdrawn", "expired", "none"
#: a professional informed by a notice who did not object: no consent, written to under the opt-out regime
OPT_OUT = "opt_out"
#: ledger action → the standing it leaves
STANDING = {"granted": GRANTED, "confirmed": GRANTED, "declined": WITHDRAWN, "withdrawn": WITHDRAWN,
            "expired": EXPIRED, "notified": OPT_OUT}

_EVENT: Table = ConsentEvent.metadata.tables["consent_event"]
_EVENTS_OF = (
    select(_EVENT.c.id, _EVENT.c.contact_id, _EVENT.c.channel, _EVENT.c.purpose, _EVENT.c.action,
           _EVENT.c.occurred_at, _EVENT.c.source, _EVENT.c.campaign_id, _EVENT.c.wording_hash, _EVENT.c.hash,
           _EVENT.c.detail)
    .where(_EVENT.c.contact_id.in_(bindparam("ids", expanding=True)))
    .order_by(_EVENT.c.id)
)


@dataclass(frozen=True)
class EventFacts:
    """One ledger event as integrations see it (no IP, no user agent)."""

    id: int
    contact_id: int
    channel: str
    purpose: str
    action: str
    occurred_at: datetime
    source: str
    campaign_id: int | None
    wording_version: str | None
    hash: str
    #: the value the event records: a frequency, a pause's end (issue 18; ``consent.alternatives``)
    detail: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "channel": self.channel, "purpose": self.purpose, "action": self.action,
                "occurred_at": iso(self.occurred_at), "source": self.source, "campaign_id": self.campaign_id,
                "wording_version": self.wording_version, "event_hash": self.hash, "detail": self.detail}


def iso(value: datetime | None) -> str | None:
    """UTC ISO 8601 with a ``Z``.

    >>> from datetime import timezone
    >>> iso(datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc))
    '2026-01-02T03:04:05Z'
    """
    if value is None:
        return None
    return as_utc(value).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def events_of(conn: Connection, contact_ids: Sequence[int]) -> dict[int, list[EventFacts]]:
    """Every ledger event of these contacts, oldest first, grouped by contact (one query)."""
    found: dict[int, list[EventFacts]] = {}
    if not contact_ids:
        return found
    for row in conn.execute(_EVENTS_OF, {"ids": list(contact_ids)}):
        event = EventFacts(row[0], row[1], row[2], row[3], row[4], as_utc(row[5]), row[6], row[7], row[8], row[9],
                           row[10])
        found.setdefault(event.contact_id, []).append(event)
    return found


def standing(events: Iterable[EventFacts]) -> dict[tuple[str, str], str]:
    """(channel, purpose) → granted | withdrawn | expired, from events oldest first (missing: none)."""
    state: dict[tuple[str, str], str] = {}
    for e in events:
        state[(e.channel, e.purpose)] = STANDING.get(e.action, WITHDRAWN)
    return state


def partners_standing(events: Sequence[EventFacts]) -> str:
    """Partner sharing, one word for the person: granted while some partner purpose — the old unnamed
    ``partners`` or a named ``partner:<id>`` (issue 18) — is granted (its newest event on any channel
    decides); else the newest partner event's standing."""
    last: dict[str, str] = {}
    newest = NONE
    for e in events:
        if e.purpose == Purpose.PARTNERS.value or e.purpose.startswith("partner:"):
            last[e.purpose] = newest = STANDING.get(e.action, WITHDRAWN)
    return GRANTED if GRANTED in last.values() else newest


def channel_columns(events: Sequence[EventFacts]) -> dict[str, str]:
    """``email_consent``, ``sms_consent`` (own marketing) and ``partners_consent``.

    >>> channel_columns([])
    {'email_consent': 'none', 'sms_consent': 'none', 'partners_consent': 'none'}
    """
    state = standing(events)
    columns = {f"{c.value}_consent": state.get((c.value, Purpose.MARKETING.value), NONE) for c in Channel}
    columns["partners_consent"] = partners_standing(events)
    return columns


def events_page(conn: Connection, contact_id: int, after: int, limit: int) -> list[EventFacts]:
    """One contact's ledger events whose id is above ``after``, oldest first, at most ``limit``."""
    query = _EVENTS_OF.where(_EVENT.c.id > after).limit(limit)
    return [EventFacts(r[0], r[1], r[2], r[3], r[4], as_utc(r[5]), r[6], r[7], r[8], r[9], r[10])
            for r in conn.execute(query, {"ids": [contact_id]})]
