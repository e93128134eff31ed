"""A campaign about a newly listed partner (issue 18 §2): ``[audience] ask_partner``. Earlier partner
consents do not cover the new partner; the campaign asks those who grant some partner and were never
asked about this one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlmodel import Session, select

from orchestrator.campaigns.service import create_campaign, launch_campaign
from orchestrator.choices_settings import Partner
from orchestrator.consent.ledger import Proof
from orchestrator.consent.service import Answer, record_answer
from orchestrator.domain.campaign import CampaignPlan
from orchestrator.domain.model import ConsentSource
from orchestrator.errors import InputError
from orchestrator.runtime import Runtime
from orchestrator.store.models import Enrolment
from tests.support.factories import STANDARD_STEPS, launch, person, plan

EXPRESS = Partner("transport-express", "Transport Express SA", (("fr", "livrer"), ("en", "deliver")),
                  "https://transport-express.example/p")
NEWCO = Partner("newco", "NewCo", (("fr", "vous écrire"), ("en", "write to you")), "https://newco.example/p")


def enrolled(rt: Runtime, campaign_id: int) -> list[int]:
    with Session(rt.engine) as s:
        return sorted(e.contact_id for e in s.exec(select(Enrolment).where(Enrolment.campaign_id == campaign_id)))


def answer(rt: Runtime, contact_id: int, campaign_id: int | None, *, partners: bool = False,
           choices: dict[str, bool] | None = None) -> None:
    record_answer(rt, contact_id, campaign_id,
                  Answer(channels={"email": True, "sms": False}, partners=partners, choices=choices or {}),
                  Proof(source=ConsentSource.PREFERENCE_CENTRE, campaign_id=campaign_id))


def test_ask_the_people_who_share_with_partners_about_the_new_one(rt: Runtime, write_csv: Callable[..., Path]) -> None:
    rt.config.partners = [EXPRESS]
    first = launch(rt, write_csv([person(1), person(2), person(3), person(4)]))
    answer(rt, 1, first, choices={"partner:transport-express": True})
    answer(rt, 2, first, partners=True)  # the old unnamed purpose counts as sharing with partners
    answer(rt, 3, first, choices={"partner:transport-express": True})
    answer(rt, 3, None, choices={"partner:transport-express": False})  # withdrew since: not asked
    answer(rt, 4, first)  # no partner at all
    with pytest.raises(InputError, match=r"\[audience\] ask_partner: no partner 'newco' in the config"):
        create_campaign(rt, plan(audience={"ask_partner": "newco"}))
    rt.config.partners = [EXPRESS, NEWCO]
    ask = create_campaign(rt, plan(name="NewCo", audience={"ask_partner": "newco"}))
    launch_campaign(rt, ask)
    assert enrolled(rt, ask) == [1, 2]
    answer(rt, 1, ask, choices={"partner:transport-express": True, "partner:newco": False})  # asked, said no
    answer(rt, 2, ask, choices={"partner:newco": True})
    answer(rt, 4, None, choices={"partner:transport-express": True})  # shares with a partner since
    again = create_campaign(rt, plan(name="NewCo again", audience={"ask_partner": "newco"}))
    launch_campaign(rt, again)
    # 1 left NewCo unticked (no event: nothing is recorded for a choice never granted) but was asked
    assert enrolled(rt, again) == [4]


def test_the_campaign_file_key(rt: Runtime) -> None:
    parsed = CampaignPlan.from_mapping({"name": "x", "deadline_days": 30, "steps": STANDARD_STEPS,
                                        "audience": {"ask_partner": "newco"}})
    assert parsed.audience.ask_partner == "newco"
    assert parsed.to_mapping()["audience"]["ask_partner"] == "newco"
    assert "ask_partner" not in plan().to_mapping()["audience"]  # stored plans of before are unchanged
    with pytest.raises(InputError, match=r"\[audience\] ask_partner: expected the id of a \[\[partners\]\] entry"):
        CampaignPlan.from_mapping({"name": "x", "deadline_days": 30, "steps": STANDARD_STEPS,
                                   "audience": {"ask_partner": "New Co"}})
