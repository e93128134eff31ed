"""Template problems in the console's language.

The checks (:mod:`orchestrator.rendering.checks`) describe a problem in English, one line each; the
editor shows it next to its field, translated here by pattern. Jinja's syntax messages (an unclosed
``{{``, a block without its end, an unknown filter, tag or test…) are translated here too, the tokens
they name (``'end of print statement'``) told as what to type (``}}``). A problem no pattern knows
is shown as it is, marked as English by the page.
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
    # a stored version the renderer refuses (orchestrator.rendering.messages.MessageRenderer.load)
    (re.compile(r"the stored sources are not this version"),
     "The stored text of this version no longer matches it (changed in the database after it was saved): "
     "tell your administrator. Saving the template again in the editor makes a new, sound version."),
    (re.compile(r"not in the template store"),
     "This version is not in the template store: open the template in the editor and save it again."),
    (re.compile(r"no (?P<parts>\S+(?:, \S+)*) \(not a (?P<channel>email|sms) template\)"),
     "%(parts)s is missing: this is not a %(channel)s template. Choose another template for this step."),
    # Jinja's syntax messages (jinja2.parser / jinja2.lexer), the line given apart by the editor
    (re.compile(r"unexpected end of template, expected '(?P<token>[^']+)'\.?"),
     "The text ends before %(token)s: close what is opened on this line."),
    (re.compile(r"Unexpected end of template\. Jinja was looking for the following tags: .*\. The innermost block "
                r"that needs to be closed is '(?P<block>\w+)'\."),
     "The “%(block)s” block is never closed: add %(end)s where it ends."),
    (re.compile(r"Encountered unknown tag '(?P<tag>end\w*)'\. Jinja was looking for the following tags: .*\. The "
                r"innermost block that needs to be closed is '(?P<block>\w+)'\."),
     "%(tag)s does not close the open “%(block)s” block: close it with %(end)s."),
    (re.compile(r"Encountered unknown tag '(?P<tag>end\w*)'\."), "%(tag)s closes no open block: remove it."),
    (re.compile(r"Encountered unknown tag '(?P<tag>[^']+)'\..*"),
     "Unknown instruction %(tag)s: check its spelling (docs/templates.md lists the ones you can use)."),
    (re.compile(r"No filter named '(?P<name>[^']+)'\.?"),
     "Unknown filter “%(name)s”: check its spelling (docs/templates.md lists the filters)."),
    (re.compile(r"No test named '(?P<name>[^']+)'\.?"),
     "Unknown test “%(name)s” after “is”: check its spelling."),
    (re.compile(r"unexpected char '(?P<char>.+)' at \d+"),
     "Unexpected character “%(char)s”: a quote opened must be closed on the same line."),
    (re.compile(r"expected token '(?P<want>[^']+)', got '(?P<got>[^']+)'"),
     "Expected here: %(want)s, not %(got)s."),
    (re.compile(r"Expected an expression, got '(?P<got>[^']+)'"),
     "A variable or a value is missing before %(got)s (for example {{ first_name }})."),
    (re.compile(r"unexpected '(?P<got>[^']+)', expected '(?P<want>[^']+)'"),
     "Unexpected %(got)s: %(want)s is expected here."),
    (re.compile(r"unexpected '(?P<got>[^']+)'"), "Unexpected %(got)s: check the braces and brackets of this line."),
]
#: Jinja's names of tokens → what the marketer types (a delimiter) or a word of the catalog
TOKENS = {"end of print statement": "}}", "begin of print statement": "{{", "end of statement block": "%}",
          "begin of statement block": "{%", "end of comment": "#}", "begin of comment": "{#"}
WORDS = {"name": "a name", "string": "a text in quotes", "integer": "a number", "float": "a number",
         "end of template": "the end of the text"}


def token(text: str, _: Callable[..., str]) -> str:
    """A token Jinja names, as the marketer sees it: ``}}`` in quotes, or a word (“a name”)."""
    if text in WORDS:
        return _(WORDS[text])
    return _("“%(t)s”", t=TOKENS.get(text, text))


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
        for key in ("token", "want", "got"):
            if key in values:
                values[key] = token(values[key], _)
        if "block" in values:
            values["end"] = _("“%(t)s”", t="{% end" + values["block"] + " %}")
        if "tag" in values:
            values["tag"] = _("“%(t)s”", t="{% " + values["tag"] + " %}")
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
