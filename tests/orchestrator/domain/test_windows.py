from datetime import datetime, timezone

from orchestrator.domain.windows import SendWindow


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def test_default_sms_window_in_paris() -> None:
    w = SendWindow.preset("default")
    assert w.is_open(utc(2026, 11, 25, 9, 0), "Europe/Paris")  # Wed 10:00
    assert not w.is_open(utc(2026, 11, 25, 20, 45), "Europe/Paris")  # Wed 21:45
    assert not w.is_open(utc(2026, 11, 29, 10, 0), "Europe/Paris")  # Sunday


def test_french_public_holiday_waits_for_next_day() -> None:
    w = SendWindow.preset("default")
    christmas = utc(2026, 12, 25, 10, 0)
    assert not w.is_open(christmas, "Europe/Paris")
    assert w.next_opening(christmas, "Europe/Paris") == utc(2026, 12, 26, 7, 0)


def test_recipient_time_zone_is_used() -> None:
    w = SendWindow.preset("default")
    moment = utc(2026, 11, 25, 23, 0)  # 00:00 Paris, 19:00 Martinique
    assert not w.is_open(moment, "Europe/Paris")
    assert w.is_open(moment, "America/Martinique")


def test_strict_preset_is_weekdays_until_eight_pm() -> None:
    w = SendWindow.preset("strict")
    assert not w.is_open(utc(2026, 11, 28, 10, 0), "Europe/Paris")  # Saturday
    assert not w.is_open(utc(2026, 11, 25, 19, 30), "Europe/Paris")  # 20:30
    assert w.next_opening(utc(2026, 11, 27, 19, 30), "Europe/Paris") == utc(2026, 11, 30, 7, 0)
