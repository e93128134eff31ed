"""SMS keywords [S4]: which reply is a STOP, a START, a yes, a no or a HELP, and the texts we answer
with. Pure rules, no I/O.

Replies are matched on the whole body, case- and accent-insensitive, against the keyword lists of
``[keywords]`` for every locale (a STOP is honoured whatever the contact's language). A reply that
matches no list is "not understood" (see :data:`NOT_UNDERSTOOD_TEXT`).
"""

from __future__ import annotations

import unicodedata

from orchestrator.config import Config
from orchestrator.domain.places import phone_country, same_numbering

HELP_TEXT = {
    "fr": "{name} : messages sur vos choix de contact. STOP au {stop} pour ne plus en recevoir. Infos : {privacy}",
    "en": "{name}: messages about your contact choices. Reply STOP to {stop} to opt out. Info: {privacy}",
}
#: the short answer to a reply we did not understand (at most one per number per day)
NOT_UNDERSTOOD_TEXT = {
    "fr": "{name} : répondez OUI pour garder nos offres par SMS, NON pour ne plus les recevoir. STOP au {stop}",
    "en": "{name}: reply YES to keep our offers by SMS, NO to stop them. STOP to {stop}",
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
    """(kind, word, locales whose list has it) for a reply, or None. Kind is stop, start, yes, no or help
    (in that order: a word in two lists is the first one's).

    >>> from orchestrator.config import Config
    >>> match_keyword(Config(), "Arrête")
    ('stop', 'ARRETE', ['fr'])
    >>> match_keyword(Config(), "info")[0], match_keyword(Config(), "stop maintenant")
    ('help', None)
    >>> match_keyword(Config(), "Oui !"), match_keyword(Config(), "no")
    (('yes', 'OUI', ['fr']), ('no', 'NO', ['en']))
    """
    word = keyword(body)
    if not word:
        return None
    kw = config.keywords
    for kind, lists in (("stop", kw.stop), ("start", kw.start), ("yes", kw.yes), ("no", kw.no), ("help", kw.help)):
        locales = [loc for loc, words in lists.items() if word in {keyword(w) for w in words}]
        if locales:
            return kind, word, locales
    return None


def help_text(config: Config, locale: str, stop_number: str | None = None, *,
              texts: dict[str, str] = HELP_TEXT) -> str:
    """The help text (or ``texts=NOT_UNDERSTOOD_TEXT``) in ``locale`` (else French), naming
    ``stop_number`` (else ``sender.stop_number``)."""
    s = config.sender
    template = texts.get(locale) or texts["fr"]
    return template.format(name=s.name, stop=stop_number or s.stop_number, privacy=s.privacy_url)


def sms_sender_for(config: Config, phone: str | None) -> tuple[str, str]:
    """(sender, STOP number) for a recipient's number: the ``sender.sms_countries`` entry of the
    number's country when there is one; else ``sender.sms_from`` and ``sender.stop_number`` at home
    (``sms.default_region``, and France's overseas regions for FR); abroad, the STOP number is the
    sender itself — a national short code does not work from another country's networks.

    >>> from orchestrator.config import Config
    >>> cfg = Config()
    >>> sms_sender_for(cfg, "+33612345678"), sms_sender_for(cfg, "+590690001122")
    (('+33700000000', '36111'), ('+33700000000', '36111'))
    >>> sms_sender_for(cfg, "+447400123456")
    ('+33700000000', '+33700000000')
    >>> cfg.sender.sms_countries = {"gb": ["+447700900123"], "BE": ["+32460000000", "8811"]}
    >>> sms_sender_for(cfg, "+447400123456"), sms_sender_for(cfg, "+32470123456")
    (('+447700900123', '+447700900123'), ('+32460000000', '8811'))
    """
    s = config.sender
    country = phone_country(phone)
    entries = {k.strip().upper(): v for k, v in s.sms_countries.items()}
    entry = entries.get(country or "")
    if entry:
        return entry[0].strip(), (entry[1] if len(entry) > 1 else entry[0]).strip()
    if same_numbering(country, config.sms.default_region.upper()):
        return s.sms_from, s.stop_number
    return s.sms_from, s.sms_from
