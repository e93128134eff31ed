"""build_email parses its repeated headers once and builds the text parts itself: the bytes on the
wire must be exactly those the email package's public API makes (set_content + add_alternative)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage

import pytest
from hypothesis import given, settings, strategies as st

from orchestrator.delivery.channels.mime import build_email, message_bytes, wire_bytes
from orchestrator.domain.message import OutboundMessage
from orchestrator.domain.model import Channel
from orchestrator.errors import PermanentSendError

BASE = OutboundMessage(
    Channel.EMAIL, "jean@example.org", "k", "Bonjour Jean,\n\nMerci.\n", subject="Souhaitez-vous continuer à recevoir nos nouvelles ?",
    html="<html><body><p>Bonjour</p></body></html>", sender="news@boutique.example", sender_name="Boutique Lumière",
    message_id="<rc.abc@boutique.example>", date=datetime(2026, 1, 7, 9, 0, tzinfo=timezone.utc),
    headers=(("List-Unsubscribe", "<https://prefs.example/u/tok>, <mailto:news@boutique.example?subject=unsubscribe>"),
             ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")),
)


def reference(message: OutboundMessage) -> EmailMessage:
    """build_email as the email package's public API writes it (the implementation before caching)."""
    mail = EmailMessage(policy=policy.SMTP)
    local, _, domain = message.sender.rpartition("@")
    if message.sender_name:
        mail["From"] = Address(display_name=message.sender_name, username=local, domain=domain)
    else:
        mail["From"] = message.sender
    mail["To"] = message.recipient
    mail["Subject"] = message.subject or ""
    mail["Date"] = "Wed, 07 Jan 2026 09:00:00 +0000"
    mail["Message-ID"] = message.message_id
    mail["MIME-Version"] = "1.0"
    for name, value in message.headers:
        mail[name] = value
    mail.set_content(message.text, subtype="plain", charset="utf-8")
    if message.html:
        mail.add_alternative(message.html, subtype="html", charset="utf-8")
    return mail


def assert_same_bytes(message: OutboundMessage) -> None:
    ours, theirs = build_email(message), reference(message)
    if message.html:
        ours.set_boundary("b0undary")
        theirs.set_boundary("b0undary")
    assert wire_bytes(ours, None) == wire_bytes(theirs, None)
    # twice: the second build reuses the parsed (and folded) shared headers
    again = build_email(message)
    if message.html:
        again.set_boundary("b0undary")
    assert wire_bytes(again, None) == wire_bytes(theirs, None)


@pytest.mark.parametrize("message", [
    BASE,
    replace(BASE, html=None),
    replace(BASE, sender_name=None, subject="plain ascii subject"),
    replace(BASE, text="ascii only, short lines\n" * 3, html="<p>" + "x" * 200 + "</p>"),
    replace(BASE, text="é" * 300, html="<p>" + "€ " * 400 + "</p>"),  # long lines: QP or base64
    replace(BASE, text="ligne à accent\n" * 30),  # more than 10 lines
    replace(BASE, subject="Un objet très long " * 8),  # folded subject
    replace(BASE, recipient="jérôme@exemple.fr"),  # internationalised address (SMTPUTF8 policy)
], ids=["base", "text-only", "ascii-sender", "long-html", "long-utf8-lines", "many-lines", "long-subject", "utf8-address"])
def test_same_bytes_as_the_email_package(message: OutboundMessage) -> None:
    assert_same_bytes(message)


@settings(max_examples=60, deadline=None)
@given(text=st.text(min_size=1, max_size=400), html=st.one_of(st.none(), st.text(min_size=1, max_size=400)),
       subject=st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=120))
def test_same_bytes_for_any_text(text: str, html: str | None, subject: str) -> None:
    message = replace(BASE, text=text, html=html, subject=subject)
    try:
        reference(message)
    except (ValueError, TypeError, IndexError):
        with pytest.raises(PermanentSendError):  # not expressible: refused for this message only
            build_email(message)
        return
    assert_same_bytes(message)


# -- message_bytes: the wire bytes written without the email package -------------------------------
def _parsed(data: bytes) -> list[tuple[str, list[tuple[str, str]], object]]:
    """Every part of a message as (content type, headers with their decoded values, decoded body);
    the multipart boundary, which is random, left out, and quoted-printable and base64 alike."""
    from email import message_from_bytes

    mail = message_from_bytes(data, policy=policy.default)
    parts = []
    for part in mail.walk():
        headers = []
        for name, value in part.items():
            if name.lower() == "content-type":
                params = {k: v for k, v in value.params.items() if k != "boundary"}
                headers.append((name, f"{value.content_type} {sorted(params.items())}"))
            elif name.lower() == "content-transfer-encoding" and str(value) in ("quoted-printable", "base64"):
                headers.append((name, "quoted-printable or base64"))  # same 7bit/8bit choice, any encoding
            else:
                # leading white space is folding, not value: the email package folds a long first
                # token onto its own line ("List-Unsubscribe:\r\n <https://…>"), which reads back as
                # " <https://…>"; message_bytes keeps it on the header's line (both are valid RFC 5322)
                headers.append((name, str(value).strip()))
        body = None if part.is_multipart() else part.get_content()
        parts.append((part.get_content_type(), headers, body))
    return parts


