"""The only way the product reads time.

``RECONSENT_NOW`` (ISO 8601) freezes the clock for every command; tests and the demo move time by
handing a different clock in, never by sleeping.

>>> FixedClock(datetime(2026, 1, 1, tzinfo=UTC)).now().year
2026
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class FixedClock:
    """A clock frozen at ``at``; ``advance`` moves it (for tests and the demo's fast-forward)."""

    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        self.at = as_utc(self.at)

    def now(self) -> datetime:
        return self.at

    def advance(self, delta: timedelta) -> None:
        self.at = self.at + delta


def as_utc(value: datetime) -> datetime:
    """Naive datetimes are taken as UTC (that is how the store keeps them)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def parse_now(text: str) -> FixedClock:
    """Parse ``RECONSENT_NOW``: an ISO 8601 date or datetime (naive = UTC)."""
    try:
        at = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(
            f"RECONSENT_NOW: expected an ISO 8601 date-time like 2026-12-01T09:00:00Z, got {text!r}"
        ) from exc
    return FixedClock(as_utc(at))
