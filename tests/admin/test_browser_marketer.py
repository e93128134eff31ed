"""Issue 16's console flows in headless Chromium at 1280 px and 390 px, axe-core on every page (no
serious or critical violation, nothing wider than the screen): the import's mapping step, a test
send, and a planned launch."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orchestrator.campaigns.service import campaign_status, create_campaign
from orchestrator.contacts.service import import_contacts
from orchestrator.runtime import Runtime
from tests.admin.conftest import ADMIN
from tests.admin.test_browser import axe_serious, browser, served  # noqa: F401 - fixtures
from tests.support.factories import person, plan

pytestmark = pytest.mark.browser
SIZES = {"1280": {"width": 1280, "height": 800}, "390": {"width": 390, "height": 844}}
EXPORT = ("N° adhérent;Statut;Courriel;Prénom;Dernière activité\r\n"
          "A-1;client;zoe@exemple.fr;Zoé;31/03/2024\r\nA-2;prospect;rene@exemple.fr;René;05/01/2019\r\n")


@pytest.mark.parametrize("size", list(SIZES))
def test_mapping_step_test_send_and_planned_launch(served: tuple[Runtime, str], browser: Any,  # noqa: F811
                                                   write_csv: Callable[..., Path], tmp_path: Path, size: str) -> None:
    rt, base = served
    import_contacts(rt, write_csv([person(1)]))
    campaign_id = create_campaign(rt, plan("Hiver"))
    context = browser.new_context(viewport=SIZES[size], locale="fr-FR", bypass_csp=True)
    page = context.new_page()
    problems: dict[str, list[str]] = {}

    def check(name: str) -> None:
        problems[name] = axe_serious(page)
        if not page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"):
            wide = page.evaluate("""() => [...document.querySelectorAll('body *')]
                .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1 && !e.closest('.scroll'))
                .map(e => e.tagName + '#' + e.id + '.' + e.className).slice(0, 5)""")
            problems[name].append(f"wider than the screen: {wide}")

    page.goto(f"{base}/admin/login")
    page.fill("#email", ADMIN[0])
    page.fill("#password", ADMIN[1])
    page.click("button.primary")
    page.wait_for_url(f"{base}/admin/")

    page.goto(f"{base}/admin/contacts")
    assert "last_activity_at" in page.inner_text("#expected-columns")
    check("contacts")
    export = tmp_path / "export.csv"
    export.write_bytes(EXPORT.encode("cp1252"))
    page.set_input_files("#file", str(export))
    page.click("form[action='/admin/contacts/import'] button")
    page.locator("#mapping").wait_for()
    assert "Windows-1252" in page.inner_text("#mapping") and "Zoé" in page.inner_text("#mapping table")
    check("mapping")
    page.select_option("#map_external_id", "N° adhérent")
    page.select_option("#map_kind", "Statut")
    assert page.input_value("#map_email") == "Courriel"
    page.click("#mapping button")
    page.locator("[role=status]", has_text="2 lignes lues").wait_for()
    check("import-report")

    page.goto(f"{base}/admin/campaigns/{campaign_id}")
    page.fill("#to", "moi@exemple.fr")
    page.click("#test-send button")
    page.locator("#test-results").wait_for()
    assert "[TEST]" in page.inner_text("#test-results")
    check("campaign-tested")
    page.fill("#at", "2026-11-26T09:00")
    page.click("form.schedule button")
    page.wait_for_url(re.compile(r".*/schedule$"))
    check("confirm-schedule")
    page.click("text=Oui")
    page.locator("#launch-at").wait_for()
    check("campaign-scheduled")
    assert campaign_status(rt, campaign_id)["state"] == "scheduled"
    context.close()
    assert {k: v for k, v in problems.items() if v} == {}
