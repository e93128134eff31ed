"""``campaign test-send``: a campaign's steps sent to the marketer's own address, as a person would get
them, with nothing counted or recorded.

Each chosen step is built by the one message factory (:func:`orchestrator.delivery.messages.trial_message`:
an invented person, subject prefixed ``[TEST]``, links in preview mode) and handed to the configured
channel adapter, as the fresh link is. No outbox row, enrolment, consent event or campaign counter is
written; the pages the links open recognise the preview token and record nothing either.

A campaign with ``[audience] b2b_regime = "notice"`` sends each chosen email step twice: as the consent
request (consumers) and as the B2B notice (template ``notice_template``, its link opening the notice
page), so the marketer sees both; with ``b2b = "only"`` nobody gets the email request, so only the notice
is sent. The notice's lines name its template.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.campaigns.service import read_campaign
from orchestrator.delivery.channels import MessageChannel, build_channels
from orchestrator.delivery.messages import trial_message
from orchestrator.domain import b2b as pro
from orchestrator.domain.addresses import AddressError, normalise_email, normalise_phone
from orchestrator.domain.campaign import CampaignPlan, Step
from orchestrator.domain.model import Channel
from orchestrator.errors import InputError, SendError
from orchestrator.runtime import Runtime


@dataclass(frozen=True)
class TrialSent:
    step: int
    channel: str
    template: str
    locale: str
    #: "sent", or why not: "skipped: …" (another channel than the address's), "failed: …"
    outcome: str
    subject: str | None = None


def trial_address(rt: Runtime, raw: str) -> tuple[Channel, str]:
    """The channel and normalised form of ``--to`` (InputError naming it when invalid)."""
    raw = raw.strip()
    try:
        if "@" in raw:
            return Channel.EMAIL, normalise_email(raw)
        return Channel.SMS, normalise_phone(raw, rt.config.contacts.default_region)
    except AddressError as exc:
        raise InputError(f"--to {raw!r}: {exc.reason}") from None


async def send_trial(rt: Runtime, campaign_id: int, to: str, *, step: int | None = None, locale: str | None = None,
                    channels: dict[Channel, MessageChannel] | None = None) -> list[TrialSent]:
    """Send the campaign's steps (or step ``step``) rendered in ``locale`` (the campaign's default
    when None) to ``to``. Steps on the other channel than ``to``'s are skipped, said in the result."""
    channel, address = trial_address(rt, to)
    _, plan = read_campaign(rt, campaign_id)
    if step is not None and not 0 <= step < len(plan.steps):
        raise InputError(f"--step {step}: campaign {campaign_id} has steps 0 to {len(plan.steps) - 1}")
    if locale is not None and locale not in plan.locales:
        raise InputError(f"--locale {locale!r}: campaign {campaign_id} speaks {', '.join(plan.locales)}")
    chosen = [plan.steps[step]] if step is not None else list(plan.steps)
    if step is not None and chosen[0].channel is not channel:
        raise InputError(f"step {step} is sent by {chosen[0].channel.value}: give "
                         f"{'an email address' if chosen[0].channel is Channel.EMAIL else 'a phone number'} "
                         "with --to")
    lang = locale or plan.default_locale
    own = channels is None
    adapters = channels if channels is not None else build_channels(rt.config)
    out: list[TrialSent] = []
    try:
        for s, notice in _versions(plan, chosen):
            if s.channel is not channel:
                out.append(TrialSent(s.index, s.channel.value, s.template, lang,
                                    f"skipped: a {s.channel.value} step (--to is {channel.value})"))
                continue
            message = trial_message(rt, plan, campaign_id=campaign_id, step=s.index, locale=lang, address=address,
                                    notice=notice)
            try:
                await adapters[channel].send(message)
            except SendError as exc:
                out.append(TrialSent(s.index, s.channel.value, s.template, lang, f"failed: {exc.reason}"))
                continue
            out.append(TrialSent(s.index, s.channel.value, s.template, lang, "sent", message.subject))
    finally:
        if own:
            for adapter in adapters.values():
                await adapter.close()
    return out


def _versions(plan: CampaignPlan, steps: list[Step]) -> list[tuple[Step, bool]]:
    """(step, is the B2B notice) of each message a test send of these steps sends, in step order."""
    notices = {s.index: s for s in plan.notice_steps()}
    out: list[tuple[Step, bool]] = []
    for s in steps:
        if s.index not in notices or plan.audience.b2b != pro.ONLY:  # b2b = "only": no email request is sent
            out.append((s, False))
        if s.index in notices:
            out.append((notices[s.index], True))
    return out
