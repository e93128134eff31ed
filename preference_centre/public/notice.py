"""The preference page of a B2B notice (``[audience] b2b_regime = "notice"``, opt-out regime).

Whether a link's person is under the notice is read with the rest of the page (``Person.notice``,
:mod:`orchestrator.consent.service`). A professional informed by a notice lands on a page that says
we will keep writing to their work address and offers two buttons, both posting to the same
``/p/{token}`` as the consent page and recorded by the same service, each for the channels its words
cover (``Answer.asked``):

- "keep receiving them": a confirmation of the email channel, with this page's wording as proof. The
  page asks nothing about SMS (the notice is email only; SMS stays opt-in), so nothing is recorded or
  suppressed on SMS: their SMS is settled by the consent regime (the sweep, at the deadline).
- "I object: stop writing to me": a refusal of every channel the person has, as "no thanks" on the
  consent page (declined, suppressed as unsubscribed): the button says "stop writing to me", and the
  done page says no more messages will come, by email or SMS.

The page stays usable after the deadline: a professional kept under the opt-out regime can object at
any time.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from orchestrator.consent.service import Answer, PageFacts
from orchestrator.domain.model import Channel
from orchestrator.rendering.links import LinkClaims
from orchestrator.runtime import Runtime
from preference_centre.i18n import gettext_for, negotiate

#: the name the wording shown is recorded under in the proof (the consent page's is "preference_page")
WORDING_NAME = "notice_page"


@lru_cache(maxsize=16)
def notice_wording(lang: str, sender_name: str) -> str:
    """The exact text and options shown on the notice page, as proof of what the person was told."""
    _ = gettext_for(lang)
    return "\n".join([
        _("%(sender)s will keep writing to your work address", sender=sender_name),
        _("We write to you at this work address about news and offers related to your profession. You do not "
          "need to do anything to keep receiving them. You can object at any time, free of charge."),
        _("Keep receiving them"),
        _("I object: stop writing to me"),
    ])


def page(request: Request, rt: Runtime, claims: LinkClaims, facts: PageFacts, token: str) -> Response:
    """GET: the notice page (reads only)."""
    from preference_centre.public.pages import long_date, mask, render_page  # pages routes here

    contact = facts.contact
    lang = negotiate(query=request.query_params.get("lang"), contact_locale=contact.locale,
                     accept=request.headers.get("accept-language"))
    deadline = long_date(facts.deadline.date(), lang) if facts.deadline is not None else None
    return render_page(
        request, "notice.html", lang=lang, enrolment_state=facts.enrolment_state, deadline=deadline,
        personal={"action": "/p/" + token, "masked": {"email": mask(contact.email)},
                  "first_name": contact.first_name, "rights_url": "/r/" + rt.links.dumps("rights", claims)},
    )


def answer_of(form: FormData, channels: list[str]) -> Answer | None:
    """The answer of the notice page's form (None: no valid button): "keep" asks about email only,
    "object" about every channel the person has (``channels``); topics and partners are not shown, so
    they are left as they are.

    >>> answer_of(FormData({"action": "confirm"}), ["email", "sms"])
    Answer(channels={'email': True}, partners=False, choices={}, asked=('email',), also=())
    >>> answer_of(FormData({"action": "decline"}), ["email", "sms"]).channels
    {'email': False, 'sms': False}
    """
    choice = str(form.get("action", ""))
    if choice == "confirm":
        return Answer(channels={Channel.EMAIL.value: True}, asked=(Channel.EMAIL.value,))
    if choice == "decline":
        return Answer(channels={c: False for c in channels}, asked=tuple(channels))
    return None


def preview_page(request: Request, rt: Runtime, lang: str, personal: dict[str, Any],
                 form: FormData | None) -> Response:
    """Preview mode of a test send's notice (``campaign test-send`` on a notice campaign): the notice
    page an invented professional would see (GET) and what an answer would record (POST), recording
    nothing."""
    from preference_centre.public.pages import long_date, render_page  # pages routes here

    if form is None:
        return render_page(request, "notice.html", lang=lang, enrolment_state=None, deadline=None,
                           personal=personal, preview=True)
    channels = [c.value for c in Channel]
    answer = answer_of(form, channels)
    if answer is None:
        return render_page(request, "error.html", status_code=400, lang=lang, message_key="invalid")
    return render_page(request, "done.html", lang=lang, answer=answer, channels=[c for c in channels if answer.asks(c)],
                       state=None, preview=True, chosen=[],
                       personal={**personal, "recorded_on": long_date(rt.clock.now().date(), lang)})
