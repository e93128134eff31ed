"""A message that cannot be built at send time is a failure, not a loop (issue 12, point 5).

The broken template is planted through the store (the outbox row's template), bypassing the checks
of campaign create and launch: the row is marked failed with the reason, ``dispatch --once`` ends
within seconds, ``campaign status`` counts it, the error is logged once per batch with a count, and
a campaign whose failures reach ``dispatch.failure_pause_threshold`` is paused with the reason.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlmodel import Session, select

from orchestrator.campaigns.service import campaign_status, set_paused
from orchestrator.delivery.worker import DispatchReport, dispatch_once
from orchestrator.domain.message import OutboundMessage, SendResult
from orchestrator.domain.model import Channel
from orchestrator.rendering.messages import MessageRenderer
from orchestrator.campaigns.reports import funnel_table
from orchestrator.runtime import Runtime
from orchestrator.store.models import Campaign, OutboxMessage
from tests.support.factories import launch, person

EMAIL_NOW = [{"day": 0, "channel": "email", "template": "reconsent"}]
BOTH_NOW = EMAIL_NOW + [{"day": 0, "channel": "sms", "template": "reconsent"}]


class Recorder:
    def __init__(self) -> None:
        self.sent: list[OutboundMessage] = []

    async def send(self, message: OutboundMessage) -> SendResult:
        self.sent.append(message)
        return SendResult(provider_id=f"rec-{message.idempotency_key}")

    async def close(self) -> None:
        pass


def plant(rt: Runtime, tmp_path: Path, template: str, *, channel: str | None = None, body: str | None = None) -> None:
    """Point the campaign's due rows at ``template``; with ``body``, that template exists (a copy of
    ``reconsent``) and its French text part (or SMS) is ``body``."""
    if body is not None:
        root = tmp_path / "tpl"
        shutil.copytree(rt.renderer.root, root / "messages")
        folder = root / "messages" / template
        shutil.copytree(root / "messages" / "reconsent", folder)
        (folder / "fr" / "body.txt").write_text(body, encoding="utf-8")
        (folder / "fr" / "sms.txt").write_text(body, encoding="utf-8")
        rt.renderer = MessageRenderer(root)  # type: ignore[misc]
    stmt = update(OutboxMessage).values(template=template)
    if channel:
        stmt = stmt.where(OutboxMessage.channel == channel)  # type: ignore[arg-type]
    with rt.engine.begin() as conn:
        conn.execute(stmt)


def dispatch_within(rt: Runtime, seconds: float, channels: dict[Channel, Recorder] | None = None) -> DispatchReport:
    started = time.monotonic()
    report = asyncio.run(asyncio.wait_for(dispatch_once(rt, channels), seconds))  # type: ignore[arg-type]
    assert time.monotonic() - started < seconds
    return report


def outbox(rt: Runtime) -> list[OutboxMessage]:
    with Session(rt.engine) as s:
        return list(s.exec(select(OutboxMessage).order_by(OutboxMessage.id)))  # type: ignore[arg-type]


@pytest.mark.parametrize(("template", "body", "reason"), [
    ("nosuch", None, "cannot build message: template 'nosuch': missing fr/subject.txt"),
    ("broken", "Bonjour {{ first_name }},\n\n{{ page_url }}\n{{ nosuch }}\n",
     "cannot build message: template 'broken', fr/body.txt line 4: 'nosuch' is undefined"),
])
def test_a_message_that_cannot_be_built_fails_its_row_and_dispatch_once_ends(
        rt: Runtime, tmp_path: Path, write_csv: Callable[..., Path], caplog: pytest.LogCaptureFixture,
        template: str, body: str | None, reason: str) -> None:
    campaign_id = launch(rt, write_csv([person(1), person(2), person(3), person(4, locale="en")]), steps=BOTH_NOW)
    plant(rt, tmp_path, template, channel="email", body=body)
    channels = {c: Recorder() for c in Channel}
    with caplog.at_level(logging.INFO, logger="reconsent.dispatch"):
        report = dispatch_within(rt, 10, channels)  # the old code never returned
    assert (report.sent, report.failed) == (4 if template == "nosuch" else 5, 4 if template == "nosuch" else 3)
    rows = outbox(rt)
    failed = [r for r in rows if r.status == "failed"]
    assert {r.channel for r in failed} == {"email"}
    assert Counter(r.last_error for r in failed)[reason] == 3  # the three French contacts
    assert all(r.claimed_by is None and r.send_started_at is None for r in rows)
    status = campaign_status(rt, campaign_id)
    assert status["email"]["failed"] == len(failed) and status["email"]["queued"] == 0
    assert status["sms"] == {**status["sms"], "sent": 4, "failed": 0}
    assert status["failure_reasons"][0]["count"] == 3 and status["failure_reasons"][0]["reason"] == reason
    assert status["state"] == "running" and status["paused_reason"] is None
    # identical errors: one line per batch, with the count, no traceback
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR and not r.exc_info]
    assert f"campaign {campaign_id}: 3 message(s) could not be built, marked failed: {reason}" in errors
    assert len(errors) == len(caplog.records) == (2 if template == "nosuch" else 1)  # + the English one
    assert "failed 3 · step 0 email · " + reason in funnel_table(status)
    # nothing is retried: a second run has nothing to do
    assert dispatch_within(rt, 10, channels).failed == 0


def test_failures_past_the_threshold_pause_the_campaign_with_the_reason(
        make_rt: Callable[..., Runtime], tmp_path: Path, write_csv: Callable[..., Path]) -> None:
    rt = make_rt(dispatch={"failure_pause_threshold": 2, "group_size": 1, "concurrency": 1})
    campaign_id = launch(rt, write_csv([person(i) for i in range(1, 7)]), steps=EMAIL_NOW)
    plant(rt, tmp_path, "nosuch")
    report = dispatch_within(rt, 10, {c: Recorder() for c in Channel})
    status = campaign_status(rt, campaign_id)
    assert status["state"] == "paused"
    assert 2 <= report.failed == status["email"]["failed"] < 6  # the pause stopped the rest
    assert status["email"]["queued"] == 6 - report.failed
    assert re.fullmatch(r"paused by dispatch: [23] message\(s\) could not be built since launch or the last resume "
                        r"\(dispatch\.failure_pause_threshold = 2\); last: cannot build message: template 'nosuch': "
                        r"missing fr/subject\.txt", status["paused_reason"])
    assert status["paused_reason"] in funnel_table(status)
    # the operator fixes the template, resumes: the count starts again, the reason goes
    with rt.engine.begin() as conn:
        conn.execute(update(OutboxMessage).where(OutboxMessage.status == "pending").values(template="reconsent"))  # type: ignore[arg-type]
    assert set_paused(rt, campaign_id, False) == "running"
    with Session(rt.engine) as s:
        campaign = s.get(Campaign, campaign_id)
        assert campaign is not None and campaign.paused_reason is None and campaign.build_failures == 0
    assert dispatch_within(rt, 10, {c: Recorder() for c in Channel}).sent == 6 - report.failed


def test_a_threshold_of_zero_never_pauses(make_rt: Callable[..., Runtime], tmp_path: Path,
                                          write_csv: Callable[..., Path]) -> None:
    rt = make_rt(dispatch={"failure_pause_threshold": 0})
    campaign_id = launch(rt, write_csv([person(i) for i in range(1, 4)]), steps=EMAIL_NOW)
    plant(rt, tmp_path, "nosuch")
    assert dispatch_within(rt, 10, {c: Recorder() for c in Channel}).failed == 3
    assert campaign_status(rt, campaign_id)["state"] == "running"
