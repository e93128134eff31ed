from datetime import date

from orchestrator.domain.audience import AudienceRule, months_before
from orchestrator.domain.model import ContactKind


def test_customer_inactive_after_twelve_months_by_default() -> None:
    rule = AudienceRule()
    today = date(2026, 11, 25)
    assert rule.is_inactive("customer", date(2025, 11, 25), today=today)
    assert not rule.is_inactive("customer", date(2025, 11, 26), today=today)


def test_prospect_uses_the_cnil_three_year_rule() -> None:
    rule = AudienceRule()
    today = date(2026, 11, 25)
    assert rule.is_inactive("prospect", date(2023, 11, 25), today=today)
    assert not rule.is_inactive("prospect", date(2024, 6, 1), today=today)


def test_never_active_counts_as_inactive_and_kinds_filter() -> None:
    rule = AudienceRule(kinds=(ContactKind.PROSPECT,))
    assert rule.is_inactive("prospect", None, today=date(2026, 1, 1))
    assert not rule.is_inactive("customer", None, today=date(2026, 1, 1))


def test_months_before_clamps_to_month_end() -> None:
    assert months_before(date(2026, 3, 31), 1) == date(2026, 2, 28)
    assert months_before(date(2024, 3, 31), 1) == date(2024, 2, 29)
    assert months_before(date(2026, 1, 15), 13) == date(2024, 12, 15)
