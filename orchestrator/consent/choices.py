"""Topics and named partners in the ledger (issue 18 §1–§2): one purpose per choice.

A topic is the purpose ``topic:<id>``, a named partner ``partner:<id>`` (ids from the config:
:mod:`orchestrator.choices_settings`). An answer writes, per reachable channel, a ``granted`` event for
each ticked choice and a ``withdrawn`` event for each choice the person had granted and now leaves
unticked — never an event for a choice that was never granted. The newest event of a purpose on any
channel decides where the person stands; a consent covers its own partner id only, so a partner added
later is covered by nobody until asked (``[audience] ask_partner``).

The old unnamed ``partners`` purpose stays readable (old events, SPEC §11 ``partners_consent``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, or_, select
from sqlalchemy.engine import Connection

from orchestrator.consent.ledger import GIVEN, Proof
from orchestrator.consent.standing import EventFacts
from orchestrator.domain.model import Channel, ConsentAction, Purpose
from orchestrator.runtime import Runtime
from orchestrator.store.models import ConsentEvent

TOPIC, PARTNER = "topic:", "partner:"

_EVENT: Table = ConsentEvent.metadata.tables["consent_event"]
_CHOICE_EVENTS = (
    select(_EVENT.c.purpose, _EVENT.c.action)
    .where(_EVENT.c.contact_id == bindparam("contact_id"),
           or_(_EVENT.c.purpose.like(TOPIC + "%"), _EVENT.c.purpose.like(PARTNER + "%")))
    .order_by(_EVENT.c.id)
)


def is_choice(purpose: str) -> bool:
    """Whether ``purpose`` is a topic or a named partner (not marketing, nor the old unnamed partners).

    >>> is_choice("topic:news"), is_choice("partner:a"), is_choice("partners"), is_choice("marketing")
    (True, True, False, False)
    """
    return purpose.startswith((TOPIC, PARTNER))


def granted_choices(conn: Connection, contact_id: int) -> frozenset[str]:
    """The topic and partner purposes this person currently grants (newest event on any channel decides)."""
    state: dict[str, bool] = {}
    for purpose, action in conn.execute(_CHOICE_EVENTS, {"contact_id": contact_id}):
        state[purpose] = action in GIVEN
    return frozenset(p for p, given in state.items() if given)


def choice_events(contact_id: int, channels: Sequence[Channel], choices: Mapping[str, bool],
                  granted: Iterable[str], proof: Proof, now: datetime) -> list[dict[str, Any]]:
    """The ledger events of an answer's topic and partner choices (``choices``: purpose → ticked)."""
    before = set(granted)
    events: list[dict[str, Any]] = []
    for purpose, ticked in choices.items():
        if not is_choice(purpose):
            raise ValueError(f"not a topic or partner purpose: {purpose!r}")
        if not ticked and purpose not in before:
            continue  # never granted, left unticked: nothing to record
        action = ConsentAction.GRANTED if ticked else ConsentAction.WITHDRAWN
        events.extend({"contact_id": contact_id, "channel": c.value, "purpose": purpose, "action": action.value,
                       "at": now, "proof": proof} for c in channels)
    return events


def granted_of(events: Sequence[EventFacts], prefix: str) -> list[str]:
    """The ids (without the prefix) this person grants now, from their events oldest first, sorted.

    >>> from datetime import datetime, timezone
    >>> e = lambda i, p, a: EventFacts(i, 1, "email", p, a, datetime.now(timezone.utc), "x", None, None, "h")
    >>> granted_of([e(1, "topic:b", "granted"), e(2, "topic:a", "granted"), e(3, "topic:b", "withdrawn")], TOPIC)
    ['a']
    """
    state: dict[str, bool] = {}
    for e in events:
        if e.purpose.startswith(prefix):
            state[e.purpose[len(prefix):]] = e.action in GIVEN
    return sorted(i for i, given in state.items() if given)


def choice_columns(events: Sequence[EventFacts]) -> dict[str, str]:
    """``topics`` and ``partners``: the ids granted now, joined by ``;`` (results, contacts export)."""
    return {"topics": ";".join(granted_of(events, TOPIC)), "partners": ";".join(granted_of(events, PARTNER))}


def any_partner_granted(events: Sequence[EventFacts]) -> bool:
    """Whether some named partner — or the old unnamed ``partners`` purpose — is granted now."""
    state: dict[str, bool] = {}
    for e in events:
        if e.purpose == Purpose.PARTNERS.value or e.purpose.startswith(PARTNER):
            state[e.purpose] = e.action in GIVEN
    return any(state.values())


def read_granted(rt: Runtime, contact_id: int) -> frozenset[str]:
    """:func:`granted_choices` on a connection of its own (the page ticks only these [R1]); nothing
    to read, and no query, when the config offers no topic and no partner."""
    if not rt.config.topics and not rt.config.partners:
        return frozenset()
    with rt.engine.connect() as conn:
        return granted_choices(conn, contact_id)
