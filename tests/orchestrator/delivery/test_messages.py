"""The one message factory: a campaign message and the fresh link a person asks for carry the same
unsubscribe headers and are in the person's language."""

from __future__ import annotations

import doctest
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import update
from sqlmodel import Session

from orchestrator.delivery import messages
from orchestrator.domain.message import OutboundMessage, SendResult
from orchestrator.domain.model import Channel
from orchestrator.rendering.links import LinkClaims
from orchestrator.runtime import Runtime
from orchestrator.store.models import Contact
from orchestrator.delivery.fresh_links import send_fresh_link
from tests.support.factories import launch, person, run


class Capture:
    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.sent: list[OutboundMessage] = []

    async def send(self, message: OutboundMessage) -> SendResult:
        self.sent.append(message)
        return SendResult(provider_id=f"id-{len(self.sent)}")

    async def close(self) -> None:
        pass


def _fresh(rt: Runtime, claims: LinkClaims) -> OutboundMessage:
    channels = {c: Capture(c) for c in Channel}
    assert run(send_fresh_link(rt, claims, channels)) == "sent"  # type: ignore[arg-type]
    (message,) = channels[Channel.EMAIL].sent + channels[Channel.SMS].sent
    return message


def _set_locale(rt: Runtime, contact_id: int, locale: str) -> None:
    with Session(rt.engine) as s:
        s.execute(update(Contact).where(Contact.id == contact_id).values(locale=locale))  # type: ignore[arg-type]
        s.commit()


def test_doctests() -> None:
    assert doctest.testmod(messages).failed == 0


def test_fresh_link_email_has_one_click_unsubscribe(make_rt: Callable[..., Runtime],
                                                    write_csv: Callable[..., Path]) -> None:
    rt = make_rt()
    campaign_id = launch(rt, write_csv([person(1)]))
    message = _fresh(rt, LinkClaims(1, campaign_id, "email"))
    headers = dict(message.headers)
    unsubscribe = rt.url("/u/" + rt.links.dumps("unsubscribe", LinkClaims(1, campaign_id, "email")))
    assert headers["List-Unsubscribe"].startswith(f"<{unsubscribe}>, <mailto:")
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.message_id and message.message_id.startswith("<newlink-k1-email-")


def test_fresh_link_is_in_the_person_language(make_rt: Callable[..., Runtime],
                                              write_csv: Callable[..., Path]) -> None:
    rt = make_rt()
    campaign_id = launch(rt, write_csv([person(1, locale="en-GB")]))
    _set_locale(rt, 1, "en-GB")  # a regional locale as some imports store it
    assert _fresh(rt, LinkClaims(1, campaign_id, "email")).meta["locale"] == "en"


def test_fresh_link_without_locale_or_campaign_falls_back_to_config(make_rt: Callable[..., Runtime],
                                                                     write_csv: Callable[..., Path]) -> None:
    rt = make_rt(contacts={"default_locale": "en"})
    launch(rt, write_csv([person(1)]))
    _set_locale(rt, 1, "")  # no locale on file
    assert _fresh(rt, LinkClaims(1, None, "email")).meta["locale"] == "en"
