"""Sending and what comes back: ``dispatch``, ``sweep``, ``bounces ingest``."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from orchestrator.cli.common import fail_cleanly, get_rt, service_logging

if TYPE_CHECKING:
    from orchestrator.delivery.worker import Dispatcher


@click.command()
@click.option("--once", is_flag=True, help="Send everything due now, then exit.")
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=None,
              help="Serve Prometheus metrics on 127.0.0.1:PORT (default: dispatch.metrics_port; 0 = off).")
@click.pass_context
@fail_cleanly
def dispatch(ctx: click.Context, once: bool, metrics_port: int | None) -> None:
    """Send due messages (a worker; run as many as you like).

    Without --once it polls until SIGTERM/SIGINT; with --once it stops when everything due is sent.
    Either way SIGTERM/SIGINT finishes the sends in flight, releases the rows it claimed but has not
    sent, and exits 0.
    """
    from orchestrator.delivery.worker import Dispatcher
    from orchestrator.ops.heartbeat import DISPATCHER, Heartbeat

    rt = get_rt(ctx)
    if not once:
        service_logging(rt)
    port = rt.config.dispatch.metrics_port if metrics_port is None else metrics_port
    if port:
        from prometheus_client import start_http_server

        from orchestrator.ops.metrics import store_registry

        start_http_server(port, addr="127.0.0.1", registry=store_registry(rt, with_process=True))

    async def run() -> str:
        dispatcher = Dispatcher(rt)
        # the console shows whether a dispatcher is alive; a --once run (from cron, say) leaves its
        # heartbeat to age rather than marking it stopped, so it counts until the next one
        heartbeat = await asyncio.to_thread(Heartbeat(rt.engine, DISPATCHER, state="once" if once else "running").start)
        try:
            if once:
                # SIGTERM/SIGINT: stop claiming, finish the sends in flight, release the rest.
                stop = asyncio.Event()
                _on_signals(stop)
                asyncio.get_running_loop().create_task(_stop_when(stop, dispatcher))
                with click.progressbar(length=0, label="sending", file=sys.stderr) as bar:
                    report = await dispatcher.run_once(progress=bar.update)
            else:
                stop = asyncio.Event()
                _on_signals(stop)
                logging.getLogger("reconsent.dispatch").info("dispatcher %s polling", dispatcher.worker_id)
                report = await dispatcher.run_forever(stop)
        finally:
            await dispatcher.close()
            await asyncio.to_thread(heartbeat.stop, mark_stopped=not once)
        return report.summary()

    click.echo(asyncio.run(run()))


async def _stop_when(stop: asyncio.Event, dispatcher: Dispatcher) -> None:
    await stop.wait()
    dispatcher.stopping = True


def _on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - non-Unix
            pass


@click.command()
@click.pass_context
@fail_cleanly
def sweep(ctx: click.Context) -> None:
    """Close campaigns past their deadline: expire, suppress, apply retention."""
    from orchestrator.campaigns.sweep import sweep as run_sweep

    click.echo(run_sweep(get_rt(ctx)).summary())


@click.group()
def bounces() -> None:
    """Asynchronous bounces (RFC 3464 delivery-status notifications)."""


@bounces.command("ingest")
@click.argument("path", type=click.Path(path_type=Path))
@click.pass_context
@fail_cleanly
def bounces_ingest(ctx: click.Context, path: Path) -> None:
    """Read DSNs from PATH (a maildir or an mbox): hard bounces suppress, soft ones are counted."""
    from orchestrator.delivery.bounces import count_messages, ingest

    rt = get_rt(ctx)
    with click.progressbar(length=count_messages(path), label="reading bounces", file=sys.stderr,
                           show_pos=True) as bar:
        report = ingest(rt, path, progress=bar.update)
    click.echo(report.summary())


COMMANDS = (dispatch, sweep, bounces)
