"""Contacts CSV import (SPEC §10): validate every row, merge on external_id, refuse suppressed people.

Valid rows are written in batches inside one transaction, so a crash never leaves half a file;
every rejected row is reported with its line number, field and reason. Importing never creates
or changes consent: that only happens through an explicit action by the person [R1].
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import insert, select, update
from sqlmodel import Session

from orchestrator.domain.model import Channel, ContactKind, SuppressionReason
from orchestrator.errors import InputError
from orchestrator.runtime import Runtime
from orchestrator.store.db import session_scope
from orchestrator.store.models import Contact, SuppressionEntry
from orchestrator.suppression import adopt_previous

COLUMNS = ("external_id", "kind", "email", "phone", "first_name", "locale", "timezone", "last_activity_at", "b2b")
BATCH = 2000


@dataclass(frozen=True)
class Reject:
    line: int
    field: str
    reason: str
    row: dict[str, str]


@dataclass
class ImportReport:
    read: int = 0
    created: int = 0
    updated: int = 0
    merged_duplicates: int = 0
    rejects: list[Reject] = field(default_factory=list)

    @property
    def imported(self) -> int:
        return self.created + self.updated

    def summary(self) -> str:
        return (
            f"{self.read} rows read: {self.created} created, {self.updated} updated, "
            f"{self.merged_duplicates} duplicate rows merged, {len(self.rejects)} rejected"
        )


@dataclass
class ParsedContact:
    line: int
    values: dict[str, Any]


class RowError(Exception):
    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field_name
        self.reason = reason


#: a plain ASCII dot-atom local part: every such string is one email_validator accepts as is
_SIMPLE_LOCAL = re.compile(r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*\Z")


def checked_email(address: str) -> str:
    """email_validator's normalised form of ``address`` (RowError when invalid), fast for common ones.

    A CSV of a million rows has a million addresses but few domains: the domain is validated once
    (by email_validator, cached), and a plain ASCII local part needs only a regular expression.
    Anything else goes through email_validator in full, so the results are the same
    (tests/orchestrator/test_contacts_import.py checks this against email_validator).

    >>> checked_email("Jean.Dupont@Exemple.FR")
    'Jean.Dupont@exemple.fr'
    """
    local, at, domain = address.rpartition("@")
    if at and len(local) <= 64 and _SIMPLE_LOCAL.match(local):
        normal_domain = _checked_domain(domain)
        if normal_domain is not None and len(local) + 1 + len(normal_domain) <= 254:
            return f"{local}@{normal_domain}"
    try:
        return str(validate_email(address, check_deliverability=False).normalized)
    except EmailNotValidError as exc:
        raise RowError("email", f"not a valid address: {exc}") from None


@lru_cache(maxsize=65536)
def _checked_domain(domain: str) -> str | None:
    """The normalised domain when it is valid and stays ASCII; None sends the address the slow way."""
    try:
        normal = str(validate_email("x@" + domain, check_deliverability=False).normalized).partition("@")[2]
    except EmailNotValidError:
        return None
    return normal if normal.isascii() else None


def parse_row(raw: dict[str, str], *, default_region: str, default_locale: str) -> dict[str, Any]:
    """Validate one CSV row into contact fields; raise RowError naming the field."""
    get = lambda name: (raw.get(name) or "").strip()  # noqa: E731
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
            parsed = phonenumbers.parse(phone, default_region)
        except phonenumbers.NumberParseException:
            raise RowError("phone", f"not a phone number: {phone!r}") from None
        if not phonenumbers.is_valid_number(parsed):
            raise RowError("phone", f"not a valid number for its region: {phone!r}")
        phone = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
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
            last_activity = datetime.fromisoformat(last).date() if "T" in last or " " in last else date.fromisoformat(last)
        except ValueError:
            raise RowError("last_activity_at", f"expected an ISO date like 2024-03-31, got {last!r}") from None
    b2b_text = get("b2b").lower()
    if b2b_text not in ("", "true", "false", "1", "0", "yes", "no"):
        raise RowError("b2b", f"expected true or false, got {get('b2b')!r}")
    attributes = {k: v for k, v in raw.items() if k not in COLUMNS and k is not None and v not in (None, "")}
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


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    try:
        fh = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    with fh:
        reader = csv.DictReader(fh)
        try:
            header = reader.fieldnames or []
            missing = [c for c in ("external_id", "kind") if c not in header]
            if missing or not ({"email", "phone"} & set(header)):
                raise InputError(
                    f"{path}: line 1: header must name the columns {','.join(COLUMNS)} "
                    f"(missing: {', '.join(missing or ['email/phone'])})"
                )
            for row in reader:
                if None in row:  # more cells than header columns
                    yield reader.line_num, {"__extra__": "1", **{k: v for k, v in row.items() if k}}
                else:
                    yield reader.line_num, row
        except UnicodeDecodeError:
            raise InputError(f"{path}: line {reader.line_num + 1}: not UTF-8 text (save the file as UTF-8)") from None
        except csv.Error as exc:
            raise InputError(f"{path}: line {reader.line_num}: {exc}") from None


def import_contacts(
    rt: Runtime,
    path: Path,
    *,
    strict: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import a contacts CSV. With ``strict``, any rejected row refuses the whole file."""
    report = ImportReport()
    cfg = rt.config.contacts
    by_id: dict[str, ParsedContact] = {}
    order: list[str] = []
    for line, raw in read_rows(path):
        report.read += 1
        if progress:
            progress(1)
        if raw.pop("__extra__", None):
            report.rejects.append(Reject(line, "row", "more cells than header columns", raw))
            continue
        try:
            values = parse_row(raw, default_region=cfg.default_region, default_locale=cfg.default_locale)
        except RowError as err:
            report.rejects.append(Reject(line, err.field, err.reason, raw))
            continue
        values["email_key"] = rt.key_for(values["email"]) if values["email"] else None
        values["phone_key"] = rt.key_for(values["phone"]) if values["phone"] else None
        if values["external_id"] in by_id:
            report.merged_duplicates += 1
            previous = by_id[values["external_id"]].values
            values = {**previous, **{k: v for k, v in values.items() if v not in (None, {}, "")}}
        else:
            order.append(values["external_id"])
        by_id[values["external_id"]] = ParsedContact(line, values)
    if strict and report.rejects:
        first = report.rejects[0]
        raise InputError(
            f"{path}: line {first.line}: {first.field}: {first.reason} "
            f"({len(report.rejects)} rejected rows; nothing imported because of --strict)"
        )
    now = rt.clock.now()
    with session_scope(rt.engine) as session:
        for start in range(0, len(order), BATCH):
            batch = [by_id[x] for x in order[start:start + BATCH]]
            # entries hashed under a former suppression key are found too (docs/suppression.md)
            adopt_previous(session, rt, [a for p in batch for a in (p.values["email"], p.values["phone"]) if a])
            batch = _drop_suppressed(session, batch, report)
            _upsert(session, batch, now, report)
    return report


