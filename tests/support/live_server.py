"""A real uvicorn server on a free loopback port, in a thread, for browser and log tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.types import ASGIApp

from tests.support.smtp import free_port


@contextmanager
def live_server(app: ASGIApp, *, configure_logging: bool = False) -> Iterator[str]:
    """Yield the base URL (http://127.0.0.1:PORT) while the server runs; stop it afterwards.

    ``configure_logging`` keeps uvicorn's own logging setup (its access-log format), as `reconsent
    serve` does; otherwise uvicorn leaves the process's logging alone.
    """
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="info" if configure_logging else "warning",
                            log_config=uvicorn.config.LOGGING_CONFIG if configure_logging else None,
                            lifespan="off", access_log=configure_logging)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
