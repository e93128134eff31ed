"""POST /suppression:check (read) and POST /suppression (add, with reason; write, audited)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from orchestrator.accounts.api_tokens import ApiClient, audit_write
from orchestrator.consent.suppress_one import add_value, check_value
from preference_centre.api.auth import api_endpoint, json_body, text_field
from preference_centre.api.problems import json_answer


@api_endpoint()
async def check(request: Request, client: ApiClient) -> Response:
    value = text_field(await json_body(request), "value") or ""
    return json_answer(await run_in_threadpool(check_value, request.app.state.rt, value))


@api_endpoint(write=True)
async def add(request: Request, client: ApiClient) -> Response:
    rt = request.app.state.rt
    body = await json_body(request)
    value = text_field(body, "value") or ""
    reason = text_field(body, "reason") or ""
    channel = text_field(body, "channel", required=False)
    result = await run_in_threadpool(lambda: add_value(rt, value, reason, source=client.audit_name, channel=channel))
    ip = request.client.host if request.client else None
    await run_in_threadpool(lambda: audit_write(rt, client, "suppression.add", ip=ip, reason=reason, **result))
    return json_answer(result, status=201 if result["added"] else 200)


def routes() -> list[Route]:
    return [
        Route("/suppression:check", check, methods=["POST"]),
        Route("/suppression", add, methods=["POST"]),
    ]
