"""Preference-centre views. GET shows, POST records; tokens are verified with max_age every time."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

from babel.dates import format_date
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from starlette.types import Scope

from orchestrator.consent.choices import read_granted
from orchestrator.consent.ledger import Proof
from orchestrator.consent.service import (
    PageAnswer,
    PageFacts,
    Person,
    Shown,
    answer_from_page,
    contact_channels,
    find_person,
    read_page_facts,
    record_unsubscribe,
    sent_link,
)
from orchestrator.delivery.fresh_links import send_fresh_link
from orchestrator.domain.model import Channel, ConsentSource
from orchestrator.errors import NotFoundError, RequestExpired
from orchestrator.proof.receipt_keys import enabled as receipts_on
from orchestrator.rendering.brand import read_brand
from orchestrator.rendering.checks import sample_contexts
from orchestrator.rendering.links import LinkClaims, LinkExpired, LinkInvalid
from orchestrator.runtime import Runtime
from preference_centre import templating
from preference_centre.i18n import SUPPORTED, gettext_for, negotiate
from preference_centre.public import alternatives, choices, notice
from preference_centre.public.brand import page_brand, page_sender
from preference_centre.templating import MESSAGES, NEWLINK_TITLES, PAGES_DIR  # noqa: F401 (re-exported)

STATIC_DIR = PAGES_DIR / "static"
log = logging.getLogger("reconsent.web")


def rt_of(request: Request) -> Runtime:
    rt: Runtime = request.app.state.rt
    return rt


def render_page(request: Request, name: str, *, status_code: int = 200, lang: str | None,
                headers: dict[str, str] | None = None, personal: dict[str, Any] | None = None,
                **context: Any) -> HTMLResponse:
    """``personal``: the per-person strings of the page (see :mod:`preference_centre.templating`)."""
    lang = lang or negotiate(query=request.query_params.get("lang"),
                             accept=request.headers.get("accept-language"))
    personal = personal or {}
    if "rights_url" not in personal:
        context.setdefault("rights_url", None)
    # Keep a language chosen with the switch across forms and links, so the answer is recorded with
    # the wording actually shown.
    chosen = request.query_params.get("lang", "")
    context["q"] = f"?lang={chosen}" if chosen in SUPPORTED else ""
    rt = rt_of(request)
    brand = read_brand(rt)
    context.setdefault("brand", page_brand(brand, lang))
    html = templating.render(name, lang, page_sender(rt, brand), context, personal)
    return HTMLResponse(html, status_code=status_code, headers=headers)


def error_page(request: Request, status_code: int, message_key: str,
               headers: dict[str, str] | None = None) -> HTMLResponse:
    """The error page in the visitor's language (``message_key``: a key of ``MESSAGES``)."""
    return render_page(request, "error.html", status_code=status_code, lang=None, message_key=message_key,
                       headers=headers)


def not_found_page(request: Request) -> HTMLResponse:
    return error_page(request, 404, "not_found")


def mask(address: str | None) -> str:
    """j•••@exemple.fr, +336••••••78: shows enough to recognise, not to harvest.

    >>> mask("jean.dupont@exemple.fr")
    'j•••@exemple.fr'
    >>> mask("+33612345678")
    '+336••••••78'
    """
    if not address:
        return ""
    if "@" in address:
        local, _, domain = address.partition("@")
        return f"{local[:1]}•••@{domain}"
    return address[:4] + "•" * max(0, len(address) - 6) + address[-2:]


def proof_from(request: Request, *, source: str, claims: LinkClaims, wording: tuple[str, str] | None,
               locale: str | None) -> Proof:
    ip = request.client.host if request.client else None
    return Proof(source=source, campaign_id=claims.campaign_id, wording_name=wording[0] if wording else None,
                 wording_hash=wording[1] if wording else None, locale=locale, ip=ip,
                 user_agent=request.headers.get("user-agent"))


def max_age_days(rt: Runtime, purpose: str) -> int:
    sec = rt.config.security
    return {"unsubscribe": sec.unsubscribe_link_max_age_days, "rights": sec.rights_link_max_age_days}.get(
        purpose, sec.page_link_max_age_days)


def _verify(request: Request, purpose: str, token: str) -> LinkClaims:
    rt = rt_of(request)
    return rt.links.loads(purpose, token, max_age_days=max_age_days(rt, purpose))


def _locale_of(person: Person | None) -> str | None:
    return person.locale if person is not None else None


