"""`reconsent run`: one real process serves the pages, sends through a real SMTP server (aiosmtpd),
runs the scheduler's sweep, writes heartbeats, and stops cleanly on SIGTERM; refusals exit 1."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select
from sqlmodel import Session

from orchestrator.ops import scheduler as sched
from orchestrator.campaigns.service import create_campaign, launch_campaign
from orchestrator.cli.main import main
from orchestrator.contacts.service import import_contacts
from orchestrator.domain.clock import FixedClock, SystemClock
from orchestrator.ops.heartbeat import service_status
from orchestrator.ops.locks import leader_lock
from orchestrator.runtime import Runtime
from orchestrator.store.models import Campaign, Enrolment, OutboxMessage
from tests.service.procs import reconsent, wait_until, write_config
from tests.support.factories import person, plan
from tests.support.smtp import SmtpServer, free_port

EMAIL_ONLY = [{"day": 0, "channel": "email", "template": "reconsent"}]


@pytest.fixture
def clock() -> FixedClock:
    """Business time of the set-up: now (the `run` process reads the system clock)."""
    return FixedClock(SystemClock().now() - timedelta(minutes=1))


def run_config(tmp_path: Path, rt: Runtime, smtp_port: int) -> Path:
    return write_config(tmp_path / "reconsent.toml", {
        "database": {"url": rt.config.database_url},
        "public": {"base_url": rt.config.public.base_url},
        "security": {"signing_keys": ["test-run-signing-key-0123456789"], "suppression_key": "test-run-suppression"},
        "receipts": {"signing_key": receipt_key(tmp_path)},
        "email": {"transport": "smtp", "host": "127.0.0.1", "port": smtp_port, "timeout": 30.0},
        "dispatch": {"poll_seconds": 0.2, "lease_seconds": 30},
        "logging": {"format": "json"},
    })


def receipt_key(folder: Path) -> str:
    """A receipt signing key of this instance's own (the development key is refused with smtp)."""
    from orchestrator.proof.receipt_keys import new_key

    path = folder / "receipts.pem"
    if not path.exists():
        path.write_text(new_key()[0])
    return str(path)


def sweep_overdue(rt: Runtime) -> None:
    """Store the jobs as an earlier scheduler would have, with the sweep's run an hour overdue (no
    scheduler was up at 03:15): a starting scheduler catches it up once."""
    scheduler = sched.build_scheduler(rt)
    scheduler.start(paused=True)
    try:
        sched.sync_jobs(scheduler, rt)
        scheduler.modify_job("sweep", next_run_time=datetime.now(UTC) - timedelta(hours=1))
    finally:
        scheduler.shutdown(wait=True)
        sched._RUNTIME = None


