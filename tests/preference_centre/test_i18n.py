"""Every page string is in both gettext catalogs; languages are chosen switch → contact → browser."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from jinja2.ext import babel_extract

from preference_centre.public import pages
from preference_centre.i18n import catalog, negotiate


def page_strings() -> set[str]:
    found: set[str] = set(pages.MESSAGES.values()) | set(pages.NEWLINK_TITLES.values())
    for template in sorted(pages.PAGES_DIR.glob("*.html")):
        with template.open("rb") as fh:
            for _line, _func, message, _comments in babel_extract(fh, ("_",), [], {}):
                text = message if isinstance(message, str) else (message[0] if message else None)
                if text:
                    found.add(text)
    # the consent wording stored as proof: with "%(sender)s" as the name, each line is its msgid
    return found | set(pages.consent_wording("en", "%(sender)s").splitlines())


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_every_page_string_is_translated(lang: str) -> None:
    strings = page_strings()
    assert len(strings) > 50
    missing = sorted(s for s in strings if not catalog(lang).get(s))
    assert missing == [], f"add these to preference_centre/locale/{lang}/LC_MESSAGES/messages.po"


def test_french_catalog_really_translates() -> None:
    fr = catalog("fr")
    assert fr["Yes, keep me informed"] != "Yes, keep me informed"
    assert all(s.count("%(") == fr[s].count("%(") for s in page_strings())  # placeholders kept


def test_language_order() -> None:
    assert negotiate(contact_locale="en", accept="fr-FR,fr") == "en"
    assert negotiate(accept="en-US,en;q=0.9") == "en"
    assert negotiate(query="fr", contact_locale="en") == "fr"  # the page's language switch wins
    assert negotiate(accept="de-DE,de") == "fr"
    assert negotiate(query="xx", contact_locale="de", accept="en") == "en"


def test_pages_follow_contact_locale_then_accept_language(rt, write_csv) -> None:  # type: ignore[no-untyped-def]
    from starlette.testclient import TestClient

    from orchestrator.rendering.links import LinkClaims
    from preference_centre.app import create_app
    from tests.support.factories import launch, person

    campaign_id = launch(rt, write_csv([person(1, locale="en")]))
    client = TestClient(create_app(rt))
    page = "/p/" + rt.links.dumps("page", LinkClaims(1, campaign_id, "email"))
    assert '<html lang="en">' in client.get(page, headers={"Accept-Language": "fr"}).text
    assert '<html lang="fr">' in client.get(page + "?lang=fr").text
    assert '<html lang="en">' in client.get("/p/bad", headers={"Accept-Language": "en-GB"}).text
    assert Path(pages.STATIC_DIR / "style.css").stat().st_size < 15 * 1024


@pytest.mark.parametrize("po", ["preference_centre/locale/fr/LC_MESSAGES/messages.po",
                                "preference_centre/admin/locale/fr/LC_MESSAGES/messages.po"])
def test_french_typography_in_every_translation(po: str) -> None:
    """Issues 16 and 18: French wording takes a no-break space before : ; ? ! and a curly apostrophe.
    Every translation of the public pages and of the console, not only the ones a page test reads."""
    from babel.messages.pofile import read_po

    with (Path(__file__).resolve().parents[2] / po).open("rb") as fh:
        messages = [m for m in read_po(fh) if m.id and m.string]
    assert messages
    faults = []
    for m in messages:
        for text in (m.string if isinstance(m.string, tuple) else (m.string,)):
            if re.search(r"\S [:;?!](\s|$)", text) or re.search(r"[^\W\d_]'[^\W\d_]", text):
                faults.append(text)
    assert faults == [], "\n".join(faults)
