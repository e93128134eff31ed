"""Asynchronous bounces [E3]: RFC 3464 delivery-status notifications read from a maildir or an mbox.

``reconsent bounces ingest PATH`` matches each DSN to the message it reports on — by the original
Message-ID (which we chose, on our domain, and stored before sending; compared in its canonical
form) and the failed recipient, else by the VERP return path it was delivered to (``email.return_path``
with ``{token}``), or by the recipient alone when neither is there — then applies the same rules as
the SMTP adapter:

- hard (5.1.x bad mailbox, 5.2.1 disabled): the address is suppressed with reason bounced and the
  message is marked bounced;
- soft (4.x.x, or any other 5.x.x such as a policy block): counted per address; the message is
  failed when the DSN says the server gave up; after ``email.soft_bounce_limit`` soft bounces the
  address is suppressed (bounced).

Ingesting the same report twice changes nothing (each recipient's report has a fingerprint). The
bounce table holds the address's suppression key, never the address.
"""

from __future__ import annotations

import hashlib
import mailbox
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from email.parser import HeaderParser
from email.policy import default as default_policy
from email.utils import parseaddr
from pathlib import Path

from sqlalchemy import func, select
from sqlmodel import Session, col

from orchestrator.consent.service import withdraw
from orchestrator.delivery.messages import message_id as our_message_id
from orchestrator.domain.message import address_of, canonical_message_id
from orchestrator.domain.model import Channel, DeliveryState, SuppressionReason
from orchestrator.errors import InputError
from orchestrator.runtime import Runtime
from orchestrator.store.db import session_scope
from orchestrator.store.models import Bounce, Contact, OutboxMessage

_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
HARD_PREFIXES = ("5.1.", "5.2.1")


@dataclass(frozen=True)
class RecipientReport:
    recipient: str
    action: str  # failed | delayed | delivered | relayed | expanded
    status: str  # enhanced status code, e.g. 5.1.1

    @property
    def kind(self) -> str | None:
        """hard, soft, or None when the report is not a failure.

        >>> RecipientReport("a@b", "failed", "5.1.1").kind, RecipientReport("a@b", "delayed", "4.4.7").kind
        ('hard', 'soft')
        >>> RecipientReport("a@b", "failed", "5.7.1").kind, RecipientReport("a@b", "delivered", "2.0.0").kind
        ('soft', None)
        """
        if self.action not in ("failed", "delayed"):
            return None
        if self.action == "failed" and self.status.startswith(HARD_PREFIXES):
            return "hard"
        return "soft"


@dataclass(frozen=True)
class DeliveryReport:
    """One DSN: the Message-ID it reports on (if the server kept it) and one entry per recipient."""

    original_message_id: str | None
    recipients: tuple[RecipientReport, ...]
    fingerprint: str
    #: where the report was delivered (To, Delivered-To, X-Original-To): a VERP return path names the message
    delivered_to: tuple[str, ...] = ()


def parse_dsn(raw: bytes) -> DeliveryReport | None:
    """Read an RFC 3464 report; None when the message is not a delivery-status notification."""
    msg = message_from_bytes(raw, policy=default_policy)
    if msg.get_content_type() != "multipart/report":
        return None
    recipients: list[RecipientReport] = []
    original: str | None = None
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "message/delivery-status":
            for block in _status_blocks(part):
                rcpt = block.get("Final-Recipient") or block.get("Original-Recipient")
                action = str(block.get("Action", "")).strip().lower()
                if not rcpt or not action:
                    continue
                address = parseaddr(str(rcpt).partition(";")[2].strip() or str(rcpt))[1]
                status = _STATUS.search(str(block.get("Status", "")))
                recipients.append(RecipientReport(address.strip().lower(), action,
                                                  status.group(0) if status
                                                  else ("5.0.0" if action == "failed" else "4.0.0")))
        elif ctype in ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers") and original is None:
            original = _original_message_id(part)
    if not recipients:
        return None
    dsn_id = str(msg.get("Message-ID") or "") or hashlib.sha256(raw).hexdigest()
    delivered_to = tuple(parseaddr(str(v))[1] for h in ("Delivered-To", "X-Original-To", "To")
                         for v in (msg.get_all(h) or []) if parseaddr(str(v))[1])
    return DeliveryReport(original, tuple(recipients), hashlib.sha256(dsn_id.encode()).hexdigest()[:32],
                          delivered_to)


def verp_message_id(rt: Runtime, delivered_to: tuple[str, ...]) -> str | None:
    """The Message-ID a report delivered to a VERP return path names (``email.return_path`` with
    ``{token}``: the token is the Message-ID's left part), or None.

    A report whose server dropped the original headers is still matched to its message this way."""
    pattern = address_of(rt.config.email.return_path)
    if "{token}" not in pattern:
        return None
    prefix, _, suffix = pattern.lower().partition("{token}")
    for address in delivered_to:
        low = address.lower()
        if low.startswith(prefix) and low.endswith(suffix) and len(low) > len(prefix) + len(suffix):
            return our_message_id(rt, address[len(prefix):len(address) - len(suffix)])
    return None


def _status_blocks(part: Message) -> list[Message]:
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    # Some parsers leave the body as text: blocks separated by blank lines.
    text = payload if isinstance(payload, str) else ""
    blocks = re.split(r"\r?\n\s*\r?\n", text)
    return [HeaderParser().parsestr(block.strip() + "\n") for block in blocks if block.strip()]


