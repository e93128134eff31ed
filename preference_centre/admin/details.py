"""Technical details in the console's language: a provider's refusal (SMTP reply, Twilio error), an
operating system's reason (``strerror``), an email address checker's reason.

The services keep these in English (the CLI prints them, operators' scripts read them); a console
message that carries one (``not sent: SMTP 550 5.1.1 …``) hands it to :func:`explain`, which gives a
sentence saying what happened and what to do, the technical text kept in parentheses for support.
A detail no pattern knows is looked up as a message id (an OS reason such as "Permission denied"),
else shown as it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable

#: (pattern of the English detail, message id; ``%(tech)s`` is the detail as written)
DETAILS: list[tuple[re.Pattern[str], str]] = [
    # SMTP replies (orchestrator.delivery.channels.email_smtp)
    (re.compile(r"SMTP 5\d\d 5\.1\.\d+\b.*|SMTP 55[013](?! \d\.\d).*"),
     "The recipient’s mail server says this mailbox does not exist: check the address (%(tech)s)."),
    (re.compile(r"SMTP 5\d\d 5\.2\.2\b.*"), "The recipient’s mailbox is full: try again later (%(tech)s)."),
    (re.compile(r"SMTP 5\d\d 5\.7\.\d+\b.*"),
     "The mail server refused the message by policy (spam filter, sender not allowed): ask your email "
     "provider (%(tech)s)."),
    (re.compile(r"SMTP 4\d\d\b.*"), "The mail server refused the message for now: try again later (%(tech)s)."),
    (re.compile(r"SMTP 5\d\d\b.*"), "The mail server refused the message (%(tech)s)."),
    (re.compile(r"SMTP authentication refused .*"),
     "The mail server refused the sign-in: check email.username and email.password in the configuration "
     "(%(tech)s)."),
    (re.compile(r"SMTP connection problem: .*"),
     "The mail server cannot be reached: check email.host and email.port, or the network (%(tech)s)."),
    (re.compile(r"SMTP relay cannot take this message: .*"), "The mail server cannot take this message (%(tech)s)."),
    # Twilio (orchestrator.delivery.channels.sms_twilio, orchestrator.delivery.sms_status)
    (re.compile(r"Twilio (?:\d+ |error )21610\b.*"),
     "This number answered STOP: it receives no more SMS from your sender (%(tech)s)."),
    (re.compile(r"Twilio (?:\d+ |error )(?:21211|21614|21408|21612|30005|30006)\b.*"),
     "This phone number cannot receive an SMS (not valid, not a mobile, or not reachable from your sender): "
     "check it (%(tech)s)."),
    (re.compile(r"Twilio (?:429\b|\d+ (?:20429|14107)\b).*"),
     "Twilio limits the sending rate: try again in a moment (%(tech)s)."),
    (re.compile(r"Twilio 401\b.*|Twilio \d+ 20003\b.*"),
     "Twilio refused the account’s credentials: check the SMS settings of the configuration (%(tech)s)."),
    (re.compile(r"Twilio error 3000[378]\b.*"),
     "The phone or its operator did not take the SMS (switched off, out of reach or filtered) (%(tech)s)."),
    (re.compile(r"Twilio 5\d\d\b.*"), "Twilio is unavailable for now: try again later (%(tech)s)."),
    (re.compile(r"Twilio unreachable: .*"), "Twilio cannot be reached: check the network (%(tech)s)."),
    (re.compile(r"Twilio .*"), "Twilio refused the SMS (%(tech)s)."),
    # email_validator's reasons (an address checked by orchestrator.domain.addresses)
    (re.compile(r"An email address must have an @-sign\."), "An email address needs an @."),
    (re.compile(r"There must be something after the @-sign\."), "Something is missing after the @."),
    (re.compile(r"There must be something before the @-sign\."), "Something is missing before the @."),
    (re.compile(r"An email address cannot have two periods in a row\."),
     "An email address cannot have two dots in a row."),
    (re.compile(r"The part after the @-sign is not valid\. It should have a period\."),
     "The part after the @ needs a dot (as in shop.example)."),
    (re.compile(r"The part after the @-sign is not valid\. It is not within a valid top-level domain\."),
     "The part after the @ does not end with a known domain (.fr, .com…)."),
    (re.compile(r"The email address contains invalid characters before the @-sign.*"),
     "The part before the @ holds characters an address cannot have."),
    (re.compile(r"The part after the @-sign contains invalid characters.*"),
     "The part after the @ holds characters a domain cannot have."),
    (re.compile(r"The email address is too long.*"), "The address is too long."),
    (re.compile(r"The part after the @-sign is a special-use or reserved name .*"),
     "The part after the @ is a reserved name that receives no email."),
]

#: the TOML parser's (tomllib) reasons, told with their place (``… (at line 3, column 7)``)
TOML_AT = re.compile(r"(?P<what>.+) \(at (?:line (?P<line>\d+), column (?P<column>\d+)|(?P<end>end of document))\)")
TOML: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"Expected '=' after a key in a key/value pair"), "an “=” is expected after the key (key = value)"),
    (re.compile(r"Invalid value"),
     "this value is not valid: a text goes in quotes (\"…\"), a number, true or false without quotes"),
    (re.compile(r"Cannot overwrite a value|Cannot declare .* twice|Cannot redefine namespace .*"),
     "this key or table is given twice: keep one"),
    (re.compile(r"Unterminated string|Illegal character '\\n'"), "a quote (\") opened is never closed"),
    (re.compile(r"Illegal character .*|Found invalid character .*"), "this character is not allowed here"),
    (re.compile(r"Unclosed array"), "a “[” opened is never closed by “]”"),
    (re.compile(r"Unclosed inline table"), "a “{” opened is never closed by “}”"),
    (re.compile(r"Expected '\]' at the end of a table declaration"), "a table’s name ends with “]”"),
    (re.compile(r"Expected '\]\]' at the end of an array declaration"), "“[[steps]]” ends with “]]”"),
    (re.compile(r"Invalid statement|Invalid initial character for a key part"),
     "this line is neither “key = value” nor a “[table]”"),
    (re.compile(r"Invalid date or datetime"), "this date is not valid (write 2026-12-01)"),
]


def explain(detail: str, _: Callable[..., str]) -> str:
    """``detail`` in the language of ``_``: a known pattern's sentence, else its catalog entry, else
    ``detail`` as written.

    >>> from preference_centre.admin.i18n import gettext_for
    >>> explain("SMTP 550 5.1.1 <a@b.fr>: no", gettext_for("en"))
    'The recipient’s mail server says this mailbox does not exist: check the address (SMTP 550 5.1.1 <a@b.fr>: no).'
    >>> explain("No space left on device", gettext_for("fr"))
    'plus de place sur le disque'
    >>> explain("Expected '=' after a key in a key/value pair (at line 3, column 6)", gettext_for("fr"))
    'ligne\xa03, colonne\xa06\xa0: un «\xa0=\xa0» est attendu après la clé (clé = valeur)'
    >>> explain("something new", gettext_for("fr"))
    'something new'
    """
    at = TOML_AT.fullmatch(detail)
    if at is not None:
        what = next((_(m) for p, m in TOML if p.fullmatch(at["what"])), at["what"])
        if at["end"]:
            return _("at the end of the file: %(what)s", what=what)
        return _("line %(line)s, column %(column)s: %(what)s", line=at["line"], column=at["column"], what=what)
    for pattern, message in DETAILS:
        if pattern.fullmatch(detail):
            return _(message, tech=detail)
    return _(detail)
