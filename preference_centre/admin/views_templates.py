"""The template editor: per template and locale, the subject, text body, HTML body (Markdown into the
shipped layout, or raw HTML), SMS text; a preview at phone width; the SMS's encoding and segments;
the variables; the checks on save, each problem next to its field; every save a new version.

Works without JavaScript: "Preview" submits the form into the preview frame (``formtarget``), "Check"
and "Save" reload the page. ``/admin/static/editor.js`` only refreshes the preview while typing and
inserts variables at the cursor.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from orchestrator.accounts import service as accounts
from orchestrator.accounts.service import Role
from orchestrator.domain.segments import count_segments
from orchestrator.errors import ReconsentError
from orchestrator.rendering import editor
from orchestrator.rendering.template_store import LOCALE, NAME, list_templates
from orchestrator.runtime import Runtime
from preference_centre.admin.i18n import gettext_for
from preference_centre.admin.messages import say
from preference_centre.admin.problems import translate
from preference_centre.admin.web import client_ip, error, form_of, guard, lang_of, operator_of, render, rt_of, see_other

#: the preview is a document of its own (as the campaign preview): no script, no form, no remote load
PREVIEW_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data: https:; sandbox; "
               "frame-ancestors 'self'; base-uri 'none'; form-action 'none'")


def template_locales(rt: Runtime) -> dict[str, list[str]]:
    """Every template name a campaign can use → its locales (the campaign form's previews)."""
    out: dict[str, set[str]] = {}
    for w in list_templates(rt):
        if w.state != "replaced":
            out.setdefault(w.name, set()).add(w.locale)
    return {name: sorted(locales) for name, locales in sorted(out.items())}


def _where(request: Request) -> tuple[str, str] | None:
    name, locale = request.path_params["name"], request.path_params["locale"]
    return (name, locale) if NAME.fullmatch(name) and LOCALE.fullmatch(locale) else None


@guard()
async def templates_page(request: Request) -> Response:
    """Every template by name: its locales and channels, current version, shipped or edited."""
    rt = rt_of(request)
    rows: dict[str, dict[str, list[Any]]] = {}
    for w in list_templates(rt):
        if w.state != "replaced":
            rows.setdefault(w.name, {}).setdefault(w.locale, []).append(w)
    return render(request, "templates.html", rows=rows)


@guard()
async def template_open(request: Request) -> Response:
    """The "new or open" form (GET): to the editor of that name and locale, or back with the problem."""
    name = request.query_params.get("name", "").strip().lower()
    locale = request.query_params.get("locale", "").strip().lower()
    if not NAME.fullmatch(name):
        return render(request, "templates.html", status_code=400, rows={}, problem=(
            "A template name is lowercase letters, digits, “-” and “_” (at most 64)."))
    if not LOCALE.fullmatch(locale):
        return render(request, "templates.html", status_code=400, rows={}, problem=(
            "A language is a 2- or 3-letter code (fr, en)."))
    return see_other(f"/admin/templates/{quote(name)}/{quote(locale)}")


def _draft_from(form: FormData, name: str, locale: str) -> editor.Draft:
    def text(key: str) -> str:
        value = form.get(key)
        return value if isinstance(value, str) else ""

    markdown = text("markdown") if text("mode") != "html" else None
    return editor.Draft(name, locale, subject=text("subject"), body_txt=text("body_txt"),
                        body_html=text("body_html"), markdown=markdown, sms=text("sms"))


def _editor(request: Request, draft: editor.Draft, *, status_code: int = 200,
            problems: list[editor.Problem] | None = None, checked: bool = False, saved: str | None = None) -> Response:
    rt = rt_of(request)
    _ = gettext_for(lang_of(request))
    by_field: dict[str, list[tuple[str, bool, int | None]]] = {}
    for p in problems or []:
        message, translated = translate(p.text, _)
        by_field.setdefault(p.field, []).append((message, translated, p.line))
    sms_info = count_segments(draft.sms) if draft.sms.strip() else None
    preview = editor.preview_draft(rt, draft) if draft.sms.strip() else None
    if preview is not None and preview.segments is not None:
        sms_info = preview.segments  # the rendered text (links, first name) is what is sent
    return render(request, "template_edit.html", status_code=status_code, draft=draft, problems=by_field,
                  checked=checked and not problems, saved=saved, variables=editor.variables(rt, draft.locale),
                  versions=editor.versions(rt, draft.name, draft.locale), sms_info=sms_info,
                  sms_rendered=preview.sms if preview else None,
                  ucs2=[ch if ch.strip() else f"U+{ord(ch):04X}" for ch in (sms_info.ucs2_chars if sms_info else ())],
                  mode="html" if draft.markdown is None else "markdown")


@guard()
async def template_edit(request: Request) -> Response:
    where = _where(request)
    if where is None:
        return error(request, 404, "This page does not exist.")
    saved = request.query_params.get("saved")
    return _editor(request, editor.draft_for(rt_of(request), *where), saved=saved if saved else None)


@guard(role=Role.ADMIN)
async def template_save(request: Request) -> Response:
    """``intent=check``: the checks only; ``intent=save``: the checks, then a new version."""
    where = _where(request)
    if where is None:
        return error(request, 404, "This page does not exist.")
    rt = rt_of(request)
    form = await form_of(request)
    draft = _draft_from(form, *where)
    problems = editor.check_draft(rt, draft)
    if form.get("intent") != "save" or problems:
        return _editor(request, draft, status_code=400 if problems else 200, problems=problems, checked=True)
    try:
        report = editor.save_draft(rt, draft)
    except ReconsentError as exc:
        return _editor(request, draft, status_code=409, problems=[editor.Problem("name", str(exc))])
    mine = [w for w in report.wordings if w.locale == draft.locale]
    accounts.record_action(rt, operator_of(request), "template.save", target=f"template:{draft.name}/{draft.locale}",
                           ip=client_ip(request), versions=",".join(f"{w.channel.value}:{w.version}" for w in mine),
                           outcome=",".join(sorted({w.outcome for w in mine})) or "unchanged")
    outcome = "new" if any(w.outcome == "new" for w in mine) else "unchanged"
    return see_other(f"/admin/templates/{quote(draft.name)}/{quote(draft.locale)}?saved={outcome}")


@guard()
async def template_preview(request: Request) -> Response:
    """The preview frame's document: GET the wording new campaigns use, POST the form's draft."""
    where = _where(request)
    if where is None:
        return error(request, 404, "This page does not exist.")
    rt = rt_of(request)
    post = request.method == "POST"
    draft = _draft_from(await form_of(request), *where) if post else editor.draft_for(rt, *where)
    _ = gettext_for(lang_of(request))
    return HTMLResponse(preview_document(editor.preview_draft(rt, draft), _, draft.locale),
                        headers={"content-security-policy": PREVIEW_CSP, "x-frame-options": "SAMEORIGIN"})


_BOX = "font:14px/1.4 Arial,Helvetica,sans-serif;margin:8px;padding:8px 10px;border:1px solid #c9c9d2;border-radius:6px"


def preview_document(preview: editor.Preview, _: Any, locale: str) -> str:
    """The email as the recipient sees it, with the subject above it and the SMS below it."""
    from html import escape

    head = ""
    if preview.subject is not None:
        head = (f'<div style="{_BOX};background:#f6f6f9;color:#1b1b1f"><strong>{escape(_("Subject"))}</strong> '
                f'<span lang="{locale}">{escape(preview.subject)}</span></div>')
    tail = ""
    for key, message in preview.errors.items():
        said, done = say(message, _)
        mark = "" if done else ' lang="en"'
        tail += (f'<div style="{_BOX};background:#fdecec;color:#5c0b0e"><strong>{escape(_("Cannot be rendered:"))}'
                 f' ({key})</strong> <code{mark}>{escape(said)}</code></div>')
    if preview.sms is not None and preview.segments is not None:
        seg = preview.segments
        tail += (f'<div style="{_BOX};background:#f6f6f9;color:#1b1b1f"><strong>SMS</strong> · {seg.encoding} · '
                 f'{escape(_("%(n)s segment(s)", n=seg.segments))}<pre lang="{locale}" style="white-space:pre-wrap;'
                 f'word-break:break-word;font:14px/1.4 Arial,Helvetica,sans-serif">{escape(preview.sms)}</pre></div>')
    if preview.html is None:
        return (f'<!doctype html><html lang="{locale}"><head><meta charset="utf-8"><title>{escape(_("Preview"))}'
                f"</title></head><body>{head}{tail}</body></html>")
    html = preview.html
    at = html.find(">", html.find("<body")) + 1 if "<body" in html else 0
    html = html[:at] + head + html[at:]
    end = html.rfind("</body>")
    return html[:end] + tail + html[end:] if end >= 0 else html + tail
