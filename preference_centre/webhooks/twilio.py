"""Twilio webhooks: delivery status callbacks [S2] and inbound keywords [S4], each verified [S3].

A request whose ``X-Twilio-Signature`` does not match the *public* URL (``public.base_url`` + path +
query, so it works behind a TLS-terminating proxy that rewrites host, scheme or prefix) and the
posted parameters gets 403 and changes nothing. Otherwise the handler parses the form and calls a
service: :func:`orchestrator.delivery.sms_status.apply_sms_status` for a status callback (fields we
do not know are accepted and ignored), :func:`orchestrator.consent.sms_replies.sms_reply` for a reply
(STOP, START, OUI/NON, HELP, anything else: the rules live there), whose answer goes back as TwiML.
"""

from __future__ import annotations

import logging
from xml.sax.saxutils import escape

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from twilio.request_validator import RequestValidator

from orchestrator.consent.sms_replies import sms_reply
from orchestrator.delivery.sms_status import apply_sms_status
from orchestrator.runtime import Runtime

log = logging.getLogger("reconsent.twilio")


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
    sid = params.get("MessageSid") or params.get("SmsSid") or ""
    status = params.get("MessageStatus", params.get("SmsStatus", "")).lower()
    outcome = apply_sms_status(request.app.state.rt, sid, status, params.get("ErrorCode") or "")
    return PlainTextResponse(outcome)


def twiml(message: str | None) -> Response:
    """A TwiML answer: one message, or none.

    >>> twiml("a < b").body
    b'<?xml version="1.0" encoding="UTF-8"?><Response><Message>a &lt; b</Message></Response>'
    """
    body = f"<Message>{escape(message)}</Message>" if message else ""
    return Response(f'<?xml version="1.0" encoding="UTF-8"?><Response>{body}</Response>',
                    media_type="application/xml")


async def inbound(request: Request) -> Response:
    params = await _verified_form(request)
    if params is None:
        return PlainTextResponse("forbidden", status_code=403)
    sid = params.get("MessageSid") or params.get("SmsSid") or ""
    return twiml(sms_reply(request.app.state.rt, params.get("From", ""), params.get("Body", ""), sid))
