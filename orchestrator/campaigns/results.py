"""A campaign's results by the CRM's id (SPEC §11 ``campaign results``): one row per enrolled contact.

What a company's systems need to act on: who (``external_id``, ``kind``), how the request ended
(``state``), where the person stands now per channel (``email_consent``, ``sms_consent``,
``partners_consent``: granted | withdrawn | expired | none, read from the ledger by
:mod:`orchestrator.consent.standing`), and the proof of the answer (its time, source, wording
version and ledger event hash); then ``topics`` and ``partners``: the topic and named partner ids the
person grants now, joined by ``;``. Complete after the sweep: anonymisation keeps the CRM id and the
outcome (docs/proof.md).

Rows stream in pages of enrolments (keyset on the enrolment id, one query for the page's contacts
and one for their events), so a million rows go out in flat memory; :func:`results_page` gives the
same rows a page at a time with a cursor (for the HTTP API).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any, TextIO

from sqlalchemy import Table, bindparam, select
from sqlalchemy.engine import Connection

from orchestrator.consent.alternatives import CHOICE_COLUMNS, person_choices_of
from orchestrator.consent.choices import choice_columns
from orchestrator.consent.standing import EventFacts, channel_columns, events_of, iso
from orchestrator.domain import csv_safe
from orchestrator.domain.clock import as_utc
from orchestrator.domain.model import Purpose, RequestState
from orchestrator.errors import NotFoundError
from orchestrator.runtime import Runtime
from orchestrator.store.models import Campaign, Contact, Enrolment

RESULT_COLUMNS = ("external_id", "kind", "state", "email_consent", "sms_consent", "partners_consent",
                  "answered_at", "source", "wording_version", "event_hash", "topics", "partners",
                  *CHOICE_COLUMNS)
#: enrolments read per page
PAGE = 2000

_ENROLMENT: Table = Enrolment.metadata.tables["enrolment"]
_CONTACT: Table = Contact.metadata.tables["contact"]
_CAMPAIGN: Table = Campaign.metadata.tables["campaign"]
_PAGE = (
    select(_ENROLMENT.c.id, _ENROLMENT.c.state, _ENROLMENT.c.enrolled_at, _ENROLMENT.c.answered_at,
           _CONTACT.c.id, _CONTACT.c.external_id, _CONTACT.c.kind)
    .join(_CONTACT, _CONTACT.c.id == _ENROLMENT.c.contact_id)
    .where(_ENROLMENT.c.campaign_id == bindparam("campaign_id"), _ENROLMENT.c.id > bindparam("after"))
    .order_by(_ENROLMENT.c.id).limit(bindparam("limit"))
)


@dataclass(frozen=True)
class ResultRow:
    """One enrolled contact's outcome; ``cursor`` (the enrolment id) orders and pages them."""

    cursor: int
    external_id: str
    kind: str
    state: str
    email_consent: str
    sms_consent: str
    partners_consent: str
    answered_at: datetime | None
    source: str | None
    wording_version: str | None
    event_hash: str | None
    #: the topic ids and named partner ids granted now, joined by ";" (issue 18; after SPEC §11's columns)
    topics: str = ""
    partners: str = ""
    #: the alternative to leaving chosen (issue 18): the frequency, the day a running pause ends
    frequency: str | None = None
    paused_until: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The row as JSON values (times ISO 8601 UTC), keys in :data:`RESULT_COLUMNS` order."""
        return {name: iso(self.answered_at) if name == "answered_at" else getattr(self, name)
                for name in RESULT_COLUMNS}

    def cells(self) -> list[str]:
        """The row as CSV cells (empty for none)."""
        return ["" if v is None else str(v) for v in self.as_dict().values()]


@dataclass(frozen=True)
class ResultsPage:
    rows: list[ResultRow]
    #: pass as ``after`` for the next page; None when this page was the last
    next_cursor: int | None


def _check_campaign(conn: Connection, campaign_id: int) -> None:
    if conn.execute(select(_CAMPAIGN.c.id).where(_CAMPAIGN.c.id == campaign_id)).first() is None:
        raise NotFoundError(f"campaign {campaign_id}: no such campaign (see `reconsent campaign list`)")


def _answer_event(events: Sequence[EventFacts], campaign_id: int, enrolled_at: datetime) -> EventFacts | None:
    """The event that ended the request: the newest of this campaign (marketing first), else — an
    answer given elsewhere, such as an SMS STOP or an erasure — the newest since enrolment."""
    own = [e for e in events if e.campaign_id == campaign_id]
    marketing = [e for e in own if e.purpose == Purpose.MARKETING.value]
    if marketing or own:
        return (marketing or own)[-1]
    since = [e for e in events if e.occurred_at >= enrolled_at]
    return since[-1] if since else None


def _page(conn: Connection, campaign_id: int, after: int, limit: int) -> list[ResultRow]:
    enrolled = conn.execute(_PAGE, {"campaign_id": campaign_id, "after": after, "limit": limit}).all()
    events = events_of(conn, [r[4] for r in enrolled])
    rows = []
    for enrolment_id, state, enrolled_at, answered_at, contact_id, external_id, kind in enrolled:
        mine = events.get(contact_id, [])
        event = None if state == RequestState.PENDING.value else _answer_event(mine, campaign_id, as_utc(enrolled_at))
        when = event.occurred_at if event is not None else (as_utc(answered_at) if answered_at else None)
        rows.append(ResultRow(
            cursor=enrolment_id, external_id=external_id, kind=kind, state=state, **channel_columns(mine),
            answered_at=when, source=event.source if event else None,
            wording_version=event.wording_version if event else None, event_hash=event.hash if event else None,
            **choice_columns(mine),
            **person_choices_of(mine),
        ))
    return rows


def results_page(rt: Runtime, campaign_id: int, *, after: int = 0, limit: int = 100) -> ResultsPage:
    """One page of :func:`iter_results` (rows whose cursor is above ``after``); NotFoundError when
    there is no such campaign."""
    limit = max(1, min(limit, PAGE))
    with rt.engine.connect() as conn:
        _check_campaign(conn, campaign_id)
        rows = _page(conn, campaign_id, after, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return ResultsPage(rows, rows[-1].cursor if more and rows else None)


def iter_results(rt: Runtime, campaign_id: int, *, page: int = PAGE) -> Iterator[ResultRow]:
    """Every enrolled contact's :class:`ResultRow`, in enrolment order, page by page on one
    connection. NotFoundError (before the first row) when there is no such campaign."""
    conn = rt.engine.connect()
    try:
        _check_campaign(conn, campaign_id)
    except BaseException:
        conn.close()
        raise
    return _stream(conn, campaign_id, page)


def _stream(conn: Connection, campaign_id: int, page: int) -> Iterator[ResultRow]:
    with conn:
        after = 0
        while True:
            rows = _page(conn, campaign_id, after, page)
            yield from rows
            if len(rows) < page:
                return
            after = rows[-1].cursor


# -- writing: the one place a CSV or JSON file of results is written ---------------------------------
def write_csv(out: TextIO, header: Sequence[str], rows: Iterable[Sequence[str]]) -> int:
    """Write a header and rows as CSV through the product's one CSV writer (cells neutralised for
    spreadsheets: ``orchestrator.domain.csv_safe``); returns the rows written."""
    return csv_safe.write_csv(out, header, rows)


def stream_results(rows: Iterable[ResultRow], fmt: str = "csv", *, batch: int = PAGE,
                   counted: list[int] | None = None) -> Iterator[str]:
    """The text of a results file (CSV with the header :data:`RESULT_COLUMNS`, or one JSON array) in
    parts of ``batch`` rows, for a download that streams a big campaign in flat memory; the parts
    joined are exactly what :func:`write_results` writes. ``counted`` (a one-item list) receives the
    number of rows so far."""
    seen = counted if counted is not None else [0]
    seen[:] = [0]
    rows = iter(rows)
    buf = io.StringIO()
    first = True
    while True:
        part = list(islice(rows, batch))
        if fmt == "csv":
            csv_safe.write_csv(buf, RESULT_COLUMNS, (r.cells() for r in part), with_header=first)
        else:
            for row in part:
                buf.write(("," if seen[0] else "[") + "\n" + json.dumps(row.as_dict(), ensure_ascii=False))
                seen[0] += 1
        if fmt == "csv":
            seen[0] += len(part)
        first = False
        if len(part) < batch:
            if fmt != "csv":
                buf.write("\n]\n" if seen[0] else "[]\n")
            yield buf.getvalue()
            return
        yield buf.getvalue()
        buf.seek(0)
        buf.truncate()


def write_results(out: TextIO, rows: Iterable[ResultRow], fmt: str = "csv") -> int:
    """Stream results as CSV (header :data:`RESULT_COLUMNS`) or as one JSON array; returns the rows."""
    counted = [0]
    for part in stream_results(rows, fmt, counted=counted):
        out.write(part)
    return counted[0]


# -- the campaigns themselves, a page at a time (the HTTP API's GET /campaigns) ---------------------
def campaigns_page(rt: Runtime, *, after: int = 0, limit: int = 100) -> tuple[list[dict[str, Any]], int | None]:
    """Campaigns whose id is above ``after``, oldest first, as JSON values; and the cursor of the next
    page (None on the last)."""
    c = _CAMPAIGN.c
    query = (select(c.id, c.name, c.state, c.created_at, c.launch_at, c.launched_at, c.deadline_at, c.completed_at)
             .where(c.id > after).order_by(c.id).limit(max(1, limit) + 1))
    with rt.engine.connect() as conn:
        found = conn.execute(query).all()
    more = len(found) > limit
    rows = [{"id": r[0], "name": r[1], "state": r[2], "created_at": iso(r[3]), "launch_at": iso(r[4]),
             "launched_at": iso(r[5]), "deadline_at": iso(r[6]), "completed_at": iso(r[7])} for r in found[:limit]]
    return rows, rows[-1]["id"] if more and rows else None
