"""store.bulk.insert_rows (the driver's executemany) stores exactly what the ORM stores.

Compared at the driver level (``exec_driver_sql``: SQLite's DATETIME strings and JSON text as they
sit in the file, PostgreSQL's values as psycopg returns them), so a difference in format — not only
in meaning — fails. Runs on SQLite and, with RECONSENT_TEST_PG_URL, on PostgreSQL.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, select

from orchestrator.runtime import Runtime
from orchestrator.store.bulk import insert_rows
from orchestrator.store.models import Contact, SuppressionEntry

_serial = itertools.count()
ZONES = [UTC, timezone(timedelta(hours=-3, minutes=-30)), ZoneInfo("Europe/Paris"), ZoneInfo("America/New_York")]
aware = st.builds(lambda d, z: d.replace(tzinfo=z),
                  st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2100, 1, 1)), st.sampled_from(ZONES))
text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30)
json_values = st.recursive(st.none() | st.booleans() | st.integers(-2**53, 2**53) | text,
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
                           max_leaves=6)


def _raw(session: Session, table: str, columns: list[str], where: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    conn = session.connection()
    sql = f"SELECT {', '.join(columns)} FROM {table} WHERE {where} ORDER BY {columns[0]}"
    if conn.dialect.name == "postgresql":
        sql = sql.replace(":tag", "%(tag)s")
    else:
        sql = sql.replace(":tag", "?")
        params = tuple(params.values())  # type: ignore[assignment]
    return [tuple(r) for r in conn.exec_driver_sql(sql, params)]  # type: ignore[arg-type]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["email", "sms"]), st.sampled_from(["no_response", "unsubscribed"]),
                          st.none() | text, aware), min_size=1, max_size=6))
def test_suppression_rows_match_the_orm(rt: Runtime, rows: list[tuple[str, str, str | None, datetime]]) -> None:
    tag = f"k{next(_serial)}-"
    columns = ["key", "channel", "reason", "source", "created_at"]
    with Session(rt.engine) as s:
        for i, (channel, reason, source, at) in enumerate(rows):
            s.add(SuppressionEntry(key=f"{tag}orm{i:03d}", channel=channel, reason=reason, source=source, created_at=at))
        s.flush()
        insert_rows(s.connection(), SuppressionEntry.__table__, columns,  # type: ignore[attr-defined]
                    [(f"{tag}bulk{i:03d}", *row) for i, row in enumerate(rows)])
        orm = _raw(s, "suppression", columns, "key LIKE :tag", {"tag": f"{tag}orm%"})
        bulk = _raw(s, "suppression", columns, "key LIKE :tag", {"tag": f"{tag}bulk%"})
        s.rollback()
    assert len(orm) == len(bulk) == len(rows)
    assert [r[1:] for r in bulk] == [r[1:] for r in orm]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.none() | text, st.booleans(), st.none() | st.dates(date(1970, 1, 1), date(2100, 1, 1)),
                          st.none() | aware, st.dictionaries(text, json_values, max_size=3), aware),
                min_size=1, max_size=5))
def test_contact_rows_with_json_dates_and_booleans_match_the_orm(
        rt: Runtime, rows: list[tuple[str | None, bool, date | None, datetime | None, dict[str, Any], datetime]]) -> None:
    tag = f"c{next(_serial)}-"
    columns = ["external_id", "kind", "first_name", "locale", "b2b", "last_activity_at", "consented_at", "attributes",
               "created_at", "updated_at"]
    with Session(rt.engine) as s:
        for i, (first, b2b, last, consented, attributes, at) in enumerate(rows):
            s.add(Contact(external_id=f"{tag}orm{i:03d}", kind="customer", first_name=first, locale="en", b2b=b2b,
                          last_activity_at=last, consented_at=consented, attributes=attributes, created_at=at,
                          updated_at=at))
        s.flush()
        insert_rows(s.connection(), Contact.__table__, columns,  # type: ignore[attr-defined]
                    [(f"{tag}bulk{i:03d}", "customer", first, "en", b2b, last, consented, attributes, at, at)
                     for i, (first, b2b, last, consented, attributes, at) in enumerate(rows)])
        orm = _raw(s, "contact", columns, "external_id LIKE :tag", {"tag": f"{tag}orm%"})
        bulk = _raw(s, "contact", columns, "external_id LIKE :tag", {"tag": f"{tag}bulk%"})
        s.rollback()
    assert len(orm) == len(bulk) == len(rows)
    assert [r[1:] for r in bulk] == [r[1:] for r in orm]


def test_ignore_conflicts_keeps_the_existing_row(rt: Runtime) -> None:
    now = rt.clock.now()
    columns = ["key", "channel", "reason", "source", "created_at"]
    with Session(rt.engine) as s:
        s.add(SuppressionEntry(key="k1", channel="email", reason="unsubscribed", source="page", created_at=now))
        s.flush()
        insert_rows(s.connection(), SuppressionEntry.__table__, columns,  # type: ignore[attr-defined]
                    [("k1", "email", "no_response", "sweep", now), ("k2", "email", "no_response", "sweep", now)],
                    ignore_conflicts=True)
        s.commit()
        reasons = {e.key: e.reason for e in s.exec(select(SuppressionEntry))}
    assert reasons == {"k1": "unsubscribed", "k2": "no_response"}


def test_insert_rows_of_nothing_is_a_no_op(rt: Runtime) -> None:
    with Session(rt.engine) as s:
        insert_rows(s.connection(), SuppressionEntry.__table__, ["key"], [])  # type: ignore[attr-defined]
        assert s.exec(select(SuppressionEntry)).all() == []


def test_a_column_default_must_be_given(rt: Runtime) -> None:
    import pytest

    with Session(rt.engine) as s, pytest.raises(ValueError, match="locale"):
        insert_rows(s.connection(), Contact.__table__, ["external_id", "kind", "attributes", "created_at",  # type: ignore[attr-defined]
                                                        "updated_at"], [("x", "customer", {}, rt.clock.now(), rt.clock.now())])
