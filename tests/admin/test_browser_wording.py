"""Issue 16's console flows in headless Chromium, at 1280 px and 390 px: the template editor (live
preview, variables inserted at the cursor, the SMS's encoding, a refused save next to its field, a
new version), the brand settings (a colour refused for contrast, then saved), a campaign created by
picking templates by name with their preview, and its results page (filter, search, export);
axe-core finds no serious violation on any of them; nothing is wider than the screen.

With RECONSENT_UPDATE_SCREENSHOTS=1 the 1280 px run writes docs/screenshots/{brand,results}.png (the
pictures of docs/console.md; template-editor.png is written by tests/admin/test_browser_editor_mode.py)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from orchestrator.contacts.service import import_contacts
from orchestrator.delivery.worker import dispatch_once
from orchestrator.rendering.links import LinkClaims
from orchestrator.runtime import Runtime
from tests.admin.conftest import ADMIN
from tests.admin.test_browser import LAUNCH_ARGS, ROOT, axe_serious, browser, in_thread, served  # noqa: F401
from tests.support.factories import person, run

pytestmark = pytest.mark.browser
WIDTHS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
SHOTS = ROOT / "docs" / "screenshots"


def sign_in(page: Any, base: str) -> None:
    page.goto(f"{base}/admin/login")
    page.fill("#email", ADMIN[0])
    page.fill("#password", ADMIN[1])
    page.click("button.primary")
    page.wait_for_url(f"{base}/admin/")


#: the elements that stick out of the screen, for the failure message
WIDEST = """() => [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right >
  window.innerWidth + 1).slice(0, 4).map(e => e.tagName + '#' + e.id + '.' + e.className).join(' ')"""


def fits(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"))


@pytest.mark.parametrize("size", sorted(WIDTHS))
def test_wording_brand_campaign_and_results_in_the_browser(served: tuple[Runtime, str], browser: Any,  # noqa: F811
                                                           write_csv: Any, tmp_path: Path, size: str) -> None:
    rt, base = served
    shots = size == "desktop" and os.environ.get("RECONSENT_UPDATE_SCREENSHOTS") == "1"
    checked: dict[str, list[str]] = {}
    wide: list[str] = []
    external: list[str] = []
    # axe-core is injected (bypass_csp only for that); the editor's script is tried under the real CSP
    audit = browser.new_context(viewport=WIDTHS[size], locale="en-GB", bypass_csp=True)
    page = audit.new_page()
    page.on("request", lambda r: None if r.url.startswith((base, "data:", "about:")) else external.append(r.url))
    strict = browser.new_context(viewport=WIDTHS[size], locale="en-GB")
    live = strict.new_page()
    blocked: list[str] = []
    live.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
    sign_in(page, base)
    sign_in(live, base)

    def check(name: str) -> None:
        checked[name] = axe_serious(page)
        if not fits(page):
            wide.append(name + ": " + page.evaluate(WIDEST))

    # -- with the real CSP: the live preview follows the typing, a variable goes in at the cursor ----
    live.goto(f"{base}/admin/templates/reconsent/fr")
    assert live.locator("button.insert").first.is_visible()  # the script ran under the console's CSP
    live.fill("#sms", "Ça vous intéresse encore ? ")
    live.focus("#sms")
    live.press("#sms", "End")
    live.click("button.insert[data-insert='{{ short_url }}']")
    assert live.input_value("#sms") == "Ça vous intéresse encore ? {{ short_url }}"
    live.frame_locator("iframe#preview").locator("text=Ça vous intéresse encore").wait_for()
    assert fits(live)

    # -- the template editor -------------------------------------------------------------------
    page.click("nav >> text=Templates")
    check("templates")
    page.click("a[href='/admin/templates/reconsent/fr']")
    page.wait_for_url(f"{base}/admin/templates/reconsent/fr")
    frame = page.frame_locator("iframe#preview")
    assert "Camille" in frame.locator("body").inner_text()
    check("editor")
    page.fill("#sms", "{{ sender.name }} : ça vous intéresse encore ? {{ short_url }} STOP au {{ sender.stop_number }}")
    page.click("button[value=check]")
    assert page.inner_text("#sms-info").startswith("UCS-2")
    assert "UCS-2 forced by: ç" in page.inner_text("#sms-info")
    # a save with a misspelt variable is refused next to its field
    page.fill("#body_txt", "Bonjour {{ frist_name }}\n" + page.input_value("#body_txt"))
    page.click("button[value=save]")
    assert "Unknown variable “frist_name”" in page.inner_text("#body_txt-problem-1")
    assert page.get_attribute("#body_txt", "aria-invalid") == "true"
    check("editor-problems")
    page.fill("#body_txt", page.input_value("#body_txt").replace("Bonjour {{ frist_name }}\n", ""))
    # one GSM-7 segment: within sms.segment_budget
    page.fill("#sms", "{{ sender.name }}: on garde le contact ? {{ short_url }} STOP au {{ sender.stop_number }}")
    page.click("button[value=save]")
    page.wait_for_url(re.compile(r".*\?saved=new$"))
    assert "Saved as a new version" in page.inner_text("#saved")
    check("editor-saved")
    if shots:
        SHOTS.mkdir(parents=True, exist_ok=True)

    # -- brand settings --------------------------------------------------------------------------
    page.click("nav >> text=Brand")
    page.fill("#sender_name", "Fromagerie Dupont")
    page.fill("#colour", "#ffcc00")
    page.fill("#page_title_fr", "On reste en contact ?")
    page.click("text=Save the brand")
    assert "WCAG AA" in page.inner_text("#colour-problem")
    check("brand-problem")
    page.fill("#colour", "#8a1538")
    page.click("text=Save the brand")
    page.wait_for_url(f"{base}/admin/brand?saved=1")
    check("brand")
    if shots:
        page.screenshot(path=str(SHOTS / "brand.png"), full_page=True)

    # -- a campaign by template name, with its preview; then its results --------------------------
    import_contacts(rt, write_csv([person(n) for n in range(1, 8)]))
    page.click("nav >> text=Campaigns")
    page.click("text=New campaign")
    page.fill("#name", "Winter re-consent")
    page.select_option("select[name=step0_template]", "reconsent")
    page.click("#template-previews summary >> text=reconsent")
    preview = page.frame_locator("#template-previews iframe[src='/admin/templates/reconsent/fr/preview']")
    assert "Fromagerie Dupont" in preview.locator("body").inner_text()
    check("campaign-new")
    page.click("form[action='/admin/campaigns'] >> text=Create the draft")
    page.wait_for_url(re.compile(r".*/admin/campaigns/\d+$"))
    campaign_id = int(page.url.rsplit("/", 1)[1])
    page.click("text=Launch…")
    page.click("text=Yes: Launch")
    page.wait_for_url(re.compile(r".*\?done=launch$"))
    in_thread(lambda: run(dispatch_once(rt)))
    visitor = live
    visitor.goto(f"{base}/p/{rt.links.dumps('page', LinkClaims(1, campaign_id, 'email'))}")
    assert visitor.inner_text("h1") == "On reste en contact ?"  # the brand's title, no script on the page
    assert visitor.locator("script").count() == 0
    visitor.click("button[value=confirm]")
    visitor.locator("h1", has_text="Merci").wait_for()
    page.click("text=Results")
    page.wait_for_url(f"{base}/admin/campaigns/{campaign_id}/results")
    assert page.inner_text("[data-key=confirmed]") == "1" and page.inner_text("[data-key=pending]") == "6"
    check("results")
    if shots:
        page.screenshot(path=str(SHOTS / "results.png"), full_page=True)
    page.check("input[name=outcome][value=confirmed]")
    page.click("text=Filter")
    assert re.findall(r"C-\d", page.inner_text("#results tbody")) == ["C-1"]
    page.fill("#q", "person3@")
    page.uncheck("input[name=outcome][value=confirmed]")
    page.click("text=Filter")
    assert re.findall(r"C-\d", page.inner_text("#results tbody")) == ["C-3"]
    with page.expect_download() as download:
        page.click("#export")
    rows = Path(download.value.path()).read_text(encoding="utf-8-sig").splitlines()
    assert rows[0].startswith("external_id,kind,outcome") and rows[1].startswith("C-3,customer,pending")
    check("results-filtered")

    strict.close()
    audit.close()
    assert {k: v for k, v in checked.items() if v} == {}
    assert wide == [] and blocked == [] and external == []
