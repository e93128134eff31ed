"""Page translations: gettext catalogs (.po, read with Babel), English source strings.

The language is the one chosen with the page's language switch (``?lang=``) when there is one, else
the contact's locale when known, then Accept-Language, then French.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from babel.core import Locale, UnknownLocaleError
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
SUPPORTED = ("fr", "en")
DEFAULT = "fr"


@lru_cache(maxsize=16)
def read_catalog(locale_dir: Path, lang: str) -> dict[str, str]:
    """msgid → msgstr of ``<locale_dir>/<lang>/LC_MESSAGES/messages.po`` (fuzzy entries left out)."""
    path = locale_dir / lang / "LC_MESSAGES" / "messages.po"
    if not path.exists():
        return {}
    with path.open("rb") as fh:
        cat = read_po(fh, locale=lang)
    return {str(m.id): str(m.string) for m in cat if m.id and m.string and not m.fuzzy}


def translator(table: dict[str, str]) -> Callable[..., str]:
    """``_("Hello %(name)s", name=…)``: unknown strings fall back to the English source."""

    def _(text: str, **values: object) -> str:
        out = table.get(text, text)
        return out % values if values else out

    return _


def catalog(lang: str) -> dict[str, str]:
    return read_catalog(LOCALE_DIR, lang)


def gettext_for(lang: str) -> Callable[..., str]:
    return translator(catalog(lang))


def negotiate(*, contact_locale: str | None = None, query: str | None = None, accept: str | None = None) -> str:
    """Pick a supported language.

    >>> negotiate(accept="en-GB,en;q=0.9,fr;q=0.5")
    'en'
    >>> negotiate(contact_locale="fr", accept="en")
    'fr'
    """
    for candidate in (query, contact_locale):
        if candidate and candidate.split("-")[0].lower() in SUPPORTED:
            return candidate.split("-")[0].lower()
    if accept:
        try:
            best = Locale.negotiate(_accept_list(accept), list(SUPPORTED), sep="-")
        except (UnknownLocaleError, ValueError):
            best = None
        if best is not None:
            return best.language
    return DEFAULT


def _accept_list(header: str) -> list[str]:
    weighted = []
    for i, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if tag and tag != "*" and q > 0:
            weighted.append((-q, i, tag.strip()))
    return [tag for _, _, tag in sorted(weighted)]
