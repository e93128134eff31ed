"""Console translations: English source strings, French catalog in ./locale (read with Babel).

The language is the one chosen in the console (a cookie set by the language switch), then
Accept-Language, then French — the same negotiation as the preference centre.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from babel.messages.pofile import read_po

from preference_centre.i18n import negotiate

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
LANG_COOKIE = "reconsent_admin_lang"


@lru_cache(maxsize=4)
def catalog(lang: str) -> dict[str, str]:
    path = LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"
    if not path.exists():
        return {}
    with path.open("rb") as fh:
        cat = read_po(fh, locale=lang)
    return {str(m.id): str(m.string) for m in cat if m.id and m.string and not m.fuzzy}


def gettext_for(lang: str) -> Callable[..., str]:
    """``_("Hello %(name)s", name=…)``; unknown strings fall back to English.

    >>> gettext_for("fr")("Sign in")
    'Se connecter'
    """
    table = catalog(lang)

    def _(text: str, **values: object) -> str:
        out = table.get(text, text)
        return out % values if values else out

    return _


def pick(cookie: str | None, accept: str | None) -> str:
    return negotiate(contact_locale=cookie, accept=accept)
