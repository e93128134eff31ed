"""Contacts: GET /contacts/{external_id} (profile, consent, suppression) and its ledger events."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from orchestrator.accounts.api_tokens import ApiClient
from orchestrator.contacts.profile import contact_events, contact_profile
from preference_centre.api.auth import api_endpoint, next_cursor, paging
from preference_centre.api.problems import json_answer


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


def routes() -> list[Route]:
    return [
        Route("/contacts/{external_id}", get_contact, methods=["GET"]),
        Route("/contacts/{external_id}/events", list_events, methods=["GET"]),
    ]
