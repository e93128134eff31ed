"""Topics and named partners in a real browser at 390 px (issue 18): axe-core finds nothing serious, tap
targets are 44 px, "all listed partners" works without JavaScript (the server ticks each), and the
ledger holds one event per choice. The French page's screenshot goes to docs/screenshots/."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from orchestrator.delivery.worker import dispatch_once
from orchestrator.runtime import Runtime
from orchestrator.store.models import ConsentEvent
from preference_centre.app import create_app
from tests.preference_centre.browser.test_browser import (  # noqa: F401 (fixtures)
    PHONE,
    ROOT,
    Checker,
    Site,
    axe_source,
    browser,
)
from tests.preference_centre.test_choices_page import configure
from tests.support.factories import launch, person
from tests.support.live_server import live_server
from tests.support.smtp import SmtpServer

pytestmark = pytest.mark.browser


@pytest.fixture
def choices_site(make_rt: Callable[..., Runtime], smtp_server: SmtpServer,
                 write_csv: Callable[..., Path]) -> Iterator[Site]:
    rt = configure(make_rt(email={"transport": "smtp", "host": "127.0.0.1", "port": smtp_server.port}))
    campaign_id = launch(rt, write_csv([person(1, first_name="Zoé"), person(2, first_name="Ann", locale="en")]),
                         locales=["fr", "en"])
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(asyncio.run, dispatch_once(rt)).result().sent == 2
    with live_server(create_app(rt)) as base:
        yield Site(rt, base, smtp_server, campaign_id)


def granted(rt: Runtime, contact_id: int) -> set[str]:
    with Session(rt.engine) as s:
        return {e.purpose for e in s.exec(select(ConsentEvent).where(ConsentEvent.contact_id == contact_id,
                                                                     ConsentEvent.action == "granted"))}


@pytest.mark.parametrize("js", [True, False], ids=["js", "nojs"])
def test_pick_topics_and_all_partners_on_a_phone(browser: Any, axe_source: str, choices_site: Site,  # noqa: F811
                                                 js: bool) -> None:
    checker = Checker(browser, axe_source, PHONE, js=js)
    try:
        page = checker.page
        assert checker.goto(choices_site.link("person1@example.org")).status == 200
        assert page.get_by_text("Transport Express SA", exact=True).is_visible()
        assert page.get_by_role("link", name="Politique de confidentialité de Banque Verte").is_visible()
        for box in page.locator("input[type=checkbox]").all():
            assert not box.is_checked()  # nothing pre-ticked
        checker.check("preference-choices-fr", choices_site.base)
        if js:
            page.screenshot(path=str(ROOT / "docs" / "screenshots" / "preference-choices-fr-390.png"), full_page=True)
        page.get_by_label("Nouveautés", exact=True).check()
        page.get_by_label("Tous les partenaires de cette liste").check()
        page.get_by_role("button", name="Oui, je reste informé(e)").click()
        page.wait_for_load_state()
        assert page.locator("h1").inner_text() == "Merci, votre choix est enregistré"
        assert "Banque Verte\u00a0: oui" in page.locator("ul.recorded").inner_text()
        checker.check("done-choices-fr", choices_site.base)
        assert granted(choices_site.rt, 1) >= {"topic:news", "partner:transport-express", "partner:banque-verte"}
        assert "topic:sales" not in granted(choices_site.rt, 1)
        # in English, for the other person: the page in their language, axe-clean too
        assert checker.goto(choices_site.link("person2@example.org")).status == 200
        assert page.get_by_text("offer you its delivery services").is_visible()
        checker.check("preference-choices-en", choices_site.base)
    finally:
        checker.close()
