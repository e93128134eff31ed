"""The ``[[webhooks.endpoints]]`` settings (issue 17): each endpoint's URL, ``whsec_`` secret and events,
checked when the config is loaded like every other setting (unknown keys refused)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from orchestrator.errors import ConfigError

#: the events a webhook endpoint may subscribe to (issue 17; SPEC §11)
WEBHOOK_EVENTS = ("consent.confirmed", "consent.declined", "consent.withdrawn", "consent.expired", "consent.granted",
                  "consent.not_granted", "contact.suppressed", "contact.erased", "campaign.completed")
ENDPOINTS_DOC = (
    "Signed webhooks on consent changes, one `[[webhooks.endpoints]]` table each: `url` (http or https; loopback "
    "and private addresses allowed), `secret` (`whsec_` + base64, Standard Webhooks) and optional `events` (a list; "
    "default all: " + ", ".join(WEBHOOK_EVENTS) + "). Env: a JSON list of objects")


@dataclass(frozen=True)
class WebhookEndpoint:
    """One ``[[webhooks.endpoints]]`` table: where to post, the ``whsec_…`` signing secret, which events."""

    url: str
    secret: str
    events: tuple[str, ...] = WEBHOOK_EVENTS

    def wants(self, event_type: str) -> bool:
        return event_type in self.events


def webhook_endpoints(value: Any, where: str) -> list[WebhookEndpoint]:
    """``[[webhooks.endpoints]]`` tables (or, from the environment, a JSON list of objects)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ConfigError(f"{where}: expected a JSON list of objects with url, secret and events") from None
    if not isinstance(value, list):
        raise ConfigError(f"{where}: expected [[webhooks.endpoints]] tables, got {value!r}")
    endpoints = []
    for n, item in enumerate(value, 1):
        here = f"{where}[{n}]"
        if not isinstance(item, Mapping):
            raise ConfigError(f"{here}: expected a table with url, secret and events")
        unknown = sorted(set(item) - {"url", "secret", "events"})
        if unknown:
            raise ConfigError(f"{here}: unknown setting {', '.join(unknown)} (expected url, secret, events)")
        url, secret = item.get("url"), item.get("secret")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ConfigError(f"{here}.url: expected an http(s) URL, got {url!r}")
        if not isinstance(secret, str) or not _is_whsec(secret):
            raise ConfigError(f"{here}.secret: expected whsec_ followed by a base64 key of at least 24 bytes "
                              "(generate one with: python -c \"import base64, os; "
                              "print('whsec_' + base64.b64encode(os.urandom(32)).decode())\")")
        events = item.get("events", list(WEBHOOK_EVENTS))
        if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
            raise ConfigError(f"{here}.events: expected a non-empty list of event names")
        wrong = [e for e in events if e not in WEBHOOK_EVENTS]
        if wrong:
            raise ConfigError(f"{here}.events: unknown event {', '.join(wrong)} (expected some of "
                              f"{', '.join(WEBHOOK_EVENTS)})")
        endpoints.append(WebhookEndpoint(url=url, secret=secret, events=tuple(events)))
    return endpoints


def _is_whsec(secret: str) -> bool:
    """``whsec_`` + standard base64 of at least 24 bytes.

    >>> _is_whsec("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), _is_whsec("whsec_short"), _is_whsec("s3cret")
    (True, False, False)
    """
    import base64
    import binascii

    if not secret.startswith("whsec_"):
        return False
    try:
        return len(base64.b64decode(secret[len("whsec_"):], validate=True)) >= 24
    except (binascii.Error, ValueError):
        return False


#: database (its URL) → the endpoints configured for it
_registry: dict[str, tuple[WebhookEndpoint, ...]] = {}


def register(engine: Engine, endpoints: Sequence[WebhookEndpoint]) -> None:
    """Say which endpoints want this database's events (the runtime does, making its engine); the
    writers of consent changes (``orchestrator.consent.webhooks``) ask :func:`registered`."""
    _registry[_database(engine)] = tuple(endpoints)


def registered(engine: Engine) -> tuple[WebhookEndpoint, ...]:
    return _registry.get(_database(engine), ())


def _database(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)
