"""Recurring jobs with APScheduler 3 [O4], run as one active scheduler with standbys.

* Jobs come from config: one cron expression per job type (:data:`JOB_TYPES`; an empty expression
  turns a job off). Another module adds a job type with :func:`register_job_type`.
* The jobs live in the product's database (APScheduler's SQLAlchemy job store, table
  ``apscheduler_jobs``, created by the migrations). A job whose cron expression did not change keeps
  its stored next run time across restarts, so a run missed while no scheduler was up is *due* at
  start; with ``coalesce`` and ``misfire_grace_time`` it then runs once, however many were missed.
* APScheduler must not share a job store between two running schedulers, so only the holder of the
  database lock (:mod:`orchestrator.ops.locks`) runs one; any other ``reconsent scheduler`` waits as a
  standby and takes over when the holder dies.
* Each scheduler process writes a heartbeat (:mod:`orchestrator.ops.heartbeat`): standby, or active with
  its jobs; the console shows it.
* ``reconsent run`` runs a dispatcher of its own, so its scheduler leaves the ``dispatch`` job out
  (``skip``): one sender per process, polling every ``dispatch.poll_seconds`` rather than waiting
  for the next minute.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import signal
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_STOPPED
from apscheduler.triggers.cron import CronTrigger

from orchestrator.domain.clock import Clock
from orchestrator.errors import ConfigError, ReconsentError
from orchestrator.ops.heartbeat import SCHEDULER, Heartbeat
from orchestrator.ops.locks import LeaderLock, leader_lock
from orchestrator.runtime import Runtime

log = logging.getLogger("reconsent.scheduler")
JOB_FUNC = "orchestrator.ops.scheduler:run_job"
LOCK_NAME = "scheduler"


def job_dispatch(rt: Runtime) -> str:
    from orchestrator.delivery.worker import dispatch_once

    return asyncio.run(dispatch_once(rt)).summary()


def job_sweep(rt: Runtime) -> str:
    from orchestrator.campaigns.sweep import sweep

    return sweep(rt).summary()


def job_retention(rt: Runtime) -> str:
    from orchestrator.proof.retention import run_retention

    return run_retention(rt).summary()


def job_evergreen(rt: Runtime) -> str:
    from orchestrator.campaigns.evergreen import enrol_newcomers

    return enrol_newcomers(rt).summary()


def job_launch(rt: Runtime) -> str:
    from orchestrator.campaigns.schedule import launch_due

    return launch_due(rt).summary()


@dataclass(frozen=True)
class JobType:
    name: str
    #: "module:function" taking the Runtime and returning a one-line summary (resolved when run)
    func: str
    #: the [scheduler] setting holding its cron expression
    cron_key: str


JOB_TYPES: dict[str, JobType] = {}


def register_job_type(name: str, func: str, cron_key: str) -> None:
    """Add (or replace) a job type; its cron expression is read from ``scheduler.<cron_key>``."""
    JOB_TYPES[name] = JobType(name, func, cron_key)


register_job_type("dispatch", "orchestrator.ops.scheduler:job_dispatch", "dispatch_cron")
register_job_type("sweep", "orchestrator.ops.scheduler:job_sweep", "sweep_cron")
register_job_type("evergreen", "orchestrator.ops.scheduler:job_evergreen", "evergreen_cron")
register_job_type("retention", "orchestrator.ops.scheduler:job_retention", "retention_cron")
register_job_type("launch", "orchestrator.ops.scheduler:job_launch", "launch_cron")
register_job_type("pauses", "orchestrator.consent.alternatives:job_pauses", "sweep_cron")  # issue 18: ended pauses


def _resolve(ref: str) -> Callable[[Runtime], Any]:
    module, _, attr = ref.partition(":")
    try:
        job: Callable[[Runtime], Any] = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):
        raise ConfigError(f"scheduler job function {ref!r} does not exist in this version") from None
    return job


def jobs(rt: Runtime, skip: Collection[str] = ()) -> list[tuple[str, Callable[[Runtime], Any], CronTrigger]]:
    """The configured jobs: (name, function, trigger); jobs with an empty cron expression are off,
    and so are the job types named in ``skip``."""
    cfg = rt.config.scheduler
    out = []
    for job in JOB_TYPES.values():
        if job.name in skip:
            continue
        expr = str(getattr(cfg, job.cron_key, "") or "").strip()
        if not expr:
            continue
        try:
            trigger = CronTrigger.from_crontab(expr, timezone=cfg.timezone)
        except ValueError as exc:
            raise ConfigError(f"scheduler.{job.cron_key}: expected a 5-field cron expression, "
                              f"got {expr!r} ({exc})") from None
        out.append((job.name, _resolve(job.func), trigger))
    return out


# The running scheduler's Runtime: stored jobs reference run_job by name (a Runtime cannot be pickled).
_RUNTIME: Runtime | None = None


def run_job(name: str) -> None:
    """What the job store calls: run job ``name`` with the scheduler's Runtime, log its summary."""
    rt = _RUNTIME
    if rt is None:  # pragma: no cover - only if a job store is used outside run_scheduler
        log.error("job %s fired without a runtime", name)
        return
    job = JOB_TYPES.get(name)
    if job is None:
        log.error("job %s is not known to this version; skipped", name)
        return
    try:
        log.info("%s: %s", name, _resolve(job.func)(rt), extra={"fields": {"job": name}})
    except Exception:
        log.exception("%s job failed", name, extra={"fields": {"job": name}})


