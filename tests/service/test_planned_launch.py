"""A planned launch with real processes (issue 16 §2): `reconsent campaign launch ID --at ISO` in one
process, then a real `reconsent run` launches the campaign when its time comes (the scheduler's
launch job), freezes the audience then, and its dispatcher writes the emails to the file outbox;
SIGTERM stops it cleanly."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.utils import parseaddr
from pathlib import Path

import pytest
from sqlmodel import Session, select

from orchestrator.campaigns.service import create_campaign
from orchestrator.contacts.service import import_contacts
from orchestrator.domain.clock import FixedClock, SystemClock
from orchestrator.runtime import Runtime
from orchestrator.store.models import Campaign, OutboxMessage
from tests.service.procs import ROOT, reconsent, wait_until, write_config
from tests.support.factories import person, plan
from tests.support.smtp import free_port

ENV = {k: v for k, v in os.environ.items() if not k.startswith("RECONSENT_")}
EMAIL_ONLY = [{"day": 0, "channel": "email", "template": "reconsent"}]


@pytest.fixture
def clock() -> FixedClock:
    """Business time of the set-up: now (the processes read the system clock)."""
    return FixedClock(SystemClock().now() - timedelta(minutes=1))


def _campaign(rt: Runtime, campaign_id: int) -> Campaign:
    with Session(rt.engine) as s:
        campaign = s.get(Campaign, campaign_id)
        assert campaign is not None
        return campaign


@pytest.mark.slow
def test_reconsent_run_launches_a_planned_campaign_at_its_time(
        make_rt: Callable[..., Runtime], tmp_path: Path, write_csv: Callable[..., Path]) -> None:
    rt = make_rt()
    import_contacts(rt, write_csv([person(1), person(2)]))
    campaign_id = create_campaign(rt, plan("Planned", steps=EMAIL_ONLY, audience={"kinds": ["customer"]}))
    outbox = tmp_path / "outbox"
    config = write_config(tmp_path / "reconsent.toml", {
        "database": {"url": rt.config.database_url},
        "public": {"base_url": rt.config.public.base_url},
        "security": {"signing_keys": ["test-run-signing-key-0123456789"], "suppression_key": "test-run-suppression"},
        "email": {"transport": "file", "outbox_dir": str(outbox)},
        "dispatch": {"poll_seconds": 0.2, "lease_seconds": 30},
    })
    # the launch time: some seconds ahead (the command starts slowly on a busy machine), ISO 8601 with its offset
    at = (datetime.now(UTC) + timedelta(seconds=30)).replace(microsecond=0)
    cli = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "--config", str(config), "campaign",
                          "launch", str(campaign_id), "--at", at.isoformat()], capture_output=True, text=True,
                         timeout=120, cwd=ROOT, env={**ENV, "RECONSENT_HOME": str(tmp_path)})
    assert cli.returncode == 0, cli.stderr
    planned = _campaign(rt, campaign_id)
    assert planned.state == "scheduled" and planned.launch_at is not None
    assert planned.launch_at.replace(tzinfo=UTC) == at
    # a contact imported after scheduling is in the audience: it is frozen at the launch, not before
    import_contacts(rt, write_csv([person(3)], name="late.csv"))

    port = free_port()
    service = reconsent(config, "run", "--host", "127.0.0.1", "--port", str(port), log=tmp_path / "run.log")
    try:
        # the launch job runs every minute (scheduler.launch_cron): at most a minute after `at`
        wait_until(lambda: _campaign(rt, campaign_id).state == "running", 120, "the planned launch")
        launched = _campaign(rt, campaign_id)
        assert launched.launched_at is not None and launched.launched_at.replace(tzinfo=UTC) >= at
        wait_until(lambda: len(list(outbox.glob("*.eml"))) >= 3, 60, "three emails in the file outbox")
        code = service.terminate(30)
    finally:
        service.close()
    assert code == 0, service.text()[-3000:]
    recipients = sorted(parseaddr(str(message_from_bytes(p.read_bytes())["To"]))[1] for p in outbox.glob("*.eml"))
    assert recipients == ["person1@example.org", "person2@example.org", "person3@example.org"]
    with Session(rt.engine) as s:
        rows = [(r.campaign_id, r.status) for r in s.execute(select(OutboxMessage)).scalars()]
    assert sorted(rows) == [(campaign_id, "sent")] * 3
    assert "launch" in service.text()
