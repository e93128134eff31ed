"""The scheduler in-process: jobs from config, the database job store, catch-up of missed runs,
the single-active lock (lease row; PostgreSQL advisory lock), evergreen enrolment."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from orchestrator.ops import scheduler as sched
from orchestrator.domain.clock import FixedClock
from orchestrator.errors import ConfigError
from orchestrator.campaigns.evergreen import enrol_newcomers
from orchestrator.ops.locks import AdvisoryLock, LeaseLock, leader_lock
from orchestrator.runtime import Runtime
from orchestrator.store.models import Campaign, Enrolment, OutboxMessage, SchedulerJob
from tests.conftest import T0
from tests.service import probe
from tests.support.factories import person


@pytest.fixture
def probe_job(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Only the probe job type, on the sweep_cron setting."""
    monkeypatch.setattr(sched, "JOB_TYPES", {})
    sched.register_job_type("probe", "tests.service.probe:probe", "sweep_cron")
    probe.RUNS.clear()
    probe.RAN.clear()
    yield
    sched._RUNTIME = None


def test_jobs_come_from_config_and_an_empty_expression_turns_one_off(make_rt: Callable[..., Runtime]) -> None:
    rt = make_rt(scheduler={"dispatch_cron": "*/2 * * * *", "sweep_cron": "", "evergreen_cron": "0 4 * * *",
                            "retention_cron": ""})
    names = [name for name, _, _ in sched.jobs(rt)]
    assert names == ["dispatch", "evergreen", "launch"]  # launch_cron: every minute by default
    bad = make_rt(scheduler={"sweep_cron": "every day"})
    with pytest.raises(ConfigError, match="scheduler.sweep_cron: expected a 5-field cron"):
        sched.jobs(bad)
    missing = make_rt(scheduler={"retention_cron": "0 5 * * *"})
    sched.register_job_type("retention", "orchestrator.no_such_module:run", "retention_cron")
    try:
        with pytest.raises(ConfigError, match="does not exist"):
            sched.jobs(missing)
    finally:
        sched.register_job_type("retention", "orchestrator.proof.retention:run_retention", "retention_cron")


def _next_hour_cron() -> str:
    minute = (datetime.now(timezone.utc).minute + 30) % 60  # never fires during the test
    return f"{minute} * * * *"


def test_jobs_persist_and_runs_missed_while_down_run_once_on_start(
    make_rt: Callable[..., Runtime], probe_job: None
) -> None:
    rt = make_rt(scheduler={"sweep_cron": _next_hour_cron(), "misfire_grace_seconds": 6 * 3600})
    first = sched.build_scheduler(rt)
    first.start(paused=True)
    assert sched.sync_jobs(first, rt) == ["probe"]
    # pretend this scheduler went down five hours ago: five hourly runs were missed since
    first.modify_job("probe", next_run_time=datetime.now(timezone.utc) - timedelta(hours=5))
    first.shutdown(wait=True)
    with Session(rt.engine) as s:
        assert s.execute(select(func.count()).select_from(SchedulerJob)).scalar_one() == 1

    second = sched.build_scheduler(rt)
    second.start(paused=True)
    sched.sync_jobs(second, rt)  # same cron: the stored (overdue) next run time is kept
    second.resume()
    try:
        assert probe.RAN.wait(60)
        job = second.get_job("probe")
        assert job is not None and job.next_run_time > datetime.now(timezone.utc)
    finally:
        second.shutdown(wait=True)
    assert len(probe.RUNS) == 1  # coalesced: once, not five times


