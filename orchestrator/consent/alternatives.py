"""Alternatives to leaving (issue 18 §1): "fewer messages" at the frequency the company offers, and a
pause of a few months. Choosing one is staying: an explicit act that confirms the channels concerned,
like a "yes" (request confirmed, an opt-out the person may lift is lifted), plus a ledger event that
records the value chosen in its ``detail``:

* purpose ``frequency``, action ``granted``, detail the frequency (``monthly``);
* purpose ``pause``, action ``granted``, detail the first day messages may resume (``2027-03-01``);
  when that day comes, :func:`end_pauses` appends purpose ``pause``, action ``expired`` with the same
  detail, once.

While a channel's newest ``pause`` event is ``granted`` with a later day, Reconsent does not enrol
the person (``campaigns.service.audience_query``) nor send them anything on that channel (the
dispatcher's re-check skips the message as ``paused``). Everything is read from the ledger.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import Table, bindparam, exists, func, literal, literal_column, select
from sqlalchemy.engine import Connection
from sqlmodel import Session

from orchestrator.config import Config
from orchestrator.consent import ledger
from orchestrator.consent.ledger import GIVEN, Proof
from orchestrator.consent.standing import EventFacts
from orchestrator.domain.audience import months_before
from orchestrator.domain.model import Channel, ConsentAction, ConsentSource, Purpose
from orchestrator.runtime import Runtime
from orchestrator.store.db import session_scope
from orchestrator.store.models import ConsentEvent, Contact

FREQUENCY, PAUSE = "frequency", "pause"
_EVENT: Table = ConsentEvent.metadata.tables["consent_event"]
_CONTACT: Table = Contact.metadata.tables["contact"]


@dataclass(frozen=True)
class Alternative:
    """One alternative offered: ``fewer`` (with its frequency) or ``pause`` (with its months)."""

    kind: str
    frequency: str = ""
    months: int = 0

    @property
    def value(self) -> str:
        """The form button's value: ``fewer`` or ``pause-3``."""
        return "fewer" if self.kind == "fewer" else f"pause-{self.months}"


def offered(config: Config) -> list[Alternative]:
    """The alternatives the config offers, "fewer messages" first."""
    choices = config.choices
    out = [Alternative("fewer", frequency=choices.fewer)] if choices.fewer else []
    return out + [Alternative("pause", months=m) for m in choices.pause_months]


def chosen(config: Config, value: str) -> Alternative | None:
    """The offered alternative a form's ``action`` names (None: not one of them).

    >>> cfg = Config()
    >>> chosen(cfg, "fewer"), chosen(cfg, "pause-3").months, chosen(cfg, "pause-4")
    (Alternative(kind='fewer', frequency='monthly', months=0), 3, None)
    """
    return next((a for a in offered(config) if a.value == value), None)


def pause_end(today: date, months: int) -> date:
    """The first day messages may resume after a pause of ``months`` from ``today``.

    >>> pause_end(date(2026, 11, 30), 3)
    datetime.date(2027, 2, 28)
    """
    return months_before(today, -months)


def stay_events(alternative: Alternative, now: datetime) -> tuple[tuple[str, str], ...]:
    """``(purpose, detail)`` of the event the alternative adds on each confirmed channel.

    >>> stay_events(Alternative("pause", months=3), datetime(2026, 11, 30, 12))
    (('pause', '2027-02-28'),)
    """
    if alternative.kind == "fewer":
        return ((FREQUENCY, alternative.frequency),)
    return ((PAUSE, pause_end(now.date(), alternative.months).isoformat()),)


def pause_ends(conn: Connection, contact_id: int, confirmed: Sequence[str], also: Sequence[tuple[str, str]],
               now: datetime, proof: Proof) -> list[dict[str, Any]]:
    """The events that end this person's running pause on the channels an answer confirms: a "yes"
    (or "fewer messages") says they want messages again. Purpose ``pause``, action ``withdrawn``, the
    pause's end as detail. None when the answer chooses a pause itself (its own event replaces it)."""
    if not confirmed or any(purpose == PAUSE for purpose, _ in also):
        return []
    today = now.date().isoformat()
    newest = conn.execute(_PAUSES_OF, {"contact_id": contact_id})
    running = {str(channel): str(detail) for channel, action, detail in newest
               if action == ConsentAction.GRANTED.value and detail and str(detail) > today}
    return [{"contact_id": contact_id, "channel": channel, "purpose": PAUSE, "action": ConsentAction.WITHDRAWN.value,
             "detail": running[channel], "at": now, "proof": proof} for channel in confirmed if channel in running]


