"""Template problems in the console's language.

The checks (:mod:`orchestrator.rendering.checks`) describe a problem in English, one line each; the
editor shows it next to its field, translated here by pattern. A problem no pattern knows (a Jinja
syntax message, for instance) is shown as it is, marked as English by the page.
"""

from __future__ import annotations

import re
from collections.abc import Callable

#: (pattern of the English text, message id with the pattern's named groups)
PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"undefined variable '(?P<var>[^']+)' \(see docs/templates\.md\)"),
     "Unknown variable “%(var)s”: use one of the variables listed."),
    (re.compile(r"'(?P<var>[^']+)' is undefined"), "Unknown variable “%(var)s”: use one of the variables listed."),
    (re.compile(r"renders empty"), "Empty once rendered: write something here."),
    (re.compile(r"no preference link \(.*\)"), "The link to the preference page is missing: insert {{ page_url }}."),
    (re.compile(r"no unsubscribe link \(.*\)"), "The unsubscribe link is missing: insert {{ unsubscribe_url }}."),
    (re.compile(r"no sender name \(.*\)"), "The sender’s name is missing: insert {{ sender.name }}."),
    (re.compile(r"no postal address \(.*\)"), "The postal address is missing: insert {{ sender.postal_address }}."),
    (re.compile(r"no STOP mention .*"), "The STOP mention is missing: add “STOP au {{ sender.stop_number }}”."),
    (re.compile(r"no link \(.*\)"), "The link is missing: insert {{ short_url }}."),
    (re.compile(r"(?P<n>\d+) segments \((?P<enc>[^,]+), (?P<units>\d+) units\) exceeds sms\.segment_budget = "
                r"(?P<budget>\d+)(?:; characters forcing UCS-2: (?P<chars>.*))?"),
     "%(n)s SMS segments (%(enc)s), more than the %(budget)s allowed: shorten the text%(chars)s."),
    (re.compile(r"empty: an email needs a subject, a text body and an HTML body"),
     "Empty: an email needs a subject, a text body and an HTML body."),
    (re.compile(r"missing (?P<parts>\S+(?:, \S+)*) \(available locales: (?P<available>[^;]*); add the part, or "
                r"leave '(?P<locale>[^']+)' out of the campaign's locales: its contacts then get default_locale\)"),
     "Missing: %(parts)s (languages available: %(available)s). Add it, or take “%(locale)s” out of the "
     "campaign’s languages: its contacts then get the default language."),
    (re.compile(r"empty: write an email \(subject, text, HTML\) or an SMS"),
     "Empty: write an email (subject, text, HTML) or an SMS."),
    (re.compile(r"a template name is lowercase letters.*"),
     "A template name is lowercase letters, digits, “-” and “_” (at most 64)."),
    (re.compile(r"a language is a 2- or 3-letter code.*"), "A language is a 2- or 3-letter code (fr, en)."),
    (re.compile(r"only \{% extends .*"), "Only the shipped layout may be loaded: {% extends \"_layout.html\" %}."),
]


def translate(text: str, _: Callable[..., str]) -> tuple[str, bool]:
    """(message, translated?) for one problem's text.

    >>> from preference_centre.admin.i18n import gettext_for
    >>> translate("undefined variable 'frist_name' (see docs/templates.md)", gettext_for("fr"))[0]
    'Variable inconnue «\\xa0frist_name\\xa0»\\xa0: utilisez l’une des variables de la liste.'
    """
    for pattern, message in PATTERNS:
        match = pattern.fullmatch(text)
        if match is None:
            continue
        values = {k: v or "" for k, v in match.groupdict().items()}
        if "chars" in values:
            values["chars"] = _(" (or remove the characters that force UCS-2: %(c)s)", c=values["chars"]) \
                if values["chars"] else ""
        return _(message, **values), True
    return text, False


def translate_line(text: str, _: Callable[..., str]) -> tuple[str, str, bool]:
    """(where, message, translated?) for one line ``where: problem`` of a campaign's template checks
    (``steps[0] (sms): template 'x': …``): the longest ending a pattern knows is translated, the rest
    is where it is; a line no pattern knows comes back whole, as it is.

    >>> from preference_centre.admin.i18n import gettext_for
    >>> translate_line("steps[0] (sms): template 't', fr/sms.txt line 1: renders empty", gettext_for("en"))
    ("steps[0] (sms): template 't', fr/sms.txt line 1", 'Empty once rendered: write something here.', True)
    >>> translate_line("something else", gettext_for("fr"))
    ('', 'something else', False)
    """
    start = 0
    while (i := text.find(": ", start)) != -1:
        message, done = translate(text[i + 2:], _)
        if done:
            return text[:i], message, True
        start = i + 2
    return "", text, False
