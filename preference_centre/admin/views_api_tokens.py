"""The API tokens page (admins only, issue 17 §2): the console's side of ``reconsent api-tokens``,
through the same service (:mod:`orchestrator.accounts.api_tokens`); a new token is shown once, on
the answer to its creation, and never again."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from orchestrator.accounts import api_tokens
from orchestrator.accounts.service import Role
from orchestrator.errors import ReconsentError
from preference_centre.admin.web import client_ip, error, form_of, guard, operator_of, path_id, render, rt_of, see_other


def _page(request: Request, *, status_code: int = 200, problem: str | None = None,
          new_token: str | None = None) -> Response:
    return render(request, "api_tokens.html", status_code=status_code, problem=problem, new_token=new_token,
                  tokens=api_tokens.list_tokens(rt_of(request)), done=request.query_params.get("done"))


@guard(role=Role.ADMIN)
async def tokens_page(request: Request) -> Response:
    return _page(request)


@guard(role=Role.ADMIN)
async def tokens_add(request: Request) -> Response:
    form = await form_of(request)
    try:
        _, token = api_tokens.create_token(rt_of(request), str(form.get("name") or ""),
                                           str(form.get("scope") or "read"), by=operator_of(request),
                                           ip=client_ip(request))
    except ReconsentError as exc:
        return _page(request, status_code=400, problem=str(exc))
    return _page(request, new_token=token)


@guard(role=Role.ADMIN)
async def tokens_revoke(request: Request) -> Response:
    """Revoking asks for confirmation first (confirm=yes acts)."""
    rt = rt_of(request)
    token_id = path_id(request, "token_id")
    token = next((t for t in api_tokens.list_tokens(rt) if t.id == token_id), None)
    if token is None:
        return error(request, 404, "This page does not exist.")
    form = await form_of(request)
    if form.get("confirm") != "yes":
        return render(request, "confirm.html", action=f"/admin/api-tokens/{token.id}/revoke", fields={},
                      question="Revoke this API token?",
                      subject=f"{token.name} ({token.prefix}…)",
                      consequence="Every request with it is refused from now on; the integration using it stops.",
                      button="Revoke", audience=None, danger=True, back="/admin/api-tokens")
    api_tokens.revoke_token(rt, token.id, by=operator_of(request), ip=client_ip(request))
    return see_other("/admin/api-tokens?done=revoke")
