"""Suppression list operations: import (plaintext or already-hashed lists) and check [R3]."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from orchestrator.consent import suppress
from orchestrator.domain.model import Channel, SuppressionReason
from orchestrator.domain.suppression import looks_like_key
from orchestrator.errors import InputError
from orchestrator.runtime import Runtime
from orchestrator.store.db import session_scope
from orchestrator.store.models import SuppressionEntry


@dataclass
class SuppressionImport:
    added: int = 0
    already: int = 0
    rejected: list[tuple[int, str]] | None = None


def classify(rt: Runtime, value: str) -> tuple[str, list[str]]:
    """(key, channels) for one line: an email, a phone, or an already-hashed key (both channels)."""
    value = value.strip()
    if looks_like_key(value):
        return value.lower(), [Channel.EMAIL.value, Channel.SMS.value]
    if "@" in value:
        try:
            email = validate_email(value, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            raise InputError(f"not a valid email: {exc}") from None
        return rt.key_for(email), [Channel.EMAIL.value]
    try:
        parsed = phonenumbers.parse(value, rt.config.contacts.default_region)
    except phonenumbers.NumberParseException:
        raise InputError("neither an email, a phone number nor a 64-hex-digit key") from None
    if not phonenumbers.is_valid_number(parsed):
        raise InputError("not a valid phone number")
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return rt.key_for(e164), [Channel.SMS.value]


def import_list(rt: Runtime, path: Path, *, reason: str = SuppressionReason.IMPORTED) -> SuppressionImport:
    """One address or key per line (first CSV column; a header line is skipped)."""
    report = SuppressionImport(rejected=[])
    now = rt.clock.now()
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    with session_scope(rt.engine) as session:
        for number, row in enumerate(csv.reader(lines), start=1):
            if not row or not row[0].strip() or row[0].strip().startswith("#"):
                continue
            value = row[0].strip()
            if number == 1 and value.lower() in ("email", "phone", "address", "key", "hash"):
                continue
            try:
                key, channels = classify(rt, value)
            except InputError as exc:
                assert report.rejected is not None
                report.rejected.append((number, str(exc)))
                continue
            for channel in channels:
                if suppress(session, key, channel, reason, f"import:{path.name}", now):
                    report.added += 1
                else:
                    report.already += 1
    return report


def check(rt: Runtime, address: str) -> list[SuppressionEntry]:
    key, channels = classify(rt, address)
    with session_scope(rt.engine) as session:
        return [e for c in channels if (e := session.get(SuppressionEntry, (key, c))) is not None]
