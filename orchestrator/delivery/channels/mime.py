"""Build the RFC 5322 message for an outbound email [E1, E2], and sign it with DKIM when configured.

multipart/alternative with text/plain first and text/html last, UTF-8 everywhere (subject and display
names RFC 2047-encoded, so "Boutique Lumière" survives every relay), Date, From, Message-ID and the
List-Unsubscribe headers the message carries. The DKIM signature's ``h=`` always covers both
List-Unsubscribe headers (RFC 8058 §4 requires it for one-click to be trusted), and over-signs them,
From and Subject, so an added copy of any of them fails verification.
"""

from __future__ import annotations

import base64
import binascii
import email.contentmanager
import random
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import Policy
from email.utils import format_datetime, make_msgid
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

from orchestrator.config import Config
from orchestrator.domain.message import OutboundMessage, canonical_message_id, domain_of
from orchestrator.errors import ConfigError, PermanentSendError

#: the encoding choice of EmailMessage.set_content (a private helper of the email package; typed here)
_encode_text = cast(Callable[[str, str, str | None, Policy], tuple[str, str]],
                    vars(email.contentmanager)["_encode_text"])


def _raw_headers(part: EmailMessage) -> list[tuple[str, Any]]:
    """The part's header list (``Message._headers``, not in the stubs): appending parsed headers
    directly skips parsing the same values once per message."""
    return cast(list[tuple[str, Any]], vars(part)["_headers"])

#: headers the DKIM signature covers (those absent from a message are skipped by dkimpy)
SIGNED_HEADERS = (
    b"From", b"To", b"Subject", b"Date", b"Message-ID", b"MIME-Version", b"Content-Type",
    b"List-Unsubscribe", b"List-Unsubscribe-Post",
)
#: headers over-signed (named once more in ``h=`` than the message has them): a copy added anywhere
#: later — a second List-Unsubscribe pointing elsewhere, a second From — breaks the signature, where
#: a verifier would otherwise check the last copy and ignore the added one (RFC 6376 §5.4.2, §8.15)
OVERSIGNED_HEADERS = (b"From", b"Subject", b"List-Unsubscribe", b"List-Unsubscribe-Post")
DKIM_HEADERS = SIGNED_HEADERS + OVERSIGNED_HEADERS


def new_message_id(domain: str) -> str:
    return make_msgid(idstring="rc", domain=domain)


def build_email(message: OutboundMessage, *, at: datetime | None = None) -> EmailMessage:
    """The message as an EmailMessage. A message that cannot be expressed (a header with a line
    break, an unparseable address) raises PermanentSendError: it must not block the queue.

    >>> from orchestrator.domain.model import Channel
    >>> m = build_email(OutboundMessage(Channel.EMAIL, "a@b.example", "k", "Salut", subject="Réponse",
    ...                                 sender="x@b.example", sender_name="Boutique Lumière"))
    >>> bytes(m).split(b"\\r\\n")[0]
    b'From: Boutique =?utf-8?q?Lumi=C3=A8re?= <x@b.example>'
    """
    sender = message.sender
    mail = EmailMessage(policy=policy.SMTP)
    try:
        local, _, domain = sender.rpartition("@")
        # Headers that are the same for many messages (From, Subject, Date, MIME-Version,
        # List-Unsubscribe-Post) are parsed once and the parsed header reused: the email package
        # takes a parsed header as is, and a parsed header is never modified.
        if message.sender_name:
            mail["From"] = _from_header(message.sender_name, local, domain)
        else:
            mail["From"] = _shared_header("From", sender)
        mail["To"] = message.recipient
        mail["Subject"] = _shared_header("Subject", message.subject or "")
        mail["Date"] = _shared_header("Date", format_datetime(at or message.date or datetime.now(UTC)))
        mail["Message-ID"] = canonical_message_id(message.message_id) or new_message_id(domain or "localhost")
        mail["MIME-Version"] = _shared_header("MIME-Version", "1.0")
        for name, value in message.headers:
            mail[name] = _shared_header(name, value) if name in _SHARED else value
        if message.html:
            # what mail.set_content(text) + mail.add_alternative(html) make, part headers parsed once
            _raw_headers(mail).append(("Content-Type", _shared_header("Content-Type", "multipart/alternative")))
            mail.attach(_text_part("plain", message.text))
            mail.attach(_text_part("html", message.html, ("MIME-Version", "1.0")))
        else:
            _set_text(mail, "plain", message.text)
    except (ValueError, TypeError, IndexError) as exc:
        raise PermanentSendError(f"message cannot be built: {type(exc).__name__}: {exc}"[:300]) from None
    return mail


