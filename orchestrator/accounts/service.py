"""Console users: created by ``reconsent users add`` and signed in by the console
(``preference_centre.admin.auth``), which both go through here.

Passwords are stored as argon2id hashes; logins are compared lower-cased and trimmed.
"""

from __future__ import annotations

from enum import StrEnum

from argon2 import PasswordHasher
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select
from sqlmodel import col

from orchestrator.errors import InputError
from orchestrator.runtime import Runtime
from orchestrator.store.db import session_scope
from orchestrator.store.models import AdminUser

MIN_PASSWORD = 12
#: argon2id, library defaults (RFC 9106 low-memory profile)
PASSWORD_HASHER = PasswordHasher()


class Role(StrEnum):
    ADMIN = "admin"
    VIEWER = "viewer"


def normalise_login(email: str) -> str:
    """Logins are compared lower-cased and trimmed.

    >>> normalise_login("  Marie@Example.ORG ")
    'marie@example.org'
    """
    return email.strip().lower()


def add_user(rt: Runtime, email: str, password: str, role: str = Role.VIEWER, *,
             hasher: PasswordHasher | None = None) -> int:
    """Create a console user (``reconsent users add``); refuses weak passwords and duplicates.

    Returns the new user's id. ``hasher`` defaults to ``PASSWORD_HASHER``.
    """
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
        user = AdminUser(email=email, role=str(role), password_hash=(hasher or PASSWORD_HASHER).hash(password),
                         created_at=rt.clock.now())
        session.add(user)
        session.flush()
        assert user.id is not None
        return user.id
