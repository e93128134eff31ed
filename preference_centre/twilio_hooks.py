"""Twilio webhooks: delivery status callbacks [S2] and inbound keywords [S4], each verified [S3].

A request whose ``X-Twilio-Signature`` does not match the *public* URL (``public.base_url`` + path +
query, so it works behind a TLS-terminating proxy that rewrites host, scheme or prefix) and the
posted parameters gets 403 and changes nothing. Callbacks are idempotent: a status already reached
(or passed) is a no-op; fields we do not know are accepted and ignored.

Inbound replies are matched on the whole body, case- and accent-insensitive, against the keyword
lists of ``[keywords]`` for every locale (a STOP is honoured whatever the contact's language). STOP
words withdraw SMS consent and suppress the number; START words re-grant it (lifting an opt-out, not
a bounce or an erasure); HELP words get a TwiML help reply. Each STOP/START is a ledger event with
source ``sms_keyword``, the exact reply as the wording, and the campaign of the last SMS sent.
"""

from __future__ import annotations

import logging
import unicodedata
from xml.sax.saxutils import escape

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from twilio.request_validator import RequestValidator

from orchestrator.consent import ledger
from orchestrator.config import Config
from orchestrator.consent.service import lift, withdraw
from orchestrator.contacts.addresses import normalise_sender
from orchestrator.domain.model import (
    Channel,
    ConsentAction,
    ConsentSource,
    DeliveryState,
    Purpose,
    SuppressionReason,
)
from orchestrator.consent.ledger import Proof
from orchestrator.runtime import Runtime
from orchestrator.store.db import session_scope
from orchestrator.store.models import Contact, OutboxMessage

log = logging.getLogger("reconsent.twilio")

#: Twilio MessageStatus → our delivery state
STATUS_MAP = {
    "accepted": DeliveryState.SENT, "scheduled": DeliveryState.SENT, "queued": DeliveryState.SENT,
    "sending": DeliveryState.SENT, "sent": DeliveryState.SENT, "delivered": DeliveryState.DELIVERED,
    "read": DeliveryState.DELIVERED, "undelivered": DeliveryState.FAILED, "failed": DeliveryState.FAILED,
    "canceled": DeliveryState.FAILED,
}
#: Twilio's own order, so the stored provider status never moves backwards either
PROVIDER_RANK = {"accepted": 0, "scheduled": 0, "queued": 1, "sending": 2, "sent": 3, "delivered": 4,
                 "undelivered": 4, "failed": 4, "canceled": 4, "read": 5}
#: callback ErrorCodes meaning the number cannot receive SMS at all: marked undeliverable
UNREACHABLE_CODES = {"30005", "30006", "21211", "21614"}

HELP_TEXT = {
    "fr": "{name} : messages sur vos choix de contact. STOP au {stop} pour ne plus en recevoir. Infos : {privacy}",
    "en": "{name}: messages about your contact choices. Reply STOP to {stop} to opt out. Info: {privacy}",
}


def keyword(body: str) -> str:
    """The whole body, trimmed, upper-cased, without accents or punctuation: 'Arrêté !' → 'ARRETE'.

    >>> keyword(" arrêt ")
    'ARRET'
    >>> keyword("Stop please")
    'STOPPLEASE'
    """
    text = unicodedata.normalize("NFKD", body.strip()).encode("ascii", "ignore").decode()
    return "".join(ch for ch in text.upper() if ch.isalnum())


def match_keyword(config: Config, body: str) -> tuple[str, str, list[str]] | None:
    """(kind, word, locales whose list has it) for a reply, or None. Kind is stop, start or help.

    >>> from orchestrator.config import Config
    >>> match_keyword(Config(), "Arrête")
    ('stop', 'ARRETE', ['fr'])
    >>> match_keyword(Config(), "info")[0], match_keyword(Config(), "stop maintenant")
    ('help', None)
    """
    word = keyword(body)
    if not word:
        return None
    kw = config.keywords
    for kind, lists in (("stop", kw.stop), ("start", kw.start), ("help", kw.help)):
        locales = [loc for loc, words in lists.items() if word in {keyword(w) for w in words}]
        if locales:
            return kind, word, locales
    return None


def signed_url(rt: Runtime, request: Request) -> str:
    """The URL Twilio signed: the public base URL, not the Host the proxy forwarded."""
    url = rt.url(request.url.path)
    if request.url.query:
        url += "?" + request.url.query
    return url


async def _verified_form(request: Request) -> dict[str, str] | None:
    rt: Runtime = request.app.state.rt
    form = await request.form()
    params = {k: str(v) for k, v in form.items()}
    signature = request.headers.get("x-twilio-signature", "")
    token = rt.config.sms.auth_token
    if not token or not signature or not RequestValidator(token).validate(signed_url(rt, request), params, signature):
        log.warning("Twilio webhook with a bad signature refused on %s", request.url.path)
        return None
    return params