def assert_equivalent(message: OutboundMessage) -> None:
    data, message_id = message_bytes(message, None)
    theirs = reference(message)
    assert _parsed(data) == _parsed(wire_bytes(theirs, None))
    assert message_id == str(theirs["Message-ID"])
    # well-formed on the wire: CRLF line ends only, no line over 998 octets
    assert b"\r" not in data.replace(b"\r\n", b"") and b"\n" not in data.replace(b"\r\n", b"")
    assert max(len(line) for line in data.split(b"\r\n")) <= 998


@pytest.mark.parametrize("message", [
    BASE,
    replace(BASE, html=None),
    replace(BASE, sender_name=None, subject="plain ascii subject"),
    replace(BASE, text="ascii only, short lines\n" * 3, html="<p>" + "x" * 200 + "</p>"),
    replace(BASE, text="é" * 300, html="<p>" + "€ " * 400 + "</p>"),
    replace(BASE, text="ligne à accent\n" * 30),
    replace(BASE, subject="Un objet très long " * 8),
    replace(BASE, recipient="jérôme@exemple.fr"),
    replace(BASE, recipient="Jean Dupont <jean@example.org>"),
    replace(BASE, headers=(("List-Unsubscribe", "<https://prefs.example.com/u/" + "x" * 90 + ">, "
                                                "<mailto:news@boutique.example?subject=unsubscribe>"),
                           ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))),
    replace(BASE, text="trailing space \nand tab\t\n.leading dot\n=equals\n" + "x" * 100 + " \n"),
], ids=["base", "text-only", "ascii-sender", "long-html", "long-utf8-lines", "many-lines", "long-subject",
        "utf8-address", "named-recipient", "long-list-unsubscribe", "qp-edge-cases"])
def test_message_bytes_carry_what_the_email_package_writes(message: OutboundMessage) -> None:
    assert_equivalent(message)


_URL_CHARS = st.characters(min_codepoint=33, max_codepoint=126, blacklist_characters="<>,")


@settings(max_examples=150, deadline=None)
@given(text=st.text(min_size=1, max_size=600), html=st.one_of(st.none(), st.text(min_size=1, max_size=600)),
       subject=st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=120),
       name=st.one_of(st.none(), st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")),
                                          min_size=1, max_size=40)),
       local=st.from_regex(r"[a-z0-9][a-z0-9.+_-]{0,30}[a-z0-9]", fullmatch=True),
       token=st.text(alphabet=_URL_CHARS, min_size=1, max_size=150))
def test_message_bytes_for_any_text(text: str, html: str | None, subject: str, name: str | None, local: str,
                                    token: str) -> None:
    message = replace(BASE, text=text, html=html, subject=subject, sender_name=name,
                      recipient=f"{local}@example.org",
                      headers=((("List-Unsubscribe", f"<https://prefs.example.com/u/{token}>, "
                                                     "<mailto:news@boutique.example?subject=unsubscribe>"),
                                ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))))
    try:
        reference(message)
    except (ValueError, TypeError, IndexError):
        with pytest.raises(PermanentSendError):
            message_bytes(message, None)
        return
    assert_equivalent(message)


def test_message_bytes_refuse_what_cannot_be_expressed() -> None:
    with pytest.raises(PermanentSendError):
        message_bytes(replace(BASE, subject="Bonjour\r\nBcc: everyone@example.org"), None)
    with pytest.raises(PermanentSendError):
        message_bytes(replace(BASE, headers=(("List-Unsubscribe", "<https://x.example/u/t>\r\nBcc: a@b.example"),)),
                      None)


@settings(max_examples=200, deadline=None)
@given(address=st.one_of(st.from_regex(r"[A-Za-z0-9._%+-]{1,20}@[A-Za-z0-9.-]{1,20}", fullmatch=True),
                         st.text(max_size=30)))
def test_a_simple_address_is_what_getaddresses_returns(address: str) -> None:
    """The SMTP channel skips getaddresses() for the addresses this pattern accepts."""
    from email.utils import getaddresses

    from orchestrator.delivery.channels.mime import _SIMPLE_ADDR

    if _SIMPLE_ADDR.fullmatch(address):
        assert [addr for _, addr in getaddresses([address])] == [address]


def test_the_date_header_keeps_the_time_zone_of_each_message() -> None:
    from datetime import timedelta

    utc = datetime(2026, 1, 7, 9, 0, tzinfo=timezone.utc)
    paris = utc.astimezone(timezone(timedelta(hours=1)))  # equal to utc, written 10:00 +0100
    assert b"Date: Wed, 07 Jan 2026 09:00:00 +0000\r\n" in message_bytes(replace(BASE, date=utc), None)[0]
    assert b"Date: Wed, 07 Jan 2026 10:00:00 +0100\r\n" in message_bytes(replace(BASE, date=paris), None)[0]
