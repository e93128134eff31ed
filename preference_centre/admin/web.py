"""The console's web plumbing: rendering, cookies, the console's guard, sign-in and CSRF checks.

Cookies: the session cookie is HttpOnly, SameSite=Strict, path /admin, and Secure unless
``admin.cookie_secure = "auto"`` and ``public.base_url`` is plain http on a loopback host (the demo
on a laptop: browsers drop Secure cookies on http, and nothing leaves the machine there). Every POST
carries a CSRF token bound to the session (before sign-in: a double-submit cookie), checked before
the view runs; admins act, viewers read.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from functools import wraps
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp

from orchestrator.accounts import service as accounts
from orchestrator.accounts.service import Operator, Role, console_enabled, load_session
from orchestrator.resources import TEMPLATES
from orchestrator.runtime import Runtime
from preference_centre.admin import i18n, messages
from preference_centre.admin.details import explain
from preference_centre.security import CONSOLE_HEADERS, Guard, Refusal, headers_for

TEMPLATES_DIR = TEMPLATES / "admin"
STATIC_DIR = TEMPLATES_DIR / "static"
SESSION_COOKIE = "reconsent_admin"
PRE_COOKIE = "reconsent_admin_pre"  # CSRF double-submit cookie before sign-in
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}

_env = Environment(loader=FileSystemLoader(str(TEMPLATES_DIR)), autoescape=select_autoescape(default=True),
                   trim_blocks=True, lstrip_blocks=True)

View = Callable[[Request], Awaitable[Response]]


def rt_of(request: Request) -> Runtime:
    rt: Runtime = request.app.state.rt
    return rt


def operator_of(request: Request) -> Operator | None:
    return getattr(request.state, "operator", None)


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "?"


def cookie_secure(rt: Runtime) -> bool:
    """Secure cookies, except ``auto`` on plain-http loopback (see the module docstring).

    >>> from orchestrator.config import load_config
    >>> rt = Runtime(load_config(None, env={"RECONSENT_PUBLIC__BASE_URL": "http://127.0.0.1:8000"}))
    >>> cookie_secure(rt)
    False
    >>> rt.config.public.base_url = "https://prefs.example.com"; cookie_secure(rt)
    True
    """
    mode = rt.config.admin.cookie_secure
    if mode != "auto":
        return mode == "always"
    url = urlsplit(rt.config.public.base_url)
    return not (url.scheme == "http" and (url.hostname or "") in LOOPBACK)


def set_cookie(response: Response, rt: Runtime, name: str, value: str, *, max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/admin", secure=cookie_secure(rt), httponly=True,
                        samesite="strict")


def lang_of(request: Request) -> str:
    return i18n.pick(request.cookies.get(i18n.LANG_COOKIE), request.headers.get("accept-language"))


def expected_csrf(request: Request) -> str | None:
    op = operator_of(request)
    return op.csrf_token if op else request.cookies.get(PRE_COOKIE)


def render(request: Request, name: str, *, status_code: int = 200, headers: dict[str, str] | None = None,
           **context: Any) -> HTMLResponse:
    lang = lang_of(request)
    rt = rt_of(request)
    op = operator_of(request)
    pre = None
    if op is None:
        pre = request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(24)
    html = _env.get_template(name).render(
        _=messages.gettext_for(lang), lang=lang, operator=op, csrf=op.csrf_token if op else pre,
        sender=rt.config.sender, path=request.url.path, base_mismatch=base_mismatch(rt, request), **context,
    )
    response = HTMLResponse(html, status_code=status_code, headers=headers)
    if pre is not None and request.cookies.get(PRE_COOKIE) != pre:
        set_cookie(response, rt, PRE_COOKIE, pre)
    return response


def base_mismatch(rt: Runtime, request: Request) -> tuple[str, str] | None:
    """(``public.base_url``, the address this console is served at) when they differ on a
    development machine (either one on loopback): the links in messages and previews use
    ``public.base_url``, so a recipient's link would not reach this server.

    >>> from types import SimpleNamespace
    >>> from orchestrator.config import load_config
    >>> rt = Runtime(load_config(None, env={"RECONSENT_PUBLIC__BASE_URL": "http://127.0.0.1:8000"}))
    >>> base_mismatch(rt, SimpleNamespace(base_url="http://127.0.0.1:8001/"))
    ('http://127.0.0.1:8000', 'http://127.0.0.1:8001')
    >>> base_mismatch(rt, SimpleNamespace(base_url="http://127.0.0.1:8000/")) is None
    True
    """
    configured = rt.config.public.base_url.rstrip("/")
    served = str(request.base_url).rstrip("/")
    mine, theirs = urlsplit(configured), urlsplit(served)
    if (mine.scheme, mine.netloc) == (theirs.scheme, theirs.netloc):
        return None
    if (mine.hostname or "") in LOOPBACK or (theirs.hostname or "") in LOOPBACK:
        return configured, served
    return None


def error(request: Request, status_code: int, message: str) -> HTMLResponse:
    return render(request, "error.html", status_code=status_code, message=message)


log = logging.getLogger("reconsent.console")
#: the largest id a database column holds (a signed 64-bit integer)
MAX_ID = 2**63 - 1


def path_id(request: Request, name: str) -> int | None:
    """An ``{name:int}`` path parameter, or None beyond what a database id can be (then the view
    answers 404 instead of the database overflowing into a 500).

    >>> from starlette.requests import Request
    >>> [path_id(Request({"type": "http", "path_params": {"n": n}}), "n") for n in (7, 2**63)]
    [7, None]
    """
    value = int(request.path_params[name])
    return value if 0 < value <= MAX_ID else None


FILE_TROUBLE = ("The server could not read or write a file: %(why)s. Try again; if it happens again, tell your "
                "administrator (%(tech)s).")


def file_trouble(request: Request, exc: OSError) -> HTMLResponse:
    """A file the server could not read or write (a full disk, a folder it may not write to…): the
    reason in the console's language, the system's words in parentheses for support; logged whole."""
    log.error("%s %s: %s", request.method, request.url.path, exc)
    _ = messages.gettext_for(lang_of(request))
    reason = exc.strerror or str(exc) or type(exc).__name__
    return error(request, 500, _(FILE_TROUBLE, why=explain(reason, _), tech=f"{type(exc).__name__}: {reason}"))


def see_other(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


def safe_next(value: str | None) -> str:
    """Only console paths: no open redirect.

    >>> safe_next("/admin/campaigns/3"), safe_next("//evil.example/admin"), safe_next("https://x/admin")
    ('/admin/campaigns/3', '/admin/', '/admin/')
    """
    if value and value.startswith("/admin") and not value.startswith("//") and "\\" not in value \
            and not urlsplit(value).netloc:
        return value
    return "/admin/"


async def form_of(request: Request) -> FormData:
    return await request.form(max_files=2, max_fields=60)


def guard(*, role: Role | None = None) -> Callable[[View], View]:
    """Signed-in users only; POSTs need the session's CSRF token; ``role=ADMIN`` for actions."""

    def decorate(view: View) -> View:
        @wraps(view)
        async def wrapper(request: Request) -> Response:
            op = operator_of(request)
            if op is None:
                if request.method == "GET":
                    return see_other("/admin/login")
                return error(request, 403, "Your session has ended. Please sign in again.")
            if request.method == "POST":
                form = await form_of(request)
                token = form.get("csrf")
                if not isinstance(token, str) or not hmac.compare_digest(token, op.csrf_token):
                    accounts.record_action(rt_of(request), op, "denied", target=request.url.path,
                                           outcome="refused:csrf", ip=client_ip(request))
                    return error(request, 403, "This form has expired or did not come from this console. "
                                               "Go back, reload the page and try again.")
            if role is Role.ADMIN and not op.can_act:
                accounts.record_action(rt_of(request), op, "denied", target=request.url.path, outcome="refused:role",
                                       ip=client_ip(request))
                return error(request, 403, "Your account can view but not act. Ask an admin.")
            try:
                return await view(request)
            except OSError as exc:
                return file_trouble(request, exc)

        vars(wrapper)["required_role"] = role  # read by the access tests: which views need which role
        return wrapper

    return decorate


