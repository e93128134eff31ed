"""One service for one machine: ``reconsent run`` — pages and console, a dispatcher and the
scheduler in one process, on one asyncio loop.

* **web**: uvicorn's ``Server`` serving ``create_app(rt)`` (preference centre, ``/admin`` console,
  Twilio webhooks, ``/healthz``) on a socket bound before anything starts, so a port in use is a
  one-line refusal rather than a half-started service; it starts first, the other two once it has;
* **dispatcher**: a :class:`~orchestrator.delivery.worker.Dispatcher` polling (``run_forever``) on the same
  loop, with its heartbeat;
* **scheduler**: :func:`~orchestrator.ops.scheduler.run_scheduler` in a thread of its own (APScheduler 3
  runs a BackgroundScheduler), standby until it holds the database lock like any ``reconsent
  scheduler``, and **without the dispatch job**: the built-in dispatcher is what sends, polling every
  ``dispatch.poll_seconds`` instead of waiting for the next minute, and one process does not compete
  with itself for its own rows. (Were both to run, nothing would be sent twice — claims are
  exclusive — it would only be wasted work.) When this process's scheduler is a standby and a
  separate ``reconsent scheduler`` is active, that one keeps its configured jobs.

SIGTERM/SIGINT stop the three as their own commands do: uvicorn stops accepting and finishes the
requests in progress, the dispatcher finishes its sends in flight and releases the rows it claimed
but did not send, the scheduler waits for a running job and releases its lock; then the process
exits 0. If one part stops on its own (the scheduler lost its lock, the web server could not start),
the other two are stopped the same way and the command exits 1 naming it, for the service manager to
restart it.

The separate ``serve``, ``dispatch`` and ``scheduler`` commands stay, for scaling out.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import uvicorn

from orchestrator.delivery.worker import Dispatcher, DispatchReport
from orchestrator.errors import ReconsentError
from orchestrator.ops.heartbeat import DISPATCHER, Heartbeat
from orchestrator.ops.scheduler import jobs, run_scheduler
from orchestrator.ops.server import uvicorn_options
from orchestrator.runtime import Runtime

log = logging.getLogger("reconsent.run")

#: job types the scheduler of ``reconsent run`` leaves out: its own dispatcher sends
SKIPPED_JOBS = frozenset({"dispatch"})


class _Server(uvicorn.Server):
    """uvicorn's Server without its signal handlers: ``run_service`` owns SIGTERM/SIGINT (uvicorn's
    would re-raise the signal once the web server has stopped, ending the process before the
    dispatcher and the scheduler have)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``, or a one-line refusal."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        why = os.strerror(exc.errno) if exc.errno else str(exc)
        raise ReconsentError(f"cannot listen on {host}:{port}: {why}") from None


async def run_service(rt: Runtime, host: str, port: int, stop: asyncio.Event | None = None) -> DispatchReport:
    """Run web server, dispatcher and scheduler until ``stop`` (by default: SIGTERM or SIGINT);
    returns what the dispatcher sent. Raises ReconsentError if a part stopped on its own."""
    from preference_centre.app import create_app

    jobs(rt, SKIPPED_JOBS)  # configuration errors stop here, before anything starts
    server = _Server(uvicorn.Config(create_app(rt), host=host, port=port, **uvicorn_options(rt)))
    sock = listen(host, port)
    loop = asyncio.get_running_loop()
    if stop is None:
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    scheduler_stop = threading.Event()
    scheduler_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scheduler")
    parts: dict[str, asyncio.Future[Any]] = {"web server": asyncio.ensure_future(_web(server, sock))}
    stopping = asyncio.ensure_future(stop.wait())
    ended: list[str] = []
    try:
        # The web server starts first and alone: its start-up changes how the shared engine opens
        # connections (SQLite: WAL checkpoints from a thread, preference_centre.app), which must not
        # happen while another thread is opening one.
        while not (server.started or parts["web server"].done() or stop.is_set()):
            await asyncio.sleep(0.05)
        if server.started and not stop.is_set():
            parts["dispatcher"] = asyncio.ensure_future(_dispatch(rt, stop))
            parts["scheduler"] = asyncio.ensure_future(loop.run_in_executor(scheduler_thread, functools.partial(
                run_scheduler, rt, scheduler_stop, skip=SKIPPED_JOBS)))
            log.info("reconsent run: pages on http://%s:%d/ (console under /admin/), a dispatcher, the scheduler",
                     host, sock.getsockname()[1], extra={"fields": {"role": "run"}})
        await asyncio.wait([stopping, *parts.values()], return_when=asyncio.FIRST_COMPLETED)
        if not stop.is_set():  # a part ended without being asked to
            ended = [name for name, part in parts.items() if part.done()]
        if ended:
            log.error("%s stopped on its own; stopping the rest", ended[0])
    finally:
        stop.set()
        server.should_exit = True
        scheduler_stop.set()
        results = dict(zip(parts, await asyncio.gather(*parts.values(), return_exceptions=True), strict=True))
        stopping.cancel()
        scheduler_thread.shutdown(wait=True)
        sock.close()
    failures = {name: r for name, r in results.items() if isinstance(r, BaseException)}
    for name, error in failures.items():  # an expected refusal in one line, anything else with its trace
        log.error("%s failed: %s", name, error, exc_info=None if isinstance(error, ReconsentError) else error)
    if ended or failures:
        name = ended[0] if ended else next(iter(failures))
        why = f": {failures[name]}" if name in failures else ""
        raise ReconsentError(f"{name} stopped unexpectedly{why}; the other parts were stopped")
    log.info("reconsent run stopped")
    report = results.get("dispatcher", DispatchReport())  # stopped before it started: nothing sent
    assert isinstance(report, DispatchReport)
    return report


async def _web(server: uvicorn.Server, sock: socket.socket) -> None:
    try:
        await server.serve(sockets=[sock])
    except SystemExit as exc:  # uvicorn exits when its start-up fails (the app's lifespan)
        raise ReconsentError(f"the web server did not start (uvicorn exit code {exc.code})") from None


async def _dispatch(rt: Runtime, stop: asyncio.Event) -> DispatchReport:
    dispatcher = Dispatcher(rt)
    heartbeat = await asyncio.to_thread(Heartbeat(rt.engine, DISPATCHER).start)
    try:
        log.info("dispatcher %s polling", dispatcher.worker_id)
        return await dispatcher.run_forever(stop)
    finally:
        await dispatcher.close()
        await asyncio.to_thread(heartbeat.stop)
