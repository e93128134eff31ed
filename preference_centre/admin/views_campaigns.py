"""Campaigns: create (form or TOML), preview every step per locale, launch/pause/resume with a
confirmation step, and the funnel (the numbers of ``campaign status --json``, with SVG charts)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from orchestrator.accounts import service as accounts
from orchestrator.accounts.service import Role
from orchestrator.campaigns.schedule import (
    delete_campaign,
    edit_campaign,
    parse_launch_time,
    schedule_launch,
    unschedule,
)
from orchestrator.campaigns.service import (
    audience_size,
    campaign_failures,
    campaign_status,
    confirmations_by_day,
    create_campaign,
    launch_campaign,
    messages_due,
    plan_problems,
    preview_campaign,
    read_campaign,
    set_paused,
)
from orchestrator.delivery.trial import send_trial
from orchestrator.domain.clock import as_utc
from orchestrator.domain.model import CampaignState
from orchestrator.errors import NotFoundError, ReconsentError
from orchestrator.ops.heartbeat import service_status
from orchestrator.rendering.template_store import template_names
from preference_centre.admin import charts
from preference_centre.admin.forms import form_values, plan_from_form, plan_from_toml, step_rows
from preference_centre.admin.i18n import gettext_for
from preference_centre.admin.messages import place
from preference_centre.admin.problems import translate_line
from preference_centre.admin.views_templates import template_locales
from preference_centre.admin.web import (
    client_ip,
    error,
    form_of,
    guard,
    lang_of,
    operator_of,
    path_id,
    render,
    rt_of,
    see_other,
    upload_bytes,
)

# The email preview is a document of its own, framed only by the console, with no script, no form,
# no remote load and an opaque origin (CSP sandbox), in an <iframe sandbox> on the campaign page.
PREVIEW_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox; "
               "frame-ancestors 'self'; base-uri 'none'; form-action 'none'")

ACTIONS = {
    "launch": ("Launch this campaign?", ("The audience is frozen now and every step is queued. "
                                         "This cannot be undone (you can pause it later)."), "Launch"),
    "pause": ("Pause this campaign?", "Nothing more is sent until you resume. Nothing is lost.", "Pause"),
    "resume": ("Resume this campaign?", "Sending continues where it stopped: no re-send, no skip.", "Resume"),
    "schedule": ("Schedule this campaign?", ("It is launched at the chosen time by the scheduler: the audience is "
                                             "frozen then, not now. You can cancel before."), "Schedule"),
    "unschedule": ("Cancel the planned launch?", "The campaign is a draft again. Nothing was sent.",
                   "Cancel the planned launch"),
    "delete": ("Delete this draft?", "The draft is removed for good. Nothing was sent.", "Delete"),
}


def _campaign_id(request: Request) -> int:
    """The path's campaign id; beyond any database id, NotFoundError (the console's 404)."""
    campaign_id = path_id(request, "campaign_id")
    if campaign_id is None:
        raise NotFoundError("This page does not exist.")
    return campaign_id


def _new_form(request: Request, *, status_code: int = 200, problem: str | None = None,
              values: dict[str, Any] | None = None, kinds: list[str] | None = None,
              action: str = "/admin/campaigns", editing: str | None = None) -> Response:
    defaults: dict[str, Any] = {
        "name": "", "deadline_days": "30", "default_locale": "fr", "customer_inactive_months": "12",
        "prospect_inactive_months": "36", "step0_day": "0", "step0_channel": "email", "step0_template": "reconsent",
        "step1_day": "7", "step1_channel": "email", "step1_template": "reminder",
        "step2_day": "10", "step2_channel": "sms", "step2_template": "reconsent",
    }
    return render(request, "campaign_new.html", status_code=status_code, problem=problem,
                  values={**defaults, **(values or {})}, kinds=kinds or ["customer", "prospect"],
                  rows=range(step_rows(values or {})), templates=template_names(rt_of(request)),
                  template_locales=template_locales(rt_of(request)), form_action=action, editing=editing)


@guard(role=Role.ADMIN)
async def campaign_new(request: Request) -> Response:
    return _new_form(request)


@guard(role=Role.ADMIN)
async def campaign_create(request: Request) -> Response:
    """From the form, or from an uploaded TOML file when one is given."""
    rt = rt_of(request)
    form = await form_of(request)
    upload = await upload_bytes(form, "file")
    values = {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf"}
    kinds = [str(k) for k in form.getlist("kinds")]
    try:
        plan = plan_from_toml(*upload) if upload else plan_from_form(form, kinds)
        campaign_id = create_campaign(rt, plan)
    except ReconsentError as exc:
        accounts.record_action(rt, operator_of(request), "campaign.create", outcome="refused", ip=client_ip(request))
        return _new_form(request, status_code=400, problem=str(exc), values=values, kinds=kinds)
    accounts.record_action(rt, operator_of(request), "campaign.create", target=f"campaign:{campaign_id}",
                           ip=client_ip(request), source="toml" if upload else "form")
    return see_other(f"/admin/campaigns/{campaign_id}")


@guard()
async def campaign_page(request: Request) -> Response:
    return _campaign_view(request, _campaign_id(request))


def _local_time(rt: Any, value: datetime | None) -> str | None:
    """A UTC time as the operator reads it: in ``scheduler.timezone``."""
    if value is None:
        return None
    tz = rt.config.scheduler.timezone
    return f"{as_utc(value).astimezone(ZoneInfo(tz)).strftime('%Y-%m-%d %H:%M')} ({tz})"


def _campaign_view(request: Request, campaign_id: int, *, status_code: int = 200, **extra: Any) -> Response:
    rt = rt_of(request)
    try:
        campaign, plan = read_campaign(rt, campaign_id)
        previews = preview_campaign(rt, campaign_id)
    except NotFoundError as exc:
        return error(request, 404, str(exc))
    draft = campaign.state in (CampaignState.DRAFT, CampaignState.SCHEDULED)
    size = audience_size(rt, campaign_id) if draft else None
    # a draft's templates may have changed since it was created: say now what launch would refuse
    # each problem in the console's language where a pattern knows it (preference_centre/admin/problems.py)
    _ = gettext_for(lang_of(request))
    problems = [(place(w, _), w, p, done) for w, p, done in (translate_line(x, _) for x in plan_problems(rt, plan))] \
        if draft else []
    failures = campaign_failures(rt, campaign_id) if campaign.launched_at else []
    # a running campaign warns when nothing would send it (no dispatcher) or close it (no scheduler)
    services = service_status(rt) if campaign.state == CampaignState.RUNNING else None
    return render(request, "campaign.html", status_code=status_code, campaign=campaign, plan=plan,
                  previews=previews, audience=size, problems=problems, failures=failures, services=services,
                  done=request.query_params.get("done") if request.query_params.get("done") in ACTIONS else None,
                  launch_at=_local_time(rt, campaign.launch_at), timezone=rt.config.scheduler.timezone, **extra)


@guard()
async def campaign_preview_html(request: Request) -> Response:
    """The email's HTML part for one step and locale, for the sandboxed iframe."""
    rt = rt_of(request)
    campaign_id = _campaign_id(request)
    step, locale = int(request.path_params["step"]), request.path_params["locale"]
    try:
        previews = preview_campaign(rt, campaign_id)
    except NotFoundError as exc:
        return error(request, 404, str(exc))
    match = next((p for p in previews if p.step == step and p.locale == locale and p.html), None)
    if match is None or match.html is None:
        return error(request, 404, "This step has no email preview in that language.")
    return HTMLResponse(match.html, headers={"content-security-policy": PREVIEW_CSP,
                                             "x-frame-options": "SAMEORIGIN"})


