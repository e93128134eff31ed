"""Console accounts: argon2id password hashes, server-side sessions, lockout, and the audit log.

Nothing here knows about HTTP: the web layer hands in addresses and cookie values. Time comes from
the runtime's Clock, so lockouts and expiries are testable without sleeping. The audit log records
every console action, who did it and when; targets are ids or suppression keys (keyed hashes), never
an address, so the log itself holds no one's contact details.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from orchestrator.domain.clock import as_utc
from orchestrator.errors import InputError
from orchestrator.runtime import Runtime
from orchestrator.store.db import session_scope
from orchestrator.store.models import AdminAudit, AdminLoginBlock, AdminSession, AdminUser

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
    password_hash = hash_password(password)
    with session_scope(rt.engine) as session:
        if session.execute(select(col(AdminUser.id)).where(col(AdminUser.email) == email)).first():
            raise InputError(f"EMAIL: a console user {email} already exists")
        user = AdminUser(email=email, role=str(role), password_hash=password_hash,
                         created_at=rt.clock.now())
        session.add(user)
        session.flush()
        assert user.id is not None
        return user.id


def console_enabled(rt: Runtime) -> bool:
    """The console exists only once an admin user does (before that, /admin is a plain 404)."""
    with session_scope(rt.engine) as session:
        admin = select(col(AdminUser.id)).where(col(AdminUser.role) == Role.ADMIN.value,
                                                col(AdminUser.disabled_at).is_(None)).limit(1)
        return session.execute(admin).first() is not None


class SignInRefused(Exception):
    """Wrong email or password, a disabled account, or a blocked address: one message for all, so
    nothing leaks (the reason goes to the audit log only)."""


def hash_password(password: str) -> str:
    """The argon2id hash of a new password (refused under :data:`MIN_PASSWORD` characters)."""
    if len(password) < MIN_PASSWORD:
        raise InputError(f"password: at least {MIN_PASSWORD} characters are required")
    return _hasher.hash(password)


def block_minutes(lockout_minutes: int, blocks: int) -> int:
    """How long the ``blocks``-th block of one address lasts: doubled each time, at most 64 times.

    >>> [block_minutes(15, n) for n in (1, 2, 3, 8)]
    [15, 30, 60, 960]
    """
    return lockout_minutes << min(blocks - 1, 6)


def authenticate(rt: Runtime, email: str, password: str, *, ip: str = "?", code: str = "") -> int:
    """The user id for a correct email/password of an enabled account, tried from an address that is
    not blocked for it; else SignInRefused. Blocking the operator's database (and the argon2 check)
    for tens of milliseconds, it runs off the event loop in the web server (:class:`PasswordChecks`).

    Failures are counted per (account, client address) in ``admin_login_block``: ``admin.lockout_after``
    in a row block that address for that account for ``admin.lockout_minutes``, doubled at each further
    block (:func:`block_minutes`); even the right password is refused from there meanwhile, while the
    account's owner, elsewhere, still signs in (and clears only its own address's count: the guesser's
    block and its doubling stay). ``reconsent users unlock`` (or the console) lifts every block.
    """
    now = rt.clock.now()
    with session_scope(rt.engine) as session:  # a short read: the hash is checked outside any transaction
        user = session.execute(
            select(AdminUser).where(col(AdminUser.email) == normalise_login(email))).scalar_one_or_none()
        block = session.get(AdminLoginBlock, (user.id, ip)) if user is not None else None
    blocked = block is not None and block.blocked_until is not None and as_utc(block.blocked_until) > now
    if user is None or user.id is None or user.disabled_at is not None or blocked:
        _verify(_dummy_hash(), password)  # every refusal costs as long as a wrong password
        raise SignInRefused("unknown user" if user is None else "disabled" if user.disabled_at else "locked")
    if not _verify(user.password_hash, password):
        _count_failure(rt, user.id, ip)
        raise SignInRefused("wrong password")
    wrong_code = False
    with session_scope(rt.engine) as session:  # the code and the success: one transaction
        row = session.get(AdminUser, user.id)
        if row is None:
            raise SignInRefused("unknown user")
        step = totp_step(row.totp_secret, code, now, after=row.totp_last_step) if row.totp_secret else None
        if row.totp_secret and step is None:
            wrong_code = True
        else:
            if _hasher.check_needs_rehash(row.password_hash):
                row.password_hash = _hasher.hash(password)
            row.totp_last_step = step if step is not None else row.totp_last_step
            row.failed_logins = 0
            row.locked_until = None
            row.last_login_at = now
            session.add(row)
            session.execute(delete(AdminLoginBlock).where(col(AdminLoginBlock.user_id) == user.id,
                                                          col(AdminLoginBlock.ip) == ip))
    if wrong_code:
        _count_failure(rt, user.id, ip)
        raise SignInRefused("wrong code")
    return int(user.id)


def totp_step(secret: str, code: str, now: datetime, *, after: int | None = None) -> int | None:
    """The 30-second step ``code`` belongs to (now, or one step either side for clock drift), if it is
    later than ``after`` (a code is good once); else None.

    >>> import pyotp; from datetime import UTC; t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> key = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    >>> code = pyotp.TOTP(key).at(t); step = totp_step(key, code, t); step == int(t.timestamp()) // 30
    True
    >>> totp_step(key, code, t, after=step), totp_step(key, "000000", t)
    (None, None)
    """
    import pyotp

    totp, code = pyotp.TOTP(secret), code.strip().replace(" ", "")
    base = int(now.timestamp()) // 30
    for step in (base, base - 1, base + 1):
        if (after is None or step > after) and totp.verify(code, for_time=step * 30):
            return step
    return None


def sign_in(rt: Runtime, email: str, password: str, *, ip: str, code: str = "") -> int:
    """:func:`authenticate`, with its audit entry (``login``: ok, or ``refused:<reason>``)."""
    login = normalise_login(email)[:200]
    try:
        user_id = authenticate(rt, email, password, ip=ip, code=code)
    except SignInRefused as exc:
        record_action(rt, None, "login", outcome=f"refused:{exc}", ip=ip, login=login)
        raise
    record_action(rt, None, "login", ip=ip, login=login, user_id=user_id)
    return user_id


def _count_failure(rt: Runtime, user_id: int, ip: str) -> None:
    cfg = rt.config.admin
    now = rt.clock.now()
    for attempt in range(3):  # two sign-ins from one new address may both insert its row: count again
        try:
            with session_scope(rt.engine) as session:
                block = session.get(AdminLoginBlock, (user_id, ip)) or AdminLoginBlock(user_id=user_id, ip=ip)
                block.failures += 1
                if block.failures >= cfg.lockout_after:
                    block.blocks += 1
                    block.failures = 0
                    block.blocked_until = now + timedelta(minutes=block_minutes(cfg.lockout_minutes, block.blocks))
                session.add(block)
                session.execute(update(AdminUser).where(col(AdminUser.id) == user_id)
                                .values(failed_logins=col(AdminUser.failed_logins) + 1))
            return
        except IntegrityError:
            if attempt == 2:
                raise


class SignInBusy(Exception):
    """More sign-ins are waiting for a password check than :class:`PasswordChecks` queues."""


class PasswordChecks:
    """Sign-ins checked off the event loop, in a bounded pool: at most ``workers`` argon2 checks run at
    once (each takes tens of milliseconds of CPU and 64 MiB) and at most ``queue`` wait; beyond that
    :class:`SignInBusy`, at once. The web server's loop meanwhile answers everything else (one-click
    unsubscribes, Twilio's webhooks, /healthz): a burst of wrong passwords costs sign-ins, nothing more.
    """

    def __init__(self, workers: int | None = None, queue: int = 32) -> None:
        # one core is always left to the event loop: 1 check at a time on two cores, 2 on three or more
        workers = workers or max(1, min(2, (os.cpu_count() or 2) - 1))
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="reconsent-password")
        self._limit = workers + queue
        self._pending = 0

    async def sign_in(self, rt: Runtime, email: str, password: str, *, ip: str, code: str = "") -> int:
        """:func:`sign_in` in the pool (its database work with it: short, but not the loop's either)."""
        if self._pending >= self._limit:
            raise SignInBusy()
        self._pending += 1
        try:
            job = functools.partial(sign_in, rt, email, password, ip=ip, code=code)
            return await asyncio.get_running_loop().run_in_executor(self._pool, job)
        finally:
            self._pending -= 1

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


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
        if user is None or user.id is None or user.disabled_at is not None:
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
