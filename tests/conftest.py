"""Factory fixtures shared by the suite (starlette's test_client_factory style).

The database is SQLite in a temporary folder, or PostgreSQL when RECONSENT_TEST_PG_URL is set (then
each test gets its own fresh database). The clock is frozen on a Wednesday morning in Paris.
"""

from __future__ import annotations

import csv
import os
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from orchestrator.config import DEFAULT_CONFIG, load_config
from orchestrator.domain.clock import FixedClock
from orchestrator.proof.receipt_keys import new_key
from orchestrator.runtime import Runtime, runtime_in
from orchestrator.store.db import migrate
from tests.support.smtp import SmtpServer
from tests.support.factories import CSV_HEADER
from tests.support.twilio_standin import TwilioStandIn

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc)  # a Wednesday, 10:00 in Paris
PG_URL = os.environ.get("RECONSENT_TEST_PG_URL", "")

for _var in ("TWILIO_EDGE", "TWILIO_REGION", "RECONSENT_NOW", "RECONSENT_CONFIG"):
    os.environ.pop(_var, None)


def _database_url(tmp_path: Path) -> Iterator[str]:
    if not PG_URL:
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    name = "t_" + uuid.uuid4().hex[:12]
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield PG_URL.rsplit("/", 1)[0] + "/" + name
    for attempt in range(10):  # an autovacuum worker on the fresh database can refuse FORCE for a moment
        try:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            break
        except DBAPIError:
            if attempt == 9:
                raise
            time.sleep(0.5)
    admin.dispose()


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    yield from _database_url(tmp_path)


#: the receipt key of the tests' instances (Ed25519, made once per run)
TEST_RECEIPT_KEY = new_key()[0]


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def make_rt(tmp_path: Path, database_url: str, clock: FixedClock) -> Iterator[Callable[..., Runtime]]:
    """Build a migrated Runtime; keyword arguments override config sections: email={"transport": …}."""
    made: list[Runtime] = []

    def factory(**sections: dict[str, Any]) -> Runtime:
        sections.setdefault("public", {"base_url": "https://prefs.example.com"})
        # an https instance: it has a receipt key of its own (without one, receipts are off)
        sections.setdefault("receipts", {"signing_key": TEST_RECEIPT_KEY})
        rt = runtime_in(tmp_path, load_config(DEFAULT_CONFIG, env={}), clock, database_url=database_url, **sections)
        if not made:
            migrate(rt.engine)
        made.append(rt)
        return rt

    yield factory
    for rt in made:
        rt.engine.dispose()


@pytest.fixture
def rt(make_rt: Callable[..., Runtime]) -> Runtime:
    return make_rt()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def twilio() -> Iterator[TwilioStandIn]:
    standin = TwilioStandIn().start()
    yield standin
    standin.stop()






@pytest.fixture
def write_csv(tmp_path: Path) -> Callable[..., Path]:
    def write(rows: list[dict[str, str]], name: str = "contacts.csv", header: list[str] | None = None) -> Path:
        path = tmp_path / name
        cols = header or CSV_HEADER + sorted({k for r in rows for k in r} - set(CSV_HEADER))
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=cols)
            writer.writeheader()
            for r in rows:
                writer.writerow({c: r.get(c, "") for c in cols})
        return path

    return write
