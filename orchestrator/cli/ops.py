"""Instance and service commands: init, run, serve, scheduler, evergreen, doctor, demo."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from orchestrator.cli.common import explicit_config, fail_cleanly, get_rt, service_logging, set_rt


@click.command()
@click.argument("folder", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--production", is_flag=True,
              help="Write the production example (PostgreSQL, SMTP relay, Twilio; secrets from the environment) "
                   "as reconsent.toml instead of the embedded defaults.")
@click.pass_context
@fail_cleanly
def init(ctx: click.Context, folder: Path | None, production: bool) -> None:
    """Create a working instance in FOLDER (default: the current directory), or upgrade one.

    Writes a commented reconsent.toml (embedded defaults: SQLite under var/, file outbox, SMS file;
    fresh random secrets), var/ and the database schema. Never overwrites an existing file; run again
    it only upgrades the schema. With --config PATH and no FOLDER it creates or upgrades the schema of
    that configuration's database only."""
    from orchestrator.ops.instance import prepare_instance
    from orchestrator.ops.schema import upgrade_schema

    if folder is None and explicit_config(ctx):
        rt = get_rt(ctx, need_db=False)
        upgrade_schema(rt)
        click.echo(f"database ready: {rt.config.database_url_shown}")
        return
    report, config = prepare_instance(folder or Path.cwd(), production=production)
    if config is None:
        for line in report.lines()[:-1]:
            click.echo(line)
        click.echo(f"edit {report.config_path} (database URL, relay, Twilio, public URL; secrets as "
                   "RECONSENT_… environment variables), then run `reconsent init` there again to create the schema")
        return
    from orchestrator.runtime import Runtime, clock_from_env

    rt = Runtime(config, clock_from_env())
    set_rt(ctx, rt)
    upgrade_schema(rt)
    for line in report.lines():
        click.echo(line)
    if folder is not None and folder.resolve() != Path.cwd().resolve():
        click.echo(f"next: cd {folder} && reconsent demo --no-serve   (or reconsent run)")


@click.command()
@click.pass_context
@fail_cleanly
def scheduler(ctx: click.Context) -> None:
    """Run the recurring jobs from config (dispatch, sweep, evergreen, retention) until stopped.

    Only one scheduler is active at a time (a database lock); start a second one anywhere as a
    standby: it waits and takes over when the active one dies.
    """
    from orchestrator.ops.scheduler import run_scheduler

    rt = get_rt(ctx)
    service_logging(rt)
    run_scheduler(rt)


@click.command()
@click.pass_context
@fail_cleanly
def evergreen(ctx: click.Context) -> None:
    """Enrol people newly past the inactivity threshold into the standing campaign (once)."""
    from orchestrator.campaigns.evergreen import enrol_newcomers

    click.echo(enrol_newcomers(get_rt(ctx)).summary())


@click.command()
@click.option("--host", default=None, help="Address to listen on (default: server.host).")
@click.option("--port", default=None, type=click.IntRange(1, 65535), help="Port (default: server.port).")
@click.pass_context
@fail_cleanly
def serve(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Serve the preference centre (Starlette on uvicorn)."""
    from orchestrator.ops.server import serve_forever

    rt = get_rt(ctx)
    serve_forever(rt, host or rt.config.server.host, port or rt.config.server.port)


@click.command("run")
@click.option("--host", default=None, help="Address to listen on (default: server.host).")
@click.option("--port", default=None, type=click.IntRange(1, 65535), help="Port (default: server.port).")
@click.pass_context
@fail_cleanly
def run_cmd(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Run everything one machine needs in one process: the preference centre and console, a
    dispatcher and the scheduler (without its dispatch job: the dispatcher sends).

    SIGTERM/SIGINT stops all three cleanly (sends in flight finished, unsent claims released, the
    scheduler lock freed) and exits 0; if one part stops on its own, the others are stopped and it
    exits 1. To scale out, run `serve`, `dispatch` and `scheduler` separately instead.
    """
    from orchestrator.ops.server import prepare_logging, refuse_development_keys
    from orchestrator.ops.service import run_service

    rt = get_rt(ctx)
    refuse_development_keys(rt.config)
    prepare_logging(rt)
    report = asyncio.run(run_service(rt, host or rt.config.server.host,
                                     rt.config.server.port if port is None else port))
    click.echo(report.summary())


@click.command()
@click.pass_context
def doctor(ctx: click.Context) -> None:
    """Check the settings a real deployment needs and say what to fix (exit 1 if something must be):
    the database (reachable, schema current), https, secrets, sender identity, DKIM, relay, Twilio."""
    from orchestrator.config_values import hide_credentials
    from orchestrator.errors import ConfigError
    from orchestrator.ops.doctor import run_checks

    try:
        rt = get_rt(ctx, need_db=False)
    except ConfigError as exc:
        click.echo(hide_credentials(f"FIX   configuration: {exc}"))
        ctx.exit(1)
    findings = asyncio.run(run_checks(rt.config))
    for f in findings:
        click.echo(f"{f.level.upper():5} {f.topic}: {f.message}")
    must_fix = [f for f in findings if f.level == "fix"]
    click.echo(f"{len(must_fix)} thing(s) to fix, {sum(f.level == 'warn' for f in findings)} warning(s)")
    if must_fix:
        ctx.exit(1)


@click.command()
@click.option("--no-serve", is_flag=True, help="Run the whole story non-interactively and exit.")
@click.option("--port", default=8000, type=click.IntRange(1, 65535), help="Port for the preference centre.")
@click.pass_context
@fail_cleanly
def demo(ctx: click.Context, no_serve: bool, port: int) -> None:
    """Run the re-consent loop end to end on embedded defaults (no server, no account)."""
    from orchestrator.ops.demo import run_demo

    run_demo(explicit_config(ctx), serve=not no_serve, port=port)


COMMANDS = (init, run_cmd, serve, scheduler, evergreen, doctor, demo)
