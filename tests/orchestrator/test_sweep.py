"""The batched sweep [R5]: across several batches, every non-responder is expired with one ledger
event per reachable channel (hash chain intact), suppressed (no_response) unless already suppressed,
anonymised per retention; their queued messages are skipped; confirmed people are untouched."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Callable

import pytest
from sqlalchemy import insert
from sqlmodel import Session, select

from orchestrator.consent import ledger
from orchestrator.campaigns import sweep as sweep_module
from orchestrator.consent.service import Answer, record_answer
from orchestrator.domain.clock import FixedClock
from orchestrator.consent.ledger import Proof
from orchestrator.runtime import Runtime
from orchestrator.store.models import ConsentEvent, Contact, Enrolment, OutboxMessage, SuppressionEntry
from orchestrator.campaigns.sweep import sweep
from tests.support.factories import launch, person


@pytest.mark.parametrize("policy", ["anonymise", "keep"])
def test_sweep_in_batches(make_rt: Callable[..., Runtime], write_csv: Callable[..., Path], clock: FixedClock,
                          monkeypatch: pytest.MonkeyPatch, policy: str) -> None:
    monkeypatch.setattr(sweep_module, "BATCH", 2)  # 7 enrolments → 4 batches
    rt = make_rt(retention={"after_expiry": policy})
    rows = [person(i) for i in range(1, 8)]
    rows[5]["phone"] = ""  # contact 6: email only
    campaign_id = launch(rt, write_csv(rows))
    record_answer(rt, 1, campaign_id, Answer(channels={"email": True, "sms": True}), Proof(source="preference_centre"))
    with Session(rt.engine) as s:  # contact 3's phone was already suppressed (STOP) before the deadline
        s.execute(insert(SuppressionEntry).values(key=rt.key_for("+33612340003"), channel="sms", reason="sms_stop",
                                                  source="test", created_at=clock.now()))
        s.commit()

    clock.advance(timedelta(days=31))
    report = sweep(rt)

    assert report.expired == 6
    assert report.suppressed == 6 * 2 - 1 - 1  # minus contact 6's missing phone and contact 3's existing entry
    assert report.anonymised == (6 if policy == "anonymise" else 0)
    with Session(rt.engine) as s:
        chain = ledger.verify(s)
        events = list(s.exec(select(ConsentEvent).where(ConsentEvent.action == "expired")))
        entries = {(e.key, e.channel): e.reason for e in s.exec(select(SuppressionEntry))}
        states = {e.contact_id: e.state for e in s.exec(select(Enrolment))}
        queued = list(s.exec(select(OutboxMessage).where(OutboxMessage.status.in_(["pending", "sending"]))))  # type: ignore[attr-defined]
        contacts = {c.id: c for c in s.exec(select(Contact))}
    assert chain.broken_at is None and chain.reason is None and chain.events == 2 + 11
    assert sorted((e.contact_id, e.channel) for e in events) == sorted(
        [(i, "email") for i in range(2, 8)] + [(i, "sms") for i in range(2, 8) if i != 6])
    assert all(e.source == "sweep" and e.campaign_id == campaign_id for e in events)
    assert entries[(rt.key_for("+33612340003"), "sms")] == "sms_stop"  # the first reason stays
    assert entries[(rt.key_for("person4@example.org"), "email")] == "no_response"
    assert len(entries) == 11  # 6 emails + 5 phones of the non-responders
    assert states == {1: "confirmed", **{i: "expired" for i in range(2, 8)}}
    assert queued == []
    if policy == "anonymise":
        assert contacts[4].email is None and contacts[4].email_key is None and contacts[4].erased_at is not None
        assert contacts[4].external_id == "C-4" and contacts[4].attributes == {}  # the CRM id stays (issue 17)
    else:
        assert contacts[4].email == "person4@example.org" and contacts[4].erased_at is None
    assert contacts[1].email == "person1@example.org" and contacts[1].erased_at is None


def test_a_send_in_flight_is_left_to_its_sender_an_abandoned_claim_is_skipped(
        make_rt: Callable[..., Runtime], write_csv: Callable[..., Path], clock: FixedClock) -> None:
    rt = make_rt()
    launch(rt, write_csv([person(1), person(2)]), steps=[{"day": 0, "channel": "email", "template": "reconsent"}])
    clock.advance(timedelta(days=31))
    with Session(rt.engine) as s:
        live, dead = s.exec(select(OutboxMessage).order_by(OutboxMessage.id)).all()
        live.status, live.claimed_by, live.claimed_until = "sending", "worker-a", clock.now() + timedelta(minutes=5)
        dead.status, dead.claimed_by, dead.claimed_until = "sending", "worker-b", clock.now() - timedelta(minutes=5)
        s.add(live)
        s.add(dead)
        s.commit()
    sweep(rt)
    with Session(rt.engine) as s:
        statuses = [(r.status, r.skip_reason) for r in s.exec(select(OutboxMessage).order_by(OutboxMessage.id))]
    assert statuses == [("sending", None), ("skipped", "expired")]


def test_an_answer_committed_after_the_batch_was_read_is_kept(
        make_rt: Callable[..., Runtime], write_csv: Callable[..., Path], clock: FixedClock) -> None:
    """The sweep reads a batch, then a person confirms, then the batch is expired: that person stays
    confirmed — no expiry, no suppression entry, no anonymisation — and the others are expired."""
    rt = make_rt()
    campaign_id = launch(rt, write_csv([person(i) for i in range(1, 4)]))
    clock.advance(timedelta(days=31))
    now = clock.now()
    with Session(rt.engine) as s:
        stale = s.execute(
            select(Enrolment.id, Enrolment.contact_id.label("enrolled"), Enrolment.enrolled_at,  # type: ignore[attr-defined]
                   Contact.id.label("contact_id"),  # type: ignore[attr-defined]
                   Contact.email, Contact.phone, Contact.email_key, Contact.phone_key, Contact.erased_at)
            .join(Contact, Contact.id == Enrolment.contact_id)  # type: ignore[arg-type]
            .order_by(Enrolment.id)).all()
    assert len(stale) == 3
    record_answer(rt, 2, campaign_id, Answer(channels={"email": True, "sms": True}), Proof(source="preference_centre"))

    report = sweep_module.SweepReport()
    with Session(rt.engine) as s:
        sweep_module._expire_batch(rt, s, stale, campaign_id, now, report)
        s.commit()

    assert report.expired == 2
    with Session(rt.engine) as s:
        states = {e.contact_id: e.state for e in s.exec(select(Enrolment))}
        expired_events = {e.contact_id for e in s.exec(select(ConsentEvent).where(ConsentEvent.action == "expired"))}
        keys = {e.key for e in s.exec(select(SuppressionEntry))}
        contact2 = s.get(Contact, 2)
        assert ledger.verify(s).broken_at is None
    assert states == {1: "expired", 2: "confirmed", 3: "expired"}
    assert expired_events == {1, 3}
    assert rt.key_for("person2@example.org") not in keys and rt.key_for("person1@example.org") in keys
    assert contact2 is not None and contact2.email == "person2@example.org" and contact2.erased_at is None
