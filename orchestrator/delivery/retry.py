"""The retry policy after a transient send failure: pure (no clock, no randomness, no I/O).

The delay doubles from ``dispatch.retry_base_seconds`` with each attempt, is capped at
``MAX_BACKOFF``, is spread by a jitter factor the caller draws (0.5–1.5), and is never shorter than
the provider's Retry-After; once failures have lasted ``dispatch.retry_horizon_hours`` since the
first attempt, the row is given up (failed).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from orchestrator.config import DispatchConfig

MAX_BACKOFF = timedelta(hours=6)


def draw_jitter() -> float:
    """The factor spreading retries of rows that failed together (the only random part)."""
    return random.uniform(0.5, 1.5)


@dataclass(frozen=True)
class RetryPolicy:
    """When to try a transiently failed row again, or ``None``: give up.

    >>> from datetime import timezone
    >>> p = RetryPolicy(base_seconds=60, horizon=timedelta(hours=48))
    >>> t = datetime(2026, 1, 1, tzinfo=timezone.utc)
    >>> p.next_due(t, first_attempt_at=t, attempts=1, retry_after=None, jitter=1.0) - t
    datetime.timedelta(seconds=60)
    >>> p.next_due(t, first_attempt_at=t, attempts=3, retry_after=None, jitter=0.5) - t
    datetime.timedelta(seconds=120)
    >>> p.next_due(t, first_attempt_at=t, attempts=1, retry_after=900, jitter=1.0) - t
    datetime.timedelta(seconds=900)
    >>> p.next_due(t, first_attempt_at=t, attempts=30, retry_after=None, jitter=1.0) - t
    datetime.timedelta(seconds=21600)
    >>> p.next_due(t, first_attempt_at=t - timedelta(hours=48), attempts=9, retry_after=None, jitter=1.0) is None
    True
    """

    base_seconds: float
    horizon: timedelta
    max_backoff: timedelta = MAX_BACKOFF

    @classmethod
    def from_config(cls, cfg: DispatchConfig) -> RetryPolicy:
        return cls(base_seconds=cfg.retry_base_seconds, horizon=timedelta(hours=cfg.retry_horizon_hours))

    def next_due(self, now: datetime, *, first_attempt_at: datetime | None, attempts: int,
                 retry_after: float | None, jitter: float) -> datetime | None:
        """``attempts``: sends tried so far, this one included; ``first_attempt_at`` None means now."""
        first = first_attempt_at or now
        if now - first >= self.horizon:
            return None
        delay = timedelta(seconds=self.base_seconds * 2 ** max(0, attempts - 1))
        delay = min(delay, self.max_backoff) * jitter
        if retry_after:
            delay = max(delay, timedelta(seconds=retry_after))
        return now + delay
