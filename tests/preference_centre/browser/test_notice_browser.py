"""The B2B notice page (issue 18 §3) in a real browser at 390 px: Chromium driven by Playwright against
uvicorn, the link taken from the real notice email caught by the aiosmtpd test server; axe-core finds
no serious violation (French and English), tap targets ≥ 44 px, nothing wider than the screen, and
"I object" suppresses the address. With RECONSENT_UPDATE_SCREENSHOTS=1 it writes
docs/screenshots/notice-page.png (the picture of docs/preference-centre.md)."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from orchestrator.delivery.worker import dispatch_once
from orchestrator.runtime import Runtime
from orchestrator.store.models import SuppressionEntry
from preference_centre.app import create_app
from tests.preference_centre.browser.test_browser import ARTIFACTS, PHONE, ROOT, Checker, Site, _state
from tests.preference_centre.browser.test_browser import axe_source, browser  # noqa: F401 (fixtures)
from tests.support.factories import launch, person
from tests.support.live_server import live_server
from tests.support.smtp import SmtpServer

pytestmark = pytest.mark.browser


@pytest.fixture
def notice_site(make_rt: Callable[..., Runtime], smtp_server: SmtpServer,
                write_csv: Callable[..., Path]) -> Iterator[Site]:
    rt = make_rt(email={"transport": "smtp", "host": "127.0.0.1", "port": smtp_server.port})
    rows = [person(1, first_name="Zoé", b2b="true"), person(2, first_name="Ann", locale="en", b2b="true")]
    campaign_id = launch(rt, write_csv(rows), locales=["fr", "en"], audience={"b2b_regime": "notice"},
                         steps=[{"day": 0, "channel": "email", "template": "reconsent"}])
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(asyncio.run, dispatch_once(rt)).result().sent == 2
    with live_server(create_app(rt)) as base:
        yield Site(rt, base, smtp_server, campaign_id)


def test_the_notice_page_at_390px_and_objecting(browser: Any, axe_source: str, notice_site: Site) -> None:  # noqa: F811
    mails = {r.rcpt_tos[0]: r.message for r in notice_site.smtp.received}
    assert mails["person1@example.org"]["Subject"] == \
        "Boutique Lumière\u00a0: nous continuerons de vous écrire à votre adresse professionnelle"
    checker = Checker(browser, axe_source, PHONE)
    try:
        page = checker.page
        assert checker.goto(notice_site.link("person2@example.org")).status == 200
        assert page.locator("h1").inner_text() == "Boutique Lumière will keep writing to your work address"
        checker.check("notice-en", notice_site.base)
        assert checker.goto(notice_site.link("person1@example.org")).status == 200
        assert page.locator("h1").inner_text() == ("Boutique Lumière continuera de vous écrire à votre "
                                                   "adresse professionnelle")
        assert page.locator("input[type=checkbox]").count() == 0  # nothing to tick: keep, or object
        checker.check("notice-fr", notice_site.base)
        shot = ARTIFACTS / "screenshots" / "notice-fr-390.png"
        if os.environ.get("RECONSENT_UPDATE_SCREENSHOTS") == "1":
            (ROOT / "docs" / "screenshots").mkdir(parents=True, exist_ok=True)
            shutil.copyfile(shot, ROOT / "docs" / "screenshots" / "notice-page.png")
        assert _state(notice_site.rt, 1) == "pending"  # GET changes nothing
        page.get_by_role("button", name="Je m’y oppose\u00a0: ne plus m’écrire").click()
        page.wait_for_load_state()
        assert page.locator("h1").inner_text() == "Merci, votre choix est enregistré"
        checker.check("notice-done-fr", notice_site.base)
        assert _state(notice_site.rt, 1) == "declined"
        with Session(notice_site.rt.engine) as s:
            entry = s.exec(select(SuppressionEntry).where(SuppressionEntry.channel == "email")).one()
        assert entry.key == notice_site.rt.key_for("person1@example.org") and entry.reason == "unsubscribed"
    finally:
        checker.close()