async def status_callback(request: Request) -> Response:
    params = await _verified_form(request)
    if params is None:
        return PlainTextResponse("forbidden", status_code=403)
    rt: Runtime = request.app.state.rt
    sid = params.get("MessageSid") or params.get("SmsSid") or ""
    status = params.get("MessageStatus", params.get("SmsStatus", "")).lower()
    target = STATUS_MAP.get(status)
    if not sid or target is None:
        return PlainTextResponse("ignored")
    error = (params.get("ErrorCode") or "").strip()[:10]
    now = rt.clock.now()
    with session_scope(rt.engine) as session:
        row = session.execute(select(OutboxMessage).where(OutboxMessage.provider_id == sid)).scalar_one_or_none()
        if row is None:
            return PlainTextResponse("unknown message")
        if target is DeliveryState.FAILED and error in UNREACHABLE_CODES:
            target = DeliveryState.BOUNCED
        if PROVIDER_RANK.get(status, 0) > PROVIDER_RANK.get(row.provider_status or "", -1):
            row.provider_status = status
            session.add(row)
        if not DeliveryState.can_move(DeliveryState(row.status), target):
            return PlainTextResponse("ok")  # repeated or out of order: nothing moves backwards
        row.status = target.value
        row.updated_at = now
        if error:
            row.last_error = f"Twilio error {error}"
        session.add(row)
        reason = (SuppressionReason.SMS_STOP if error == "21610"
                  else SuppressionReason.BOUNCED if target is DeliveryState.BOUNCED else None)
        if reason is not None:
            contact = session.get(Contact, row.contact_id)
            if contact is not None:
                withdraw(session, contact.phone_key, Channel.SMS.value, reason, f"twilio:{error}", now)
    return PlainTextResponse("ok")


def _twiml(message: str | None) -> Response:
    body = f"<Message>{escape(message)}</Message>" if message else ""
    return Response(f'<?xml version="1.0" encoding="UTF-8"?><Response>{body}</Response>',
                    media_type="application/xml")


def help_text(config: Config, locale: str) -> str:
    s = config.sender
    template = HELP_TEXT.get(locale) or HELP_TEXT["fr"]
    return template.format(name=s.name, stop=s.stop_number, privacy=s.privacy_url)


async def inbound(request: Request) -> Response:
    params = await _verified_form(request)
    if params is None:
        return PlainTextResponse("forbidden", status_code=403)
    rt: Runtime = request.app.state.rt
    body = params.get("Body", "")
    sender = params.get("From", "")
    matched = match_keyword(rt.config, body)
    if matched is None or not sender:
        return _twiml(None)
    kind, word, locales = matched
    key = rt.key_for(normalise_sender(sender, rt.config.contacts.default_region))
    now = rt.clock.now()
    with session_scope(rt.engine) as session:
        contacts = list(session.execute(
            select(Contact).where(Contact.phone_key == key, Contact.erased_at.is_(None))  # type: ignore[union-attr]
        ).scalars())
        if kind == "help":
            known = [c.locale for c in contacts if c.locale in locales or c.locale in HELP_TEXT]
            return _twiml(help_text(rt.config, known[0] if known else locales[0]))
        if kind == "stop":
            # A STOP is an answer: no further step of a pending campaign for this person [O3].
            withdraw(session, key, Channel.SMS.value, SuppressionReason.SMS_STOP, ConsentSource.SMS_KEYWORD.value, now,
                     decline=[c.id for c in contacts if c.id is not None])
            action = ConsentAction.WITHDRAWN
        else:
            lift(session, key, Channel.SMS.value)
            action = ConsentAction.GRANTED
        locale = next((c.locale for c in contacts if c.locale in locales), locales[0])
        wording = ledger.remember_wording(session, name="sms_keyword", locale=locale,
                                          text_shown=body.strip()[:40], at=now)
        for contact in contacts:
            assert contact.id is not None
            last = session.execute(
                select(OutboxMessage.campaign_id, OutboxMessage.step)
                .where(OutboxMessage.contact_id == contact.id, OutboxMessage.channel == Channel.SMS.value,
                       OutboxMessage.sent_at.is_not(None))  # type: ignore[union-attr]
                .order_by(OutboxMessage.sent_at.desc()).limit(1)  # type: ignore[union-attr]
            ).first()
            proof = Proof(source=ConsentSource.SMS_KEYWORD, campaign_id=last[0] if last else None,
                          step=last[1] if last else None, wording_name=f"sms_keyword:{word}",
                          wording_hash=wording, locale=locale)
            ledger.append(session, contact_id=contact.id, channel=Channel.SMS, purpose=Purpose.MARKETING,
                          action=action, at=now, proof=proof)
    log.info("SMS keyword %s (%s) applied to %d contact(s)", word, kind, len(contacts))
    return _twiml(None)
