"""The one message factory: every ``OutboundMessage`` Reconsent sends is built here — a campaign
step's (from an outbox row, by the worker) and the fresh link a person asks for on an expired page
(by ``orchestrator.delivery.fresh_links``).

Both carry the same things: the person's signed page and unsubscribe links, ``List-Unsubscribe``
and ``List-Unsubscribe-Post`` (one-click, RFC 8058) on email, a deterministic Message-ID, the
sender from config, and ``meta`` with the template version and locale recorded as proof.

The locale is the person's: the contact's locale when the wording exists in it, else the campaign's
default, else ``contacts.default_locale`` (``message_locale``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from orchestrator.campaigns.service import message_context
from orchestrator.config import SenderConfig
from orchestrator.consent.keywords import sms_sender_for
from orchestrator.domain.campaign import CampaignPlan
from orchestrator.domain.message import (
    OutboundMessage,
    address_of,
    canonical_message_id,
    domain_of,
    envelope_sender,
)
from orchestrator.domain.model import Channel
from orchestrator.domain.windows import SendWindow
from orchestrator.rendering.checks import sample_contexts
from orchestrator.rendering.links import LinkClaims
from orchestrator.rendering.messages import RenderedMessage
from orchestrator.runtime import Runtime

TWILIO_MAX_VALIDITY = 36000
FRESH_LINK_TEMPLATE = "newlink"


class OutboxRowLike(Protocol):
    """The outbox row columns a campaign message is built from (an ORM row or a facts-query row)."""

    @property
    def id(self) -> int | None: ...
    @property
    def contact_id(self) -> int: ...
    @property
    def campaign_id(self) -> int: ...
    @property
    def step(self) -> int: ...
    @property
    def channel(self) -> str: ...
    @property
    def template(self) -> str: ...


class PersonLike(Protocol):
    """The contact columns a message needs."""

    @property
    def first_name(self) -> str | None: ...
    @property
    def locale(self) -> str | None: ...


@dataclass(frozen=True)
class _Links:
    page: str
    unsubscribe: str


def _links(rt: Runtime, claims: LinkClaims, *, preview: bool = False) -> _Links:
    """The person's page and unsubscribe links; with ``preview``, the same pages in preview mode
    (a token of the ``preview`` purpose: the pages show and answer, and record nothing)."""
    if preview:
        token = rt.links.dumps("preview", claims)
        return _Links(page=rt.url("/p/" + token), unsubscribe=rt.url("/u/" + token))
    return _Links(page=rt.url("/p/" + rt.links.dumps("page", claims)),
                  unsubscribe=rt.url("/u/" + rt.links.dumps("unsubscribe", claims)))


def page_links(rt: Runtime, claims: LinkClaims) -> _Links:
    """The page and unsubscribe links of ``claims``, signed as in a message (the API's fresh links)."""
    return _links(rt, claims)


def message_id(rt: Runtime, local_part: str) -> str:
    """``<local_part@domain>``: ``email.message_id_domain``, else the sender's domain — in its one
    canonical form (``canonical_message_id``): what the header carries is what is stored, shown by
    ``dsr export`` and matched by bounces (a From written ``Name <address>`` once gave ``…@domain>>``)."""
    cfg = rt.config
    domain = domain_of(cfg.email.message_id_domain) or domain_of(cfg.sender.email_from) or "localhost"
    canonical = canonical_message_id(f"<{local_part}@{domain}>")
    assert canonical is not None
    return canonical


def sender_address(rt: Runtime) -> str:
    """The From address (``sender.email_from`` may be written ``Name <address>``)."""
    return address_of(rt.config.sender.email_from)


def outbox_message_id(rt: Runtime, row_id: int, code: str | None = None) -> str:
    """The deterministic Message-ID of an outbox row's email (committed with its mark)."""
    return message_id(rt, f"rc.{code or rt.links.short_code(row_id)}")


def list_unsubscribe_headers(rt: Runtime, unsubscribe_url: str) -> tuple[tuple[str, str], ...]:
    """The one-click unsubscribe headers every email carries (RFC 2369 + RFC 8058)."""
    mailto = address_of(rt.config.sender.unsubscribe_mailto or rt.config.sender.email_from)
    return (
        ("List-Unsubscribe", f"<{unsubscribe_url}>, <mailto:{mailto}?subject=unsubscribe>"),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
    )


def language_of(locale: str | None) -> str | None:
    """``"fr-CA"`` → ``"fr"``; empty → None.

    >>> language_of("en_GB"), language_of("FR"), language_of("")
    ('en', 'fr', None)
    """
    return locale.split("-")[0].split("_")[0].lower() or None if locale else None


def campaign_message(rt: Runtime, row: OutboxRowLike, contact: PersonLike, plan: CampaignPlan,
                     deadline: datetime, window: SendWindow, tz: str, address: str, *,
                     code: str | None = None) -> OutboundMessage:
    """A campaign step's message for one outbox row; ``code``: the row's short code when already
    computed (it is in the mark's Message-ID)."""
    channel = Channel(row.channel)
    locale = plan.pick_locale(contact.locale)
    links = _links(rt, LinkClaims(contact_id=row.contact_id, campaign_id=row.campaign_id, channel=channel.value))
    assert row.id is not None
    code = code or rt.links.short_code(row.id)
    sender = _sender_for(rt, channel, address)
    ctx = message_context(rt, first_name=contact.first_name, page_url=links.page, unsubscribe_url=links.unsubscribe,
                          short_url=rt.url("/s/" + code), deadline=deadline, locale=locale, sender=sender)
    rendered = rt.renderer.render(row.template, channel, locale, ctx, plan.wording(row.template, locale, channel))
    meta = {"template_version": rendered.version, "locale": locale}
    key = f"c{row.campaign_id}-k{row.contact_id}-s{row.step}-{channel.value}"
    if channel is Channel.EMAIL:
        return _email(rt, rendered, address, key, outbox_message_id(rt, row.id, code), links.unsubscribe, meta)
    now = rt.clock.now()
    validity = int((window.closes_at(now, tz) - now).total_seconds()) - 60
    return OutboundMessage(
        channel=channel, recipient=address, idempotency_key=key, text=rendered.text,
        sender=sender.sms_from, status_callback=rt.url("/twilio/status"),
        validity_period=max(60, min(validity, TWILIO_MAX_VALIDITY)), meta=meta,
    )


def fresh_link_message(rt: Runtime, *, contact_id: int, person: PersonLike, address: str, channel: Channel,
                       campaign_id: int | None, locale: str, version: str | None,
                       request_id: int | None = None) -> OutboundMessage:
    """The fresh preference-page link a person asked for (template ``newlink``), rendered in
    ``locale`` (``version``: the imported wording to use, None for the shipped one). Not an outbox
    row: no status callback, a Message-ID of its own (``request_id``, the person's request, keeps two
    links asked for in the same second apart)."""
    links = _links(rt, LinkClaims(contact_id=contact_id, campaign_id=campaign_id, channel=channel.value))
    now = rt.clock.now()
    deadline = now + timedelta(days=rt.config.security.page_link_max_age_days)
    sender = _sender_for(rt, channel, address)
    ctx = message_context(rt, first_name=person.first_name, page_url=links.page, unsubscribe_url=links.unsubscribe,
                          short_url=links.page, deadline=deadline, locale=locale, sender=sender)
    rendered = rt.renderer.render(FRESH_LINK_TEMPLATE, channel, locale, ctx, version)
    key = f"newlink-k{contact_id}-{channel.value}-{int(now.timestamp())}"
    if request_id is not None:
        key += f"-r{request_id}"
    meta = {"template_version": rendered.version, "locale": locale}
    if channel is Channel.EMAIL:
        return _email(rt, rendered, address, key, message_id(rt, key), links.unsubscribe, meta)
    return OutboundMessage(channel=channel, recipient=address, idempotency_key=key, text=rendered.text,
                           sender=sender.sms_from, meta=meta)


TEST_PREFIX = "[TEST] "


def trial_message(rt: Runtime, plan: CampaignPlan, *, campaign_id: int, step: int, locale: str,
                 address: str, notice: bool = False) -> OutboundMessage:
    """A campaign step rendered for an invented person and sent to ``address`` (``campaign test-send``):
    subject (and SMS text) prefixed ``[TEST]``, links in preview mode (the pages record nothing), no
    outbox row, no status callback. ``notice``: the step as professionals under a B2B notice get it
    (the notice template; its link opens the notice page)."""
    plan_step = plan.steps[step]
    if notice:
        plan_step = replace(plan_step, template=plan.audience.notice_template)
    channel = plan_step.channel
    preview = _links(rt, LinkClaims(contact_id=0, campaign_id=campaign_id, channel=channel.value, notice=notice),
                     preview=True)
    # an invented person has no locale of their own: the pages are asked in the message's language
    links = _Links(page=f"{preview.page}?lang={locale}", unsubscribe=f"{preview.unsubscribe}?lang={locale}")
    now = rt.clock.now()
    sample = sample_contexts(rt.config, locale, now)[0]  # the invented person of previews
    sender = _sender_for(rt, channel, address)
    ctx = message_context(rt, first_name=sample["first_name"], page_url=links.page,
                          unsubscribe_url=links.unsubscribe, short_url=links.page,
                          deadline=now + timedelta(days=plan.deadline_days), locale=locale, sender=sender)
    rendered = rt.renderer.render(plan_step.template, channel, locale, ctx,
                                  plan.wording(plan_step.template, locale, channel))
    key = f"test-c{campaign_id}-s{step}{'-notice' if notice else ''}-{int(now.timestamp())}"
    meta = {"template_version": rendered.version, "locale": locale, "test": "1"}
    if channel is Channel.EMAIL:
        return _email(rt, rendered, address, key, message_id(rt, key), links.unsubscribe, meta,
                      subject_prefix=TEST_PREFIX)
    return OutboundMessage(channel=channel, recipient=address, idempotency_key=key, text=TEST_PREFIX + rendered.text,
                           sender=sender.sms_from, meta=meta)


def _email(rt: Runtime, rendered: RenderedMessage, address: str, key: str, msg_id: str, unsubscribe_url: str,
           meta: dict[str, str], *, subject_prefix: str = "") -> OutboundMessage:
    return OutboundMessage(
        channel=Channel.EMAIL, recipient=address, idempotency_key=key, text=rendered.text,
        subject=None if rendered.subject is None else subject_prefix + rendered.subject, html=rendered.html,
        sender=sender_address(rt), sender_name=rt.config.sender.name, message_id=msg_id, date=rt.clock.now(),
        return_path=envelope_sender(rt.config.email.return_path, msg_id),
        headers=list_unsubscribe_headers(rt, unsubscribe_url), meta=meta,
    )


def _sender_for(rt: Runtime, channel: Channel, address: str) -> SenderConfig:
    """The sender as this recipient sees it: for an SMS, the number and STOP number of the
    recipient's country (``sender.sms_countries``; never a national short code abroad)."""
    if channel is not Channel.SMS:
        return rt.config.sender
    sms_from, stop_number = sms_sender_for(rt.config, address)
    return replace(rt.config.sender, sms_from=sms_from, stop_number=stop_number)