def test_a_missed_run_older_than_the_grace_time_is_not_run(make_rt: Callable[..., Runtime], probe_job: None) -> None:
    rt = make_rt(scheduler={"sweep_cron": _next_hour_cron(), "misfire_grace_seconds": 60})
    first = sched.build_scheduler(rt)
    first.start(paused=True)
    sched.sync_jobs(first, rt)
    first.modify_job("probe", next_run_time=datetime.now(timezone.utc) - timedelta(hours=5))
    first.shutdown(wait=True)
    second = sched.build_scheduler(rt)
    second.start(paused=True)
    sched.sync_jobs(second, rt)
    second.resume()
    try:
        # the scheduler rolls the job forward (skipping the stale run) without calling it
        def rolled() -> bool:
            job = second.get_job("probe")
            return job is not None and job.next_run_time > datetime.now(timezone.utc)

        from tests.service.procs import wait_until

        wait_until(rolled, 30, "the missed run to be skipped")
    finally:
        second.shutdown(wait=True)
    assert probe.RUNS == []


def test_a_changed_cron_expression_replaces_the_stored_job(make_rt: Callable[..., Runtime], probe_job: None) -> None:
    rt = make_rt(scheduler={"sweep_cron": "0 3 * * *"})
    s1 = sched.build_scheduler(rt)
    s1.start(paused=True)
    sched.sync_jobs(s1, rt)
    s1.shutdown(wait=True)
    rt2 = make_rt(scheduler={"sweep_cron": "0 4 * * *"})
    s2 = sched.build_scheduler(rt2)
    s2.start(paused=True)
    sched.sync_jobs(s2, rt2)
    try:
        job = s2.get_job("probe")
        assert job is not None and "hour='4'" in str(job.trigger)
    finally:
        s2.shutdown(wait=True)


def test_lease_lock_one_holder_and_takeover_after_expiry(rt: Runtime) -> None:
    clock = FixedClock(T0)
    a = LeaseLock(rt.engine, "scheduler", 30, clock, holder="a")
    b = LeaseLock(rt.engine, "scheduler", 30, clock, holder="b")
    assert a.acquire()
    assert not b.acquire()
    clock.advance(timedelta(seconds=20))
    assert a.renew()
    clock.advance(timedelta(seconds=20))  # 40 s after taking it, 20 s after renewing
    assert not b.acquire()
    clock.advance(timedelta(seconds=11))  # a died: its lease ran out
    assert b.acquire()
    assert not a.renew()  # a comes back: it must step down
    b.release()
    assert a.acquire()


def test_the_lock_matches_the_database(rt: Runtime) -> None:
    lock = leader_lock(rt.engine, "scheduler", 30)
    other = leader_lock(rt.engine, "scheduler", 30)
    expected = AdvisoryLock if rt.engine.dialect.name == "postgresql" else LeaseLock
    assert isinstance(lock, expected)
    assert lock.acquire()
    try:
        assert lock.acquire()  # idempotent for the holder
        assert not other.acquire()
        assert lock.renew()
    finally:
        lock.release()
    assert other.acquire()
    other.release()


