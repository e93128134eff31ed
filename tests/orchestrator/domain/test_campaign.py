import pytest

from orchestrator.domain.campaign import CampaignPlan
from orchestrator.domain.model import Channel
from orchestrator.errors import InputError

GOOD = {
    "name": "Re-consent winter 2026",
    "deadline_days": 30,
    "audience": {"kinds": ["customer", "prospect"], "customer_inactive_months": 12, "prospect_inactive_months": 36},
    "steps": [
        {"day": 0, "channel": "email", "template": "reconsent"},
        {"day": 7, "channel": "email", "template": "reminder"},
        {"day": 10, "channel": "sms", "template": "reconsent"},
    ],
}


def test_spec_example_parses() -> None:
    plan = CampaignPlan.from_mapping(GOOD)
    assert [s.channel for s in plan.steps] == [Channel.EMAIL, Channel.EMAIL, Channel.SMS]
    assert plan.audience.prospect_inactive_months == 36
    assert CampaignPlan.from_mapping(plan.to_mapping()) == plan


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": ""}, "'name' is required"),
        ({"deadline_days": 0}, "'deadline_days' must be a whole number > 0"),
        ({"deadline_days": 99999999999}, "'deadline_days' must be a whole number > 0 and ≤ 730, got 99999999999"),
        ({"deadline_days": 30.5}, "'deadline_days' must be a whole number > 0 and ≤ 730, got 30.5"),
        ({"audience": {"customer_inactive_months": 10**12}}, "customer_inactive_months must be a whole number > 0 and ≤ 240"),
        ({"audience": {"prospect_inactive_months": -3}}, "prospect_inactive_months must be a whole number > 0 and ≤ 240"),
        ({"sms_segment_budget": 0}, "'sms_segment_budget' must be a whole number > 0 and ≤ 10, got 0"),
        ({"steps": [{"day": -1, "channel": "email", "template": "t"}]}, "steps[0]: 'day' must be a whole number ≥ 0"),
        ({"locales": ["fr", 3]}, "'default_locale' ('fr') must be one of 'locales'"),
        ({"steps": []}, "at least one [[steps]]"),
        ({"steps": [{"day": 0, "channel": "fax", "template": "t"}]}, "steps[0]: 'channel' must be 'email' or 'sms'"),
        ({"steps": [{"day": 40, "channel": "email", "template": "t"}]}, "is not before the deadline"),
        ({"steps": [{"day": 0, "channel": "email"}]}, "steps[0]: 'template' is required"),
        ({"steps": [{"day": 0, "channel": "email", "template": "t", "colour": 1}]}, "unknown key 'colour'"),
        ({"audience": {"kinds": ["robot"]}}, "unknown kind 'robot'"),
        ({"surprise": True}, "unknown key 'surprise'"),
        ({"steps": [{"day": 5, "channel": "email", "template": "a"}, {"day": 1, "channel": "email", "template": "b"}]},
         "in order of 'day'"),
    ],
)
def test_broken_campaigns_name_the_field(change: dict, message: str) -> None:
    with pytest.raises(InputError) as err:
        CampaignPlan.from_mapping({**GOOD, **change}, where="c.toml")
    assert message in str(err.value)
    assert str(err.value).startswith("c.toml")


def test_locale_fallback() -> None:
    plan = CampaignPlan.from_mapping(GOOD)
    assert plan.pick_locale("en-GB") == "en"
    assert plan.pick_locale("de") == "fr"
    assert plan.pick_locale(None) == "fr"
