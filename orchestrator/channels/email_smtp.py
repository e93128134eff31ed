"""Email through an SMTP relay with aiosmtplib: a pool of persistent connections [E3].

Library exceptions are translated here and nowhere else: 4xx, timeouts and dropped connections are
transient; 5xx is permanent; 5.1.x (bad mailbox) also suppresses the address (reason bounced).
"""

from __future__ import annotations

import asyncio
import re

import aiosmtplib

from orchestrator.channels.mime import build_email
from orchestrator.config import EmailConfig
from orchestrator.domain.message import OutboundMessage, SendResult
from orchestrator.domain.model import Channel, SuppressionReason
from orchestrator.errors import PermanentSendError, TransientSendError

_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")


def classify_reply(code: int, text: str) -> TransientSendError | PermanentSendError:
    """Map an SMTP reply to our send errors.

    >>> classify_reply(550, "5.1.1 no such user").suppress
    'bounced'
    >>> type(classify_reply(451, "4.3.0 try later")).__name__
    'TransientSendError'
    """
    detail = f"{code} {text}".strip()
    if 400 <= code < 500:
        return TransientSendError(f"SMTP {detail}", code=str(code))
    enhanced = _ENHANCED.search(text or "")
    bad_mailbox = (enhanced is not None and enhanced.group(1) == "5" and enhanced.group(2) == "1") or (
        enhanced is None and code in (550, 551, 553)
    )
    return PermanentSendError(
        f"SMTP {detail}", code=str(code), suppress=SuppressionReason.BOUNCED.value if bad_mailbox else None
    )


class SmtpChannel:
    channel = Channel.EMAIL

    def __init__(self, config: EmailConfig) -> None:
        self.config = config
        self._idle: asyncio.LifoQueue[aiosmtplib.SMTP] = asyncio.LifoQueue()
        self._slots = asyncio.Semaphore(config.pool_size)
        self.connections_opened = 0

    async def _connect(self) -> aiosmtplib.SMTP:
        cfg = self.config
        client = aiosmtplib.SMTP(
            hostname=cfg.host,
            port=cfg.port,
            use_tls=cfg.use_tls,
            start_tls=cfg.starttls if not cfg.use_tls else False,
            timeout=cfg.timeout,
        )
        await client.connect()
        if cfg.username:
            await client.login(cfg.username, cfg.password)
        self.connections_opened += 1
        return client

    async def send(self, message: OutboundMessage) -> SendResult:
        mail = build_email(message)
        async with self._slots:
            client = self._idle.get_nowait() if not self._idle.empty() else None
            try:
                if client is None or not client.is_connected:
                    client = await self._connect()
                errors, _ = await client.send_message(mail)
            except aiosmtplib.SMTPRecipientsRefused as exc:
                await self._recover(client)
                refusal = exc.recipients[0] if exc.recipients else None
                raise classify_reply(refusal.code if refusal else 550, refusal.message if refusal else "") from None
            except aiosmtplib.SMTPResponseException as exc:
                if exc.code == 421:  # the server is closing the connection
                    await _drop(client)
                else:
                    await self._recover(client)
                raise classify_reply(exc.code, exc.message) from None
            except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as exc:
                await _drop(client)
                raise TransientSendError(f"SMTP connection problem: {type(exc).__name__}: {exc}") from None
            self._release(client)
        if errors:
            code, text = next(iter(errors.values()))
            raise classify_reply(code, text)
        return SendResult(provider_id=str(mail["Message-ID"]), status="sent")

    async def _recover(self, client: aiosmtplib.SMTP | None) -> None:
        """After a refused transaction: RSET and keep the connection, or drop it if that fails."""
        if client is None:
            return
        try:
            await client.rset()
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError):
            await _drop(client)
            return
        self._release(client)

    def _release(self, client: aiosmtplib.SMTP | None) -> None:
        if client is not None and client.is_connected:
            self._idle.put_nowait(client)

    async def close(self) -> None:
        while not self._idle.empty():
            await _drop(self._idle.get_nowait())


async def _drop(client: aiosmtplib.SMTP | None) -> None:
    if client is None:
        return
    try:
        if client.is_connected:
            await client.quit()
    except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError):
        client.close()
