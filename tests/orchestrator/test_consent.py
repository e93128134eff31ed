"""The preference page's fast paths pinned to the obvious ones they replaced.

``page_facts`` (one Core statement) must say what the ORM reads plus ``ledger.current_consent`` say,
and ``record_answer`` (one ``append_many``, Core statements) must leave the same rows as one
``ledger.append`` per event with ORM reads and writes. Pairs of contacts with the same addresses
shape get the same history, one through each path, and are compared after every step.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete
from sqlmodel import Session, col, select

from orchestrator.consent import ledger
from orchestrator.consent.service import (
    LIFTABLE,
    Answer,
    contact_channels,
    is_suppressed,
    key_of,
    page_facts,
    record_answer,
    record_unsubscribe,
    suppress,
)
from orchestrator.domain.model import (
    ConsentAction,
    ConsentSource,
    Purpose,
    RequestState,
    SuppressionReason,
)
from orchestrator.errors import NotFoundError
from orchestrator.consent.ledger import Proof
from orchestrator.runtime import Runtime
from orchestrator.store.db import session_scope
from orchestrator.store.models import Campaign, ConsentEvent, Contact, Enrolment, SuppressionEntry
from tests.support.factories import launch, person

#: (fast, reference) contact numbers: both channels, email only, SMS only
PAIRS = [(1, 2), (3, 4), (5, 6)]


def reference_record_answer(rt: Runtime, contact_id: int, campaign_id: int | None, answer: Answer, proof: Proof) -> str:
    """record_answer as it was before the fast path: ORM reads, one ledger.append per event."""
    now = rt.clock.now()
    with session_scope(rt.engine) as session:
        contact = session.get(Contact, contact_id)
        if contact is None or contact.erased_at is not None:
            raise NotFoundError("unknown contact")
        reachable = contact_channels(contact)
        confirms = any(answer.channels.get(c.value) for c in reachable)
        for channel in reachable:
            chosen = bool(answer.channels.get(channel.value))
            key = key_of(contact, channel)
            if chosen:
                ledger.append(session, contact_id=contact_id, channel=channel, purpose=Purpose.MARKETING,
                              action=ConsentAction.CONFIRMED, at=now, proof=proof)
                session.execute(delete(SuppressionEntry).where(
                    SuppressionEntry.key == key, SuppressionEntry.channel == channel.value,  # type: ignore[arg-type]
                    SuppressionEntry.reason.in_(LIFTABLE)))  # type: ignore[attr-defined]
            else:
                # issue 14 §7: a channel left unticked next to one confirmed is "not granted"
                ledger.append(session, contact_id=contact_id, channel=channel, purpose=Purpose.MARKETING,
                              action=ConsentAction.NOT_GRANTED if confirms else ConsentAction.DECLINED,
                              at=now, proof=proof)
                suppress(session, key, channel,
                         SuppressionReason.NOT_GRANTED if confirms else SuppressionReason.UNSUBSCRIBED, proof.source, now)
            if answer.partners:
                ledger.append(session, contact_id=contact_id, channel=channel, purpose=Purpose.PARTNERS,
                              action=ConsentAction.GRANTED, at=now, proof=proof)
        if confirms:
            contact.consented_at = now
            session.add(contact)
        if campaign_id is None:
            return ""
        enrolment = session.execute(select(Enrolment).where(
            Enrolment.contact_id == contact_id, Enrolment.campaign_id == campaign_id)).scalar_one_or_none()
        if enrolment is None:
            return ""
        target = RequestState.CONFIRMED if confirms else RequestState.DECLINED
        if RequestState.can_move(RequestState(enrolment.state), target):
            enrolment.state = target.value
            enrolment.answered_at = now
            session.add(enrolment)
        return enrolment.state


def reference_facts(rt: Runtime, contact_id: int, campaign_id: int | None) -> tuple[Any, ...]:
    """What the page showed before: three ORM reads, current_consent, one suppression read per channel."""
    with session_scope(rt.engine) as session:
        contact = session.get(Contact, contact_id)
        if contact is None or contact.erased_at is not None:
            raise NotFoundError("contact gone")
        campaign = session.get(Campaign, campaign_id) if campaign_id else None
        enrolment = None
        if campaign is not None:
            enrolment = session.execute(select(Enrolment).where(
                Enrolment.campaign_id == campaign.id, Enrolment.contact_id == contact.id)).scalar_one_or_none()
        given_ = ledger.current_consent(session, [contact_id])
        channels = [c.value for c in contact_channels(contact)]
        current = {c: given_.get((contact_id, c, Purpose.MARKETING.value)) == "given"
                   and not is_suppressed(session, key_of(contact, c), c) for c in channels}
        person_ = (contact.id, contact.email, contact.phone, contact.email_key, contact.phone_key,
                   contact.first_name, contact.locale)
        return person_, enrolment.state if enrolment is not None else None, current


def fast_facts(rt: Runtime, contact_id: int, campaign_id: int | None) -> tuple[Any, ...]:
    with rt.engine.connect() as conn:
        facts = page_facts(conn, contact_id, campaign_id)
    c = facts.contact
    return (c.id, c.email, c.phone, c.email_key, c.phone_key, c.first_name, c.locale), facts.enrolment_state, facts.current()


def history(rt: Runtime, contact_id: int) -> tuple[Any, ...]:
    """Everything an answer writes about one person, without ids, hashes and keys (which differ by person)."""
    with Session(rt.engine) as s:
        events = [(e.channel, e.purpose, e.action, e.occurred_at, e.source, e.campaign_id, e.step, e.wording_hash,
                   e.wording_name, e.locale, e.ip, e.user_agent)
                  for e in s.exec(select(ConsentEvent).where(ConsentEvent.contact_id == contact_id).order_by(col(ConsentEvent.id)))]
        contact = s.get(Contact, contact_id)
        assert contact is not None
        keys = {contact.email_key: "email-key", contact.phone_key: "phone-key"}
        entries = sorted((keys[x.key], x.channel, x.reason, x.source, x.created_at) for x in s.exec(
            select(SuppressionEntry).where(SuppressionEntry.key.in_([k for k in keys if k]))))  # type: ignore[attr-defined]
        enrolments = [(e.campaign_id, e.state, e.answered_at) for e in s.exec(
            select(Enrolment).where(Enrolment.contact_id == contact_id).order_by(col(Enrolment.id)))]
        return events, entries, enrolments, contact.consented_at


def setup_pairs(rt: Runtime, write_csv: Callable[..., Path]) -> int:
    rows = []
    for fast, ref in PAIRS:
        for n in (fast, ref):
            if fast == 3:
                rows.append(person(n, phone=""))
            elif fast == 5:
                rows.append(person(n, email=""))
            else:
                rows.append(person(n))
    return launch(rt, write_csv(rows))


step = st.one_of(
    st.tuples(st.just("answer"), st.sampled_from(range(len(PAIRS))), st.booleans(), st.booleans(), st.booleans(),
              st.booleans()),
    st.tuples(st.just("unsubscribe"), st.sampled_from(range(len(PAIRS))), st.sampled_from(["email", "sms"])),
    st.tuples(st.just("bounce"), st.sampled_from(range(len(PAIRS))), st.sampled_from(["email", "sms"])),
    st.tuples(st.just("tick"),),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, min_size=1, max_size=8))
def test_answers_and_page_facts_match_the_reference(steps: list[tuple[Any, ...]], rt: Runtime,
                                                   write_csv: Callable[..., Path], clock: Any) -> None:
    from datetime import timedelta

    with Session(rt.engine) as s:
        campaign_id = s.exec(select(Campaign.id)).first() or setup_pairs(rt, write_csv)
    for item in steps:
        kind, pair = item[0], PAIRS[item[1]] if len(item) > 1 else None
        if kind == "tick":
            clock.advance(timedelta(minutes=7))
            continue
        assert pair is not None
        fast, ref = pair
        if kind == "answer":
            _, _, email, sms, partners, with_campaign = item
            cid = campaign_id if with_campaign else None
            proof = Proof(source=ConsentSource.PREFERENCE_CENTRE, campaign_id=cid, wording_name="preference_page",
                          wording_hash="h", locale="fr", ip="192.0.2.1", user_agent="UA <1>")
            answer = Answer({"email": email, "sms": sms}, partners)
            assert record_answer(rt, fast, cid, answer, proof) == reference_record_answer(rt, ref, cid, answer, proof)
        elif kind == "unsubscribe":
            for n in pair:
                record_unsubscribe(rt, n, campaign_id, item[2], Proof(source=ConsentSource.ONE_CLICK))
        else:  # a hard bounce: a suppression an answer must not lift
            for n in pair:
                with session_scope(rt.engine) as session:
                    contact = session.get(Contact, n)
                    assert contact is not None
                    suppress(session, key_of(contact, item[2]), item[2], SuppressionReason.BOUNCED,
                             "bounce", clock.now())
        assert history(rt, fast) == history(rt, ref)
        for cid in (campaign_id, None, campaign_id + 99):
            fast_view, ref_view = fast_facts(rt, fast, cid), reference_facts(rt, ref, cid)
            assert fast_view[1:] == ref_view[1:] and fast_view[0][0] == fast and ref_view[0][0] == ref
            assert fast_facts(rt, ref, cid) == reference_facts(rt, ref, cid)
    with Session(rt.engine) as s:
        assert ledger.verify(s).broken_at is None


def test_page_facts_of_an_erased_or_unknown_contact_is_not_found(rt: Runtime, write_csv: Callable[..., Path]) -> None:
    import pytest

    from orchestrator.proof.rights import erase_person

    campaign_id = launch(rt, write_csv([person(1)]))
    erase_person(rt, email="person1@example.org", source=ConsentSource.PREFERENCE_CENTRE)
    for contact_id in (1, 42):
        with rt.engine.connect() as conn, pytest.raises(NotFoundError):
            page_facts(conn, contact_id, campaign_id)
