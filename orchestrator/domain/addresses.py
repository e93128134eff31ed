"""The one address normaliser: an email or a phone number as typed → the form stored and hashed.

Every door that takes an address runs it through here: the contacts import (``rows.py``), the
suppression list's import and check, the rights requests' look-ups (``proof/rights.py``) and the
Twilio webhooks' ``From`` numbers. The suppression key is then the HMAC of this form
(:func:`orchestrator.domain.suppression.suppression_key` only trims and lower-cases on top).

Pure: no database, no configuration (the import's worker processes run it).

>>> normalise_email("Jean.Dupont@Exemple.FR")
'Jean.Dupont@exemple.fr'
>>> normalise_phone("06 12 34 56 78", "FR")
'+33612345678'
>>> normalise_phone("+33 6 12", "FR")
Traceback (most recent call last):
...
orchestrator.domain.addresses.AddressError: not a valid number for its region: '+33 6 12'
"""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers
from email_validator import EmailNotValidError, validate_email


class AddressError(ValueError):
    """An address that cannot be used; ``field`` is ``email`` or ``phone``, ``parsed`` says whether a
    phone number was at least recognisable as one (callers word their messages from it)."""

    def __init__(self, field_name: str, reason: str, *, parsed: bool = False) -> None:
        super().__init__(reason)
        self.field = field_name
        self.reason = reason
        self.parsed = parsed


#: a plain ASCII dot-atom local part: every such string is one email_validator accepts as is
_SIMPLE_LOCAL = re.compile(r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*\Z")


def normalise_email(address: str) -> str:
    """email_validator's normalised form of ``address`` (AddressError when invalid), fast for common ones.

    A CSV of a million rows has a million addresses but few domains: the domain is validated once
    (by email_validator, cached), and a plain ASCII local part needs only a regular expression.
    Anything else goes through email_validator in full, so the results are the same
    (tests/orchestrator/test_contacts_import.py checks this against email_validator).

    The text is taken as given (callers trim it): a space is a character email_validator refuses.

    >>> normalise_email("chloe@Example.org")
    'chloe@example.org'
    """
    local, at, domain = address.rpartition("@")
    if at and len(local) <= 64 and _SIMPLE_LOCAL.match(local):
        normal_domain = _checked_domain(domain)
        if normal_domain is not None and len(local) + 1 + len(normal_domain) <= 254:
            return f"{local}@{normal_domain}"
    try:
        return str(validate_email(address, check_deliverability=False).normalized)
    except EmailNotValidError as exc:
        raise AddressError("email", f"not a valid address: {exc}") from None


@lru_cache(maxsize=65536)
def _checked_domain(domain: str) -> str | None:
    """The normalised domain when it is valid and stays ASCII; None sends the address the slow way."""
    try:
        normal = str(validate_email("x@" + domain, check_deliverability=False).normalized).partition("@")[2]
    except EmailNotValidError:
        return None
    return normal if normal.isascii() else None


def normalise_phone(raw: str, region: str) -> str:
    """E.164 form of a phone number valid for its region (``region`` applies to national forms).

    >>> normalise_phone("+44 20 7946 0958", "FR")
    '+442079460958'
    """
    raw = raw.strip()
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        raise AddressError("phone", f"not a phone number: {raw!r}") from None
    if not phonenumbers.is_valid_number(parsed):
        raise AddressError("phone", f"not a valid number for its region: {raw!r}", parsed=True)
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


def normalise_sender(raw: str, region: str) -> str:
    """A number a provider reports (Twilio's ``From``): its E.164 form when valid, else the trimmed
    text as given (a short code or an unknown format still gets a stable key, matching nobody).

    >>> normalise_sender("+33 6 12 34 56 78", "FR"), normalise_sender(" 36180 ", "FR")
    ('+33612345678', '36180')
    """
    try:
        return normalise_phone(raw, region)
    except AddressError:
        return raw.strip()
