"""A dead claimant's rows are taken over at once; a live one's never [issue 14 §6].

PostgreSQL: a dispatcher is alive while its advisory lock is held. SQLite: while its process runs on
this host (a pid reused by a later process does not count). The kill -9 test with real processes is
tests/service/test_processes.py::test_a_killed_dispatchers_claims_are_taken_over_in_seconds_not_after_the_lease.
"""

from __future__ import annotations

import doctest
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import update
from sqlmodel import Session, select

from orchestrator.delivery import claimants
from orchestrator.delivery.claimants import process_alive, process_start
from orchestrator.delivery.worker import Dispatcher
from orchestrator.runtime import Runtime
from orchestrator.store.models import DispatchWorker, OutboxMessage
from tests.support.factories import launch, person

EMAIL_ONLY = [{"day": 0, "channel": "email", "template": "reconsent"}]


def test_doctests() -> None:
    assert doctest.testmod(claimants).failed == 0


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_process_liveness_tells_a_reused_pid_and_a_gone_process() -> None:
    me = os.getpid()
    assert process_alive(me, process_start(me))
    assert process_alive(me, 0)  # start time unknown: the pid alone
    assert not process_alive(me, process_start(me) + 1)  # same pid, another process: the claimant is gone
    assert not process_alive(dead_pid(), 0)


def test_a_dead_claimants_rows_are_taken_over_at_once_and_a_live_ones_are_not(
    make_rt: Callable[..., Runtime], write_csv: Callable[..., Path]
) -> None:
    rt = make_rt()
    launch(rt, write_csv([person(i) for i in range(1, 6)]), steps=EMAIL_ONLY)
    first, second = Dispatcher(rt, {}), Dispatcher(rt, {})
    try:
        _, rows = first.claim()  # a 300 s lease
        assert len(rows) == 5
        assert second.claim()[1] == []  # the first one lives: its rows stay its own
        # the first one dies: its lock connection goes (PostgreSQL), its process is gone (SQLite)
        first.registration._drop()
        with Session(rt.engine) as s:
            s.execute(update(DispatchWorker).where(DispatchWorker.id == first.worker_id)  # type: ignore[arg-type]
                      .values(pid=dead_pid(), proc_start=0))
            s.commit()
        second._checked_at = -10.0  # (checks are at most once a second per worker)
        taken_id, taken = second.claim()
        assert sorted(taken) == sorted(rows)  # at once, with 300 s of lease left
        with Session(rt.engine) as s:
            assert {r.claimed_by for r in s.exec(select(OutboxMessage))} == {taken_id}
            assert [w.id for w in s.exec(select(DispatchWorker))] == [second.worker_id]  # the dead one forgotten
    finally:
        first.registration.close()
        second.registration.close()
