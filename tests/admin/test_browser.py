"""The console in headless Chromium (Debian's chromium through Playwright), against a real uvicorn
server: sign in, upload contacts, create, preview and launch a campaign, watch the funnel change
after a recipient confirms through the preference centre; axe-core on every page at laptop and
tablet sizes (zero serious or critical violations)."""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from orchestrator.delivery.worker import dispatch_once
from orchestrator.rendering.links import LinkClaims
from orchestrator.runtime import Runtime
from orchestrator.accounts.service import add_user
from preference_centre.app import create_app
from tests.admin.conftest import ADMIN
from tests.support.factories import person, run

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("RECONSENT_TEST_CHROMIUM") or "/usr/bin/chromium"
AXE = Path(os.environ.get("RECONSENT_TEST_AXE") or ROOT / ".cache" / "axe-core" / "axe.min.js")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--no-first-run"]
VIEWPORTS = {"laptop": {"width": 1366, "height": 800}, "tablet": {"width": 768, "height": 1024}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(make_rt: Callable[..., Runtime]) -> Iterator[tuple[Runtime, str]]:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    rt = make_rt(public={"base_url": base})
    add_user(rt, ADMIN[0], ADMIN[1], "admin")
    server = uvicorn.Server(uvicorn.Config(create_app(rt), host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    yield rt, base
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists() or not AXE.exists():
        pytest.fail(f"browser tests need chromium at {CHROMIUM} and axe-core at {AXE} (scripts/test.sh sets both up)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield b
        b.close()


def in_thread(func: Callable[[], Any]) -> None:
    errors: list[BaseException] = []

    def target() -> None:
        try:
            func()
        except BaseException as exc:  # noqa: BLE001 - re-raised below in the test's thread
            errors.append(exc)

    t = threading.Thread(target=target)
    t.start()
    t.join()
    if errors:
        raise errors[0]


def axe_serious(page: Any) -> list[str]:
    page.add_script_tag(content=AXE.read_text(encoding="utf-8"))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [f"{v['id']} ({v['impact']}): {v['nodes'][0]['target']}" for v in result["violations"]
            if v["impact"] in ("serious", "critical")]


def test_marketer_story_in_the_browser(served: tuple[Runtime, str], browser: Any,
                                       write_csv: Callable[..., Path], tmp_path: Path) -> None:
    rt, base = served
    external: list[str] = []
    # bypass_csp only so axe-core can be injected; the CSP itself is checked at the HTTP level
    context = browser.new_context(viewport=VIEWPORTS["laptop"], locale="en-GB", bypass_csp=True)
    page = context.new_page()
    page.on("request", lambda r: None if r.url.startswith((base, "data:", "about:")) else external.append(r.url))
    checked: dict[str, list[str]] = {}

    def check(name: str) -> None:
        checked[name] = axe_serious(page)

    page.goto(f"{base}/admin/login")
    check("login")
    page.fill("#email", ADMIN[0])
    page.fill("#password", ADMIN[1])
    page.click("button.primary")
    page.wait_for_url(f"{base}/admin/")
    check("home")

    # contacts: one bad row shows in the reject table with its line number
    csv_path = write_csv([person(1), person(2, email="broken@"), person(3, phone="")])
    page.click("text=Contacts")
    check("contacts")
    page.set_input_files("#file", str(csv_path))
    page.click("form[action='/admin/contacts/import'] button")
    assert "3 rows read: 3 created" in page.inner_text("main")  # row 3 kept on its phone, with a warning
    assert page.inner_text("table.rejects tbody td:first-child") == "3"
    check("contacts-report")

    # campaign from the form, previewed, launched after confirmation
    page.click("text=Campaigns")
    page.click("text=New campaign")
    check("campaign-new")
    page.fill("#name", "Winter re-consent")
    page.click("form[action='/admin/campaigns'] >> text=Create the draft")
    page.wait_for_url(re.compile(r".*/admin/campaigns/\d+$"))
    campaign_id = int(page.url.rsplit("/", 1)[1])
    assert page.inner_text("#audience-size") == "2"
    frame = page.frame_locator("iframe.mail").first
    assert "Boutique" in frame.locator("body").inner_text()
    assert page.locator("pre.sms").count() == 2 and "segment" in page.inner_text(".sms-meta >> nth=0")
    check("campaign")
    page.click("text=Launch…")
    assert "Audience if launched now: 2" in page.inner_text("main")
    check("confirm")
    page.click("text=Yes: Launch")
    page.wait_for_url(re.compile(r".*\?done=launch$"))
    assert "running" in page.inner_text("h1")

    in_thread(lambda: run(dispatch_once(rt)))  # Playwright's sync API owns this thread's loop
    page.goto(f"{base}/admin/campaigns/{campaign_id}/funnel")
    assert page.inner_text("[data-key=confirmed]") == "0"
    assert page.inner_text("[data-key='email.sent']") == "2"

    # a recipient confirms through the preference centre (its real POST, in another browser tab)
    token = rt.links.dumps("page", LinkClaims(1, campaign_id, "email"))
    visitor = context.new_page()
    visitor.goto(f"{base}/p/{token}")
    visitor.check("input[name=email][value=yes]")
    visitor.click("button[value=confirm]")
    visitor.locator("h1", has_text="Merci").wait_for()  # the answer is recorded before we look again
    visitor.close()

    page.reload()
    assert page.inner_text("[data-key=confirmed]") == "1"
    assert page.inner_text("[data-key=pending]") == "1"
    assert page.locator("svg.chart").count() >= 2
    check("funnel")
    (ROOT / "docs" / "screenshots").mkdir(parents=True, exist_ok=True)
    shot = tmp_path / "funnel.png"
    page.screenshot(path=str(shot), full_page=True)
    if os.environ.get("RECONSENT_UPDATE_SCREENSHOTS") == "1":
        shot.replace(ROOT / "docs" / "screenshots" / "funnel.png")

    for name, path in (("suppression", "/admin/suppression"), ("requests", "/admin/requests"),
                       ("audit", "/admin/audit")):
        page.goto(base + path)
        check(name)

    # tablet layout: same pages, nothing wider than the screen, still accessible
    tablet = browser.new_context(viewport=VIEWPORTS["tablet"], locale="fr-FR", bypass_csp=True)
    tab = tablet.new_page()
    tab.goto(f"{base}/admin/login")
    tab.fill("#email", ADMIN[0])
    tab.fill("#password", ADMIN[1])
    tab.click("button.primary")
    tab.wait_for_url(f"{base}/admin/")
    for path in ("/admin/", f"/admin/campaigns/{campaign_id}", f"/admin/campaigns/{campaign_id}/funnel",
                 "/admin/contacts", "/admin/requests"):
        tab.goto(base + path)
        assert tab.evaluate("document.documentElement.lang") == "fr"
        assert tab.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), path
        checked["tablet " + path] = axe_serious(tab)
    tablet.close()
    context.close()

    # with the real CSP: the email preview renders in its sandboxed frame, and cannot run script
    strict = browser.new_context(viewport=VIEWPORTS["laptop"], locale="en-GB")
    view = strict.new_page()
    blocked: list[str] = []
    view.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
    view.goto(f"{base}/admin/login")
    view.fill("#email", ADMIN[0])
    view.fill("#password", ADMIN[1])
    view.click("button.primary")
    view.goto(f"{base}/admin/campaigns/{campaign_id}")
    mail = view.frame_locator("iframe.mail").first
    assert "Boutique" in mail.locator("body").inner_text()
    frame = next(f for f in view.frames if "/preview/" in f.url)
    assert frame.evaluate("() => { try { return window.parent.document.title } catch (e) { return 'isolated' } }") == "isolated"
    assert blocked == []
    strict.close()

    assert {k: v for k, v in checked.items() if v} == {}
    assert len(checked) >= 15
    assert external == []
