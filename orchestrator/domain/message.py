"""The one outbound message type shared by every channel."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parseaddr

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
    return_path: str | None = None  # email envelope sender (SMTP MAIL FROM, Return-Path); None: ``sender``
    meta: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SendResult:
    """What the channel accepted: the provider's id (SID, Message-ID) and its first status."""

    provider_id: str
    status: str = "sent"


_MSGID = re.compile(r"<([^<>\s@]+@[^<>\s@]+)>")


def canonical_message_id(value: str | None) -> str | None:
    """The one form of a Message-ID that is stored, shown and compared: ``<left@right>``, exactly as
    the header carries it (angle brackets once, no spaces). None when ``value`` holds no Message-ID.

    >>> canonical_message_id(" <rc.AB1@shop.example>> ")
    '<rc.AB1@shop.example>'
    >>> canonical_message_id("rc.AB1@shop.example"), canonical_message_id("<<rc.AB1@shop.example>")
    ('<rc.AB1@shop.example>', '<rc.AB1@shop.example>')
    >>> canonical_message_id("not an id") is None
    True
    """
    if not value:
        return None
    found = _MSGID.search(value)
    if found is not None:
        return f"<{found.group(1)}>"
    bare = value.strip().strip("<>").strip()
    if bare.count("@") == 1 and not any(c.isspace() or c in "<>" for c in bare) and bare[0] != "@" != bare[-1]:
        return f"<{bare}>"
    return None


def envelope_sender(return_path: str, message_id: str | None) -> str | None:
    """The SMTP MAIL FROM of one email from the ``email.return_path`` setting: ``{token}`` becomes the
    left part of the message's Message-ID (an opaque id already in the header, never an address), so a
    bounce sent to it names the message (VERP). None when the setting is empty (MAIL FROM is From).

    >>> envelope_sender("bounces+{token}@mail.example", "<rc.AB1@shop.example>")
    'bounces+rc.AB1@mail.example'
    >>> envelope_sender("Bounces <bounces@mail.example>", None), envelope_sender("", "<x@y>")
    ('bounces@mail.example', None)
    """
    if not return_path.strip():
        return None
    address = address_of(return_path)
    if "{token}" in address:
        canonical = canonical_message_id(message_id)
        token = canonical[1:].partition("@")[0] if canonical else ""
        address = address.replace("{token}", token).replace("+@", "@")
    return address


def address_of(value: str) -> str:
    """The bare address of a configured sender, written bare or as ``Name <address>``.

    >>> address_of("Boutique Lumière <bonjour@boutique.example>"), address_of(" bonjour@boutique.example ")
    ('bonjour@boutique.example', 'bonjour@boutique.example')
    """
    return parseaddr(value)[1] or value.strip()


def domain_of(value: str) -> str:
    """The domain of a configured address or domain setting (what a Message-ID's right part, a DKIM
    ``d=`` or a VERP address is built on).

    >>> domain_of("Boutique <bonjour@Boutique.Example>"), domain_of("<boutique.example>"), domain_of("")
    ('boutique.example', 'boutique.example', '')
    """
    address = address_of(value) if "@" in value else value
    return address.rpartition("@")[2].strip().strip("<>").strip().lower()
