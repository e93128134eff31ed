"""Issue 16 §2: a planned launch, drafts edited and deleted, and test sends that count nothing."""

from __future__ import annotations

import asyncio
import email
import email.message
import email.policy
import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlmodel import Session
from starlette.testclient import TestClient

from orchestrator.campaigns.schedule import (
    delete_campaign,
    edit_campaign,
    launch_due,
    parse_launch_time,
    schedule_launch,
    unschedule,
)
from orchestrator.campaigns.service import campaign_status, create_campaign, launch_campaign
from orchestrator.contacts.service import import_contacts
from orchestrator.delivery.trial import send_trial
from orchestrator.domain.clock import FixedClock
from orchestrator.errors import InputError, StateError
from orchestrator.ops.scheduler import run_job, sync_jobs
from orchestrator.runtime import Runtime
from orchestrator.store.models import Campaign, ConsentEvent, Enrolment, OutboxMessage, SelfServiceRequest
from tests.conftest import T0
from tests.support.factories import person, plan


def counts(rt: Runtime) -> list[int]:
    with Session(rt.engine) as s:
        return [int(s.execute(select(func.count()).select_from(t)).scalar_one())
                for t in (Enrolment, OutboxMessage, ConsentEvent, SelfServiceRequest)]


def test_a_planned_launch_freezes_the_audience_at_its_time(rt: Runtime, write_csv: Callable[..., Path],
                                                           clock: FixedClock) -> None:
    import_contacts(rt, write_csv([person(1)]))
    campaign_id = create_campaign(rt, plan())
    at = schedule_launch(rt, campaign_id, T0 + timedelta(hours=2))
    status = campaign_status(rt, campaign_id)
    assert (status["state"], status["launch_at"], status["enrolled"]) == ("scheduled", "2026-11-25T11:00:00Z", 0)
    import_contacts(rt, write_csv([person(2)], name="later.csv"))  # joins: the audience is not frozen yet
    assert launch_due(rt).summary() == "no scheduled launch due"
    clock.advance(timedelta(hours=2))
    assert launch_due(rt).launched == [(campaign_id, 2)]
    status = campaign_status(rt, campaign_id)
    assert (status["state"], status["enrolled"], status["launched_at"]) == ("running", 2, "2026-11-25T11:00:00Z")
    assert launch_due(rt).launched == []  # launched once
    assert at == T0 + timedelta(hours=2)


def test_the_scheduler_job_launches_due_campaigns(rt: Runtime, write_csv: Callable[..., Path],
                                                  clock: FixedClock) -> None:
    from orchestrator.ops.scheduler import build_scheduler

    import_contacts(rt, write_csv([person(1)]))
    campaign_id = create_campaign(rt, plan())
    schedule_launch(rt, campaign_id, T0 + timedelta(minutes=5))
    scheduler = build_scheduler(rt)
    scheduler.start(paused=True)
    try:
        assert "launch" in sync_jobs(scheduler, rt)
    finally:
        scheduler.shutdown(wait=False)
    clock.advance(timedelta(minutes=5))
    run_job("launch")
    assert campaign_status(rt, campaign_id)["state"] == "running"


def test_scheduling_rules(rt: Runtime, write_csv: Callable[..., Path]) -> None:
    campaign_id = create_campaign(rt, plan())
    with pytest.raises(InputError, match="not in the future"):
        schedule_launch(rt, campaign_id, T0)
    assert parse_launch_time("2026-12-01T09:00", "Europe/Paris").isoformat() == "2026-12-01T08:00:00+00:00"
    assert parse_launch_time("2026-12-01T08:00:00Z", "Europe/Paris").isoformat() == "2026-12-01T08:00:00+00:00"
    with pytest.raises(InputError, match="expected an ISO 8601 time"):
        parse_launch_time("demain 9h", "Europe/Paris")
    schedule_launch(rt, campaign_id, T0 + timedelta(days=1))
    unschedule(rt, campaign_id)
    assert campaign_status(rt, campaign_id)["state"] == "draft"
    with pytest.raises(StateError, match="not scheduled"):
        unschedule(rt, campaign_id)


def test_a_failed_planned_launch_goes_back_to_draft_with_the_reason(rt: Runtime, clock: FixedClock) -> None:
    campaign_id = create_campaign(rt, plan())
    schedule_launch(rt, campaign_id, T0 + timedelta(minutes=1))
    with Session(rt.engine) as s:  # the plan broken since scheduling (a template that no longer exists)
        campaign = s.get(Campaign, campaign_id)
        assert campaign is not None
        campaign.plan = {**campaign.plan, "steps": [{"day": 0, "channel": "email", "template": "gone"}]}
        s.add(campaign)
        s.commit()
    clock.advance(timedelta(minutes=1))
    run = launch_due(rt)
    assert run.failed and run.failed[0][0] == campaign_id
    with Session(rt.engine) as s:
        campaign = s.get(Campaign, campaign_id)
        assert campaign is not None and campaign.state == "draft"
        assert campaign.paused_reason and "planned launch failed" in campaign.paused_reason


