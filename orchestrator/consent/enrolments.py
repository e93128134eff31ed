"""The one enrolment transition: closing consent requests (pending → confirmed | declined | expired).

Every path that answers or ends a request comes through :func:`close`: the preference page's answer,
an unsubscribe, an SMS STOP, an erasure, the deadline sweep. The statement itself only moves the
requests :meth:`RequestState.can_move` allows (a pending one), so a request already answered is never
moved backwards or sideways, also when two writers race: the condition is re-checked by the database.
``answered_at`` is the time of the answer; an expiry is not an answer and leaves it empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Table, bindparam, literal_column, select, update
from sqlalchemy.engine import Connection
from sqlmodel import Session

from orchestrator.domain.model import RequestState
from orchestrator.store.models import Enrolment

_TABLE: Table = Enrolment.metadata.tables["enrolment"]


#: closing states that are not an answer: ``answered_at`` stays empty
_NOT_ANSWERS = (RequestState.EXPIRED, RequestState.KEPT)


def _movable_to(target: RequestState) -> list[str]:
    """The states a request may leave for ``target``.

    >>> _movable_to(RequestState.DECLINED)
    ['pending']
    >>> _movable_to(RequestState.PENDING)
    []
    """
    return [s.value for s in RequestState if RequestState.can_move(s, target)]


def close(conn: Session | Connection, target: RequestState, now: datetime, *, ids: Sequence[int] | None = None,
          contact_id: int | None = None, campaign_id: int | None = None) -> set[int]:
    """Move the chosen requests that may still move to ``target``; returns the ids moved.

    Chosen by ``ids``, or by ``contact_id`` (with ``campaign_id``: that campaign's request only,
    without: every one of the person's); at least one of them is required.
    """
    if ids is None and contact_id is None:
        raise ValueError("close: give ids or contact_id")
    movable = _movable_to(target)
    if not movable or ids == []:
        return set()
    params: dict[str, Any] = {"b_state": target.value, "b_answered_at": None if target in _NOT_ANSWERS else now}
    if ids is not None:
        params["b_ids"] = list(ids)
    if contact_id is not None:
        params["b_contact_id"] = contact_id
    if campaign_id is not None:
        params["b_campaign_id"] = campaign_id
    stmt = _close_statement(tuple(movable), ids is not None, contact_id is not None, campaign_id is not None)
    connection = conn.connection() if isinstance(conn, Session) else conn
    return {int(i) for i in connection.execute(stmt, params).scalars()}


@lru_cache(maxsize=64)
def _close_statement(movable: tuple[str, ...], by_ids: bool, by_contact: bool, by_campaign: bool) -> Any:
    """The UPDATE … RETURNING of :func:`close` for one shape, built once: a page answer runs it on
    every POST (building a new statement each time cut the page's POST throughput under load from
    ~300 to ~220 req/s; built once, ~280: bench/RESULTS.md)."""
    # the movable states are our own enum values, written into the SQL text: an expanding bind
    # parameter would make SQLAlchemy re-render the statement on every execution
    assert all(s.isidentifier() for s in movable)
    stmt: Any = update(_TABLE).where(_TABLE.c.state.in_([literal_column(f"'{s}'") for s in movable]))
    if by_ids:
        stmt = stmt.where(_TABLE.c.id.in_(bindparam("b_ids", expanding=True)))
    if by_contact:
        stmt = stmt.where(_TABLE.c.contact_id == bindparam("b_contact_id"))
    if by_campaign:
        stmt = stmt.where(_TABLE.c.campaign_id == bindparam("b_campaign_id"))
    return stmt.values(state=bindparam("b_state"), answered_at=bindparam("b_answered_at")).returning(_TABLE.c.id)


_STATE = select(_TABLE.c.state).where(_TABLE.c.contact_id == bindparam("contact_id"),
                                      _TABLE.c.campaign_id == bindparam("campaign_id"))


def answer(conn: Session | Connection, contact_id: int, campaign_id: int | None, target: RequestState,
           now: datetime) -> str:
    """:func:`close` for the person's request in one campaign; returns its state afterwards ("" when
    there is no such request, or no campaign).

    The state is read first: a request already answered (someone answering again, a second
    unsubscribe) costs that one read and no write. A pending one is then moved by :func:`close`,
    whose condition the database checks again, so a writer that got there in between (the sweep)
    wins cleanly and its state is what this returns.
    """
    if campaign_id is None:
        return ""
    connection = conn.connection() if isinstance(conn, Session) else conn
    params = {"contact_id": contact_id, "campaign_id": campaign_id}
    state = connection.execute(_STATE, params).scalar()
    if state is None:
        return ""
    if not RequestState.can_move(RequestState(state), target):
        return str(state)
    if close(connection, target, now, contact_id=contact_id, campaign_id=campaign_id):
        return target.value
    state = connection.execute(_STATE, params).scalar()
    return "" if state is None else str(state)
