"""Webhook events, written in the transaction of the change they tell (issue 17; SPEC §11).

The writers of each concept call in here — the ledger (``consent.*``), the suppression list
(``contact.suppressed``), the erasure (``contact.erased``), the sweep (``campaign.completed``) — so
an event is committed with its change or not at all. One ``webhook_delivery`` row per event and
subscribed endpoint; the dispatcher posts them (``orchestrator.delivery.webhooks``) with the
Standard Webhooks signature, retrying with backoff, at least once with a stable ``webhook-id``.

Which endpoints want what comes from the config (``[[webhooks.endpoints]]``); the runtime registers
them per database when it makes its engine (``orchestrator.webhook_settings.register``). No endpoint,
no row and no query: a sweep of a million people pays nothing for webhooks nobody subscribed to.

Payload (the body, signed as is)::

    {"type": "consent.withdrawn", "timestamp": "2026-11-25T09:00:00Z",
     "data": {"external_id": "C-1", "channel": "email", "purpose": "marketing", "action": "withdrawn",
              "occurred_at": "2026-11-25T09:00:00Z", "source": "one_click", "campaign_id": 1,
              "wording_version": null, "event_hash": "9f2c…"}}
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, or_, select
from sqlalchemy.engine import Connection
from sqlmodel import Session

from orchestrator.consent.standing import iso
from orchestrator.store.bulk import insert_rows
from orchestrator.store.models import Contact, WebhookDelivery
from orchestrator.webhook_settings import WebhookEndpoint, registered

#: ledger action → event type
CONSENT_EVENTS = {"confirmed": "consent.confirmed", "declined": "consent.declined", "withdrawn": "consent.withdrawn",
                  "expired": "consent.expired", "granted": "consent.granted", "not_granted": "consent.not_granted"}
SUPPRESSED, ERASED, COMPLETED = "contact.suppressed", "contact.erased", "campaign.completed"

_TABLE: Table = WebhookDelivery.metadata.tables["webhook_delivery"]
_CONTACT: Table = Contact.metadata.tables["contact"]
_COLUMNS = ("webhook_id", "endpoint", "event_type", "body", "status", "attempts", "created_at", "next_attempt_at")
_EXTERNAL_IDS = select(_CONTACT.c.id, _CONTACT.c.external_id).where(_CONTACT.c.id.in_(bindparam("ids", expanding=True)))
_CHUNK = 1000

def _subscribers(conn: Session | Connection, event_types: Iterable[str]) -> list[WebhookEndpoint]:
    bind = conn.get_bind() if isinstance(conn, Session) else conn.engine
    engine = bind.engine if isinstance(bind, Connection) else bind
    endpoints = registered(engine)
    if not endpoints:
        return []
    wanted = set(event_types)
    return [e for e in endpoints if wanted.intersection(e.events)]


def webhook_id(endpoint: str, event_type: str, identity: str) -> str:
    """The ``webhook-id`` of one event for one endpoint: the same on every retry.

    >>> webhook_id("http://127.0.0.1:9/h", "consent.confirmed", "abc")[:4]
    'msg_'
    """
    return "msg_" + hashlib.sha256(f"{endpoint}\0{event_type}\0{identity}".encode()).hexdigest()[:32]


def _enqueue(conn: Session | Connection, events: Sequence[tuple[str, str, Mapping[str, Any]]], now: datetime,
             endpoints: Sequence[WebhookEndpoint]) -> int:
    """One row per (event, endpoint wanting its type); events are (type, identity, data)."""
    rows = []
    timestamp = iso(now)
    for event_type, identity, data in events:
        body = json.dumps({"type": event_type, "timestamp": timestamp, "data": dict(data)},
                          separators=(",", ":"), ensure_ascii=False)
        for endpoint in endpoints:
            if endpoint.wants(event_type):
                rows.append((webhook_id(endpoint.url, event_type, identity), endpoint.url, event_type, body,
                             "pending", 0, now, now))
    if rows:
        connection = conn.connection() if isinstance(conn, Session) else conn
        insert_rows(connection, _TABLE, _COLUMNS, rows)
    return len(rows)


def _external_ids(conn: Session | Connection, contact_ids: Iterable[int]) -> dict[int, str]:
    connection = conn.connection() if isinstance(conn, Session) else conn
    ids = sorted(set(contact_ids))
    found: dict[int, str] = {}
    for start in range(0, len(ids), _CHUNK):
        found.update((int(i), str(e)) for i, e in connection.execute(_EXTERNAL_IDS, {"ids": ids[start:start + _CHUNK]}))
    return found


def consent_changed(conn: Session | Connection, events: Sequence[Sequence[Any]],
                    details: Sequence[str | None] = ()) -> int:
    """Called by the ledger for the events it just appended: each a tuple in the ledger's column order
    (contact_id, channel, purpose, action, occurred_at, source, campaign_id, step, wording_hash, …, hash);
    ``details``, when given, the value each event records (a frequency, a pause's end: issue 18), sent
    as ``detail`` for the events that have one."""
    endpoints = _subscribers(conn, (CONSENT_EVENTS.get(str(e[3]), "") for e in events))
    if not endpoints or not events:
        return 0
    external = _external_ids(conn, (e[0] for e in events))
    out = []
    for n, e in enumerate(events):
        event_type = CONSENT_EVENTS.get(str(e[3]))
        if event_type is None:
            continue
        data = {"external_id": external.get(e[0]), "channel": e[1], "purpose": e[2], "action": e[3],
                "occurred_at": iso(e[4]), "source": e[5], "campaign_id": e[6], "wording_version": e[8],
                "event_hash": e[-1]}
        if n < len(details) and details[n] is not None:
            data["detail"] = details[n]
        out.append((event_type, str(e[-1]), data))
    return _enqueue(conn, out, max(e[4] for e in events), endpoints)


def suppressed(conn: Session | Connection, entries: Sequence[tuple[str, str]], reason: str, source: str | None,
               at: datetime) -> int:
    """``contact.suppressed`` for every contact holding one of these (key, channel) entries just added."""
    endpoints = _subscribers(conn, [SUPPRESSED])
    if not endpoints or not entries:
        return 0
    connection = conn.connection() if isinstance(conn, Session) else conn
    by_channel: dict[str, list[str]] = {}
    for key, channel in entries:
        by_channel.setdefault(channel, []).append(key)
    out = []
    for channel, keys in by_channel.items():
        column = _CONTACT.c.email_key if channel == "email" else _CONTACT.c.phone_key
        for start in range(0, len(keys), _CHUNK):
            for contact_id, external_id in connection.execute(
                    select(_CONTACT.c.id, _CONTACT.c.external_id).where(column.in_(keys[start:start + _CHUNK]))):
                out.append((SUPPRESSED, f"{contact_id}\0{channel}\0{reason}\0{iso(at)}", {
                    "external_id": external_id, "channel": channel, "reason": reason, "source": source,
                    "occurred_at": iso(at)}))
    return _enqueue(conn, out, at, endpoints)


def erased(conn: Session | Connection, contact_ids: Sequence[int], at: datetime, action: str) -> int:
    """``contact.erased`` for contacts whose personal data goes now (before it goes: their CRM id)."""
    endpoints = _subscribers(conn, [ERASED])
    if not endpoints or not contact_ids:
        return 0
    external = _external_ids(conn, contact_ids)
    return _enqueue(conn, [(ERASED, f"{i}\0{iso(at)}", {"external_id": external.get(i), "action": action,
                                                       "occurred_at": iso(at)}) for i in contact_ids], at, endpoints)


def campaign_completed(conn: Session | Connection, campaign_id: int, name: str, counts: Mapping[str, int],
                       at: datetime) -> int:
    """``campaign.completed``: the deadline passed and the sweep closed it; ``counts`` by request state."""
    endpoints = _subscribers(conn, [COMPLETED])
    if not endpoints:
        return 0
    data = {"campaign_id": campaign_id, "name": name, "completed_at": iso(at), **counts}
    return _enqueue(conn, [(COMPLETED, str(campaign_id), data)], at, endpoints)


def pending_filter() -> Any:
    """Rows not delivered yet (pending, or claimed by a worker)."""
    return or_(_TABLE.c.status == "pending", _TABLE.c.status == "sending")
