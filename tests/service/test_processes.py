"""Real processes, real SMTP server process, real database (SQLite, or PostgreSQL in the second pass):
many dispatchers, SIGKILL crashes, SIGTERM, standby scheduler. Marked slow; scripts/test.sh runs them.

The SMTP server (tests/support/smtp_log_server.py) logs every Message-ID it accepts before answering
250; Message-IDs are deterministic per outbox row (``<rc.{short code}@domain>``), so the log tells
exactly which rows reached the server, and how many times.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from orchestrator.campaigns.service import create_campaign, launch_campaign
from orchestrator.config import DispatchConfig
from orchestrator.domain.clock import FixedClock, SystemClock
from orchestrator.runtime import Runtime
from orchestrator.store.models import OutboxMessage
from tests.service.procs import Proc, SmtpLogServer, reconsent, wait_until, write_config
from tests.support.factories import plan
from tests.support.twilio_standin import TwilioStandIn

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
EMAIL_ONLY = [{"day": 0, "channel": "email", "template": "reconsent"}]
DOMAIN = "exemple.example"


@pytest.fixture
def clock() -> FixedClock:
    """Business time for the launch: now (the dispatcher processes run on the system clock)."""
    return FixedClock(SystemClock().now() - timedelta(minutes=1))


@pytest.fixture
def smtp_log(tmp_path: Path) -> Iterator[SmtpLogServer]:
    server = SmtpLogServer(tmp_path).start()
    yield server
    server.stop()


def bulk_contacts(rt: Runtime, n: int) -> None:
    """n inactive customers with an email address (set-based insert: the import is not under test)."""
    from sqlalchemy import insert

    from orchestrator.store.models import Contact

    now = rt.clock.now()
    rows = [{"external_id": f"C-{i}", "kind": "customer", "email": f"person{i}@example.org",
             "email_key": str(rt.key_for(f"person{i}@example.org")),
             "first_name": f"P{i}", "locale": "fr", "timezone": "Europe/Paris",
             "last_activity_at": now.date() - timedelta(days=800), "b2b": False, "attributes": {},
             "created_at": now, "updated_at": now} for i in range(1, n + 1)]
    with Session(rt.engine) as s:
        s.execute(insert(Contact), rows)
        s.commit()


def launch_email_campaign(rt: Runtime, n: int) -> dict[str, int]:
    """n contacts, one email each; returns expected Message-ID → outbox row id."""
    bulk_contacts(rt, n)
    campaign_id = create_campaign(rt, plan(steps=EMAIL_ONLY))
    assert launch_campaign(rt, campaign_id) == n
    with Session(rt.engine) as s:
        ids = list(s.execute(select(OutboxMessage.id)).scalars())
    assert len(ids) == n
    return {f"<rc.{rt.links.short_code(i)}@{DOMAIN}>": i for i in ids}


def service_config(tmp_path: Path, rt: Runtime, smtp_port: int, **dispatch: Any) -> Path:
    return write_config(tmp_path / "reconsent.toml", {
        "database": {"url": rt.config.database_url},
        "public": {"base_url": rt.config.public.base_url},
        "email": {"transport": "smtp", "host": "127.0.0.1", "port": smtp_port, "pool_size": 4, "timeout": 30.0},
        "dispatch": {"batch_size": 50, "concurrency": 8, "lease_seconds": 3, "poll_seconds": 0.2,
                     "retry_base_seconds": 0.5, **dispatch},
        "logging": {"format": "json"},
    })


def unsent(rt: Runtime) -> int:
    with Session(rt.engine) as s:
        return int(s.execute(select(func.count()).select_from(OutboxMessage)
                             .where(OutboxMessage.status != "sent")).scalar_one())


def statuses(rt: Runtime) -> Counter[str]:
    with Session(rt.engine) as s:
        return Counter(dict(s.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)).all()))


def report(capsys: pytest.CaptureFixture[str], line: str) -> None:
    with capsys.disabled():
        print(f"\n[service] {line}")


def test_four_dispatchers_send_every_message_exactly_once(
    make_rt: Callable[..., Runtime], smtp_log: SmtpLogServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rt = make_rt()
    # 5,000 on PostgreSQL (the multi-dispatcher set-up); SQLite, a single-writer database, checks the
    # same property on 2,000 to keep the suite affordable
    total = 5000 if rt.engine.dialect.name == "postgresql" else 2000
    expected = launch_email_campaign(rt, total)
    config = service_config(tmp_path, rt, smtp_log.port)
    started = time.monotonic()
    workers = [reconsent(config, "dispatch", log=tmp_path / f"dispatch-{n}.log") for n in range(4)]
    try:
        wait_until(lambda: unsent(rt) == 0, 600, f"all {total} messages to be recorded as sent", interval=0.5)
        elapsed = time.monotonic() - started
        codes = [w.terminate(60) for w in workers]
    finally:
        for w in workers:
            w.close()
    assert codes == [0, 0, 0, 0]
    received = smtp_log.ids()
    assert set(received) == set(expected)  # nothing lost, nothing foreign
    assert max(received.values()) == 1, [m for m, c in received.items() if c > 1][:5]  # nothing twice
    sent_by = [int(w.text().rsplit("sent ", 1)[1].split(",", 1)[0]) for w in workers]  # summary on exit
    assert sum(sent_by) == total and min(sent_by) > 0, sent_by  # every worker took a share
    report(capsys, f"4 dispatchers, {rt.engine.dialect.name}: {total} messages, each accepted once, in {elapsed:.1f}s")


def test_sigkill_at_random_moments_loses_nothing_and_counts_duplicates(
    make_rt: Callable[..., Runtime], smtp_log: SmtpLogServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    total, kills, n_workers = 2000, 24, 3
    rt = make_rt()
    expected = launch_email_campaign(rt, total)
    config = service_config(tmp_path, rt, smtp_log.port, batch_size=25, lease_seconds=5)
    rng = random.Random()
    logs = iter(tmp_path / f"dispatch-{n}.log" for n in range(1000))
    workers = [reconsent(config, "dispatch", log=next(logs)) for _ in range(n_workers)]
    started = time.monotonic()
    killed = 0
    try:
        for k in range(kills):
            # spread the kills over the campaign: the k-th once the server has seen enough messages
            threshold = (k + 1) * total // (kills + 4)
            wait_until(lambda: smtp_log.count() >= threshold, 600, f"{threshold} accepted messages")
            time.sleep(rng.uniform(0, 0.15))  # a random moment (not a synchronisation)
            victim = rng.randrange(n_workers)
            workers[victim].kill()
            killed += 1
            workers[victim].close()
            workers[victim] = reconsent(config, "dispatch", log=next(logs))
        wait_until(lambda: unsent(rt) == 0, 600, "every message to be recorded as sent", interval=0.5)
        elapsed = time.monotonic() - started
        # a worker restarted after the last kill may still be importing on a loaded machine: a SIGTERM
        # then ends it the default way (-15) before it can shut down gracefully; wait until it runs
        for w in workers:
            w.wait_for("polling", timeout=120)
        codes = [w.terminate(60) for w in workers]
    finally:
        for w in workers:
            w.close()
    assert codes == [0] * n_workers
    received = smtp_log.ids()
    lost = set(expected) - set(received)
    duplicates = {m: c - 1 for m, c in received.items() if c > 1}
    assert not lost, f"{len(lost)} messages lost"
    assert set(received) <= set(expected)
    with Session(rt.engine) as s:
        attempts = dict(s.execute(select(OutboxMessage.id, OutboxMessage.attempts)).all())
    # a duplicate is only ever a row that was handed to the server, then sent again after a crash
    assert all(attempts[expected[m]] >= 2 for m in duplicates)
    # At each kill, at most the messages handed to the server whose "sent" was not committed yet:
    # the recorder's window, dispatch.concurrency sends in flight + dispatch.group_size results
    # waiting for their write-behind commit (8 + 32 with this config and the default group size).
    window = 8 + DispatchConfig().group_size
    assert sum(duplicates.values()) <= killed * window
    report(capsys, f"crash test, {rt.engine.dialect.name}: {total} messages, {killed} SIGKILLs, "
                   f"lost {len(lost)}, duplicates {sum(duplicates.values())} "
                   f"(rows re-sent after a crash: {sum(1 for a in attempts.values() if a >= 2)}), {elapsed:.1f}s")


def test_a_killed_dispatchers_claims_are_taken_over_in_seconds_not_after_the_lease(
    make_rt: Callable[..., Runtime], smtp_log: SmtpLogServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """kill -9 a dispatcher holding a claim of 500 rows with a 300 s lease: another one sees it dead
    (PostgreSQL: its advisory lock is free; SQLite: its process is gone from this host) and sends the
    rest in seconds, rather than after the lease [issue 14 §6]."""
    rt = make_rt()
    total = 1500
    expected = launch_email_campaign(rt, total)
    config = service_config(tmp_path, rt, smtp_log.port, batch_size=500, lease_seconds=300)
    victim = reconsent(config, "dispatch", log=tmp_path / "dispatch-victim.log")
    try:
        wait_until(lambda: smtp_log.count() >= 50, 300, "50 accepted messages")
        victim.kill()
    finally:
        victim.close()
    killed_at = time.monotonic()
    held = statuses(rt)["sending"]
    assert held > 0  # killed mid-batch: rows claimed under a lease with ~300 s to run
    successor = reconsent(config, "dispatch", log=tmp_path / "dispatch-successor.log")
    try:
        successor.wait_for("polling", timeout=150)
        started = time.monotonic()  # the successor is up (its start-up on a loaded machine is not under test)
        successor.wait_for("taken over now, without waiting for their lease", timeout=150)
        seen_dead = time.monotonic() - started
        wait_until(lambda: unsent(rt) == 0, 150, "the dead dispatcher's rows to be sent by the other one")
        took = time.monotonic() - killed_at
        assert successor.terminate(60) == 0
    finally:
        successor.close()
    assert seen_dead < 10, seen_dead  # its first claims, not the lease's 300 s
    assert took < 150, took
    received = smtp_log.ids()
    assert set(received) == set(expected)  # nothing lost
    duplicates = sum(c - 1 for c in received.values())
    assert duplicates <= 8 + DispatchConfig().group_size
    report(capsys, f"takeover, {rt.engine.dialect.name}: dispatcher killed holding {held} rows (lease 300 s); "
                   f"taken over {seen_dead:.1f}s after the successor started, all sent {took:.1f}s after the kill "
                   f"(start-up included), duplicates {duplicates}")


def test_sigkill_during_sms_sends_looks_up_unknown_outcomes_at_twilio_instead_of_resending(
    make_rt: Callable[..., Runtime], twilio: TwilioStandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SMS through the real twilio client to the stand-in, dispatchers killed at random moments: a row
    whose worker died between handing it to Twilio and recording it is looked up in Twilio's message
    list (To, body, date) and recorded with the SID found — not sent twice [issue 14 §6]."""
    total, kills, n_workers = 600, 10, 2
    rt = make_rt()
    now = rt.clock.now()
    from sqlalchemy import insert

    from orchestrator.store.models import Contact

    phones = [f"+3361{i:07d}" for i in range(1, total + 1)]
    with Session(rt.engine) as s:
        s.execute(insert(Contact), [
            {"external_id": f"S-{i}", "kind": "customer", "phone": phone, "phone_key": str(rt.key_for(phone)),
             "first_name": f"P{i}", "locale": "fr", "timezone": "Europe/Paris",
             "last_activity_at": now.date() - timedelta(days=800), "b2b": False, "attributes": {},
             "created_at": now, "updated_at": now} for i, phone in enumerate(phones, 1)])
        s.commit()
    campaign_id = create_campaign(rt, plan(steps=[{"day": 0, "channel": "sms", "template": "reconsent"}]))
    assert launch_campaign(rt, campaign_id) == total
    config = write_config(tmp_path / "reconsent.toml", {
        "database": {"url": rt.config.database_url},
        "public": {"base_url": rt.config.public.base_url},
        "sms": {"transport": "twilio", "account_sid": twilio.account_sid, "auth_token": twilio.auth_token,
                "api_base_url": twilio.base_url, "segments_per_second": 1000.0},
        "windows": {"sms": "always"},
        "dispatch": {"batch_size": 25, "concurrency": 8, "lease_seconds": 300, "poll_seconds": 0.2},
        "logging": {"format": "json"},
    })
    rng = random.Random()
    logs = iter(tmp_path / f"dispatch-{n}.log" for n in range(1000))
    workers = [reconsent(config, "dispatch", log=next(logs)) for _ in range(n_workers)]
    every = list(workers)
    killed = 0
    try:
        for k in range(kills):
            threshold = (k + 1) * total // (kills + 3)
            wait_until(lambda: len(twilio.created) >= threshold, 600, f"{threshold} messages at Twilio")
            time.sleep(rng.uniform(0, 0.1))
            victim = rng.randrange(n_workers)
            workers[victim].kill()
            killed += 1
            workers[victim] = reconsent(config, "dispatch", log=next(logs))
            every.append(workers[victim])
        wait_until(lambda: unsent(rt) == 0, 600, "every SMS to be recorded as sent", interval=0.5)
        for w in workers:
            w.wait_for("polling", timeout=120)
        codes = [w.terminate(60) for w in workers]
    finally:
        for w in every:
            w.close()
    assert codes == [0] * n_workers
    received = Counter(m["To"] for m in twilio.created)
    lost = set(phones) - set(received)
    duplicates = sum(c - 1 for c in received.values())
    text = "".join(w.text() for w in every)
    found, resent = text.count("the provider has it"), text.count("sending it again")
    report(capsys, f"SMS crash test, {rt.engine.dialect.name}: {total} SMS, {killed} SIGKILLs, lost {len(lost)}, "
                   f"duplicates {duplicates}; unknown-outcome rows found at Twilio and recorded {found}, "
                   f"sent again (not at Twilio) {resent}")
    assert not lost
    with Session(rt.engine) as s:
        sids = set(s.execute(select(OutboxMessage.provider_id)).scalars())
    assert len(sids) == total and sids <= {m["sid"] for m in twilio.created}  # each row: a SID Twilio gave
    assert duplicates == 0, f"{duplicates} SMS sent twice"
    assert any(method == "GET" for method, _ in twilio.requests) == bool(found + resent)