def _original_message_id(part: Message) -> str | None:
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        value = payload[0].get("Message-ID")
    else:
        text = part.get_payload(decode=True)
        raw = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(payload or "")
        headers = HeaderParser().parsestr(raw)
        value = headers.get("Message-ID")
    return canonical_message_id(str(value)) if value else None


def read_mailbox(path: Path) -> Iterator[bytes]:
    """Every message of a maildir (folder with cur/ and new/) or an mbox file, as bytes."""
    if path.is_dir():
        if not ((path / "cur").is_dir() or (path / "new").is_dir()):
            raise InputError(f"{path}: a folder must be a maildir (with cur/ and new/ inside)")
        box: mailbox.Mailbox = mailbox.Maildir(str(path), factory=None, create=False)
    elif path.is_file():
        with path.open("rb") as fh:
            if not fh.read(5) == b"From ":
                raise InputError(f"{path}: not an mbox file (it must start with a 'From ' line) nor a maildir")
        box = mailbox.mbox(str(path), create=False)
    else:
        raise InputError(f"{path}: no such file or folder")
    try:
        for key in box.iterkeys():
            yield box.get_bytes(key)
    finally:
        box.close()


def count_messages(path: Path) -> int:
    return sum(1 for _ in read_mailbox(path))


@dataclass
class IngestReport:
    read: int = 0
    not_dsn: int = 0
    unmatched: int = 0
    duplicates: int = 0
    hard: int = 0
    soft: int = 0
    suppressed: int = 0
    ignored: int = 0  # delivered/relayed reports
    details: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{self.read} message(s) read: {self.hard} hard bounce(s), {self.soft} soft bounce(s), "
                f"{self.suppressed} address(es) suppressed, {self.unmatched} unmatched, "
                f"{self.duplicates} already ingested, {self.not_dsn} not a delivery report")


def ingest(rt: Runtime, path: Path, progress: Callable[[int], None] | None = None) -> IngestReport:
    report = IngestReport()
    limit = max(1, rt.config.email.soft_bounce_limit)
    for raw in read_mailbox(path):
        report.read += 1
        dsn = parse_dsn(raw)
        if dsn is None:
            report.not_dsn += 1
        else:
            with session_scope(rt.engine) as session:
                for rcpt in dsn.recipients:
                    _apply(rt, session, dsn, rcpt, limit, report)
        if progress:
            progress(1)
    return report


def _apply(rt: Runtime, session: Session, dsn: DeliveryReport, rcpt: RecipientReport, limit: int,
           report: IngestReport) -> None:
    kind = rcpt.kind
    if kind is None:
        report.ignored += 1
        return
    key = rt.key_for(rcpt.recipient)
    row = _match(session, dsn.original_message_id or verp_message_id(rt, dsn.delivered_to), key)
    if row is None or row.id is None:
        report.unmatched += 1
        return
    fingerprint = hashlib.sha256(f"{dsn.fingerprint}\0{key}\0{rcpt.status}\0{rcpt.action}".encode()).hexdigest()[:40]
    if session.execute(select(col(Bounce.id)).where(col(Bounce.fingerprint) == fingerprint)).first() is not None:
        report.duplicates += 1
        return
    now = rt.clock.now()
    session.add(Bounce(outbox_id=row.id, channel=Channel.EMAIL.value, key=key, kind=kind, status=rcpt.status,
                       source="dsn", fingerprint=fingerprint, received_at=now))
    session.flush()
    target = None
    if kind == "hard":
        report.hard += 1
        target = DeliveryState.BOUNCED
        if withdraw(session, key, Channel.EMAIL.value, SuppressionReason.BOUNCED, "dsn", now):
            report.suppressed += 1
    else:
        report.soft += 1
        if rcpt.action == "failed":
            target = DeliveryState.FAILED
        softs = session.execute(select(func.count()).select_from(Bounce).where(
            col(Bounce.key) == key, col(Bounce.channel) == Channel.EMAIL.value,
            col(Bounce.kind) == "soft")).scalar_one()
        if softs >= limit and withdraw(session, key, Channel.EMAIL.value, SuppressionReason.BOUNCED,
                                       f"dsn:{softs}_soft", now):
            report.suppressed += 1
    if target is not None and DeliveryState.can_move(DeliveryState(row.status), target):
        row.status = target.value
        row.last_error = f"DSN {rcpt.action} {rcpt.status}"
        row.updated_at = now
        session.add(row)


def _match(session: Session, message_id: str | None, key: str) -> OutboxMessage | None:
    """The email the report is about: by Message-ID (its canonical form, as stored; and the same
    recipient), else the last one sent to that recipient."""
    message_id = canonical_message_id(message_id)
    query = (select(OutboxMessage).join(Contact, col(Contact.id) == col(OutboxMessage.contact_id))
             .where(col(OutboxMessage.channel) == Channel.EMAIL.value, col(Contact.email_key) == key,
                    col(OutboxMessage.sent_at).is_not(None)))
    if message_id:
        found: OutboxMessage | None = session.execute(
            query.where(col(OutboxMessage.message_id) == message_id)).scalars().first()
        if found is not None:
            return found
    last: OutboxMessage | None = session.execute(query.order_by(col(OutboxMessage.sent_at).desc())).scalars().first()
    return last
