"""Small builders shared by tests: rows, campaigns, and the common launch flow."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from orchestrator.campaigns.service import create_campaign, launch_campaign
from orchestrator.contacts.service import import_contacts
from orchestrator.domain.campaign import CampaignPlan
from orchestrator.runtime import Runtime

CSV_HEADER = ["external_id", "kind", "email", "phone", "first_name", "locale", "timezone", "last_activity_at", "b2b"]

STANDARD_STEPS = [
    {"day": 0, "channel": "email", "template": "reconsent"},
    {"day": 7, "channel": "email", "template": "reminder"},
    {"day": 10, "channel": "sms", "template": "reconsent"},
]


def person(n: int, **overrides: str) -> dict[str, str]:
    """An inactive French customer with email and phone."""
    row = {
        "external_id": f"C-{n}", "kind": "customer", "email": f"person{n}@example.org",
        "phone": f"+3361234{n:04d}", "first_name": f"Prénom{n}", "locale": "fr",
        "timezone": "Europe/Paris", "last_activity_at": "2024-01-15", "b2b": "false",
    }
    row.update(overrides)
    return row


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def plan(name: str = "Test campaign", steps: list[dict[str, Any]] | None = None, **extra: Any) -> CampaignPlan:
    return CampaignPlan.from_mapping({"name": name, "deadline_days": 30, "steps": steps or STANDARD_STEPS, **extra})


def launch(rt: Runtime, csv_path: Path | None = None, **plan_kwargs: Any) -> int:
    """Import (if given), create and launch a campaign; returns its id."""
    if csv_path is not None:
        import_contacts(rt, csv_path)
    campaign_id = create_campaign(rt, plan(**plan_kwargs))
    launch_campaign(rt, campaign_id)
    return campaign_id
