"""One setting's value: read from TOML or an environment variable, then checked against what it allows.

The allowed values are declared with the setting in ``orchestrator.config`` (``lo``/``hi`` for a
number, ``zone`` for a time zone, a list of choices); this module applies them. An error is one line
naming where the value came from (file and key, or environment variable), the value and what is allowed:

>>> import dataclasses; port = dataclasses.field(metadata={"range": (1, 65535)})
>>> check(port, None, -1, "site.toml: server.port")
Traceback (most recent call last):
...
orchestrator.errors.ConfigError: site.toml: server.port: expected 1 to 65535, got -1
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Collection, Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from orchestrator.errors import ConfigError

#: the credentials of a URL: ``user:password@`` up to the last ``@`` of the URL (a password may hold one)
_URL_PASSWORD = re.compile(r"(\b[a-zA-Z][\w+.-]*://[^\s:/@'\"]*:)[^\s'\"]*@")
#: a password or token given as a query parameter (``?password=…``, ``&auth_token=…``)
_QUERY_SECRET = re.compile(r"([?&;\s](?:password|passwd|pwd|auth_token|token|secret|api_key)=)[^&\s'\"]+",
                           re.IGNORECASE)


def hide_credentials(text: str) -> str:
    """``text`` with the password of every URL in it, and secret query parameters, masked: the one
    masking function for what a person or a log may see (messages, errors, ``doctor``, log lines).

    >>> hide_credentials("cannot reach postgresql+psycopg://app:s3cr@t@db:5432/x?sslmode=require")
    'cannot reach postgresql+psycopg://app:***@db:5432/x?sslmode=require'
    >>> hide_credentials("Could not parse URL from string 'postgresql://u@h/db?password=hunter2'")
    "Could not parse URL from string 'postgresql://u@h/db?password=***'"
    """
    return _QUERY_SECRET.sub(r"\1***", _URL_PASSWORD.sub(r"\1***@", text))


def described(f: dataclasses.Field[Any], choices: Collection[str] | None) -> str:
    """What setting ``f`` allows, in words ("" when any value of its type does)."""
    lo, hi = f.metadata.get("range", (None, None))
    if choices:
        return "one of " + ", ".join(c or '""' for c in sorted(choices))  # "": the setting's "none"
    if f.metadata.get("zone"):
        return "an IANA time zone, e.g. Europe/Paris"
    if lo is not None and hi is not None:
        return f"{lo} to {hi}"
    return f"at least {lo}" if lo is not None else ""


def check(f: dataclasses.Field[Any], choices: Collection[str] | None, value: Any, where: str) -> None:
    """Refuse ``value`` for setting ``f`` unless it is allowed (ConfigError: one line)."""
    lo, hi = f.metadata.get("range", (None, None))
    if ((choices and value not in choices) or (lo is not None and value < lo) or (hi is not None and value > hi)
            or (f.metadata.get("zone") and not is_zone(value))):
        raise ConfigError(f"{where}: expected {described(f, choices)}, got {value!r}")


def is_zone(name: str) -> bool:
    """Whether ``name`` is a time zone of the IANA database (``Europe/Paris``; not ``Mars/Olympus``)."""
    try:
        ZoneInfo(name)
    except (ValueError, OSError, ZoneInfoNotFoundError):  # a folder ("Europe") is an OSError
        return False
    return True


def coerce(value: Any, expected: Any, where: str) -> Any:
    origin = getattr(expected, "__origin__", None)
    if expected is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in {"1", "true", "yes", "on", "0", "false", "no", "off"}:
            return value.strip().lower() in {"1", "true", "yes", "on"}
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if expected is int:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected a whole number, got {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a whole number, got {value!r}") from None
    if expected is float:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    if expected is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if origin is dict:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise ConfigError(f"{where}: expected a JSON object of lists, e.g. {{\"fr\": [\"STOP\"]}}") from None
        if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, list) and all(isinstance(x, str) for x in v) for k, v in value.items()
        ):
            raise ConfigError(f"{where}: expected a table of string lists per locale, got {value!r}")
        return {k: list(v) for k, v in value.items()}
    if origin is list:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    value = json.loads(text)
                except json.JSONDecodeError:
                    raise ConfigError(f"{where}: expected a JSON list or comma-separated values") from None
            else:
                value = [part.strip() for part in text.split(",") if part.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: expected a list of strings, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported setting type")  # pragma: no cover


def validate(cfg: Any) -> None:
    """The checks that span several settings of a loaded ``orchestrator.config.Config`` (one line each)."""
    if not cfg.security.signing_keys or not all(k.strip() for k in cfg.security.signing_keys):
        raise ConfigError("security.signing_keys: at least one non-empty key is required "
                          "(RECONSENT_SECURITY__SIGNING_KEYS)")
    if not cfg.security.suppression_key.strip():
        raise ConfigError("security.suppression_key: a non-empty secret is required "
                          "(RECONSENT_SECURITY__SUPPRESSION_KEY)")
    if not cfg.public.base_url.startswith(("http://", "https://")):
        raise ConfigError(f"public.base_url: expected an http(s) URL, got {cfg.public.base_url!r}")
    if cfg.sms.transport == "twilio" and not (cfg.sms.account_sid and cfg.sms.auth_token):
        raise ConfigError("sms.account_sid / sms.auth_token: required when sms.transport = \"twilio\" "
                          "(RECONSENT_SMS__AUTH_TOKEN)")
    if any(not 1 <= len(v) <= 2 or not all(x.strip() for x in v) for v in cfg.sender.sms_countries.values()):
        raise ConfigError('sender.sms_countries: each country takes ["sender"] or ["sender", "STOP number"]')


def reaching_people(cfg: Any) -> list[str]:
    """Why this configuration reaches real people (an https ``public.base_url``, a transport other than
    ``file``); empty for the demo and a laptop instance. Development keys are refused, and receipts
    without a key of their own are off, once it is not empty."""
    return [why for why, on in ((f"public.base_url is {cfg.public.base_url}", cfg.public.base_url.startswith("https:")),
                                (f"email.transport = {cfg.email.transport}", cfg.email.transport != "file"),
                                (f"sms.transport = {cfg.sms.transport}", cfg.sms.transport != "file")) if on]
