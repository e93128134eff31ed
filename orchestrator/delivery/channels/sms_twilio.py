"""SMS through Twilio's official client, asynchronously (``create_async``) [S1, S5].

``api_base_url`` points the client elsewhere (a regional edge, or a loopback stand-in in tests).
Each sender (messaging service or number) has its own token bucket in segments per second, taken
before every request; a 429/20429 answer holds that sender for ``rate_limit_pause_seconds``.

Twilio errors are translated here: 21610 (recipient opted out at the carrier) suppresses with reason
sms_stop; 21211/21614 (not a valid / not a mobile number) mark the number undeliverable — the same
suppression as an email hard bounce (reason bounced, on the sms channel only), so no campaign tries
it again while the contact's email stays usable; 429/20429 and 5xx are transient.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from orchestrator.config import SmsConfig
from orchestrator.delivery.channels.rate import TokenBucket
from orchestrator.domain.message import OutboundMessage, SendResult
from orchestrator.domain.model import Channel, SuppressionReason
from orchestrator.domain.segments import count_segments
from orchestrator.errors import PermanentSendError, TransientSendError

log = logging.getLogger("reconsent.dispatch")
OPTED_OUT = 21610
#: messages to one number read when looking up an unknown outcome (newest first)
LOOKUP_LIMIT = 20
#: how much earlier than the row's mark Twilio's clock may date the message
LOOKUP_MARGIN = timedelta(minutes=10)
INVALID_NUMBERS = {21211, 21614, 21408, 21612}
RATE_LIMITED = {20429, 14107}


def classify_twilio(status: int, code: int | None, msg: str, *,
                    pause: float = 5.0) -> TransientSendError | PermanentSendError:
    """Map a Twilio REST error to our send errors.

    >>> classify_twilio(400, 21610, "unsubscribed").suppress
    'sms_stop'
    >>> classify_twilio(400, 21614, "not a mobile number").suppress
    'bounced'
    >>> type(classify_twilio(429, 20429, "too many")).__name__
    'TransientSendError'
    """
    detail = f"Twilio {status} {code or ''}: {msg}".strip()
    if code == OPTED_OUT:
        return PermanentSendError(detail, code=str(code), suppress=SuppressionReason.SMS_STOP.value)
    if code in INVALID_NUMBERS:
        return PermanentSendError(detail, code=str(code), suppress=SuppressionReason.BOUNCED.value)
    if status == 429 or code in RATE_LIMITED:
        return TransientSendError(detail, code=str(code or status), retry_after=pause)
    if status >= 500:
        return TransientSendError(detail, code=str(code or status))
    return PermanentSendError(detail, code=str(code or status))


class TwilioChannel:
    channel = Channel.SMS

    def __init__(self, config: SmsConfig, *, sms_from: str, buckets: dict[str, TokenBucket] | None = None) -> None:
        self.config = config
        self.sms_from = sms_from
        self._client: Client | None = None
        #: one bucket per sender id; tests pass buckets with a fake clock
        self.buckets: dict[str, TokenBucket] = buckets if buckets is not None else {}

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

    def bucket(self, sender: str) -> TokenBucket:
        if sender not in self.buckets:
            self.buckets[sender] = TokenBucket(self.config.segments_per_second)
        return self.buckets[sender]

    async def send(self, message: OutboundMessage) -> SendResult:
        client = self._get_client()
        kwargs: dict[str, object] = {"to": message.recipient, "body": message.text}
        if self.config.messaging_service_sid:
            sender = self.config.messaging_service_sid
            kwargs["messaging_service_sid"] = sender
        else:
            sender = message.sender or self.sms_from
            kwargs["from_"] = sender
        if message.status_callback:
            kwargs["status_callback"] = message.status_callback
        if message.validity_period:
            kwargs["validity_period"] = message.validity_period
        bucket = self.bucket(sender)
        await bucket.take(count_segments(message.text).segments)
        try:
            created = await client.messages.create_async(**kwargs)
        except TwilioRestException as exc:
            error = classify_twilio(exc.status, exc.code, str(exc.msg), pause=self.config.rate_limit_pause_seconds)
            if isinstance(error, TransientSendError) and error.retry_after:
                bucket.hold(error.retry_after)
            raise error from None
        except (TimeoutError, TwilioException, aiohttp.ClientError, OSError) as exc:
            raise TransientSendError(f"Twilio unreachable: {type(exc).__name__}") from None
        return SendResult(provider_id=str(created.sid), status=str(created.status or "queued"))

    async def find_sent(self, message: OutboundMessage, since: datetime) -> SendResult | None:
        """The message Twilio already accepted for this row, if any: the last :data:`LOOKUP_LIMIT`
        messages to the same number (``To``, and ``From`` without a messaging service; newest first),
        matched on the exact body (it holds the row's own short link) and a creation date after
        ``since`` less :data:`LOOKUP_MARGIN` (clock skew). The date is compared here rather than with
        Twilio's ``DateSent`` filter: a message still queued when its worker died has no sent date yet,
        and is exactly the one to find. None when nothing matches or Twilio cannot be asked (logged;
        the caller sends)."""
        client = self._get_client()
        kwargs: dict[str, object] = {"to": message.recipient, "limit": LOOKUP_LIMIT}
        if not self.config.messaging_service_sid:
            kwargs["from_"] = message.sender or self.sms_from
        try:
            listed = await client.messages.list_async(**kwargs)
        except (TimeoutError, TwilioException, aiohttp.ClientError, OSError) as exc:
            log.warning("could not look a message up at Twilio (%s); sending it", type(exc).__name__)
            return None
        body = message.text.strip()
        for found in listed:
            created = found.date_created
            if (found.body or "").strip() != body or (created is not None and created < since - LOOKUP_MARGIN):
                continue
            if self.config.messaging_service_sid and found.messaging_service_sid not in (
                    None, self.config.messaging_service_sid):
                continue
            return SendResult(provider_id=str(found.sid), status=str(found.status or "queued"))
        return None

    async def close(self) -> None:
        if self._client is not None:
            http = self._client.http_client
            close = getattr(http, "close", None)
            if close is not None:
                await close()
            self._client = None