def test_sigterm_finishes_sends_in_flight_releases_claims_and_exits_0(
    make_rt: Callable[..., Runtime], smtp_log: SmtpLogServer, tmp_path: Path
) -> None:
    rt = make_rt()
    expected = launch_email_campaign(rt, 600)
    config = service_config(tmp_path, rt, smtp_log.port, batch_size=100, lease_seconds=300)
    worker = reconsent(config, "dispatch", log=tmp_path / "dispatch-a.log")
    try:
        wait_until(lambda: smtp_log.count() >= 100, 300, "100 accepted messages")
        assert worker.terminate(60) == 0
    finally:
        worker.close()
    state = statuses(rt)
    assert state["sending"] == 0  # in-flight sends recorded, unsent claims released (no lease to wait for)
    assert state["sent"] == smtp_log.count()  # every message the server accepted is recorded
    assert state["sent"] < 600  # it really stopped mid-campaign
    finisher = reconsent(config, "dispatch", log=tmp_path / "dispatch-b.log")
    try:
        wait_until(lambda: unsent(rt) == 0, 300, "the rest to be sent")
        assert finisher.terminate(60) == 0
    finally:
        finisher.close()
    received = smtp_log.ids()
    assert set(received) == set(expected) and max(received.values()) == 1
    for proc in (worker, finisher):  # structured logs, and no address in them
        lines = proc.text().splitlines()
        assert lines[-1].startswith("sent ")  # the summary on stdout
        records = [json.loads(line) for line in lines[:-1]]
        assert records and all({"ts", "level", "logger", "msg"} <= set(r) for r in records)
        assert "example.org" not in proc.text()


