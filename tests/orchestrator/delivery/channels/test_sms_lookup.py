"""An SMS of unknown outcome is looked up in Twilio's message list (real twilio client, loopback
stand-in) before it is sent again [issue 14 §6]; email has no look-up (same Message-ID re-sent)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from orchestrator.config import SmsConfig
from orchestrator.delivery.channels import SentLookup
from orchestrator.delivery.channels.email_file import FileEmailChannel
from orchestrator.delivery.channels.email_smtp import SmtpChannel
from orchestrator.delivery.channels.sms_twilio import TwilioChannel
from orchestrator.config import EmailConfig
from tests.orchestrator.delivery.channels.test_contract import SMS
from tests.support.factories import run
from tests.support.twilio_standin import TwilioStandIn


def test_find_sent_matches_number_body_and_date_and_nothing_else(twilio: TwilioStandIn) -> None:
    cfg = SmsConfig(transport="twilio", account_sid=twilio.account_sid, auth_token=twilio.auth_token,
                    api_base_url=twilio.base_url)
    channel = TwilioChannel(cfg, sms_from="+33700000000")
    before = datetime.now(UTC) - timedelta(seconds=5)

    async def go() -> tuple[object, ...]:
        try:
            sent = await channel.send(SMS)
            await channel.send(replace(SMS, recipient="+33698765432"))  # the same body to another number
            return (sent,
                    await channel.find_sent(SMS, before),
                    await channel.find_sent(replace(SMS, text=SMS.text + " (autre)"), before),
                    await channel.find_sent(replace(SMS, recipient="+33611111111"), before),
                    await channel.find_sent(SMS, datetime.now(UTC) + timedelta(hours=1)))
        finally:
            await channel.close()

    sent, found, other_body, other_number, too_late = run(go())
    assert found is not None and found.provider_id == sent.provider_id  # type: ignore[attr-defined]
    assert (other_body, other_number, too_late) == (None, None, None)
    assert ("GET", f"/2010-04-01/Accounts/{twilio.account_sid}/Messages.json") in twilio.requests
    assert len(twilio.created) == 2  # looking up never sends


def test_find_sent_says_none_when_twilio_cannot_be_asked() -> None:
    cfg = SmsConfig(transport="twilio", account_sid="AC" + "0" * 32, auth_token="t",
                    api_base_url="http://127.0.0.1:9")  # nothing listens on the discard port
    channel = TwilioChannel(cfg, sms_from="+33700000000")

    async def go() -> object:
        try:
            return await channel.find_sent(SMS, datetime.now(UTC))
        finally:
            await channel.close()

    assert run(go()) is None


def test_only_channels_with_a_provider_record_look_up(tmp_path: object) -> None:
    assert isinstance(TwilioChannel(SmsConfig(), sms_from="+33700000000"), SentLookup)
    assert not isinstance(SmtpChannel(EmailConfig()), SentLookup)
    assert not isinstance(FileEmailChannel(tmp_path), SentLookup)  # type: ignore[arg-type]
