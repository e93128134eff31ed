"""SMS through Twilio's official client, asynchronously (``create_async``) [S1, S5].

``api_base_url`` points the client elsewhere (a regional edge, or a loopback stand-in in tests).
Twilio errors are translated here: 21610 (recipient opted out) suppresses, 21211/21614 (not a valid
mobile number) fail for good, 429/20429 and 5xx are transient.
"""

from __future__ import annotations

import asyncio

import aiohttp

from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from orchestrator.config import SmsConfig
from orchestrator.domain.message import OutboundMessage, SendResult
from orchestrator.domain.model import Channel, SuppressionReason
from orchestrator.errors import PermanentSendError, TransientSendError

OPTED_OUT = 21610
INVALID_NUMBERS = {21211, 21614, 21408, 21612}
RATE_LIMITED = {20429, 14107}


def classify_twilio(status: int, code: int | None, msg: str) -> TransientSendError | PermanentSendError:
    """Map a Twilio REST error to our send errors.

    >>> classify_twilio(400, 21610, "unsubscribed").suppress
    'sms_stop'
    >>> type(classify_twilio(429, 20429, "too many")).__name__
    'TransientSendError'
    """
    detail = f"Twilio {status} {code or ''}: {msg}".strip()
    if code == OPTED_OUT:
        return PermanentSendError(detail, code=str(code), suppress=SuppressionReason.SMS_STOP.value)
    if code in INVALID_NUMBERS:
        return PermanentSendError(detail, code=str(code), suppress=None)
    if status == 429 or code in RATE_LIMITED or status >= 500:
        return TransientSendError(detail, code=str(code or status))
    return PermanentSendError(detail, code=str(code or status))


class TwilioChannel:
    channel = Channel.SMS

    def __init__(self, config: SmsConfig, *, sms_from: str) -> None:
        self.config = config
        self.sms_from = sms_from
        self._client: Client | None = None

    def _get_client(self) -> Client:
        # The aiohttp session must be created inside the running loop.
        if self._client is None:
            client = Client(
                self.config.account_sid,
                self.config.auth_token,
                http_client=AsyncTwilioHttpClient(max_retries=1),
            )
            if self.config.api_base_url:
                client.api.base_url = self.config.api_base_url.rstrip("/")
            self._client = client
        return self._client

    async def send(self, message: OutboundMessage) -> SendResult:
        client = self._get_client()
        kwargs: dict[str, object] = {"to": message.recipient, "body": message.text}
        if self.config.messaging_service_sid:
            kwargs["messaging_service_sid"] = self.config.messaging_service_sid
        else:
            kwargs["from_"] = message.sender or self.sms_from
        if message.status_callback:
            kwargs["status_callback"] = message.status_callback
        if message.validity_period:
            kwargs["validity_period"] = message.validity_period
        try:
            created = await client.messages.create_async(**kwargs)  # type: ignore[arg-type]
        except TwilioRestException as exc:
            raise classify_twilio(exc.status, exc.code, str(exc.msg)) from None
        except (TwilioException, aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            raise TransientSendError(f"Twilio unreachable: {type(exc).__name__}") from None
        return SendResult(provider_id=str(created.sid), status=str(created.status or "queued"))

    async def close(self) -> None:
        if self._client is not None:
            http = self._client.http_client
            close = getattr(http, "close", None)
            if close is not None:
                await close()
            self._client = None