#: per channel, the newest ``pause`` event of one person (built once: every confirming answer runs it)
_PAUSES_OF = (select(_EVENT.c.channel, _EVENT.c.action, _EVENT.c.detail)
              .where(_EVENT.c.id.in_(select(func.max(_EVENT.c.id))
                                     .where(_EVENT.c.contact_id == bindparam("contact_id"),
                                            _EVENT.c.purpose == literal_column(f"'{PAUSE}'"))
                                     .group_by(_EVENT.c.channel))))


# -- reading the ledger: who is paused, at which frequency --------------------------------------------
def _newest(purpose: str) -> Any:
    """The newest event of ``purpose`` per (contact, channel): its id."""
    return (select(func.max(_EVENT.c.id).label("id"))
            .where(_EVENT.c.purpose == literal(purpose))
            .group_by(_EVENT.c.contact_id, _EVENT.c.channel))


def chosen_values(conn: Connection | Session, contact_ids: Iterable[int] | None = None, *,
                  purposes: tuple[str, ...] = (FREQUENCY, PAUSE)) -> dict[tuple[int, str], dict[str, str]]:
    """Per (contact, channel): ``frequency`` and ``paused_until`` (the day messages resume, while the
    pause runs) from the newest events of each purpose; absent when not chosen or over."""
    ids = None if contact_ids is None else sorted(set(contact_ids))
    out: dict[tuple[int, str], dict[str, str]] = {}
    names = {FREQUENCY: "frequency", PAUSE: "paused_until"}
    for purpose, name in ((p, names[p]) for p in purposes):
        newest = _newest(purpose)
        if ids is not None:
            newest = newest.where(_EVENT.c.contact_id.in_(ids))
        sub = newest.subquery()
        rows = conn.execute(select(_EVENT.c.contact_id, _EVENT.c.channel, _EVENT.c.action, _EVENT.c.detail)
                            .join(sub, sub.c.id == _EVENT.c.id))
        for contact_id, channel, action, detail in rows:
            if action == ConsentAction.GRANTED.value and detail:
                out.setdefault((int(contact_id), str(channel)), {})[name] = str(detail)
    return out


#: the columns the results, the contacts export and the API add for these choices (after their own)
CHOICE_COLUMNS = ("frequency", "paused_until")


def person_choices_of(events: Iterable[EventFacts]) -> dict[str, str]:
    """``frequency`` and ``paused_until`` of one person from their ledger events, oldest first, as
    already read for the results, the contacts export and the API (no query): per channel the newest
    event of each purpose decides (granted with a value: chosen; anything else: not), on a channel whose
    marketing consent still stands (an unsubscribe since makes them moot); over the channels, the
    latest pause end and the frequency of the first channel that has one, email before SMS.

    >>> from datetime import datetime, timezone
    >>> e = lambda i, ch, p, a, d: EventFacts(i, 1, ch, p, a, datetime.now(timezone.utc), "x", None, None, "h", d)
    >>> yes = [e(0, "email", "marketing", "confirmed", None), e(0, "sms", "marketing", "confirmed", None)]
    >>> person_choices_of([*yes, e(1, "sms", "frequency", "granted", "weekly"),
    ...                    e(2, "email", "pause", "granted", "2027-03-01"),
    ...                    e(3, "email", "frequency", "granted", "monthly"),
    ...                    e(4, "email", "pause", "expired", "2027-03-01")])
    {'frequency': 'monthly'}
    >>> person_choices_of([*yes, e(1, "email", "frequency", "granted", "weekly"),
    ...                    e(2, "email", "marketing", "withdrawn", None)])
    {}
    """
    newest: dict[tuple[str, str], EventFacts] = {}
    for event in events:
        if event.purpose in (FREQUENCY, PAUSE, Purpose.MARKETING.value):
            newest[(event.channel, event.purpose)] = event
    out: dict[str, str] = {}
    for (channel, purpose), event in sorted(newest.items()):
        if purpose == Purpose.MARKETING.value or event.action != ConsentAction.GRANTED.value or not event.detail:
            continue
        marketing = newest.get((channel, Purpose.MARKETING.value))
        if marketing is None or marketing.action not in GIVEN:
            continue  # unsubscribed since (or never asked on this channel): no frequency, no pause to tell
        if purpose == FREQUENCY:
            out.setdefault("frequency", event.detail)
        elif event.detail > out.get("paused_until", ""):
            out["paused_until"] = event.detail
    return out


