"""One writer per concept in consent/: ``withdraw``, the suppression writer, the enrolment transition,
and the one address normaliser that feeds them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import Session, select

from orchestrator.consent import enrolments, suppression
from orchestrator.consent.service import withdraw
from orchestrator.domain.addresses import (
    AddressError,
    normalise_email,
    normalise_phone,
    normalise_sender,
)
from orchestrator.domain.clock import FixedClock
from orchestrator.domain.model import RequestState, SuppressionReason
from orchestrator.errors import InputError
from orchestrator.proof.rights import address_key
from orchestrator.runtime import Runtime
from orchestrator.store.models import Enrolment, SuppressionEntry
from tests.support.factories import launch, person


def _states(rt: Runtime) -> dict[int, tuple[str, object]]:
    with Session(rt.engine) as s:
        return {e.contact_id: (e.state, e.answered_at) for e in s.exec(select(Enrolment))}


@given(start=st.sampled_from(list(RequestState)), target=st.sampled_from(list(RequestState)))
def test_the_transition_rule(start: RequestState, target: RequestState) -> None:
    """Only a pending request moves, and never to pending: the rule ``close`` builds its statement from."""
    allowed = enrolments._movable_to(target)
    assert (start.value in allowed) == (start is RequestState.PENDING and target is not RequestState.PENDING)


def test_close_moves_pending_requests_only_and_never_backwards(rt: Runtime, write_csv: Callable[..., Path],
                                                             clock: FixedClock) -> None:
    campaign_id = launch(rt, write_csv([person(i) for i in range(1, 5)]))
    now = clock.now()
    with Session(rt.engine) as s:
        assert enrolments.answer(s, 1, campaign_id, RequestState.CONFIRMED, now) == "confirmed"
        assert enrolments.close(s, RequestState.EXPIRED, now, ids=[2]) == {2}
        assert enrolments.close(s, RequestState.DECLINED, now, contact_id=3) == {3}
        s.commit()
    later = now + timedelta(days=1)
    with Session(rt.engine) as s:
        # an answered or expired request keeps its state, whatever is asked of it afterwards
        assert enrolments.answer(s, 1, campaign_id, RequestState.DECLINED, later) == "confirmed"
        assert enrolments.answer(s, 2, campaign_id, RequestState.CONFIRMED, later) == "expired"
        assert enrolments.close(s, RequestState.PENDING, later, contact_id=3) == set()
        assert enrolments.close(s, RequestState.CONFIRMED, later, ids=[1, 2, 3]) == set()
        assert enrolments.answer(s, 4, None, RequestState.DECLINED, later) == ""
        assert enrolments.answer(s, 99, campaign_id, RequestState.DECLINED, later) == ""
        s.commit()
    states = _states(rt)
    assert {k: v[0] for k, v in states.items()} == {1: "confirmed", 2: "expired", 3: "declined", 4: "pending"}
    assert states[2][1] is None and states[1][1] is not None  # an expiry is not an answer
    with pytest.raises(ValueError):
        enrolments.close(Session(rt.engine), RequestState.DECLINED, now)


def test_withdraw_suppresses_once_and_declines_only_what_it_is_told(rt: Runtime, write_csv: Callable[..., Path],
                                                                   clock: FixedClock) -> None:
    campaign_id = launch(rt, write_csv([person(1), person(2)]))
    key = rt.key_for("person1@example.org")
    now = clock.now()
    with Session(rt.engine) as s:
        assert withdraw(s, key, "email", SuppressionReason.BOUNCED, "dsn", now)  # a bounce declines nothing
        assert not withdraw(s, key, "email", SuppressionReason.UNSUBSCRIBED, "link", now, decline=[1],
                            campaign_id=campaign_id)
        assert not withdraw(s, None, "sms", SuppressionReason.SMS_STOP, "sms_keyword", now, decline=[2])
        s.commit()
    with Session(rt.engine) as s:
        entries = {(e.key, e.channel): (e.reason, e.source) for e in s.exec(select(SuppressionEntry))}
    assert entries == {(key, "email"): ("bounced", "dsn")}  # the first reason stays
    assert {k: v[0] for k, v in _states(rt).items()} == {1: "declined", 2: "declined"}
    with Session(rt.engine) as s:  # an erasure's reason wins over the earlier one
        assert not withdraw(s, key, "email", SuppressionReason.ERASED, "erasure", now, replace=True)
        assert withdraw(s, key, "sms", SuppressionReason.ERASED, "erasure", now, replace=True)
        s.commit()
    with Session(rt.engine) as s:
        entries = {(e.key, e.channel): (e.reason, e.source) for e in s.exec(select(SuppressionEntry))}
    assert entries == {(key, "email"): ("erased", "erasure"), (key, "sms"): ("erased", "erasure")}


def test_suppress_many_and_lift(rt: Runtime, clock: FixedClock) -> None:
    now = clock.now()
    with Session(rt.engine) as s:
        suppression.suppress(s, "a" * 64, "email", SuppressionReason.UNSUBSCRIBED, "link", now)
        added = suppression.suppress_many(s.connection(), [("a" * 64, "email"), ("a" * 64, "sms"), ("b" * 64, "email"),
                                                           ("b" * 64, "email"), (None, "sms")],
                                          SuppressionReason.NO_RESPONSE, "campaign:1", now)
        assert added == 2
        assert suppression.lift(s, "a" * 64, "email")  # unsubscribed: lifted by a new confirmation
        assert not suppression.lift(s, "b" * 64, "email")  # no_response: not the person's opt-out
        s.commit()
    with Session(rt.engine) as s:
        assert {(e.key[0], e.channel, e.reason) for e in s.exec(select(SuppressionEntry))} == {
            ("a", "sms", "no_response"), ("b", "email", "no_response")}


def test_one_normaliser_for_every_door(rt: Runtime) -> None:
    assert normalise_phone("06 12 34 56 78", "FR") == normalise_phone("+33612345678", "FR") == "+33612345678"
    assert normalise_email("Chloe@Example.ORG") == "Chloe@example.org"
    with pytest.raises(AddressError, match="not a valid number for its region"):
        normalise_phone("+33 6 12", "FR")
    with pytest.raises(AddressError, match="not a phone number"):
        normalise_phone("hello", "FR")
    # Twilio's From: a national form finds the same key as the stored E.164; a short code is kept
    assert normalise_sender("+33 6 12 34 56 78", "FR") == "+33612345678"
    assert normalise_sender("36180", "FR") == "36180"
    # rights look-ups validate phones as the import does (before: any parseable number was hashed)
    assert address_key(rt, phone="06 12 34 56 78") == ("phone_key", rt.key_for("+33612345678"))
    with pytest.raises(InputError, match="--phone: not a valid number for its region"):
        address_key(rt, phone="+33 6 12")
    # the suppression list's check and import say it in their own words
    with pytest.raises(InputError, match="not a valid phone number"):
        suppression.normalise(rt, "+33 6 12")
    with pytest.raises(InputError, match="neither an email"):
        suppression.normalise(rt, "hello")
    with pytest.raises(InputError, match="not a valid email"):
        suppression.normalise(rt, "a@b@c")