class ServiceScheduler(BackgroundScheduler):
    """APScheduler 3's BackgroundScheduler wakes its loop once more after ``shutdown()`` and would
    then move due jobs' next run time forward without running them (the executor is already shut
    down) — a run lost at every stop. A stopped scheduler processes nothing."""

    def _process_jobs(self) -> float | None:
        if self.state == STATE_STOPPED:
            return None
        wait: float | None = super()._process_jobs()  # seconds until the next due job
        return wait


def build_scheduler(rt: Runtime, scheduler_cls: Any = ServiceScheduler) -> Any:
    """A scheduler on the database job store (not started)."""
    cfg = rt.config.scheduler
    return scheduler_cls(
        timezone=cfg.timezone,
        jobstores={"default": SQLAlchemyJobStore(engine=rt.engine, tablename="apscheduler_jobs")},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": cfg.misfire_grace_seconds},
    )


def sync_jobs(scheduler: Any, rt: Runtime, skip: Collection[str] = ()) -> list[str]:
    """Make the stored jobs match config. Unchanged jobs keep their stored next run time (so a run
    missed during downtime still fires once); changed ones are replaced; unknown ones (and those in
    ``skip``) removed. Call on a scheduler started paused."""
    global _RUNTIME
    _RUNTIME = rt
    wanted = jobs(rt, skip)
    stored = {job.id: job for job in scheduler.get_jobs()}
    for name, _func, trigger in wanted:
        old = stored.pop(name, None)
        if old is not None and old.func_ref == JOB_FUNC and str(old.trigger) == str(trigger) \
                and list(old.args) == [name]:
            continue
        scheduler.add_job(JOB_FUNC, trigger, args=[name], id=name, name=name, replace_existing=True)
    for leftover in stored:
        scheduler.remove_job(leftover)
    return [name for name, _, _ in wanted]


def run_scheduler(rt: Runtime, stop: threading.Event | None = None, *, lock: LeaderLock | None = None,
                  lease_clock: Clock | None = None, skip: Collection[str] = ()) -> None:
    """Wait for the lock (standby), then run the jobs until ``stop`` (SIGTERM/SIGINT) or the lock is
    lost. ``lease_clock`` (a real clock by default) times the lock's lease and the heartbeat;
    job types in ``skip`` are not run (and removed from the job store while this one is active)."""
    cfg = rt.config.scheduler
    if stop is None:
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    jobs(rt, skip)  # configuration errors stop here, before waiting for anything
    lock = lock or leader_lock(rt.engine, LOCK_NAME, cfg.lock_lease_seconds, lease_clock)
    heartbeat = Heartbeat(rt.engine, SCHEDULER, state="standby", clock=lease_clock).start()
    try:
        _run_locked(rt, stop, lock, heartbeat, skip)
    finally:
        heartbeat.stop()


def _run_locked(rt: Runtime, stop: threading.Event, lock: LeaderLock, heartbeat: Heartbeat,
                skip: Collection[str]) -> None:
    cfg = rt.config.scheduler
    announced = False
    while not stop.is_set():
        if lock.acquire():
            break
        if not announced:
            log.info("standby: another scheduler is active; waiting to take over",
                     extra={"fields": {"role": "standby", "holder": lock.holder}})
            announced = True
        stop.wait(cfg.standby_poll_seconds)
    if stop.is_set():
        return
    scheduler = build_scheduler(rt)
    scheduler.start(paused=True)
    names = sync_jobs(scheduler, rt, skip)
    heartbeat.update("active", ", ".join(names))
    scheduler.resume()
    log.info("scheduler active with jobs: %s", ", ".join(names) or "none",
             extra={"fields": {"role": "active", "holder": lock.holder}})
    lost = False
    try:
        renew_every = max(0.2, cfg.lock_lease_seconds / 3)
        while not stop.wait(renew_every):
            if not lock.renew():
                lost = True
                break
    finally:
        scheduler.shutdown(wait=True)
        lock.release()
    if lost:
        raise ReconsentError("lost the scheduler lock (database unreachable or lease expired); stopped — "
                             "restart to wait as a standby")
    log.info("scheduler stopped")
