"""Self-service requests from the preference centre (the service behind its pages): a fresh link
when one expired [T3], and the
record of every request (fresh link, data export, erasure) [R8].

Why a fresh link goes straight through a channel adapter, not through the outbox: the outbox is the
*campaign* outbox. Its rows belong to a campaign step and an enrolment (both NOT NULL, unique per
step), and the dispatcher only claims rows of running campaigns and skips rows whose request was
answered or expired. A fresh link is asked for exactly in those cases (the campaign is over, the
person answered and wants to change it), so it would be skipped. It is a transactional message the
person asked for, sent once, now: the same message factory builds it
(``orchestrator.delivery.messages``: List-Unsubscribe, the person's language), and we hand it to
the same ``MessageChannel`` adapter the dispatcher uses
(``build_channels(config)``), so there is still one way a message leaves. The request is recorded
in ``self_service_request`` (which also carries the per-person rate limit).

The recipient is always the address on file for the contact the signed token names; no address is
ever read from the request.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import func, select
from sqlmodel import col

from orchestrator.delivery.channels import MessageChannel, build_channels
from orchestrator.delivery.messages import FRESH_LINK_TEMPLATE, fresh_link_message, language_of
from orchestrator.domain.campaign import CampaignPlan
from orchestrator.domain.message import OutboundMessage
from orchestrator.domain.model import Channel, SuppressionReason
from orchestrator.errors import InputError, SendError
from orchestrator.rendering.links import LinkClaims
from orchestrator.rendering.template_store import wording_now
from orchestrator.runtime import Runtime
from orchestrator.store.db import session_scope
from orchestrator.store.models import Campaign, Contact, SelfServiceRequest, SuppressionEntry

log = logging.getLogger("reconsent.web")  # a logger the scrubber guards (ops.logs)

#: suppression reasons that forbid even a requested service message: the address is dead or complained
NEVER_SEND = {SuppressionReason.BOUNCED.value, SuppressionReason.COMPLAINT.value, SuppressionReason.ERASED.value}


def record_request(rt: Runtime, contact_id: int, kind: str, outcome: str, *, channel: str | None = None,
                   detail: str | None = None) -> None:
    with session_scope(rt.engine) as session:
        session.add(SelfServiceRequest(contact_id=contact_id, kind=kind, channel=channel, outcome=outcome,
                                       detail=detail, requested_at=rt.clock.now()))


def recent_fresh_links(rt: Runtime, contact_id: int) -> int:
    since = rt.clock.now() - timedelta(hours=24)
    with session_scope(rt.engine) as session:
        return int(session.execute(select(func.count()).select_from(SelfServiceRequest).where(
            col(SelfServiceRequest.contact_id) == contact_id, col(SelfServiceRequest.kind) == "fresh_link",
            col(SelfServiceRequest.outcome) == "sent", col(SelfServiceRequest.requested_at) >= since)).scalar_one())


def pick_channel(contact: Contact, preferred: str | None) -> Channel | None:
    present = {Channel.EMAIL: contact.email, Channel.SMS: contact.phone}
    if preferred in ("email", "sms") and present[Channel(preferred)]:
        return Channel(preferred)
    for channel in (Channel.EMAIL, Channel.SMS):
        if present[channel]:
            return channel
    return None


async def send_fresh_link(rt: Runtime, claims: LinkClaims,
                          channels: dict[Channel, MessageChannel] | None = None) -> str:
    """Send a new preference-page link to the address on file; returns the recorded outcome.

    ``sent`` · ``rate_limited`` (already ``fresh_links_per_day`` in 24 h) · ``refused`` (erased,
    no address, or the address bounced/complained) · ``failed`` (the channel refused it).
    """
    with session_scope(rt.engine) as session:
        contact = session.get(Contact, claims.contact_id)
        if contact is None:
            return "refused"
        session.expunge(contact)
    channel = pick_channel(contact, claims.channel) if contact.erased_at is None else None
    if channel is None:
        record_request(rt, contact.id or 0, "fresh_link", "refused", detail="no address on file")
        return "refused"
    key = contact.email_key if channel is Channel.EMAIL else contact.phone_key
    with session_scope(rt.engine) as session:
        entry = session.get(SuppressionEntry, (key, channel.value)) if key else None
        blocked = entry is not None and entry.reason in NEVER_SEND
    if blocked:
        record_request(rt, contact.id or 0, "fresh_link", "refused", channel=channel.value,
                       detail="address suppressed")
        return "refused"
    if recent_fresh_links(rt, contact.id or 0) >= rt.config.security.fresh_links_per_day:
        record_request(rt, contact.id or 0, "fresh_link", "rate_limited", channel=channel.value)
        return "rate_limited"
    try:
        message = build_fresh_link(rt, contact, claims, channel)
    except InputError as exc:  # e.g. an imported newlink without this channel's wording
        log.warning("fresh link not sent: %s", exc)
        record_request(rt, contact.id or 0, "fresh_link", "failed", channel=channel.value, detail=str(exc)[:200])
        return "failed"
    own = channels is None
    adapters = channels if channels is not None else build_channels(rt.config)
    try:
        await adapters[channel].send(message)
    except SendError as exc:
        # The provider's text may quote the address: keep only the kind of error and its code.
        what = f"{type(exc).__name__} {exc.code or ''}".strip()
        log.warning("fresh link not sent: %s", what)
        record_request(rt, contact.id or 0, "fresh_link", "failed", channel=channel.value, detail=what)
        return "failed"
    finally:
        if own:
            for adapter in adapters.values():
                await adapter.close()
    record_request(rt, contact.id or 0, "fresh_link", "sent", channel=channel.value,
                   detail=message.meta.get("template_version"))
    return "sent"


def build_fresh_link(rt: Runtime, contact: Contact, claims: LinkClaims, channel: Channel) -> OutboundMessage:
    """The fresh-link message (``orchestrator.delivery.messages``, the one factory), in the person's
    language: the contact's locale, else the campaign's default, else ``contacts.default_locale``."""
    assert contact.id is not None
    fallback = rt.config.contacts.default_locale
    if claims.campaign_id is not None:
        with session_scope(rt.engine) as session:
            campaign = session.get(Campaign, claims.campaign_id)
            if campaign is not None:
                fallback = CampaignPlan.from_mapping(campaign.plan, stored=True).default_locale
    locale, version = wording_now(rt, FRESH_LINK_TEMPLATE, channel, language_of(contact.locale), default=fallback)
    address = (contact.email if channel is Channel.EMAIL else contact.phone) or ""
    return fresh_link_message(rt, contact_id=contact.id, person=contact, address=address, channel=channel,
                              campaign_id=claims.campaign_id, locale=locale, version=version)
