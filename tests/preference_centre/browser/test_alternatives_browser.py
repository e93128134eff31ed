"""The alternatives to leaving in a real browser at 390 px (issue 18 §1): on the preference page and on
the unsubscribe landing page, checked with axe-core like every page (tests/preference_centre/browser/
test_browser.py), chosen with a click, no JavaScript needed. With RECONSENT_UPDATE_SCREENSHOTS=1 the
run writes docs/screenshots/alternatives-{page,landing}-fr-390.png (the pictures of
docs/preference-centre.md)."""

from __future__ import annotations

import os
import shutil
from typing import Any

import pytest
from sqlmodel import Session, select

from orchestrator.store.models import ConsentEvent
from tests.preference_centre.browser import test_browser as shared
from tests.preference_centre.browser.test_browser import ARTIFACTS, PHONE, ROOT, Checker, Site, _state

# the shared fixtures of the preference centre's browser tests
browser, axe_source, site = shared.browser, shared.axe_source, shared.site

pytestmark = pytest.mark.browser
NBSP = "\u00a0"


def _keep(name: str) -> None:
    if os.environ.get("RECONSENT_UPDATE_SCREENSHOTS") == "1" and not name.endswith("-nojs"):
        shutil.copyfile(ARTIFACTS / "screenshots" / f"{name}-390.png", ROOT / "docs" / "screenshots" / f"{name}-390.png")


def _chosen(site: Site, contact_id: int) -> list[tuple[str, str, str, str | None]]:
    with Session(site.rt.engine) as s:
        return [(e.channel, e.purpose, e.action, e.detail) for e in s.exec(
            select(ConsentEvent).where(ConsentEvent.contact_id == contact_id,
                                       ConsentEvent.purpose.in_(["frequency", "pause"])))]  # type: ignore[attr-defined]


@pytest.mark.parametrize("js", [True, False], ids=["js", "nojs"])
def test_pause_from_the_page_and_fewer_messages_from_the_landing(browser: Any, axe_source: str, site: Site,
                                                                 js: bool) -> None:
    checker = Checker(browser, axe_source, PHONE, js=js)
    name = "" if js else "-nojs"
    try:
        page = checker.page
        checker.goto(site.link("person1@example.org"))
        assert page.get_by_text("Plutôt que de partir").is_visible()
        checker.check("alternatives-page-fr" + name, site.base)
        _keep("alternatives-page-fr" + name)
        page.get_by_role("button", name="Faire une pause de 3 mois").click()
        page.wait_for_load_state()
        assert page.locator("h1").inner_text() == "Merci, votre choix est enregistré"
        assert f"C’est noté{NBSP}: nous ne vous écrirons plus jusqu’au 25 février 2027." in page.locator("body").inner_text()
        assert _state(site.rt, 1) == "confirmed"
        assert _chosen(site, 1) == [("email", "pause", "granted", "2027-02-25"), ("sms", "pause", "granted", "2027-02-25")]
        checker.check("alternatives-chosen-fr" + name, site.base)

        checker.goto(site.link("person1@example.org", kind="u"))
        checker.check("alternatives-landing-fr" + name, site.base)
        _keep("alternatives-landing-fr" + name)
        page.get_by_role("button", name=f"Recevoir moins de messages{NBSP}: une fois par mois").click()
        page.wait_for_load_state()
        assert f"C’est noté{NBSP}: nous vous écrirons au plus une fois par mois." in page.locator("body").inner_text()
        # fewer messages on email: its frequency, and the email pause ends (the SMS one runs on)
        assert _chosen(site, 1)[-2:] == [("email", "frequency", "granted", "monthly"),
                                         ("email", "pause", "withdrawn", "2027-02-25")]
    finally:
        checker.close()
