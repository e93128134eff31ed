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
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from orchestrator.consent.standing import iso
from orchestrator.delivery.channels import MessageChannel, build_channels
from orchestrator.delivery.messages import FRESH_LINK_TEMPLATE, fresh_link_message, language_of, page_links
from orchestrator.domain.campaign import CampaignPlan
from orchestrator.domain.message import OutboundMessage
from orchestrator.domain.model import Channel, SuppressionReason
from orchestrator.errors import InputError, NotFoundError, SendError, StateError
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
    """Fresh links sent to this person in the last 24 h, or being sent now."""
    with session_scope(rt.engine) as session:
        return _recent(session, contact_id, rt.clock.now() - timedelta(hours=24))


def _recent(session: Session, contact_id: int, since: datetime) -> int:
    return int(session.execute(select(func.count()).select_from(SelfServiceRequest).where(
        col(SelfServiceRequest.contact_id) == contact_id, col(SelfServiceRequest.kind) == "fresh_link",
        col(SelfServiceRequest.outcome).in_(_COUNTED), col(SelfServiceRequest.requested_at) >= since)).scalar_one())


#: the outcomes that use up one of the day's fresh links: sent, or being sent (a request in flight, or
#: one whose process died mid-send: it may have gone out, so it counts)
_COUNTED = ("sent", "sending")


def reserve_fresh_link(rt: Runtime, contact_id: int, channel: Channel) -> int | None:
    """Take one of the person's ``fresh_links_per_day`` atomically: the id of a new ``sending`` request,
    or None (a ``rate_limited`` request is recorded) when the day's links are used up.

    Concurrent requests for one person — threads of one server, or several servers — queue here:
    on PostgreSQL behind a row lock on the contact, on SQLite behind the database's write lock that
    the INSERT (the transaction's first write) takes; each then counts what the others committed.
    Before, the count and the "sent" record were separated by the send itself, and 15 simultaneous
    requests all passed the count: 15 emails.
    """
    now = rt.clock.now()
    with session_scope(rt.engine) as session:
        session.execute(select(col(Contact.id)).where(col(Contact.id) == contact_id).with_for_update())
        request = SelfServiceRequest(contact_id=contact_id, kind="fresh_link", channel=channel.value,
                                     outcome="sending", requested_at=now)
        session.add(request)
        session.flush()
        assert request.id is not None
        used = _recent(session, contact_id, now - timedelta(hours=24)) - 1  # not counting this one
        if used >= rt.config.security.fresh_links_per_day:
            request.outcome = "rate_limited"
            session.add(request)
            return None
        return request.id


def finish_fresh_link(rt: Runtime, request_id: int, outcome: str, *, detail: str | None = None) -> None:
    """Record how a reserved fresh link ended: ``sent`` or ``failed``."""
    with session_scope(rt.engine) as session:
        request = session.get(SelfServiceRequest, request_id)
        assert request is not None
        request.outcome, request.detail = outcome, detail
        session.add(request)


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
    request_id = reserve_fresh_link(rt, contact.id or 0, channel)
    if request_id is None:
        return "rate_limited"
    try:
        message = build_fresh_link(rt, contact, claims, channel, request_id=request_id)
    except InputError as exc:  # e.g. an imported newlink without this channel's wording
        log.warning("fresh link not sent: %s", exc)
        finish_fresh_link(rt, request_id, "failed", detail=str(exc)[:200])
        return "failed"
    own = channels is None
    adapters = channels if channels is not None else build_channels(rt.config)
    try:
        await adapters[channel].send(message)
    except SendError as exc:
        # The provider's text may quote the address: keep only the kind of error and its code.
        what = f"{type(exc).__name__} {exc.code or ''}".strip()
        log.warning("fresh link not sent: %s", what)
        finish_fresh_link(rt, request_id, "failed", detail=what)
        return "failed"
    finally:
        if own:
            for adapter in adapters.values():
                await adapter.close()
    finish_fresh_link(rt, request_id, "sent", detail=message.meta.get("template_version"))
    return "sent"


def build_fresh_link(rt: Runtime, contact: Contact, claims: LinkClaims, channel: Channel, *,
                     request_id: int | None = None) -> OutboundMessage:
    """The fresh-link message (``orchestrator.delivery.messages``, the one factory), in the person's
    language: the contact's locale, else the campaign's default, else ``contacts.default_locale``.
    ``request_id`` (the reserved request) makes its Message-ID and idempotency key its own."""
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
                              campaign_id=claims.campaign_id, locale=locale, version=version, request_id=request_id)


def links_for(rt: Runtime, external_id: str, *, campaign_id: int | None = None,
              channel: str | None = None) -> dict[str, Any]:
    """A fresh preference-page link (and its unsubscribe link) for the contact with this CRM id,
    signed as the messages sign theirs (``orchestrator.delivery.messages.page_links``), for the
    company's own site or emails (the HTTP API's ``POST /contacts/{external_id}/links``).
    NotFoundError for an unknown contact or campaign; StateError for an anonymised one."""
    if channel is not None and channel not in (Channel.EMAIL.value, Channel.SMS.value):
        raise InputError(f"channel: expected email or sms, got {channel!r}")
    with session_scope(rt.engine) as session:
        contact = session.execute(select(Contact).where(col(Contact.external_id) == external_id)).scalars().first()
        if contact is None or contact.id is None:
            raise NotFoundError("external_id: no contact has this id (import it first)")
        if contact.erased_at is not None:
            raise StateError("external_id: this contact was anonymised; it has no preference page any more")
        if campaign_id is not None and session.get(Campaign, campaign_id) is None:
            raise NotFoundError(f"campaign_id: no campaign {campaign_id}")
        contact_id = contact.id
    links = page_links(rt, LinkClaims(contact_id=contact_id, campaign_id=campaign_id, channel=channel))
    expires = rt.clock.now() + timedelta(days=rt.config.security.page_link_max_age_days)
    return {"page_url": links.page, "unsubscribe_url": links.unsubscribe, "expires_at": iso(expires)}
