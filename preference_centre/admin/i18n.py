"""Console translations: English source strings, French catalog in ./locale (read with Babel).

The language is the one chosen in the console (a cookie set by the language switch), then
Accept-Language, then French — the same negotiation as the preference centre.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from preference_centre.i18n import negotiate, read_catalog, translator

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
LANG_COOKIE = "reconsent_admin_lang"


def catalog(lang: str) -> dict[str, str]:
    return read_catalog(LOCALE_DIR, lang)


def gettext_for(lang: str) -> Callable[..., str]:
    """``_("Hello %(name)s", name=…)``; unknown strings fall back to English.

    >>> gettext_for("fr")("Sign in")
    'Se connecter'
    """
    return translator(catalog(lang))


def pick(cookie: str | None, accept: str | None) -> str:
    return negotiate(contact_locale=cookie, accept=accept)
