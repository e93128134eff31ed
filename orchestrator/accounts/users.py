"""Managing console accounts (issue 15): list, disable, enable, remove, set-role, reset-password,
unlock, logout-all — for ``reconsent users …`` and the console's Users page alike.

Each change is one transaction that also writes its audit entry (who: the signed-in admin, or ``cli``).
Disabling, removing, resetting a password and logging out everywhere end the account's sessions in
that same transaction, so its open browsers are signed out at their very next request. The last
enabled admin cannot be disabled, removed or made a viewer: the console would then be gone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlmodel import Session, col

from orchestrator.accounts.service import (
    Operator,
    Role,
    hash_password,
    normalise_login,
)
from orchestrator.domain.clock import as_utc
from orchestrator.errors import InputError
from orchestrator.runtime import Runtime
from orchestrator.store.db import session_scope
from orchestrator.store.models import AdminAudit, AdminLoginBlock, AdminSession, AdminUser

#: an account named by its id (the console) or its email (the CLI)
AccountRef = int | str


@dataclass(frozen=True)
class Account:
    """One console user as ``users list`` and the Users page show it."""

    id: int
    email: str
    role: str
    disabled: bool
    blocked_addresses: int  # client addresses currently blocked after failed sign-ins
    failed_logins: int  # failures since the last successful sign-in, from anywhere
    sessions: int
    second_factor: bool
    last_login_at: datetime | None

    @property
    def state(self) -> str:
        return "disabled" if self.disabled else "blocked" if self.blocked_addresses else "active"


def list_users(rt: Runtime) -> list[Account]:
    now = rt.clock.now()
    with session_scope(rt.engine) as session:
        users = list(session.execute(select(AdminUser).order_by(col(AdminUser.email))).scalars())
        counted = session.execute(select(col(AdminSession.user_id), func.count()).where(
            col(AdminSession.expires_at) > now).group_by(col(AdminSession.user_id))).all()
        sessions = {int(user_id): int(n) for user_id, n in counted}
        blocks = list(session.execute(select(AdminLoginBlock)).scalars())
    blocked: dict[int, int] = {}
    for b in blocks:
        if b.blocked_until is not None and as_utc(b.blocked_until) > now:
            blocked[b.user_id] = blocked.get(b.user_id, 0) + 1
    return [Account(u.id or 0, u.email, u.role, u.disabled_at is not None, blocked.get(u.id or 0, 0), u.failed_logins,
                    sessions.get(u.id or 0, 0), bool(u.totp_secret), u.last_login_at) for u in users]


def _find(session: Session, ref: AccountRef) -> AdminUser:
    if isinstance(ref, int):
        user = session.get(AdminUser, ref)
    else:
        by_email = select(AdminUser).where(col(AdminUser.email) == normalise_login(ref))
        user = session.execute(by_email).scalar_one_or_none()
    if user is None or user.id is None:
        raise InputError(f"EMAIL: no console user {ref} (see `reconsent users list`)" if isinstance(ref, str)
                         else f"no console user #{ref}")
    return user


def _keep_an_admin(session: Session, user: AdminUser, what: str) -> None:
    """Refuse to leave the console without an enabled admin."""
    if user.role != Role.ADMIN or user.disabled_at is not None:
        return
    others = session.execute(select(func.count()).select_from(AdminUser).where(
        col(AdminUser.role) == Role.ADMIN.value, col(AdminUser.disabled_at).is_(None),
        col(AdminUser.id) != user.id)).scalar_one()
    if not others:
        raise InputError(f"{user.email} is the last enabled admin: {what} would close the console; "
                         "add or enable another admin first")


def _end_sessions(session: Session, user_id: int) -> int:
    ended = session.execute(delete(AdminSession).where(col(AdminSession.user_id) == user_id))
    return int(getattr(ended, "rowcount", 0) or 0)


def _audit(session: Session, rt: Runtime, by: Operator | None, action: str, user: AdminUser, ip: str | None,
           **detail: Any) -> None:
    session.add(AdminAudit(at=rt.clock.now(), user_id=by.id if by else None, user_email=by.email if by else "cli",
                           action=action, target=f"user:{user.id}", outcome="ok", detail=detail, ip=ip))


def set_disabled(rt: Runtime, ref: AccountRef, disabled: bool, *, by: Operator | None = None,
                 ip: str | None = None) -> int:
    """Disable (no sign-in; every session ended now) or enable an account; returns sessions ended."""
    with session_scope(rt.engine) as session:
        user = _find(session, ref)
        assert user.id is not None
        ended = 0
        if disabled:
            _keep_an_admin(session, user, "disabling it")
            user.disabled_at = user.disabled_at or rt.clock.now()
            ended = _end_sessions(session, user.id)
        else:
            user.disabled_at = None
        session.add(user)
        _audit(session, rt, by, "users.disable" if disabled else "users.enable", user, ip, sessions_ended=ended)
        return ended


def remove_user(rt: Runtime, ref: AccountRef, *, by: Operator | None = None, ip: str | None = None) -> str:
    """Delete an account, its sessions and its blocks (the audit log keeps its entries); returns its email."""
    with session_scope(rt.engine) as session:
        user = _find(session, ref)
        assert user.id is not None
        _keep_an_admin(session, user, "removing it")
        ended = _end_sessions(session, user.id)
        session.execute(delete(AdminLoginBlock).where(col(AdminLoginBlock.user_id) == user.id))
        _audit(session, rt, by, "users.remove", user, ip, sessions_ended=ended)
        session.delete(user)
        return user.email


def set_role(rt: Runtime, ref: AccountRef, role: str, *, by: Operator | None = None, ip: str | None = None) -> None:
    """admin or viewer; takes effect at the account's next request (the role is read at each one)."""
    if role not in (Role.ADMIN, Role.VIEWER):
        raise InputError(f"ROLE: expected admin or viewer, got {role!r}")
    with session_scope(rt.engine) as session:
        user = _find(session, ref)
        if role == Role.VIEWER:
            _keep_an_admin(session, user, "making it a viewer")
        before, user.role = user.role, str(role)
        session.add(user)
        _audit(session, rt, by, "users.set-role", user, ip, role=str(role), before=before)


