"""GET /campaigns, /campaigns/{id} (exactly ``campaign status --json``) and /campaigns/{id}/results
(the rows of ``campaign results``, a page at a time)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from orchestrator.accounts.api_tokens import ApiClient
from orchestrator.campaigns.results import campaigns_page, results_page
from orchestrator.campaigns.service import campaign_status
from orchestrator.errors import NotFoundError
from preference_centre.api.auth import MAX_ID, api_endpoint, next_cursor, paging
from preference_centre.api.problems import json_answer


def campaign_id(request: Request) -> int:
    text = request.path_params["campaign_id"]
    if not text.isdigit() or int(text) > MAX_ID:
        raise NotFoundError(f"campaign {text}: no such campaign")
    return int(text)


@api_endpoint()
async def list_campaigns(request: Request, client: ApiClient) -> Response:
    after, limit = paging(request)
    rows, more = await run_in_threadpool(lambda: campaigns_page(request.app.state.rt, after=after, limit=limit))
    return json_answer({"data": rows, "next": next_cursor(more)})


@api_endpoint()
async def get_campaign(request: Request, client: ApiClient) -> Response:
    cid = campaign_id(request)
    return json_answer(await run_in_threadpool(campaign_status, request.app.state.rt, cid))


@api_endpoint()
async def campaign_results(request: Request, client: ApiClient) -> Response:
    cid = campaign_id(request)
    after, limit = paging(request)
    page = await run_in_threadpool(lambda: results_page(request.app.state.rt, cid, after=after, limit=limit))
    return json_answer({"data": [r.as_dict() for r in page.rows], "next": next_cursor(page.next_cursor)})
