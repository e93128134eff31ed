"""The outbox queue [O2]: every statement the worker runs on ``outbox`` (and the few on ``campaign``
it needs). Functions take a connection (or an engine, for a whole transaction of their own) and the
data they need; none decides anything — the worker does.

Statements are built once at import (bind parameters; executemany per group or flush): building a
statement costs more CPU than running it on SQLite. They are Core statements on the tables, run on a
bare connection.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, Table, bindparam, case, func, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, SQLModel, col

from orchestrator.consent.service import key_of, withdraw
from orchestrator.domain.clock import as_utc
from orchestrator.domain.model import CampaignState, Channel, DeliveryState, refusal_state
from orchestrator.store.db import run_in_connection, run_in_transaction
from orchestrator.store.models import Campaign, Contact, Enrolment, OutboxMessage, SuppressionEntry

OUTBOX: Table = SQLModel.metadata.tables[str(OutboxMessage.__tablename__)]
CAMPAIGN: Table = SQLModel.metadata.tables[str(Campaign.__tablename__)]
_o = OUTBOX.c
_c = CAMPAIGN.c
SENDING = DeliveryState.SENDING.value
PENDING = DeliveryState.PENDING.value


# -- claim, renew, release -------------------------------------------------------------------------
def claim_due(engine: Engine, *, claim_id: str, turn: int, limit: int, now: datetime,
              lease_now: datetime, lease_until: datetime,
              before: Callable[[Connection], object] | None = None) -> list[tuple[int, datetime | None, int]]:
    """Move up to ``limit`` rows to ``sending`` under ``claim_id`` (one transaction); returns
    (row id, send_started_at, attempts) of each. ``before(conn)`` runs first in the same transaction
    (the worker ends the leases of dead claimants there: ``claimants.take_over_dead``).

    Per running campaign, two statements, each walking ix_outbox_due (status, campaign_id, due_at,
    id) in order: first rows whose lease expired (a dead worker's; few), then due rows. Keyed by
    campaign so that the due rows of a paused or draft campaign (a million of them, say) are never
    walked past on every claim; no ``OR`` (SQLite would merge two index scans and sort every due
    row). The claim starts at running campaign number ``turn`` (modulo their count), so campaigns
    running at the same time share the workers. ``FOR UPDATE SKIP LOCKED`` on PostgreSQL."""
    postgres = engine.dialect.name == "postgresql"

    def take(conn: Connection, due: Select[tuple[int]], n: int) -> list[tuple[int, datetime | None, int]]:
        due = due.order_by(_o.due_at, _o.id).limit(n)
        if postgres:
            due = due.with_for_update(skip_locked=True, of=OUTBOX)
        return [(r[0], r[1], r[2]) for r in conn.execute(
            update(OUTBOX).where(_o.id.in_(due.scalar_subquery()))
            .values(status=SENDING, claimed_by=claim_id, claimed_until=lease_until, updated_at=now)
            .returning(_o.id, _o.send_started_at, _o.attempts))]

    def work(conn: Connection) -> list[tuple[int, datetime | None, int]]:
        running: list[int] = list(conn.execute(
            select(_c.id).where(_c.state == CampaignState.RUNNING.value).order_by(_c.id)).scalars())
        if not running:
            return []
        if before is not None:
            before(conn)
        first = turn % len(running)
        running = running[first:] + running[:first]
        expired = [select(_o.id).where(_o.status == SENDING, _o.campaign_id == campaign_id,
                                       _o.claimed_until < lease_now) for campaign_id in running]
        due = [select(_o.id).where(_o.status == PENDING, _o.campaign_id == campaign_id, _o.due_at <= now)
               for campaign_id in running]
        got: list[tuple[int, datetime | None, int]] = []
        for query in expired + due:
            if len(got) >= limit:
                break
            got += take(conn, query, limit - len(got))
        return got

    return run_in_connection(engine, work)


def renew(engine: Engine, claim_ids: Sequence[str], until: datetime) -> int:
    """Heartbeat: push the lease of every row still ``sending`` under these claims."""
    def work(conn: Connection) -> int:
        return int(conn.execute(update(OUTBOX).where(_o.claimed_by.in_(claim_ids), _o.status == SENDING)
                                .values(claimed_until=until)).rowcount or 0)

    return run_in_connection(engine, work)


@dataclass(frozen=True)
class Unmark:
    """A marked row never handed to the channel, and what it was before its mark."""

    row_id: int
    send_started_at: datetime | None
    first_attempt_at: datetime | None
    message_id: str | None


_UNMARK = (
    update(OUTBOX)
    .where(_o.id == bindparam("row_id"), _o.claimed_by == bindparam("claim_id"), _o.status == SENDING)
    .values(status=PENDING, claimed_by=None, claimed_until=None, attempts=_o.attempts - 1,
            send_started_at=bindparam("prev_started", type_=_o.send_started_at.type),
            first_attempt_at=bindparam("prev_first", type_=_o.first_attempt_at.type),
            message_id=bindparam("prev_message_id", type_=_o.message_id.type))
)


def release(engine: Engine, claim_id: str, unmarked: Sequence[int], restore: Sequence[Unmark]) -> int:
    """Give back rows of a claim not handed to the provider: ``unmarked`` back to ``pending``, the
    ``restore`` rows' marks undone exactly (attempt count, times); returns rows given back."""
    def work(conn: Connection) -> int:
        n = 0
        if unmarked:
            n += int(conn.execute(
                update(OUTBOX).where(_o.id.in_(unmarked), _o.claimed_by == claim_id, _o.status == SENDING)
                .values(status=PENDING, claimed_by=None, claimed_until=None)).rowcount or 0)
        if restore:
            n += int(conn.execute(_UNMARK, [
                {"row_id": r.row_id, "claim_id": claim_id, "prev_started": r.send_started_at,
                 "prev_first": r.first_attempt_at, "prev_message_id": r.message_id} for r in restore
            ]).rowcount or 0)
        return n

    return run_in_connection(engine, work)


# -- re-check and mark ------------------------------------------------------------------------------
_key = case((col(OutboxMessage.channel) == Channel.EMAIL.value, col(Contact.email_key)),
            else_=col(Contact.phone_key))
_suppressed = (
    select(col(SuppressionEntry.key))
    .where(col(SuppressionEntry.key) == _key, col(SuppressionEntry.channel) == col(OutboxMessage.channel))
    .exists()
)
#: one row per outbox id of a group: the row, its contact, enrolment and campaign, and whether the
#: address is on the suppression list (the key matching the row's channel, as ``key_of``)
SEND_FACTS = (
    select(
        col(OutboxMessage.id), col(OutboxMessage.contact_id), col(OutboxMessage.campaign_id),
        col(OutboxMessage.step), col(OutboxMessage.channel), col(OutboxMessage.template),
        col(OutboxMessage.status), col(OutboxMessage.claimed_by), col(OutboxMessage.send_started_at),
        col(OutboxMessage.first_attempt_at), col(OutboxMessage.message_id),
        col(Contact.email), col(Contact.phone), col(Contact.first_name), col(Contact.locale),
        col(Contact.timezone), col(Contact.erased_at),
        col(Contact.attributes)["region"].as_string().label("region"),  # holiday region (docs/sms.md)
        col(Enrolment.state).label("request_state"),
        col(Enrolment.deadline_at).label("enrolment_deadline_at"),
        col(Campaign.state).label("campaign_state"),
        col(Campaign.deadline_at).label("campaign_deadline_at"),
        col(Campaign.created_at).label("campaign_created_at"),
        _suppressed.label("suppressed"),
    )
    .join(Contact, col(Contact.id) == col(OutboxMessage.contact_id))
    .join(Enrolment, col(Enrolment.id) == col(OutboxMessage.enrolment_id))
    .join(Campaign, col(Campaign.id) == col(OutboxMessage.campaign_id))
    .where(col(OutboxMessage.id).in_(bindparam("row_ids", expanding=True)))
)


def send_facts(conn: Connection, ids: Sequence[int]) -> dict[int, Any]:
    """The facts of a group's rows, by row id (one indexed query: primary keys and the list's key)."""
    return {f.id: f for f in conn.execute(SEND_FACTS, {"row_ids": list(ids)})}


def campaign_plan(conn: Connection, campaign_id: int) -> dict[str, Any]:
    """The stored plan (JSON) of a campaign."""
    plan: dict[str, Any] = conn.execute(select(_c.plan).where(_c.id == campaign_id)).scalar_one()
    return plan


def _by_id(*params: str, **fixed: Any) -> Any:
    """``UPDATE outbox SET <fixed values>, <column> = :<column> … WHERE id = :row_id``."""
    return (update(OUTBOX).where(_o.id == bindparam("row_id"))
            .values(**fixed, **{p: bindparam(p, type_=_o[p].type) for p in params}))


_PAUSE = _by_id(status=PENDING, claimed_by=None, claimed_until=None)
_SKIP = _by_id("updated_at", "skip_reason", status=DeliveryState.SKIPPED.value, claimed_by=None, claimed_until=None)
_DEFER = _by_id("due_at", status=PENDING, claimed_by=None, claimed_until=None, skip_reason="outside_window")
# The mark: handed to the provider from now on. Conditional on still holding the claim, so a worker
# whose lease ran out (and was taken over) can never start a second send.
_MARK = (
    update(OUTBOX)
    .where(_o.id == bindparam("row_id"), _o.claimed_by == bindparam("claim_id"), _o.status == SENDING)
    .values(message_id=bindparam("message_id", type_=_o.message_id.type),
            first_attempt_at=bindparam("first_attempt_at", type_=_o.first_attempt_at.type),
            attempts=_o.attempts + 1,
            send_started_at=bindparam("send_started_at", type_=_o.send_started_at.type))
)


@dataclass
class GroupWrites:
    """What one group's re-check decided, as bind parameters: rows of a campaign paused since the
    claim (back to the queue untouched), skips (with the reason), deferrals (to the window's
    opening) and marks."""

    paused: list[dict[str, Any]]
    skips: list[dict[str, Any]]
    defers: list[dict[str, Any]]
    marks: list[dict[str, Any]]


def write_group(conn: Connection, claim_id: str, writes: GroupWrites) -> set[int] | None:
    """Write a group's decisions (one executemany each); returns None when every mark took, else the
    marked rows still ours (rare: some row was taken over)."""
    for stmt, params in ((_PAUSE, writes.paused), (_SKIP, writes.skips), (_DEFER, writes.defers)):
        if params:
            conn.execute(stmt, params)
    if not writes.marks or conn.execute(_MARK, writes.marks).rowcount == len(writes.marks):
        return None
    return set(conn.execute(select(_o.id).where(
        _o.id.in_([m["row_id"] for m in writes.marks]), _o.claimed_by == claim_id, _o.status == SENDING)).scalars())


# -- results ----------------------------------------------------------------------------------------
_SENT_NAMES = ["template_version", "locale", "provider_status", "sent_at", "updated_at"]
_SENT = (
    update(OUTBOX)
    .where(_o.id == bindparam("row_id"), or_(_o.status == SENDING, _o.status == PENDING))
    .values(status=DeliveryState.SENT.value, claimed_by=None, claimed_until=None, send_started_at=None,
            # a channel without a provider id keeps the one recorded before, if any
            provider_id=func.coalesce(bindparam("provider_id", type_=_o.provider_id.type), _o.provider_id),
            **{n: bindparam(n, type_=_o[n].type) for n in _SENT_NAMES})
)


def write_sent(conn: Connection, values: Iterable[dict[str, Any]], now: datetime) -> None:
    """Record "sent" results (one statement, no read first: the time between the provider's
    "accepted" and this commit is the only window in which a crash causes a duplicate). ``values``:
    row_id, template_version, locale, provider_status, provider_id of each."""
    conn.execute(_SENT, [{**v, "sent_at": now, "updated_at": now} for v in values])


def _finish(row: OutboxMessage, state: DeliveryState, now: datetime) -> None:
    if not DeliveryState.can_move(DeliveryState(row.status), state):
        return
    row.status = state.value
    row.claimed_by = row.claimed_until = None
    row.updated_at = now


def record_transient(engine: Engine, row_id: int, reason: str, now: Callable[[], datetime],
                     next_due: Callable[[datetime, datetime | None, int], datetime | None]) -> bool:
    """A transient failure: the row back to ``pending`` at ``next_due(now, first_attempt_at,
    attempts)``, or failed when that is None; returns True when failed."""
    def work(session: Session) -> bool:
        at = now()
        row = session.get(OutboxMessage, row_id)
        assert row is not None
        row.last_error = reason[:500]
        row.send_started_at = None  # the provider refused it: the outcome is known
        due = next_due(at, as_utc(row.first_attempt_at) if row.first_attempt_at else None, row.attempts)
        if due is None:
            _finish(row, DeliveryState.FAILED, at)
        else:
            row.status = PENDING
            row.due_at = due
            row.claimed_by = row.claimed_until = None
        session.add(row)
        return due is None

    return run_in_transaction(engine, work, attempts=60)


def record_permanent(engine: Engine, row_id: int, reason: str, suppress_as: str | None,
                     now: Callable[[], datetime]) -> DeliveryState:
    """A permanent failure: the row bounced or failed (``refusal_state``), and the address suppressed
    for the channel when ``suppress_as`` says so; returns the row's state after (what the dispatch
    summary counts, as ``campaign status`` does)."""
    def work(session: Session) -> DeliveryState:
        at = now()
        row = session.get(OutboxMessage, row_id)
        assert row is not None
        contact = session.get(Contact, row.contact_id)
        _finish(row, refusal_state(suppress_as), at)
        row.send_started_at = None
        row.last_error = reason[:500]
        session.add(row)
        if suppress_as and contact is not None:
            withdraw(session, key_of(contact, row.channel), row.channel, suppress_as, "provider", at)
        return DeliveryState(row.status)

    return run_in_transaction(engine, work, attempts=60)


_UNBUILT = (
    update(OUTBOX)
    .where(_o.id == bindparam("row_id"), _o.claimed_by == bindparam("claim_id"), _o.status == SENDING)
    .values(status=DeliveryState.FAILED.value, claimed_by=None, claimed_until=None, send_started_at=None,
            last_error=bindparam("last_error", type_=_o.last_error.type),
            updated_at=bindparam("updated_at", type_=_o.updated_at.type))
)


def write_unbuilt(conn: Connection, claim_id: str, unbuilt: Sequence[tuple[int, int, str]], now: datetime,
                  threshold: int) -> list[tuple[int, str]]:
    """Fail marked rows whose message could not be built ((row, campaign, reason); still ours only),
    count them on their campaign, and pause a running campaign whose count since launch or the last
    resume reaches ``threshold`` (0: never); returns the (campaign, reason) of each campaign paused."""
    conn.execute(_UNBUILT, [{"row_id": row_id, "claim_id": claim_id, "last_error": reason, "updated_at": now}
                            for row_id, _, reason in unbuilt])
    per_campaign: dict[int, tuple[int, str]] = {}
    for _, campaign_id, reason in unbuilt:
        per_campaign[campaign_id] = (per_campaign.get(campaign_id, (0, ""))[0] + 1, reason)
    paused = []
    for campaign_id, (n, last) in sorted(per_campaign.items()):
        total = conn.execute(update(CAMPAIGN).where(_c.id == campaign_id)
                             .values(build_failures=_c.build_failures + n).returning(_c.build_failures)).scalar()
        if not threshold or total is None or total < threshold:
            continue
        why = (f"paused by dispatch: {total} message(s) could not be built since launch or the last resume "
               f"(dispatch.failure_pause_threshold = {threshold}); last: {last}")
        if conn.execute(update(CAMPAIGN).where(_c.id == campaign_id, _c.state == CampaignState.RUNNING.value)
                        .values(state=CampaignState.PAUSED.value, paused_reason=why)).rowcount:
            paused.append((campaign_id, why))
    return paused