def reset_password(rt: Runtime, ref: AccountRef, password: str, *, by: Operator | None = None,
                   ip: str | None = None) -> int:
    """A new password; every session of the account ends and its blocks are lifted. Returns sessions ended."""
    password_hash = hash_password(password)
    with session_scope(rt.engine) as session:
        user = _find(session, ref)
        assert user.id is not None
        user.password_hash = password_hash
        user.failed_logins = 0
        user.locked_until = None
        session.add(user)
        ended = _end_sessions(session, user.id)
        session.execute(delete(AdminLoginBlock).where(col(AdminLoginBlock.user_id) == user.id))
        _audit(session, rt, by, "users.reset-password", user, ip, sessions_ended=ended)
        return ended


def unlock(rt: Runtime, ref: AccountRef, *, by: Operator | None = None, ip: str | None = None) -> int:
    """Lift every sign-in block of the account; returns how many addresses were blocked."""
    now = rt.clock.now()
    with session_scope(rt.engine) as session:
        user = _find(session, ref)
        blocks = list(session.execute(select(AdminLoginBlock).where(col(AdminLoginBlock.user_id) == user.id)).scalars())
        lifted = sum(1 for b in blocks if b.blocked_until is not None and as_utc(b.blocked_until) > now)
        session.execute(delete(AdminLoginBlock).where(col(AdminLoginBlock.user_id) == user.id))
        user.failed_logins = 0
        user.locked_until = None
        session.add(user)
        _audit(session, rt, by, "users.unlock", user, ip, addresses=lifted)
        return lifted


def logout_all(rt: Runtime, ref: AccountRef, *, by: Operator | None = None, ip: str | None = None) -> int:
    """End every session of the account now; returns how many."""
    with session_scope(rt.engine) as session:
        user = _find(session, ref)
        assert user.id is not None
        ended = _end_sessions(session, user.id)
        _audit(session, rt, by, "users.logout-all", user, ip, sessions_ended=ended)
        return ended


def set_second_factor(rt: Runtime, ref: AccountRef, on: bool, *, by: Operator | None = None,
                      ip: str | None = None) -> str | None:
    """Give the account a new TOTP secret (returns the ``otpauth://`` URI to scan, shown once) or remove it
    (a lost phone). Either way its sessions end: the next sign-in is under the new rule."""
    import pyotp

    secret = pyotp.random_base32() if on else None
    with session_scope(rt.engine) as session:
        user = _find(session, ref)
        assert user.id is not None
        user.totp_secret, user.totp_last_step = secret, None
        session.add(user)
        ended = _end_sessions(session, user.id)
        _audit(session, rt, by, "users.totp", user, ip, second_factor="on" if on else "off", sessions_ended=ended)
        email = user.email
    if secret is None:
        return None
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=f"Reconsent {rt.config.sender.name}")