#: extra headers whose value is usually the same for every message
_SHARED = frozenset({"List-Unsubscribe-Post"})


@lru_cache(maxsize=512)
def _shared_header(name: str, value: str) -> Any:
    # header_store_parse makes the check EmailMessage makes on a string value (no line breaks)
    return _fold_once(policy.SMTP.header_store_parse(name, value)[1])


@lru_cache(maxsize=64)
def _from_header(display_name: str, local: str, domain: str) -> Any:
    address = Address(display_name=display_name, username=local, domain=domain)
    return _fold_once(policy.SMTP.header_store_parse("From", address)[1])


def _fold_once(header: Any) -> Any:
    """Remember the header's folded form per policy (the generator folds every header of every
    message it writes; a shared header's result never changes)."""
    fold = header.fold
    folded: dict[Any, str] = {}

    def cached_fold(*, policy: Any) -> str:
        # the generator clones its policy for every sub-part: key by the policy's settings
        key = (type(policy), tuple(sorted(policy.__dict__.items())))
        hit = folded.get(key)
        if hit is None:
            hit = folded[key] = fold(policy=policy)
        return hit

    header.fold = cached_fold
    return header


def _set_text(part: EmailMessage, subtype: str, text: str) -> None:
    """``part.set_content(text, subtype=subtype, charset="utf-8")`` on a part without content, with
    the same encoding choice (the email package's own heuristics) and the same headers, which are
    parsed once per process rather than once per message."""
    cte, payload = _encode_text(text, "utf-8", None, part.policy)
    _raw_headers(part).append(("Content-Type", _shared_header("Content-Type", f'text/{subtype}; charset="utf-8"')))
    part.set_payload(payload)
    _raw_headers(part).append(("Content-Transfer-Encoding", _shared_header("Content-Transfer-Encoding", cte)))


def _text_part(subtype: str, text: str, *extra: tuple[str, str]) -> EmailMessage:
    part = EmailMessage(policy=policy.SMTP)
    _set_text(part, subtype, text)
    for name, value in extra:
        _raw_headers(part).append((name, _shared_header(name, value)))
    return part


class DkimSigner:
    """Signs wire bytes with dkimpy (relaxed/relaxed, rsa-sha256). The key is read once, at start.

    ``domain`` is the d= of the signature: it must align with the From domain for DMARC.
    """

    def __init__(self, key_pem: bytes, selector: str, domain: str) -> None:
        self.key = key_pem
        self.selector = selector.encode()
        self.domain = domain.encode()

    @classmethod
    def from_config(cls, key_path: str, selector: str, domain: str) -> DkimSigner | None:
        if not key_path:
            return None
        try:
            key = Path(key_path).read_bytes()
        except OSError as exc:
            raise ConfigError(f"email.dkim_key_path: cannot read {key_path}: {exc.strerror}") from None
        if b"PRIVATE KEY" not in key:
            raise ConfigError(f"email.dkim_key_path: {key_path} is not a PEM private key")
        return cls(key, selector, domain)

    def sign(self, data: bytes) -> bytes:
        """``data`` with a DKIM-Signature header prepended."""
        import dkim  # optional dependency: pip install 'reconsent[dkim]'

        try:
            signature = dkim.sign(data, self.selector, self.domain, self.key,
                                  canonicalize=(b"relaxed", b"relaxed"), include_headers=list(DKIM_HEADERS))
        except dkim.DKIMException as exc:
            raise ConfigError(f"email.dkim_key_path: DKIM signing failed: {exc}") from None
        return bytes(signature) + data


