"""A job function the scheduler tests register: records each run."""

from __future__ import annotations

import threading

from orchestrator.runtime import Runtime

RUNS: list[str] = []
RAN = threading.Event()


def probe(rt: Runtime) -> str:
    RUNS.append(rt.config.database_url)
    RAN.set()
    return f"probe run {len(RUNS)}"
