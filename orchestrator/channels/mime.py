"""Build the RFC 5322 message for an outbound email [E1, E2].

multipart/alternative with text/plain first and text/html last, UTF-8, Date, From, Message-ID and
the List-Unsubscribe headers the message carries.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from datetime import datetime, timezone

from orchestrator.domain.message import OutboundMessage


def new_message_id(domain: str) -> str:
    return make_msgid(idstring="rc", domain=domain)


def build_email(message: OutboundMessage, *, at: datetime | None = None) -> EmailMessage:
    sender = message.sender
    mail = EmailMessage()
    mail["From"] = formataddr((message.sender_name or "", sender)) if message.sender_name else sender
    mail["To"] = message.recipient
    mail["Subject"] = message.subject or ""
    mail["Date"] = format_datetime(at or datetime.now(timezone.utc))
    mail["Message-ID"] = message.message_id or new_message_id(sender.rpartition("@")[2] or "localhost")
    mail["MIME-Version"] = "1.0"
    for name, value in message.headers:
        mail[name] = value
    mail.set_content(message.text, subtype="plain", charset="utf-8")
    if message.html:
        mail.add_alternative(message.html, subtype="html", charset="utf-8")
    return mail
