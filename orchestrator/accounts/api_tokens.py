"""Bearer tokens of the HTTP API (issue 17 §2): created, listed and revoked by ``reconsent api-tokens``.

A token is ``rct_`` followed by 256 random bits (URL-safe base64); only its SHA-256 is stored, with a
short prefix to recognise it in a list. It is printed once, at creation. ``read`` tokens read;
``write`` tokens also write. Every creation, revocation and API write goes to the console's audit
log (:func:`orchestrator.accounts.service.record_action`), under the token's name.

The stored answers of idempotent writes (``Idempotency-Key``) live here too: they belong to a token.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from orchestrator.accounts.service import Operator, record_action
from orchestrator.domain.clock import as_utc
from orchestrator.errors import InputError, NotFoundError
from orchestrator.runtime import Runtime
from orchestrator.store.db import session_scope
from orchestrator.store.models import ApiIdempotency, ApiToken

PREFIX = "rct_"
SHOWN = 12  # characters kept to recognise a token: the prefix and 8 of its 43 random ones


class Scope(StrEnum):
    READ = "read"
    WRITE = "write"


@dataclass(frozen=True)
class ApiClient:
    """The caller of an API request, as the web layer sees it."""

    id: int
    name: str
    scope: Scope

    @property
    def can_write(self) -> bool:
        return self.scope is Scope.WRITE

    @property
    def audit_name(self) -> str:
        return f"api:{self.name}"


@dataclass(frozen=True)
class TokenInfo:
    id: int
    name: str
    scope: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def state(self) -> str:
        return "revoked" if self.revoked_at else "active"


def digest(token: str) -> str:
    """The stored form of a token.

    >>> digest("rct_x") == hashlib.sha256(b"rct_x").hexdigest()
    True
    """
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(rt: Runtime, name: str, scope: str, *, by: Operator | None = None,
                 ip: str | None = None) -> tuple[int, str]:
    """A new token: (id, the token itself — shown once, never stored). ``by``: the console user (None:
    the CLI)."""
    name = name.strip()
    if not name:
        raise InputError("--name: give the token a name (what uses it, e.g. crm-sync)")
    if scope not in (Scope.READ, Scope.WRITE):
        raise InputError(f"--scope: expected read or write, got {scope!r}")
    token = PREFIX + secrets.token_urlsafe(32)
    with session_scope(rt.engine) as session:
        row = ApiToken(name=name, scope=str(scope), token_hash=digest(token), prefix=token[:SHOWN],
                       created_at=rt.clock.now())
        session.add(row)
        session.flush()
        assert row.id is not None
        token_id = row.id
    record_action(rt, by, "api_token.create", target=f"api_token:{token_id}", login="cli", ip=ip, name=name,
                  scope=scope)
    return token_id, token


def list_tokens(rt: Runtime) -> list[TokenInfo]:
    with session_scope(rt.engine) as session:
        rows = session.execute(select(ApiToken).order_by(col(ApiToken.id))).scalars().all()
        return [TokenInfo(r.id or 0, r.name, r.scope, r.prefix, r.created_at, r.last_used_at, r.revoked_at)
                for r in rows]


def revoke_token(rt: Runtime, token_id: int, *, by: Operator | None = None, ip: str | None = None) -> bool:
    """Revoke a token at once; False when it was already revoked. NotFoundError when there is none."""
    with session_scope(rt.engine) as session:
        row = session.get(ApiToken, token_id)
        if row is None:
            raise NotFoundError(f"api token {token_id}: no such token (see `reconsent api-tokens list`)")
        if row.revoked_at is not None:
            return False
        row.revoked_at = rt.clock.now()
    record_action(rt, by, "api_token.revoke", target=f"api_token:{token_id}", login="cli", ip=ip)
    return True


def authenticate(rt: Runtime, token: str) -> ApiClient | None:
    """The client a bearer token names, or None (unknown, malformed or revoked)."""
    if not token.startswith(PREFIX) or len(token) > 200:
        return None
    with session_scope(rt.engine) as session:
        row = session.execute(select(ApiToken).where(col(ApiToken.token_hash) == digest(token))).scalars().first()
        if row is None or row.revoked_at is not None or row.id is None:
            return None
        now = rt.clock.now()
        last = row.last_used_at
        if last is None or (now - as_utc(last)).total_seconds() >= 60:  # at most once a minute
            session.execute(update(ApiToken).where(col(ApiToken.id) == row.id).values(last_used_at=now))
        return ApiClient(row.id, row.name, Scope(row.scope))


def audit_write(rt: Runtime, client: ApiClient, action: str, *, target: str | None = None,
                outcome: str = "ok", ip: str | None = None, **detail: Any) -> None:
    """One API write in the console's audit log, under the token's name."""
    record_action(rt, None, f"api.{action}", target=target, outcome=outcome, ip=ip, login=client.audit_name,
                  token_id=client.id, **detail)


def request_hash(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()


class IdempotencyConflict(InputError):
    """The key was used before with another request."""


def replayed(rt: Runtime, client: ApiClient, key: str, fingerprint: str) -> tuple[int, str] | None:
    """The stored (status, body) of an earlier request with this key, or None; IdempotencyConflict when
    the key was used for another request."""
    with session_scope(rt.engine) as session:
        row = session.execute(select(ApiIdempotency).where(
            col(ApiIdempotency.token_id) == client.id, col(ApiIdempotency.key) == key)).scalars().first()
        if row is None:
            return None
        if row.request_hash != fingerprint:
            raise IdempotencyConflict("Idempotency-Key: this key was used for a different request; use a new key")
        return row.status, row.body


def remember(rt: Runtime, client: ApiClient, key: str, fingerprint: str, status: int, body: str) -> None:
    """Store the answer of a request made with ``key`` (a concurrent twin that stored first wins)."""
    try:
        with session_scope(rt.engine) as session:
            session.add(ApiIdempotency(token_id=client.id, key=key, request_hash=fingerprint, status=status,
                                       body=body, created_at=rt.clock.now()))
    except IntegrityError:
        pass
