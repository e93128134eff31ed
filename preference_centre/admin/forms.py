"""The campaign form, turned into the same mapping a campaign TOML file gives (SPEC §10), so both
paths go through ``CampaignPlan.from_mapping`` and get the same validation and error messages."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from typing import Any

from orchestrator.domain.campaign import CampaignPlan
from orchestrator.errors import InputError

STEP_ROWS = 4


def _int(form: Mapping[str, Any], name: str) -> Any:
    """Whole numbers stay numbers; anything else is passed on for from_mapping to name the key.

    >>> _int({"d": " 30 "}, "d"), _int({"d": "x"}, "d"), _int({}, "d")
    (30, 'x', None)
    """
    raw = str(form.get(name) or "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        return raw


def plan_from_form(form: Mapping[str, Any], kinds: list[str]) -> CampaignPlan:
    """Validate the posted form. Step rows whose template is empty are left out.

    >>> p = plan_from_form({"name": "Winter", "deadline_days": "30", "default_locale": "fr",
    ...     "customer_inactive_months": "12", "prospect_inactive_months": "36",
    ...     "step0_day": "0", "step0_channel": "email", "step0_template": "reconsent",
    ...     "step1_day": "", "step1_channel": "email", "step1_template": ""}, ["customer"])
    >>> (p.name, [s.template for s in p.steps], [str(k) for k in p.audience.kinds])
    ('Winter', ['reconsent'], ['customer'])
    """
    steps = []
    for i in range(step_rows(form)):
        template = str(form.get(f"step{i}_template") or "").strip()
        if template:
            steps.append({"day": _int(form, f"step{i}_day"), "channel": str(form.get(f"step{i}_channel") or ""),
                          "template": template})
    data: dict[str, Any] = {
        "name": str(form.get("name") or ""),
        "deadline_days": _int(form, "deadline_days"),
        "default_locale": str(form.get("default_locale") or "fr"),
        "locales": ["fr", "en"],
        "audience": {"kinds": kinds,
                     "customer_inactive_months": _int(form, "customer_inactive_months"),
                     "prospect_inactive_months": _int(form, "prospect_inactive_months")},
        "steps": steps,
    }
    return CampaignPlan.from_mapping(data, where="form")


def plan_from_toml(name: str, content: bytes) -> CampaignPlan:
    """An uploaded campaign file, checked exactly like ``reconsent campaign create FILE.toml``."""
    try:
        data = tomllib.loads(content.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise InputError(f"{name}: not UTF-8 text (save the file as UTF-8)") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{name}: not valid TOML: {exc}") from None
    return CampaignPlan.from_mapping(data, where=name)


def step_rows(values: Mapping[str, Any]) -> int:
    """The step rows the form has: STEP_ROWS, or more for a plan with more steps.

    >>> step_rows({}), step_rows({"step5_template": "x"})
    (4, 6)
    """
    found = [int(m.group(1)) + 1 for k in values if (m := re.fullmatch(r"step(\d+)_template", k))]
    return max([STEP_ROWS, *found])


def form_values(plan: CampaignPlan) -> tuple[dict[str, str], list[str]]:
    """A plan as the form's fields (editing a draft) and its audience's kinds."""
    rule = plan.audience
    values = {"name": plan.name, "deadline_days": str(plan.deadline_days), "default_locale": plan.default_locale,
              "customer_inactive_months": str(rule.customer_inactive_months),
              "prospect_inactive_months": str(rule.prospect_inactive_months)}
    for step in plan.steps:
        values.update({f"step{step.index}_day": str(step.day), f"step{step.index}_channel": step.channel.value,
                       f"step{step.index}_template": step.template})
    return values, [k.value for k in rule.kinds]
