"""The alternatives to leaving on the public pages (issue 18 §1): "fewer messages" and "pause for N
months", offered on the preference page before the refusal and on the unsubscribe landing page as
extra buttons, each a POST. Recording goes through ``orchestrator.consent`` (the only door); the
RFC 8058 one-click POST never reaches here (``pages.unsubscribe`` unsubscribes it first)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from orchestrator.consent.alternatives import Alternative, applier, chosen, chosen_values_of, offered, pause_end
from orchestrator.consent.service import Answer, PageAnswer, Person, Shown, answer_from_page
from orchestrator.errors import NotFoundError, RequestExpired
from orchestrator.rendering.links import LinkClaims
from orchestrator.runtime import Runtime
from preference_centre.i18n import gettext_for
from preference_centre.public import choices as page_choices

#: the words of each frequency, as the buttons and the done page say them
FREQUENCY_WORDS = {"weekly": "once a week", "monthly": "once a month", "quarterly": "once a quarter"}
FEWER = "Receive fewer messages: %(frequency)s"
PAUSE_ONE = "Take a break for one month"
PAUSE_MANY = "Take a break for %(months)s months"
RATHER = "Rather than leave"
#: every string of this module, for the catalog test
STRINGS = (*FREQUENCY_WORDS.values(), FEWER, PAUSE_ONE, PAUSE_MANY, RATHER)


def label(alternative: Alternative, lang: str) -> str:
    """The button's words, e.g. « Recevoir moins de messages : une fois par mois »."""
    _ = gettext_for(lang)
    if alternative.kind == "fewer":
        return _(FEWER, frequency=_(FREQUENCY_WORDS[alternative.frequency]))
    return _(PAUSE_ONE) if alternative.months == 1 else _(PAUSE_MANY, months=alternative.months)


def buttons(rt: Runtime, lang: str) -> tuple[tuple[str, str], ...]:
    """(form value, words) of each alternative offered, for the templates (empty: none offered)."""
    return tuple((a.value, label(a, lang)) for a in offered(rt.config))


def wording(rt: Runtime, lang: str) -> str:
    """The alternatives' lines of the wording shown, stored as proof with the page's ("" when none)."""
    lines = [words for _, words in buttons(rt, lang)]
    return "\n".join(["", gettext_for(lang)(RATHER), *lines]) if lines else ""


def page_answer(rt: Runtime, form: FormData, channels: list[str]) -> tuple[Answer, Any] | None:
    """The preference page's answer when its button is an alternative: the ticked channels (none
    ticked: all the person's channels) and how to record it; None for any other button."""
    alternative = chosen(rt.config, str(form.get("action", "")))
    if alternative is None:
        return None
    ticked = {c: form.get(c) == "yes" for c in channels}
    if not any(ticked.values()):
        ticked = dict.fromkeys(channels, True)
    # the topics and named partners ticked beside the button count as with "yes" (issue 18 §1-§2)
    return Answer(channels=ticked, choices=page_choices.chosen(rt.config, form)), applier(alternative)


def outcome(rt: Runtime, contact_id: int, lang: str, long_date: Callable[[date, str], str]) -> dict[str, str]:
    """What the done page says was chosen: the frequency's words and the pause's end, as recorded."""
    _ = gettext_for(lang)
    values: dict[str, str] = {}
    for (_contact, _channel), chosen_now in chosen_values_of(rt, contact_id).items():
        values.update(chosen_now)
    out = {}
    if "frequency" in values:
        out["frequency"] = _(FREQUENCY_WORDS.get(values["frequency"], values["frequency"]))
    if "paused_until" in values:
        out["paused_until"] = long_date(date.fromisoformat(values["paused_until"]), lang)
    return out


def preview_outcome(rt: Runtime, form: FormData | None, lang: str,
                    long_date: Callable[[date, str], str]) -> dict[str, str] | None:
    """Preview mode (a test send's links): what choosing this alternative would record, recording
    nothing; None when the form is not an alternative's button."""
    alternative = chosen(rt.config, str(form.get("action", ""))) if form is not None else None
    if alternative is None or form is None or form.get("List-Unsubscribe") == "One-Click":
        return None
    if alternative.kind == "fewer":
        return {"frequency": gettext_for(lang)(FREQUENCY_WORDS[alternative.frequency])}
    return {"paused_until": long_date(pause_end(rt.clock.now().date(), alternative.months), lang)}


def landing_choice(request: Request, rt: Runtime, claims: LinkClaims, form: FormData, lang: str,
                   render: Callable[..., Response], long_date: Callable[[date, str], str],
                   proof: Any) -> Response | None:
    """POST /u/{token} with an alternative's button: record it on the link's channel and show what
    was recorded; None when the button is not an alternative (the caller unsubscribes)."""
    alternative = chosen(rt.config, str(form.get("action", "")))
    if alternative is None or form.get("List-Unsubscribe") == "One-Click":
        return None
    channel = claims.channel or "email"
    text = "\n".join([gettext_for(lang)("Unsubscribe"), wording(rt, lang).strip()])

    def decide(person: Person) -> PageAnswer:
        answer = Answer(channels={channel: True})
        return PageAnswer(answer, proof, Shown("unsubscribe_page", lang, text), applier(alternative))

    try:
        answer_from_page(rt, claims.contact_id, claims.campaign_id, decide)
    except NotFoundError:
        return render(request, "error.html", status_code=404, lang=None, message_key="gone")
    except RequestExpired:
        return render(request, "error.html", status_code=409, lang=lang, message_key="over")
    return render(request, "chosen.html", lang=lang, **outcome(rt, claims.contact_id, lang, long_date))


__all__ = ["STRINGS", "buttons", "landing_choice", "outcome", "page_answer", "preview_outcome", "wording"]
