"""SMS keywords [S4]: which reply is a STOP, a START or a HELP, and the HELP answer. Pure rules, no I/O.

Replies are matched on the whole body, case- and accent-insensitive, against the keyword lists of
``[keywords]`` for every locale (a STOP is honoured whatever the contact's language).
"""

from __future__ import annotations

import unicodedata

from orchestrator.config import Config

HELP_TEXT = {
    "fr": "{name} : messages sur vos choix de contact. STOP au {stop} pour ne plus en recevoir. Infos : {privacy}",
    "en": "{name}: messages about your contact choices. Reply STOP to {stop} to opt out. Info: {privacy}",
}


def keyword(body: str) -> str:
    """The whole body, trimmed, upper-cased, without accents or punctuation: 'Arrêté !' → 'ARRETE'.

    >>> keyword(" arrêt ")
    'ARRET'
    >>> keyword("Stop please")
    'STOPPLEASE'
    """
    text = unicodedata.normalize("NFKD", body.strip()).encode("ascii", "ignore").decode()
    return "".join(ch for ch in text.upper() if ch.isalnum())


def match_keyword(config: Config, body: str) -> tuple[str, str, list[str]] | None:
    """(kind, word, locales whose list has it) for a reply, or None. Kind is stop, start or help.

    >>> from orchestrator.config import Config
    >>> match_keyword(Config(), "Arrête")
    ('stop', 'ARRETE', ['fr'])
    >>> match_keyword(Config(), "info")[0], match_keyword(Config(), "stop maintenant")
    ('help', None)
    """
    word = keyword(body)
    if not word:
        return None
    kw = config.keywords
    for kind, lists in (("stop", kw.stop), ("start", kw.start), ("help", kw.help)):
        locales = [loc for loc, words in lists.items() if word in {keyword(w) for w in words}]
        if locales:
            return kind, word, locales
    return None


def help_text(config: Config, locale: str) -> str:
    s = config.sender
    template = HELP_TEXT.get(locale) or HELP_TEXT["fr"]
    return template.format(name=s.name, stop=s.stop_number, privacy=s.privacy_url)
