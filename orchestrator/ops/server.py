"""Running the preference centre under uvicorn, with tokens scrubbed from the access log [T2] (by the
one scrubber, :mod:`orchestrator.ops.logs`)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from orchestrator.config import DEV_SIGNING_KEY, DEV_SUPPRESSION_KEY, Config
from orchestrator.config_values import reaching_people
from orchestrator.errors import ConfigError
from orchestrator.ops.logs import Scrub, configure_logging, install_log_scrubber
from orchestrator.proof.receipt_keys import keys as receipt_keys
from orchestrator.runtime import Runtime

__all__ = ["ScrubTokens", "install_log_scrubber", "prepare_logging", "refuse_development_keys", "serve_forever",
           "uvicorn_options"]

#: kept for callers of the earlier name: the one scrubber, keeping arguments (see ops/logs.py)
ScrubTokens = Scrub


def prepare_logging(rt: Runtime) -> None:
    """Our handler on the root logger (text or JSON, scrubbed); uvicorn's loggers propagate to it."""
    policy = rt.config.logging.ip_addresses
    configure_logging(rt.config.logging.format, rt.config.logging.level, policy)
    install_log_scrubber(policy)


class HeaderTimeoutH11(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request line and headers have not all arrived
    within ``header_timeout`` seconds of its first byte (or of the connection): uvicorn itself waits
    forever, so a few thousand half-sent requests would hold the server's sockets (slowloris). The
    body's own timeout is the app's (:class:`preference_centre.security.Guard`)."""

    header_timeout: float = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(cast(asyncio.Transport, transport))
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE:  # the first bytes of a request (a new one on keep-alive too)
            self._arm_header_timer()
        super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_overdue)

    def _headers_overdue(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def uvicorn_options(rt: Runtime) -> dict[str, Any]:
    """What ``serve`` and ``run`` both hand to uvicorn besides the app, host and port: logging, the
    trusted proxies, and the connection limits of ``[server]`` (see docs/security.md)."""
    server = rt.config.server
    protocol = type("HeaderTimeoutH11", (HeaderTimeoutH11,), {"header_timeout": server.header_timeout_seconds})
    return {"log_level": rt.config.logging.level.lower(), "log_config": None,
            "proxy_headers": bool(rt.config.public.trusted_proxies),
            "forwarded_allow_ips": ",".join(rt.config.public.trusted_proxies) or None,
            "http": protocol, "limit_concurrency": server.max_connections,
            "timeout_keep_alive": server.keep_alive_seconds,
            "h11_max_incomplete_event_size": server.max_header_bytes}


def refuse_development_keys(cfg: Config) -> None:
    """ConfigError (one line) when a development key would serve real people: the shipped keys are
    public, so anyone could forge a link with them (a rights link downloads a person's whole record).
    Real people are reached once ``public.base_url`` is https or a transport other than ``file`` is set;
    the demo and a laptop instance (http, files) keep working with them.

    >>> cfg = Config(); refuse_development_keys(cfg)  # http and files: the demo
    >>> cfg.email.transport = "smtp"; refuse_development_keys(cfg)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    orchestrator.errors.ConfigError: security.signing_keys, security.suppression_key: ...
    """
    dev = [name for name, used in (("security.signing_keys", DEV_SIGNING_KEY in cfg.security.signing_keys),
                                   ("security.suppression_key", cfg.security.suppression_key == DEV_SUPPRESSION_KEY))
           if used]
    real = reaching_people(cfg)
    receipt_keys(cfg)  # an unreadable receipt key stops the start, in one line naming the setting
    if dev and real:
        raise ConfigError(f"{', '.join(dev)}: the development key is public and cannot serve real people "
                          f"({'; '.join(real)}); set a random secret in RECONSENT_SECURITY__SIGNING_KEYS / "
                          "RECONSENT_SECURITY__SUPPRESSION_KEY "
                          "(`reconsent init` writes fresh ones)")


def serve_forever(rt: Runtime, host: str, port: int) -> None:
    from preference_centre.app import create_app

    refuse_development_keys(rt.config)
    prepare_logging(rt)
    app = create_app(rt)
    uvicorn.run(app, host=host, port=port, **uvicorn_options(rt))
