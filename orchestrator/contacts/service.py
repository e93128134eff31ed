"""Contacts CSV import (SPEC §10): validate every row, merge on external_id, refuse suppressed people.

Valid rows are written in batches inside one transaction, so a crash never leaves half a file;
every rejected row is reported with its line number, field and reason. The file is streamed: rows
are validated in chunks (by worker processes for a big file; the rules are in
orchestrator.contacts.rows) and staged in a temporary table, so memory does not grow with the file
(only with the number of rejected rows, which the report lists). Importing never creates
or changes consent: that only happens through an explicit action by the person [R1].
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, text, update
from sqlalchemy.engine import Connection
from sqlmodel import col

from orchestrator.consent.prior import PriorConsent, record_prior
from orchestrator.consent.suppression import adopt_previous
from orchestrator.contacts.columns import COLUMNS, FileProblem, parse_mapping
from orchestrator.contacts.reader import ContactsFile, FileFormat, read_rows
from orchestrator.contacts.rows import (
    PRIOR_ATTRIBUTE,
    STAGED_FIELDS,
    Problem,
    RowError,
    ValidatedChunk,
    checked_email,
    parse_row,
    validate_chunk,
)
from orchestrator.domain.csv_safe import write_csv
from orchestrator.domain.model import Channel, SuppressionReason
from orchestrator.errors import InputError
from orchestrator.runtime import Runtime
from orchestrator.store.db import session_scope, table_of
from orchestrator.store.models import Contact

__all__ = ["COLUMNS", "FileFormat", "FileProblem", "ImportReport", "Reject", "RowError", "checked_email",
           "import_contacts", "import_rows", "parse_mapping", "parse_row", "read_rows", "write_rejects"]

#: contacts written (suppression check + insert/update) per statement batch
BATCH = 2000
#: rows validated per chunk (the unit handed to a worker process)
CHUNK_ROWS = 5000
#: files at least this big are validated in worker processes; for smaller ones starting them costs more
POOL_MIN_BYTES = 4_000_000


SUPPRESSED = "on the suppression list (opted out, erased or expired): not imported"


@dataclass(frozen=True)
class Reject:
    line: int
    field: str
    #: the English text (CLI, rejects file); the console shows ``message`` % ``params`` translated
    reason: str
    row: dict[str, str]
    message: str = ""
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: "error": the row was not imported; "warning": imported without this field
    level: str = "error"

    @classmethod
    def of(cls, problem: Problem, level: str = "error") -> Reject:
        line, field_name, message, params, row = problem
        return cls(line, field_name, message % params if params else message, row, message, params, level)


@dataclass
class ImportReport:
    read: int = 0
    created: int = 0
    updated: int = 0
    merged_duplicates: int = 0
    rejects: list[Reject] = field(default_factory=list)
    #: rows imported without an invalid address (the other one was valid)
    warnings: list[Reject] = field(default_factory=list)
    format: FileFormat | None = None
    #: consent the company already held, recorded as ledger events (issue 17 §4); and why some were not
    prior_recorded: int = 0
    prior_ignored: dict[str, int] = field(default_factory=dict)

    @property
    def imported(self) -> int:
        return self.created + self.updated

    def summary(self) -> str:
        warned = f", {len(self.warnings)} imported with a warning" if self.warnings else ""
        read_as = f" (file read as {self.format.describe()})" if self.format else ""
        prior = ""
        if self.prior_recorded or self.prior_ignored:
            ignored = "; ".join(f"{n} {why}" for why, n in sorted(self.prior_ignored.items()))
            prior = f"; prior consent: {self.prior_recorded} recorded"
            prior += f", not recorded: {ignored}" if ignored else ""
        return (
            f"{self.read} rows read: {self.created} created, {self.updated} updated, "
            f"{self.merged_duplicates} duplicate rows merged, {len(self.rejects)} rejected{warned}{prior}{read_as}"
        )


@dataclass
class ParsedContact:
    line: int
    values: dict[str, Any]
    #: fields dropped with a warning: an update leaves the stored value
    keep: tuple[str, ...] = ()

    def update_values(self) -> dict[str, Any]:
        keys = {"email": "email_key", "phone": "phone_key"}
        kept = {f for f in self.keep if self.values.get(f) is None}
        kept |= {keys[f] for f in kept if f in keys}
        return {k: v for k, v in self.values.items() if k not in kept}


def import_contacts(
    rt: Runtime,
    path: Path,
    *,
    strict: bool = False,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
    chunk_rows: int = CHUNK_ROWS,
    mapping: Mapping[str, str] | None = None,
) -> ImportReport:
    """Import a contacts CSV. With ``strict``, any rejected row refuses the whole file.

    Memory does not grow with the file: rows are validated in chunks (in ``workers`` processes for a
    big file; None picks by file size and CPUs) and staged in a temporary table where later rows for
    the same external_id are merged into the first; the staged contacts are then checked against
    the suppression list and written in the order of their first row. Everything happens in one
    transaction, so a refused or failed import writes nothing. ``mapping`` names the file's column
    for a field its header does not name (``--map FIELD=COLUMN``).
    """
    source = ContactsFile(path, mapping)
    return import_rows(rt, source.rows(), strict=strict, progress=progress,
                       workers=_default_workers(path) if workers is None else workers, chunk_rows=chunk_rows,
                       label=str(path), file_format=source.format)


def import_rows(
    rt: Runtime,
    rows: Iterator[tuple[int, dict[str, str]]],
    *,
    strict: bool = False,
    progress: Callable[[int], None] | None = None,
    workers: int = 1,
    chunk_rows: int = CHUNK_ROWS,
    label: str = "contacts",
    file_format: FileFormat | None = None,
) -> ImportReport:
    """The import itself, for any source of (line, row of CSV-named text fields): the file reader of
    :func:`import_contacts` and the HTTP API's upserts share it, so both validate and merge alike.
    ``label`` names the source in the ``strict`` refusal."""
    report = ImportReport(format=file_format)
    cfg = rt.config.contacts
    validation = (cfg.default_region, cfg.default_locale, rt.config.suppression_secret())
    now = rt.clock.now()
    with session_scope(rt.engine) as session:
        stage = _Stage(session.connection())
        valid = 0
        with closing(_validated_chunks(rows, chunk_rows, workers, validation)) as chunks:
            for chunk in chunks:
                report.rejects.extend(Reject.of(r) for r in chunk.rejects)
                report.warnings.extend(Reject.of(w, "warning") for w in chunk.warnings)
                stage.add(chunk.staged)
                valid += chunk.valid
                report.read += chunk.valid + len(chunk.rejects)
                if progress:
                    progress(chunk.valid + len(chunk.rejects))
        if strict and report.rejects:
            first = report.rejects[0]
            raise InputError(
                f"{label}: line {first.line}: {first.field}: {first.reason} "
                f"({len(report.rejects)} rejected rows; nothing imported because of --strict)"
            )
        report.merged_duplicates = valid - stage.count()
        stage.analyze()
        for page in stage.pages(BATCH):
            # entries hashed under a former suppression key are found too (docs/suppression.md)
            if rt.config.previous_suppression_secrets():
                adopt_previous(session, rt, stage.addresses(page))
            for p in stage.refuse_suppressed(page):
                report.rejects.append(
                    Reject(p.line, "email" if p.values["email"] else "phone", SUPPRESSED, _as_row(p.values), SUPPRESSED)
                )
            for p in stage.refuse_anonymised(page):
                report.rejects.append(Reject(p.line, "external_id", ANONYMISED_REASON, _as_row(p.values)))
            for contact_id, p in stage.existing(page):
                session.execute(
                    update(Contact).where(col(Contact.id) == contact_id).values(**p.update_values(), updated_at=now)
                )
                report.updated += 1
            report.created += stage.insert_new(page, now)
            prior = record_prior(session, stage.prior_consents(page), now)
            report.prior_recorded += prior.recorded
            for why, n in prior.ignored.items():
                report.prior_ignored[why] = report.prior_ignored.get(why, 0) + n
        stage.drop()
    return report


def _default_workers(path: Path) -> int:
    try:
        size = path.stat().st_size
    except OSError:
        return 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(cpus, 4) if cpus > 1 and size >= POOL_MIN_BYTES else 1


def _validated_chunks(
    rows: Iterator[tuple[int, dict[str, str]]], chunk_rows: int, workers: int, validation: tuple[str, str, bytes],
) -> Generator[ValidatedChunk, None, None]:
    """``validate_chunk`` of each chunk of ``rows``, in file order; with workers > 1 in a process pool.

    At most two chunks per worker are in flight, so memory stays bounded whatever the file size.
    """
    chunks = iter(lambda: list(islice(rows, chunk_rows)), [])
    if workers <= 1:
        for chunk in chunks:
            yield validate_chunk(chunk, *validation)
        return
    with ProcessPoolExecutor(workers, mp_context=_start_method()) as pool:
        pending: deque[Future[ValidatedChunk]] = deque()
        try:
            for chunk in chunks:
                pending.append(pool.submit(validate_chunk, chunk, *validation))
                if len(pending) >= 2 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


def _start_method() -> multiprocessing.context.BaseContext:
    """fork where it is safe, else spawn.

    A forked worker starts at once with the validation code already imported (a spawned one
    re-imports the caller's main module: about a second of CPU each). Fork is safe in a
    single-threaded process: the workers never touch the database connection they inherit. A
    multi-threaded caller (the admin console's web server) gets spawn.
    """
    if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


class _Stage:
    """A temporary table holding one row per external_id of the file being imported.

    A later row for an external_id already staged is merged into it as ``merge_duplicate`` does
    (non-empty values win), keeping the first row's line as the contact's place in the file and the
    last one's for reporting. tests/orchestrator/test_import_stream.py pins this to the in-memory merge.
    """

    FIELDS = STAGED_FIELDS
    #: on a repeated external_id: the columns an empty later value must not overwrite
    KEEP_IF_EMPTY = ("email", "phone", "first_name", "timezone", "last_activity_at", "email_key", "phone_key")

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.pg = pg = conn.dialect.name == "postgresql"
        mark = "%s" if pg else "?"
        self.qualified = "pg_temp.import_stage" if pg else "temp.import_stage"  # never a real table
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {self.qualified}")  # left by an earlier failed import
        conn.exec_driver_sql(
            "CREATE TEMPORARY TABLE import_stage (first_line INTEGER PRIMARY KEY, last_line INTEGER NOT NULL, "
            "external_id TEXT NOT NULL UNIQUE, kind TEXT NOT NULL, email TEXT, phone TEXT, first_name TEXT, "
            "locale TEXT NOT NULL, timezone TEXT, last_activity_at TEXT, b2b BOOLEAN NOT NULL, "
            "attributes TEXT NOT NULL, email_key TEXT, phone_key TEXT, keep TEXT NOT NULL)"
            + (" ON COMMIT DROP" if pg else "")
        )
        merged = ", ".join(
            f"{c} = COALESCE(excluded.{c}, import_stage.{c})" if c in self.KEEP_IF_EMPTY
            else f"{c} = CASE WHEN excluded.{c} = '{{}}' THEN import_stage.{c} ELSE excluded.{c} END"
            if c == "attributes" else f"{c} = excluded.{c}"
            for c in ("last_line", *self.FIELDS[1:], "keep")
        )
        self.upsert = (
            f"INSERT INTO import_stage (first_line, last_line, {', '.join(self.FIELDS)}, keep) "
            f"VALUES ({', '.join([mark] * (len(self.FIELDS) + 3))}) "
            f"ON CONFLICT (external_id) DO UPDATE SET {merged}"
        )
        self.columns = f"first_line, last_line, {', '.join(self.FIELDS)}, keep"
        # the stored forms are the ones SQLAlchemy writes for Contact (ISO dates, JSON text, booleans);
        # tests/orchestrator/test_import_stream.py compares every column with the row-by-row insert
        as_date, as_json = ("CAST(s.last_activity_at AS DATE)", "CAST(s.attributes AS JSON)") if pg else \
            ("s.last_activity_at", "s.attributes")
        table = table_of(Contact)
        self.insert = text(
            f"INSERT INTO contact ({', '.join(self.FIELDS)}, created_at, updated_at) "
            f"SELECT s.external_id, s.kind, s.email, s.phone, s.first_name, s.locale, s.timezone, {as_date}, s.b2b, "
            f"{as_json}, s.email_key, s.phone_key, :now, :now FROM import_stage s "
            "WHERE s.first_line > :after AND s.first_line <= :upto "
            "AND NOT EXISTS (SELECT 1 FROM contact c WHERE c.external_id = s.external_id) ORDER BY s.first_line"
        ).bindparams(bindparam("now", type_=table.c.created_at.type))

    def add(self, staged: list[tuple[Any, ...]]) -> None:
        """Stage (first line, last line, *STAGED_FIELDS) rows, one per external_id within the chunk."""
        if staged:
            self.conn.exec_driver_sql(self.upsert, staged)

    def count(self) -> int:
        return int(self.conn.exec_driver_sql("SELECT COUNT(*) FROM import_stage").scalar_one())

    def analyze(self) -> None:
        """Give PostgreSQL's planner the table's size (temporary tables are never auto-analysed)."""
        if self.pg:
            self.conn.exec_driver_sql("ANALYZE import_stage")

    def pages(self, size: int) -> Iterator[tuple[int, int]]:
        """(after, upto] ranges of first lines holding ``size`` staged contacts each, in file order."""
        after = 0
        while True:
            upto = self.conn.execute(
                text("SELECT first_line FROM import_stage WHERE first_line > :after "
                     "ORDER BY first_line LIMIT 1 OFFSET :skip"), {"after": after, "skip": size - 1}
            ).scalar()
            if upto is None:
                more = self.conn.execute(text("SELECT 1 FROM import_stage WHERE first_line > :after LIMIT 1"),
                                         {"after": after}).scalar()
                if more:
                    yield after, _NO_END
                return
            yield after, upto
            after = upto

    def addresses(self, page: tuple[int, int]) -> list[str]:
        rows = self.conn.execute(text(f"SELECT email, phone FROM import_stage WHERE {_IN_PAGE}"), _bounds(page))
        return [a for row in rows for a in row if a]

    def refuse_suppressed(self, page: tuple[int, int]) -> list[ParsedContact]:
        """Unstage and return the page's contacts the suppression list refuses, in file order.

        Refused: every address given is suppressed on its channel, or any one was erased (an erased
        person asked to be forgotten: any one of their addresses refuses the whole row).
        """
        found = self.conn.execute(text(
            "SELECT s.first_line, s.email_key, s.phone_key, se.reason, sp.reason FROM import_stage s "
            "LEFT JOIN suppression se ON se.key = s.email_key AND se.channel = :email "
            "LEFT JOIN suppression sp ON sp.key = s.phone_key AND sp.channel = :sms "
            "WHERE s.first_line > :after AND s.first_line <= :upto"
            " AND (se.reason IS NOT NULL OR sp.reason IS NOT NULL) ORDER BY s.first_line"
        ), {**_bounds(page), "email": Channel.EMAIL.value, "sms": Channel.SMS.value}).all()
        refused = []
        for first_line, email_key, phone_key, email_reason, phone_reason in found:
            given = [reason for key, reason in ((email_key, email_reason), (phone_key, phone_reason)) if key]
            if SuppressionReason.ERASED in given or all(given):
                refused.append(first_line)
        return self._unstage(refused)

    def refuse_anonymised(self, page: tuple[int, int]) -> list[ParsedContact]:
        """Unstage and return the page's contacts whose external_id names a contact anonymised after
        refusing or never answering a campaign: that row is the proof of why they must not be messaged
        (docs/proof.md) and is never filled in again. Any other anonymised contact (data aged out, or
        anonymised after confirming) gives its external_id up to the person coming back."""
        found = self.conn.execute(text(
            "SELECT s.first_line, c.id, EXISTS (SELECT 1 FROM enrolment e WHERE e.contact_id = c.id "
            "AND e.state IN ('declined', 'expired')) "
            "FROM import_stage s JOIN contact c ON c.external_id = s.external_id "
            "WHERE s.first_line > :after AND s.first_line <= :upto AND c.erased_at IS NOT NULL"
        ), _bounds(page)).all()
        released = [contact_id for _, contact_id, refused in found if not refused]
        if released:
            self.conn.execute(text("UPDATE contact SET external_id = 'erased-' || CAST(id AS VARCHAR) WHERE id IN :ids")
                              .bindparams(bindparam("ids", expanding=True)), {"ids": released})
        return self._unstage([first_line for first_line, _, refused in found if refused])

    def _unstage(self, first_lines: list[int]) -> list[ParsedContact]:
        """Take these rows out of the stage and return them (refused: never written)."""
        if not first_lines:
            return []
        lines = {"lines": first_lines}
        rows = self.conn.execute(text(f"SELECT {self.columns} FROM import_stage WHERE first_line IN :lines "
                                      "ORDER BY first_line").bindparams(bindparam("lines", expanding=True)), lines)
        contacts = [self._contact(row) for row in rows]
        self.conn.execute(text("DELETE FROM import_stage WHERE first_line IN :lines")
                          .bindparams(bindparam("lines", expanding=True)), lines)
        return contacts

    def prior_consents(self, page: tuple[int, int]) -> list[PriorConsent]:
        """The page's written contacts that carry prior-consent cells; the cells leave their attributes."""
        rows = self.conn.execute(text(
            "SELECT c.id, c.email_key, c.phone_key, c.locale, s.attributes FROM import_stage s "
            "JOIN contact c ON c.external_id = s.external_id "
            "WHERE s.first_line > :after AND s.first_line <= :upto AND s.attributes LIKE :marked "
            "ORDER BY s.first_line"), {**_bounds(page), "marked": f"%{PRIOR_ATTRIBUTE}%"}).all()
        found = []
        for contact_id, email_key, phone_key, locale, attributes in rows:
            attributes = json.loads(attributes)
            cells = attributes.pop(PRIOR_ATTRIBUTE, None)
            self.conn.execute(update(Contact).where(col(Contact.id) == contact_id).values(attributes=attributes))
            if cells:
                given = {ch: datetime.fromisoformat(cells[f"{ch}_consent_at"]) for ch in ("email", "sms")
                         if cells.get(f"{ch}_consent_at")}
                found.append(PriorConsent(contact_id, email_key, phone_key, locale, given,
                                          cells.get("consent_source"), cells.get("consent_wording")))
        return found

    def existing(self, page: tuple[int, int]) -> list[tuple[int, ParsedContact]]:
        """The page's contacts already in the database (by external_id), with their ids."""
        rows = self.conn.execute(text(
            f"SELECT c.id, {', '.join('s.' + c for c in self.columns.split(', '))} FROM import_stage s "
            "JOIN contact c ON c.external_id = s.external_id "
            "WHERE s.first_line > :after AND s.first_line <= :upto ORDER BY s.first_line"
        ), _bounds(page)).all()
        return [(row[0], self._contact(row[1:])) for row in rows]

    def insert_new(self, page: tuple[int, int], now: datetime) -> int:
        """Insert the page's contacts not in the database yet, in file order; returns how many."""
        return int(self.conn.execute(self.insert, {**_bounds(page), "now": now}).rowcount)

    def _contact(self, row: Any) -> ParsedContact:
        _first_line, last_line, *cells, keep = row
        values = dict(zip(self.FIELDS, cells, strict=True))
        values["last_activity_at"] = date.fromisoformat(cells[7]) if cells[7] else None
        values["b2b"] = bool(values["b2b"])
        values["attributes"] = json.loads(values["attributes"])
        return ParsedContact(last_line, values, tuple(k for k in keep.split(",") if k))

    def drop(self) -> None:
        self.conn.exec_driver_sql(f"DROP TABLE {self.qualified}")


ANONYMISED_REASON = ("this external_id belongs to a contact anonymised after refusing or not answering a campaign "
                     "(kept as proof of that outcome): not imported")
#: a staged row inside a page (after, upto] of first lines
_IN_PAGE = "first_line > :after AND first_line <= :upto"
#: the upper bound of the last page
_NO_END = 2**62


def _bounds(page: tuple[int, int]) -> dict[str, int]:
    return {"after": page[0], "upto": page[1]}


def _as_row(values: dict[str, Any]) -> dict[str, str]:
    return {c: "" if values.get(c) is None else str(values.get(c)) for c in COLUMNS}


def write_rejects(path: Path, report: ImportReport) -> None:
    """Write every rejected row with its line number, field and reason, and the warnings (rows imported
    without one field) in line order; the last column, ``level``, says which (error or warning)."""
    problems = sorted([*report.rejects, *report.warnings], key=lambda r: r.line)
    extra = sorted({k for r in problems for k in r.row if k not in COLUMNS})
    with path.open("w", newline="", encoding="utf-8") as fh:
        write_csv(fh, ["line", "field", "reason", *COLUMNS, *extra, "level"],
                  ([r.line, r.field, r.reason, *(r.row.get(c, "") for c in (*COLUMNS, *extra)), r.level]
                   for r in problems))


def export_rows(rt: Runtime) -> Iterator[list[str]]:
    """The rows of ``contacts export`` (:func:`orchestrator.contacts.export.export_table`: the import
    format, then consent and suppression per channel, then the extra attribute columns)."""
    from orchestrator.contacts.export import export_table

    return export_table(rt).rows
