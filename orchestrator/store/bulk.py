"""Many-row INSERTs through the driver's ``executemany``, for the sweep's millions of rows.

A Core ``insert(table)`` executed with a list of dicts spends most of its time binding: for every
row and column SQLAlchemy looks up the column's bind processor and builds a new parameter set
(~45 % of the sweep on SQLite, bench/RESULTS.md). Here the statement is compiled once per table,
columns and dialect, each column's *own* bind processor is looked up once, and the rows go to the
driver as plain tuples. The stored values are therefore the ones a Core or ORM insert writes (the
same processors run: SQLite's DATETIME string format, etc.); tests/orchestrator/store/test_bulk.py
pins that byte for byte against the ORM on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Dialect

_Statement = tuple[str, tuple[int, ...] | tuple[str, ...], list[tuple[int, Callable[[Any], Any]]]]
_compiled: dict[tuple[str, str, tuple[str, ...], bool], _Statement] = {}


def insert_rows(conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]], *,
                ignore_conflicts: bool = False) -> None:
    """INSERT ``rows`` (tuples of Python values in ``columns`` order) into ``table`` on ``conn``,
    inside its current transaction. ``ignore_conflicts``: ``ON CONFLICT DO NOTHING`` (SQLite and
    PostgreSQL), so a row whose key exists already is skipped and the existing one kept.
    """
    if not rows:
        return
    sql, order, processors = _statement(conn.dialect, table, tuple(columns), ignore_conflicts)
    if processors:
        rows = _processed(rows, processors)
    if order and type(order[0]) is int:  # positional paramstyle (sqlite3: qmark)
        if order == tuple(range(len(order))):
            params: list[Any] = [tuple(r) for r in rows]
        else:
            params = [tuple(r[i] for i in order) for r in rows]
    else:  # named paramstyle (psycopg: pyformat)
        params = [dict(zip(order, r, strict=False)) for r in rows]
    conn.exec_driver_sql(sql, params)


def _statement(dialect: Dialect, table: Table, columns: tuple[str, ...], ignore_conflicts: bool) -> _Statement:
    key = (dialect.name, table.name, columns, ignore_conflicts)
    found = _compiled.get(key)
    if found is not None:
        return found
    if not ignore_conflicts:
        stmt: Any = insert(table)
    elif dialect.name == "postgresql":
        stmt = pg_insert(table).on_conflict_do_nothing()
    elif dialect.name == "sqlite":
        stmt = sqlite_insert(table).on_conflict_do_nothing()
    else:
        raise NotImplementedError(f"insert_rows(ignore_conflicts=True) on {dialect.name}")
    compiled = stmt.compile(dialect=dialect, column_keys=list(columns))
    names = list(compiled.positiontup) if compiled.positional else list(compiled.bind_names.values())
    if sorted(names) != sorted(columns):  # a column default would need a value we were not given
        raise ValueError(f"insert_rows: statement binds {names}, expected {list(columns)} (list every "
                         "column that has a default)")
    # positional: the statement's order (the table's) as indexes into ``columns``; named: the names
    order: tuple[int, ...] | tuple[str, ...] = (tuple(columns.index(n) for n in names) if compiled.positional
                                                else columns)
    processors: list[tuple[int, Callable[[Any], Any]]] = []
    for i, name in enumerate(columns):
        process = table.c[name].type._cached_bind_processor(dialect)
        if process is not None:
            processors.append((i, process))
    statement: _Statement = (compiled.string, order, processors)
    _compiled[key] = statement
    return statement


def _processed(rows: Sequence[Sequence[Any]], processors: list[tuple[int, Callable[[Any], Any]]]) -> list[list[Any]]:
    """Apply each column's bind processor (to None too: JSON stores it as ``null``). A datetime
    repeated across rows (a batch's one timestamp) is converted once; the memo key includes the
    tzinfo because equal instants in different zones are different wall times."""
    memo: dict[tuple[Any, ...], Any] = {}
    out = []
    for row in rows:
        values = list(row)
        for i, process in processors:
            value = values[i]
            if type(value) is datetime:
                key = (i, value, value.tzinfo, value.fold)
                try:
                    values[i] = memo[key]
                except KeyError:
                    values[i] = memo[key] = process(value)
            else:
                values[i] = process(value)
        out.append(values)
    return out
