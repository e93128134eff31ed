"""The preference centre in a real browser: Debian's Chromium driven by Playwright, against the app under
a real uvicorn server, with links taken from real emails captured by the aiosmtpd test server.

Every page is checked with axe-core (zero serious/critical violations, French and English), for tap
targets of at least 44 px, for no horizontal scrolling at 320 px, and for requests to our own origin
only. Screenshots, axe results and page weights are written to test-artifacts/.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from orchestrator.delivery.worker import dispatch_once
from orchestrator.domain.clock import FixedClock
from orchestrator.rendering.links import LinkClaims
from orchestrator.runtime import Runtime
from orchestrator.store.models import Contact, Enrolment, SelfServiceRequest, SuppressionEntry
from preference_centre.app import create_app
from tests.support.factories import launch, person
from tests.support.live_server import live_server
from tests.support.smtp import SmtpServer

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("RECONSENT_TEST_CHROMIUM") or "/usr/bin/chromium"
AXE = Path(os.environ.get("RECONSENT_TEST_AXE") or ROOT / ".cache" / "axe-core" / "axe.min.js")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]
PHONE = {"width": 390, "height": 844}
NARROW = {"width": 320, "height": 640}

_GEOMETRY = """() => {
  const small = [];
  for (const el of document.querySelectorAll('a[href], button, input, select, textarea')) {
    const target = el.tagName === 'INPUT' && el.closest('label') ? el.closest('label') : el;
    const r = target.getBoundingClientRect();
    if (r.height < 44 || r.width < 44) small.push(el.outerHTML.slice(0, 80) + ' ' + r.width + 'x' + r.height);
  }
  return {small, scrollWidth: document.documentElement.scrollWidth, width: window.innerWidth};
}"""
_AXE_RUN = """async () => {
  const r = await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}});
  return {passes: r.passes.length, violations: r.violations.map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' '))}))};
}"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: install it (apt-get install chromium) or set RECONSENT_TEST_CHROMIUM")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def axe_source() -> str:
    if not AXE.is_file():
        pytest.fail(f"axe-core not found at {AXE}: run scripts/test.sh once, or set RECONSENT_TEST_AXE")
    return AXE.read_text(encoding="utf-8")


class Site:
    """A launched campaign, its real emails, and the app served by uvicorn."""

    def __init__(self, rt: Runtime, base: str, smtp: SmtpServer, campaign_id: int) -> None:
        self.rt, self.base, self.smtp, self.campaign_id = rt, base, smtp, campaign_id

    def link(self, address: str, kind: str = "p", nth: int = 0) -> str:
        mails = [r.message for r in self.smtp.received if r.rcpt_tos == [address]]
        text = mails[nth].get_body(("plain",)).get_content()  # type: ignore[union-attr]
        found = re.search(r"https://prefs\.example\.com(/" + kind + r"/\S+)", text)
        assert found, text
        return self.base + found.group(1)


@pytest.fixture
def site(make_rt: Callable[..., Runtime], smtp_server: SmtpServer, write_csv: Callable[..., Path]) -> Iterator[Site]:
    rt = make_rt(email={"transport": "smtp", "host": "127.0.0.1", "port": smtp_server.port})
    campaign_id = launch(rt, write_csv([person(1, first_name="Zoé"), person(2, first_name="Ann", locale="en")]),
                         locales=["fr", "en"])
    # Playwright's sync API owns this thread's event loop: dispatch on another thread.
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(asyncio.run, dispatch_once(rt)).result().sent == 2
    with live_server(create_app(rt)) as base:
        yield Site(rt, base, smtp_server, campaign_id)


