"""Running the preference centre under uvicorn, with tokens scrubbed from the access log [T2] (by the
one scrubber, :mod:`orchestrator.ops.logs`)."""

from __future__ import annotations

from typing import Any

import uvicorn

from orchestrator.ops.logs import Scrub, configure_logging, install_log_scrubber
from orchestrator.runtime import Runtime

__all__ = ["ScrubTokens", "install_log_scrubber", "prepare_logging", "serve_forever", "uvicorn_options"]

#: kept for callers of the earlier name: the one scrubber, keeping arguments (see ops/logs.py)
ScrubTokens = Scrub


def prepare_logging(rt: Runtime) -> None:
    """Our handler on the root logger (text or JSON, scrubbed); uvicorn's loggers propagate to it."""
    policy = rt.config.logging.ip_addresses
    configure_logging(rt.config.logging.format, rt.config.logging.level, policy)
    install_log_scrubber(policy)


def uvicorn_options(rt: Runtime) -> dict[str, Any]:
    """What ``serve`` and ``run`` both hand to uvicorn besides the app, host and port."""
    return {"log_level": rt.config.logging.level.lower(), "log_config": None,
            "proxy_headers": bool(rt.config.public.trusted_proxies),
            "forwarded_allow_ips": ",".join(rt.config.public.trusted_proxies) or None}


def serve_forever(rt: Runtime, host: str, port: int) -> None:
    from preference_centre.app import create_app

    prepare_logging(rt)
    app = create_app(rt)
    uvicorn.run(app, host=host, port=port, **uvicorn_options(rt))
