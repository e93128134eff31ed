"""Twilio webhooks: delivery status callbacks [S2] and inbound keywords [S4], each verified [S3].

A request whose ``X-Twilio-Signature`` does not match the public URL and parameters gets 403 and
changes nothing. Callbacks are idempotent: a status already reached (or passed) is a no-op.
"""

from __future__ import annotations

import logging
import unicodedata
from xml.sax.saxutils import escape

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from twilio.request_validator import RequestValidator

from orchestrator import ledger
from orchestrator.consent import is_suppressed, suppress
from orchestrator.domain.model import (
    Channel,
    ConsentAction,
    ConsentSource,
    DeliveryState,
    Purpose,
    SuppressionReason,
)
from orchestrator.ledger import Proof
from orchestrator.runtime import Runtime
from orchestrator.store.db import session_scope
from orchestrator.store.models import Contact, OutboxMessage, SuppressionEntry

log = logging.getLogger("reconsent.twilio")

STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT", "ARRET", "ARRETE"}
START_WORDS = {"START", "UNSTOP"}
HELP_WORDS = {"HELP", "INFO"}

#: Twilio MessageStatus → our delivery state
STATUS_MAP = {
    "accepted": DeliveryState.SENT, "queued": DeliveryState.SENT, "sending": DeliveryState.SENT,
    "sent": DeliveryState.SENT, "delivered": DeliveryState.DELIVERED, "read": DeliveryState.DELIVERED,
    "undelivered": DeliveryState.FAILED, "failed": DeliveryState.FAILED, "canceled": DeliveryState.FAILED,
}


def keyword(body: str) -> str:
    """The whole body, trimmed, upper-cased, without accents or punctuation: 'Arrêté !' → 'ARRETE'.

    >>> keyword(" arrêt ")
    'ARRET'
    """
    text = unicodedata.normalize("NFKD", body.strip()).encode("ascii", "ignore").decode()
    return "".join(ch for ch in text.upper() if ch.isalnum())


async def _verified_form(request: Request) -> dict[str, str] | None:
    rt: Runtime = request.app.state.rt
    form = await request.form()
    params = {k: str(v) for k, v in form.items()}
    url = rt.url(request.url.path)
    if request.url.query:
        url += "?" + request.url.query
    signature = request.headers.get("x-twilio-signature", "")
    validator = RequestValidator(rt.config.sms.auth_token or "")
    if not rt.config.sms.auth_token or not validator.validate(url, params, signature):
        log.warning("Twilio webhook with a bad signature refused on %s", request.url.path)
        return None
    return params


async def status_callback(request: Request) -> Response:
    params = await _verified_form(request)
    if params is None:
        return PlainTextResponse("forbidden", status_code=403)
    rt: Runtime = request.app.state.rt
    sid = params.get("MessageSid") or params.get("SmsSid") or ""
    target = STATUS_MAP.get(params.get("MessageStatus", "").lower())
    if not sid or target is None:
        return PlainTextResponse("ignored")
    with session_scope(rt.engine) as session:
        row = session.execute(select(OutboxMessage).where(OutboxMessage.provider_id == sid)).scalar_one_or_none()
        if row is None:
            return PlainTextResponse("unknown message")
        if DeliveryState.can_move(DeliveryState(row.status), target):
            row.status = target.value
            row.updated_at = rt.clock.now()
            if target is DeliveryState.FAILED and params.get("ErrorCode"):
                row.last_error = f"Twilio error {params['ErrorCode'][:10]}"
            session.add(row)
            if params.get("ErrorCode") == "21610":
                contact = session.get(Contact, row.contact_id)
                if contact is not None:
                    suppress(session, contact.phone_key, Channel.SMS.value, SuppressionReason.SMS_STOP,
                             "twilio:21610", rt.clock.now())
    return PlainTextResponse("ok")


def _twiml(message: str | None) -> Response:
    body = f"<Message>{escape(message)}</Message>" if message else ""
    return Response(f'<?xml version="1.0" encoding="UTF-8"?><Response>{body}</Response>',
                    media_type="application/xml")


async def inbound(request: Request) -> Response:
    params = await _verified_form(request)
    if params is None:
        return PlainTextResponse("forbidden", status_code=403)
    rt: Runtime = request.app.state.rt
    word = keyword(params.get("Body", ""))
    sender = params.get("From", "")
    if word not in STOP_WORDS | START_WORDS | HELP_WORDS or not sender:
        return _twiml(None)
    if word in HELP_WORDS:
        s = rt.config.sender
        return _twiml(f"{s.name}: STOP au {s.stop_number} pour ne plus recevoir de SMS. {s.privacy_url}")
    key = rt.key_for(sender)
    now = rt.clock.now()
    proof = Proof(source=ConsentSource.SMS_KEYWORD, wording_name="sms_keyword", wording_hash=word,
                  ip=None, user_agent=None)
    with session_scope(rt.engine) as session:
        contacts = list(session.execute(select(Contact).where(Contact.phone_key == key)).scalars())
        if word in STOP_WORDS:
            suppress(session, key, Channel.SMS.value, SuppressionReason.SMS_STOP, "sms_keyword", now)
            action = ConsentAction.WITHDRAWN
        else:
            if is_suppressed(session, key, Channel.SMS.value):
                entry = session.get(SuppressionEntry, (key, Channel.SMS.value))
                if entry is not None and entry.reason in (SuppressionReason.SMS_STOP, SuppressionReason.UNSUBSCRIBED):
                    session.delete(entry)
            action = ConsentAction.GRANTED
        for contact in contacts:
            ledger.append(session, contact_id=contact.id, channel=Channel.SMS, purpose=Purpose.MARKETING,  # type: ignore[arg-type]
                          action=action, at=now, proof=proof)
    return _twiml(None)