class Checker:
    """Opens pages and checks each one: axe, tap targets, width, own-origin requests, weight, screenshot."""

    def __init__(self, browser: Any, axe_source: str, viewport: dict[str, int], *, js: bool = True) -> None:
        self.context = browser.new_context(viewport=viewport, java_script_enabled=js, bypass_csp=js,
                                           is_mobile=True, has_touch=True)
        self.page = self.context.new_page()
        self.axe_source, self.viewport, self.js = axe_source, viewport, js
        self.requests: list[tuple[str, int]] = []
        self.page.on("requestfinished", self._finished)
        self.results: dict[str, Any] = {}

    def _finished(self, request: Any) -> None:
        response = request.response()  # bytes as sent (our responses always carry Content-Length)
        size = int(response.headers.get("content-length", "0")) if response is not None else 0
        if not request.url.endswith("/favicon.ico"):  # the browser's own probe, not part of the page
            self.requests.append((request.url, size))

    def check(self, name: str, base: str) -> dict[str, Any]:
        page = self.page
        geometry = page.evaluate(_GEOMETRY) if self.js else None
        if geometry is not None:
            assert geometry["small"] == [], f"{name}: tap targets under 44 px: {geometry['small']}"
            assert geometry["scrollWidth"] <= self.viewport["width"], f"{name}: scrolls sideways"
        foreign = [u for u, _ in self.requests if not u.startswith(base)]
        assert foreign == [], f"{name}: third-party requests {foreign}"
        ARTIFACTS.joinpath("screenshots").mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "screenshots" / f"{name}-{self.viewport['width']}{'' if self.js else '-nojs'}.png"),
                        full_page=True)
        fetched = dict(self.requests)  # last transfer of each URL for this page
        result: dict[str, Any] = {"bytes": sum(fetched.values()), "requests": len(fetched),
                                  "html_bytes": sum(n for u, n in fetched.items() if "/static/" not in u)}
        if self.js:
            page.add_script_tag(content=self.axe_source)
            outcome = page.evaluate(_AXE_RUN)
            assert outcome["passes"] > 10, f"{name}: axe-core did not really run"  # a check that can fail
            violations = outcome["violations"]
            result["axe"] = violations
            serious = [v for v in violations if v["impact"] in ("serious", "critical")]
            assert serious == [], f"{name}: axe-core found {serious}"
        self.results[name] = result
        self.requests = []
        return result

    def goto(self, url: str) -> Any:
        self.requests = []
        return self.page.goto(url)

    def close(self) -> None:
        self.context.close()


def _record(kind: str, results: dict[str, Any]) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{kind}.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data.update(results)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False))


def _state(rt: Runtime, contact_id: int) -> str:
    with Session(rt.engine) as s:
        return s.exec(select(Enrolment).where(Enrolment.contact_id == contact_id)).one().state


@pytest.mark.parametrize("viewport", [PHONE, NARROW], ids=["390", "320"])
@pytest.mark.parametrize("js", [True, False], ids=["js", "nojs"])
def test_open_the_email_link_confirm_and_see_what_was_recorded(browser: Any, axe_source: str, site: Site,
                                                               viewport: dict[str, int], js: bool) -> None:
    checker = Checker(browser, axe_source, viewport, js=js)
    try:
        link = site.link("person1@example.org")
        for _ in range(3):  # prefetchers and scanners: GET changes nothing
            assert checker.goto(link).status == 200
        assert _state(site.rt, 1) == "pending"
        page = checker.page
        # French typography: a no-break space before "?"
        assert page.locator("h1").inner_text() == ("Souhaitez-vous toujours recevoir des nouvelles de "
                                                   "Boutique Lumière\u00a0?")
        assert page.get_by_text("p•••@example.org").is_visible()
        assert page.locator("input[name=partners]").count() == 0  # no unnamed partners (issue 18)
        checker.check("preference-fr", site.base)
        page.get_by_role("button", name="Oui, je reste informé(e)").click()
        page.wait_for_load_state()
        assert page.locator("h1").inner_text() == "Merci, votre choix est enregistré"
        assert "Changer d’avis" in page.content()
        checker.check("done-fr", site.base)
        assert _state(site.rt, 1) == "confirmed"
    finally:
        _record("page-weight", {f"{k}-{viewport['width']}{'' if js else '-nojs'}": {
            "bytes": v["bytes"], "html_bytes": v["html_bytes"], "requests": v["requests"]} for k, v in checker.results.items()})
        checker.close()


