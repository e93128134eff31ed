"""Console accounts: argon2id password hashes, server-side sessions, lockout, and the audit log.

Nothing here knows about HTTP: the web layer hands in addresses and cookie values. Time comes from
the runtime's Clock, so lockouts and expiries are testable without sleeping. The audit log records
every console action, who did it and when; targets are ids or suppression keys (keyed hashes), never
an address, so the log itself holds no one's contact details.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import delete, select
from sqlmodel import col

from orchestrator.domain.clock import as_utc
from orchestrator.errors import InputError
from orchestrator.runtime import Runtime
from orchestrator.store.db import session_scope
from orchestrator.store.models import AdminAudit, AdminSession, AdminUser

MIN_PASSWORD = 12
_hasher = PasswordHasher()  # argon2id, library defaults (RFC 9106 low-memory profile)
_dummy: tuple[PasswordHasher, str] | None = None


def _dummy_hash() -> str:
    """Verified when the email is unknown or locked, so every refusal costs as long as a wrong password."""
    global _dummy
    if _dummy is None or _dummy[0] is not _hasher:
        _dummy = (_hasher, _hasher.hash(secrets.token_urlsafe(16)))
    return _dummy[1]


class Role(StrEnum):
    ADMIN = "admin"
    VIEWER = "viewer"


@dataclass(frozen=True)
class Operator:
    """The signed-in user as the views see it."""

    id: int
    email: str
    role: Role
    csrf_token: str

    @property
    def can_act(self) -> bool:
        return self.role is Role.ADMIN


def normalise_login(email: str) -> str:
    """Logins are compared lower-cased and trimmed.

    >>> normalise_login("  Marie@Example.ORG ")
    'marie@example.org'
    """
    return email.strip().lower()


def add_user(rt: Runtime, email: str, password: str, role: str = Role.VIEWER) -> int:
    """Create a console user (``reconsent users add``); refuses weak passwords and duplicates."""
    try:
        email = normalise_login(validate_email(email, check_deliverability=False).normalized)
    except EmailNotValidError as exc:
        raise InputError(f"EMAIL: not a valid address: {exc}") from None
    if role not in (Role.ADMIN, Role.VIEWER):
        raise InputError(f"--role: expected admin or viewer, got {role!r}")
    if len(password) < MIN_PASSWORD:
        raise InputError(f"password: at least {MIN_PASSWORD} characters are required")
    with session_scope(rt.engine) as session:
        if session.execute(select(col(AdminUser.id)).where(col(AdminUser.email) == email)).first():
            raise InputError(f"EMAIL: a console user {email} already exists")
        user = AdminUser(email=email, role=str(role), password_hash=_hasher.hash(password),
                         created_at=rt.clock.now())
        session.add(user)
        session.flush()
        assert user.id is not None
        return user.id


def console_enabled(rt: Runtime) -> bool:
    """The console exists only once an admin user does (before that, /admin is a plain 404)."""
    with session_scope(rt.engine) as session:
        admin = select(col(AdminUser.id)).where(col(AdminUser.role) == Role.ADMIN.value).limit(1)
        return session.execute(admin).first() is not None


class SignInRefused(Exception):
    """Wrong email or password, or a locked account: one message for all, so nothing leaks."""


def authenticate(rt: Runtime, email: str, password: str) -> int:
    """The user id for a correct email/password of an unlocked account; else SignInRefused.

    Each failure counts towards ``admin.lockout_after``; reaching it locks the account for
    ``admin.lockout_minutes`` (even the right password is refused meanwhile). Success resets the count.
    """
    cfg = rt.config.admin
    now = rt.clock.now()
    refused: str | None = None
    user_id: int | None = None
    with session_scope(rt.engine) as session:  # commits the failure count before refusing
        user = session.execute(
            select(AdminUser).where(col(AdminUser.email) == normalise_login(email))).scalar_one_or_none()
        if user is None:
            _verify(_dummy_hash(), password)
            refused = "unknown user"
        elif user.locked_until is not None and as_utc(user.locked_until) > now:
            _verify(_dummy_hash(), password)
            refused = "locked"
        elif not _verify(user.password_hash, password):
            user.failed_logins += 1
            if user.failed_logins >= cfg.lockout_after:
                user.locked_until = now + timedelta(minutes=cfg.lockout_minutes)
                user.failed_logins = 0
            session.add(user)
            refused = "wrong password"
        else:
            if _hasher.check_needs_rehash(user.password_hash):
                user.password_hash = _hasher.hash(password)
            user.failed_logins = 0
            user.locked_until = None
            user.last_login_at = now
            session.add(user)
            user_id = user.id
    if refused is not None:
        raise SignInRefused(refused)
    assert user_id is not None
    return user_id


def _verify(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def _digest(cookie_value: str) -> str:
    return hashlib.sha256(cookie_value.encode("utf-8")).hexdigest()


def open_session(rt: Runtime, user_id: int) -> str:
    """A fresh session (new id at every sign-in: no fixation); returns the cookie value."""
    value = secrets.token_urlsafe(32)
    now = rt.clock.now()
    with session_scope(rt.engine) as session:
        session.add(AdminSession(id=_digest(value), user_id=user_id, csrf_token=secrets.token_urlsafe(32),
                                 created_at=now, expires_at=now + timedelta(hours=rt.config.admin.session_hours)))
    return value


def load_session(rt: Runtime, cookie_value: str | None) -> Operator | None:
    if not cookie_value:
        return None
    with session_scope(rt.engine) as session:
        row = session.get(AdminSession, _digest(cookie_value))
        if row is None:
            return None
        if as_utc(row.expires_at) <= rt.clock.now():
            session.delete(row)
            return None
        user = session.get(AdminUser, row.user_id)
        if user is None or user.id is None:
            return None
        return Operator(user.id, user.email, Role(user.role), row.csrf_token)


def close_session(rt: Runtime, cookie_value: str | None) -> None:
    if cookie_value:
        with session_scope(rt.engine) as session:
            session.execute(delete(AdminSession).where(col(AdminSession.id) == _digest(cookie_value)))


def record_action(rt: Runtime, who: Operator | None, action: str, *, target: str | None = None,
                  outcome: str = "ok", ip: str | None = None, login: str | None = None, **detail: Any) -> None:
    """Append one audit entry. ``login`` names the account for sign-in attempts (no Operator yet)."""
    with session_scope(rt.engine) as session:
        session.add(AdminAudit(at=rt.clock.now(), user_id=who.id if who else None,
                               user_email=who.email if who else (login or "-"), action=action,
                               target=target, outcome=outcome, detail=detail, ip=ip))


def recent_actions(rt: Runtime, limit: int = 200) -> list[AdminAudit]:
    """The newest audit entries first."""
    with session_scope(rt.engine) as session:
        return list(session.execute(select(AdminAudit).order_by(col(AdminAudit.id).desc()).limit(limit)).scalars())