def _bad_link(request: Request, exc: Exception) -> HTMLResponse:
    """Expired: 410 with a "send me a new link" form (when we know who it was for); else 400."""
    if isinstance(exc, LinkExpired):
        # /p/{token}, /u/{token}, /s/{code}, /r/{token}[/export|/erase] → the link's own /renew
        head = "/".join(request.url.path.split("/")[1:3])
        renew = f"/{head}/renew" if exc.claims is not None else None
        lang = None
        if exc.claims is not None:  # a genuine link: speak the contact's language
            lang = negotiate(query=request.query_params.get("lang"),
                             contact_locale=_locale_of(find_person(rt_of(request), exc.claims.contact_id)),
                             accept=request.headers.get("accept-language"))
        return render_page(request, "error.html", status_code=410, lang=lang, message_key="expired",
                           renew_action=renew)
    return render_page(request, "error.html", status_code=400, lang=None, message_key="invalid")


def _load(rt: Runtime, claims: LinkClaims) -> PageFacts:
    """The contact, the link's request and the per-channel consent state: one statement, read only."""
    return read_page_facts(rt, claims.contact_id, claims.campaign_id)


@lru_cache(maxsize=32)
def consent_wording(lang: str, sender_name: str, title: str = "", intro: str = "", button: str = "",
                    more: str = "") -> str:
    """The exact question and options shown on the page, as proof of what was agreed to [R2]
    (``title``, ``intro``, ``button``: the brand's texts when set, else the shipped ones)."""
    _ = gettext_for(lang)
    return "\n".join([
        title or _("Do you still want to hear from %(sender)s?", sender=sender_name),
        intro or _("You are receiving this because you are a customer or asked us for information. "
                   "We only keep writing to people who tell us they want it."),
        _("News and offers by email"),
        _("News and offers by SMS"),
        *([more] if more else []),  # topics and named partners (preference_centre.public.choices.wording)
        # a brand's own button text is the one the hint names (the page says exactly this)
        _("Nothing is ticked for you: if you tick nothing, “%(button)s” applies to the channel this link came by.",
          button=button) if button else
        _("Nothing is ticked for you: if you tick nothing, “Yes, keep me informed” applies to the channel this link came by."),  # noqa: E501 - one message of the catalogs
        button or _("Yes, keep me informed"),
        _("No thanks, unsubscribe me from everything"),
    ])


def open_link(request: Request, purpose: str) -> tuple[LinkClaims, PageFacts] | Response:
    """Verify the path's token for ``purpose`` and load what it points at; a tampered or expired
    link, or a person who is gone, gets its page instead (and nothing changes)."""
    try:
        claims = _verify(request, purpose, request.path_params["token"])
        return claims, _load(rt_of(request), claims)
    except (LinkInvalid, LinkExpired) as exc:
        return _bad_link(request, exc)
    except NotFoundError:
        return render_page(request, "error.html", status_code=404, lang=None, message_key="gone")


async def preference_page(request: Request) -> Response:
    rt = rt_of(request)
    if request.method == "POST":
        return await _answer(request, rt, request.path_params["token"])
    return await _off_loop(rt, _show, request)


async def _off_loop(rt: Runtime, work: Callable[..., Response], *args: Any) -> Response:
    """Run a request's database work. On a database server it runs in a worker thread, so that the
    event loop serves other requests while this one waits for the server; SQLite works in this
    process, on this CPU, where a thread only adds hand-offs (measured under load: more CPU per
    request and a worse p99), so it runs here."""
    if rt.engine.dialect.name == "sqlite":
        return work(*args)
    return await run_in_threadpool(work, *args)


def _show(request: Request) -> Response:
    opened = open_link(request, "page")
    if isinstance(opened, Response):
        preview = _preview_claims(request) if opened.status_code == 400 else None
        return opened if preview is None else _preview_page(request, preview, None)
    claims, facts = opened
    return _preference(request, rt_of(request), claims, facts, request.path_params["token"])


def _preference(request: Request, rt: Runtime, claims: LinkClaims, facts: PageFacts, token: str) -> Response:
    """GET and HEAD only ever read."""
    if facts.contact.notice:  # a B2B notice (opt-out regime): keep receiving, or object
        return notice.page(request, rt, claims, facts, token)
    contact = facts.contact
    lang = negotiate(query=request.query_params.get("lang"), contact_locale=contact.locale,
                     accept=request.headers.get("accept-language"))
    # Nothing is pre-ticked [R1]: a box is ticked only when the ledger shows this person's own
    # explicit, still-current consent on that channel (e.g. coming back to change an answer).
    # Before an answer the page says by when (as the email does); after one, or once the campaign is
    # over, it no longer warns about a deadline.
    deadline = long_date(facts.deadline.date(), lang) if facts.deadline is not None else None
    return render_page(
        request, "preference.html", lang=lang, channels=[c.value for c in contact_channels(contact)],
        current=facts.current(), enrolment_state=facts.enrolment_state, deadline=deadline,
        **choices.offered(rt.config, lang, read_granted(rt, contact.id)),
        alternatives=alternatives.buttons(rt, lang),
        personal={"action": "/p/" + token,  # also from /s/{code}: answers always go to /p/{token}
                  "masked": {"email": mask(contact.email), "sms": mask(contact.phone)},
                  "first_name": contact.first_name, "rights_url": "/r/" + rt.links.dumps("rights", claims)},
    )