@pytest.mark.parametrize("viewport", [PHONE, NARROW], ids=["390", "320"])
def test_unsubscribe_from_the_email_link(browser: Any, axe_source: str, site: Site, viewport: dict[str, int]) -> None:
    checker = Checker(browser, axe_source, viewport, js=False)
    try:
        checker.goto(site.link("person2@example.org", kind="u"))
        assert checker.page.locator("h1").inner_text() == "Unsubscribe"
        checker.check("unsubscribe-en", site.base)
        checker.page.get_by_role("button", name="Unsubscribe").click()
        checker.page.wait_for_load_state()
        assert checker.page.locator("h1").inner_text() == "You are unsubscribed"
        with Session(site.rt.engine) as s:
            assert [(e.channel, e.reason) for e in s.exec(select(SuppressionEntry))] == [("email", "unsubscribed")]
    finally:
        checker.close()


def test_expired_link_sends_a_fresh_one(browser: Any, axe_source: str, site: Site, clock: FixedClock) -> None:
    checker = Checker(browser, axe_source, PHONE, js=False)
    try:
        old = site.link("person1@example.org")
        clock.advance(timedelta(days=site.rt.config.security.page_link_max_age_days + 1))
        assert checker.goto(old).status == 410
        assert checker.page.locator("h1").inner_text() == "Ce lien a expiré."
        checker.page.get_by_role("button", name="M’envoyer un nouveau lien").click()
        checker.page.wait_for_load_state()
        assert checker.page.locator("h1").inner_text() == "Un nouveau lien est en route"
        fresh = site.link("person1@example.org", nth=1)
        assert fresh != old and checker.goto(fresh).status == 200
        assert _state(site.rt, 1) == "pending"  # nothing but a message was sent
        with Session(site.rt.engine) as s:
            assert [r.outcome for r in s.exec(select(SelfServiceRequest))] == ["sent"]
    finally:
        checker.close()


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_every_page_passes_axe(browser: Any, axe_source: str, site: Site, clock: FixedClock, lang: str) -> None:
    """Each page the centre can show, in both languages, light and dark: no serious/critical violation."""
    address = "person1@example.org" if lang == "fr" else "person2@example.org"
    contact_id = 1 if lang == "fr" else 2
    results: dict[str, Any] = {}
    for scheme in ("light", "dark"):
        checker = Checker(browser, axe_source, PHONE)
        checker.page.emulate_media(color_scheme=scheme)
        page, base = checker.page, site.base

        def visit(name: str, url: str | None = None, click: str | None = None, status: int | None = None,
                  checker: Checker = checker, page: Any = page, scheme: str = scheme, base: str = base) -> None:
            if url is not None:
                response = checker.goto(url)
                if status is not None:
                    assert response.status == status, name
            if click is not None:
                page.locator(click).first.click()
                page.wait_for_load_state()
            checker.check(f"{name}-{lang}-{scheme}", base)

        try:
            link = site.link(address)
            visit("preference", link)
            visit("rights", click="a[href^='/r/']")
            visit("erase-confirm", click="a[href$='/erase']")
            visit("unsubscribe", site.link(address, kind="u"))
            visit("invalid", link[:-3] + "xyz", status=400)
            visit("not-found", f"{base}/nowhere?lang={lang}", status=404)
            visit("done", link, click="button.primary")
            if scheme == "dark":  # last: these change state
                visit("unsubscribed", site.link(address, kind="u"), click="button.primary")
                rights = site.rt.links.dumps("rights", LinkClaims(contact_id, site.campaign_id, "email"))
                visit("erase", f"{base}/r/{rights}/erase", click="button.danger")
                with Session(site.rt.engine) as s:
                    assert s.get(Contact, contact_id).erased_at is not None  # type: ignore[union-attr]
                clock.advance(timedelta(days=site.rt.config.security.page_link_max_age_days + 1))
                visit("expired", link, status=410)
                visit("newlink", click="button.primary")
                clock.advance(-timedelta(days=site.rt.config.security.page_link_max_age_days + 1))
            results.update({k: v.get("axe") for k, v in checker.results.items()})
        finally:
            checker.close()
    _record("axe-results", results)