def chosen_values_of(rt: Runtime, contact_id: int) -> dict[tuple[int, str], dict[str, str]]:
    """:func:`chosen_values` of one contact, on a connection of its own (read only)."""
    with rt.engine.connect() as conn:
        return chosen_values(conn, [contact_id])


def paused_clause(channel: Channel | str, today: date) -> Any:
    """SQL condition on ``contact``: its channel is paused on ``today`` (the newest pause event
    granted, ending later)."""
    newer = _EVENT.alias("newer_pause")
    newest = (select(func.max(newer.c.id)).where(
        newer.c.contact_id == _CONTACT.c.id, newer.c.channel == literal(str(channel)),
        newer.c.purpose == literal(PAUSE)).correlate(_CONTACT).scalar_subquery())
    event = _EVENT.alias("pause")
    return exists().where(event.c.id == newest, event.c.action == literal(ConsentAction.GRANTED.value),
                          event.c.detail > literal(today.isoformat())).correlate(_CONTACT)


def paused(conn: Connection, pairs: Iterable[tuple[int, str]], today: date) -> set[tuple[int, str]]:
    """Which (contact, channel) pairs are paused on ``today`` (one query for a dispatch group)."""
    wanted = set(pairs)
    if not wanted:
        return set()
    values = chosen_values(conn, [c for c, _ in wanted], purposes=(PAUSE,))
    return {p for p in wanted if values.get(p, {}).get("paused_until", "") > today.isoformat()}


# -- the end of a pause: one event, once ----------------------------------------------------------------
_NEWEST_PAUSE = _newest(PAUSE).subquery("newest")
_DUE = (select(_EVENT.c.contact_id, _EVENT.c.channel, _EVENT.c.detail)
        .join(_NEWEST_PAUSE, _NEWEST_PAUSE.c.id == _EVENT.c.id)
        .where(_EVENT.c.action == ConsentAction.GRANTED.value, _EVENT.c.detail <= bindparam("today"))
        .order_by(_EVENT.c.contact_id, _EVENT.c.channel))


def end_pauses(rt: Runtime) -> int:
    """Append ``pause``/``expired`` for every pause whose last day has passed (the scheduler's
    ``pauses`` job, with the sweep's cron). The chain head is locked before looking, so two runners
    at once write each end exactly once: the second finds them ended. Returns how many ended."""
    now = rt.clock.now()
    with session_scope(rt.engine) as session:
        ledger.lock_head(session)
        due = session.connection().execute(_DUE, {"today": now.date().isoformat()}).all()
        proof = Proof(source=ConsentSource.SWEEP)
        return ledger.append_many(session, [
            {"contact_id": c, "channel": ch, "purpose": PAUSE, "action": ConsentAction.EXPIRED.value, "at": now,
             "proof": proof, "detail": d} for c, ch, d in due])


def job_pauses(rt: Runtime) -> str:
    """The scheduler's ``pauses`` job: its one-line summary."""
    return f"{end_pauses(rt)} pause(s) ended"


__all__ = ["FREQUENCY", "PAUSE", "Alternative", "applier", "chosen", "chosen_values", "chosen_values_of", "end_pauses",
           "offered", "pause_end", "pause_ends", "paused", "paused_clause", "person_choices_of", "stay_events"]


def applier(alternative: Alternative) -> Any:
    """What a page's answer records instead of a plain yes (``consent.service.PageAnswer.apply``): the
    same answer, by the one writer of answers (``consent.service.apply_answer``), on the channels it
    ticks only (other channels untouched), each with the alternative's event after its confirmation."""
    from orchestrator.consent.service import Answer, apply_answer  # the service imports nothing of here

    def apply(session: Session, person: Any, campaign_id: int | None, answer: Answer, proof: Proof,
              now: datetime) -> str:
        ticked = tuple(c for c, yes in answer.channels.items() if yes)
        staying = replace(answer, asked=ticked, also=stay_events(alternative, now))
        return apply_answer(session, person, campaign_id, staying, proof, now)

    return apply
