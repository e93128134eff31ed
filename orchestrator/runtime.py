"""Wiring: the objects every command and the web app share, built once from config."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from orchestrator.config import Config, load_config
from orchestrator.domain.clock import Clock, SystemClock, parse_now
from orchestrator.domain.suppression import SuppressionKey, suppression_key
from orchestrator.rendering.links import LinkSigner
from orchestrator.rendering.messages import MessageRenderer
from orchestrator.store.db import make_engine
from orchestrator.webhook_settings import register as register_webhooks


@dataclass
class Runtime:
    config: Config
    clock: Clock = field(default_factory=SystemClock)

    @cached_property
    def engine(self) -> Engine:
        engine = make_engine(self.config.database_url, echo=self.config.database.echo,
                             busy_timeout_ms=self.config.database.busy_timeout_ms)
        register_webhooks(engine, self.config.webhooks.endpoints)  # who wants this database's consent events
        return engine

    @cached_property
    def links(self) -> LinkSigner:
        return LinkSigner(self.config.signing_secrets(), self.clock)

    @cached_property
    def renderer(self) -> MessageRenderer:
        """Shipped templates from the package; imported ones by version from the database."""
        from orchestrator.rendering.template_store import fetch_wording

        return MessageRenderer(fetch=lambda template, locale, version: fetch_wording(
            self.engine, template, locale, version))

    def key_for(self, address: str) -> SuppressionKey:
        return suppression_key(self.config.suppression_secret(), address)

    def url(self, path: str) -> str:
        return self.config.public.base_url.rstrip("/") + path


def clock_from_env(env: dict[str, str] | None = None) -> Clock:
    """``RECONSENT_NOW`` freezes the clock for the whole command."""
    env = dict(os.environ) if env is None else env
    now = env.get("RECONSENT_NOW", "").strip()
    return parse_now(now) if now else SystemClock()


def runtime_from_env(config_path: str | None = None) -> Runtime:
    return Runtime(load_config(config_path), clock_from_env())


def runtime_in(folder: Path, config: Config, clock: Clock, *, database_url: str | None = None,
               **sections: dict[str, Any]) -> Runtime:
    """A Runtime whose outboxes, relative paths and (unless ``database_url``) SQLite database live in
    ``folder`` — the demo, the tests and the benchmarks each run in a folder of their own.
    Keyword arguments override whole config sections' fields: ``email={"transport": "smtp"}``."""
    config.base_dir = folder
    config.database = replace(config.database, url=database_url or f"sqlite:///{folder / 'reconsent.db'}")
    config.email = replace(config.email, outbox_dir=str(folder / "outbox"))
    config.sms = replace(config.sms, outbox_file=str(folder / "sms.jsonl"))
    for name, values in sections.items():
        setattr(config, name, replace(getattr(config, name), **values))
    return Runtime(config, clock)
