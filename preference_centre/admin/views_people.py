"""Contacts (CSV import, look-up, export, erasure), the suppression list and the request register."""

from __future__ import annotations

import json
import tempfile
from datetime import date
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

from orchestrator.accounts import service as accounts
from orchestrator.accounts.service import Role
from orchestrator.consent.suppression import check as check_suppression
from orchestrator.consent.suppression import import_list
from orchestrator.errors import InputError, NotFoundError, ReconsentError
from orchestrator.proof import requests as dsr
from orchestrator.proof.record import person_record
from orchestrator.proof.rights import address_key, erase_person, export_person
from orchestrator.runtime import Runtime
from preference_centre.admin.requests import list_requests
from preference_centre.admin.views_import import page as contacts_html
from preference_centre.admin.web import (
    UNUSABLE_NAME,
    client_ip,
    error,
    form_of,
    guard,
    operator_of,
    render,
    rt_of,
    see_other,
    upload_bytes,
    usable_name,
)


def _saved(name: str, content: bytes, folder: str) -> Path:
    """The upload, saved under its own name (import messages name the file) in a private folder; a
    name that is no file name (``..``, ``.``, over 255 bytes) is refused (a 400, not a 500)."""
    base = usable_name(name)
    if base is None:
        raise InputError(UNUSABLE_NAME)
    path = Path(folder) / base
    path.write_bytes(content)
    return path


# -- contacts -----------------------------------------------------------------------------------------
@guard()
async def contacts_page(request: Request) -> Response:
    return contacts_html(request)


def _handler(request: Request) -> str:
    operator = operator_of(request)
    return f"console:{operator.email}" if operator else "console"


def _lookup_key(rt: Runtime, raw: str) -> tuple[str, str]:
    kind = "email" if "@" in raw else "phone"
    _, key = address_key(rt, **{kind: raw})
    return kind, key


@guard()
async def contacts_lookup(request: Request) -> Response:
    """POST, so the address never appears in a URL or an access log."""
    rt = rt_of(request)
    raw = str((await form_of(request)).get("address") or "").strip()
    try:
        if not raw:
            raise InputError("Type an email address or a phone number.")
        kind, key = _lookup_key(rt, raw)
    except InputError as exc:
        return contacts_html(request, status_code=400, problem=str(exc))
    found = person_record(rt, key)
    accounts.record_action(rt, operator_of(request), "contact.lookup", target=key, ip=client_ip(request),
                                     found=len(found.people))
    return render(request, "person.html", address=raw, kind=kind, **found.context())


@guard(role=Role.ADMIN)
async def contacts_export(request: Request) -> Response:
    """Right of access [R8]: the same JSON as ``reconsent dsr export``, as a download."""
    rt = rt_of(request)
    raw = str((await form_of(request)).get("address") or "").strip()
    try:
        kind, key = _lookup_key(rt, raw)
        data = export_person(rt, **{kind: raw}, handled_by=_handler(request))
    except (InputError, NotFoundError) as exc:
        accounts.record_action(rt, operator_of(request), "dsr.export", outcome="refused", ip=client_ip(request))
        return error(request, 404 if isinstance(exc, NotFoundError) else 400, str(exc))
    accounts.record_action(rt, operator_of(request), "dsr.export", target=key, ip=client_ip(request),
                           people=len(data["people"]))
    ids = "-".join(str(p["profile"]["id"]) for p in data["people"])
    return Response(json.dumps(data, ensure_ascii=False, indent=2) + "\n", media_type="application/json",
                    headers={"content-disposition": f'attachment; filename="reconsent-export-{ids}.json"'})


