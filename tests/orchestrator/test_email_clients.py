"""The shipped email layout against the mail clients French recipients use (issue 16 §1): the real
renderer's email (``templates/messages/_layout.html`` through a campaign's preview, French and
English) is checked with doiuse-email (caniemail data) for Gmail, Outlook for Windows (Word engine
and Windows Mail), Outlook for Mac, Apple Mail, Yahoo, Orange and SFR. Every feature it reports as
unsupported must be one of :data:`ACCEPTED`, each a deliberate extra with a fallback; anything new
fails.

La Poste's webmail is in caniemail's data but doiuse-email 0.4.1 cannot check it: it stops with
"Feature `overflow-wrap` not found on `laposte.desktop-webmail`" (its data lacks entries the tool
expects), so it is left out here. scripts/test.sh installs doiuse-email into .cache/doiuse-email
(``npm install``); RECONSENT_TEST_DOIUSE_EMAIL may point at another copy of the package.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.campaigns.service import create_campaign, preview_campaign
from orchestrator.runtime import Runtime
from tests.support.factories import plan

ROOT = Path(__file__).resolve().parents[2]
DOIUSE = Path(os.environ.get("RECONSENT_TEST_DOIUSE_EMAIL")
              or ROOT / ".cache" / "doiuse-email" / "node_modules" / "doiuse-email")
CLIENTS = ["gmail.*", "outlook.windows", "outlook.windows-mail", "outlook.macos", "apple-mail.*", "yahoo.*",
           "orange.*", "sfr.*"]

#: what the layout uses knowingly where some clients do not follow, and what those clients show instead
ACCEPTED = {
    "@media": "only the dark-mode rules stay in <style> (an extra); everything else is inlined",
    "<body> element": "the fonts and colours are set on the wrapper table too (Yahoo apps, SFR drop <body>)",
    "border-radius": "the button's rounded corners: square in Outlook for Windows and Orange, padding kept",
    "lang attribute": "the language for screen readers; a webmail that drops it shows the same text",
    "role attribute": "role=presentation on layout tables for screen readers; harmless where dropped",
    "overflow-wrap": "long URLs wrap with overflow-wrap or word-break, whichever the client keeps",
    "word-break": "the same long-URL wrapping (where a client drops both, a long link may run wide)",
    "text-decoration": "links stay underlined by the client's default where the declaration is dropped",
}


def doiuse(html_file: Path) -> dict[str, list[str]]:
    """{feature: [clients where it is unsupported]} from doiuse-email's CLI on one HTML file."""
    node = shutil.which("node")
    if node is None or not (DOIUSE / "bin" / "cli.js").is_file():
        pytest.fail(f"doiuse-email not found at {DOIUSE} (and node): run scripts/test.sh once, or set "
                    "RECONSENT_TEST_DOIUSE_EMAIL")
    out = subprocess.run([node, str(DOIUSE / "bin" / "cli.js"), "--email-clients", ",".join(CLIENTS),
                          str(html_file)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    found: dict[str, list[str]] = {}
    for error in result.get("errors", []):
        match = re.fullmatch(r"`(.+?)` is not supported by `(.+?)`", error)
        assert match, error
        found.setdefault(match.group(1), []).append(match.group(2))
    return found


@pytest.mark.parametrize("locale", ["fr", "en"])
def test_the_shipped_layout_holds_up_in_french_recipients_clients(
        make_rt: Callable[..., Runtime], tmp_path: Path, locale: str) -> None:
    rt = make_rt()
    campaign_id = create_campaign(rt, plan(steps=[{"day": 0, "channel": "email", "template": "reconsent"}],
                                           locales=["fr", "en"]))
    (preview,) = [p for p in preview_campaign(rt, campaign_id) if p.locale == locale]
    assert preview.html and 'class="btn-cell"' in preview.html  # the real layout, bulletproof button included
    page = tmp_path / f"{locale}.html"
    page.write_text(preview.html, encoding="utf-8")
    found = doiuse(page)
    assert "outlook.windows" in found.get("border-radius", [])  # the tool really read the layout's CSS
    unexpected = {feature: clients for feature, clients in found.items() if feature not in ACCEPTED}
    assert unexpected == {}, f"features these clients do not support, not accepted in ACCEPTED: {unexpected}"
