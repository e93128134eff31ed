"""The API app and its place in the web server: /api/v1/… goes here, with its own guard (security
headers, body limit, JSON problems for every refusal); everything else goes on."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from orchestrator.runtime import Runtime
from preference_centre.api import campaigns, contacts, suppression
from preference_centre.api import problems as p
from preference_centre.security import SECURITY_HEADERS, Guard, RateLimit, headers_for

API_PREFIX = "/api/v1"
#: requests per token per minute (a CRM sync pages and upserts in bulk: well above the public POST rate)
RATE_PER_MINUTE = 600


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 description shipped in the package (written by hand, not generated)."""
    text = resources.files("preference_centre.api").joinpath("openapi.json").read_text(encoding="utf-8")
    doc: dict[str, Any] = json.loads(text)
    return doc


async def openapi(request: Request) -> Response:
    return p.json_answer(request.app.state.openapi)


def routes() -> list[Route]:
    return [
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/campaigns", campaigns.list_campaigns, methods=["GET"]),
        Route("/campaigns/{campaign_id}", campaigns.get_campaign, methods=["GET"]),
        Route("/campaigns/{campaign_id}/results", campaigns.campaign_results, methods=["GET"]),
        *contacts.routes(),
        *suppression.routes(),
    ]


def create_api_app(rt: Runtime) -> Starlette:
    app = Starlette(routes=routes(), exception_handlers={404: p.not_found, 405: p.not_allowed, 500: p.server_error})
    app.router.redirect_slashes = False
    app.state.rt = rt
    app.state.rate_limit = RateLimit(RATE_PER_MINUTE)
    app.state.openapi = openapi_document()
    return app


class ApiMount:
    """Sends /api/v1/… to the API behind its own :class:`Guard`; everything else goes on."""

    def __init__(self, app: ASGIApp, *, rt: Runtime) -> None:
        self.app = app
        guarded = Guard(create_api_app(rt), headers=headers_for(rt.config.public.base_url, SECURITY_HEADERS),
                        max_body=rt.config.server.max_body_bytes * 16, too_large=p.too_large,
                        body_timeout=rt.config.server.body_timeout_seconds)
        self.api = guarded

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path == API_PREFIX or path.startswith(API_PREFIX + "/"):
            # mounted by hand, as Starlette's Mount would, but for every path under the prefix: its
            # pattern misses a path holding a line break (%0A), which then escaped as a 500
            root = scope.get("root_path", "")
            await self.api({**scope, "app_root_path": scope.get("app_root_path", root), "root_path": root + API_PREFIX},
                           receive, send)
        else:
            await self.app(scope, receive, send)
