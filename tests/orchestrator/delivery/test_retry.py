"""The retry policy is pure: the same inputs give the same next attempt, or give up."""

from __future__ import annotations

import doctest
from datetime import UTC, datetime, timedelta

from orchestrator.config import DispatchConfig
from orchestrator.delivery import retry
from orchestrator.delivery.retry import MAX_BACKOFF, RetryPolicy

T = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_doctests() -> None:
    assert doctest.testmod(retry).failed == 0


def test_delay_doubles_from_the_base_and_stops_at_the_cap() -> None:
    p = RetryPolicy.from_config(DispatchConfig(retry_base_seconds=60, retry_horizon_hours=48))
    delays = [p.next_due(T, first_attempt_at=T, attempts=n, retry_after=None, jitter=1.0) for n in range(1, 12)]
    assert [d - T for d in delays if d] == [min(timedelta(seconds=60 * 2 ** (n - 1)), MAX_BACKOFF)
                                              for n in range(1, 12)]


def test_jitter_spreads_and_retry_after_is_a_floor() -> None:
    p = RetryPolicy(base_seconds=60, horizon=timedelta(hours=1))
    assert p.next_due(T, first_attempt_at=None, attempts=2, retry_after=None, jitter=1.5) == T + timedelta(seconds=180)
    assert p.next_due(T, first_attempt_at=None, attempts=2, retry_after=30, jitter=0.5) == T + timedelta(seconds=60)
    assert p.next_due(T, first_attempt_at=None, attempts=2, retry_after=600, jitter=0.5) == T + timedelta(seconds=600)
    assert 0.5 <= retry.draw_jitter() <= 1.5


def test_gives_up_once_failures_last_the_horizon() -> None:
    p = RetryPolicy(base_seconds=60, horizon=timedelta(hours=48))
    just_before = T - timedelta(hours=48) + timedelta(seconds=1)
    assert p.next_due(T, first_attempt_at=just_before, attempts=20, retry_after=None, jitter=1.0) is not None
    assert p.next_due(T, first_attempt_at=T - timedelta(hours=48), attempts=20, retry_after=None, jitter=1.0) is None
