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
from typing import Any

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.engine import Connection
from sqlmodel import Session

from orchestrator.domain.model import RequestState
from orchestrator.store.models import Enrolment

_TABLE: Table = Enrolment.metadata.tables["enrolment"]


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
    stmt: Any = update(_TABLE).where(_TABLE.c.state.in_(movable))
    params: dict[str, Any] = {"b_state": target.value, "b_answered_at": None if target is RequestState.EXPIRED else now}
    if ids is not None:
        stmt = stmt.where(_TABLE.c.id.in_(bindparam("b_ids", expanding=True)))
        params["b_ids"] = list(ids)
    if contact_id is not None:
        stmt = stmt.where(_TABLE.c.contact_id == bindparam("b_contact_id"))
        params["b_contact_id"] = contact_id
    if campaign_id is not None:
        stmt = stmt.where(_TABLE.c.campaign_id == bindparam("b_campaign_id"))
        params["b_campaign_id"] = campaign_id
    stmt = stmt.values(state=bindparam("b_state"), answered_at=bindparam("b_answered_at")).returning(_TABLE.c.id)
    connection = conn.connection() if isinstance(conn, Session) else conn
    return {int(i) for i in connection.execute(stmt, params).scalars()}


_STATE = select(_TABLE.c.state).where(_TABLE.c.contact_id == bindparam("contact_id"),
                                      _TABLE.c.campaign_id == bindparam("campaign_id"))


def answer(conn: Session | Connection, contact_id: int, campaign_id: int | None, target: RequestState,
           now: datetime) -> str:
    """:func:`close` for the person's request in one campaign; returns its state afterwards ("" when
    there is no such request, or no campaign)."""
    if campaign_id is None:
        return ""
    if close(conn, target, now, contact_id=contact_id, campaign_id=campaign_id):
        return target.value
    connection = conn.connection() if isinstance(conn, Session) else conn
    state = connection.execute(_STATE, {"contact_id": contact_id, "campaign_id": campaign_id}).scalar()
    return "" if state is None else str(state)
