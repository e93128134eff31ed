"""The Users page (admins only, issue 15): the console's side of ``reconsent users …``, through the
same service functions (:mod:`orchestrator.accounts.users`), each change in the audit log."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from orchestrator.accounts import service as accounts
from orchestrator.accounts import users
from orchestrator.accounts.service import Role
from orchestrator.errors import ReconsentError
from preference_centre.admin.web import client_ip, error, form_of, guard, operator_of, path_id, render, rt_of, see_other

#: action → (question, consequence, button) for the ones that ask for confirmation first
CONFIRM = {
    "disable": ("Disable this account?", "It cannot sign in until enabled again; its open sessions end now.",
                "Disable"),
    "remove": ("Remove this account?", "It is deleted and its open sessions end now; the audit log keeps its "
               "entries.", "Remove"),
}
ACTIONS = {"disable", "enable", "remove", "unlock", "logout-all", "set-role", "reset-password"}


def _page(request: Request, *, status_code: int = 200, problem: str | None = None) -> Response:
    return render(request, "users.html", status_code=status_code, problem=problem,
                  accounts=users.list_users(rt_of(request)), done=request.query_params.get("done"))


@guard(role=Role.ADMIN)
async def users_page(request: Request) -> Response:
    return _page(request)


@guard(role=Role.ADMIN)
async def users_add(request: Request) -> Response:
    rt = rt_of(request)
    form = await form_of(request)
    try:
        user_id = accounts.add_user(rt, str(form.get("email") or ""), str(form.get("password") or ""),
                                    str(form.get("role") or "viewer"))
    except ReconsentError as exc:
        return _page(request, status_code=400, problem=str(exc))
    accounts.record_action(rt, operator_of(request), "users.add", target=f"user:{user_id}", ip=client_ip(request),
                           role=str(form.get("role") or "viewer"))
    return see_other("/admin/users?done=add")


@guard(role=Role.ADMIN)
async def users_action(request: Request) -> Response:
    """One POST per action; disable and remove ask for confirmation first (confirm=yes acts)."""
    rt = rt_of(request)
    user_id = path_id(request, "user_id")
    action = request.path_params["action"]
    if user_id is None or action not in ACTIONS:
        return error(request, 404, "This page does not exist.")
    form = await form_of(request)
    by, ip = operator_of(request), client_ip(request)
    try:
        if action in CONFIRM and form.get("confirm") != "yes":
            account = next((a for a in users.list_users(rt) if a.id == user_id), None)
            if account is None:
                return error(request, 404, "This page does not exist.")
            question, consequence, button = CONFIRM[action]
            return render(request, "confirm.html", action=f"/admin/users/{user_id}/{action}", fields={},
                          question=question, subject=account.email, consequence=consequence, button=button,
                          audience=None, danger=True, back="/admin/users")
        if action in ("disable", "enable"):
            users.set_disabled(rt, user_id, action == "disable", by=by, ip=ip)
        elif action == "remove":
            users.remove_user(rt, user_id, by=by, ip=ip)
        elif action == "unlock":
            users.unlock(rt, user_id, by=by, ip=ip)
        elif action == "logout-all":
            users.logout_all(rt, user_id, by=by, ip=ip)
        elif action == "set-role":
            users.set_role(rt, user_id, str(form.get("role") or ""), by=by, ip=ip)
        else:
            users.reset_password(rt, user_id, str(form.get("password") or ""), by=by, ip=ip)
    except ReconsentError as exc:
        accounts.record_action(rt, by, f"users.{action}", target=f"user:{user_id}", outcome="refused", ip=ip)
        return _page(request, status_code=400, problem=str(exc))
    return see_other(f"/admin/users?done={action}")