def test_standby_in_process_takes_over_when_the_active_one_stops(
    make_rt: Callable[..., Runtime], probe_job: None, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.service.procs import wait_until

    caplog.set_level("INFO", logger="reconsent.scheduler")
    rt = make_rt(scheduler={"sweep_cron": "0 3 1 1 *", "lock_lease_seconds": 1.0, "standby_poll_seconds": 0.1})
    stop_b = threading.Event()
    lock_a = leader_lock(rt.engine, sched.LOCK_NAME, 1.0)
    assert lock_a.acquire()  # "a" is active (holding the lock)
    b = threading.Thread(target=sched.run_scheduler, args=(rt, stop_b), daemon=True)
    b.start()
    try:
        wait_until(lambda: "standby" in caplog.text, 30, "b to report it is waiting")
        assert sched._RUNTIME is None and "scheduler active" not in caplog.text  # b runs no jobs
        lock_a.release()  # "a" goes away
        wait_until(lambda: "scheduler active with jobs: probe" in caplog.text, 30, "b to become active")
        assert sched._RUNTIME is rt
    finally:
        stop_b.set()
        b.join(30)
    assert not b.is_alive()
    assert "scheduler stopped" in caplog.text


EVERGREEN = """
name = "Evergreen re-consent"
deadline_days = 30

[audience]
kinds = ["customer"]
customer_inactive_months = 12

[[steps]]
day = 0
channel = "email"
template = "reconsent"

[[steps]]
day = 7
channel = "email"
template = "reminder"
"""


def test_evergreen_enrols_newcomers_with_their_own_dates(
    make_rt: Callable[..., Runtime], write_csv: Callable[..., Path], clock: FixedClock, tmp_path: Path
) -> None:
    from orchestrator.contacts.service import import_contacts

    (tmp_path / "evergreen.toml").write_text(EVERGREEN, encoding="utf-8")
    rt = make_rt(scheduler={"evergreen_campaign_file": "evergreen.toml"})
    import_contacts(rt, write_csv([person(1), person(2, last_activity_at="2025-12-10")]))
    first = enrol_newcomers(rt)
    assert first.started and first.enrolled == 1
    again = enrol_newcomers(rt)
    assert not again.started and again.enrolled == 0 and again.campaign_id == first.campaign_id

    clock.advance(timedelta(days=20))  # person 2 is now 12 months inactive
    later = enrol_newcomers(rt)
    assert later.enrolled == 1 and later.campaign_id == first.campaign_id
    with Session(rt.engine) as s:
        campaign = s.get(Campaign, first.campaign_id)
        assert campaign is not None and campaign.state == "running" and campaign.deadline_at is None
        enrolments = {e.contact_id: e for e in s.execute(select(Enrolment)).scalars()}
        rows = list(s.execute(select(OutboxMessage).order_by(OutboxMessage.contact_id, OutboxMessage.step)).scalars())
    assert len(enrolments) == 2
    due = {(r.contact_id, r.step): r.due_at for r in rows}
    e1, e2 = sorted(enrolments.values(), key=lambda e: e.enrolled_at)
    assert due[(e1.contact_id, 0)] == T0 and due[(e1.contact_id, 1)] == T0 + timedelta(days=7)
    assert due[(e2.contact_id, 0)] == T0 + timedelta(days=20)
    assert due[(e2.contact_id, 1)] == T0 + timedelta(days=27)
    assert e1.deadline_at == T0 + timedelta(days=30) and e2.deadline_at == T0 + timedelta(days=50)

    clock.advance(timedelta(days=11))  # past person 1's own deadline, not person 2's
    closing = enrol_newcomers(rt)
    assert closing.expired == 1
    with Session(rt.engine) as s:
        states = {e.contact_id: e.state for e in s.execute(select(Enrolment)).scalars()}
    assert states == {e1.contact_id: "expired", e2.contact_id: "pending"}


def test_evergreen_is_off_without_a_campaign_file(rt: Runtime) -> None:
    assert "off" in enrol_newcomers(rt).summary()


def test_jobs_stored_under_the_old_module_path_are_rewritten_by_the_migration(
    make_rt: Callable[..., Runtime]
) -> None:
    """Before the feature packages, jobs were stored as ``orchestrator.scheduler:run_job``."""
    import pickle

    from orchestrator.store.db import downgrade, migrate

    rt = make_rt(scheduler={"sweep_cron": _next_hour_cron()})
    first = sched.build_scheduler(rt)
    first.start(paused=True)
    sched.sync_jobs(first, rt)
    due = datetime.now(timezone.utc) + timedelta(minutes=17)
    first.modify_job("sweep", next_run_time=due)
    first.shutdown(wait=True)

    def stored() -> set[str]:
        with Session(rt.engine) as s:
            return {pickle.loads(row)["func"] for row in s.execute(select(SchedulerJob.job_state)).scalars()}

    assert stored() == {"orchestrator.ops.scheduler:run_job"}
    downgrade(rt.engine, "0011_render_failures")
    assert stored() == {"orchestrator.scheduler:run_job"}  # what a database of the old layout holds
    migrate(rt.engine)
    assert stored() == {"orchestrator.ops.scheduler:run_job"}
    second = sched.build_scheduler(rt)
    second.start(paused=True)
    try:
        job = second.get_job("sweep")  # loads: the function reference resolves
        assert job is not None and abs((job.next_run_time - due).total_seconds()) < 1  # its next run is kept
    finally:
        second.shutdown(wait=True)