@guard(role=Role.ADMIN)
async def campaign_action(request: Request) -> Response:
    """launch | pause | resume: a first POST asks for confirmation, the second (confirm=yes) acts."""
    rt = rt_of(request)
    campaign_id = _campaign_id(request)
    action = request.path_params["action"]
    if action not in ACTIONS:
        return error(request, 404, "This page does not exist.")
    form = await form_of(request)
    at_text = str(form.get("at") or "").strip()
    try:
        campaign, _ = read_campaign(rt, campaign_id)
        at = parse_launch_time(at_text, rt.config.scheduler.timezone) if action == "schedule" else None
        if form.get("confirm") != "yes":
            question, consequence, button = ACTIONS[action]
            size = audience_size(rt, campaign_id) if action in ("launch", "schedule") else None
            subject = campaign.name + (f" · {_local_time(rt, at)}" if at else "")
            return render(request, "confirm.html", action=f"/admin/campaigns/{campaign_id}/{action}",
                          fields={"at": at_text} if at else {}, question=question, subject=subject,
                          consequence=consequence, button=button, audience=size, danger=action == "delete",
                          back=f"/admin/campaigns/{campaign_id}")
        if action == "launch":
            detail: dict[str, Any] = {"enrolled": launch_campaign(rt, campaign_id)}
        elif at is not None:
            detail = {"launch_at": schedule_launch(rt, campaign_id, at).isoformat()}
        elif action == "unschedule":
            unschedule(rt, campaign_id)
            detail = {}
        elif action == "delete":
            delete_campaign(rt, campaign_id)
            accounts.record_action(rt, operator_of(request), "campaign.delete", target=f"campaign:{campaign_id}",
                                   ip=client_ip(request))
            return see_other("/admin/")
        else:
            detail = {"state": set_paused(rt, campaign_id, action == "pause")}
    except NotFoundError as exc:
        return error(request, 404, str(exc))
    except ReconsentError as exc:
        accounts.record_action(rt, operator_of(request), f"campaign.{action}", target=f"campaign:{campaign_id}",
                               outcome="refused", ip=client_ip(request))
        return error(request, 409, str(exc))
    accounts.record_action(rt, operator_of(request), f"campaign.{action}", target=f"campaign:{campaign_id}",
                           ip=client_ip(request), **detail)
    return see_other(f"/admin/campaigns/{campaign_id}?done={action}")


