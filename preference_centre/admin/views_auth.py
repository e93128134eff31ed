"""Sign-in, sign-out, language, the dashboard and the audit log."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from orchestrator.accounts import service as accounts
from orchestrator.accounts.service import PasswordChecks, SignInBusy, SignInRefused, close_session, open_session
from orchestrator.campaigns.service import list_campaigns
from orchestrator.delivery.webhooks import webhook_status
from orchestrator.domain.model import CampaignState
from orchestrator.ops.heartbeat import service_status
from preference_centre.admin import i18n
from preference_centre.admin.web import (
    PRE_COOKIE,
    SESSION_COOKIE,
    check_pre_csrf,
    client_ip,
    cookie_secure,
    error,
    form_of,
    guard,
    operator_of,
    render,
    rt_of,
    safe_next,
    see_other,
    set_cookie,
)
from preference_centre.security import RateLimit

REFUSED = ("Sign-in refused: wrong email, password or code, or too many failed attempts "
           "(the account is then locked for a while).")


async def login(request: Request) -> Response:
    rt = rt_of(request)
    if request.method in ("GET", "HEAD"):  # a HEAD (a link checker, a monitor) is no sign-in attempt
        if operator_of(request):
            return see_other("/admin/")
        return render(request, "login.html")
    limiter: RateLimit = request.app.state.login_limit
    ip = client_ip(request)
    if not limiter.allow(ip):
        accounts.record_action(rt, None, "login", outcome="rate_limited", ip=ip)
        return render(request, "login.html", status_code=429,
                      problem="Too many sign-in attempts from your connection. Wait a minute and try again.")
    form = await form_of(request)
    if not check_pre_csrf(request, form):
        return error(request, 403, "This form has expired or did not come from this console. "
                                   "Go back, reload the page and try again.")
    email = str(form.get("email") or "")
    checks: PasswordChecks = request.app.state.password_checks
    try:
        user_id = await checks.sign_in(rt, email, str(form.get("password") or ""), ip=ip,
                                       code=str(form.get("code") or ""))
    except SignInBusy:
        accounts.record_action(rt, None, "login", outcome="busy", ip=ip, login=email.strip().lower()[:200])
        return render(request, "login.html", status_code=429, headers={"retry-after": "5"},
                      problem="Too many sign-ins are being checked right now. Wait a few seconds and try again.")
    except SignInRefused:  # in the audit log already
        return render(request, "login.html", status_code=401, problem=REFUSED, email=email)
    cookie = open_session(rt, user_id)
    response = see_other("/admin/")
    set_cookie(response, rt, SESSION_COOKIE, cookie, max_age=rt.config.admin.session_hours * 3600)
    response.delete_cookie(PRE_COOKIE, path="/admin")
    return response


@guard()
async def logout(request: Request) -> Response:
    rt = rt_of(request)
    accounts.record_action(rt, operator_of(request), "logout", ip=client_ip(request))
    close_session(rt, request.cookies.get(SESSION_COOKIE))
    response = see_other("/admin/login")
    response.delete_cookie(SESSION_COOKIE, path="/admin", secure=cookie_secure(rt), httponly=True, samesite="strict")
    return response


async def set_lang(request: Request) -> Response:
    """POST only (GET never changes anything); works before sign-in with the pre-sign-in token."""
    form = await form_of(request)
    if not check_pre_csrf(request, form):
        return error(request, 403, "This form has expired or did not come from this console. "
                                   "Go back, reload the page and try again.")
    lang = str(form.get("lang") or "")
    response = see_other(safe_next(str(form.get("next") or "")))
    if lang in ("fr", "en"):
        response.set_cookie(i18n.LANG_COOKIE, lang, max_age=365 * 86400, path="/admin", httponly=True,
                            samesite="lax", secure=cookie_secure(rt_of(request)))
    return response


@guard()
async def home(request: Request) -> Response:
    rt = rt_of(request)
    campaigns = list_campaigns(rt)
    return render(request, "home.html", campaigns=campaigns, services=service_status(rt),
                  running=any(c.state == CampaignState.RUNNING for c in campaigns), webhooks=webhook_status(rt))


@guard()
async def audit_log(request: Request) -> Response:
    return render(request, "audit.html", entries=accounts.recent_actions(rt_of(request)))
