"""One contacts CSV row → contact fields (SPEC §10): pure validation, no database.

This module is what the import's worker processes run (orchestrator.contacts.service feeds them chunks of
rows), so it imports only the validation libraries, never the store.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from orchestrator.domain.addresses import AddressError, normalise_email, normalise_phone
from orchestrator.domain.model import ContactKind
from orchestrator.domain.suppression import suppression_key

COLUMNS = ("external_id", "kind", "email", "phone", "first_name", "locale", "timezone", "last_activity_at", "b2b")
#: optional columns of consent the company already holds (issue 17 §4; orchestrator.consent.prior)
PRIOR_COLUMNS = ("email_consent_at", "sms_consent_at", "consent_source", "consent_wording")
#: where a staged contact carries its prior-consent cells until they are recorded (consent.prior.PRIOR_ATTRIBUTE)
PRIOR_ATTRIBUTE = "__prior_consent__"
#: columns ``contacts export`` adds after COLUMNS (where the person stands): read back, never kept as attributes
EXPORT_ONLY = ("email_consent", "sms_consent", "email_partners_consent", "sms_partners_consent",
               "email_suppression", "sms_suppression")


class RowError(Exception):
    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field_name
        self.reason = reason


def checked_email(address: str) -> str:
    """The normalised form of ``address`` (RowError when invalid): :func:`addresses.normalise_email`.

    >>> checked_email("Jean.Dupont@Exemple.FR")
    'Jean.Dupont@exemple.fr'
    """
    try:
        return normalise_email(address)
    except AddressError as err:
        raise RowError(err.field, err.reason) from None


def parse_row(raw: dict[str, str], *, default_region: str, default_locale: str) -> dict[str, Any]:
    """Validate one CSV row into contact fields; raise RowError naming the field."""

    def get(name: str) -> str:
        return (raw.get(name) or "").strip()

    external_id = get("external_id")
    if not external_id:
        raise RowError("external_id", "required")
    kind = get("kind").lower()
    if kind not in (ContactKind.CUSTOMER, ContactKind.PROSPECT):
        raise RowError("kind", f"expected customer or prospect, got {get('kind')!r}")
    email = get("email") or None
    phone = get("phone") or None
    if not email and not phone:
        raise RowError("email", "email or phone is required (both are empty)")
    if email:
        email = checked_email(email)
    if phone:
        try:
            phone = normalise_phone(phone, default_region)
        except AddressError as err:
            raise RowError(err.field, err.reason) from None
    locale = (get("locale") or default_locale).replace("_", "-")
    lang = locale.split("-")[0].lower()
    if not (2 <= len(lang) <= 3 and lang.isalpha()):
        raise RowError("locale", f"expected a language code like fr or en, got {get('locale')!r}")
    tz = get("timezone") or None
    if tz:
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise RowError("timezone", f"unknown time zone {tz!r} (expected e.g. Europe/Paris)") from None
    last = get("last_activity_at")
    last_activity: date | None = None
    if last:
        try:
            with_time = "T" in last or " " in last
            last_activity = datetime.fromisoformat(last).date() if with_time else date.fromisoformat(last)
        except ValueError:
            raise RowError("last_activity_at", f"expected an ISO date like 2024-03-31, got {last!r}") from None
    b2b_text = get("b2b").lower()
    if b2b_text not in ("", "true", "false", "1", "0", "yes", "no"):
        raise RowError("b2b", f"expected true or false, got {get('b2b')!r}")
    attributes: dict[str, Any] = {k: v for k, v in raw.items() if k not in COLUMNS and k not in EXPORT_ONLY
                  and k not in PRIOR_COLUMNS and k is not None and v not in (None, "")}
    prior = _prior_consent(get, email, phone)
    if prior:
        attributes[PRIOR_ATTRIBUTE] = prior
    return {
        "external_id": external_id,
        "kind": kind,
        "email": email,
        "phone": phone,
        "first_name": get("first_name") or None,
        "locale": lang,
        "timezone": tz,
        "last_activity_at": last_activity,
        "b2b": b2b_text in ("true", "1", "yes"),
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
            raise RowError(name, f"consent given for {name.split('_')[0]} but the row has no "
                                 f"{'email' if name.startswith('email') else 'phone'}")
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00")) if ("T" in value or " " in value) \
                else datetime.combine(date.fromisoformat(value), datetime.min.time())
        except ValueError:
            raise RowError(name, f"expected an ISO date or date-time like 2025-03-01 or 2025-03-01T14:30:00Z, "
                                 f"got {value!r}") from None
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


#: the columns of a staged contact, after its first and last line numbers (orchestrator.contacts.service)
STAGED_FIELDS = ("external_id", "kind", "email", "phone", "first_name", "locale", "timezone", "last_activity_at",
                 "b2b", "attributes", "email_key", "phone_key")


class ValidatedChunk(NamedTuple):
    """A chunk of CSV rows once validated (what a worker process sends back: plain tuples pickle fast)."""

    #: (line, field, reason, raw row) of each rejected row, in file order
    rejects: list[tuple[int, str, str, dict[str, str]]]
    #: (first line, last line, *STAGED_FIELDS) per external_id of the chunk, rows of one id merged
    staged: list[tuple[Any, ...]]
    #: how many rows were valid (the staged ones plus the duplicates merged into them)
    valid: int


def validate_chunk(
    rows: Sequence[tuple[int, dict[str, str]]], default_region: str, default_locale: str, secret: bytes,
) -> ValidatedChunk:
    """Validate a chunk of CSV rows, merging rows of one external_id; valid rows get their suppression keys.

    Runs in the import's worker processes, so everything it needs comes in its arguments. Dates are
    staged as ISO text and attributes as JSON text, the forms stored for a contact.
    """
    rejects: list[tuple[int, str, str, dict[str, str]]] = []
    first_seen: dict[str, list[Any]] = {}  # external_id -> [first line, last line, merged values]
    valid = 0
    for line, raw in rows:
        if raw.pop("__extra__", None):
            rejects.append((line, "row", "more cells than header columns", raw))
            continue
        try:
            values = parse_row(raw, default_region=default_region, default_locale=default_locale)
        except RowError as err:
            rejects.append((line, err.field, err.reason, raw))
            continue
        valid += 1
        values["email_key"] = suppression_key(secret, values["email"]) if values["email"] else None
        values["phone_key"] = suppression_key(secret, values["phone"]) if values["phone"] else None
        seen = first_seen.get(values["external_id"])
        if seen is None:
            first_seen[values["external_id"]] = [line, line, values]
        else:
            seen[1], seen[2] = line, merge_duplicate(seen[2], values)
    staged = []
    for first_line, last_line, v in first_seen.values():
        last = v["last_activity_at"]
        staged.append((first_line, last_line, v["external_id"], v["kind"], v["email"], v["phone"], v["first_name"],
                       v["locale"], v["timezone"], last.isoformat() if last else None, v["b2b"],
                       json.dumps(v["attributes"]), v["email_key"], v["phone_key"]))
    return ValidatedChunk(rejects, staged, valid)
