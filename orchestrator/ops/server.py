"""Running the preference centre under uvicorn, with tokens scrubbed from the access log [T2]."""

from __future__ import annotations

import logging
import re
from typing import Any

import uvicorn

from orchestrator.runtime import Runtime

_TOKEN_PATH = re.compile(r"(/(?:p|u|s|r)/)[^\s\"?/]+")


def scrub(text: str) -> str:
    """Replace link tokens in a log line.

    >>> scrub('"GET /p/eyJjIjo3fQ.abc.def HTTP/1.1" 200')
    '"GET /p/[token] HTTP/1.1" 200'
    >>> scrub('"POST /r/eyJjIjo3fQ.abc.def/erase?lang=en HTTP/1.1" 200')
    '"POST /r/[token]/erase?lang=en HTTP/1.1" 200'
    """
    return _TOKEN_PATH.sub(r"\1[token]", text)


class ScrubTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.args = tuple(scrub(a) if isinstance(a, str) else a for a in record.args)
        record.msg = scrub(str(record.msg))
        return True


def install_log_scrubber() -> None:
    for name in ("uvicorn.access", "uvicorn.error", "reconsent", "reconsent.web"):
        logging.getLogger(name).addFilter(ScrubTokens())


def prepare_logging(rt: Runtime) -> None:
    """Our handler on the root logger (text or JSON, scrubbed); uvicorn's loggers propagate to it."""
    from orchestrator.ops.logs import configure_logging

    configure_logging(rt.config.logging.format, rt.config.logging.level)
    install_log_scrubber()


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
