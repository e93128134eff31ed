"""The outbox worker [O2]: claim due rows, re-check everything, render, sign, send, record.

Each row is claimed with a lease (status ``sending``) and committed before the send; its result is
committed right after. A crash between the provider accepting a message and that commit is the only
window in which a row can be sent twice (the lease expires and another worker takes it over); the
deterministic Message-ID lets anyone downstream recognise such a duplicate.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update

from orchestrator.campaigns import message_context
from orchestrator.channels import MessageChannel, build_channels
from orchestrator.consent import is_suppressed, key_of, suppress
from orchestrator.domain.campaign import CampaignPlan
from orchestrator.domain.clock import as_utc
from orchestrator.domain.eligibility import SendFacts, skip_reason
from orchestrator.domain.message import OutboundMessage
from orchestrator.domain.model import CampaignState, Channel, DeliveryState
from orchestrator.domain.windows import SendWindow
from orchestrator.errors import PermanentSendError, TransientSendError
from orchestrator.links import LinkClaims
from orchestrator.runtime import Runtime
from orchestrator.store.db import session_scope
from orchestrator.store.models import Campaign, Contact, Enrolment, OutboxMessage

log = logging.getLogger("reconsent.dispatch")
MAX_BACKOFF = timedelta(hours=6)
TWILIO_MAX_VALIDITY = 36000


@dataclass
class DispatchReport:
    sent: int = 0
    failed: int = 0
    retried: int = 0
    deferred: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        skipped = ", ".join(f"{n} {reason}" for reason, n in sorted(self.skipped.items())) or "none"
        return (f"sent {self.sent}, failed {self.failed}, retry later {self.retried}, "
                f"waiting for send window {self.deferred}, skipped: {skipped}")

    def add(self, other: DispatchReport) -> None:
        self.sent += other.sent
        self.failed += other.failed
        self.retried += other.retried
        self.deferred += other.deferred
        self.skipped.update(other.skipped)


def window_for(rt: Runtime, channel: Channel) -> SendWindow:
    w = rt.config.windows
    preset = w.sms if channel is Channel.SMS else w.email
    if preset == "custom":
        return SendWindow.parse(w.custom_start, w.custom_end, w.custom_days, w.holiday_country)
    return SendWindow.preset(preset)


class Dispatcher:
    def __init__(self, rt: Runtime, channels: dict[Channel, MessageChannel] | None = None) -> None:
        self.rt = rt
        self.channels = channels if channels is not None else build_channels(rt.config)
        self.windows = {c: window_for(rt, c) for c in Channel}
        self.stopping = False

    # -- claiming -------------------------------------------------------------------------------
    def claim(self) -> tuple[str, list[int]]:
        cfg = self.rt.config.dispatch
        now = self.rt.clock.now()
        claim_id = uuid.uuid4().hex
        due = (
            select(OutboxMessage.id)
            .join(Campaign, Campaign.id == OutboxMessage.campaign_id)
            .where(
                Campaign.state == CampaignState.RUNNING.value,
                or_(
                    and_(OutboxMessage.status == DeliveryState.PENDING.value, OutboxMessage.due_at <= now),
                    and_(OutboxMessage.status == DeliveryState.SENDING.value, OutboxMessage.claimed_until < now),  # type: ignore[operator]
                ),
            )
            .order_by(OutboxMessage.due_at, OutboxMessage.id)
            .limit(cfg.batch_size)
        )
        if self.rt.engine.dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True, of=OutboxMessage)  # type: ignore[arg-type]
        with session_scope(self.rt.engine) as session:
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(due.scalar_subquery()))  # type: ignore[union-attr]
                .values(status=DeliveryState.SENDING.value, claimed_by=claim_id,
                        claimed_until=now + timedelta(seconds=cfg.lease_seconds), updated_at=now),
            )
        with session_scope(self.rt.engine) as session:
            ids = list(session.execute(
                select(OutboxMessage.id).where(OutboxMessage.claimed_by == claim_id).order_by(OutboxMessage.id)
            ).scalars())
        return claim_id, ids

    # -- running --------------------------------------------------------------------------------
    async def run_once(self, progress: Any = None) -> DispatchReport:
        """Send everything due now, then return."""
        report = DispatchReport()
        sem = asyncio.Semaphore(self.rt.config.dispatch.concurrency)

        async def one(claim_id: str, row_id: int) -> None:
            async with sem:
                await self.process(claim_id, row_id, report)
                if progress:
                    progress(1)

        while not self.stopping:
            claim_id, ids = self.claim()
            if not ids:
                break
            await asyncio.gather(*(one(claim_id, i) for i in ids))
        return report

    async def run_forever(self, stop: asyncio.Event) -> DispatchReport:
        total = DispatchReport()
        while not stop.is_set():
            total.add(await self.run_once())
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.rt.config.dispatch.poll_seconds)
            except asyncio.TimeoutError:
                pass
        return total

    async def close(self) -> None:
        for channel in self.channels.values():
            await channel.close()

    # -- one message ----------------------------------------------------------------------------
    async def process(self, claim_id: str, row_id: int, report: DispatchReport) -> None:
        rt = self.rt
        now = rt.clock.now()
        with session_scope(rt.engine) as session:
            row = session.get(OutboxMessage, row_id)
            if row is None or row.claimed_by != claim_id:
                return
            contact = session.get(Contact, row.contact_id)
            enrolment = session.get(Enrolment, row.enrolment_id)
            campaign = session.get(Campaign, row.campaign_id)
            assert contact is not None and enrolment is not None and campaign is not None
            channel = Channel(row.channel)
            address = contact.email if channel is Channel.EMAIL else contact.phone
            facts = SendFacts(
                campaign_state=campaign.state,
                request_state=enrolment.state,
                suppressed=is_suppressed(session, key_of(contact, channel), channel.value),
                has_address=bool(address) and contact.erased_at is None,
                deadline=as_utc(campaign.deadline_at) if campaign.deadline_at else now + timedelta(days=1),
                now=now,
            )
            reason = skip_reason(facts)
            if reason is not None:
                _finish(row, DeliveryState.SKIPPED, now, skip_reason=reason.value)
                session.add(row)
                report.skipped[reason.value] += 1
                return
            tz = contact.timezone or rt.config.windows.default_timezone
            window = self.windows[channel]
            opening = window.next_opening(now, tz)
            if opening > now:
                row.status = DeliveryState.PENDING.value
                row.due_at = opening
                row.claimed_by = row.claimed_until = None
                row.skip_reason = "outside_window"
                session.add(row)
                report.deferred += 1
                return
            plan = CampaignPlan.from_mapping(campaign.plan)
            message = self.build_message(row, contact, plan, as_utc(campaign.deadline_at), window, tz, address)  # type: ignore[arg-type]
            row.message_id = message.message_id
            row.first_attempt_at = row.first_attempt_at or now
            row.attempts += 1
            session.add(row)
        # The row (with its Message-ID) is committed before the send.
        try:
            result = await self.channels[channel].send(message)
        except TransientSendError as exc:
            self._record_transient(row_id, claim_id, exc, report)
            return
        except PermanentSendError as exc:
            self._record_permanent(row_id, claim_id, exc, report)
            return
        with session_scope(rt.engine) as session:
            row = session.get(OutboxMessage, row_id)
            assert row is not None
            _finish(row, DeliveryState.SENT, rt.clock.now(), provider_id=result.provider_id)
            row.sent_at = rt.clock.now()
            row.provider_status = result.status
            row.template_version = message.meta.get("template_version")
            row.locale = message.meta.get("locale")
            session.add(row)
        report.sent += 1

    def build_message(self, row: OutboxMessage, contact: Contact, plan: CampaignPlan, deadline: datetime,
                      window: SendWindow, tz: str, address: str) -> OutboundMessage:
        rt = self.rt
        cfg = rt.config
        channel = Channel(row.channel)
        locale = plan.pick_locale(contact.locale)
        claims = LinkClaims(contact_id=row.contact_id, campaign_id=row.campaign_id, channel=channel.value)
        page_url = rt.url("/p/" + rt.links.dumps("page", claims))
        unsubscribe_url = rt.url("/u/" + rt.links.dumps("unsubscribe", claims))
        assert row.id is not None
        code = rt.links.short_code(row.id)
        ctx = message_context(rt, first_name=contact.first_name, page_url=page_url, unsubscribe_url=unsubscribe_url,
                              short_url=rt.url("/s/" + code), deadline=deadline, locale=locale)
        rendered = rt.renderer.render(row.template, channel, locale, ctx)
        meta = {"template_version": rendered.version, "locale": locale}
        key = f"c{row.campaign_id}-k{row.contact_id}-s{row.step}-{channel.value}"
        if channel is Channel.EMAIL:
            domain = cfg.email.message_id_domain or cfg.sender.email_from.rpartition("@")[2] or "localhost"
            mailto = cfg.sender.unsubscribe_mailto or cfg.sender.email_from
            return OutboundMessage(
                channel=channel, recipient=address, idempotency_key=key, text=rendered.text,
                subject=rendered.subject, html=rendered.html, sender=cfg.sender.email_from,
                sender_name=cfg.sender.name, message_id=f"<rc.{code}@{domain}>", date=rt.clock.now(),
                headers=(
                    ("List-Unsubscribe", f"<{unsubscribe_url}>, <mailto:{mailto}?subject=unsubscribe>"),
                    ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
                ),
                meta=meta,
            )
        now = rt.clock.now()
        validity = int((window.closes_at(now, tz) - now).total_seconds()) - 60
        return OutboundMessage(
            channel=channel, recipient=address, idempotency_key=key, text=rendered.text,
            sender=cfg.sender.sms_from, status_callback=rt.url("/twilio/status"),
            validity_period=max(60, min(validity, TWILIO_MAX_VALIDITY)), meta=meta,
        )

    def _record_transient(self, row_id: int, claim_id: str, exc: TransientSendError, report: DispatchReport) -> None:
        rt = self.rt
        now = rt.clock.now()
        cfg = rt.config.dispatch
        with session_scope(rt.engine) as session:
            row = session.get(OutboxMessage, row_id)
            assert row is not None
            first = as_utc(row.first_attempt_at) if row.first_attempt_at else now
            row.last_error = exc.reason[:500]
            if now - first >= timedelta(hours=cfg.retry_horizon_hours):
                _finish(row, DeliveryState.FAILED, now)
                report.failed += 1
            else:
                delay = timedelta(seconds=cfg.retry_base_seconds * 2 ** max(0, row.attempts - 1))
                delay = min(delay, MAX_BACKOFF) * random.uniform(0.5, 1.5)
                if exc.retry_after:
                    delay = max(delay, timedelta(seconds=exc.retry_after))
                row.status = DeliveryState.PENDING.value
                row.due_at = (now + delay)
                row.claimed_by = row.claimed_until = None
                report.retried += 1
            session.add(row)
        log.info("transient failure on outbox row %s: %s", row_id, exc.reason)

    def _record_permanent(self, row_id: int, claim_id: str, exc: PermanentSendError, report: DispatchReport) -> None:
        rt = self.rt
        now = rt.clock.now()
        with session_scope(rt.engine) as session:
            row = session.get(OutboxMessage, row_id)
            assert row is not None
            contact = session.get(Contact, row.contact_id)
            state = DeliveryState.BOUNCED if exc.suppress == "bounced" else DeliveryState.FAILED
            _finish(row, state, now)
            row.last_error = exc.reason[:500]
            session.add(row)
            if exc.suppress and contact is not None:
                suppress(session, key_of(contact, row.channel), row.channel, exc.suppress, "provider", now)
        report.failed += 1
        log.info("permanent failure on outbox row %s: %s", row_id, exc.reason)


def _finish(row: OutboxMessage, state: DeliveryState, now: datetime, *, skip_reason: str | None = None,
            provider_id: str | None = None) -> None:
    if not DeliveryState.can_move(DeliveryState(row.status), state):
        return
    row.status = state.value
    row.claimed_by = row.claimed_until = None
    row.updated_at = now
    if skip_reason:
        row.skip_reason = skip_reason
    if provider_id:
        row.provider_id = provider_id


async def dispatch_once(rt: Runtime, channels: dict[Channel, MessageChannel] | None = None, progress: Any = None) -> DispatchReport:
    dispatcher = Dispatcher(rt, channels)
    try:
        return await dispatcher.run_once(progress)
    finally:
        if channels is None:
            await dispatcher.close()
