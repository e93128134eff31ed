"""Self-service data rights [P4, R8]: download my data, erase my data.

Reached from the preference page through a token of the ``rights`` purpose (short max_age). GET only
shows; the export and the erasure are POSTs, and erasure needs a second, explicit step. Both are
recorded in ``self_service_request``. The work itself is ``orchestrator.proof.rights``
(export_contact, erase_contact_self) on the one contact the token names — never on another contact
that shares their email or phone. When an address is shared, the erasure page says so and asks
before suppressing it (that would stop messages to everyone who uses it).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from orchestrator.consent.service import Person
from orchestrator.delivery.fresh_links import record_request
from orchestrator.errors import NotFoundError
from orchestrator.proof.rights import erase_contact_self, export_contact, shared_channels
from preference_centre.i18n import negotiate
from preference_centre.public.pages import mask, open_link, render_page, rt_of


async def _context(request: Request) -> tuple[Person, str, str] | Response:
    opened = open_link(request, "rights")
    if isinstance(opened, Response):
        return opened
    _claims, facts = opened
    contact = facts.contact
    token = request.path_params["token"]
    lang = negotiate(query=request.query_params.get("lang"), contact_locale=contact.locale,
                     accept=request.headers.get("accept-language"))
    return contact, lang, "/r/" + token


async def rights_page(request: Request) -> Response:
    found = await _context(request)
    if isinstance(found, Response):
        return found
    contact, lang, base = found
    return render_page(request, "rights.html", lang=lang, base=base,
                       masked=mask(contact.email or contact.phone))


async def export(request: Request) -> Response:
    """POST: the JSON file (profile, consent events with proof, messages sent), recorded."""
    found = await _context(request)
    if isinstance(found, Response):
        return found
    contact, _lang, _base = found
    rt = rt_of(request)
    try:
        data = export_contact(rt, contact.id)
    except NotFoundError:  # erased meanwhile
        return render_page(request, "error.html", status_code=404, lang=None, message_key="gone")
    record_request(rt, contact.id, "export", "done")
    body = json.dumps(data, ensure_ascii=False, indent=2).encode()
    return Response(body, media_type="application/json", headers={
        "content-disposition": 'attachment; filename="my-data.json"'})


async def erase(request: Request) -> Response:
    """GET: the second confirmation step. POST with confirm=yes: erase, record, say so."""
    found = await _context(request)
    if isinstance(found, Response):
        return found
    contact, lang, base = found
    rt = rt_of(request)
    masked = mask(contact.email or contact.phone)
    addresses = {"email": mask(contact.email), "sms": mask(contact.phone)}
    try:
        shared = shared_channels(rt, contact.id)
    except NotFoundError:
        return render_page(request, "error.html", status_code=404, lang=None, message_key="gone")
    page: dict[str, Any] = {"lang": lang, "base": base, "shared": shared,
                            "personal": {"masked": masked, "addresses": addresses}}
    if request.method != "POST":  # GET and HEAD only ever read
        return render_page(request, "erase.html", done=False, **page)
    form = await request.form()
    if form.get("confirm") != "yes":
        return render_page(request, "erase.html", status_code=400, done=False, **page)
    stop = [c for c in shared if form.get("stop_" + c) == "yes"]
    try:
        outcome = erase_contact_self(rt, contact.id, stop=stop)
    except NotFoundError:  # erased meanwhile
        return render_page(request, "error.html", status_code=404, lang=None, message_key="gone")
    record_request(rt, contact.id, "erase", "done")
    return render_page(request, "erase.html", done=True, outcome=outcome, **page)