@guard(role=Role.ADMIN)
async def contacts_erase(request: Request) -> Response:
    """Right to erasure [R8], after a confirmation step; the hashed suppression entry stays."""
    rt = rt_of(request)
    form = await form_of(request)
    raw = str(form.get("address") or "").strip()
    try:
        kind, key = _lookup_key(rt, raw)
    except InputError as exc:
        return error(request, 400, str(exc))
    if form.get("confirm") != "yes":
        return render(request, "confirm.html", action="/admin/contacts/erase", fields={"address": raw},
                      question="Erase this person's personal data?", subject=raw,
                      consequence="Profile, names and addresses are removed for good. The hashed suppression "
                                  "entry stays, so a later import cannot bring this person back.",
                      button="Erase", danger=True, back="/admin/contacts")
    try:
        n = erase_person(rt, **{kind: raw}, handled_by=_handler(request))
    except NotFoundError as exc:
        return error(request, 404, str(exc))
    accounts.record_action(rt, operator_of(request), "dsr.erase", target=key, ip=client_ip(request), erased=n)
    return render(request, "done.html", message="Personal data erased; the suppression entry was kept.",
                  count=n, back="/admin/contacts")


# -- suppression ----------------------------------------------------------------------------------------
@guard()
async def suppression_page(request: Request) -> Response:
    return render(request, "suppression.html")


@guard()
async def suppression_check(request: Request) -> Response:
    rt = rt_of(request)
    raw = str((await form_of(request)).get("address") or "").strip()
    try:
        if not raw:
            raise InputError("Type an email address, a phone number or a 64-hex-digit key.")
        entries = check_suppression(rt, raw)
    except InputError as exc:
        return render(request, "suppression.html", status_code=400, problem=str(exc))
    accounts.record_action(rt, operator_of(request), "suppression.check", target=entries[0].key if entries else None,
                           ip=client_ip(request), suppressed=bool(entries))
    return render(request, "suppression.html", checked=raw, entries=entries)


@guard(role=Role.ADMIN)
async def suppression_import(request: Request) -> Response:
    rt = rt_of(request)
    upload = await upload_bytes(await form_of(request), "file")
    if upload is None:
        return render(request, "suppression.html", status_code=400, problem="Choose a file to import.")
    with tempfile.TemporaryDirectory() as folder:
        try:
            report = import_list(rt, _saved(upload[0], upload[1], folder))
        except ReconsentError as exc:
            return render(request, "suppression.html", status_code=400, problem=str(exc).replace(folder + "/", ""))
    rejected = report.rejected or []
    accounts.record_action(rt, operator_of(request), "suppression.import", ip=client_ip(request), added=report.added,
                           already=report.already, rejected=len(rejected))
    return render(request, "suppression.html", imported=report, rejected=rejected)


# -- data-subject requests -------------------------------------------------------------------------------
@guard()
async def requests_page(request: Request) -> Response:
    rt = rt_of(request)
    return render(request, "requests.html", requests=list_requests(rt), today=rt.clock.now().date(),
                  kinds=dsr.KINDS)


@guard(role=Role.ADMIN)
async def requests_record(request: Request) -> Response:
    """Record a request received by mail, phone or letter; it is due one month after receipt."""
    rt = rt_of(request)
    form = await form_of(request)
    raw = str(form.get("address") or "").strip()
    kind = str(form.get("kind") or "")
    today = rt.clock.now().date()
    try:
        if kind not in dsr.KINDS:
            raise InputError(f"kind: choose {', '.join(dsr.KINDS[:-1])} or {dsr.KINDS[-1]}")
        if not raw:
            raise InputError("Type the person's email address or phone number.")
        address_kind, key = _lookup_key(rt, raw)
        received = str(form.get("received_on") or "").strip() or today.isoformat()
        try:
            received_on = date.fromisoformat(received)
        except ValueError:
            raise InputError(f"received_on: expected a date like 2026-11-25, got {received!r}") from None
        if received_on > today:
            raise InputError("received_on: the date is in the future")
    except InputError as exc:
        return render(request, "requests.html", status_code=400, requests=list_requests(rt), today=today,
                      kinds=dsr.KINDS, problem=str(exc))
    operator = operator_of(request)
    subject = dsr.Subject(key, "email" if address_kind == "email" else "sms")
    request_id = dsr.record_received(rt, kind, subject, received_on,
                                     recorded_by=operator.email if operator else "?")
    accounts.record_action(rt, operator, "dsr.received", target=key, ip=client_ip(request), kind=kind,
                           received_on=received_on.isoformat(), request=request_id)
    return see_other("/admin/requests")