async def _answer(request: Request, rt: Runtime, token: str) -> Response:
    """POST /p/{token}: record the answer with the wording shown, in one transaction."""
    try:
        claims = _verify(request, "page", token)
    except (LinkInvalid, LinkExpired) as exc:
        preview = _preview_claims(request) if isinstance(exc, LinkInvalid) else None
        if preview is not None:
            return _preview_page(request, preview, await request.form())
        return _bad_link(request, exc)
    form = await request.form()
    return await _off_loop(rt, _record, request, rt, token, claims, form)


def _preview_claims(request: Request) -> LinkClaims | None:
    """The claims of a preview token (a test send's links), None for any other token."""
    try:
        return _verify(request, "preview", request.path_params["token"])
    except (LinkInvalid, LinkExpired):
        return None


def _preview_page(request: Request, claims: LinkClaims, form: FormData | None) -> Response:
    """Preview mode (``campaign test-send``): the page an invented person would see (GET) and the
    result of an answer (POST), read from nothing and recording nothing."""
    rt = rt_of(request)
    lang = negotiate(query=request.query_params.get("lang"), accept=request.headers.get("accept-language"))
    channels = [c.value for c in Channel]
    sample = sample_contexts(rt.config, lang, rt.clock.now())[0]  # the invented person of previews
    masked = {"email": mask("camille@exemple.fr"), "sms": mask("+33612345678")}
    personal: dict[str, Any] = {"action": request.url.path, "masked": masked, "first_name": sample["first_name"]}
    if claims.notice and request.url.path.startswith("/p/"):  # a test send's B2B notice
        return notice.preview_page(request, rt, lang, personal, form)
    said = alternatives.preview_outcome(rt, form, lang, long_date)  # an alternative chosen: what it would record
    if said is not None:
        return render_page(request, "chosen.html", lang=lang, preview=True, frequency=said.get("frequency"),
                           paused_until=said.get("paused_until"))
    if request.url.path.startswith("/u/"):
        return render_page(request, "unsubscribe.html", lang=lang, action=request.url.path,
                           channel=claims.channel or "email", masked=masked[claims.channel or "email"],
                           done=form is not None, preview=True, alternatives=alternatives.buttons(rt, lang))
    if form is None:
        return render_page(request, "preference.html", lang=lang, channels=channels, current={},
                           enrolment_state=None, personal=personal, preview=True,
                           **choices.offered(rt.config, lang, frozenset()), alternatives=alternatives.buttons(rt, lang))
    answer = choices.answer_of(form, channels, claims.channel, rt)
    if answer is None:
        return render_page(request, "error.html", status_code=400, lang=lang, message_key="invalid")
    personal["recorded_on"] = long_date(rt.clock.now().date(), lang)
    return render_page(request, "done.html", lang=lang, answer=answer, channels=channels, state=None,
                       personal=personal, preview=True, chosen=choices.recorded(rt.config, lang, dict(answer.choices)))


