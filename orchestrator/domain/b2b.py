"""Professional (B2B) contacts in a campaign: who is in the audience, and under which regime.

``[audience] b2b`` chooses whether the contacts marked ``b2b`` are in the audience:

- ``include`` (default): professionals and consumers alike (the behaviour before this key);
- ``exclude``: consumers only; ``only``: professionals only.

``[audience] b2b_regime`` chooses what a professional receives:

- ``consent`` (default): the consent request, as every contact (opt-in: no answer → suppressed);
- ``notice``: an information-and-opposition notice by email (opt-out: French CPCE art. L.34-5 and the
  CNIL's B2B rule for email to a professional address about the person's profession). The person may
  object (suppressed, as a refusal) or say nothing: at the deadline they are kept, with a ledger event
  ``notified`` as the proof that they were informed and did not object. A professional without an
  email address, and every SMS, stay under the consent regime (SMS prospecting is opt-in here).

>>> parse_b2b({"b2b": "only", "b2b_regime": "notice"}, "c.toml: [audience]")
('only', 'notice', 'notice')
>>> parse_b2b({"b2b": "some"}, "c.toml: [audience]")
Traceback (most recent call last):
...
orchestrator.errors.InputError: c.toml: [audience] b2b: unknown value 'some' (expected 'include', 'exclude' or 'only')
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.errors import InputError

INCLUDE, EXCLUDE, ONLY = "include", "exclude", "only"
B2B_CHOICES = (INCLUDE, EXCLUDE, ONLY)
CONSENT, NOTICE = "consent", "notice"
REGIMES = (CONSENT, NOTICE)
#: the shipped template of the notice (email only); ``[audience] notice_template`` names another
NOTICE_TEMPLATE = "notice"
KEYS = frozenset({"b2b", "b2b_regime", "notice_template"})


def parse_b2b(aud: Mapping[str, Any], where: str) -> tuple[str, str, str]:
    """``(b2b, b2b_regime, notice_template)`` of an ``[audience]`` table; one-line errors naming the key."""
    b2b = _choice(aud, "b2b", B2B_CHOICES, INCLUDE, where)
    regime = _choice(aud, "b2b_regime", REGIMES, CONSENT, where)
    if regime == NOTICE and b2b == EXCLUDE:
        raise InputError(f"{where} b2b_regime: 'notice' applies to professional contacts, but b2b = 'exclude' "
                         "leaves none in the audience (use b2b = 'include' or 'only', or b2b_regime = 'consent')")
    template = aud.get("notice_template", NOTICE_TEMPLATE)
    if not isinstance(template, str) or not template.strip():
        raise InputError(f"{where} notice_template: expected a template name, got {template!r}")
    if "notice_template" in aud and regime != NOTICE:
        raise InputError(f"{where} notice_template: only used with b2b_regime = 'notice'")
    return b2b, regime, template.strip()


def _choice(aud: Mapping[str, Any], key: str, allowed: tuple[str, ...], default: str, where: str) -> str:
    value = aud.get(key, default)
    if value not in allowed:
        expected = ", ".join(repr(a) for a in allowed[:-1]) + f" or {allowed[-1]!r}"
        raise InputError(f"{where} {key}: unknown value {value!r} (expected {expected})")
    return str(value)


def in_audience(mode: str, b2b: bool) -> bool:
    """Whether a contact (professional or not) is in an audience of this ``b2b`` mode.

    >>> [in_audience(m, True) for m in B2B_CHOICES], [in_audience(m, False) for m in B2B_CHOICES]
    ([True, False, True], [True, True, False])
    """
    return mode == INCLUDE or (mode == ONLY) == b2b


def under_notice(regime: str, b2b: bool, email: str | None) -> bool:
    """Whether a contact of a campaign of this regime gets the notice (opt-out) rather than a request.

    >>> under_notice("notice", True, "a@x.fr"), under_notice("notice", True, None)
    (True, False)
    >>> under_notice("notice", False, "a@x.fr"), under_notice("consent", True, "a@x.fr")
    (False, False)
    """
    return regime == NOTICE and b2b and bool(email)
