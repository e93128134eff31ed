"""Starlette application factory: routes, security headers, limits.

GET never changes state [P1]; POST /u/{token} is RFC 8058 one-click [P2]; tokens never reach logs.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchestrator.runtime import Runtime
from orchestrator.store.db import WalCheckpointer
from preference_centre import pages, rights_pages, twilio_hooks

STATIC_DIR = pages.STATIC_DIR
log = logging.getLogger("reconsent.web")

SECURITY_HEADERS = [
    (b"content-security-policy", (b"default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                                  b"frame-ancestors 'none'; base-uri 'none'")),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"no-store"),
    (b"permissions-policy", b"interest-cohort=()"),
]


class SecurityMiddleware:
    """Security headers on every response, a request body limit, and a per-IP POST rate limit."""

    def __init__(self, app: ASGIApp, *, max_body: int, posts_per_minute: int) -> None:
        self.app = app
        self.max_body = max_body
        self.posts_per_minute = posts_per_minute
        self.hits: dict[str, deque[float]] = defaultdict(deque)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        # The stylesheet carries no token: let phones keep it a day instead of re-fetching it per page.
        static_ok = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                if static_ok and message.get("status") == 200:
                    names.add(b"cache-control")
                    message["headers"] = [*message.get("headers", []), (b"cache-control", b"public, max-age=86400")]
                message["headers"] = list(message.get("headers", [])) + [
                    (k, v) for k, v in SECURITY_HEADERS if k not in names
                ]
            await send(message)

        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            await _too_large(scope, receive, send_with_headers)
            return
        if scope["method"] == "POST" and not scope["path"].startswith("/twilio/"):
            client = (scope.get("client") or ("?", 0))[0]
            now = time.monotonic()
            window = self.hits[client]
            while window and now - window[0] > 60:
                window.popleft()
            if len(window) >= self.posts_per_minute:
                request = Request(scope, receive)
                response = pages.render_page(request, "error.html", status_code=429, lang=None,
                                             message_key="too_many", headers={"retry-after": "60"})
                await response(scope, receive, send_with_headers)
                return
            window.append(now)
            if len(self.hits) > 10_000:  # forget idle clients so the table cannot grow without bound
                for ip in [ip for ip, w in self.hits.items() if not w or now - w[-1] > 60]:
                    del self.hits[ip]

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise _TooLarge()
            return message

        try:
            await self.app(scope, limited_receive, send_with_headers)
        except _TooLarge:
            await _too_large(scope, receive, send_with_headers)


class _TooLarge(Exception):
    pass


async def _too_large(scope: Scope, receive: Receive, send: Send) -> None:
    request = Request(scope, receive)
    response = pages.render_page(request, "error.html", status_code=413, lang=None, message_key="too_large")
    await response(scope, receive, send)


async def healthz(request: Request) -> Response:
    rt: Runtime = request.app.state.rt
    try:
        with rt.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception:
        log.exception("health check failed")
        return PlainTextResponse("database unreachable", status_code=503)
    return PlainTextResponse("ok")


async def metrics(request: Request) -> Response:
    """Prometheus metrics read from the database (no PII); only for server.metrics_allow clients."""
    from starlette.concurrency import run_in_threadpool

    from orchestrator.ops.metrics import CONTENT_TYPE, render, store_registry

    rt: Runtime = request.app.state.rt
    allow = rt.config.server.metrics_allow
    client = request.client.host if request.client else ""
    if "*" not in allow and client not in allow:
        return await pages.not_found(request, None)  # type: ignore[arg-type]
    registry = request.app.state.metrics_registry
    if registry is None:
        registry = request.app.state.metrics_registry = store_registry(rt)
    body = await run_in_threadpool(render, registry)
    return Response(body, media_type=CONTENT_TYPE)


async def server_error(request: Request, exc: Exception) -> Response:
    """Starlette answers 500s outside the middleware stack: add the security headers here too."""
    response = await pages.server_error(request, exc)
    for name, value in SECURITY_HEADERS:
        response.headers.setdefault(name.decode(), value.decode())
    return response


def preference_routes() -> list[Any]:
    """The public routes. Other parts (the admin console) add theirs through ``create_app(extra_routes=…)``."""
    return [
        Route("/p/{token}", pages.preference_page, methods=["GET", "POST"]),
        Route("/p/{token}/renew", pages.renew, methods=["POST"]),
        Route("/u/{token}", pages.unsubscribe, methods=["GET", "POST"]),
        Route("/u/{token}/renew", pages.renew, methods=["POST"]),
        Route("/s/{code}", pages.short_link, methods=["GET"]),
        Route("/s/{code}/renew", pages.renew, methods=["POST"]),
        Route("/r/{token}", rights_pages.rights_page, methods=["GET"]),
        Route("/r/{token}/export", rights_pages.export, methods=["POST"]),
        Route("/r/{token}/erase", rights_pages.erase, methods=["GET", "POST"]),
        Route("/r/{token}/renew", pages.renew, methods=["POST"]),
        Route("/twilio/status", twilio_hooks.status_callback, methods=["POST"]),
        Route("/twilio/inbound", twilio_hooks.inbound, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static"),
    ]


def create_app(rt: Runtime, extra_routes: list[Any] | None = None) -> Starlette:
    server = rt.config.server
    routes = [*(extra_routes or []), *preference_routes()]
    middleware = [Middleware(SecurityMiddleware, max_body=server.max_body_bytes,  # type: ignore[arg-type]
                             posts_per_minute=server.post_rate_per_minute)]
    # -- marketer console (issue 8) ----------------------------------------------------------------
    # /admin is its own app (preference_centre/admin): it goes first, so the public pages' body
    # limit and POST rate limit stay as they are while the console has its own (uploads, sign-in).
    from preference_centre.admin.app import AdminMount

    middleware.insert(0, Middleware(AdminMount, rt=rt))  # type: ignore[arg-type]
    # -- end marketer console -------------------------------------------------------------------------
    checkpointer = WalCheckpointer(rt.engine)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        # SQLite: the write-ahead log is checkpointed by a thread of the server, not by the commit
        # of whichever answer crosses the threshold (a stall of up to hundreds of ms for that person)
        checkpointer.start()
        try:
            yield
        finally:
            checkpointer.stop()

    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={404: pages.not_found, 405: pages.not_allowed, 500: server_error},
        lifespan=lifespan,
    )
    app.state.checkpointer = checkpointer
    app.state.rt = rt
    app.state.metrics_registry = None
    return app
