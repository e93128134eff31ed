"""Recurring jobs with APScheduler 3 [O4]: dispatch due messages, deadline sweep — from config.

Persistence across restarts, the single-active-scheduler lock and catch-up come with the service
work (see docs/operations.md); here the jobs are defined from config and run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger

from orchestrator.dispatch import dispatch_once
from orchestrator.errors import ConfigError
from orchestrator.runtime import Runtime
from orchestrator.sweep import sweep

log = logging.getLogger("reconsent.scheduler")


def job_dispatch(rt: Runtime) -> str:
    return asyncio.run(dispatch_once(rt)).summary()


def job_sweep(rt: Runtime) -> str:
    return sweep(rt).summary()


def job_retention(rt: Runtime) -> str:
    from orchestrator.retention import run_retention

    return run_retention(rt).summary()


def jobs(rt: Runtime) -> list[tuple[str, Callable[[Runtime], str], CronTrigger]]:
    cfg = rt.config.scheduler
    out = []
    for name, func, expr, key in (
        ("dispatch", job_dispatch, cfg.dispatch_cron, "scheduler.dispatch_cron"),
        ("sweep", job_sweep, cfg.sweep_cron, "scheduler.sweep_cron"),
        ("retention", job_retention, cfg.retention_cron, "scheduler.retention_cron"),
    ):
        try:
            trigger = CronTrigger.from_crontab(expr, timezone=cfg.timezone)
        except ValueError as exc:
            raise ConfigError(f"{key}: expected a 5-field cron expression, got {expr!r} ({exc})") from None
        out.append((name, func, trigger))
    return out


def build_scheduler(rt: Runtime, scheduler_cls: Any = BlockingScheduler) -> Any:
    scheduler = scheduler_cls(timezone=rt.config.scheduler.timezone)
    for name, func, trigger in jobs(rt):
        scheduler.add_job(_logged(name, func), trigger, args=[rt], id=name, name=name,
                          coalesce=True, max_instances=1, misfire_grace_time=3600)
    return scheduler


def _logged(name: str, func: Callable[[Runtime], str]) -> Callable[[Runtime], None]:
    def run(rt: Runtime) -> None:
        try:
            log.info("%s: %s", name, func(rt))
        except Exception:  # noqa: BLE001 - a failed run is logged; the next run tries again
            log.exception("%s job failed", name)

    run.__name__ = f"job_{name}"
    return run


def run_scheduler(rt: Runtime) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    scheduler = build_scheduler(rt)
    log.info("scheduler started with jobs: %s", ", ".join(j.id for j in scheduler.get_jobs()))
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        pass
