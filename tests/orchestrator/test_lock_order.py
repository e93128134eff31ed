"""Consent writers take their locks in one order — the person's request (enrolment rows), then
suppression entries, then the ledger's chain head — so that two of them never wait for each other in
a circle. On PostgreSQL a circle is a deadlock: the server aborts one transaction, and when that is
the person's unsubscribe, their answer is lost.

The case pinned here: the deadline sweep has expired a batch of requests (their rows are locked
until it commits) when a one-click unsubscribe of a person of that batch arrives. The old
unsubscribe took the chain head first, then waited for the request's row; the sweep then waited for
the chain head: deadlock. Now the unsubscribe waits at the request's row, holding nothing the sweep
needs; once the sweep commits, the unsubscribe goes through (the address is already suppressed by the
sweep; the withdrawal is still recorded in the ledger).

On SQLite, writers are serialised by the database's write lock (no deadlock possible); the test runs
there too and must pass the same way.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlmodel import Session, select

from orchestrator.campaigns import sweep as sweep_module
from orchestrator.consent import ledger
from orchestrator.consent.ledger import Proof
from orchestrator.consent.service import record_unsubscribe
from orchestrator.domain.clock import FixedClock
from orchestrator.runtime import Runtime
from orchestrator.store.models import ConsentEvent, SuppressionEntry
from tests.support.factories import launch, person


def test_an_unsubscribe_during_the_sweep_of_its_campaign_is_not_lost(
        make_rt: Callable[..., Runtime], write_csv: Callable[..., Path], clock: FixedClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sweep_module, "BATCH", 10)
    rt = make_rt()
    campaign_id = launch(rt, write_csv([person(i) for i in range(1, 5)]))
    clock.advance(timedelta(days=31))

    swept_rows, unsubscribing = threading.Event(), threading.Event()
    errors: dict[str, BaseException] = {}
    outcome: dict[str, Any] = {}

    def pause_after_the_requests(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        # the sweep has just expired the batch's requests: hold its transaction open a moment while
        # the unsubscribe runs into them
        if threading.current_thread().name == "sweeper" and statement.lstrip().upper().startswith("UPDATE ENROLMENT") \
                and not swept_rows.is_set():
            swept_rows.set()
            unsubscribing.wait(10)
            time.sleep(1.5)  # the unsubscribe is now waiting (PostgreSQL reports a deadlock after 1 s)

    event.listen(rt.engine, "after_cursor_execute", pause_after_the_requests)

    def sweeper() -> None:
        try:
            outcome["sweep"] = sweep_module.sweep(rt)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors["sweep"] = exc

    def unsubscriber() -> None:
        swept_rows.wait(10)
        unsubscribing.set()
        try:
            outcome["unsubscribe"] = record_unsubscribe(
                rt, 2, campaign_id, "email", Proof(source="one_click", campaign_id=campaign_id))
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors["unsubscribe"] = exc

    threads = [threading.Thread(target=sweeper, name="sweeper"), threading.Thread(target=unsubscriber)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    event.remove(rt.engine, "after_cursor_execute", pause_after_the_requests)

    assert swept_rows.is_set(), "the sweep never expired the batch"
    assert not errors, errors
    assert outcome["sweep"].expired == 4
    with Session(rt.engine) as s:
        withdrawn = s.exec(select(ConsentEvent).where(ConsentEvent.contact_id == 2,
                                                      ConsentEvent.action == "withdrawn")).all()
        entry = s.exec(select(SuppressionEntry).where(SuppressionEntry.key == rt.key_for("person2@example.org"),
                                                      SuppressionEntry.channel == "email")).one()
        assert ledger.verify(s).broken_at is None
    assert [e.source for e in withdrawn] == ["one_click"]  # the person's unsubscribe is in the ledger
    assert entry.reason in ("no_response", "unsubscribed")
