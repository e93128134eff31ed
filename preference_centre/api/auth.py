"""Bearer authentication, scope, per-token rate limit and error mapping around every API handler.

401 without a token or with an unknown or revoked one (``WWW-Authenticate: Bearer``); 403 when a read
token asks a write endpoint; 429 with ``Retry-After`` past the per-token rate (counted per token id,
so one integrator's burst never refuses another). Service errors become problems: not found → 404,
invalid input → 422, wrong state → 409.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from orchestrator.accounts.api_tokens import ApiClient, authenticate, remember, replayed, request_hash
from orchestrator.errors import InputError, NotFoundError, ReconsentError, StateError
from orchestrator.runtime import Runtime
from preference_centre.api.problems import PROBLEM, problem
from preference_centre.security import RateLimit

#: ids and cursors are 32-bit integers in the database: a larger one names nothing
MAX_ID = 2**31 - 1
Handler = Callable[[Request, ApiClient], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]
log = logging.getLogger("reconsent.api")


def bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def unauthorized(detail: str) -> Response:
    return problem(401, detail, headers={"www-authenticate": 'Bearer realm="reconsent"'})


def api_endpoint(*, write: bool = False) -> Callable[[Handler], Endpoint]:
    """Wrap ``handler(request, client)``: authenticate, check the scope and the rate, map errors."""

    def decorate(handler: Handler) -> Endpoint:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            rt: Runtime = request.app.state.rt
            token = bearer(request)
            if token is None:
                return unauthorized("Send a token: Authorization: Bearer rct_… (reconsent api-tokens create).")
            client = await run_in_threadpool(authenticate, rt, token)
            if client is None:
                return unauthorized("This token is unknown or revoked.")
            limit: RateLimit = request.app.state.rate_limit
            if not limit.allow(f"api-token:{client.id}"):
                return problem(429, f"More than {limit.per_minute} requests in a minute with this token; retry later.",
                               headers={"retry-after": "60"})
            if write and not client.can_write:
                return problem(403, "This token may only read; this endpoint needs a write token.")
            try:
                if write and request.headers.get("idempotency-key"):
                    return await _idempotent(request, client, handler)
                return await handler(request, client)
            except NotFoundError as exc:
                return problem(404, str(exc))
            except StateError as exc:
                return problem(409, str(exc))
            except InputError as exc:
                return problem(422, str(exc))
            except ReconsentError as exc:
                return problem(400, str(exc))

        return endpoint

    return decorate


async def _idempotent(request: Request, client: ApiClient, handler: Handler) -> Response:
    """Same key and same request: the stored answer again, nothing redone; same key and another
    request: 422. Answers below 500 are stored (a failure may be retried with the same key)."""
    rt: Runtime = request.app.state.rt
    key = request.headers["idempotency-key"]
    if len(key) > 255:
        raise InputError("Idempotency-Key: at most 255 characters")
    fingerprint = request_hash(request.method, request.url.path, await request.body())
    stored = await run_in_threadpool(replayed, rt, client, key, fingerprint)
    if stored is not None:
        status, body = stored
        return Response(body, status_code=status, media_type=PROBLEM if status >= 400 else "application/json",
                        headers={"idempotent-replayed": "true"})
    response = await handler(request, client)
    if response.status_code < 500:
        await run_in_threadpool(remember, rt, client, key, fingerprint, response.status_code,
                                bytes(response.body).decode())
    return response


async def json_body(request: Request) -> Any:
    """The request's JSON; InputError (→ 422) when it is not JSON."""
    try:
        return json.loads(await request.body())
    except ValueError:
        raise InputError("body: expected JSON (Content-Type: application/json)") from None


def text_field(body: Any, name: str, *, required: bool = True) -> str | None:
    """``body[name]`` as a non-empty string; InputError naming the field otherwise."""
    if not isinstance(body, dict):
        raise InputError("body: expected a JSON object")
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{name}: expected a non-empty string")
    return value


def paging(request: Request, *, default: int = 100, most: int = 1000) -> tuple[int, int]:
    """``?after=<cursor>&limit=<n>``: InputError (→ 422) naming the parameter when either is invalid."""
    after_text = request.query_params.get("after", "0") or "0"
    limit_text = request.query_params.get("limit", str(default)) or str(default)
    if not after_text.isdigit() or len(after_text) > 10 or int(after_text) > MAX_ID:
        raise InputError("after: expected the `next` cursor of the previous page")
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= most:
        raise InputError(f"limit: expected a whole number from 1 to {most}")
    return int(after_text), int(limit_text)


def next_cursor(cursor: int | None) -> str | None:
    return None if cursor is None else str(cursor)
