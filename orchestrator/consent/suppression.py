"""The suppression list [R3]: its one writer, and its operations — import (plaintext or already-hashed
lists), check, export, and re-keying after the suppression secret changes.

Every entry is written here: :func:`suppress` (one address, from a withdrawal, a bounce, an erasure,
an import), :func:`suppress_many` (the deadline sweep's set-based insert of a whole batch) and
:func:`lift` (an explicit new confirmation lifting an opt-out). An entry already there keeps its first
reason, except that an erasure overrides it (``replace=True``). Callers outside ``consent/`` go
through :func:`orchestrator.consent.service.withdraw`.

Key rotation (docs/suppression.md): the new secret goes into ``security.suppression_key`` and the old
one first in ``security.previous_suppression_keys``; ``reconsent suppression rekey`` then moves, in one
transaction, every entry whose address is still held in plaintext (a live contact) to the new key and
re-hashes ``Contact.email_key`` / ``phone_key``. Entries whose plaintext is gone (erased people,
hashed imports) cannot be re-hashed: they stay under the old key, and every lookup by address (import,
``suppression check``) also tries the previous keys; an import copies a match under the current key.
So a previous key must stay listed for as long as entries hashed under it matter.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import Table, bindparam, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlmodel import Session, col

from orchestrator.consent import webhooks
from orchestrator.domain.addresses import AddressError, normalise_email, normalise_phone
from orchestrator.domain.clock import as_utc
from orchestrator.domain.csv_safe import write_csv
from orchestrator.domain.model import Channel, SuppressionReason
from orchestrator.domain.suppression import looks_like_key, suppression_key
from orchestrator.errors import ConfigError, InputError
from orchestrator.runtime import Runtime
from orchestrator.store.bulk import insert_rows
from orchestrator.store.db import session_scope
from orchestrator.store.models import Contact, SuppressionEntry

EXPORT_COLUMNS = ("key", "channel", "reason", "source", "created_at")
_HEADER_WORDS = ("email", "phone", "address", "key", "hash")
_REASONS = {r.value for r in SuppressionReason}
_CHANNELS = {c.value for c in Channel}

#: reasons an explicit new confirmation may lift (the person opted out and now opts back in)
LIFTABLE = {SuppressionReason.UNSUBSCRIBED.value, SuppressionReason.SMS_STOP.value,
            SuppressionReason.NOT_GRANTED.value}

# -- the one writer ------------------------------------------------------------------------------------
_TABLE: Table = SuppressionEntry.metadata.tables["suppression"]
_COLUMNS = ("key", "channel", "reason", "source", "created_at")
_LIFT = delete(_TABLE).where(_TABLE.c.key == bindparam("key"), _TABLE.c.channel == bindparam("channel"),
                             _TABLE.c.reason.in_(sorted(LIFTABLE)))
_REPLACE = update(_TABLE).where(_TABLE.c.key == bindparam("b_key"), _TABLE.c.channel == bindparam("b_channel")).values(
    reason=bindparam("b_reason"), source=bindparam("b_source"))
_inserts: dict[str, Any] = {}


def _insert(dialect: str) -> Any:
    """INSERT … ON CONFLICT DO NOTHING RETURNING key, built once per dialect: a row back means added
    (psycopg reports no row count for it)."""
    found = _inserts.get(dialect)
    if found is None:
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        found = _inserts[dialect] = insert(_TABLE).on_conflict_do_nothing().returning(_TABLE.c.key)
    return found


def is_suppressed(session: Session, key: str | None, channel: str) -> bool:
    if not key:
        return False
    return session.get(SuppressionEntry, (key, channel)) is not None


def suppress(conn: Session | Connection, key: str | None, channel: Channel | str, reason: SuppressionReason | str,
             source: str | None, at: datetime, *, replace: bool = False) -> bool:
    """Add a suppression entry; False when one was already there (the first reason stays), or when
    there is no key. ``replace``: an entry already there takes this reason and source (an erasure
    overrides an unsubscribe), and the answer is still False for it.

    One statement (INSERT … ON CONFLICT), so two writers racing for one address both succeed.
    """
    if not key:
        return False
    connection = conn.connection() if isinstance(conn, Session) else conn
    row = _row(key, channel, reason, source, at)
    if replace and connection.execute(_REPLACE, {"b_key": key, "b_channel": row["channel"], "b_reason": row["reason"],
                                                 "b_source": source}).rowcount:
        webhooks.suppressed(connection, [(key, row["channel"])], row["reason"], source, at)
        return False
    added = connection.execute(_insert(connection.dialect.name), row).first() is not None
    if added:
        webhooks.suppressed(connection, [(key, row["channel"])], row["reason"], source, at)
    return added


def _row(key: str, channel: Channel | str, reason: SuppressionReason | str, source: str | None,
         at: datetime) -> dict[str, Any]:
    return {"key": key, "channel": str(channel), "reason": str(reason), "source": source, "created_at": at}


def suppress_many(conn: Connection, entries: Iterable[tuple[str | None, str]], reason: SuppressionReason | str,
                  source: str, at: datetime) -> int:
    """Add one entry per (key, channel) not on the list yet, as one set-based insert (the sweep's path:
    batches of thousands). Returns how many were added; entries already there keep their reason, also
    one added meanwhile by an unsubscribe (ON CONFLICT DO NOTHING).
    """
    wanted = list(dict.fromkeys((key, channel) for key, channel in entries if key))
    if not wanted:
        return 0
    existing: set[tuple[str, str]] = set()
    keys = sorted({key for key, _ in wanted if key})
    for start in range(0, len(keys), 5000):
        existing.update((str(k), str(c)) for k, c in conn.execute(
            select(_TABLE.c.key, _TABLE.c.channel).where(_TABLE.c.key.in_(keys[start:start + 5000]))))
    rows = [(key, channel, str(reason), source, at) for key, channel in wanted if (key, channel) not in existing]
    insert_rows(conn, _TABLE, _COLUMNS, rows, ignore_conflicts=True)
    webhooks.suppressed(conn, [(r[0], r[1]) for r in rows], str(reason), source, at)
    return len(rows)


def lift(conn: Session | Connection, key: str | None, channel: Channel | str) -> bool:
    """Remove an opt-out the person may lift (:data:`LIFTABLE`: unsubscribed, sms_stop, not_granted) on an explicit
    new confirmation; an erasure, a bounce or an import stays. True when an entry went."""
    if not key:
        return False
    connection = conn.connection() if isinstance(conn, Session) else conn
    return bool(connection.execute(_LIFT, {"key": key, "channel": str(channel)}).rowcount)


def _copy(session: Session, entry: SuppressionEntry, new_key: str) -> bool:
    """The entry under another key (re-keying), keeping its reason, source and date."""
    return suppress(session, new_key, entry.channel, entry.reason, entry.source, entry.created_at)


@dataclass
class SuppressionImport:
    added: int = 0
    already: int = 0
    rejected: list[tuple[int, str]] | None = None


def normalise(rt: Runtime, value: str) -> tuple[str | None, list[str]]:
    """(normalised address or None for a key, channels) — raises InputError naming what is wrong."""
    value = value.strip()
    if looks_like_key(value):
        return None, [Channel.EMAIL.value, Channel.SMS.value]
    try:
        if "@" in value:
            return normalise_email(value), [Channel.EMAIL.value]
        return normalise_phone(value, rt.config.contacts.default_region), [Channel.SMS.value]
    except AddressError as err:
        if err.field == "email":
            raise InputError(f"not a valid email: {err.reason.removeprefix('not a valid address: ')}") from None
        if err.parsed:
            raise InputError("not a valid phone number") from None
        raise InputError("neither an email, a phone number nor a 64-hex-digit key") from None


def classify(rt: Runtime, value: str) -> tuple[str, list[str]]:
    """(key, channels) for one line: an email, a phone, or an already-hashed key (both channels)."""
    address, channels = normalise(rt, value)
    return (rt.key_for(address) if address else value.strip().lower()), channels


def previous_keys(rt: Runtime, address: str) -> list[str]:
    """The address hashed under every former secret still listed in config."""
    return [suppression_key(secret, address) for secret in rt.config.previous_suppression_secrets()]


def adopt_previous(session: Session, rt: Runtime, addresses: Iterable[str]) -> int:
    """Copy entries found under a previous key for these plaintext addresses to the current key.

    Called wherever plaintext arrives to be stored (contacts and suppression imports): entries whose
    plaintext was gone at re-key time are upgraded the first time the address is seen again. The
    old entry stays until ``suppression rekey`` (a contact may still carry the old key). Returns the
    number of entries copied.
    """
    if not rt.config.previous_suppression_secrets():
        return 0
    old_to_new: dict[str, str] = {}
    for address in addresses:
        current = rt.key_for(address)
        for old in previous_keys(rt, address):
            old_to_new[old] = current
    copied = 0
    olds = list(old_to_new)
    for start in range(0, len(olds), 500):
        chunk = olds[start:start + 500]
        for entry in session.execute(select(SuppressionEntry).where(col(SuppressionEntry.key).in_(chunk))).scalars():
            new = old_to_new[entry.key]
            if _copy(session, entry, new):
                copied += 1
    return copied


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text (save the file as UTF-8)") from None


def import_list(rt: Runtime, path: Path, *, reason: str = SuppressionReason.IMPORTED) -> SuppressionImport:
    """One address or key per line (first CSV column; a header line is skipped).

    A header naming ``channel`` and/or ``reason`` columns (as ``suppression export`` writes) makes
    those columns count: a hashed key then goes on its own channel only, with its original reason.
    """
    report = SuppressionImport(rejected=[])
    now = rt.clock.now()
    rows = list(csv.reader(_read_lines(path)))
    channel_col = reason_col = None
    if rows and rows[0] and rows[0][0].strip().lower() in _HEADER_WORDS:
        header = [h.strip().lower() for h in rows[0]]
        channel_col = header.index("channel") if "channel" in header else None
        reason_col = header.index("reason") if "reason" in header else None
    with session_scope(rt.engine) as session:
        for number, row in enumerate(rows, start=1):
            if number == 1 and (channel_col is not None or reason_col is not None or
                                (row and row[0].strip().lower() in _HEADER_WORDS)):
                continue
            if not row or not row[0].strip() or row[0].strip().startswith("#"):
                continue
            assert report.rejected is not None
            try:
                address, channels = normalise(rt, row[0])
                key = rt.key_for(address) if address else row[0].strip().lower()
                if channel_col is not None and channel_col < len(row) and row[channel_col].strip():
                    wanted = row[channel_col].strip().lower()
                    if wanted not in _CHANNELS:
                        raise InputError(f"channel: expected email or sms, got {row[channel_col]!r}")
                    if wanted not in channels:
                        raise InputError(f"channel {wanted} does not fit a value that looks like {channels[0]}")
                    channels = [wanted]
                row_reason = reason
                if reason_col is not None and reason_col < len(row) and row[reason_col].strip():
                    row_reason = row[reason_col].strip().lower()
                    if row_reason not in _REASONS:
                        known = ", ".join(sorted(_REASONS))
                        raise InputError(f"reason: expected one of {known}, got {row[reason_col]!r}")
            except InputError as exc:
                report.rejected.append((number, str(exc)))
                continue
            if address:
                adopt_previous(session, rt, [address])
            for channel in channels:
                if suppress(session, key, channel, row_reason, f"import:{path.name}", now):
                    report.added += 1
                else:
                    report.already += 1
    return report


@dataclass(frozen=True)
class CheckResult:
    entry: SuppressionEntry
    previous_key: bool  # found under a former secret (a check only reads; an import copies it)


def check(rt: Runtime, address: str) -> list[SuppressionEntry]:
    return [r.entry for r in check_detailed(rt, address)]


def check_detailed(rt: Runtime, address: str) -> list[CheckResult]:
    normalised, channels = normalise(rt, address)
    key = rt.key_for(normalised) if normalised else address.strip().lower()
    with session_scope(rt.engine) as session:
        out = [CheckResult(e, False) for c in channels if (e := session.get(SuppressionEntry, (key, c))) is not None]
        if normalised and not out:
            for old in previous_keys(rt, normalised):
                out += [CheckResult(e, True) for c in channels
                        if (e := session.get(SuppressionEntry, (old, c))) is not None]
        return out


def export_rows(rt: Runtime) -> Iterator[tuple[str, str, str, str, str]]:
    """Every entry as (key, channel, reason, source, created_at ISO Z), oldest first."""
    with session_scope(rt.engine) as session:
        for e in session.execute(select(SuppressionEntry).order_by(
                col(SuppressionEntry.created_at), col(SuppressionEntry.key), col(SuppressionEntry.channel))).scalars():
            yield (e.key, e.channel, e.reason, e.source or "",
                   as_utc(e.created_at).replace(tzinfo=None).isoformat(timespec="seconds") + "Z")


def export_list(rt: Runtime, out: TextIO) -> int:
    """Write the list as CSV (hashes only: the export holds no address); returns the entry count."""
    return write_csv(out, EXPORT_COLUMNS, export_rows(rt), lineterminator="\n")


@dataclass
class RekeyReport:
    contacts_rekeyed: int = 0
    entries_moved: int = 0
    entries_untouched: int = 0
    previous_keys: int = 0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{self.contacts_rekeyed} contact key(s) re-hashed, {self.entries_moved} suppression "
                f"entr{'y' if self.entries_moved == 1 else 'ies'} moved to the current key, "
                f"{self.entries_untouched} left as they were (already current, or no plaintext held: "
                f"erased people, hashed imports — they stay checkable while their key is listed in "
                f"security.previous_suppression_keys)")


def rekey(rt: Runtime, progress: Callable[[int], None] | None = None) -> RekeyReport:
    """Re-hash contacts and suppression entries from the previous secrets to the current one.

    One transaction: either every contact and entry moves or nothing does, so no dispatcher ever
    sees a contact whose key does not match its suppression entry.
    """
    olds = rt.config.previous_suppression_secrets()
    if not olds:
        raise ConfigError("security.previous_suppression_keys is empty: list the former suppression key(s) "
                          "there (RECONSENT_SECURITY__PREVIOUS_SUPPRESSION_KEYS) and the new one in "
                          "security.suppression_key, then run rekey again")
    if rt.config.suppression_secret() in olds:
        raise ConfigError("security.suppression_key is also listed in security.previous_suppression_keys: "
                          "the current key must be the new one")
    report = RekeyReport(previous_keys=len(olds))
    with session_scope(rt.engine) as session:
        total = session.execute(select(func.count()).select_from(SuppressionEntry)).scalar_one()
        live = select(Contact).where(col(Contact.erased_at).is_(None)).order_by(col(Contact.id))
        contacts = session.execute(live).scalars().all()
        old_to_new: dict[str, str] = {}
        for c in contacts:
            changed = False
            for address, attr in ((c.email, "email_key"), (c.phone, "phone_key")):
                if not address:
                    continue
                current = rt.key_for(address)
                for old in {*(suppression_key(s, address) for s in olds), getattr(c, attr)}:
                    if old and old != current:
                        old_to_new[old] = current
                if getattr(c, attr) != current:
                    setattr(c, attr, current)
                    changed = True
            if changed:
                session.add(c)
                report.contacts_rekeyed += 1
            if progress:
                progress(1)
        olds_list = list(old_to_new)
        for start in range(0, len(olds_list), 500):
            chunk = olds_list[start:start + 500]
            entries = session.execute(
                select(SuppressionEntry).where(col(SuppressionEntry.key).in_(chunk))).scalars().all()
            for entry in entries:
                new = old_to_new[entry.key]
                _copy(session, entry, new)
                report.entries_moved += 1
            session.flush()
            session.execute(delete(SuppressionEntry).where(col(SuppressionEntry.key).in_(chunk)),
                            execution_options={"synchronize_session": False})
        report.entries_untouched = int(total) - report.entries_moved
    return report


def rekey_size(rt: Runtime) -> int:
    """How many contacts ``rekey`` will walk (the length of its progress bar)."""
    with session_scope(rt.engine) as session:
        return int(session.execute(select(func.count()).select_from(Contact)).scalar_one())
