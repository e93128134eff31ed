"""The console as its own Starlette app, mounted under /admin by the composition module
(:mod:`preference_centre.app`), which it does not import.

Its guard (:func:`preference_centre.admin.web.console_guard`) differs from the public pages': uploads
far above their body limit, its own sign-in rate limit, CSRF on every form, and a CSP that lets it
frame its own sandboxed email previews.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from orchestrator.accounts.service import PasswordChecks
from orchestrator.errors import NotFoundError
from orchestrator.runtime import Runtime
from preference_centre.admin import views_api_tokens as api_tokens
from preference_centre.admin import views_auth as auth_views
from preference_centre.admin import views_brand as brand
from preference_centre.admin import views_campaigns as campaigns
from preference_centre.admin import views_import as contacts_import
from preference_centre.admin import views_people as people
from preference_centre.admin import views_results as results
from preference_centre.admin import views_templates as templates
from preference_centre.admin import views_users as accounts
from preference_centre.admin.web import STATIC_DIR, console_guard, error, rt_of
from preference_centre.security import CONSOLE_HEADERS, RateLimit, Refusal, add_headers, headers_for


def routes() -> list[Route | Mount]:
    c = "/campaigns/{campaign_id:int}"
    t = "/templates/{name}/{locale}"
    return [
        Route("/", auth_views.home, methods=["GET"]),
        Route("/login", auth_views.login, methods=["GET", "POST"]),
        Route("/logout", auth_views.logout, methods=["POST"]),
        Route("/lang", auth_views.set_lang, methods=["POST"]),
        Route("/audit", auth_views.audit_log, methods=["GET"]),
        Route("/contacts", people.contacts_page, methods=["GET"]),
        Route("/contacts/import", contacts_import.contacts_import, methods=["POST"]),
        Route("/contacts/import/mapped", contacts_import.contacts_import_mapped, methods=["POST"]),
        Route("/contacts/lookup", people.contacts_lookup, methods=["POST"]),
        Route("/contacts/export", people.contacts_export, methods=["POST"]),
        Route("/contacts/erase", people.contacts_erase, methods=["POST"]),
        Route("/suppression", people.suppression_page, methods=["GET"]),
        Route("/suppression/check", people.suppression_check, methods=["POST"]),
        Route("/suppression/import", people.suppression_import, methods=["POST"]),
        Route("/requests", people.requests_page, methods=["GET"]),
        Route("/requests", people.requests_record, methods=["POST"]),
        Route("/campaigns/new", campaigns.campaign_new, methods=["GET"]),
        Route("/campaigns", campaigns.campaign_create, methods=["POST"]),
        Route(c, campaigns.campaign_page, methods=["GET"]),
        Route(c + "/preview/{step:int}/{locale}", campaigns.campaign_preview_html, methods=["GET"]),
        Route(c + "/funnel", campaigns.campaign_funnel, methods=["GET"]),
        Route(c + "/status.json", campaigns.campaign_status_json, methods=["GET"]),
        Route(c + "/test-send", campaigns.campaign_test_send, methods=["POST"]),
        Route(c + "/edit", campaigns.campaign_edit, methods=["GET", "POST"]),
        Route(c + "/results", results.campaign_results, methods=["GET"]),
        Route(c + "/results.csv", results.campaign_results_csv, methods=["POST"]),
        Route(c + "/crm-results", results.campaign_crm_results, methods=["POST"]),
        Route(c + "/{action}", campaigns.campaign_action, methods=["POST"]),
        Route("/users", accounts.users_page, methods=["GET"]),
        Route("/users", accounts.users_add, methods=["POST"]),
        Route("/users/{user_id:int}/{action}", accounts.users_action, methods=["POST"]),
        Route("/api-tokens", api_tokens.tokens_page, methods=["GET"]),
        Route("/api-tokens", api_tokens.tokens_add, methods=["POST"]),
        Route("/api-tokens/{token_id:int}/revoke", api_tokens.tokens_revoke, methods=["POST"]),
        Route("/brand", brand.brand_page, methods=["GET"]),
        Route("/brand", brand.brand_save, methods=["POST"]),
        Route("/templates", templates.templates_page, methods=["GET"]),
        Route("/templates/open", templates.template_open, methods=["GET"]),
        Route(t, templates.template_edit, methods=["GET"]),
        Route(t, templates.template_save, methods=["POST"]),
        Route(t + "/preview", templates.template_preview, methods=["GET", "POST"]),
        Mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="admin-static"),
    ]


async def _not_found(request: Request, exc: Exception) -> Response:
    return error(request, 404, "This page does not exist.")


async def _no_such_thing(request: Request, exc: Exception) -> Response:
    """A NotFoundError no view caught (an id beyond any database id): the console's 404."""
    return error(request, 404, "This page does not exist.")


async def _not_allowed(request: Request, exc: Exception) -> Response:
    return error(request, 405, "This action is not allowed here.")


async def _server_error(request: Request, exc: Exception) -> Response:
    """Starlette answers 500s outside the console's guard: its headers are added here."""
    headers = headers_for(rt_of(request).config.public.base_url, CONSOLE_HEADERS)
    return add_headers(error(request, 500, "Something went wrong on our side. Please try again later."), headers)


def create_admin_app(rt: Runtime, *, not_found: Refusal) -> Starlette:
    """The console; ``not_found`` answers every path while no admin user exists."""
    app = Starlette(routes=routes(), middleware=[Middleware(console_guard, rt=rt, not_found=not_found)],
                    exception_handlers={404: _not_found, 405: _not_allowed, 500: _server_error,
                                        NotFoundError: _no_such_thing})
    app.router.redirect_slashes = False  # a slash redirect's location comes from the Host header
    app.state.rt = rt
    # sign-in attempts per client address in any 60 s, by the runtime's clock (testable without sleeping)
    app.state.login_limit = RateLimit(rt.config.admin.login_rate_per_minute,
                                      lambda: rt.clock.now().timestamp())
    # password checks run in a bounded pool, never on the event loop (see PasswordChecks)
    app.state.password_checks = PasswordChecks()
    return app
