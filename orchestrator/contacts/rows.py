"""One contacts CSV row → contact fields (SPEC §10): pure validation, no database.

This module is what the import's worker processes run (orchestrator.contacts.service feeds them chunks of
rows), so it imports only the validation libraries, never the store.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from orchestrator.contacts.columns import COLUMNS, fold
from orchestrator.contacts.reader import BROKEN_QUOTES, END_LINE, EXTRA
from orchestrator.domain.addresses import AddressError, normalise_email, normalise_phone
from orchestrator.domain.model import ContactKind
from orchestrator.domain.suppression import suppression_key

KINDS = {"customer": ContactKind.CUSTOMER, "customers": ContactKind.CUSTOMER, "client": ContactKind.CUSTOMER,
         "clients": ContactKind.CUSTOMER, "cliente": ContactKind.CUSTOMER, "prospect": ContactKind.PROSPECT,
         "prospects": ContactKind.PROSPECT}
YES = frozenset({"true", "1", "yes", "oui", "vrai"})
NO = frozenset({"false", "0", "no", "non", "faux"})
LANGUAGES = {"francais": "fr", "french": "fr", "anglais": "en", "english": "en"}
#: JJ/MM/AAAA (also with - or .), optionally followed by a time as spreadsheets write it
_FRENCH_DATE = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})(?:[ T]\d{1,2}[:h]\d{2}(?::\d{2})?)?\Z")
#: optional columns of consent the company already holds (issue 17 §4; orchestrator.consent.prior)
PRIOR_COLUMNS = ("email_consent_at", "sms_consent_at", "consent_source", "consent_wording")
#: where a staged contact carries its prior-consent cells until they are recorded (consent.prior.PRIOR_ATTRIBUTE)
PRIOR_ATTRIBUTE = "__prior_consent__"
#: columns ``contacts export`` adds after COLUMNS (where the person stands): read back, never kept as attributes
EXPORT_ONLY = ("email_consent", "sms_consent", "email_partners_consent", "sms_partners_consent",
               "email_suppression", "sms_suppression", "topics", "partners", "frequency",
               "paused_until")  # the last four: issue 18


class RowError(Exception):
    """A value that cannot be imported: ``message`` is an English template (the console translates
    it) filled with ``params``; ``reason`` is the filled English text."""

    def __init__(self, field_name: str, message: str, **params: object) -> None:
        reason = message % params if params else message
        super().__init__(reason)
        self.field = field_name
        self.reason = reason
        self.message = message
        self.params = params


def checked_email(address: str) -> str:
    """The normalised form of ``address`` (RowError when invalid): :func:`addresses.normalise_email`.

    >>> checked_email("Jean.Dupont@Exemple.FR")
    'Jean.Dupont@exemple.fr'
    """
    try:
        return normalise_email(address)
    except AddressError:
        raise RowError("email", "not a valid email address: %(value)s", value=repr(address)) from None


def checked_phone(number: str, region: str) -> str:
    """E.164 form of ``number``, national forms read for ``region`` (RowError when invalid).

    >>> checked_phone("06 12 34 56 78", "FR")
    '+33612345678'
    """
    try:
        return normalise_phone(number, region)
    except AddressError as err:
        if err.parsed:
            raise RowError("phone", "not a valid phone number for %(region)s: %(value)s", region=region,
                           value=repr(number)) from None
        raise RowError("phone", "not a phone number: %(value)s", value=repr(number)) from None


def parse_date(text: str) -> date:
    """An ISO date (or date and time) or a French JJ/MM/AAAA one.

    >>> parse_date("31/03/2024"), parse_date("2024-03-31"), parse_date("5/1/2024 14:05")
    (datetime.date(2024, 3, 31), datetime.date(2024, 3, 31), datetime.date(2024, 1, 5))
    """
    french = _FRENCH_DATE.match(text)
    if french:
        day, month, year = (int(g) for g in french.groups())
        return date(year, month, day)
    with_time = "T" in text or " " in text
    return datetime.fromisoformat(text).date() if with_time else date.fromisoformat(text)


def row_problem(raw: dict[str, str], line: int) -> RowError | None:
    """What makes a row unreadable as a whole (marks left by the reader, NUL characters, a line break
    in a contact field: a missing quote swallowed lines), the marks removed from ``raw``."""
    extra, broken, end = raw.pop(EXTRA, None), raw.pop(BROKEN_QUOTES, None), raw.pop(END_LINE, None)
    if broken:
        return RowError("row", "misplaced quotes (\"): a quoted value must be quoted from its first to its "
                        "last character")
    if extra:
        return RowError("row", "more cells than header columns")
    for key, value in raw.items():
        if "\x00" in value:
            return RowError(key, "contains a NUL character: the file is damaged or not a text file")
        if end and key in COLUMNS and ("\n" in value or "\r" in value):
            return RowError(key, "contains a line break: a quote (\") is probably missing, so lines %(first)s "
                            "to %(last)s were read as one row", first=line, last=end)
    return None


def parse_row(raw: dict[str, str], *, default_region: str, default_locale: str,
              warnings: list[RowError] | None = None) -> dict[str, Any]:
    """Validate one CSV row into contact fields; raise RowError naming the field.

    A row with one usable address and one invalid one is kept on the usable one: the invalid field
    is dropped and its RowError appended to ``warnings`` (raised when ``warnings`` is None).
    """

    def get(name: str) -> str:
        return (raw.get(name) or "").strip()

    external_id = get("external_id")
    if not external_id:
        raise RowError("external_id", "required")
    kind_text = get("kind")
    kind = KINDS.get(kind_text.lower()) or KINDS.get(fold(kind_text))  # most files: no accents, no spaces
    if kind is None:
        raise RowError("kind", "expected customer (client) or prospect, got %(value)s", value=repr(get("kind")))
    email = get("email") or None
    phone = get("phone") or None
    if not email and not phone:
        raise RowError("email", "email or phone is required (both are empty)")
    problems: list[RowError] = []
    if email:
        try:
            email = checked_email(email)
        except RowError as err:
            email = None
            problems.append(err)
    if phone:
        try:
            phone = checked_phone(phone, default_region)
        except RowError as err:
            phone = None
            problems.append(err)
    if problems and (warnings is None or (email is None and phone is None)):
        raise problems[0]
    locale_text = get("locale")
    language = LANGUAGES.get(fold(locale_text)) if len(locale_text) > 3 else None  # "français", not "fr"
    locale = (language or locale_text or default_locale).replace("_", "-")
    lang = locale.split("-")[0].lower()
    if not (2 <= len(lang) <= 3 and lang.isalpha()):
        raise RowError("locale", "expected a language code like fr or en, got %(value)s", value=repr(locale_text))
    tz = get("timezone") or None
    if tz:
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise RowError("timezone", "unknown time zone %(value)s (expected e.g. Europe/Paris)",
                           value=repr(tz)) from None
    last = get("last_activity_at")
    last_activity: date | None = None
    if last:
        try:
            last_activity = parse_date(last)
        except ValueError:
            raise RowError("last_activity_at", "expected a date like 31/03/2024 or 2024-03-31, got %(value)s",
                           value=repr(last)) from None
    b2b_text = get("b2b").lower()
    if b2b_text not in YES and b2b_text not in NO:
        b2b_text = fold(b2b_text)
    if b2b_text and b2b_text not in YES and b2b_text not in NO:
        raise RowError("b2b", "expected oui/non (true/false), got %(value)s", value=repr(get("b2b")))
    if warnings is not None:
        warnings.extend(problems)
    attributes: dict[str, Any] = {k: v for k, v in raw.items() if k not in COLUMNS and k not in EXPORT_ONLY
                                  and k not in PRIOR_COLUMNS and k is not None and v not in (None, "")}
    prior = _prior_consent(get, email, phone)
    if prior:
        attributes[PRIOR_ATTRIBUTE] = prior
    return {
        "external_id": external_id,
        "kind": kind.value,
        "email": email,
        "phone": phone,
        "first_name": get("first_name") or None,
        "locale": lang,
        "timezone": tz,
        "last_activity_at": last_activity,
        "b2b": b2b_text in YES,
        "attributes": attributes,
    }


def _prior_consent(get: Any, email: str | None, phone: str | None) -> dict[str, str]:
    """The row's prior-consent cells, checked: ISO date/times (UTC when no offset) for a channel it has.

    >>> _prior_consent({"email_consent_at": "2025-03-01", "consent_source": "webform"}.get, "a@b.fr", None)
    {'email_consent_at': '2025-03-01T00:00:00+00:00', 'consent_source': 'webform'}
    """
    prior: dict[str, str] = {}
    for name, address in (("email_consent_at", email), ("sms_consent_at", phone)):
        value = (get(name) or "").strip()
        if not value:
            continue
        if not address:
            raise RowError(name, "consent given for email but the row has no email" if name.startswith("email")
                           else "consent given for sms but the row has no phone")
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00")) if ("T" in value or " " in value) \
                else datetime.combine(date.fromisoformat(value), datetime.min.time())
        except ValueError:
            raise RowError(name, "expected an ISO date or date-time like 2025-03-01 or 2025-03-01T14:30:00Z, "
                                 "got %(value)s", value=repr(value)) from None
        prior[name] = (when if when.tzinfo else when.replace(tzinfo=UTC)).isoformat()
    if prior:
        for name in ("consent_source", "consent_wording"):
            text = (get(name) or "").strip()
            if text:
                prior[name] = text[:2000]
    return prior


def merge_duplicate(previous: dict[str, Any], later: dict[str, Any]) -> dict[str, Any]:
    """A later row for the same external_id: its non-empty values win, empty ones keep the earlier.

    >>> merge_duplicate({"email": "a@x.org", "phone": "+33612345678", "b2b": True},
    ...                 {"email": None, "phone": "+33612345679", "b2b": False})
    {'email': 'a@x.org', 'phone': '+33612345679', 'b2b': False}
    """
    return {**previous, **{k: v for k, v in later.items() if v not in (None, {}, "")}}


#: the columns of a staged contact, after its first and last line numbers (orchestrator.contacts.service);
#: the stage adds ``keep`` after them: the address fields dropped with a warning (an update keeps the stored ones)
STAGED_FIELDS = ("external_id", "kind", "email", "phone", "first_name", "locale", "timezone", "last_activity_at",
                 "b2b", "attributes", "email_key", "phone_key")

#: (line, field, message, params, raw row) of a rejected row or a warning
Problem = tuple[int, str, str, dict[str, Any], dict[str, str]]


class ValidatedChunk(NamedTuple):
    """A chunk of CSV rows once validated (what a worker process sends back: plain tuples pickle fast)."""

    #: each rejected row, in file order
    rejects: list[Problem]
    #: (first line, last line, *STAGED_FIELDS, keep) per external_id of the chunk, rows of one id merged
    staged: list[tuple[Any, ...]]
    #: how many rows were valid (the staged ones plus the duplicates merged into them)
    valid: int
    #: fields dropped from rows imported anyway (an invalid address next to a valid one), in file order
    warnings: list[Problem]


def validate_chunk(
    rows: Sequence[tuple[int, dict[str, str]]], default_region: str, default_locale: str, secret: bytes,
) -> ValidatedChunk:
    """Validate a chunk of CSV rows, merging rows of one external_id; valid rows get their suppression keys.

    Runs in the import's worker processes, so everything it needs comes in its arguments. Dates are
    staged as ISO text and attributes as JSON text, the forms stored for a contact.
    """
    rejects: list[Problem] = []
    warned: list[Problem] = []
    first_seen: dict[str, list[Any]] = {}  # external_id -> [first line, last line, merged values, keep]
    valid = 0
    for line, raw in rows:
        problem = row_problem(raw, line)
        if problem is not None:
            rejects.append((line, problem.field, problem.message, problem.params, raw))
            continue
        warnings: list[RowError] = []
        try:
            values = parse_row(raw, default_region=default_region, default_locale=default_locale, warnings=warnings)
        except RowError as err:
            rejects.append((line, err.field, err.message, err.params, raw))
            continue
        warned.extend((line, w.field, w.message, w.params, raw) for w in warnings)
        keep = ",".join(w.field for w in warnings)
        valid += 1
        values["email_key"] = suppression_key(secret, values["email"]) if values["email"] else None
        values["phone_key"] = suppression_key(secret, values["phone"]) if values["phone"] else None
        seen = first_seen.get(values["external_id"])
        if seen is None:
            first_seen[values["external_id"]] = [line, line, values, keep]
        else:
            seen[1], seen[2], seen[3] = line, merge_duplicate(seen[2], values), keep
    staged = []
    for first_line, last_line, v, keep in first_seen.values():
        last = v["last_activity_at"]
        staged.append((first_line, last_line, v["external_id"], v["kind"], v["email"], v["phone"], v["first_name"],
                       v["locale"], v["timezone"], last.isoformat() if last else None, v["b2b"],
                       json.dumps(v["attributes"]), v["email_key"], v["phone_key"], keep))
    return ValidatedChunk(rejects, staged, valid, warned)
