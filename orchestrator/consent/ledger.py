"""The consent ledger: append-only events, each carrying the hash of the one before [R2].

The chain covers a canonical serialisation of every field. The request's IP address and user agent
enter it as SHA-256 commitments, not as text: erasure (R8) may then replace them by
``redacted:<commitment>`` without breaking the chain, while any other edit still breaks it.

Every append also writes the webhook deliveries of its events (``consent.webhooks``), in the same
transaction: the one place consent changes, so the one place they are announced.

The chain head lives in one row (``ledger_head``) that every append updates first: that row lock
serialises writers on PostgreSQL and takes SQLite's write lock, so two writers never fork the chain.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, func, text
from sqlmodel import Session, col, select

from orchestrator.consent import webhooks
from orchestrator.domain.clock import as_utc
from orchestrator.store.bulk import insert_rows
from orchestrator.store.models import ConsentEvent, Wording

GENESIS = "0" * 64
REDACTED = "redacted:"
#: personal data inside events: chained through a commitment so that erasure can remove them
_COMMITTED = ("ip", "user_agent")
_CHAINED = (
    "contact_id", "channel", "purpose", "action", "occurred_at", "source", "campaign_id", "step",
    "wording_hash", "wording_name", "locale", "ip", "user_agent",
)


_SPLICE = "\x00contact\x00"  # a placeholder no real value contains
_SPLICE_JSON = json.dumps(_SPLICE).encode()


@dataclass(frozen=True)
class Proof:
    """Where an event came from: source, the wording shown, and the request if there was one."""

    source: str
    campaign_id: int | None = None
    step: int | None = None
    wording_name: str | None = None
    wording_hash: str | None = None
    locale: str | None = None
    ip: str | None = None
    user_agent: str | None = None


def commitment(value: str | None) -> str | None:
    """What the chain holds for a personal field: its SHA-256, also after redaction.

    >>> commitment("192.0.2.1") == commitment(redacted("192.0.2.1"))
    True
    >>> commitment(None) is None
    True
    """
    if value is None:
        return None
    if value.startswith(REDACTED):
        return value[len(REDACTED):]
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def redacted(value: str | None) -> str | None:
    """The stored form of an erased personal field: its commitment, no longer the text."""
    return None if value is None else REDACTED + str(commitment(value))


def canonical(event: ConsentEvent) -> bytes:
    """Sorted-key compact JSON of the chained fields; times as naive-UTC ISO with microseconds.

    >>> from datetime import timezone
    >>> e = ConsentEvent(contact_id=1, channel="email", purpose="marketing", action="confirmed",
    ...     occurred_at=datetime(2026, 1, 1, tzinfo=timezone.utc), source="preference_centre",
    ...     prev_hash=GENESIS, hash="")
    >>> canonical(e)[:60]
    b'{"action":"confirmed","campaign_id":null,"channel":"email","'
    """
    return canonical_values({name: getattr(event, name) for name in (*_CHAINED, "detail")})


def canonical_values(values: Mapping[Any, Any]) -> bytes:
    """The chained fields of one event as canonical JSON (what its hash covers)."""
    data: dict[str, Any] = {}
    for name in _CHAINED:
        value = values.get(name)
        if isinstance(value, datetime):
            value = as_utc(value).replace(tzinfo=None).isoformat(timespec="microseconds")
        if name in _COMMITTED:
            value = commitment(value)
        data[name] = value
    if values.get("detail") is not None:  # only events carrying a value (a frequency, a pause's end) chain it
        data["detail"] = values["detail"]
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def chain_hash(prev_hash: str, event: ConsentEvent) -> str:
    return hashlib.sha256(prev_hash.encode() + b"\n" + canonical(event)).hexdigest()


#: the columns append_many writes, in order
_COLUMNS = (*_CHAINED, "prev_hash", "hash")
_TABLE: Table = ConsentEvent.metadata.tables["consent_event"]


def append_many(session: Session, events: Sequence[Mapping[str, Any]]) -> int:
    """Append many events under one lock of the chain head: hashes computed in one loop, one
    ``executemany`` INSERT, one head update. Same chain and same stored values as calling
    :func:`append` once per event (tests/orchestrator/test_ledger_batch.py pins both).

    Each mapping holds ``contact_id, channel, purpose, action, at`` and ``proof`` (a :class:`Proof`).
    Returns the number appended. The sweep uses this for millions of expiry events. An event may
    also hold ``detail`` (the value it records: a frequency, a pause's end date).
    """
    if not events:
        return 0
    if any(e.get("detail") is not None for e in events):
        return _append_detailed(session, events)
    head = _lock_head(session)
    rows = []
    # Events of a batch differ mostly by contact: the canonical JSON of everything else is built
    # once per distinct rest, and the contact id spliced in (byte-identical to canonical_values).
    halves: dict[tuple[Any, ...], tuple[bytes, bytes]] = {}
    sha256 = hashlib.sha256
    for e in events:
        proof: Proof = e["proof"]
        row = (
            e["contact_id"], str(e["channel"]), str(e["purpose"]), str(e["action"]), as_utc(e["at"]),
            str(proof.source), proof.campaign_id, proof.step, proof.wording_hash, proof.wording_name,
            proof.locale, proof.ip, (proof.user_agent or None) and proof.user_agent[:400],
        )
        if type(row[0]) is int:
            rest = (row[1], row[2], row[3], row[4], proof)
            split = halves.get(rest)
            if split is None:
                spliced = canonical_values(dict(zip(_CHAINED, (_SPLICE, *row[1:]), strict=False)))
                before, _, after = spliced.partition(_SPLICE_JSON)
                split = halves[rest] = (before, after)
            canonical_json = split[0] + str(row[0]).encode() + split[1]
        else:
            canonical_json = canonical_values(dict(zip(_CHAINED, row, strict=False)))
        digest = sha256(head.encode() + b"\n" + canonical_json).hexdigest()
        rows.append((*row, head, digest))
        head = digest
    # The driver's executemany with the columns' own bind processors applied once (store.bulk):
    # SQLAlchemy's per-row parameter processing was ~45 % of the sweep.
    insert_rows(session.connection(), _TABLE, _COLUMNS, rows)
    session.execute(text("UPDATE ledger_head SET hash = :h WHERE id = 1"), {"h": head})
    webhooks.consent_changed(session, rows)  # committed with the events, or not at all
    return len(rows)


def _append_detailed(session: Session, events: Sequence[Mapping[str, Any]]) -> int:
    """:func:`append_many` for events among which some carry a ``detail`` (a few at a time: no splicing)."""
    head = _lock_head(session)
    rows, announced = [], []
    for e in events:
        proof: Proof = e["proof"]
        row = (
            e["contact_id"], str(e["channel"]), str(e["purpose"]), str(e["action"]), as_utc(e["at"]),
            str(proof.source), proof.campaign_id, proof.step, proof.wording_hash, proof.wording_name,
            proof.locale, proof.ip, (proof.user_agent or None) and proof.user_agent[:400],
        )
        values = {**dict(zip(_CHAINED, row, strict=True)), "detail": e.get("detail")}
        digest = hashlib.sha256(head.encode() + b"\n" + canonical_values(values)).hexdigest()
        rows.append((*row, head, digest, e.get("detail")))
        announced.append((*row, head, digest))
        head = digest
    insert_rows(session.connection(), _TABLE, (*_COLUMNS, "detail"), rows)
    session.execute(text("UPDATE ledger_head SET hash = :h WHERE id = 1"), {"h": head})
    webhooks.consent_changed(session, announced, [e.get("detail") for e in events])
    return len(rows)


def append(
    session: Session,
    *,
    contact_id: int,
    channel: str,
    purpose: str,
    action: str,
    at: datetime,
    proof: Proof,
) -> ConsentEvent:
    head = _lock_head(session)
    event = ConsentEvent(
        contact_id=contact_id,
        channel=channel,
        purpose=purpose,
        action=action,
        occurred_at=as_utc(at),
        source=proof.source,
        campaign_id=proof.campaign_id,
        step=proof.step,
        wording_hash=proof.wording_hash,
        wording_name=proof.wording_name,
        locale=proof.locale,
        ip=proof.ip,
        user_agent=(proof.user_agent or None) and proof.user_agent[:400],
        prev_hash=head,
        hash="",
    )
    event.hash = chain_hash(head, event)
    session.add(event)
    session.execute(text("UPDATE ledger_head SET hash = :h WHERE id = 1"), {"h": event.hash})
    webhooks.consent_changed(session, [(*(getattr(event, name) for name in _CHAINED), head, event.hash)])
    return event


def _lock_head(session: Session) -> str:
    # A no-op write first: it takes the lock before we read the head.
    session.execute(text("UPDATE ledger_head SET hash = hash WHERE id = 1"))
    row = session.execute(text("SELECT hash FROM ledger_head WHERE id = 1")).first()
    if row is None:
        session.execute(text("INSERT INTO ledger_head (id, hash) VALUES (1, :h)"), {"h": GENESIS})
        return GENESIS
    return str(row[0])


def remember_wording(session: Session, *, name: str, locale: str, text_shown: str, at: datetime) -> str:
    """Store the exact wording once per version; return its content hash."""
    content_hash = hashlib.sha256(f"{name}\0{locale}\0{text_shown}".encode()).hexdigest()
    if session.get(Wording, content_hash) is None:
        session.add(Wording(content_hash=content_hash, name=name, locale=locale, text=text_shown,
                            first_seen_at=at))
        session.flush()
    return content_hash


@dataclass(frozen=True)
class ChainReport:
    events: int
    broken_at: int | None  # id of the first event whose hash does not match
    reason: str | None = None


def verify(session: Session) -> ChainReport:
    """Walk the chain from the genesis hash; stop at the first broken link.

    An edited row fails its own hash; a deleted row breaks the ``prev_hash`` of the event after it;
    deleting the newest events leaves the chain head pointing at a hash no event has.
    """
    prev = GENESIS
    prev_id: int | None = None
    count = 0
    # Streamed as plain rows (not ORM objects): memory stays flat and speed linear at millions of events.
    table = _TABLE
    rows = session.execute(table.select().order_by(table.c.id).execution_options(yield_per=10_000)).mappings()
    for event in rows:
        count += 1
        if event["prev_hash"] != prev:
            after = f"event {prev_id}" if prev_id is not None else "the genesis hash"
            return ChainReport(count, event["id"],
                               f"prev_hash does not match {after} (an event between them was deleted or altered)")
        if hashlib.sha256(prev.encode() + b"\n" + canonical_values(event)).hexdigest() != event["hash"]:
            return ChainReport(count, event["id"], "content does not match its hash (the row was edited)")
        prev, prev_id = event["hash"], event["id"]
    row = session.execute(text("SELECT hash FROM ledger_head WHERE id = 1")).first()
    head = row[0] if row is not None else GENESIS
    if head != prev:
        last = f"event {prev_id}" if prev_id is not None else "the genesis hash"
        return ChainReport(count, None,
                           f"chain head does not match {last}: the newest events were deleted")
    return ChainReport(count, None)


def redact_requests(session: Session, contact_id: int) -> int:
    """Erase IP addresses and user agents from a person's events, keeping the chain valid (R8).

    Returns how many events held such data. The rest of each event (what, when, how, which
    wording) stays: it is the proof, and it names no one once the contact row is anonymised.
    """
    return redact_requests_many(session, [contact_id])


def redact_requests_many(session: Session, contact_ids: Sequence[int]) -> int:
    """:func:`redact_requests` for many people; only events that still hold an IP or UA are read."""
    table = _TABLE
    rows = session.execute(
        select(table.c.id, table.c.ip, table.c.user_agent).where(
            table.c.contact_id.in_(list(contact_ids)),
            (table.c.ip.is_not(None)) | (table.c.user_agent.is_not(None)),
        )
    ).all()
    changed = 0
    for event_id, ip, ua in rows:
        if (ip and not ip.startswith(REDACTED)) or (ua and not ua.startswith(REDACTED)):
            session.execute(table.update().where(table.c.id == event_id)
                            .values(ip=redacted(ip), user_agent=redacted(ua)))
            changed += 1
    return changed


#: the consent a last action leaves in place: given or not
GIVEN = {"granted", "confirmed"}


def _consent_word(action: str) -> str:
    """given | opt_out (a professional informed by a notice, no objection: no consent) | refused."""
    return "given" if action in GIVEN else "opt_out" if action == "notified" else "refused"


def current_consent(session: Session, contact_ids: list[int] | None = None) -> dict[tuple[int, str, str], str]:
    """Current consent per (contact, channel, purpose), derived from the ledger only.

    The newest event of each (contact, channel, purpose) decides: granted/confirmed → "given",
    notified → "opt_out", declined/withdrawn/expired → "refused". Nothing else is consulted and
    nothing stores the result, so it cannot drift from the proof. One set-based query.
    """
    latest = (select(ConsentEvent.contact_id, ConsentEvent.channel, ConsentEvent.purpose,
                     func.max(ConsentEvent.id).label("last_id"))
              .group_by(col(ConsentEvent.contact_id), col(ConsentEvent.channel), col(ConsentEvent.purpose)))
    if contact_ids is not None:
        latest = latest.where(col(ConsentEvent.contact_id).in_(contact_ids))
    sub = latest.subquery()
    rows = session.execute(
        select(ConsentEvent.contact_id, ConsentEvent.channel, ConsentEvent.purpose, ConsentEvent.action)
        .join(sub, sub.c.last_id == ConsentEvent.id)
    ).all()
    return {(c, ch, p): _consent_word(a) for c, ch, p, a in rows}


def fold_consent(events: list[ConsentEvent]) -> dict[tuple[int, str, str], str]:
    """The same answer as :func:`current_consent`, by replaying events in order (for checks)."""
    state: dict[tuple[int, str, str], str] = {}
    for e in sorted(events, key=lambda e: e.id or 0):
        state[(e.contact_id, e.channel, e.purpose)] = _consent_word(e.action)
    return state
lock_head = _lock_head  # for writers that must read under the chain lock (consent.alternatives.end_pauses)