def get(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return str(resp.read().decode())
    except OSError:
        return ""


def state_of(rt: Runtime, campaign_id: int) -> str:
    with Session(rt.engine) as s:
        campaign = s.get(Campaign, campaign_id)
        assert campaign is not None
        return campaign.state


@pytest.mark.slow
def test_one_process_serves_sends_sweeps_and_stops_cleanly_on_sigterm(
    make_rt: Callable[..., Runtime], smtp_server: SmtpServer, clock: FixedClock, tmp_path: Path,
    write_csv: Callable[..., Path]
) -> None:
    rt = make_rt()
    now = clock.now()
    # an old campaign past its deadline (prospects), for the sweep to close ...
    clock.at = now - timedelta(days=40)
    import_contacts(rt, write_csv([person(n, kind="prospect", last_activity_at="2019-01-15") for n in (11, 12)]
                                  + [person(n) for n in (1, 2, 3)]))
    old = create_campaign(rt, plan("Last year's", steps=EMAIL_ONLY, audience={"kinds": ["prospect"]}))
    assert launch_campaign(rt, old) == 2
    # ... and one launched now (customers), for the dispatcher to send
    clock.at = now
    current = create_campaign(rt, plan("This week's", steps=EMAIL_ONLY, audience={"kinds": ["customer"]}))
    assert launch_campaign(rt, current) == 3
    sweep_overdue(rt)
    port = free_port()
    service = reconsent(run_config(tmp_path, rt, smtp_server.port), "run", "--host", "127.0.0.1", "--port",
                        str(port), log=tmp_path / "run.log")
    try:
        wait_until(lambda: get(f"http://127.0.0.1:{port}/healthz") == "ok", 60, "/healthz to answer")
        wait_until(lambda: len(smtp_server.received) >= 3, 60, "the current campaign's 3 emails")
        wait_until(lambda: state_of(rt, old) == "completed", 60, "the sweep to close the old campaign")
        status = service_status(rt)
        assert [p.pid for p in status.dispatcher.processes] == [service.pid]
        active = status.active_scheduler
        assert active is not None and active.pid == service.pid and "dispatch" not in active.jobs
        started = time.monotonic()
        code = service.terminate(30)
        stopped_in = time.monotonic() - started
    finally:
        service.close()
    assert code == 0, service.text()[-3000:]
    assert stopped_in < 10, f"SIGTERM took {stopped_in:.1f}s"
    recipients = sorted(r for m in smtp_server.received for r in m.rcpt_tos)
    assert recipients == ["person1@example.org", "person2@example.org", "person3@example.org"]  # once each
    with Session(rt.engine) as s:
        rows = {(r.campaign_id, r.status) for r in s.execute(select(OutboxMessage)).scalars()}
        expired = [e.state for e in s.execute(select(Enrolment).where(Enrolment.campaign_id == old)).scalars()]
    assert rows == {(current, "sent"), (old, "skipped")}  # nothing left claimed
    assert expired == ["expired", "expired"]
    assert state_of(rt, current) == "running"
    log = service.text()
    assert "sweep: 1 campaign(s) past deadline" in log and '"job": "sweep"' in log
    assert log.rstrip().splitlines()[-1].startswith("sent 3,")  # the dispatcher's summary on stdout
    status = service_status(rt)  # the heartbeats say stopped at once
    assert not status.dispatcher.alive and not status.scheduler.alive
    lock = leader_lock(rt.engine, sched.LOCK_NAME, 30)
    assert lock.acquire()  # the scheduler lock was released
    lock.release()


@pytest.fixture
def root_logging() -> Iterator[None]:
    """`run` configures logging for the process: give the test process its own back."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _run(rt: Runtime, *args: str, env: dict[str, str] | None = None) -> Result:
    """`reconsent run …` in this process (refusals happen before anything starts)."""
    return CliRunner().invoke(main, ["run", *args], env={"RECONSENT_DATABASE__URL": rt.config.database_url,
                                                         **(env or {})})


def test_run_refuses_in_one_line(make_rt: Callable[..., Runtime], tmp_path: Path, root_logging: None) -> None:
    rt = make_rt()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = _run(rt, "--host", "127.0.0.1", "--port", str(port))
    assert busy.exit_code == 1
    assert busy.stderr.strip() == f"Error: cannot listen on 127.0.0.1:{port}: Address already in use"
    bad_cron = _run(rt, "--port", str(free_port()), env={"RECONSENT_SCHEDULER__SWEEP_CRON": "every day"})
    assert bad_cron.exit_code == 1 and len(bad_cron.stderr.strip().splitlines()) == 1
    assert "scheduler.sweep_cron: expected a 5-field cron expression" in bad_cron.stderr
    fresh = _run(rt, env={"RECONSENT_DATABASE__URL": f"sqlite:///{tmp_path / 'new.db'}"})
    assert fresh.exit_code == 1 and "not initialised: run `reconsent init` first" in fresh.stderr
    usage = _run(rt, "--port", "eighty")
    assert usage.exit_code == 2 and "--port" in usage.stderr


def test_a_part_that_stops_on_its_own_stops_the_others_and_is_named(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In-process: the scheduler loses its lock; the web server and the dispatcher are stopped too."""
    from orchestrator.ops import service
    from orchestrator.errors import ReconsentError

    def scheduler_losing_its_lock(*_: object, **__: object) -> None:
        time.sleep(0.5)
        raise ReconsentError("lost the scheduler lock (database unreachable or lease expired)")

    monkeypatch.setattr(service, "run_scheduler", scheduler_losing_its_lock)

    async def main() -> None:
        await service.run_service(rt, "127.0.0.1", 0, stop=asyncio.Event())

    with pytest.raises(ReconsentError, match=r"^scheduler stopped unexpectedly: lost the scheduler lock"):
        asyncio.run(asyncio.wait_for(main(), 60))
    status = service_status(rt)
    assert not status.dispatcher.alive and status.dispatcher.last_seen is not None  # stopped, not killed
