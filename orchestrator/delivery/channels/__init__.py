"""Channels: how a message leaves. One Protocol, one adapter per transport, chosen from config.

The file sinks of the embedded default are ordinary adapters, not an ``if demo:`` branch.
"""

from __future__ import annotations

from typing import Protocol

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
