"""Email through an SMTP relay with aiosmtplib: a pool of persistent connections [E3].

``pool_size`` connections are opened on demand and reused across messages (LIFO, so a quiet period
lets the extra ones time out at the relay while the hot one stays warm). STARTTLS or implicit TLS and
AUTH come from config; ``tls_ca_file`` names the CAs trusted for the relay's certificate.

A pooled connection the relay has dropped is noticed at MAIL FROM — before the relay has accepted
anything — and replaced by a fresh one for the same message, so a drop between messages costs no
retry and can never duplicate a message.

Library exceptions are translated here and nowhere else: 4xx, timeouts and dropped connections are
transient; 5xx is permanent; 5.1.x (bad mailbox) also suppresses the address (reason bounced). A
message the relay cannot take at all (unencodable, SMTPUTF8 refused) is permanent for that message
only: the connection goes back to the pool and the queue moves on.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from email.utils import getaddresses

import aiosmtplib

from orchestrator.config import EmailConfig
from orchestrator.delivery.channels.mime import _SIMPLE_ADDR, DkimSigner, message_bytes
from orchestrator.domain.message import OutboundMessage, SendResult
from orchestrator.domain.model import Channel, SuppressionReason
from orchestrator.errors import ConfigError, PermanentSendError, TransientSendError

_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_NET_ERRORS = (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError)


def classify_reply(code: int, text: str) -> TransientSendError | PermanentSendError:
    """Map an SMTP reply to our send errors.

    >>> classify_reply(550, "5.1.1 no such user").suppress
    'bounced'
    >>> type(classify_reply(451, "4.3.0 try later")).__name__
    'TransientSendError'
    >>> classify_reply(554, "5.7.1 rejected by policy").suppress is None
    True
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


def tls_context(cfg: EmailConfig) -> ssl.SSLContext | None:
    """The context used to verify the relay, or None for aiosmtplib's default (system CAs)."""
    if not cfg.tls_ca_file:
        return None
    try:
        return ssl.create_default_context(cafile=cfg.tls_ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"email.tls_ca_file: cannot load {cfg.tls_ca_file}: {exc}") from None


class _Stale(Exception):
    """A pooled connection turned out to be dead before the relay accepted anything."""


class SmtpChannel:
    channel = Channel.EMAIL

    def __init__(self, config: EmailConfig, *, signer: DkimSigner | None = None) -> None:
        self.config = config
        self.signer = signer
        self._tls = tls_context(config)
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
            tls_context=self._tls,
            timeout=cfg.timeout,
            local_hostname=cfg.helo_name or None,
        )
        try:
            await client.connect()
            if cfg.username:
                await client.login(cfg.username, cfg.password)
        except aiosmtplib.SMTPAuthenticationError as exc:
            client.close()
            # Wrong credentials will not fix themselves, but the message is fine: transient, so it
            # goes out once the operator fixes the password (and `reconsent doctor` says so).
            raise TransientSendError(f"SMTP authentication refused ({exc.code}): check email.username/password",
                                     code=str(exc.code)) from None
        except BaseException:
            client.close()
            raise
        self.connections_opened += 1
        return client

    async def send(self, message: OutboundMessage) -> SendResult:
        data, message_id = message_bytes(message, self.signer)
        # the envelope sender (email.return_path) receives the bounces; From stays the brand's address
        sender = message.return_path or message.sender
        recipient = message.recipient
        if _SIMPLE_ADDR.fullmatch(recipient):  # what getaddresses returns for a bare address, 70x cheaper
            recipients = [recipient]
        else:
            recipients = [addr for _, addr in getaddresses([recipient])] or [recipient]
        async with self._slots:
            client = self._idle.get_nowait() if not self._idle.empty() else None
            reused = client is not None and client.is_connected
            try:
                if not reused:
                    await _drop(client)
                    client = await self._connect()
                assert client is not None
                try:
                    await self._transaction(client, sender, recipients, data, reused=reused)
                except _Stale:
                    await _drop(client)
                    client = await self._connect()
                    await self._transaction(client, sender, recipients, data, reused=False)
            except aiosmtplib.SMTPRecipientsRefused as exc:
                await self._recover(client)
                refusal = exc.recipients[0] if exc.recipients else None
                raise classify_reply(refusal.code if refusal else 550, refusal.message if refusal else "") from None
            except aiosmtplib.SMTPNotSupported as exc:
                # e.g. an internationalised address and a relay without SMTPUTF8: this message only
                await self._recover(client)
                raise PermanentSendError(f"SMTP relay cannot take this message: {exc}"[:300]) from None
            except aiosmtplib.SMTPResponseException as exc:
                if exc.code == 421:  # the server is closing the connection
                    await _drop(client)
                else:
                    await self._recover(client)
                raise classify_reply(exc.code, exc.message) from None
            except (TransientSendError, PermanentSendError):
                raise
            except _NET_ERRORS as exc:
                await _drop(client)
                raise TransientSendError(f"SMTP connection problem: {type(exc).__name__}: {exc}") from None
            self._release(client)
        return SendResult(provider_id=message_id, status="sent")

    async def _transaction(self, client: aiosmtplib.SMTP, sender: str, recipients: list[str], data: bytes,
                           *, reused: bool) -> None:
        try:
            if client.is_ehlo_or_helo_needed:
                await client.ehlo()
            utf8 = not all(a.isascii() for a in [sender, *recipients])
            if utf8 and not client.supports_extension("smtputf8"):
                raise aiosmtplib.SMTPNotSupported("internationalised address, and the relay lacks SMTPUTF8")
            await client.mail(sender, options=["SMTPUTF8"] if utf8 else None, encoding="utf-8" if utf8 else "ascii")
        except (aiosmtplib.SMTPServerDisconnected, ConnectionError, aiosmtplib.SMTPConnectError):
            if reused:
                raise _Stale() from None
            raise
        except aiosmtplib.SMTPResponseException as exc:
            if reused and exc.code == 421:
                raise _Stale() from None
            raise
        refused: dict[str, aiosmtplib.SMTPResponse] = {}
        for rcpt in recipients:
            try:
                await client.rcpt(rcpt, encoding="utf-8" if utf8 else "ascii")
            except aiosmtplib.SMTPRecipientRefused as exc:
                refused[rcpt] = aiosmtplib.SMTPResponse(exc.code, exc.message)
        if len(refused) == len(recipients):
            raise aiosmtplib.SMTPRecipientsRefused(
                [aiosmtplib.SMTPRecipientRefused(r.code, r.message, a) for a, r in refused.items()]
            )
        await client.data(data)

    async def _recover(self, client: aiosmtplib.SMTP | None) -> None:
        """After a refused transaction: RSET and keep the connection, or drop it if that fails."""
        if client is None:
            return
        try:
            await client.rset()
        except _NET_ERRORS:
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
    except _NET_ERRORS:
        pass
    finally:
        client.close()
