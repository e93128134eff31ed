"""The campaign plan: audience rule + steps + deadline [O1], parsed from the SPEC §10 TOML form.

Steps after the first go only to people who have not answered [O3].

>>> plan = CampaignPlan.from_mapping({"name": "x", "deadline_days": 30,
...     "steps": [{"day": 0, "channel": "email", "template": "reconsent"}]})
>>> plan.steps[0].channel
<Channel.EMAIL: 'email'>
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from orchestrator.domain import b2b as pro
from orchestrator.domain.audience import AudienceRule
from orchestrator.domain.model import Channel, ContactKind
from orchestrator.errors import InputError

_TOP_KEYS = {"name", "deadline_days", "audience", "steps", "default_locale", "locales", "sms_segment_budget"}
_AUDIENCE_KEYS = {"kinds", "customer_inactive_months", "prospect_inactive_months", "ask_partner"}
_STEP_KEYS = {"day", "channel", "template"}
#: the largest value each number of a campaign file may take (issue 15: ``deadline_days = 99999999999``
#: was accepted, then ``campaign launch`` crashed computing the deadline)
MAX_DEADLINE_DAYS = 730
MAX_INACTIVE_MONTHS = 240
MAX_SMS_SEGMENTS = 10


@dataclass(frozen=True)
class Step:
    index: int
    day: int
    channel: Channel
    template: str


@dataclass(frozen=True)
class CampaignPlan:
    name: str
    deadline_days: int
    audience: AudienceRule
    steps: tuple[Step, ...]
    default_locale: str = "fr"
    locales: tuple[str, ...] = field(default=("fr", "en"))
    #: the stored version of each imported template the campaign sends, ``template/locale/channel``
    #: → version, pinned when the campaign is created (orchestrator.rendering.template_store.pin_wordings);
    #: a template without one is the shipped template of that name
    wordings: Mapping[str, str] = field(default_factory=dict, hash=False)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, where: str = "campaign", stored: bool = False) -> CampaignPlan:
        """Validate a parsed campaign TOML; every error names the key and what is expected.

        ``stored``: a campaign's plan as saved at creation, which may hold its pinned ``wordings``
        (a campaign file may not: they are pinned when the campaign is created).
        """
        _no_unknown(data, _TOP_KEYS | {"wordings"} if stored else _TOP_KEYS, where)
        name = data.get("name")
        if not isinstance(name, str) or not name.strip():
            raise InputError(f"{where}: 'name' is required (a non-empty string)")
        deadline = _positive_int(data.get("deadline_days"), f"{where}: 'deadline_days'", MAX_DEADLINE_DAYS)
        if "sms_segment_budget" in data:
            _positive_int(data["sms_segment_budget"], f"{where}: 'sms_segment_budget'", MAX_SMS_SEGMENTS)
        aud = data.get("audience", {})
        if not isinstance(aud, Mapping):
            raise InputError(f"{where}: [audience] must be a table")
        _no_unknown(aud, _AUDIENCE_KEYS | pro.KEYS, f"{where}: [audience]")
        b2b, regime, notice_template = pro.parse_b2b(aud, f"{where}: [audience]")
        kinds_raw = aud.get("kinds", ["customer", "prospect"])
        if not isinstance(kinds_raw, list) or not kinds_raw:
            raise InputError(f"{where}: [audience] kinds must be a list of 'customer'/'prospect'")
        kinds = []
        for k in kinds_raw:
            try:
                kinds.append(ContactKind(k))
            except ValueError:
                raise InputError(
                    f"{where}: [audience] kinds: unknown kind {k!r} (expected 'customer' or 'prospect')"
                ) from None
        audience = AudienceRule(
            kinds=tuple(kinds),
            customer_inactive_months=_positive_int(
                aud.get("customer_inactive_months", 12), f"{where}: [audience] customer_inactive_months",
                MAX_INACTIVE_MONTHS,
            ),
            prospect_inactive_months=_positive_int(
                aud.get("prospect_inactive_months", 36), f"{where}: [audience] prospect_inactive_months",
                MAX_INACTIVE_MONTHS,
            ),
            ask_partner=_partner_id(aud.get("ask_partner"), f"{where}: [audience] ask_partner"),
            b2b=b2b, b2b_regime=regime, notice_template=notice_template,
        )
        raw_steps = data.get("steps")
        if not isinstance(raw_steps, list) or not raw_steps:
            raise InputError(f"{where}: at least one [[steps]] entry is required")
        steps = []
        for i, raw in enumerate(raw_steps):
            label = f"{where}: steps[{i}]"
            if not isinstance(raw, Mapping):
                raise InputError(f"{label} must be a table")
            _no_unknown(raw, _STEP_KEYS, label)
            day = raw.get("day")
            if not isinstance(day, int) or isinstance(day, bool) or day < 0:
                raise InputError(f"{label}: 'day' must be a whole number ≥ 0, got {day!r}")
            if day >= deadline:
                raise InputError(
                    f"{label}: 'day' = {day} is not before the deadline (deadline_days = {deadline})"
                )
            try:
                channel = Channel(raw.get("channel", ""))
            except ValueError:
                raise InputError(
                    f"{label}: 'channel' must be 'email' or 'sms', got {raw.get('channel')!r}"
                ) from None
            template = raw.get("template")
            if not isinstance(template, str) or not template.strip():
                raise InputError(f"{label}: 'template' is required (a template name)")
            steps.append(Step(index=i, day=day, channel=channel, template=template.strip()))
        days = [s.day for s in steps]
        if days != sorted(days):
            raise InputError(f"{where}: steps must be in order of 'day'")
        if audience.b2b_regime == pro.NOTICE and not any(s.channel is Channel.EMAIL for s in steps):
            raise InputError(f"{where}: [audience] b2b_regime: 'notice' is sent by email, but no step is an email "
                             "step (add an email step, or use b2b_regime = 'consent')")
        default_locale = data.get("default_locale", "fr")
        locales = data.get("locales", ["fr", "en"])
        if (not isinstance(locales, list) or not all(isinstance(x, str) and x for x in locales)
                or default_locale not in locales):
            raise InputError(f"{where}: 'default_locale' ({default_locale!r}) must be one of 'locales'")
        wordings = data.get("wordings", {})
        if not isinstance(wordings, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in wordings.items()):
            raise InputError(f"{where}: 'wordings' must map 'template/locale/channel' to a version")
        return cls(
            name=name.strip(),
            deadline_days=deadline,
            audience=audience,
            steps=tuple(steps),
            default_locale=default_locale,
            locales=tuple(locales),
            wordings=dict(wordings),
        )

    def to_mapping(self) -> dict[str, Any]:
        wordings = {"wordings": dict(self.wordings)} if self.wordings else {}
        return {
            "name": self.name,
            "deadline_days": self.deadline_days,
            "default_locale": self.default_locale,
            "locales": list(self.locales),
            "audience": {
                "kinds": [str(k) for k in self.audience.kinds],
                "customer_inactive_months": self.audience.customer_inactive_months,
                "prospect_inactive_months": self.audience.prospect_inactive_months,
                **({"ask_partner": self.audience.ask_partner} if self.audience.ask_partner else {}),
                **self._b2b_mapping(),
            },
            "steps": [
                {"day": s.day, "channel": str(s.channel), "template": s.template} for s in self.steps
            ],
            **wordings,
        }

    def _b2b_mapping(self) -> dict[str, str]:
        """The B2B keys that differ from their default (a plan without them reads as before)."""
        a = self.audience
        out = {} if a.b2b == pro.INCLUDE else {"b2b": a.b2b}
        if a.b2b_regime == pro.NOTICE:
            out.update(b2b_regime=a.b2b_regime, notice_template=a.notice_template)
        return out

    def notice_steps(self) -> tuple[Step, ...]:
        """The email steps as the professionals of a notice campaign receive them: the notice template
        (empty when ``b2b_regime`` is ``consent``). Their index and day are the step's.

        >>> plan = CampaignPlan.from_mapping({"name": "x", "deadline_days": 9, "audience": {"b2b_regime": "notice"},
        ...     "steps": [{"day": 0, "channel": "email", "template": "t"},
        ...               {"day": 1, "channel": "sms", "template": "t"}]})
        >>> [(s.index, s.channel.value, s.template) for s in plan.notice_steps()]
        [(0, 'email', 'notice')]
        """
        if self.audience.b2b_regime != pro.NOTICE:
            return ()
        return tuple(replace(s, template=self.audience.notice_template) for s in self.steps
                     if s.channel is Channel.EMAIL)

    def wording(self, template: str, locale: str, channel: Channel) -> str | None:
        """The pinned version of an imported template; None: the shipped template of that name.

        >>> plan = CampaignPlan.from_mapping({"name": "x", "deadline_days": 9, "wordings": {"t/fr/sms": "ab12"},
        ...     "steps": [{"day": 0, "channel": "sms", "template": "t"}]}, stored=True)
        >>> plan.wording("t", "fr", Channel.SMS), plan.wording("t", "en", Channel.SMS)
        ('ab12', None)
        """
        return self.wordings.get(wording_key(template, locale, channel)) if self.wordings else None

    @property
    def first_channel(self) -> Channel:
        return self.steps[0].channel

    def pick_locale(self, contact_locale: str | None) -> str:
        """Contact's locale if the campaign has it, else the campaign default.

        >>> CampaignPlan.from_mapping({"name": "x", "deadline_days": 9, "steps": [
        ...   {"day": 0, "channel": "sms", "template": "t"}]}).pick_locale("de")
        'fr'
        """
        if contact_locale:
            lang = contact_locale.split("-")[0].split("_")[0].lower()
            if lang in self.locales:
                return lang
        return self.default_locale


def wording_key(template: str, locale: str, channel: Channel) -> str:
    """How :attr:`CampaignPlan.wordings` names a template's wording: ``reconsent/fr/email``."""
    return f"{template}/{locale}/{channel.value}"


def _positive_int(value: Any, label: str, most: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= most:
        raise InputError(f"{label} must be a whole number > 0 and ≤ {most}, got {value!r}")
    return value


def _partner_id(value: Any, where: str) -> str | None:
    """``[audience] ask_partner``: the id of a ``[[partners]]`` entry of the config (issue 18).

    >>> _partner_id(None, "x"), _partner_id("newco", "x")
    (None, 'newco')
    """
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"[a-z0-9_-]{1,40}", value):
        raise InputError(f"{where}: expected the id of a [[partners]] entry of the config, got {value!r}")
    return value


def _no_unknown(data: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise InputError(
            f"{where}: unknown key {unknown[0]!r} (expected one of {', '.join(sorted(allowed))})"
        )