def test_sigterm_stops_dispatch_once_cleanly_too(
    make_rt: Callable[..., Runtime], smtp_log: SmtpLogServer, tmp_path: Path
) -> None:
    """`dispatch --once` honours SIGTERM like the long-running worker: exit 0, nothing left claimed."""
    rt = make_rt()
    launch_email_campaign(rt, 600)
    config = service_config(tmp_path, rt, smtp_log.port, batch_size=100, lease_seconds=300)
    worker = reconsent(config, "dispatch", "--once", log=tmp_path / "dispatch-once.log")
    try:
        wait_until(lambda: smtp_log.count() >= 50, 300, "50 accepted messages")
        assert worker.terminate(60) == 0
    finally:
        worker.close()
    state = statuses(rt)
    assert state["sending"] == 0 and state["sent"] == smtp_log.count() and state["sent"] < 600


def test_standby_scheduler_takes_over_when_the_active_one_is_killed(
    make_rt: Callable[..., Runtime], tmp_path: Path
) -> None:
    rt = make_rt()
    config = write_config(tmp_path / "reconsent.toml", {
        "database": {"url": rt.config.database_url},
        "scheduler": {"lock_lease_seconds": 2.0, "standby_poll_seconds": 0.2, "dispatch_cron": "0 3 * * *"},
        "logging": {"format": "json"},
    })
    first = reconsent(config, "scheduler", log=tmp_path / "scheduler-a.log")
    second: Proc | None = None
    try:
        first.wait_for("scheduler active with jobs: dispatch, sweep, evergreen", 120)
        second = reconsent(config, "scheduler", log=tmp_path / "scheduler-b.log")
        second.wait_for("standby: another scheduler is active", 120)
        assert "scheduler active" not in second.text()
        first.kill()
        second.wait_for("scheduler active with jobs", 120)
        assert second.terminate(60) == 0
    finally:
        first.close()
        if second is not None:
            second.close()
    assert '"role": "standby"' in second.text()  # JSON logs
    third = reconsent(config, "scheduler", log=tmp_path / "scheduler-c.log")  # lock released on SIGTERM
    try:
        third.wait_for("scheduler active", 120)
        assert third.terminate(60) == 0
    finally:
        third.close()
