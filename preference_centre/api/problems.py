"""RFC 9457 problem details: every API error is ``application/problem+json`` with type, title,
status and detail (never HTML, never a stack trace, never an address)."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

PROBLEM = "application/problem+json"
TITLES = {
    400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found", 405: "Method not allowed",
    409: "Conflict", 413: "Content too large", 415: "Unsupported media type", 422: "Unprocessable content",
    429: "Too many requests", 500: "Internal server error",
}
SLUGS = {
    400: "bad-request", 401: "unauthorized", 403: "forbidden", 404: "not-found", 405: "method-not-allowed",
    409: "conflict", 413: "too-large", 415: "unsupported-media-type", 422: "invalid", 429: "rate-limited",
    500: "server-error",
}


def problem(status: int, detail: str, *, headers: dict[str, str] | None = None, **extra: Any) -> Response:
    """The problem answer for ``status``; ``extra`` members (e.g. ``errors``) are added to the body."""
    body = {"type": f"urn:reconsent:problem:{SLUGS.get(status, 'error')}", "title": TITLES.get(status, "Error"),
            "status": status, "detail": detail, **extra}
    return Response(json.dumps(body), status_code=status, media_type=PROBLEM, headers=headers)


def json_answer(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(body, status_code=status, headers=headers)


async def not_found(request: Request, exc: Exception) -> Response:
    return problem(404, "No such endpoint (see /api/v1/openapi.json).")


async def not_allowed(request: Request, exc: Exception) -> Response:
    return problem(405, f"{request.method} is not allowed on this endpoint (see /api/v1/openapi.json).")


async def server_error(request: Request, exc: Exception) -> Response:
    return problem(500, "The server failed to answer; the error was logged. Try again later.")


def too_large(request: Request) -> Response:
    return problem(413, "The request body is too large; send fewer contacts per batch.")
