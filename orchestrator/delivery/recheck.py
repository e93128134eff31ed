"""The re-check before a send [R3, R7, O3], one *group* of claimed rows at a time, in the
transaction of the group's mark: row still ours, campaign running (a campaign paused since the claim
gives its rows back untouched), request still pending, address present and not suppressed for the
channel, deadline not passed, inside the send window of the recipient's zone and holiday region
(else deferred to its opening). The rows that pass are marked (``send_started_at``, the
deterministic Message-ID) and returned with what their message is built from. The decisions are
the domain's (``skip_reason``, ``SendWindow``, ``place_of``); the statements are ``outbox``'s.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row
from sqlalchemy.engine import Connection

from orchestrator.consent.alternatives import paused
from orchestrator.delivery import outbox
from orchestrator.delivery.claims import Before, Claim, DispatchReport
from orchestrator.delivery.messages import outbox_message_id
from orchestrator.domain.campaign import CampaignPlan
from orchestrator.domain.clock import Clock, as_utc
from orchestrator.domain.eligibility import SendFacts, skip_reason
from orchestrator.domain.model import CampaignState, Channel, DeliveryState, SkipReason
from orchestrator.domain.places import place_of
from orchestrator.domain.windows import SendWindow
from orchestrator.rendering.checks import BUILD_FAILURE, describe_error
from orchestrator.rendering.template_store import load_pinned
from orchestrator.runtime import Runtime

#: called with the number of rows done with (a progress bar's ``update``), or None
Progress = Callable[[int], object] | None


def window_for(rt: Runtime, channel: Channel) -> SendWindow:
    w = rt.config.windows
    preset = w.sms if channel is Channel.SMS else w.email
    if preset == "custom":
        return SendWindow.parse(w.custom_start, w.custom_end, w.custom_days, w.holiday_country)
    return SendWindow.preset(preset)


@dataclass
class Ready:
    """A marked row and what its message is built from (the facts row of the group's query)."""

    row_id: int
    facts: Row[Any]
    plan: CampaignPlan
    window: SendWindow
    tz: str
    address: str
    deadline: datetime
    before: Before  # send_started_at, first_attempt_at, message_id before the mark
    code: str  # the row's short code (in the Message-ID of the mark and in the message's short link)

    @property
    def unknown(self) -> bool:
        """Marked by a worker that died before recording the result."""
        return self.before[0] is not None

    def build_failure(self, exc: Exception) -> str:
        """The reason recorded on this row when its message could not be built: one line, the same
        for every row of the same template, locale and error (so a batch logs it once, with a count)."""
        facts = self.facts
        try:
            locale = self.plan.pick_locale(facts.locale)
        except Exception:
            locale = str(facts.locale)
        return f"{BUILD_FAILURE}: {describe_error(exc, facts.template, facts.channel, locale)}"[:500]


@dataclass
class GroupCheck:
    """What one group's re-check found (filled in a worker thread, applied on the event loop)."""

    ready: list[Ready] = field(default_factory=list)  # marked: to build and send
    done: list[int] = field(default_factory=list)  # skipped, deferred, paused or no longer ours
    skipped: Counter[str] = field(default_factory=Counter)
    deferred: int = 0

    def apply_to(self, claim: Claim, report: DispatchReport, progress: Progress) -> None:
        """Forget the rows done with, remember the marked ones (a graceful stop undoes their mark)."""
        for row_id in self.done:
            claim.rows.pop(row_id, None)
        for ready in self.ready:
            claim.marked[ready.row_id] = ready.before
        report.skipped.update(self.skipped)
        report.deferred += self.deferred
        if progress and self.done:
            progress(len(self.done))


class GroupChecker:
    """Re-checks and marks groups for one worker; campaign plans are parsed once per worker.
    ``lease_clock`` stamps the marks (real time), ``rt.clock`` is business time."""

    def __init__(self, rt: Runtime, lease_clock: Clock) -> None:
        self.rt = rt
        self.lease_clock = lease_clock
        self.windows = {c: window_for(rt, c) for c in Channel}
        self._plans: dict[tuple[int, Any], CampaignPlan] = {}

    def plan(self, conn: Connection, campaign_id: int, created_at: Any) -> CampaignPlan:
        """The campaign's parsed plan, read and parsed once per worker (a plan never changes after
        the campaign is created; the creation time guards against a reused id), with the sources of
        the imported wording versions it pins handed to the renderer (messages are built on the
        event loop: no query there)."""
        cache_key = (campaign_id, created_at)
        plan = self._plans.get(cache_key)
        if plan is None:
            plan = CampaignPlan.from_mapping(outbox.campaign_plan(conn, campaign_id), stored=True)
            load_pinned(conn, self.rt.renderer, plan)
            self._plans[cache_key] = plan
        return plan

    def recheck_and_mark(self, claim_id: str, ids: list[int], conn: Connection) -> GroupCheck:
        """One group, one transaction: read every row's facts with one query, decide each row, write
        the skips, deferrals and pauses, and mark the rest (one executemany) — an unsubscribe, an
        answer or a pause committed before this query stops every message of the group."""
        rt = self.rt
        out = GroupCheck()
        now = rt.clock.now()
        facts_rows = outbox.send_facts(conn, ids)
        on_pause = paused(conn, ((f.contact_id, f.channel) for f in facts_rows.values()), now.date())
        writes = outbox.GroupWrites([], [], [], [])
        stamp = self.lease_clock.now()
        for row_id in ids:
            facts_row = facts_rows.get(row_id)
            if facts_row is None or facts_row.claimed_by != claim_id or facts_row.status != DeliveryState.SENDING.value:
                out.done.append(row_id)
                continue
            channel = Channel(facts_row.channel)
            if facts_row.campaign_state == CampaignState.PAUSED.value:
                # paused after the claim: back to the queue untouched (no skip, no send)
                writes.paused.append({"row_id": row_id})
                out.done.append(row_id)
                continue
            address = facts_row.email if channel is Channel.EMAIL else facts_row.phone
            deadline_at = facts_row.enrolment_deadline_at or facts_row.campaign_deadline_at
            facts = SendFacts(
                campaign_state=facts_row.campaign_state,
                request_state=facts_row.request_state,
                suppressed=bool(facts_row.suppressed),
                has_address=bool(address) and facts_row.erased_at is None,
                deadline=as_utc(deadline_at) if deadline_at else now + timedelta(days=1),
                now=now,
            )
            reason = skip_reason(facts) or (
                SkipReason.PAUSED if (facts_row.contact_id, facts_row.channel) in on_pause else None)
            if reason is not None:
                if DeliveryState.can_move(DeliveryState(facts_row.status), DeliveryState.SKIPPED):
                    writes.skips.append({"row_id": row_id, "updated_at": now, "skip_reason": reason.value})
                out.skipped[reason.value] += 1
                out.done.append(row_id)
                continue
            window = self.windows[channel]
            # the recipient's zone and holiday region: the timezone column, else the phone number's
            # (+590 → America/Guadeloupe), else the default; the region from the number or `region`
            place = place_of(facts_row.phone, facts_row.timezone, facts_row.region,
                             rt.config.windows.default_timezone, window.holiday_country)
            tz = place.zone
            opening = window.next_opening(now, tz, place.holiday_region)
            if opening > now:
                writes.defers.append({"row_id": row_id, "due_at": opening})
                out.deferred += 1
                out.done.append(row_id)
                continue
            plan = self.plan(conn, facts_row.campaign_id, facts_row.campaign_created_at)
            code = rt.links.short_code(row_id)
            writes.marks.append({
                "row_id": row_id, "claim_id": claim_id,
                "message_id": outbox_message_id(rt, row_id, code) if channel is Channel.EMAIL else None,
                "first_attempt_at": facts_row.first_attempt_at or now, "send_started_at": stamp})
            out.ready.append(Ready(row_id, facts_row, plan, window, tz, address, as_utc(deadline_at),
                                   (facts_row.send_started_at, facts_row.first_attempt_at, facts_row.message_id),
                                   code))
        ours = outbox.write_group(conn, claim_id, writes)
        if ours is not None:  # some row is no longer ours (taken over)
            out.done += [r.row_id for r in out.ready if r.row_id not in ours]
            out.ready = [r for r in out.ready if r.row_id in ours]
        return out
