"""A campaign's results: who confirmed, declined, unsubscribed, bounced, expired or has not answered
yet, filtered, searched by email, phone or id, paged; per-step and per-locale response rates; the
time-to-answer curve; the CSV export of the current filter (read through
:mod:`orchestrator.campaigns.outcomes`); and the CRM's file, the rows of ``reconsent campaign results``
(:mod:`orchestrator.campaigns.results`), as CSV or JSON, streamed."""

from __future__ import annotations

import io
from urllib.parse import urlencode

from starlette.datastructures import FormData, QueryParams
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from orchestrator.accounts import service as accounts
from orchestrator.campaigns.outcomes import CSV_COLUMNS, OUTCOMES, campaign_outcomes, export_outcomes, response_rates
from orchestrator.campaigns.results import iter_results, stream_results
from orchestrator.campaigns.service import campaign_status, messages_due, read_campaign
from orchestrator.domain.csv_safe import write_csv
from orchestrator.errors import NotFoundError
from orchestrator.ops.heartbeat import service_status
from preference_centre.admin import charts
from preference_centre.admin.i18n import gettext_for
from preference_centre.admin.web import client_ip, error, form_of, guard, lang_of, operator_of, render, rt_of


def _filters(params: QueryParams | FormData) -> tuple[list[str], str]:
    outcomes = [str(o) for o in params.getlist("outcome") if str(o) in OUTCOMES]
    search = params.get("q")
    return outcomes, (search.strip()[:200] if isinstance(search, str) else "")


@guard()
async def campaign_results(request: Request) -> Response:
    rt = rt_of(request)
    campaign_id = int(request.path_params["campaign_id"])
    try:
        campaign, plan = read_campaign(rt, campaign_id)
    except NotFoundError as exc:
        return error(request, 404, str(exc))
    outcomes, search = _filters(request.query_params)
    try:
        page_no = int(request.query_params.get("page", "1"))
    except ValueError:
        page_no = 1
    page = campaign_outcomes(rt, campaign_id, outcomes=outcomes, search=search, page=page_no)
    rates = response_rates(rt, campaign_id)
    _ = gettext_for(lang_of(request))
    enrolled = sum(page.counts.values())
    svg = charts.curve(_("Share of people who answered, by days since launch"), rates["hours"], enrolled,
                       ident="tta", empty=_("No answer yet."), days_label=_("days"),
                       point=lambda d, p: _("day %(d)s: %(p)s%%", d=d, p=p))
    keep = [("outcome", o) for o in outcomes] + ([("q", search)] if search else [])

    def page_link(n: int) -> str:
        return f"/admin/campaigns/{campaign_id}/results?" + urlencode([*keep, ("page", str(n))])

    return render(request, "results.html", campaign=campaign, plan=plan, page=page, rates=rates, curve=svg,
                  outcomes=[o for o in OUTCOMES if o in page.counts],  # "kept" only when some
                  chosen=outcomes, search=search, enrolled=enrolled, page_link=page_link,
                  status=campaign_status(rt, campaign_id), services=service_status(rt),
                  due_now=messages_due(rt, campaign_id))


@guard()
async def campaign_results_csv(request: Request) -> Response:
    """The rows of the current filter as CSV (a POST: it is personal data, and every export is audited)."""
    rt = rt_of(request)
    campaign_id = int(request.path_params["campaign_id"])
    try:
        read_campaign(rt, campaign_id)
    except NotFoundError as exc:
        return error(request, 404, str(exc))
    outcomes, search = _filters(await form_of(request))
    rows = export_outcomes(rt, campaign_id, outcomes=outcomes, search=search)
    out = io.StringIO()
    write_csv(out, CSV_COLUMNS, (row.csv_row() for row in rows))  # the one CSV writer: formulas neutralised
    accounts.record_action(rt, operator_of(request), "campaign.results.export", target=f"campaign:{campaign_id}",
                           ip=client_ip(request), rows=len(rows), outcomes=",".join(outcomes) or "all",
                           searched=bool(search))
    return Response(out.getvalue().encode("utf-8-sig"), media_type="text/csv; charset=utf-8", headers={
        "content-disposition": f'attachment; filename="campaign-{campaign_id}-results.csv"'})


CRM_FORMATS = {"csv": "text/csv; charset=utf-8", "json": "application/json"}


@guard()
async def campaign_crm_results(request: Request) -> Response:
    """The CRM's file: the same bytes as ``reconsent campaign results ID --format csv|json`` (one row per
    enrolled contact, by external_id), streamed so a big campaign goes out in flat memory; a POST
    (personal data) and audited like every export."""
    rt = rt_of(request)
    campaign_id = int(request.path_params["campaign_id"])
    fmt = str((await form_of(request)).get("format") or "csv")
    if fmt not in CRM_FORMATS:
        fmt = "csv"
    try:
        enrolled = campaign_status(rt, campaign_id)["enrolled"]
        rows = iter_results(rt, campaign_id)  # refuses an unknown campaign before the download starts
    except NotFoundError as exc:
        return error(request, 404, str(exc))
    accounts.record_action(rt, operator_of(request), "campaign.crm_results.export", target=f"campaign:{campaign_id}",
                           ip=client_ip(request), rows=enrolled, format=fmt)
    return StreamingResponse(stream_results(rows, fmt), media_type=CRM_FORMATS[fmt], headers={
        "content-disposition": f'attachment; filename="campaign-{campaign_id}-crm.{fmt}"'})
