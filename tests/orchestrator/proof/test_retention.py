"""Retention clocks per kind and state; anonymise keeps statistics, delete removes rows; the hashed
suppression entry always stays; `retention run --dry-run` says what and why; the scheduler runs it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from orchestrator.consent import ledger
from orchestrator.campaigns.service import campaign_status
from orchestrator.cli.main import main
from orchestrator.consent.service import Answer, record_answer
from orchestrator.contacts.service import import_contacts
from orchestrator.delivery.worker import dispatch_once
from orchestrator.domain.clock import FixedClock
from orchestrator.domain.model import ConsentSource
from orchestrator.errors import ConfigError
from orchestrator.consent.ledger import Proof
from orchestrator.proof.retention import run_retention
from orchestrator.runtime import Runtime
from orchestrator.ops.scheduler import jobs
from orchestrator.store.db import session_scope
from orchestrator.store.models import (
    ConsentEvent,
    Contact,
    Enrolment,
    OutboxMessage,
    SuppressionEntry,
)
from orchestrator.consent.suppression import check
from orchestrator.campaigns.sweep import sweep
from tests.support.factories import launch, person, run


def contact(rt: Runtime, external_id: str) -> Contact | None:
    with session_scope(rt.engine) as s:
        return s.execute(select(Contact).where(Contact.external_id == external_id)).scalar_one_or_none()


def test_prospect_and_customer_clocks(rt: Runtime, write_csv: Callable[..., Path]) -> None:
    # today is 2026-11-25; 36 months back is 2023-11-25
    import_contacts(rt, write_csv([
        person(1, kind="prospect", last_activity_at="2023-11-25"),  # exactly 36 months: goes
        person(2, kind="prospect", last_activity_at="2023-11-26"),  # one day short: stays
        person(3, kind="customer", last_activity_at="2020-01-01", relationship_ended_at="2024-06-30"),  # relationship still counts
        person(4, kind="customer", last_activity_at="2023-01-10"),  # no end date: last activity
    ]))
    report = run_retention(rt, dry_run=True)
    assert [line for line in report.lines()] == [
        "contact 1: would anonymise — prospect, last activity 2023-11-25: retention.prospect_months = 36 reached on 2026-11-25",
        "contact 4: would anonymise — customer, last activity 2023-01-10: retention.customer_months = 36 reached on 2026-01-10",
    ]
    assert report.summary() == "dry run: 2 contact(s) would go (2 anonymise, 0 delete); nothing changed"
    assert contact(rt, "C-1") is not None  # dry run changed nothing
    done = run_retention(rt)
    assert done.summary() == "retention: 2 contact(s) anonymised, 0 deleted; suppression entries kept"
    gone = contact(rt, "C-1")  # anonymised: the CRM id stays (issue 17), the personal data goes
    assert gone is not None and gone.erased_at is not None and gone.email is None and gone.attributes == {}
    assert contact(rt, "C-2") is not None and contact(rt, "C-3") is not None
    # data that merely aged out: the person may come back (a new purchase) under the same CRM id
    report = import_contacts(rt, write_csv([person(1, kind="prospect", last_activity_at="2026-11-01")], name="back.csv"))
    assert (report.created, report.rejects) == (1, [])
    back = contact(rt, "C-1")
    assert back is not None and back.erased_at is None and back.email == "person1@example.org"
    assert contact(rt, "erased-1") is not None


def test_a_confirmation_restarts_the_clock_and_a_pending_request_waits_for_its_sweep(
        rt: Runtime, write_csv: Callable[..., Path], clock: FixedClock) -> None:
    campaign_id = launch(rt, write_csv([person(1, kind="prospect", last_activity_at="2023-01-01"),
                                        person(2, kind="prospect", last_activity_at="2023-01-01")]),
                         audience={"kinds": ["prospect"], "prospect_inactive_months": 24})
    assert run_retention(rt, dry_run=True).decisions == []  # both are being asked right now
    record_answer(rt, 1, campaign_id, Answer({"email": True}), Proof(source=ConsentSource.PREFERENCE_CENTRE))
    decisions = run_retention(rt, dry_run=True).decisions
    assert decisions == []  # person 1 confirmed today; person 2 still pending
    clock.advance(timedelta(days=31))
    sweep(rt)  # person 2 expires and is anonymised by the sweep (after_expiry)
    assert run_retention(rt, dry_run=True).decisions == []
    clock.at = datetime(2029, 11, 26, tzinfo=UTC)  # 36 months after the confirmation
    [decision] = run_retention(rt, dry_run=True).decisions
    assert decision.contact_id == 1 and "last confirmed consent 2026-11-25" in decision.reason


def test_declined_policy_and_delete_action_keep_the_suppression_entry(
        make_rt: Callable[..., Runtime], write_csv: Callable[..., Path]) -> None:
    rt = make_rt(retention={"after_decline": "delete"})
    campaign_id = launch(rt, write_csv([person(1), person(2)]))
    run(dispatch_once(rt))
    record_answer(rt, 1, campaign_id, Answer({"email": False, "sms": False}),
                  Proof(source=ConsentSource.PREFERENCE_CENTRE, campaign_id=campaign_id, ip="192.0.2.1", user_agent="UA"))
    [decision] = run_retention(rt).decisions
    assert decision.action == "delete" and "refused a re-consent request: retention.after_decline = delete" in decision.reason
    with session_scope(rt.engine) as s:
        tomb = s.get(Contact, 1)
        assert tomb is not None and tomb.email is None and tomb.last_activity_at is None
        assert s.execute(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.contact_id == 1)).scalar_one() == 0
        assert s.execute(select(func.count()).select_from(Enrolment).where(Enrolment.contact_id == 1)).scalar_one() == 0
        events = list(s.execute(select(ConsentEvent).where(ConsentEvent.contact_id == 1)).scalars())
        assert events and all(e.ip is None or e.ip.startswith("redacted:") for e in events)
        assert ledger.verify(s).broken_at is None
    assert {e.reason for e in check(rt, "person1@example.org")} == {"unsubscribed"}
    assert campaign_status(rt, campaign_id)["enrolled"] == 1  # delete: the statistics go too


def test_anonymise_keeps_statistics(rt: Runtime, write_csv: Callable[..., Path], clock: FixedClock) -> None:
    campaign_id = launch(rt, write_csv([person(1)]), )
    run(dispatch_once(rt))
    clock.advance(timedelta(days=31))
    sweep(rt)
    status = campaign_status(rt, campaign_id)
    assert (status["enrolled"], status["expired"], status["email"]["sent"]) == (1, 1, 1)
    with session_scope(rt.engine) as s:
        assert s.execute(select(func.count()).select_from(SuppressionEntry)).scalar_one() == 2


def test_retention_run_command_and_scheduled_job(rt: Runtime, write_csv: Callable[..., Path], database_url: str) -> None:
    import_contacts(rt, write_csv([person(1, kind="prospect", last_activity_at="2022-05-01")]))
    env = {"RECONSENT_DATABASE__URL": database_url, "RECONSENT_NOW": "2026-11-25T09:00:00Z"}
    dry = CliRunner().invoke(main, ["retention", "run", "--dry-run"], env=env)
    assert dry.exit_code == 0
    assert dry.output.splitlines() == [
        "contact 1: would anonymise — prospect, last activity 2022-05-01: retention.prospect_months = 36 reached on 2025-05-01",
        "dry run: 1 contact(s) would go (1 anonymise, 0 delete); nothing changed",
    ]
    real = CliRunner().invoke(main, ["retention", "run"], env=env)
    assert real.exit_code == 0 and "contact 1: anonymised — prospect" in real.output
    gone = contact(rt, "C-1")  # anonymised; the CRM id stays (issue 17)
    assert gone is not None and gone.erased_at is not None and gone.email is None
    scheduled = {name: (func, trigger) for name, func, trigger in jobs(rt)}
    assert list(scheduled) == ["dispatch", "sweep", "evergreen", "retention", "launch", "pauses"]  # pauses: issue 18
    func, trigger = scheduled["retention"]
    assert str(trigger.fields[6]) == "45" and str(trigger.fields[5]) == "3"  # minute, hour of "45 3 * * *"
    assert func(rt) == "retention: 0 contact(s) anonymised, 0 deleted; suppression entries kept"


def test_a_bad_retention_cron_names_the_setting(make_rt: Callable[..., Runtime]) -> None:
    rt = make_rt(scheduler={"retention_cron": "every night"})
    with pytest.raises(ConfigError, match="scheduler.retention_cron: expected a 5-field cron expression"):
        jobs(rt)