def _drop_suppressed(session: Session, batch: list[ParsedContact], report: ImportReport) -> list[ParsedContact]:
    keys = {k for p in batch for k in (p.values["email_key"], p.values["phone_key"]) if k}
    if not keys:
        return batch
    reasons = {
        (k, c): r for k, c, r in session.execute(
            select(SuppressionEntry.key, SuppressionEntry.channel, SuppressionEntry.reason)
            .where(SuppressionEntry.key.in_(keys))  # type: ignore[attr-defined]
        ).all()
    }
    suppressed = set(reasons)
    kept = []
    for p in batch:
        channels = [(p.values["email_key"], Channel.EMAIL.value), (p.values["phone_key"], Channel.SMS.value)]
        given = [(k, c) for k, c in channels if k]
        # An erased person asked to be forgotten: any one of their addresses refuses the whole row.
        erased = any(reasons.get(kc) == SuppressionReason.ERASED for kc in given)
        if given and (erased or all((k, c) in suppressed for k, c in given)):
            report.rejects.append(
                Reject(p.line, "email" if p.values["email"] else "phone",
                       "on the suppression list (opted out, erased or expired): not imported", _as_row(p.values))
            )
        else:
            kept.append(p)
    return kept


def _upsert(session: Session, batch: list[ParsedContact], now: datetime, report: ImportReport) -> None:
    if not batch:
        return
    ids = [p.values["external_id"] for p in batch]
    existing = dict(
        session.execute(select(Contact.external_id, Contact.id).where(Contact.external_id.in_(ids))).all()  # type: ignore[attr-defined]
    )
    new_rows = []
    for p in batch:
        contact_id = existing.get(p.values["external_id"])
        if contact_id is None:
            new_rows.append({**p.values, "created_at": now, "updated_at": now})
        else:
            session.execute(
                update(Contact).where(Contact.id == contact_id).values(**p.values, updated_at=now)  # type: ignore[arg-type]
            )
            report.updated += 1
    if new_rows:
        # Core INSERT on the session's connection: the ORM bulk path costs more per row.
        session.connection().execute(insert(Contact.__table__), new_rows)  # type: ignore[attr-defined]
        report.created += len(new_rows)


def _as_row(values: dict[str, Any]) -> dict[str, str]:
    return {c: "" if values.get(c) is None else str(values.get(c)) for c in COLUMNS}


def write_rejects(path: Path, report: ImportReport) -> None:
    """Write every rejected row with its line number, field and reason."""
    extra = sorted({k for r in report.rejects for k in r.row if k not in COLUMNS})
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["line", "field", "reason", *COLUMNS, *extra])
        for r in report.rejects:
            writer.writerow([r.line, r.field, r.reason, *(r.row.get(c, "") for c in (*COLUMNS, *extra))])