# -- the wire bytes without the email package ------------------------------------------------------
#
# ``message_bytes`` writes the same message as ``wire_bytes(build_email(message))`` — same headers in
# the same order, same part structure and part headers, same decoded values and bodies — from strings:
# the email package's parser, folder and generator cost ~0.8 ms a message, this ~10 µs. Headers that
# are the same for many messages (From, Subject, Date) are still folded by the email package, once.
# The per-message headers (To, Message-ID, List-Unsubscribe) are written as is when they are plain
# ASCII addresses/ids/URLs, folded at spaces when too long (the email package RFC 2047-encoded a long
# List-Unsubscribe, which RFC 2369 readers do not decode); anything else takes the email package's
# path. Bodies: 7bit/8bit under the email package's rule (every line at most 78 bytes), otherwise
# quoted-printable, encoded line by line (QP is line-local) with a cache of encoded lines, since most
# lines of a campaign's messages are the same. tests/orchestrator/delivery/channels/test_mime_equivalence.py
# parses both forms and compares every header and decoded body.

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_SIMPLE_ADDR = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")
_SIMPLE_MSGID = re.compile(rf"<{_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*>")
_MAX_LINE = 78
_BOUNDARY_WIDTH = len(repr(sys.maxsize - 1))
_QP_CACHE: dict[bytes, bytes] = {}
_QP_CACHE_MAX = 8192


def message_bytes(message: OutboundMessage, signer: DkimSigner | None, *,
                  at: datetime | None = None) -> tuple[bytes, str]:
    """``(wire bytes, Message-ID)`` of ``message``: what ``wire_bytes(build_email(message), signer)``
    carries, written directly. Raises PermanentSendError like build_email for a message that cannot be
    expressed."""
    sender = message.sender
    recipient = message.recipient
    if not (sender.isascii() and recipient.isascii()):
        # an internationalised address: the email package's SMTPUTF8 path
        mail = build_email(message, at=at)
        return wire_bytes(mail, signer), canonical_message_id(str(mail["Message-ID"])) or str(mail["Message-ID"])
    local, _, domain = sender.rpartition("@")
    # the header carries the canonical form, and it is the one returned (and stored as provider id)
    message_id = canonical_message_id(message.message_id) or new_message_id(domain or "localhost")
    try:
        head = [
            _from_bytes(message.sender_name, sender, local, domain),
            _to_bytes(recipient),
            _folded("Subject", message.subject or ""),
            _date_bytes(at or message.date or datetime.now(UTC)),
            _msgid_bytes(message_id),
            b"MIME-Version: 1.0\r\n",
        ]
        for name, value in message.headers:
            head.append(_folded(name, value) if name in _SHARED else _plain_header(name, value))
        text_cte, text_body = _body(message.text)
        if message.html:
            html_cte, html_body = _body(message.html)
            boundary = _boundary(text_body, html_body)
            head += (b'Content-Type: multipart/alternative;\r\n boundary="', boundary, b'"\r\n\r\n--', boundary,
                     b'\r\nContent-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: ', text_cte,
                     b"\r\n\r\n", text_body, b"\r\n--", boundary,
                     b'\r\nContent-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: ', html_cte,
                     b"\r\nMIME-Version: 1.0\r\n\r\n", html_body, b"\r\n--", boundary, b"--\r\n")
        else:
            head += (b'Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: ', text_cte,
                     b"\r\n\r\n", text_body)
    except (ValueError, TypeError, IndexError) as exc:
        raise PermanentSendError(f"message cannot be built: {type(exc).__name__}: {exc}"[:300]) from None
    data = b"".join(head)
    return (signer.sign(data) if signer is not None else data), message_id


@lru_cache(maxsize=64)
def _from_bytes(display_name: str | None, sender: str, local: str, domain: str) -> bytes:
    header = _from_header(display_name, local, domain) if display_name else _shared_header("From", sender)
    folded: str = header.fold(policy=policy.SMTP)
    return folded.encode("ascii")


@lru_cache(maxsize=512)
def _folded(name: str, value: str) -> bytes:
    """A header as the email package folds it (for values shared by many messages)."""
    folded: str = _shared_header(name, value).fold(policy=policy.SMTP)
    return folded.encode("ascii")


def _date_bytes(at: datetime) -> bytes:
    # keyed with the offset: equal instants in two time zones are equal datetimes, written differently
    return _date_bytes_at(at, at.utcoffset())


@lru_cache(maxsize=64)
def _date_bytes_at(at: datetime, offset: Any) -> bytes:
    return _folded("Date", format_datetime(at))


