"""One contract, every adapter: each channel accepts an OutboundMessage and returns a provider id,
and turns provider refusals into our Permanent/Transient errors."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from orchestrator.delivery.channels import MessageChannel
from orchestrator.delivery.channels.email_file import FileEmailChannel
from orchestrator.delivery.channels.email_smtp import SmtpChannel
from orchestrator.delivery.channels.sms_file import FileSmsChannel
from orchestrator.delivery.channels.sms_twilio import TwilioChannel
from orchestrator.config import EmailConfig, SmsConfig
from orchestrator.domain.message import OutboundMessage
from orchestrator.domain.model import Channel
from orchestrator.errors import PermanentSendError, TransientSendError
from tests.support.factories import run
from tests.support.smtp import SmtpServer
from tests.support.twilio_standin import TwilioStandIn

EMAIL = OutboundMessage(
    channel=Channel.EMAIL, recipient="camille@example.org", idempotency_key="c1-k1-s0-email",
    text="Bonjour Camille,\nhttps://prefs.example.com/p/x\n", subject="Souhaitez-vous garder nos nouvelles ?",
    html="<p>Bonjour Camille, <a href='https://prefs.example.com/p/x'>répondre</a></p>",
    sender="bonjour@boutique.example", sender_name="Boutique Lumière", message_id="<rc.abc@boutique.example>",
    headers=(("List-Unsubscribe", "<https://prefs.example.com/u/x>, <mailto:bonjour@boutique.example?subject=unsubscribe>"),
             ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")),
)
SMS = OutboundMessage(channel=Channel.SMS, recipient="+33612345678", idempotency_key="c1-k1-s2-sms",
                      text="Boutique: voulez-vous encore nos offres ? https://p.example/s/abc STOP au 36111",
                      sender="+33700000000", status_callback="https://prefs.example.com/twilio/status",
                      validity_period=3600)


@pytest.fixture(params=["file-email", "smtp", "file-sms", "twilio"])
def adapter(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[MessageChannel, OutboundMessage, Callable[[], int]]]:
    kind = request.param
    if kind == "file-email":
        yield FileEmailChannel(tmp_path), EMAIL, lambda: len(list(tmp_path.glob("*.eml")))
    elif kind == "smtp":
        server = SmtpServer().start()
        yield SmtpChannel(EmailConfig(host="127.0.0.1", port=server.port, pool_size=2)), EMAIL, lambda: len(server.received)
        server.stop()
    elif kind == "file-sms":
        path = tmp_path / "sms.jsonl"
        yield FileSmsChannel(path), SMS, lambda: len(path.read_text().splitlines())
    else:
        standin = TwilioStandIn().start()
        cfg = SmsConfig(transport="twilio", account_sid=standin.account_sid, auth_token=standin.auth_token,
                        api_base_url=standin.base_url)
        yield TwilioChannel(cfg, sms_from="+33700000000"), SMS, lambda: len(standin.created)
        standin.stop()


def test_adapter_accepts_a_message_and_returns_a_provider_id(adapter: tuple[MessageChannel, OutboundMessage, Callable[[], int]]) -> None:
    channel, message, delivered = adapter

    async def go() -> list[str]:
        try:
            ids = [(await channel.send(message)).provider_id,
                   (await channel.send(replace(message, idempotency_key="other", message_id="<rc.def@boutique.example>"))).provider_id]
        finally:
            await channel.close()
        return ids

    ids = run(go())
    assert channel.channel is message.channel
    assert all(ids) and ids[0] != ids[1]
    assert delivered() == 2


def test_smtp_refusals_are_classified(smtp_server: SmtpServer) -> None:
    smtp_server.handler.rcpt_replies["gone@example.org"] = "550 5.1.1 No such user"
    smtp_server.handler.rcpt_replies["full@example.org"] = "452 4.2.2 Mailbox full"
    smtp_server.handler.rcpt_replies["policy@example.org"] = "554 5.7.1 Rejected by policy"
    channel = SmtpChannel(EmailConfig(host="127.0.0.1", port=smtp_server.port, pool_size=1))

    async def go() -> list[BaseException | str]:
        out: list[BaseException | str] = []
        for rcpt in ("gone@example.org", "full@example.org", "policy@example.org", "ok@example.org"):
            try:
                out.append((await channel.send(replace(EMAIL, recipient=rcpt, message_id=None))).provider_id)
            except (PermanentSendError, TransientSendError) as exc:
                out.append(exc)
        await channel.close()
        return out

    gone, full, policy, ok = run(go())
    assert isinstance(gone, PermanentSendError) and gone.suppress == "bounced"
    assert isinstance(full, TransientSendError)
    assert isinstance(policy, PermanentSendError) and policy.suppress is None
    assert isinstance(ok, str)
    assert len(smtp_server.received) == 1
    assert smtp_server.handler.connections == 1  # one pooled connection served all four


def test_smtp_server_down_is_transient() -> None:
    from tests.support.smtp import free_port

    channel = SmtpChannel(EmailConfig(host="127.0.0.1", port=free_port(), pool_size=1, timeout=2))
    with pytest.raises(TransientSendError):
        run(channel.send(EMAIL))


def test_twilio_errors_are_classified(twilio: TwilioStandIn) -> None:
    twilio.errors = {"+33600000001": 21610, "+33600000002": 21211}
    cfg = SmsConfig(transport="twilio", account_sid=twilio.account_sid, auth_token=twilio.auth_token,
                    api_base_url=twilio.base_url)
    channel = TwilioChannel(cfg, sms_from="+33700000000")

    async def attempt(to: str) -> BaseException | None:
        try:
            await channel.send(replace(SMS, recipient=to))
        except (PermanentSendError, TransientSendError) as exc:
            return exc
        return None

    async def go() -> list[BaseException | None]:
        out = [await attempt("+33600000001"), await attempt("+33600000002")]
        twilio.next_errors.extend([20429])
        out.append(await attempt("+33600000003"))
        await channel.close()
        return out

    stopped, invalid, throttled = run(go())
    assert isinstance(stopped, PermanentSendError) and stopped.suppress == "sms_stop" and stopped.code == "21610"
    assert isinstance(invalid, PermanentSendError) and invalid.code == "21211" and invalid.suppress == "bounced"
    assert isinstance(throttled, TransientSendError)
    assert twilio.created == []


def test_twilio_request_carries_callback_and_validity(twilio: TwilioStandIn) -> None:
    cfg = SmsConfig(transport="twilio", account_sid=twilio.account_sid, auth_token=twilio.auth_token,
                    api_base_url=twilio.base_url, messaging_service_sid="MG" + "1" * 32)
    channel = TwilioChannel(cfg, sms_from="+33700000000")

    async def go() -> str:
        result = await channel.send(SMS)
        await channel.close()
        return result.provider_id

    sid = run(go())
    (sent,) = twilio.created
    assert sent["sid"] == sid and sid.startswith("SM")
    assert sent["StatusCallback"] == "https://prefs.example.com/twilio/status"
    assert sent["ValidityPeriod"] == "3600"
    assert sent["MessagingServiceSid"] == "MG" + "1" * 32 and "From" not in sent
    assert json.dumps(sent)  # plain strings only
