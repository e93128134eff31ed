"""The console and broken templates (issue 12): creating a campaign from the console runs the same
checks as the CLI; a campaign whose template broke since is shown with the problem, never a 500; a
campaign paused by dispatch shows why, and which messages could not be built."""

from __future__ import annotations

import asyncio
import html
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import update
from sqlmodel import Session, select

from orchestrator.campaigns.service import create_campaign
from orchestrator.delivery.worker import dispatch_once
from orchestrator.rendering.messages import MessageRenderer
from orchestrator.store.models import Campaign, OutboxMessage
from tests.admin.conftest import Console
from tests.support.factories import launch, person, plan

FORM = {"name": "Winter", "deadline_days": "30", "default_locale": "fr", "kinds": "customer",
        "customer_inactive_months": "12", "prospect_inactive_months": "36",
        "step0_day": "0", "step0_channel": "email", "step0_template": "t"}


def words(page: str) -> str:
    """The page's text: tags out, entities decoded, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def test_a_broken_template_is_refused_by_the_console_with_one_line(admin: Console, tmp_path: Path) -> None:
    root = tmp_path / "tpl"
    shutil.copytree(admin.rt.renderer.root, root / "messages")
    shutil.copytree(root / "messages" / "reconsent", root / "messages" / "t")
    (root / "messages" / "t" / "en" / "body.txt").write_text("Hello {{ frist_name }}\n", encoding="utf-8")
    admin.rt.renderer = MessageRenderer(root)  # type: ignore[misc]
    resp = admin.post("/admin/campaigns", FORM)
    assert resp.status_code == 400
    assert ("steps[0] (email): template 't', en/body.txt line 1: undefined variable 'frist_name' "
            "(see docs/templates.md)") in html.unescape(resp.text)
    with Session(admin.rt.engine) as s:
        assert s.exec(select(Campaign)).all() == []


def test_a_campaign_whose_template_broke_since_is_shown_not_a_500(admin: Console) -> None:
    campaign_id = create_campaign(admin.rt, plan())
    with admin.rt.engine.begin() as conn:  # planted through the store: the checks never saw it
        broken = plan(steps=[{"day": 0, "channel": "sms", "template": "nosuch"}]).to_mapping()
        conn.execute(update(Campaign).where(Campaign.id == campaign_id).values(plan=broken))  # type: ignore[arg-type]
    page = admin.client.get(f"/admin/campaigns/{campaign_id}")
    assert page.status_code == 200
    text = words(page.text)
    assert "Cannot be rendered: template 'nosuch': missing fr/sms.txt" in text
    assert "This campaign cannot be launched until its templates are fixed" in text
    assert "steps[0] (sms): template 'nosuch' — Missing: fr/sms.txt (languages available: none)." in text
    admin.post("/admin/lang", {"lang": "fr"})  # the same problem in the console's other language
    french = words(admin.client.get(f"/admin/campaigns/{campaign_id}").text)
    assert "steps[0] (sms): template 'nosuch' — Manquant : fr/sms.txt (langues disponibles : none)." in french
    assert admin.post(f"/admin/campaigns/{campaign_id}/launch", {"confirm": "yes"}).status_code == 409


def test_a_campaign_paused_by_dispatch_shows_the_reason_and_the_failures(
        admin: Console, write_csv: Callable[..., Path]) -> None:
    rt = admin.rt
    rt.config.dispatch.failure_pause_threshold = 2
    campaign_id = launch(rt, write_csv([person(1), person(2)]), steps=[{"day": 0, "channel": "sms", "template": "reconsent"}])
    with rt.engine.begin() as conn:
        conn.execute(update(OutboxMessage).values(template="nosuch"))
    asyncio.run(asyncio.wait_for(dispatch_once(rt), 10))
    page = admin.client.get(f"/admin/campaigns/{campaign_id}").text
    assert "Paused automatically. paused by dispatch: 2 message(s) could not be built" in words(page)
    assert "Messages that could not be built" in page
    assert ('<td data-key="failed">2</td><td><code lang="en">cannot build message: template &#39;nosuch&#39;: '
            'missing fr/sms.txt</code></td>') in page
    funnel = admin.client.get(f"/admin/campaigns/{campaign_id}/funnel").text
    assert '<td data-key="sms.failed">2</td>' in funnel