def check_pre_csrf(request: Request, form: FormData) -> bool:
    token = form.get("csrf")
    expected = expected_csrf(request)
    return isinstance(token, str) and bool(expected) and hmac.compare_digest(token, expected or "")


UNUSABLE_NAME = ("This file name cannot be used. Rename the file (at most 255 characters, not “.” or “..”) "
                 "and upload it again.")


def usable_name(name: str) -> str | None:
    """The upload's own file name (import messages name the file), or None when it is no file name
    (``..``, ``.``, a NUL, over 255 bytes): the console answers 400 with :data:`UNUSABLE_NAME`.

    >>> usable_name("exports/clients.csv"), usable_name(".."), usable_name("a/.."), usable_name("x" * 256)
    ('clients.csv', None, None, None)
    """
    base = PurePosixPath(name.replace("\\", "/")).name
    if base in ("", ".", "..") or "\x00" in base or len(base.encode("utf-8")) > 255:
        return None
    return base


async def upload_bytes(form: FormData, name: str) -> tuple[str, bytes] | None:
    item = form.get(name)
    if not isinstance(item, UploadFile) or not item.filename:
        return None
    return item.filename, await item.read()


def console_guard(app: ASGIApp, *, rt: Runtime, not_found: Refusal) -> Guard:
    """Outermost layer of the console: 404 (``not_found``, the public page: indistinguishable from
    any unknown path) until an admin exists, then the session, the console's headers and its upload
    limit (:mod:`preference_centre.security`)."""

    server = rt.config.server
    # signed-in operators may upload up to admin.max_upload_bytes, with 1 s more per 64 KiB to send it;
    # before sign-in (the sign-in form) the public pages' limits hold
    upload = (rt.config.admin.max_upload_bytes, server.body_timeout_seconds + rt.config.admin.max_upload_bytes / 65536)

    def gate(request: Request) -> Response | None:
        if not console_enabled(rt):
            return not_found(request)
        state = request.scope.setdefault("state", {})
        state["operator"] = load_session(rt, request.cookies.get(SESSION_COOKIE))
        if state["operator"] is not None:
            state["body_limits"] = upload
        return None

    return Guard(app, headers=headers_for(rt.config.public.base_url, CONSOLE_HEADERS), max_body=server.max_body_bytes,
                 body_timeout=server.body_timeout_seconds, gate=gate,
                 too_large=lambda request: PlainTextResponse("Request too large", status_code=413))
