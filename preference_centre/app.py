"""The web server, composed: the public pages (:mod:`preference_centre.public`), the /twilio webhooks
(:mod:`preference_centre.webhooks`) and the /admin console (:mod:`preference_centre.admin`), each
behind a :class:`preference_centre.security.Guard`. This module is the only one that knows all three;
none of them imports it.

GET never changes state [P1]; POST /u/{token} is RFC 8058 one-click [P2]; tokens never reach logs.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route, Router
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from orchestrator.ops.health import database_reachable, wal_checkpointer
from orchestrator.runtime import Runtime
from preference_centre.admin.app import create_admin_app
from preference_centre.api.mount import ApiMount
from preference_centre.public import brand, pages
from preference_centre.public import receipt as receipt_pages
from preference_centre.public import rights as rights_pages
from preference_centre.security import SECURITY_HEADERS, Guard, RateLimit, add_headers, headers_for
from preference_centre.webhooks import twilio

STATIC_DIR = pages.STATIC_DIR
ADMIN_PREFIX = "/admin"
log = logging.getLogger("reconsent.web")


async def healthz(request: Request) -> Response:
    if not database_reachable(request.app.state.rt):
        return PlainTextResponse("database unreachable", status_code=503)
    return PlainTextResponse("ok")


async def metrics(request: Request) -> Response:
    """Prometheus metrics read from the database (no PII); only for server.metrics_allow clients."""
    from orchestrator.ops.metrics import CONTENT_TYPE, render, store_registry

    rt: Runtime = request.app.state.rt
    allow = rt.config.server.metrics_allow
    client = request.client.host if request.client else ""
    if "*" not in allow and client not in allow:
        return pages.not_found_page(request)
    registry = request.app.state.metrics_registry
    if registry is None:
        registry = request.app.state.metrics_registry = store_registry(rt)
    body = await run_in_threadpool(render, registry)
    return Response(body, media_type=CONTENT_TYPE)


async def server_error(request: Request, exc: Exception) -> Response:
    """Starlette answers 500s outside the middleware stack: add the security headers here too."""
    rt: Runtime = request.app.state.rt
    return add_headers(await pages.server_error(request, exc), headers_for(rt.config.public.base_url, SECURITY_HEADERS))


def public_routes() -> list[Any]:
    """The preference centre's own pages, plus the health and metrics endpoints."""
    return [
        Route("/p/{token}", pages.preference_page, methods=["GET", "POST"]),
        Route("/p/{token}/renew", pages.renew, methods=["POST"]),
        Route("/p/{token}/receipt", receipt_pages.receipt, methods=["GET"]),
        Route("/.well-known/jwks.json", receipt_pages.jwks, methods=["GET"]),
        Route("/u/{token}", pages.unsubscribe, methods=["GET", "POST"]),
        Route("/u/{token}/renew", pages.renew, methods=["POST"]),
        Route("/s/{code}", pages.short_link, methods=["GET"]),
        Route("/s/{code}/renew", pages.renew, methods=["POST"]),
        Route("/r/{token}", rights_pages.rights_page, methods=["GET"]),
        Route("/r/{token}/export", rights_pages.export, methods=["POST"]),
        Route("/r/{token}/erase", rights_pages.erase, methods=["GET", "POST"]),
        Route("/r/{token}/renew", pages.renew, methods=["POST"]),
        Route("/brand.css", brand.brand_css, methods=["GET"]),
        Route("/brand/logo/{digest}", brand.brand_logo, methods=["GET"]),
        Route("/favicon.ico", pages.favicon, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static"),
    ]


def webhook_routes() -> list[Route]:
    return [
        Route("/twilio/status", twilio.status_callback, methods=["POST"]),
        Route("/twilio/inbound", twilio.inbound, methods=["POST"]),
    ]


def _public_post(scope: Scope) -> bool:
    """POSTs of the public pages are rate-limited per address; Twilio's webhooks are not (one
    provider address sends them all, and each is signed)."""
    return scope["method"] == "POST" and not scope["path"].startswith("/twilio/")


def public_guard(rt: Runtime) -> Middleware:
    server = rt.config.server
    return Middleware(
        Guard,
        headers=lambda: headers_for(rt.config.public.base_url, SECURITY_HEADERS, img_origins=brand.image_origins(rt)),
        max_body=server.max_body_bytes, body_timeout=server.body_timeout_seconds, static_prefix="/static/",
        too_large=lambda request: pages.error_page(request, 413, "too_large"),
        rate_limit=RateLimit(server.post_rate_per_minute), rate_limited=_public_post,
        rate_key=pages.unsubscribe_rate_key(rt),
        too_many=lambda request: pages.error_page(request, 429, "too_many", headers={"retry-after": "60"}),
    )


class AdminMount:
    """Sends /admin and /admin/… to the console (its own app, guard and limits); everything else goes
    on to the preference centre. It sits in front of the public guard because the console's needs
    differ: uploads far above the public body limit, its own sign-in rate limit, CSRF on every form,
    and a CSP that lets it frame its own sandboxed email previews."""

    def __init__(self, app: ASGIApp, *, rt: Runtime) -> None:
        self.app = app
        console = create_admin_app(rt, not_found=lambda request: pages.error_page(request, 404, "not_found"))
        self.console = Router(routes=[Mount(ADMIN_PREFIX, app=console)], redirect_slashes=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] in ("http", "websocket") else ""
        if path == ADMIN_PREFIX:  # served as /admin/ (no redirect: Starlette's would be built from Host)
            scope = {**scope, "path": ADMIN_PREFIX + "/", "raw_path": (ADMIN_PREFIX + "/").encode()}
            path = scope["path"]
        if path.startswith(ADMIN_PREFIX + "/"):
            await self.console(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def create_app(rt: Runtime, extra_routes: list[Any] | None = None) -> Starlette:
    """The whole web server for ``rt``: console first, then webhooks and public pages."""
    routes = [*(extra_routes or []), *webhook_routes(), *public_routes()]
    middleware = [Middleware(ApiMount, rt=rt), Middleware(AdminMount, rt=rt), public_guard(rt)]
    checkpointer = wal_checkpointer(rt)

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
    # /p/{token}/ and the like are 404s: Starlette's slash redirect builds its location from the
    # request's Host header, which the client chooses (issue 15)
    app.router.redirect_slashes = False
    app.state.checkpointer = checkpointer
    app.state.rt = rt
    app.state.metrics_registry = None
    return app
