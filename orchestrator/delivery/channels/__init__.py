"""Channels: how a message leaves. One Protocol, one adapter per transport, chosen from config.

The file sinks of the embedded default are ordinary adapters, not an ``if demo:`` branch.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from orchestrator.config import Config
from orchestrator.domain.message import OutboundMessage, SendResult
from orchestrator.domain.model import Channel


class MessageChannel(Protocol):
    channel: Channel

    async def send(self, message: OutboundMessage) -> SendResult:
        """Hand one message over. Raise TransientSendError or PermanentSendError on failure."""
        ...

    async def close(self) -> None:
        ...


@runtime_checkable
class SentLookup(Protocol):
    """A channel whose provider can say whether a message was already accepted (Twilio's message
    list). Asked before re-sending a row whose outcome is unknown (its worker died between handing it
    over and recording the result): a message found is recorded, not sent twice. Email has no such
    look-up: it is re-sent with the same Message-ID (docs/deliverability.md, de-duplication)."""

    async def find_sent(self, message: OutboundMessage, since: datetime) -> SendResult | None:
        """The provider's record of ``message`` accepted since ``since``, or None (not found, or the
        provider could not be asked: the caller then sends — a possible duplicate, never a loss)."""
        ...


def build_channels(config: Config) -> dict[Channel, MessageChannel]:
    from orchestrator.delivery.channels.mime import signer_from

    channels: dict[Channel, MessageChannel] = {}
    signer = signer_from(config)
    if config.email.transport == "smtp":
        from orchestrator.delivery.channels.email_smtp import SmtpChannel

        channels[Channel.EMAIL] = SmtpChannel(config.email, signer=signer)
    else:
        from orchestrator.delivery.channels.email_file import FileEmailChannel

        channels[Channel.EMAIL] = FileEmailChannel(config.path(config.email.outbox_dir), signer=signer)
    if config.sms.transport == "twilio":
        from orchestrator.delivery.channels.sms_twilio import TwilioChannel

        channels[Channel.SMS] = TwilioChannel(config.sms, sms_from=config.sender.sms_from)
    else:
        from orchestrator.delivery.channels.sms_file import FileSmsChannel

        channels[Channel.SMS] = FileSmsChannel(config.path(config.sms.outbox_file))
    return channels
