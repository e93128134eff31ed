"""The one outbound message type shared by every channel."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from orchestrator.domain.model import Channel


@dataclass(frozen=True)
class OutboundMessage:
    """Everything a channel needs to send one message; nothing about how it is stored.

    ``idempotency_key`` is the outbox row's key (campaign:contact:step:channel): a channel that can
    pass it to its provider does, and the file sinks name their files after it, so a re-send after a
    crash overwrites rather than duplicates.
    """

    channel: Channel
    recipient: str
    idempotency_key: str
    text: str
    subject: str | None = None
    html: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    message_id: str | None = None  # email Message-ID, chosen before sending and stored
    sender: str = ""  # From address (email) or sender id/number (SMS)
    sender_name: str | None = None
    status_callback: str | None = None  # SMS delivery callbacks
    validity_period: int | None = None  # SMS seconds
    date: datetime | None = None  # email Date header, from the Clock (None: now)
    meta: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SendResult:
    """What the channel accepted: the provider's id (SID, Message-ID) and its first status."""

    provider_id: str
    status: str = "sent"
