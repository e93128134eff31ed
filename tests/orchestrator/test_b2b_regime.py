"""Professional (B2B) contacts in campaigns (issue 18 §3): ``[audience] b2b`` chooses who is in the
audience; ``b2b_regime = "notice"`` sends professionals an information-and-opposition notice by email
(opt-out): no answer keeps them (``notified`` ledger event, request ``kept``), an objection suppresses
them with proof, and consumers of the same campaign keep the consent regime."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from orchestrator.campaigns.regime import audience_counts
from orchestrator.campaigns.results import iter_results
from orchestrator.campaigns.service import (
    audience_size,
    campaign_status,
    create_campaign,
    launch_campaign,
    preview_campaign,
)
from orchestrator.campaigns.outcomes import campaign_outcomes
from orchestrator.campaigns.sweep import sweep
from orchestrator.consent import ledger
from orchestrator.consent.ledger import Proof
from orchestrator.consent.service import Answer, record_answer
from orchestrator.contacts.service import import_contacts
from orchestrator.domain.campaign import CampaignPlan
from orchestrator.domain.clock import FixedClock
from orchestrator.errors import InputError
from orchestrator.runtime import Runtime
from orchestrator.store.db import session_scope
from orchestrator.store.models import ConsentEvent, Contact, Enrolment, OutboxMessage, SuppressionEntry
from tests.support.factories import STANDARD_STEPS, person, plan


def _plan(**audience: Any) -> CampaignPlan:
    return plan(audience=audience)


@pytest.mark.parametrize(("audience", "message"), [
    ({"b2b": "yes"}, "[audience] b2b: unknown value 'yes' (expected 'include', 'exclude' or 'only')"),
    ({"b2b": True}, "[audience] b2b: unknown value True (expected 'include', 'exclude' or 'only')"),
    ({"b2b_regime": "optout"}, "[audience] b2b_regime: unknown value 'optout' (expected 'consent' or 'notice')"),
    ({"b2b": "exclude", "b2b_regime": "notice"}, "[audience] b2b_regime: 'notice' applies to professional contacts"),
    ({"notice_template": "mine"}, "[audience] notice_template: only used with b2b_regime = 'notice'"),
    ({"b2b_regime": "notice", "notice_template": ""}, "[audience] notice_template: expected a template name"),
    ({"b2bb": "only"}, "[audience]: unknown key 'b2bb' (expected one of ask_partner, b2b, b2b_regime, customer_inactive_months"),
])
def test_campaign_file_errors_name_the_key_and_the_allowed_values(audience: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError) as caught:
        CampaignPlan.from_mapping({"name": "x", "deadline_days": 30, "audience": audience, "steps": STANDARD_STEPS},
                                  where="c.toml")
    text = str(caught.value)
    assert text.startswith("c.toml: ") and message in text and "\n" not in text


def test_notice_needs_an_email_step() -> None:
    with pytest.raises(InputError, match="b2b_regime: 'notice' is sent by email, but no step is an email step"):
        CampaignPlan.from_mapping({"name": "x", "deadline_days": 30, "audience": {"b2b_regime": "notice"},
                                   "steps": [{"day": 0, "channel": "sms", "template": "reconsent"}]})


def test_the_default_plan_reads_and_stores_as_before() -> None:
    default = plan()
    assert (default.audience.b2b, default.audience.b2b_regime) == ("include", "consent")
    assert set(default.to_mapping()["audience"]) == {"kinds", "customer_inactive_months", "prospect_inactive_months"}
    stored = _plan(b2b="only", b2b_regime="notice").to_mapping()
    assert stored["audience"]["b2b"] == "only" and stored["audience"]["notice_template"] == "notice"
    again = CampaignPlan.from_mapping(stored, stored=True)
    assert (again.audience.b2b, again.audience.b2b_regime) == ("only", "notice")


def _mixed(write_csv: Callable[..., Path]) -> Path:
    """Contacts 1–3 consumers, 4–5 professionals (5 without an email address)."""
    return write_csv([person(1), person(2), person(3), person(4, b2b="true"), person(5, b2b="oui", email="")])


@pytest.mark.parametrize(("mode", "enrolled", "pros"), [("include", 5, 2), ("exclude", 3, 0), ("only", 2, 2)])
def test_audience_include_exclude_only(make_rt: Callable[..., Runtime], write_csv: Callable[..., Path],
                                       mode: str, enrolled: int, pros: int) -> None:
    rt = make_rt()
    import_contacts(rt, _mixed(write_csv))
    # a first step by SMS, so that contact 5 (no email) is reachable
    steps = [{"day": 0, "channel": "sms", "template": "reconsent"}, {"day": 1, "channel": "email", "template": "reminder"}]
    campaign_id = create_campaign(rt, plan(steps=steps, audience={"b2b": mode}))
    assert audience_size(rt, campaign_id) == enrolled
    counts = audience_counts(rt, campaign_id)
    assert (counts["b2b"], counts["professional"], counts["consumer"]) == (mode, pros, enrolled - pros)
    assert launch_campaign(rt, campaign_id) == enrolled
    status = campaign_status(rt, campaign_id)
    assert status["enrolled"] == enrolled
    assert (status["audience"]["professional"], status["audience"]["consumer"]) == (pros, enrolled - pros)
    with Session(rt.engine) as s:
        b2b = {c.id: c.b2b for c in s.exec(select(Contact))}
        chosen = {e.contact_id for e in s.exec(select(Enrolment))}
    assert all(b2b[i] for i in chosen) if mode == "only" else True
    assert not any(b2b[i] for i in chosen) if mode == "exclude" else True


def _notice_campaign(rt: Runtime, write_csv: Callable[..., Path]) -> int:
    import_contacts(rt, _mixed(write_csv))
    campaign_id = create_campaign(rt, _plan(b2b_regime="notice"))
    launch_campaign(rt, campaign_id)
    return campaign_id


def test_a_notice_campaign_sends_the_notice_by_email_to_professionals_only(
        make_rt: Callable[..., Runtime], write_csv: Callable[..., Path]) -> None:
    rt = make_rt()
    import_contacts(rt, _mixed(write_csv))
    campaign_id = create_campaign(rt, _plan(b2b_regime="notice"))
    previews = {(p.template, p.channel, p.locale): p for p in preview_campaign(rt, campaign_id)}
    assert previews[("notice", "email", "fr")].subject == \
        "Boutique Lumière\u00a0: nous continuerons de vous écrire à votre adresse professionnelle"
    assert "Vous pouvez vous y opposer à tout moment" in previews[("notice", "email", "fr")].text
    assert "object at any time" in previews[("notice", "email", "en")].text
    assert audience_counts(rt, campaign_id)["notice"] == 1  # contact 4; contact 5 has no email address
    launch_campaign(rt, campaign_id)
    with Session(rt.engine) as s:
        rows = {(m.contact_id, m.step): (m.channel, m.template) for m in s.exec(select(OutboxMessage))}
    assert rows[(4, 0)] == ("email", "notice") and rows[(4, 1)] == ("email", "notice")
    assert (4, 2) not in rows  # no SMS for a professional under the notice: SMS stays opt-in
    assert rows[(1, 0)] == ("email", "reconsent") and rows[(1, 2)] == ("sms", "reconsent")
    assert not any(c == 5 for c, _ in rows)  # no email address: not reachable on the first (email) step


def test_no_answer_to_the_notice_keeps_the_professional_with_proof(
        make_rt: Callable[..., Runtime], write_csv: Callable[..., Path], clock: FixedClock) -> None:
    rt = make_rt(retention={"after_expiry": "anonymise"})
    campaign_id = _notice_campaign(rt, write_csv)
    clock.advance(timedelta(days=31))
    report = sweep(rt)
    assert (report.kept, report.expired) == (1, 3)
    assert "1 kept (B2B notice, no objection)" in report.summary()
    with Session(rt.engine) as s:
        states = {e.contact_id: e.state for e in s.exec(select(Enrolment))}
        events = [(e.contact_id, e.channel, e.action, e.source, e.purpose, e.campaign_id)
                  for e in s.exec(select(ConsentEvent).order_by(ConsentEvent.id))]
        suppressed = {(e.key, e.channel): e.reason for e in s.exec(select(SuppressionEntry))}
        pro = s.get(Contact, 4)
        consumer = s.get(Contact, 1)
        chain = ledger.verify(s)
        answered = s.exec(select(Enrolment).where(Enrolment.contact_id == 4)).one().answered_at
    assert states == {1: "expired", 2: "expired", 3: "expired", 4: "kept"}
    assert (4, "email", "notified", "sweep", "marketing", campaign_id) in events
    assert (4, "sms", "expired", "sweep", "marketing", campaign_id) in events  # SMS: opt-in, as anyone's
    assert (rt.key_for("person4@example.org"), "email") not in suppressed
    assert suppressed[(rt.key_for("+33612340004"), "sms")] == "no_response"
    assert pro is not None and pro.email == "person4@example.org" and pro.erased_at is None  # data kept
    assert answered is None  # kept at the deadline is not an answer
    # consumers of the same campaign: the consent regime, as before
    assert suppressed[(rt.key_for("person1@example.org"), "email")] == "no_response"
    assert consumer is not None and consumer.erased_at is not None
    assert chain.broken_at is None
    status = campaign_status(rt, campaign_id)
    assert (status["kept"], status["expired"]) == (1, 3)
    results = {r.external_id: r for r in iter_results(rt, campaign_id)}
    assert results["C-4"].state == "kept" and results["C-4"].email_consent == "opt_out"
    assert results["C-4"].source == "sweep" and results["C-4"].event_hash
    assert results["C-1"].state == "expired"
    assert campaign_outcomes(rt, campaign_id).counts["kept"] == 1


def test_an_objection_to_the_notice_suppresses_with_proof(
        make_rt: Callable[..., Runtime], write_csv: Callable[..., Path], clock: FixedClock) -> None:
    rt = make_rt()
    campaign_id = _notice_campaign(rt, write_csv)
    record_answer(rt, 4, campaign_id, Answer(channels={"email": False, "sms": False}),
                  Proof(source="preference_centre", campaign_id=campaign_id))
    clock.advance(timedelta(days=31))
    report = sweep(rt)
    assert report.kept == 0
    with Session(rt.engine) as s:
        state = s.exec(select(Enrolment).where(Enrolment.contact_id == 4)).one().state
        events = [(e.channel, e.action) for e in s.exec(select(ConsentEvent).where(ConsentEvent.contact_id == 4))]
        entry = s.exec(select(SuppressionEntry).where(
            SuppressionEntry.key == rt.key_for("person4@example.org"))).one()
    assert state == "declined" and ("email", "declined") in events and ("email", "notified") not in events
    assert entry.channel == "email" and entry.reason == "unsubscribed"


def test_a_bounced_professional_is_not_kept(make_rt: Callable[..., Runtime], write_csv: Callable[..., Path],
                                            clock: FixedClock) -> None:
    rt = make_rt()
    campaign_id = _notice_campaign(rt, write_csv)
    with Session(rt.engine) as s:
        s.add(SuppressionEntry(key=rt.key_for("person4@example.org"), channel="email", reason="bounced",
                               source="test", created_at=clock.now()))
        s.commit()
    clock.advance(timedelta(days=31))
    assert sweep(rt).kept == 0
    assert campaign_status(rt, campaign_id)["kept"] == 0


def _keep(rt: Runtime, campaign_id: int) -> None:
    """What the notice page records for « Continuer à les recevoir »: email, asked alone."""
    record_answer(rt, 4, campaign_id, Answer(channels={"email": True}, asked=("email",)),
                  Proof(source="preference_centre", campaign_id=campaign_id))


def test_a_professional_who_keeps_loses_sms_at_the_deadline_as_a_silent_one(
        make_rt: Callable[..., Runtime], write_csv: Callable[..., Path], clock: FixedClock) -> None:
    """SMS stays opt-in under the notice: "keep" records nothing on SMS when answered, and at the
    deadline the phone is expired and suppressed (no_response), as for a professional who said nothing."""
    rt = make_rt(retention={"after_expiry": "anonymise"})
    campaign_id = _notice_campaign(rt, write_csv)
    _keep(rt, campaign_id)
    with Session(rt.engine) as s:
        assert not list(s.exec(select(ConsentEvent).where(ConsentEvent.contact_id == 4, ConsentEvent.channel == "sms")))
    clock.advance(timedelta(days=31))
    sweep(rt)
    with Session(rt.engine) as s:
        events = [(e.channel, e.action, e.source) for e in s.exec(
            select(ConsentEvent).where(ConsentEvent.contact_id == 4).order_by(ConsentEvent.id))]
        suppressed = {(e.key, e.channel): e.reason for e in s.exec(select(SuppressionEntry))}
        state = s.exec(select(Enrolment).where(Enrolment.contact_id == 4)).one().state
        pro = s.get(Contact, 4)
        chain = ledger.verify(s)
    assert events == [("email", "confirmed", "preference_centre"), ("sms", "expired", "sweep")]
    assert suppressed[(rt.key_for("+33612340004"), "sms")] == "no_response"
    assert (rt.key_for("person4@example.org"), "email") not in suppressed
    assert state == "confirmed" and pro is not None and pro.erased_at is None and chain.broken_at is None
    assert sweep(rt).suppressed == 0  # the campaign is completed: nothing twice


def test_a_professional_who_keeps_and_gave_sms_consent_since_keeps_sms(
        make_rt: Callable[..., Runtime], write_csv: Callable[..., Path], clock: FixedClock) -> None:
    rt = make_rt()
    campaign_id = _notice_campaign(rt, write_csv)
    _keep(rt, campaign_id)
    clock.advance(timedelta(days=2))
    with session_scope(rt.engine) as s:
        ledger.append(s, contact_id=4, channel="sms", purpose="marketing", action="granted", at=clock.now(),
                      proof=Proof(source="api"))
    clock.advance(timedelta(days=29))
    sweep(rt)
    with Session(rt.engine) as s:
        sms = [e.action for e in s.exec(select(ConsentEvent).where(ConsentEvent.contact_id == 4,
                                                                   ConsentEvent.channel == "sms"))]
        entries = list(s.exec(select(SuppressionEntry).where(SuppressionEntry.channel == "sms",
                                                             SuppressionEntry.key == rt.key_for("+33612340004"))))
    assert sms == ["granted"] and entries == []
