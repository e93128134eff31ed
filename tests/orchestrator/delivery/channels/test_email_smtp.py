"""SMTP adapter at production depth [E1–E3], against a real aiosmtpd server on loopback."""

from __future__ import annotations

import asyncio
import base64
import ssl
from dataclasses import replace
from email.header import decode_header, make_header
from pathlib import Path

import dkim
import pytest
import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from orchestrator.delivery.channels.email_smtp import SmtpChannel
from orchestrator.delivery.channels.mime import DkimSigner, build_email, signer_from
from orchestrator.config import Config, EmailConfig
from orchestrator.errors import ConfigError, PermanentSendError, TransientSendError
from tests.orchestrator.delivery.channels.test_contract import EMAIL
from tests.support.factories import run
from tests.support.smtp import SmtpServer


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
    return ctx


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def dkim_key(tmp_path: Path) -> tuple[Path, bytes]:
    """A fresh RSA key on disk and its DNS TXT record (v=DKIM1; k=rsa; p=…)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "dkim.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return path, b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)


def send_all(channel: SmtpChannel, messages: list, *, concurrently: bool = False) -> list:  # type: ignore[type-arg]
    async def one(m):  # type: ignore[no-untyped-def]
        try:
            return await channel.send(m)
        except (PermanentSendError, TransientSendError) as exc:
            return exc

    async def go() -> list:  # type: ignore[type-arg]
        try:
            if concurrently:
                return list(await asyncio.gather(*(one(m) for m in messages)))
            return [await one(m) for m in messages]
        finally:
            await channel.close()

    return run(go())


def test_french_subject_and_sender_name_are_encoded_words_and_decode_back(smtp_server: SmtpServer) -> None:
    message = replace(EMAIL, subject="Êtes-vous toujours là ? Réponse en 1 clic", sender_name="Boutique Lumière & Fils")
    (result,) = send_all(SmtpChannel(EmailConfig(host="127.0.0.1", port=smtp_server.port)), [message])
    (got,) = smtp_server.received
    head = got.data.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()  # RFC 5322 headers: 7-bit, non-ASCII only as RFC 2047 encoded words
    assert b"=?utf-8?" in head
    raw = got.message
    assert str(make_header(decode_header(raw["Subject"]))) == "Êtes-vous toujours là ? Réponse en 1 clic"
    assert raw["From"].addresses[0].display_name == "Boutique Lumière & Fils"
    assert raw["Message-ID"] == result.provider_id == "<rc.abc@boutique.example>"
    assert [p.get_content_charset() for p in raw.iter_parts()] == ["utf-8", "utf-8"]


def test_dkim_signature_covers_both_list_unsubscribe_headers_and_verifies_at_the_server(
    smtp_server: SmtpServer, tmp_path: Path
) -> None:
    key_path, txt = dkim_key(tmp_path)
    signer = DkimSigner.from_config(str(key_path), "rc2026", "boutique.example")
    send_all(SmtpChannel(EmailConfig(host="127.0.0.1", port=smtp_server.port), signer=signer), [EMAIL])
    (got,) = smtp_server.received
    lookups: list[bytes] = []

    def dns(name: bytes, timeout: int = 5) -> bytes:
        lookups.append(name)
        return txt

    assert dkim.verify(got.data, dnsfunc=dns)
    assert lookups == [b"rc2026._domainkey.boutique.example."]
    sig = got.message["DKIM-Signature"]
    tags = {k.strip(): v.strip() for k, _, v in (t.partition("=") for t in "".join(sig.split()).split(";"))}
    signed = {h.lower() for h in tags["h"].split(":")}
    assert {"list-unsubscribe", "list-unsubscribe-post", "from", "subject", "message-id"} <= signed
    assert tags["d"] == "boutique.example" and tags["c"] == "relaxed/relaxed"
    # Covered for real: changing the one-click target breaks the signature.
    forged = got.data.replace(b"https://prefs.example.com/u/x", b"https://evil.example/u/x")
    assert forged != got.data and not dkim.verify(forged, dnsfunc=dns)


def test_dkim_key_path_must_be_readable(tmp_path: Path) -> None:
    cfg = Config(base_dir=tmp_path)
    cfg.email = replace(cfg.email, dkim_key_path="missing.pem")
    with pytest.raises(ConfigError, match="email.dkim_key_path: cannot read"):
        signer_from(cfg)
    (tmp_path / "not-a-key.pem").write_text("hello")
    cfg.email = replace(cfg.email, dkim_key_path="not-a-key.pem")
    with pytest.raises(ConfigError, match="not a PEM private key"):
        signer_from(cfg)


def test_pool_opens_at_most_pool_size_connections_and_reuses_them(smtp_server: SmtpServer) -> None:
    channel = SmtpChannel(EmailConfig(host="127.0.0.1", port=smtp_server.port, pool_size=3))
    messages = [replace(EMAIL, recipient=f"p{i}@example.org", message_id=f"<rc.{i}@boutique.example>") for i in range(12)]
    results = send_all(channel, messages, concurrently=True)
    assert all(not isinstance(r, Exception) for r in results)
    assert len(smtp_server.received) == 12
    assert channel.connections_opened == 3 and smtp_server.handler.connections == 3


def test_a_dropped_connection_is_replaced_and_the_message_still_goes(smtp_server: SmtpServer) -> None:
    channel = SmtpChannel(EmailConfig(host="127.0.0.1", port=smtp_server.port, pool_size=1))

    async def go() -> None:
        await channel.send(EMAIL)
        smtp_server.restart()  # the relay restarts: the pooled connection is dead
        await channel.send(replace(EMAIL, message_id="<rc.second@boutique.example>"))
        await channel.close()

    run(go())
    assert [r.message["Message-ID"] for r in smtp_server.received] == ["<rc.abc@boutique.example>",
                                                                       "<rc.second@boutique.example>"]
    assert channel.connections_opened == 2


def test_starttls_and_auth_from_config(server_tls: ssl.SSLContext, ca_file: str) -> None:
    server = SmtpServer(tls=server_tls, credentials=("reconsent", "s3cret")).start()
    try:
        cfg = EmailConfig(host="127.0.0.1", port=server.port, starttls=True, username="reconsent",
                          password="s3cret", tls_ca_file=ca_file)
        (ok,) = send_all(SmtpChannel(cfg), [EMAIL])
        (wrong,) = send_all(SmtpChannel(replace(cfg, password="nope")), [EMAIL])
        (untrusted,) = send_all(SmtpChannel(replace(cfg, tls_ca_file="")), [EMAIL])
        (plain,) = send_all(SmtpChannel(replace(cfg, starttls=False)), [EMAIL])
    finally:
        server.stop()
    assert not isinstance(ok, Exception)
    assert server.handler.logins == ["reconsent"] and len(server.received) == 1
    assert isinstance(wrong, TransientSendError) and "authentication" in wrong.reason
    assert isinstance(untrusted, TransientSendError)  # self-signed CA not trusted without tls_ca_file
    assert isinstance(plain, Exception)  # the server demands STARTTLS first


def test_implicit_tls_from_config(server_tls: ssl.SSLContext, ca_file: str) -> None:
    server = SmtpServer(tls=server_tls, implicit_tls=True).start()
    try:
        cfg = EmailConfig(host="127.0.0.1", port=server.port, use_tls=True, tls_ca_file=ca_file)
        (ok,) = send_all(SmtpChannel(cfg), [EMAIL])
    finally:
        server.stop()
    assert not isinstance(ok, Exception)
    assert len(server.received) == 1


def test_a_timeout_is_transient(smtp_server: SmtpServer) -> None:
    smtp_server.handler.data_delay = 1.5
    (result,) = send_all(SmtpChannel(EmailConfig(host="127.0.0.1", port=smtp_server.port, timeout=0.3)), [EMAIL])
    assert isinstance(result, TransientSendError)


def test_a_message_the_relay_cannot_take_fails_alone() -> None:
    server = SmtpServer(smtputf8=False).start()
    try:
        channel = SmtpChannel(EmailConfig(host="127.0.0.1", port=server.port, pool_size=1))
        results = send_all(channel, [replace(EMAIL, recipient=r, message_id=None)
                                     for r in ("a@example.org", "jérôme@example.org", "b@example.org")])
    finally:
        server.stop()
    assert isinstance(results[1], PermanentSendError) and results[1].suppress is None
    assert [r.rcpt_tos for r in server.received] == [["a@example.org"], ["b@example.org"]]
    assert channel.connections_opened == 1  # the connection survived the bad message


def test_an_internationalised_address_goes_as_utf8_when_the_relay_allows_it(smtp_server: SmtpServer) -> None:
    (result,) = send_all(SmtpChannel(EmailConfig(host="127.0.0.1", port=smtp_server.port)),
                         [replace(EMAIL, recipient="jérôme@exemple.fr")])
    assert not isinstance(result, Exception)
    (got,) = smtp_server.received
    assert got.rcpt_tos == ["jérôme@exemple.fr"]
    assert "To: jérôme@exemple.fr\r\n".encode() in got.data


def test_a_header_with_a_line_break_is_permanent_not_a_crash() -> None:
    with pytest.raises(PermanentSendError):
        build_email(replace(EMAIL, subject="Bonjour\r\nBcc: everyone@example.org"))


def test_a_relay_closing_mid_transaction_is_transient_and_the_next_message_reconnects(smtp_server: SmtpServer) -> None:
    smtp_server.handler.data_replies.append("421 4.3.2 Service shutting down, closing channel")
    channel = SmtpChannel(EmailConfig(host="127.0.0.1", port=smtp_server.port, pool_size=1))
    first, second = send_all(channel, [EMAIL, replace(EMAIL, message_id="<rc.next@boutique.example>")])
    assert isinstance(first, TransientSendError) and first.code == "421"
    assert not isinstance(second, Exception)
    assert [r.message["Message-ID"] for r in smtp_server.received] == ["<rc.next@boutique.example>"]
    assert channel.connections_opened == 2


def test_a_prepended_second_list_unsubscribe_or_from_breaks_the_signature(
    smtp_server: SmtpServer, tmp_path: Path
) -> None:
    """Over-signing [issue 15]: h= names From, Subject and both List-Unsubscribe headers once more than
    the message has them, so a copy added on top (where a verifier would check only the last copy)
    fails with dkimpy's verifier."""
    key_path, txt = dkim_key(tmp_path)
    signer = DkimSigner.from_config(str(key_path), "rc2026", "boutique.example")
    send_all(SmtpChannel(EmailConfig(host="127.0.0.1", port=smtp_server.port), signer=signer), [EMAIL])
    (got,) = smtp_server.received

    def dns(name: bytes, timeout: int = 5) -> bytes:
        return txt

    assert dkim.verify(got.data, dnsfunc=dns)
    for added in (b"List-Unsubscribe: <https://evil.example/u/x>\r\n", b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
                  b"From: Support <support@evil.example>\r\n", b"Subject: Urgent\r\n"):
        assert not dkim.verify(added + got.data, dnsfunc=dns), added
    # and after the signature, between it and the signed headers
    head, _, rest = got.data.partition(b"\r\nFrom: ")
    assert not dkim.verify(head + b"\r\nList-Unsubscribe: <https://evil.example/u/x>\r\nFrom: " + rest, dnsfunc=dns)
    sig = "".join(got.message["DKIM-Signature"].split())
    signed = [h.lower() for h in sig.split("h=", 1)[1].split(";", 1)[0].split(":")]
    for name in ("from", "subject", "list-unsubscribe", "list-unsubscribe-post"):
        assert signed.count(name) == 2, (name, signed)


def test_return_path_is_the_envelope_sender_and_helo_name_the_ehlo(smtp_server: SmtpServer) -> None:
    message = replace(EMAIL, return_path="bounces+rc.abc@mail.boutique.example")
    config = EmailConfig(host="127.0.0.1", port=smtp_server.port, helo_name="mail.boutique.example")
    send_all(SmtpChannel(config), [message, EMAIL])
    first, second = smtp_server.received
    assert first.mail_from == "bounces+rc.abc@mail.boutique.example"  # SMTP MAIL FROM: bounces go there
    assert first.message["From"].addresses[0].addr_spec == "bonjour@boutique.example"  # From unchanged
    assert second.mail_from == "bonjour@boutique.example"  # no return path: From, as before
    assert smtp_server.handler.helo_names == ["mail.boutique.example"]  # one pooled connection
