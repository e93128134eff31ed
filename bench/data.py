"""Test data for the benchmarks: a contacts CSV, a bulk-loaded contact table, database copies.

Everything here is set-up, never timed: the figures measure the product's own code paths.
"""

from __future__ import annotations

import csv
import shutil
import uuid
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert, text

from orchestrator.config import DEFAULT_CONFIG, load_config
from orchestrator.domain.clock import FixedClock
from orchestrator.runtime import Runtime, runtime_in
from orchestrator.store.db import migrate
from orchestrator.store.models import Contact

#: a Wednesday morning, inside every send window
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc)
HEADER = ["external_id", "kind", "email", "phone", "first_name", "locale", "timezone", "last_activity_at", "b2b"]
CHUNK = 10_000


def person(i: int) -> list[str]:
    """Row i of the synthetic audience: inactive customers and prospects, French and English."""
    return [
        f"B-{i}", "customer" if i % 4 else "prospect", f"person{i}@example{i % 97}.org",
        f"+336{i % 100_000_000:08d}", f"Prénom{i}" if i % 2 else f"Name{i}", "fr" if i % 3 else "en",
        "Europe/Paris", "2021-06-15" if i % 4 == 0 else "2024-01-15", "false",
    ]


def write_csv(path: Path, n: int) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        for start in range(0, n, CHUNK):
            writer.writerows(person(i) for i in range(start, min(n, start + CHUNK)))
    return path


def runtime(url: str, base_dir: Path, clock: FixedClock | None = None, **sections: dict[str, Any]) -> Runtime:
    sections.setdefault("public", {"base_url": "https://prefs.example.com"})
    return runtime_in(base_dir, load_config(DEFAULT_CONFIG, env={}), clock or FixedClock(T0), database_url=url, **sections)


def load_contacts(rt: Runtime, n: int) -> None:
    """Bulk-insert n valid contacts (with their suppression keys) without the CSV import path."""
    now = rt.clock.now()
    with rt.engine.begin() as conn:
        for start in range(0, n, CHUNK):
            rows = []
            for i in range(start, min(n, start + CHUNK)):
                ext, kind, email, phone, first, locale, tz, last, _ = person(i)
                rows.append({
                    "external_id": ext, "kind": kind, "email": email, "phone": phone, "first_name": first,
                    "locale": locale, "timezone": tz, "last_activity_at": date.fromisoformat(last), "b2b": False,
                    "email_key": rt.key_for(email), "phone_key": rt.key_for(phone), "attributes": {},
                    "created_at": now, "updated_at": now,
                })
            conn.execute(insert(Contact), rows)
    rt.engine.dispose()  # no idle pooled connection may stay: PostgreSQL copies need the database unused


class Databases:
    """Fresh databases for one benchmark run: SQLite files in a folder, or PostgreSQL databases."""

    def __init__(self, kind: str, workdir: Path, pg_url: str = "") -> None:
        self.kind = kind
        self.workdir = workdir
        self.pg_url = pg_url
        self.made: list[str] = []

    def url(self, name: str) -> str:
        if self.kind == "sqlite":
            return f"sqlite:///{self.workdir / (name + '.db')}"
        return self.pg_url.rsplit("/", 1)[0] + "/" + name

    def fresh(self, label: str) -> str:
        """A new, migrated, empty database."""
        name = f"b7_{label}_{uuid.uuid4().hex[:6]}"
        if self.kind == "postgresql":
            self._admin(f'CREATE DATABASE "{name}"')
        self.made.append(name)
        url = self.url(name)
        engine = create_engine(url)
        try:
            migrate(engine)
        finally:
            engine.dispose()
        return url

    def copy(self, source_url: str, label: str) -> str:
        name = f"b7_{label}_{uuid.uuid4().hex[:6]}"
        source = source_url.rsplit("/", 1)[-1]
        if self.kind == "sqlite":
            engine = create_engine(source_url)
            with engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            engine.dispose()
            shutil.copyfile(source_url.split("///", 1)[1], self.workdir / (name + ".db"))
        else:
            self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
        self.made.append(name)
        return self.url(name)

    def size_mb(self, url: str) -> float:
        if self.kind == "sqlite":
            path = Path(url.split("///", 1)[1])
            return sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 1e6
        engine = create_engine(url)
        with engine.connect() as conn:
            size = conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
        engine.dispose()
        return float(size) / 1e6

    def drop_all(self) -> None:
        for name in self.made:
            if self.kind == "sqlite":
                for p in self.workdir.glob(name + ".db*"):
                    p.unlink()
            else:
                self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.made.clear()

    def _admin(self, sql: str) -> None:
        admin = create_engine(self.pg_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(text(sql))
        finally:
            admin.dispose()
