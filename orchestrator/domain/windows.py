"""Send windows in the recipient's time zone [R9].

SMS default: 08:00–21:30, Monday–Saturday, never on French public holidays — with the recipient's
regional ones (``region``: a subdivision of the ``holidays`` package, see
:mod:`orchestrator.domain.places`: Alsace-Moselle's Good Friday and 26 December, each overseas
department's abolition-of-slavery day). A stricter preset (weekdays 08:00–20:00) ships too. A message
due outside the window waits for the next opening.

>>> from datetime import datetime, timezone
>>> w = SendWindow.preset("default")
>>> sunday = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)
>>> w.next_opening(sunday, "Europe/Paris").isoformat()
'2026-11-30T07:00:00+00:00'
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class SendWindow:
    start: time
    end: time
    weekdays: frozenset[int]  # 0 = Monday
    holiday_country: str | None = "FR"

    @classmethod
    def preset(cls, name: str) -> SendWindow:
        if name == "default":
            return cls(time(8, 0), time(21, 30), frozenset(range(6)), "FR")
        if name == "strict":
            return cls(time(8, 0), time(20, 0), frozenset(range(5)), "FR")
        if name == "always":
            return cls(time(0, 0), time(23, 59, 59), frozenset(range(7)), None)
        raise ValueError(f"unknown send window preset {name!r} (expected default, strict or always)")

    @classmethod
    def parse(cls, start: str, end: str, days: list[str], holiday_country: str | None) -> SendWindow:
        try:
            weekdays = frozenset(_DAY_NAMES.index(d.strip().lower()[:3]) for d in days)
        except ValueError:
            raise ValueError(f"days must be names like mon, tue, …, sun; got {days!r}") from None
        return cls(time.fromisoformat(start), time.fromisoformat(end), weekdays, holiday_country or None)

    def is_open(self, moment: datetime, tz: str, region: str | None = None) -> bool:
        local = moment.astimezone(zone(tz))
        return self._open_day(local.date(), region) and self.start <= local.time() < self.end

    def next_opening(self, moment: datetime, tz: str, region: str | None = None) -> datetime:
        """``moment`` itself if open, else the next time the window opens (UTC). ``region``: the
        holiday subdivision of the recipient (None: national holidays only).

        >>> from datetime import timezone
        >>> w = SendWindow.preset("default")
        >>> good_friday = datetime(2027, 3, 26, 9, 0, tzinfo=timezone.utc)
        >>> w.next_opening(good_friday, "Europe/Paris") == good_friday
        True
        >>> w.next_opening(good_friday, "Europe/Paris", "57").isoformat()
        '2027-03-27T07:00:00+00:00'
        """
        if self.is_open(moment, tz, region):
            return moment
        local = moment.astimezone(zone(tz))
        day = local.date()
        if local.time() < self.start and self._open_day(day, region):
            return _at(day, self.start, tz)
        for _ in range(400):
            day += timedelta(days=1)
            if self._open_day(day, region):
                return _at(day, self.start, tz)
        raise ValueError("send window never opens")

    def closes_at(self, moment: datetime, tz: str) -> datetime:
        """When the window that is open at ``moment`` closes (UTC)."""
        local = moment.astimezone(zone(tz))
        return _at(local.date(), self.end, tz)

    def _open_day(self, day: date, region: str | None = None) -> bool:
        if day.weekday() not in self.weekdays:
            return False
        return not (self.holiday_country and day in _holidays(self.holiday_country, day.year, region))


@lru_cache(maxsize=256)
def _holidays(country: str, year: int, region: str | None = None) -> holidays.HolidayBase:
    return holidays.country_holidays(country, subdiv=region, years=year)


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("Europe/Paris")


def _at(day: date, at: time, tz: str) -> datetime:
    return datetime.combine(day, at, tzinfo=zone(tz)).astimezone(UTC)
