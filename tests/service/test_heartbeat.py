"""Heartbeats of dispatchers and schedulers: alive, stale, stopped, and who dispatches."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import func, select
from sqlmodel import Session

from orchestrator.ops import scheduler as sched
from orchestrator.domain.clock import FixedClock, SystemClock
from orchestrator.ops.heartbeat import (
    ALIVE_WITHIN,
    DISPATCHER,
    FORGET_AFTER,
    SCHEDULER,
    Heartbeat,
    service_status,
)
from orchestrator.runtime import Runtime
from orchestrator.store.models import ServiceHeartbeat
from tests.conftest import T0
from tests.service.procs import wait_until


def test_a_process_is_alive_while_it_beats_then_stale_or_stopped(rt: Runtime) -> None:
    clock = FixedClock(T0)  # liveness time: a clock of its own, not rt.clock
    assert not service_status(rt, clock).dispatcher.alive
    assert service_status(rt, clock).dispatcher.last_seen is None

    beat = Heartbeat(rt.engine, DISPATCHER, clock=clock, interval=3600).start()
    status = service_status(rt, clock)
    assert status.dispatching and [p.pid for p in status.dispatcher.processes] == [beat.pid]
    assert not status.scheduler.alive

    clock.advance(ALIVE_WITHIN + timedelta(seconds=1))  # killed: no more beats
    status = service_status(rt, clock)
    assert not status.dispatching and status.dispatcher.last_seen == T0

    beat.beat()  # it beats again
    assert service_status(rt, clock).dispatcher.alive
    beat.stop()  # a graceful stop is seen at once, without waiting for the row to age
    status = service_status(rt, clock)
    assert not status.dispatcher.alive and status.dispatcher.last_seen == clock.now()


def test_a_dispatch_once_run_keeps_counting_until_its_beat_ages(rt: Runtime) -> None:
    clock = FixedClock(T0)
    Heartbeat(rt.engine, DISPATCHER, state="once", clock=clock, interval=3600).start().stop(mark_stopped=False)
    clock.advance(ALIVE_WITHIN - timedelta(seconds=5))  # `dispatch --once` from cron, next run due
    assert service_status(rt, clock).dispatching
    clock.advance(timedelta(seconds=10))
    assert not service_status(rt, clock).dispatching


def test_the_active_schedulers_dispatch_job_counts_as_a_dispatcher(rt: Runtime) -> None:
    clock = FixedClock(T0)
    standby = Heartbeat(rt.engine, SCHEDULER, state="standby", clock=clock, interval=3600).start()
    status = service_status(rt, clock)
    assert status.scheduler.alive and status.active_scheduler is None and not status.dispatching
    active = Heartbeat(rt.engine, SCHEDULER, state="standby", clock=clock, interval=3600).start()
    active.update("active", "dispatch, sweep")
    status = service_status(rt, clock)
    assert status.active_scheduler is not None and status.active_scheduler.jobs == ("dispatch", "sweep")
    assert status.standby_schedulers == 1 and status.scheduler_dispatches and status.dispatching
    active.update("active", "sweep, evergreen")  # the scheduler of `reconsent run`: no dispatch job
    assert not service_status(rt, clock).dispatching
    for beat in (standby, active):
        beat.stop()


def test_the_beat_thread_keeps_the_row_fresh_and_old_rows_are_forgotten(rt: Runtime) -> None:
    old = FixedClock(SystemClock().now() - FORGET_AFTER - timedelta(hours=1))
    Heartbeat(rt.engine, DISPATCHER, clock=old, interval=3600).start().stop()
    beat = Heartbeat(rt.engine, DISPATCHER, interval=0.05).start()  # real clock
    try:
        with Session(rt.engine) as s:
            assert s.execute(select(func.count()).select_from(ServiceHeartbeat)).scalar_one() == 1  # old one gone
            first = s.get(ServiceHeartbeat, beat.id)
            assert first is not None
            seen = first.seen_at

        def moved() -> bool:
            with Session(rt.engine) as s:
                row = s.get(ServiceHeartbeat, beat.id)
                return row is not None and row.seen_at > seen

        wait_until(moved, 10, "a later beat")
    finally:
        beat.stop()


def test_run_scheduler_beats_standby_then_active_then_stopped(make_rt: Callable[..., Runtime]) -> None:
    rt = make_rt(scheduler={"dispatch_cron": "0 3 1 1 *", "sweep_cron": "0 3 1 1 *", "evergreen_cron": "",
                            "retention_cron": "", "lock_lease_seconds": 1.0, "standby_poll_seconds": 0.1})
    holder = sched.leader_lock(rt.engine, sched.LOCK_NAME, 1.0)
    assert holder.acquire()  # another scheduler is active (and writes no heartbeat of its own)
    stop = threading.Event()
    worker = threading.Thread(target=sched.run_scheduler, args=(rt, stop), kwargs={"skip": {"dispatch"}},
                              daemon=True)
    worker.start()
    try:
        wait_until(lambda: service_status(rt).scheduler.alive, 30, "the standby's heartbeat")
        assert service_status(rt).active_scheduler is None and service_status(rt).standby_schedulers == 1
        holder.release()
        wait_until(lambda: service_status(rt).active_scheduler is not None, 30, "the take-over")
        active = service_status(rt).active_scheduler
        assert active is not None and active.jobs == ("sweep", "launch", "pauses")  # dispatch skipped
        assert not service_status(rt).dispatching
    finally:
        stop.set()
        worker.join(30)
        sched._RUNTIME = None
    assert not worker.is_alive() and not service_status(rt).scheduler.alive


def test_reconsent_dispatch_once_beats_and_leaves_its_row_to_age(rt: Runtime) -> None:
    from click.testing import CliRunner

    from orchestrator.cli.main import main

    result = CliRunner().invoke(main, ["dispatch", "--once"], env={"RECONSENT_DATABASE__URL": rt.config.database_url})
    assert result.exit_code == 0, result.output
    status = service_status(rt)
    assert [p.state for p in status.dispatcher.processes] == ["once"] and status.dispatching
