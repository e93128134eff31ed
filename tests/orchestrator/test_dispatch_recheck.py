"""The re-check right before each send [R3, R7, O3] still sees what changed after the batch was
claimed: the dispatcher reads a message's facts (suppression of the channel's own key, answer,
pause) in one query per message, in the transaction of its send mark."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlmodel import Session, select

from orchestrator.campaigns.service import set_paused
from orchestrator.consent.service import key_of, suppress
from orchestrator.delivery.worker import DispatchReport, Dispatcher
from orchestrator.domain.message import OutboundMessage, SendResult
from orchestrator.domain.model import Channel
from orchestrator.runtime import Runtime
from orchestrator.store.models import Contact, Enrolment, OutboxMessage
from tests.support.factories import launch, person, run

BOTH_NOW = [{"day": 0, "channel": "email", "template": "reconsent"},
            {"day": 0, "channel": "sms", "template": "reconsent"}]


class Recorder:
    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.sent: list[OutboundMessage] = []

    async def send(self, message: OutboundMessage) -> SendResult:
        self.sent.append(message)
        return SendResult(provider_id=f"rec-{message.idempotency_key}")

    async def close(self) -> None:
        pass


def claim_then(rt: Runtime, change: Callable[[Session], None]) -> tuple[dict[Channel, Recorder], DispatchReport]:
    """Claim one batch, commit ``change``, then process every claimed row."""
    channels = {c: Recorder(c) for c in Channel}
    dispatcher = Dispatcher(rt, channels)  # type: ignore[arg-type]
    claim_id, ids = dispatcher.claim()
    assert ids
    with Session(rt.engine) as session:
        change(session)
        session.commit()
    report = DispatchReport()

    async def go() -> None:
        try:
            for row_id in ids:
                await dispatcher.process(claim_id, row_id, report)
        finally:
            await dispatcher.close()

    run(go())
    return channels, report


def contact(session: Session, n: int) -> Contact:
    return session.exec(select(Contact).where(Contact.external_id == f"C-{n}")).one()


def test_suppression_after_the_claim_stops_only_that_channel(
    make_rt: Callable[..., Runtime], write_csv: Callable[..., Path]
) -> None:
    rt = make_rt()
    launch(rt, write_csv([person(1), person(2), person(3)]), steps=BOTH_NOW)

    def unsubscribe(session: Session) -> None:
        now = rt.clock.now()
        one, two = contact(session, 1), contact(session, 2)
        suppress(session, key_of(one, Channel.EMAIL), Channel.EMAIL.value, "unsubscribed", "test", now)
        suppress(session, key_of(two, Channel.SMS), Channel.SMS.value, "unsubscribed", "test", now)

    channels, report = claim_then(rt, unsubscribe)
    assert sorted(m.recipient for m in channels[Channel.EMAIL].sent) == ["person2@example.org", "person3@example.org"]
    assert sorted(m.recipient for m in channels[Channel.SMS].sent) == ["+33612340001", "+33612340003"]
    assert report.sent == 4 and dict(report.skipped) == {"suppressed": 2}
    with Session(rt.engine) as session:
        skipped = session.exec(select(OutboxMessage).where(OutboxMessage.status == "skipped")).all()
        assert sorted((r.channel, r.skip_reason) for r in skipped) == [("email", "suppressed"), ("sms", "suppressed")]
        assert all(r.claimed_by is None and r.send_started_at is None for r in skipped)


def test_an_answer_after_the_claim_is_honoured(
    make_rt: Callable[..., Runtime], write_csv: Callable[..., Path]
) -> None:
    rt = make_rt()
    launch(rt, write_csv([person(1), person(2)]), steps=BOTH_NOW[:1])

    def answer(session: Session) -> None:
        enrolment = session.exec(select(Enrolment).where(Enrolment.contact_id == contact(session, 1).id)).one()
        enrolment.state = "confirmed"
        enrolment.answered_at = rt.clock.now()
        session.add(enrolment)

    channels, report = claim_then(rt, answer)
    assert [m.recipient for m in channels[Channel.EMAIL].sent] == ["person2@example.org"]
    assert dict(report.skipped) == {"answered": 1}


def test_a_pause_after_the_claim_puts_rows_back_untouched(
    make_rt: Callable[..., Runtime], write_csv: Callable[..., Path]
) -> None:
    rt = make_rt()
    campaign_id = launch(rt, write_csv([person(1), person(2)]), steps=BOTH_NOW[:1])
    channels, report = claim_then(rt, lambda session: set_paused(rt, campaign_id, True))
    assert channels[Channel.EMAIL].sent == [] and report.sent == 0 and not report.skipped
    with Session(rt.engine) as session:
        rows = session.exec(select(OutboxMessage)).all()
        assert [(r.status, r.claimed_by, r.attempts) for r in rows] == [("pending", None, 0)] * 2