def _to_bytes(recipient: str) -> bytes:
    if len(recipient) <= _MAX_LINE - 4 and _SIMPLE_ADDR.fullmatch(recipient):
        return b"To: " + recipient.encode("ascii") + b"\r\n"
    folded: str = policy.SMTP.header_store_parse("To", recipient)[1].fold(policy=policy.SMTP)
    return folded.encode("ascii")


def _msgid_bytes(message_id: str) -> bytes:
    if len(message_id) <= _MAX_LINE - 12 and _SIMPLE_MSGID.fullmatch(message_id):
        return b"Message-ID: " + message_id.encode("ascii") + b"\r\n"
    folded: str = policy.SMTP.header_store_parse("Message-ID", message_id)[1].fold(policy=policy.SMTP)
    return folded.encode("ascii")


def _plain_header(name: str, value: str) -> bytes:
    """A printable-ASCII header value as is, folded before spaces to keep lines within 78 characters
    where it can (a longer word stays whole: RFC 5322 allows 998). Anything else: the email package."""
    line = f"{name}: {value}"
    if not (value.isascii() and value.isprintable()) or "=?" in value:
        folded: str = policy.SMTP.header_store_parse(name, value)[1].fold(policy=policy.SMTP)
        return folded.encode("ascii")
    if len(line) <= _MAX_LINE:
        return line.encode("ascii") + b"\r\n"
    words = value.split(" ")
    lines = []
    current = f"{name}: {words[0]}"
    for word in words[1:]:
        if len(current) + 1 + len(word) > _MAX_LINE and current.strip():
            lines.append(current)
            current = " " + word
        else:
            current += " " + word
    lines.append(current)
    if max(map(len, lines)) > 998:
        raise ValueError(f"header {name} has a word longer than 998 characters")
    return "\r\n".join(lines).encode("ascii") + b"\r\n"


def _body(text: str) -> tuple[bytes, bytes]:
    """(Content-Transfer-Encoding, CRLF body) with the email package's choice between 7bit/8bit
    (no line over 78 bytes) and an encoding; quoted-printable here, line by line."""
    data = text.encode("utf-8")
    lines = data.splitlines()
    if max(map(len, lines), default=0) <= _MAX_LINE:
        return (b"7bit" if data.isascii() else b"8bit"), b"\r\n".join(lines) + b"\r\n"
    get = _QP_CACHE.get
    body = b"\r\n".join([get(line) or _qp_line(line) for line in lines]) + b"\r\n"
    if len(body) > len(data) * 4 // 3 + len(data) // 38 + 4:  # mostly non-ASCII: base64 is shorter
        return b"base64", base64.encodebytes(b"\r\n".join(lines) + b"\r\n").replace(b"\n", b"\r\n")
    return b"quoted-printable", body


def _qp_line(line: bytes) -> bytes:
    if len(_QP_CACHE) >= _QP_CACHE_MAX:
        _QP_CACHE.clear()
    encoded = _QP_CACHE[line] = binascii.b2a_qp(line, istext=True).replace(b"=\n", b"=\r\n")
    return encoded


def _boundary(*bodies: bytes) -> bytes:
    """A boundary like the email package's, checked against the bodies (it never occurs in QP)."""
    while True:
        boundary = b"=" * 15 + str(random.randrange(sys.maxsize)).zfill(_BOUNDARY_WIDTH).encode() + b"=="
        if not any(boundary in body for body in bodies):
            return boundary


def wire_bytes(mail: EmailMessage, signer: DkimSigner | None) -> bytes:
    """What goes on the wire (CRLF line ends), signed when a signer is given."""
    addresses = [a.addr_spec for h in ("From", "To") for a in getattr(mail[h], "addresses", ())]
    # An internationalised address (RFC 6531) travels as raw UTF-8, never as an encoded word.
    data = mail.as_bytes(policy=policy.SMTP if all(a.isascii() for a in addresses) else policy.SMTPUTF8)
    return signer.sign(data) if signer is not None else data


def signer_from(config: Config) -> DkimSigner | None:
    """The DkimSigner described by ``[email]`` settings, or None when DKIM is off."""
    email = config.email
    if not email.dkim_key_path:
        return None
    domain = domain_of(email.dkim_domain) or domain_of(config.sender.email_from)
    return DkimSigner.from_config(str(config.path(email.dkim_key_path)), email.dkim_selector, domain)