def _record(request: Request, rt: Runtime, token: str, claims: LinkClaims, form: FormData) -> Response:
    langs: list[str] = []

    def decide(contact: Person) -> PageAnswer | None:
        notified = contact.notice  # a B2B notice: its two buttons, its wording
        lang = negotiate(query=request.query_params.get("lang"), contact_locale=contact.locale,
                         accept=request.headers.get("accept-language"))
        langs.append(lang)
        channels = [c.value for c in contact_channels(contact)]
        answer, apply = (notice.answer_of(form, channels) if notified
                         else choices.answer_of(form, channels, claims.channel, rt)), None
        if answer is None and not notified:
            answer, apply = alternatives.page_answer(rt, form, channels) or (None, None)
        if answer is None:
            return None
        proof = proof_from(request, source=ConsentSource.PREFERENCE_CENTRE, claims=claims, wording=None,
                           locale=lang)
        brand = read_brand(rt)
        shown = consent_wording(lang, brand.sender_name, brand.text(lang, "page_title") or "",
                                brand.text(lang, "page_intro") or "", brand.text(lang, "button") or "",
                                choices.wording(rt.config, lang))
        if notified:  # the notice page's wording is what the person saw
            told = notice.notice_wording(lang, brand.sender_name)
            return PageAnswer(answer, proof, Shown(notice.WORDING_NAME, lang, told))
        return PageAnswer(answer, proof, Shown(choices.wording_name(rt.config), lang,
                                               shown + alternatives.wording(rt, lang)), apply)

    try:
        contact, decided, state = answer_from_page(rt, claims.contact_id, claims.campaign_id, decide)
    except NotFoundError:
        return render_page(request, "error.html", status_code=404, lang=None, message_key="gone")
    except RequestExpired:  # the deadline sweep closed the request first: nothing was recorded
        return render_page(request, "error.html", status_code=409, lang=langs[-1] if langs else None,
                           message_key="over")
    lang = langs[-1]
    if decided is None:
        return render_page(request, "error.html", status_code=400, lang=lang, message_key="invalid")
    if decided.apply is not None:  # an alternative to leaving: what it was and until when
        said = alternatives.outcome(rt, contact.id, lang, long_date)
        return render_page(request, "chosen.html", lang=lang, personal={"action": "/p/" + token},
                           frequency=said.get("frequency"), paused_until=said.get("paused_until"))
    channels = [c.value for c in contact_channels(contact) if decided.answer.asks(c.value)]  # what was asked
    return render_page(request, "done.html", lang=lang, answer=decided.answer, channels=channels, state=state,
                       chosen=choices.recorded(rt.config, lang, dict(decided.answer.choices)),
                       personal={"action": "/p/" + token,
                                 "masked": {"email": mask(contact.email), "sms": mask(contact.phone)},
                                 "rights_url": "/r/" + rt.links.dumps("rights", claims),
                                 "receipt_url": "/p/" + token + "/receipt" if receipts_on(rt.config) else None,
                                 "recorded_on": long_date(rt.clock.now().date(), lang)})


@lru_cache(maxsize=64)
def long_date(day: date, lang: str) -> str:
    """The date in words, as Babel writes it for ``lang`` (cached: one Babel call per day and language).

    >>> long_date(date(2026, 11, 25), "fr")
    '25 novembre 2026'
    """
    return format_date(day, format="long", locale=lang)


async def unsubscribe(request: Request) -> Response:
    """GET shows a confirm button; POST unsubscribes (one-click or the button). Never redirects."""
    rt = rt_of(request)
    token = request.path_params["token"]
    try:
        claims = _verify(request, "unsubscribe", token)
        contact = _load(rt, claims).contact
    except (LinkInvalid, LinkExpired) as exc:
        preview = _preview_claims(request) if isinstance(exc, LinkInvalid) else None
        if preview is not None:
            return _preview_page(request, preview, await request.form() if request.method == "POST" else None)
        return _bad_link(request, exc)
    except NotFoundError:
        # Erased people are already suppressed: unsubscribing again is a success, not an error.
        if request.method == "POST":
            return PlainTextResponse("unsubscribed")
        return render_page(request, "error.html", status_code=404, lang=None, message_key="gone")
    channel = claims.channel or "email"
    lang = negotiate(contact_locale=contact.locale, query=request.query_params.get("lang"),
                     accept=request.headers.get("accept-language"))
    masked = mask(contact.email if channel == "email" else contact.phone)
    action = "/u/" + token
    if request.method != "POST":  # GET and HEAD only ever read
        return render_page(request, "unsubscribe.html", lang=lang, action=action, channel=channel,
                           masked=masked, done=False, alternatives=alternatives.buttons(rt, lang))
    form = await request.form()
    chose = alternatives.landing_choice(request, rt, claims, form, lang, render_page, long_date,
                                   proof_from(request, source=ConsentSource.PREFERENCE_CENTRE, claims=claims,
                                              wording=None, locale=lang))
    if chose is not None:
        return chose
    one_click = form.get("List-Unsubscribe") == "One-Click"
    source = ConsentSource.ONE_CLICK if one_click else ConsentSource.PREFERENCE_CENTRE
    proof = proof_from(request, source=source, claims=claims,
                       wording=("one_click_header", "List-Unsubscribe=One-Click") if one_click else None,
                       locale=lang)
    record_unsubscribe(rt, claims.contact_id, claims.campaign_id, channel, proof)
    if one_click:
        return PlainTextResponse("unsubscribed")
    return render_page(request, "unsubscribe.html", lang=lang, action=action, channel=channel,
                       masked=masked, done=True)


