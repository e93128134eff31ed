from pathlib import Path
from typing import Callable

import pytest
from sqlmodel import Session, select

from orchestrator.campaigns.service import (
    audience_size,
    campaign_status,
    create_campaign,
    launch_campaign,
    load_plan,
    preview_campaign,
    set_paused,
)
from orchestrator.consent.service import suppress
from orchestrator.contacts.service import import_contacts
from orchestrator.errors import InputError, StateError
from orchestrator.runtime import Runtime
from orchestrator.store.models import Enrolment, OutboxMessage
from tests.support.factories import person, plan

SPEC_TOML = """
name = "Re-consent winter 2026"
deadline_days = 30
[audience]
kinds = ["customer", "prospect"]
customer_inactive_months = 12
prospect_inactive_months = 36
[[steps]]
day = 0
channel = "email"
template = "reconsent"
[[steps]]
day = 7
channel = "email"
template = "reminder"
[[steps]]
day = 10
channel = "sms"
template = "reconsent"
"""


def test_spec_campaign_file_is_accepted(rt: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(SPEC_TOML, encoding="utf-8")
    campaign_id = create_campaign(rt, load_plan(path))
    assert campaign_status(rt, campaign_id)["state"] == "draft"


def test_broken_campaign_files(rt: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("name = [", encoding="utf-8")
    with pytest.raises(InputError, match="not valid TOML"):
        load_plan(path)
    path.write_text(SPEC_TOML.replace('template = "reminder"', 'template = "nosuch"'), encoding="utf-8")
    with pytest.raises(InputError, match="template 'nosuch': missing fr/subject.txt"):
        create_campaign(rt, load_plan(path))


def test_sms_over_budget_is_refused_at_creation(make_rt: Callable[..., Runtime], tmp_path: Path) -> None:
    rt = make_rt(sender={"name": "Une enseigne au nom vraiment très très long pour déborder du SMS"})
    with pytest.raises(InputError, match=r"steps\[0\] \(sms.*exceeds sms.segment_budget = 1"):
        create_campaign(rt, plan(steps=[{"day": 0, "channel": "sms", "template": "reconsent"}]))


def test_preview_shows_every_step_per_locale_with_sms_segments(rt: Runtime) -> None:
    campaign_id = create_campaign(rt, plan())
    previews = preview_campaign(rt, campaign_id)
    assert [(p.step, p.locale) for p in previews] == [(0, "fr"), (0, "en"), (1, "fr"), (1, "en"), (2, "fr"), (2, "en")]
    sms_fr = previews[4]
    assert sms_fr.encoding == "GSM-7" and sms_fr.segments == 1 and "STOP au" in sms_fr.text
    assert previews[0].subject and previews[0].html and "désabonner" in previews[0].text


def test_launch_freezes_the_inactive_reachable_unsuppressed_audience(rt: Runtime, write_csv: Callable[..., Path]) -> None:
    import_contacts(rt, write_csv([
        person(1),                                          # inactive customer: in
        person(2, last_activity_at="2026-06-01"),           # active customer: out
        person(3, kind="prospect", last_activity_at="2024-06-01"),   # prospect active within 36 months: out
        person(4, kind="prospect", last_activity_at="2022-06-01"),   # inactive prospect: in
        person(5, email=""),                                # no email for the first step: out
        person(6),                                          # suppressed: out
        person(7, phone=""),                                # email only: in, but no SMS row
    ]))
    with Session(rt.engine) as s:
        suppress(s, rt.key_for("person6@example.org"), "email", "unsubscribed", "test", rt.clock.now())
        s.commit()
    campaign_id = create_campaign(rt, plan())
    assert audience_size(rt, campaign_id) == 3
    assert launch_campaign(rt, campaign_id) == 3
    with Session(rt.engine) as s:
        enrolled = sorted(e.contact_id for e in s.exec(select(Enrolment)))
        rows = list(s.exec(select(OutboxMessage)))
    assert len(enrolled) == 3
    assert len(rows) == 3 + 3 + 2  # two email steps for all, SMS only for those with a phone
    import_contacts(rt, write_csv([person(8)], name="late.csv"))
    assert campaign_status(rt, campaign_id)["enrolled"] == 3  # frozen at launch
    with pytest.raises(StateError):
        launch_campaign(rt, campaign_id)


def test_someone_pending_elsewhere_is_not_enrolled_twice(rt: Runtime, write_csv: Callable[..., Path]) -> None:
    import_contacts(rt, write_csv([person(1)]))
    first = create_campaign(rt, plan())
    assert launch_campaign(rt, first) == 1
    assert launch_campaign(rt, create_campaign(rt, plan(name="second"))) == 0


def test_pause_and_resume_states(rt: Runtime) -> None:
    campaign_id = create_campaign(rt, plan())
    with pytest.raises(StateError):
        set_paused(rt, campaign_id, True)
    launch_campaign(rt, campaign_id)
    assert set_paused(rt, campaign_id, True) == "paused"
    assert set_paused(rt, campaign_id, False) == "running"
