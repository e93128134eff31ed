"""Contacts: GET /contacts/{external_id} (profile, consent, suppression) and its ledger events."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from orchestrator.accounts.api_tokens import ApiClient, audit_write
from orchestrator.contacts.profile import contact_events, contact_profile
from orchestrator.contacts.upsert import MAX_BATCH, as_row, upsert
from orchestrator.delivery.fresh_links import links_for
from orchestrator.errors import InputError
from preference_centre.api.auth import MAX_ID, api_endpoint, json_body, next_cursor, paging
from preference_centre.api.problems import json_answer, problem


@api_endpoint()
async def get_contact(request: Request, client: ApiClient) -> Response:
    external_id = request.path_params["external_id"]
    return json_answer(await run_in_threadpool(contact_profile, request.app.state.rt, external_id))


@api_endpoint()
async def list_events(request: Request, client: ApiClient) -> Response:
    external_id = request.path_params["external_id"]
    after, limit = paging(request)
    rows, more = await run_in_threadpool(
        lambda: contact_events(request.app.state.rt, external_id, after=after, limit=limit))
    return json_answer({"data": rows, "next": next_cursor(more)})



def _ip(request: Request) -> str | None:
    return request.client.host if request.client else None


@api_endpoint(write=True)
async def put_contact(request: Request, client: ApiClient) -> Response:
    rt = request.app.state.rt
    external_id = request.path_params["external_id"]
    row = as_row(await json_body(request), "body", external_id)
    report = await run_in_threadpool(upsert, rt, [row])
    outcome = "refused" if report["rejected"] else "ok"
    await run_in_threadpool(lambda: audit_write(rt, client, "contact.upsert", target=f"external_id:{external_id}",
                                                outcome=outcome, ip=_ip(request)))
    if report["rejected"]:
        first = report["rejected"][0]
        return problem(422, f"{first['field']}: {first['reason']}", errors=report["rejected"])
    return json_answer({"external_id": external_id, "result": "created" if report["created"] else "updated",
                        "warnings": report["warnings"]}, status=201 if report["created"] else 200)


@api_endpoint(write=True)
async def batch(request: Request, client: ApiClient) -> Response:
    rt = request.app.state.rt
    body = await json_body(request)
    items = body.get("contacts") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        raise InputError("contacts: expected a non-empty list of contact objects")
    if len(items) > MAX_BATCH:
        raise InputError(f"contacts: at most {MAX_BATCH} per request, got {len(items)}; send several batches")
    rows = [as_row(item, f"contacts[{i}]") for i, item in enumerate(items)]
    report = await run_in_threadpool(upsert, rt, rows)
    await run_in_threadpool(lambda: audit_write(rt, client, "contact.batch", ip=_ip(request), sent=len(rows),
                                                created=report["created"], updated=report["updated"],
                                                rejected=len(report["rejected"])))
    return json_answer(report)


@api_endpoint(write=True)
async def new_link(request: Request, client: ApiClient) -> Response:
    rt = request.app.state.rt
    external_id = request.path_params["external_id"]
    raw = await request.body()
    body = await json_body(request) if raw.strip() else {}
    if not isinstance(body, dict):
        raise InputError("body: expected a JSON object (or nothing)")
    campaign_id, channel = body.get("campaign_id"), body.get("channel")
    if campaign_id is not None and (not isinstance(campaign_id, int) or isinstance(campaign_id, bool)
                                    or not 1 <= campaign_id <= MAX_ID):
        raise InputError("campaign_id: expected a campaign id (a whole number)")
    if channel is not None and not isinstance(channel, str):
        raise InputError("channel: expected email or sms")
    links = await run_in_threadpool(lambda: links_for(rt, external_id, campaign_id=campaign_id, channel=channel))
    await run_in_threadpool(lambda: audit_write(rt, client, "contact.link", target=f"external_id:{external_id}",
                                                ip=_ip(request), campaign_id=campaign_id))
    return json_answer(links, status=201)


def routes() -> list[Route]:
    return [
        Route("/contacts:batch", batch, methods=["POST"]),
        Route("/contacts/{external_id}", get_contact, methods=["GET"]),
        Route("/contacts/{external_id}", put_contact, methods=["PUT"]),
        Route("/contacts/{external_id}/events", list_events, methods=["GET"]),
        Route("/contacts/{external_id}/links", new_link, methods=["POST"]),
    ]
