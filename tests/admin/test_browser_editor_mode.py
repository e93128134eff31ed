"""The template editor shows one HTML body at a time (issue 16 §1), in headless Chromium at 1280 px
and 390 px: the radio "Simple text (Markdown)" / "Raw HTML" shows its box and hides the other, under
the console's real CSP (the script is /admin/static/editor.js); without JavaScript both boxes stay
and the radio still decides which one is saved; axe-core finds no serious violation.

With RECONSENT_UPDATE_SCREENSHOTS=1 the 1280 px run writes docs/screenshots/template-editor.png."""

from __future__ import annotations

import os
import re
from typing import Any

import pytest

from orchestrator.rendering.editor import draft_for
from orchestrator.runtime import Runtime
from tests.admin.test_browser import axe_serious, browser, served  # noqa: F401
from tests.admin.test_browser_wording import SHOTS, WIDTHS, fits, sign_in

pytestmark = pytest.mark.browser


def shown(page: Any) -> list[str]:
    return [box for box in ("markdown", "body_html") if page.locator(f"#{box}").is_visible()]


@pytest.mark.parametrize("size", sorted(WIDTHS))
def test_one_html_box_at_a_time(served: tuple[Runtime, str], browser: Any, size: str) -> None:  # noqa: F811
    rt, base = served
    # the real CSP (no bypass): the script must be allowed by it
    strict = browser.new_context(viewport=WIDTHS[size], locale="en-GB")
    page = strict.new_page()
    blocked: list[str] = []
    page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
    sign_in(page, base)
    page.goto(f"{base}/admin/templates/reconsent/fr")
    mode = page.locator("input[name=mode]:checked").get_attribute("value")
    assert shown(page) == (["markdown"] if mode == "markdown" else ["body_html"])
    page.check("input[name=mode][value=html]")
    assert shown(page) == ["body_html"]
    assert page.locator("#html-part label[for=body_html]").is_visible()
    page.check("input[name=mode][value=markdown]")
    assert shown(page) == ["markdown"] and page.locator("#md-help").is_visible()
    assert fits(page) and blocked == []
    # the hidden box is still sent: a save in Markdown mode uses the Markdown, whatever the HTML box holds
    page.fill("#markdown", "Bonjour {{ first_name }}, on garde le contact ?\n\n[[Oui]]({{ page_url }})\n\n"
                           "{{ sender.name }}, {{ sender.postal_address }} — [désinscription]({{ unsubscribe_url }})")
    page.click("button[value=save]")
    page.wait_for_url(re.compile(r".*\?saved=new$"))
    assert shown(page) == ["markdown"]
    draft = draft_for(rt, "reconsent", "fr")
    assert draft.markdown is not None and draft.markdown.startswith("Bonjour {{ first_name }}, on garde")
    if size == "desktop" and os.environ.get("RECONSENT_UPDATE_SCREENSHOTS") == "1":
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "template-editor.png"), full_page=True)

    # axe-core (injected: bypass_csp for that only), with the HTML box shown
    audit = browser.new_context(viewport=WIDTHS[size], locale="en-GB", bypass_csp=True)
    checked = audit.new_page()
    sign_in(checked, base)
    checked.goto(f"{base}/admin/templates/reconsent/fr")
    checked.check("input[name=mode][value=html]")
    assert axe_serious(checked) == []
    audit.close()

    # without JavaScript both boxes stay, and the radio still decides
    plain = browser.new_context(viewport=WIDTHS[size], locale="en-GB", java_script_enabled=False)
    nojs = plain.new_page()
    sign_in(nojs, base)
    nojs.goto(f"{base}/admin/templates/reconsent/fr")
    assert shown(nojs) == ["markdown", "body_html"]
    strict.close()
    plain.close()
