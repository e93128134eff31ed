"""Self-service data rights [P4, R8]: download my data, erase my data.

Reached from the preference page through a token of the ``rights`` purpose (short max_age). GET only
shows; the export and the erasure are POSTs, and erasure needs a second, explicit step. Both are
recorded in ``self_service_request``. The work itself is ``orchestrator.proof.rights`` (export_person,
erase_person), found by the address on file for the contact the token names.
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response

from orchestrator.consent.service import Person
from orchestrator.delivery.fresh_links import record_request
from orchestrator.domain.model import ConsentSource
from orchestrator.proof.rights import erase_person, export_person
from preference_centre.i18n import negotiate
from preference_centre.public.pages import mask, open_link, render_page, rt_of


def _person(contact: Person) -> dict[str, str]:
    """How orchestrator.proof.rights finds this person: by email when there is one, else by phone."""
    return {"email": contact.email} if contact.email else {"phone": contact.phone or ""}


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
    data = export_person(rt, **_person(contact))
    assert contact.id is not None
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
    masked = mask(contact.email or contact.phone)
    if request.method != "POST":  # GET and HEAD only ever read
        return render_page(request, "erase.html", lang=lang, base=base, masked=masked, done=False)
    form = await request.form()
    if form.get("confirm") != "yes":
        return render_page(request, "erase.html", status_code=400, lang=lang, base=base, masked=masked,
                           done=False)
    rt = rt_of(request)
    assert contact.id is not None
    erase_person(rt, **_person(contact), source=ConsentSource.PREFERENCE_CENTRE)
    record_request(rt, contact.id, "erase", "done")
    return render_page(request, "erase.html", lang=lang, base=base, masked=masked, done=True)