def test_drafts_are_edited_and_deleted_launched_campaigns_are_not(rt: Runtime, write_csv: Callable[..., Path]) -> None:
    import_contacts(rt, write_csv([person(1)]))
    draft = create_campaign(rt, plan("Draft"))
    edit_campaign(rt, draft, plan("Renamed", audience={"kinds": ["prospect"]}))
    assert campaign_status(rt, draft)["name"] == "Renamed"
    delete_campaign(rt, draft)
    with Session(rt.engine) as s:
        assert s.get(Campaign, draft) is None
    launched = create_campaign(rt, plan("Launched"))
    launch_campaign(rt, launched)
    with pytest.raises(StateError, match="cannot change"):
        edit_campaign(rt, launched, plan("Launched", audience={"kinds": ["prospect"]}))
    with pytest.raises(StateError, match="only a draft can be deleted"):
        delete_campaign(rt, launched)
    with pytest.raises(StateError, match="only a draft can be launched"):
        launch_campaign(rt, launched)


def test_test_send_sends_every_step_marked_and_records_nothing(rt: Runtime, write_csv: Callable[..., Path]) -> None:
    import_contacts(rt, write_csv([person(1)]))
    campaign_id = create_campaign(rt, plan())
    before = counts(rt)
    sent = asyncio.run(send_trial(rt, campaign_id, "Me@Example.org", locale="en"))
    assert [(t.step, t.outcome.split(":")[0]) for t in sent] == [(0, "sent"), (1, "sent"), (2, "skipped")]
    mails = sorted(Path(rt.config.email.outbox_dir).glob("*.eml"))
    assert len(mails) == 2
    message = email.message_from_bytes(mails[0].read_bytes(), policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    assert message["To"].endswith("Me@example.org") and str(message["Subject"]).startswith("[TEST] ")
    body = message.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    page_link = next(w for w in text.split() if "/p/" in w)
    sms = asyncio.run(send_trial(rt, campaign_id, "06 12 34 56 78", step=2))
    assert sms[0].outcome == "sent"
    line = json.loads(Path(rt.config.sms.outbox_file).read_text(encoding="utf-8").splitlines()[-1])
    assert line["to"] == "+33612345678" and line["body"].startswith("[TEST] ")
    with pytest.raises(InputError, match="step 2 is sent by sms"):
        asyncio.run(send_trial(rt, campaign_id, "me@example.org", step=2))
    assert counts(rt) == before  # no enrolment, outbox row, consent event or request

    # the link opens the real page in preview mode: GET shows it, POST answers, nothing is written
    from preference_centre.app import create_app

    path = page_link[page_link.index("/p/"):].rstrip(">).")
    with TestClient(create_app(rt)) as client:
        page = client.get(path)
        assert page.status_code == 200 and "nothing you do on this page is recorded" in page.text
        done = client.post(path, data={"action": "confirm", "email": "yes"})
        assert done.status_code == 200 and "nothing you do on this page is recorded" in done.text
        unsubscribe = path.replace("/p/", "/u/").split("?")[0]  # in French without ?lang=en
        assert "rien de ce que vous faites" in client.post(unsubscribe, data={"List-Unsubscribe": "One-Click"}).text
        assert client.get("/p/" + "x" * 40).status_code == 400  # any other token is still refused
    assert counts(rt) == before


def _mails(rt: Runtime) -> list[email.message.EmailMessage]:
    out = []
    for path in sorted(Path(rt.config.email.outbox_dir).glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, email.message.EmailMessage)
        out.append(message)
    return out


def test_test_send_of_a_notice_campaign_shows_the_notice_and_its_page(rt: Runtime,
                                                                      write_csv: Callable[..., Path]) -> None:
    """``b2b_regime = "notice"``: each email step goes out as the request and as the B2B notice, whose
    link opens the notice page in preview mode (keep / object, nothing recorded, no SMS line)."""
    from preference_centre.app import create_app

    import_contacts(rt, write_csv([person(1), person(2, b2b="true")]))
    campaign_id = create_campaign(rt, plan(audience={"b2b_regime": "notice"}))
    before = counts(rt)
    sent = asyncio.run(send_trial(rt, campaign_id, "me@example.org"))
    assert [(t.step, t.template, t.outcome.split(":")[0]) for t in sent] == [
        (0, "reconsent", "sent"), (0, "notice", "sent"), (1, "reminder", "sent"), (1, "notice", "sent"),
        (2, "reconsent", "skipped")]
    subjects = [str(m["Subject"]) for m in _mails(rt)]
    notice_subject = "[TEST] Boutique Lumière\u00a0: nous continuerons de vous écrire à votre adresse professionnelle"
    assert subjects.count(notice_subject) == 2 and len(subjects) == 4
    mail = next(m for m in _mails(rt) if str(m["Subject"]) == notice_subject)
    body = mail.get_body(("plain",))
    assert body is not None and "Vous pouvez vous y opposer à tout moment" in body.get_content()
    link = next(w for w in body.get_content().split() if "/p/" in w)
    path = link[link.index("/p/"):].rstrip(">).")
    with TestClient(create_app(rt)) as client:
        page = client.get(path)
        assert page.status_code == 200 and "rien de ce que vous faites" in page.text
        assert "Continuer à les recevoir" in page.text and 'name="sms"' not in page.text
        kept = client.post(path, data={"action": "confirm"})
        assert kept.status_code == 200 and "par e-mail" in kept.text and "par SMS" not in kept.text
        objected = client.post(path, data={"action": "decline"})
        assert "par SMS" in objected.text and "Vous ne recevrez plus de messages" in objected.text
    assert counts(rt) == before
    only = create_campaign(rt, plan(name="Pros", audience={"b2b": "only", "b2b_regime": "notice"}))
    assert [t.template for t in asyncio.run(send_trial(rt, only, "me@example.org", step=0))] == ["notice"]