def unsubscribe_rate_key(rt: Runtime) -> Callable[[Scope], str | None]:
    """For the guard's rate limit: a POST to a genuine unsubscribe link is counted per link, not per
    client address. Mailbox providers send RFC 8058 one-click unsubscribes for all their users from
    a few addresses; counted per address, the 31st in a minute was refused and lost. A forged or
    expired token, and every other form, stays limited per address (None).

    >>> key = unsubscribe_rate_key(Runtime.__new__(Runtime))
    >>> key({"path": "/p/abc"}), key({"path": "/u/"}), key({"path": "/u/abc/renew"})
    (None, None, None)
    """
    def key(scope: Scope) -> str | None:
        path: str = scope["path"]
        token = path[3:]
        if not path.startswith("/u/") or not token or "/" in token:
            return None
        try:
            claims = rt.links.loads("unsubscribe", token, max_age_days=max_age_days(rt, "unsubscribe"))
        except (LinkInvalid, LinkExpired):
            return None
        return f"unsubscribe:{claims.contact_id}:{claims.campaign_id}:{claims.channel}"

    return key


async def short_link(request: Request) -> Response:
    """GET /s/{code}: the same page as /p/{token}, reached from a short SMS link [S7]."""
    rt = rt_of(request)
    try:
        outbox_id = rt.links.resolve_short_code(request.path_params["code"])
    except LinkInvalid as exc:
        return _bad_link(request, exc)
    sent = sent_link(rt, outbox_id)
    if sent is None or sent.sent_at is None:
        return _bad_link(request, LinkInvalid("unknown code"))
    claims = LinkClaims(sent.contact_id, sent.campaign_id, sent.channel)
    max_age = rt.config.security.page_link_max_age_days
    if rt.clock.now() - sent.sent_at > timedelta(days=max_age):
        return _bad_link(request, LinkExpired(claims))
    token = rt.links.dumps("page", claims)
    try:
        facts = _load(rt, claims)
    except NotFoundError:
        return render_page(request, "error.html", status_code=404, lang=None, message_key="not_found")
    return _preference(request, rt, claims, facts, token)


async def favicon(request: Request) -> Response:
    """GET /favicon.ico: the icon browsers ask for on every site (a 404 in every log before); shipped
    in the package's static files, cacheable for a day like them."""
    return FileResponse(STATIC_DIR / "favicon.ico", media_type="image/x-icon",
                        headers={"cache-control": "public, max-age=86400"})


async def not_found(request: Request, exc: Exception) -> Response:
    return render_page(request, "error.html", status_code=404, lang=None, message_key="not_found")


async def not_allowed(request: Request, exc: Exception) -> Response:
    return render_page(request, "error.html", status_code=405, lang=None, message_key="not_allowed")


async def server_error(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s: %s", request.url.path.split("/")[1:2], type(exc).__name__)
    return render_page(request, "error.html", status_code=500, lang=None, message_key="server")


async def renew(request: Request) -> Response:
    """POST /p|u|r/{token}/renew and /s/{code}/renew: send a fresh page link to the address on file.

    The old link must be genuine (expired is fine: that is the point); nothing in the request says
    where to send. Consent is never touched; the request is recorded and rate-limited per person.
    """
    rt = rt_of(request)
    kind = request.url.path.split("/")[1]
    try:
        if kind == "s":
            outbox_id = rt.links.resolve_short_code(request.path_params["code"])
            sent = sent_link(rt, outbox_id)
            if sent is None:
                raise LinkInvalid("unknown code")
            claims = LinkClaims(sent.contact_id, sent.campaign_id, sent.channel)
        else:
            purpose = {"p": "page", "u": "unsubscribe", "r": "rights"}[kind]
            try:
                claims = _verify(request, purpose, request.path_params["token"])
            except LinkExpired as exc:
                if exc.claims is None:
                    raise LinkInvalid("unreadable expired link") from None
                claims = exc.claims
    except LinkInvalid as exc:
        return _bad_link(request, exc)
    contact = find_person(rt, claims.contact_id)
    lang = negotiate(query=request.query_params.get("lang"), contact_locale=_locale_of(contact),
                     accept=request.headers.get("accept-language"))
    outcome = await send_fresh_link(rt, claims)
    masked = ""
    if outcome == "sent" and contact is not None:
        # the channel send_fresh_link picked: the link's own when the person has it, else email, then SMS
        reachable = contact_channels(contact)
        channel = next((c for c in reachable if c.value == claims.channel), reachable[0] if reachable else None)
        masked = mask(contact.email if channel is Channel.EMAIL else contact.phone)
    status = {"sent": 200, "rate_limited": 429, "failed": 503, "refused": 200}[outcome]
    return render_page(request, "newlink.html", status_code=status, lang=lang, outcome=outcome, masked=masked)