@guard(role=Role.ADMIN)
async def campaign_test_send(request: Request) -> Response:
    """``campaign test-send``: the chosen steps to the operator's own address; nothing recorded."""
    rt = rt_of(request)
    campaign_id = _campaign_id(request)
    form = await form_of(request)
    step_text = str(form.get("step") or "").strip()
    try:
        sent = await send_trial(rt, campaign_id, str(form.get("to") or ""), step=int(step_text) if step_text.isdigit()
                                else None, locale=str(form.get("locale") or "") or None)
    except NotFoundError as exc:
        return error(request, 404, str(exc))
    except ReconsentError as exc:
        return _campaign_view(request, campaign_id, status_code=400, problem=str(exc))
    accounts.record_action(rt, operator_of(request), "campaign.test_send", target=f"campaign:{campaign_id}",
                           ip=client_ip(request), sent=sum(t.outcome == "sent" for t in sent))
    return _campaign_view(request, campaign_id, tested=sent)


@guard(role=Role.ADMIN)
async def campaign_edit(request: Request) -> Response:
    """A draft's plan in the creation form (GET); the changed plan, checked as at creation (POST)."""
    rt = rt_of(request)
    campaign_id = _campaign_id(request)
    try:
        campaign, plan = read_campaign(rt, campaign_id)
    except NotFoundError as exc:
        return error(request, 404, str(exc))
    action = f"/admin/campaigns/{campaign_id}/edit"
    if request.method != "POST":
        values, kinds = form_values(plan)
        return _new_form(request, values=values, kinds=kinds, action=action, editing=campaign.name)
    form = await form_of(request)
    values = {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf"}
    kinds = [str(k) for k in form.getlist("kinds")]
    try:
        edit_campaign(rt, campaign_id, plan_from_form(form, kinds))
    except ReconsentError as exc:
        accounts.record_action(rt, operator_of(request), "campaign.edit", target=f"campaign:{campaign_id}",
                               outcome="refused", ip=client_ip(request))
        return _new_form(request, status_code=400, problem=str(exc), values=values, kinds=kinds, action=action,
                         editing=campaign.name)
    accounts.record_action(rt, operator_of(request), "campaign.edit", target=f"campaign:{campaign_id}",
                           ip=client_ip(request))
    return see_other(f"/admin/campaigns/{campaign_id}")


def funnel_rows(status: dict[str, Any], _: Any) -> list[tuple[str, int, str]]:
    c = status["channels"]
    return [
        (_("enrolled"), status["enrolled"], "b-all"),
        (_("sent (email)"), c["email"]["sent"], "b-email"),
        (_("delivered (email)"), c["email"]["delivered"], "b-email"),
        (_("sent (SMS)"), c["sms"]["sent"], "b-sms"),
        (_("delivered (SMS)"), c["sms"]["delivered"], "b-sms"),
        (_("confirmed"), status["confirmed"], "b-yes"),
        (_("declined"), status["declined"], "b-no"),
        (_("unsubscribed"), sum(v["unsubscribed"] for v in c.values()), "b-no"),
        (_("not granted (channel left unticked)"), sum(v["not_granted"] for v in c.values()), "b-exp"),
        (_("bounced"), sum(v["bounced"] for v in c.values()), "b-no"),
        (_("expired → suppressed"), status["expired"], "b-exp"),
        *([(_("kept (B2B notice, no objection)"), status["kept"], "b-yes")] if status["kept"] else []),
    ]


def step_chart(step: dict[str, Any], _: Any) -> tuple[str, Any]:
    """(heading, SVG) for one step's delivery counts."""
    title = _("Step %(n)s · day %(day)s · %(channel)s", n=step["step"] + 1, day=step["day"], channel=step["channel"])
    colour = "b-" + step["channel"]
    rows = [(_("sent"), step["sent"], colour), (_("delivered"), step["delivered"], colour),
            (_("bounced"), step["bounced"], "b-no"), (_("failed"), step["failed"], "b-no"),
            (_("skipped"), step["skipped"], "b-exp"), (_("queued"), step["queued"], "b-all")]
    return title, charts.bars(title, rows, ident=f"step{step['step']}")


@guard()
async def campaign_funnel(request: Request) -> Response:
    rt = rt_of(request)
    campaign_id = _campaign_id(request)
    try:
        status = campaign_status(rt, campaign_id)
    except NotFoundError as exc:
        return error(request, 404, str(exc))
    _ = gettext_for(lang_of(request))
    funnel_svg = charts.bars(_("Funnel of campaign %(name)s", name=status["name"]), funnel_rows(status, _),
                             ident="funnel")
    per_step = [step_chart(step, _) for step in status["steps"]]
    days = confirmations_by_day(rt, campaign_id)
    over_time = charts.timeline(_("Confirmations per day"), days, ident="timeline", empty=_("No confirmation yet."))
    return render(request, "funnel.html", status=status, funnel_svg=funnel_svg, per_step=per_step,
                  over_time=over_time, days=days, services=service_status(rt),
                  due_now=messages_due(rt, campaign_id))


@guard()
async def campaign_status_json(request: Request) -> Response:
    """Exactly ``reconsent campaign status ID --json``."""
    try:
        status = campaign_status(rt_of(request), _campaign_id(request))
    except NotFoundError as exc:
        return error(request, 404, str(exc))
    return Response(json.dumps(status, ensure_ascii=False), media_type="application/json")
