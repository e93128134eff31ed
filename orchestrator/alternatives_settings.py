"""The ``[choices]`` settings (issue 18 §1): the alternatives to leaving that the preference page and
the unsubscribe page offer — "fewer messages" at one frequency the company chooses, and a pause of a
few months. Checked when the config is loaded like every other setting."""

from __future__ import annotations

import json
from typing import Any

from orchestrator.errors import ConfigError

#: the frequencies "fewer messages" may offer ("": not offered), in the order of the docs
FREQUENCIES = ("", "weekly", "monthly", "quarterly")
FEWER_DOC = ('The frequency offered as "fewer messages" on the preference and unsubscribe pages: weekly, monthly '
             'or quarterly ("": not offered). Choosing it confirms the channels and records the frequency in the '
             "ledger for the sending tools")
PAUSE_DOC = ('Pause lengths offered on the preference and unsubscribe pages, in months (each 1 to 24; []: no '
             "pause offered). Reconsent sends nothing to a paused person until the pause ends. Env: 3,6 or [3, 6]")
PAUSE_MAX_MONTHS = 24


def pause_months(value: Any, where: str) -> list[int]:
    """``pause_months = [3, 6]`` (from the environment: ``3,6`` or ``[3, 6]``): distinct whole numbers 1–24.

    >>> pause_months("3, 6", "x"), pause_months([], "x")
    ([3, 6], [])
    >>> try:
    ...     pause_months([0], "choices.pause_months")
    ... except ConfigError as exc:
    ...     print(exc)
    choices.pause_months: expected a list of whole numbers of months, each 1 to 24, got [0]
    """
    if isinstance(value, str):
        text = value.strip()
        try:
            value = json.loads(text) if text.startswith("[") else [int(p) for p in text.split(",") if p.strip()]
        except ValueError:
            raise ConfigError(f"{where}: expected a list of whole numbers of months, each 1 to "
                              f"{PAUSE_MAX_MONTHS}, got {value!r}") from None
    if (not isinstance(value, list) or not all(type(v) is int and 1 <= v <= PAUSE_MAX_MONTHS for v in value)
            or len(set(value)) != len(value)):
        raise ConfigError(f"{where}: expected a list of whole numbers of months, each 1 to {PAUSE_MAX_MONTHS}, "
                          f"got {value!r}")
    return list(value)
