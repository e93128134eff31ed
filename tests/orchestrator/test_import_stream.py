"""The streaming import (chunks, worker processes, a staging table, set-based writes) gives exactly
what the straightforward one gives: every row in memory, merged in a dict, written one by one."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import delete, select
from sqlmodel import Session

from orchestrator.contacts import service as contacts_module
from orchestrator.consent.service import suppress
from orchestrator.contacts.rows import row_problem
from orchestrator.contacts.service import COLUMNS, RowError, import_contacts, parse_row, read_rows
from orchestrator.domain.model import SuppressionReason
from orchestrator.errors import InputError
from orchestrator.runtime import Runtime
from orchestrator.store.models import Contact, SuppressionEntry

HEADER = [*COLUMNS, "loyalty"]
SUPPRESSED = [("sup@example.org", "email", "unsubscribed"), ("+33699999999", "sms", "sms_stop"),
              ("gone@example.org", "email", SuppressionReason.ERASED)]
REFUSED = "on the suppression list (opted out, erased or expired): not imported"


def reference_import(rt: Runtime, session: Session, path: Path) -> tuple[dict[str, int], list[Any]]:
    """The obvious algorithm: parse every row, merge duplicates in a dict, check and write one by one."""
    cfg = rt.config.contacts
    rejects: list[Any] = []
    by_id: dict[str, tuple[int, dict[str, Any]]] = {}
    keep: dict[str, set[str]] = {}  # address fields dropped with a warning, by external_id (the last row's)
    counts = {"read": 0, "created": 0, "updated": 0, "merged": 0}
    for line, raw in read_rows(path):
        counts["read"] += 1
        problem = row_problem(raw, line)
        if problem is not None:
            rejects.append((line, problem.field, problem.reason, raw))
            continue
        warnings: list[RowError] = []
        try:
            values = parse_row(raw, default_region=cfg.default_region, default_locale=cfg.default_locale,
                               warnings=warnings)
        except RowError as err:
            rejects.append((line, err.field, err.reason, raw))
            continue
        keep[values["external_id"]] = {w.field for w in warnings}
        values["email_key"] = rt.key_for(values["email"]) if values["email"] else None
        values["phone_key"] = rt.key_for(values["phone"]) if values["phone"] else None
        if values["external_id"] in by_id:
            counts["merged"] += 1
            earlier = by_id[values["external_id"]][1]
            values = {**earlier, **{k: v for k, v in values.items() if v not in (None, {}, "")}}
        by_id[values["external_id"]] = (line, values)  # a dict keeps the first occurrence's place
    now = rt.clock.now()
    for line, v in by_id.values():
        given = [(k, c) for k, c in ((v["email_key"], "email"), (v["phone_key"], "sms")) if k]
        entries = [session.get(SuppressionEntry, kc) for kc in given]
        reasons = [e.reason if e else None for e in entries]
        if given and (SuppressionReason.ERASED in reasons or all(reasons)):
            row = {c: "" if v.get(c) is None else str(v.get(c)) for c in COLUMNS}
            rejects.append((line, "email" if v["email"] else "phone", REFUSED, row))
            continue
        existing = session.execute(select(Contact).where(Contact.external_id == v["external_id"])).scalar_one_or_none()
        if existing is None:
            session.add(Contact(**v, created_at=now, updated_at=now))
            counts["created"] += 1
        else:
            kept = {f for f in keep[v["external_id"]] if v[f] is None}
            kept |= {f"{f}_key" for f in kept}
            for k, value in v.items():
                if k not in kept:
                    setattr(existing, k, value)
            existing.updated_at = now
            counts["updated"] += 1
        session.flush()
    return counts, rejects


def stored_contacts(session: Session) -> list[tuple[Any, ...]]:
    """Every contact column as stored (raw driver values), in id order, without the id itself."""
    rows = session.connection().exec_driver_sql(
        "SELECT external_id, kind, email, phone, email_key, phone_key, first_name, locale, timezone, "
        "last_activity_at, consented_at, b2b, attributes, created_at, updated_at, erased_at FROM contact ORDER BY id"
    ).all()
    return [tuple(r) for r in rows]


def write_rows(path: Path, rows: list[tuple[list[str], bool]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        for cells, extra_cell in rows:
            writer.writerow([*cells, "surplus"] if extra_cell else cells)
    return path


def reset(rt: Runtime) -> None:
    """Empty contacts and suppression list, then the same starting state for both imports."""
    with Session(rt.engine) as s:
        s.execute(delete(Contact))
        s.execute(delete(SuppressionEntry))
        for address, channel, reason in SUPPRESSED:
            suppress(s, rt.key_for(address), channel, reason, "test", rt.clock.now())
        s.add(Contact(external_id="C-3", kind="customer", email="old@example.org", email_key=rt.key_for("old@example.org"),
                      phone="+33612340003", phone_key=rt.key_for("+33612340003"), first_name="Ancien",
                      attributes={"loyalty": "bronze"}, created_at=rt.clock.now(), updated_at=rt.clock.now()))
        s.commit()


def compare(rt: Runtime, path: Path, *, workers: int, chunk_rows: int, batch: int) -> None:
    reset(rt)
    with Session(rt.engine) as s:
        counts, expected_rejects = reference_import(rt, s, path)
        expected = stored_contacts(s)
        s.rollback()
    with mock.patch.object(contacts_module, "BATCH", batch):
        report = import_contacts(rt, path, workers=workers, chunk_rows=chunk_rows)
    with Session(rt.engine) as s:
        assert stored_contacts(s) == expected
    assert [(r.line, r.field, r.reason, r.row) for r in report.rejects] == expected_rejects
    assert (report.read, report.created, report.updated, report.merged_duplicates) == (
        counts["read"], counts["created"], counts["updated"], counts["merged"])


_BAD = [(0, ""), (1, "friend"), (2, "not-an-email"), (3, "12"), (3, "+33 1 00"), (5, "x1"), (6, "Mars/Olympus"),
        (7, "yesterday"), (8, "maybe")]


def _spoil(cells: list[str], bad: tuple[int, str] | None) -> list[str]:
    if bad is None:
        return cells
    if bad == (3, ""):
        cells[2] = ""  # neither email nor phone
    cells[bad[0]] = bad[1]
    return cells


_row = st.tuples(
    st.tuples(
        st.sampled_from(["C-1", "C-2", "C-3", "c-1", " C-2 "]),
        st.sampled_from(["customer", "Prospect", " CUSTOMER"]),
        st.sampled_from(["", "a@example.org", "A@Example.ORG", "b@Exemple.FR", "sup@example.org", "gone@example.org",
                         "zoé@exemple.fr"]),
        st.sampled_from(["", "+33612345678", "06 12 34 56 79", "+33699999999", "+447911123456"]),
        st.sampled_from(["", "Ann", "Zoé"]),
        st.sampled_from(["", "fr", "en_GB"]),
        st.sampled_from(["", "Europe/Paris"]),
        st.sampled_from(["", "2024-01-15", "2023-05-01T10:00:00"]),
        st.sampled_from(["", "true", "false", "1"]),
        st.sampled_from(["", "gold"]),
    ).map(list),
    st.sampled_from([None] * 12 + [*_BAD, (3, "")]),  # about one row in two is spoilt in one field
).map(lambda t: (_spoil(*t), False)) | st.just(  # or has more cells than the header
    (["C-9", "customer", "x@example.org", "", "", "", "", "", "", ""], True))


@given(rows=st.lists(_row, max_size=16), chunk_rows=st.integers(1, 5), batch=st.integers(1, 4))
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_streaming_import_equals_the_straightforward_one(rt: Runtime, tmp_path: Path, rows: list[Any],
                                                         chunk_rows: int, batch: int) -> None:
    """Duplicates across chunk and page boundaries, bad and suppressed addresses, mixed case."""
    compare(rt, write_rows(tmp_path / "messy.csv", rows), workers=1, chunk_rows=chunk_rows, batch=batch)


def test_worker_processes_give_the_same_result(rt: Runtime, tmp_path: Path) -> None:
    emails = ["a@example.org", "A@Example.ORG", "not-an-email", "sup@example.org", "gone@example.org", ""]
    phones = ["+33612345678", "06 12 34 56 79", "12", "", "+33699999999"]
    rows = [([f"C-{i % 7}", "customer" if i % 3 else "Prospect", emails[i % 6], phones[i % 5], f"N{i}" if i % 4 else "",
              "fr", "Europe/Paris" if i % 2 else "", "2024-01-15" if i % 5 else "", "true" if i % 2 else "",
              "gold" if i % 6 == 0 else ""], i == 11) for i in range(40)]
    compare(rt, write_rows(tmp_path / "messy.csv", rows), workers=2, chunk_rows=3, batch=2)


def test_a_failed_import_leaves_no_staging_table_behind(rt: Runtime, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"  # the quote opened on line 3 is never closed: refused after line 2 was staged
    bad.write_bytes(b'external_id,kind,email\nC-1,customer,a@example.org\nC-2,customer,"h@example.org\n')
    good = write_rows(tmp_path / "good.csv", [(["C-1", "customer", "a@example.org", "", "", "", "", "", "", ""], False)])
    with pytest.raises(InputError, match="line 3: a quote"):
        import_contacts(rt, bad, chunk_rows=1)
    assert import_contacts(rt, good).created == 1  # the same pooled connection stages again
