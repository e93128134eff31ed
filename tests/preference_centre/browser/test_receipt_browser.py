"""The consent receipt in a real browser (issue 18 §4): after answering from the email's link, the done page
offers the receipt at 390 px (axe-core, tap targets, no sideways scroll), the download is the signed file,
and it verifies with the key set the site publishes (PyJWT's verify)."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import jwt
import pytest

from tests.preference_centre.browser.test_browser import (  # noqa: F401 - the module's fixtures
    ARTIFACTS,
    PHONE,
    Checker,
    Site,
    axe_source,
    browser,
    site,
)

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_the_done_page_offers_a_receipt_that_verifies(browser: Any, axe_source: str, site: Site,  # noqa: F811
                                                     lang: str) -> None:
    checker = Checker(browser, axe_source, PHONE)
    try:
        address = "person1@example.org" if lang == "fr" else "person2@example.org"
        page = checker.page
        assert checker.goto(site.link(address)).status == 200
        button = "Oui, je reste informé(e)" if lang == "fr" else "Yes, keep me informed"
        page.get_by_role("button", name=button).click()
        page.wait_for_load_state()
        name = "Télécharger mon reçu" if lang == "fr" else "Download my receipt"
        link = page.get_by_role("link", name=name)
        assert link.is_visible()
        heading = "Votre reçu de consentement" if lang == "fr" else "Your consent receipt"
        assert page.get_by_role("heading", name=heading).is_visible()
        checker.check(f"done-receipt-{lang}", site.base)
        with page.expect_download() as info:
            link.click()
        download = info.value
        assert download.suggested_filename.startswith("consent-receipt-")
        doc = json.loads(Path(download.path()).read_text(encoding="utf-8"))
        with urllib.request.urlopen(site.base + "/.well-known/jwks.json", timeout=30) as resp:
            key_set = json.loads(resp.read())
        kid = jwt.get_unverified_header(doc["jws"])["kid"]
        claims = jwt.decode(doc["jws"], jwt.PyJWKSet.from_dict(key_set)[kid].key, algorithms=["EdDSA"])
        assert claims == doc["receipt"] and claims["language"] == lang
        assert {(s["service"], p["action"]) for s in claims["services"] for p in s["purposes"]} >= {
            ("email", "confirmed")}
        shot = ARTIFACTS / "screenshots" / f"done-receipt-{lang}-390.png"
        assert shot.is_file()
    finally:
        checker.close()
