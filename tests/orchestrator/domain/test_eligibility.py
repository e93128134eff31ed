from datetime import datetime, timedelta, timezone

from orchestrator.domain.eligibility import SendFacts, skip_reason
from orchestrator.domain.model import SkipReason

NOW = datetime(2026, 11, 25, 9, tzinfo=timezone.utc)


def facts(**kw: object) -> SendFacts:
    base = dict(campaign_state="running", request_state="pending", suppressed=False, has_address=True,
                deadline=NOW + timedelta(days=1), now=NOW)
    base.update(kw)
    return SendFacts(**base)  # type: ignore[arg-type]


def test_pending_person_in_running_campaign_is_sent() -> None:
    assert skip_reason(facts()) is None


def test_any_answer_stops_further_steps() -> None:
    assert skip_reason(facts(request_state="confirmed")) is SkipReason.ANSWERED
    assert skip_reason(facts(request_state="declined")) is SkipReason.ANSWERED


def test_suppression_wins_over_everything() -> None:
    assert skip_reason(facts(suppressed=True, request_state="confirmed")) is SkipReason.SUPPRESSED


def test_past_deadline_and_missing_address() -> None:
    assert skip_reason(facts(deadline=NOW)) is SkipReason.EXPIRED
    assert skip_reason(facts(request_state="expired")) is SkipReason.EXPIRED
    assert skip_reason(facts(has_address=False)) is SkipReason.NO_ADDRESS
