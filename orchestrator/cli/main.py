"""The ``reconsent`` command (SPEC §10). Errors become one line on stderr and exit code 1;
usage errors exit 2 (click's convention)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from orchestrator.errors import ReconsentError
from orchestrator.runtime import Runtime, runtime_from_env

F = TypeVar("F", bound=Callable[..., Any])


def fail_cleanly(func: F) -> F:
    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ReconsentError as exc:
            raise click.ClickException(str(exc)) from None
        except ValueError as exc:  # e.g. RECONSENT_NOW unreadable
            raise click.ClickException(str(exc)) from None

    return wrapper  # type: ignore[return-value]


def get_rt(ctx: click.Context, *, need_db: bool = True) -> Runtime:
    obj = ctx.find_root().obj
    if "rt" not in obj:
        obj["rt"] = runtime_from_env(obj.get("config"))
    rt: Runtime = obj["rt"]
    if need_db:
        from orchestrator.store.db import schema_problem

        problem = schema_problem(rt.engine)
        if problem:
            raise ReconsentError(f"database {rt.config.database_url_shown} {problem}")
    return rt


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config", type=click.Path(dir_okay=False), envvar="RECONSENT_CONFIG",
              help="TOML config file (default: reconsent.toml in the current directory if there is one, else the shipped defaults; also RECONSENT_CONFIG).")
@click.version_option(package_name="reconsent")
@click.pass_context
def main(ctx: click.Context, config: str | None) -> None:
    """Reconsent: win back permission to message your contacts, with proof."""
    ctx.obj = {"config": config}


@main.command()
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
    from orchestrator.store.db import migrate

    explicit = ctx.find_root().obj.get("config")
    if folder is None and explicit:
        rt = get_rt(ctx, need_db=False)
        migrate(rt.engine)
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
    ctx.find_root().obj["rt"] = rt
    migrate(rt.engine)
    for line in report.lines():
        click.echo(line)
    if folder is not None and folder.resolve() != Path.cwd().resolve():
        click.echo(f"next: cd {folder} && reconsent demo --no-serve   (or reconsent run)")


# -- contacts ---------------------------------------------------------------------------------------
@main.group()
def contacts() -> None:
    """Import and export contacts."""


@contacts.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--rejects", type=click.Path(dir_okay=False, path_type=Path), help="Write rejected rows (with line numbers and reasons) here.")
@click.option("--strict", is_flag=True, help="Import nothing if any row is rejected.")
@click.pass_context
@fail_cleanly
def contacts_import(ctx: click.Context, file: Path, rejects: Path | None, strict: bool) -> None:
    """Import FILE.csv (SPEC §10 columns); re-importing updates, never duplicates."""
    from orchestrator.contacts.service import import_contacts, write_rejects

    rt = get_rt(ctx)
    with click.progressbar(length=_count_lines(file), label="importing", file=sys.stderr,
                           show_pos=True) as bar:
        report = import_contacts(rt, file, strict=strict, progress=bar.update)
    click.echo(report.summary())
    for r in report.rejects[:10]:
        click.echo(f"  line {r.line}: {r.field}: {r.reason}", err=True)
    if len(report.rejects) > 10:
        click.echo(f"  … and {len(report.rejects) - 10} more" + ("" if rejects else " (use --rejects OUT.csv to get them all)"), err=True)
    if rejects and report.rejects:
        write_rejects(rejects, report)
        click.echo(f"rejected rows written to {rejects}")


def _count_lines(path: Path) -> int:
    try:
        with path.open("rb") as fh:
            return max(0, sum(1 for _ in fh) - 1)
    except OSError:
        return 0


@contacts.command("export")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="CSV file (default: stdout).")
@click.pass_context
@fail_cleanly
def contacts_export(ctx: click.Context, output: Path | None) -> None:
    """Export contacts as CSV (the import format)."""
    import csv

    from sqlmodel import select

    from orchestrator.contacts.service import COLUMNS
    from orchestrator.store.db import session_scope
    from orchestrator.store.models import Contact

    rt = get_rt(ctx)
    out = output.open("w", newline="", encoding="utf-8") if output else sys.stdout
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    with session_scope(rt.engine) as session:
        for c in session.exec(select(Contact).where(Contact.erased_at.is_(None)).order_by(Contact.id)):  # type: ignore[union-attr]
            writer.writerow([c.external_id, c.kind, c.email or "", c.phone or "", c.first_name or "", c.locale,
                             c.timezone or "", c.last_activity_at.isoformat() if c.last_activity_at else "",
                             "true" if c.b2b else "false"])
    if output:
        out.close()


# -- campaigns --------------------------------------------------------------------------------------
@main.group()
def campaign() -> None:
    """Create, preview, launch, pause, resume and follow campaigns."""


@campaign.command("create")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
@fail_cleanly
def campaign_create(ctx: click.Context, file: Path) -> None:
    """Create a draft campaign from FILE.toml; prints its id."""
    from orchestrator.campaigns.service import create_campaign, load_plan

    rt = get_rt(ctx)
    click.echo(create_campaign(rt, load_plan(file)))


@campaign.command("preview")
@click.argument("campaign_id", type=int)
@click.option("--html", is_flag=True, help="Also print the HTML part of emails.")
@click.pass_context
@fail_cleanly
def campaign_preview(ctx: click.Context, campaign_id: int, html: bool) -> None:
    """Render every step for a sample contact per locale (SMS: encoding and segments)."""
    from orchestrator.campaigns.service import audience_size, preview_campaign

    rt = get_rt(ctx)
    broken = 0
    for p in preview_campaign(rt, campaign_id):
        click.secho(f"── step {p.step} · day {p.day} · {p.channel} · {p.template} · {p.locale}", bold=True)
        if p.problem is not None:  # one line, never a traceback; the exit code says it failed
            broken += 1
            click.echo(f"cannot be rendered: {p.problem}\n")
            continue
        if p.subject is not None:
            click.echo(f"Subject: {p.subject}\n")
        click.echo(p.text.rstrip())
        if p.encoding:
            forced = f" (UCS-2 forced by: {' '.join(repr(c) for c in p.ucs2_chars)})" if p.ucs2_chars else ""
            click.echo(f"[{p.encoding}, {p.segments} segment(s), {len(p.text)} characters{forced}]")
        if html and p.html:
            click.echo(p.html)
        click.echo()
    click.echo(f"audience if launched now: {audience_size(rt, campaign_id)} contact(s)")
    if broken:
        ctx.exit(1)


@campaign.command("launch")
@click.argument("campaign_id", type=int)
@click.pass_context
@fail_cleanly
def campaign_launch(ctx: click.Context, campaign_id: int) -> None:
    """Freeze the audience and queue every step."""
    from orchestrator.campaigns.service import launch_campaign

    rt = get_rt(ctx)
    n = launch_campaign(rt, campaign_id)
    click.echo(f"campaign {campaign_id} launched: {n} contact(s) enrolled")


@campaign.command("pause")
@click.argument("campaign_id", type=int)
@click.pass_context
@fail_cleanly
def campaign_pause(ctx: click.Context, campaign_id: int) -> None:
    """Stop sending; nothing is lost."""
    from orchestrator.campaigns.service import set_paused

    click.echo(f"campaign {campaign_id} {set_paused(get_rt(ctx), campaign_id, True)}")


@campaign.command("resume")
@click.argument("campaign_id", type=int)
@click.pass_context
@fail_cleanly
def campaign_resume(ctx: click.Context, campaign_id: int) -> None:
    """Resume sending where it stopped: no re-send, no skip."""
    from orchestrator.campaigns.service import set_paused

    click.echo(f"campaign {campaign_id} {set_paused(get_rt(ctx), campaign_id, False)}")


@campaign.command("status")
@click.argument("campaign_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="One JSON object (SPEC §10).")
@click.pass_context
@fail_cleanly
def campaign_status_cmd(ctx: click.Context, campaign_id: int, as_json: bool) -> None:
    """The funnel: enrolled, answers, and per channel/step sent, delivered, failed, bounced…"""
    from orchestrator.campaigns.service import campaign_status
    from orchestrator.campaigns.reports import funnel_table

    status = campaign_status(get_rt(ctx), campaign_id)
    if as_json:
        click.echo(json.dumps(status, ensure_ascii=False))
    else:
        click.echo(funnel_table(status))


@campaign.command("list")
@click.pass_context
@fail_cleanly
def campaign_list(ctx: click.Context) -> None:
    """All campaigns with their state."""
    from sqlmodel import select

    from orchestrator.store.db import session_scope
    from orchestrator.store.models import Campaign

    with session_scope(get_rt(ctx).engine) as session:
        for c in session.exec(select(Campaign).order_by(Campaign.id)):  # type: ignore[arg-type]
            click.echo(f"{c.id}\t{c.state}\t{c.name}")


# -- templates --------------------------------------------------------------------------------------
@main.group()
def templates() -> None:
    """Message templates: import your own wording, list names, locales and versions."""


@templates.command("import")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.pass_context
@fail_cleanly
def templates_import(ctx: click.Context, folder: Path) -> None:
    """Check and store FOLDER/<name>/<locale>/{subject.txt,body.txt,body.html,sms.txt}.

    Every problem is printed on stderr, one line each, and then nothing is stored (exit 1).
    Changed wording is stored as a new version; campaigns created from now on use it.
    """
    from orchestrator.errors import TemplateProblems
    from orchestrator.rendering.template_store import import_templates

    try:
        report = import_templates(get_rt(ctx), folder)
    except TemplateProblems as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        ctx.exit(1)
    for line in report.lines():
        click.echo(line)


@templates.command("list")
@click.option("--all", "all_versions", is_flag=True, help="Also the imported versions no longer current.")
@click.pass_context
@fail_cleanly
def templates_list(ctx: click.Context, all_versions: bool) -> None:
    """Every wording: name, locale, channel, version, source (shipped|imported), state."""
    from orchestrator.rendering.template_store import LISTING_HEADER, list_templates

    click.echo(LISTING_HEADER)
    for wording in list_templates(get_rt(ctx), all_versions=all_versions):
        click.echo(wording.line())


# -- running ------------------------------------------------------------------------------------------
@main.command()
@click.option("--once", is_flag=True, help="Send everything due now, then exit.")
@click.option("--metrics-port", type=int, default=None,
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
        _service_logging(rt)
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
                import logging

                logging.getLogger("reconsent.dispatch").info("dispatcher %s polling", dispatcher.worker_id)
                report = await dispatcher.run_forever(stop)
        finally:
            await dispatcher.close()
            await asyncio.to_thread(heartbeat.stop, mark_stopped=not once)
        return report.summary()

    click.echo(asyncio.run(run()))


async def _stop_when(stop: asyncio.Event, dispatcher: Any) -> None:
    await stop.wait()
    dispatcher.stopping = True


def _service_logging(rt: Runtime) -> None:
    from orchestrator.ops.logs import configure_logging

    configure_logging(rt.config.logging.format, rt.config.logging.level, rt.config.logging.ip_addresses)


def _on_signals(stop: asyncio.Event) -> None:
    import signal

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - non-Unix
            pass


@main.command()
@click.pass_context
@fail_cleanly
def sweep(ctx: click.Context) -> None:
    """Close campaigns past their deadline: expire, suppress, apply retention."""
    from orchestrator.campaigns.sweep import sweep as run_sweep

    click.echo(run_sweep(get_rt(ctx)).summary())


@main.command()
@click.pass_context
@fail_cleanly
def scheduler(ctx: click.Context) -> None:
    """Run the recurring jobs from config (dispatch, sweep, evergreen, retention) until stopped.

    Only one scheduler is active at a time (a database lock); start a second one anywhere as a
    standby: it waits and takes over when the active one dies.
    """
    from orchestrator.ops.scheduler import run_scheduler

    rt = get_rt(ctx)
    _service_logging(rt)
    run_scheduler(rt)


@main.command()
@click.pass_context
@fail_cleanly
def evergreen(ctx: click.Context) -> None:
    """Enrol people newly past the inactivity threshold into the standing campaign (once)."""
    from orchestrator.campaigns.evergreen import enrol_newcomers

    click.echo(enrol_newcomers(get_rt(ctx)).summary())


@main.command()
@click.option("--host", default=None, help="Address to listen on (default: server.host).")
@click.option("--port", default=None, type=int, help="Port (default: server.port).")
@click.pass_context
@fail_cleanly
def serve(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Serve the preference centre (Starlette on uvicorn)."""
    from orchestrator.ops.server import serve_forever

    rt = get_rt(ctx)
    serve_forever(rt, host or rt.config.server.host, port or rt.config.server.port)


@main.command("run")
@click.option("--host", default=None, help="Address to listen on (default: server.host).")
@click.option("--port", default=None, type=int, help="Port (default: server.port).")
@click.pass_context
@fail_cleanly
def run_cmd(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Run everything one machine needs in one process: the preference centre and console, a
    dispatcher and the scheduler (without its dispatch job: the dispatcher sends).

    SIGTERM/SIGINT stops all three cleanly (sends in flight finished, unsent claims released, the
    scheduler lock freed) and exits 0; if one part stops on its own, the others are stopped and it
    exits 1. To scale out, run `serve`, `dispatch` and `scheduler` separately instead.
    """
    from orchestrator.ops.server import prepare_logging
    from orchestrator.ops.service import run_service

    rt = get_rt(ctx)
    prepare_logging(rt)
    report = asyncio.run(run_service(rt, host or rt.config.server.host,
                                     rt.config.server.port if port is None else port))
    click.echo(report.summary())


# -- suppression ------------------------------------------------------------------------------------
@main.group()
def suppression() -> None:
    """The suppression list (liste repoussoir): hashed, never plaintext."""


@suppression.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
@fail_cleanly
def suppression_import(ctx: click.Context, file: Path) -> None:
    """Add addresses (or already-hashed keys), one per line."""
    from orchestrator.consent.suppression import import_list

    report = import_list(get_rt(ctx), file)
    rejected = report.rejected or []
    click.echo(f"{report.added} entries added, {report.already} already present, {len(rejected)} rejected")
    for line, reason in rejected[:10]:
        click.echo(f"  line {line}: {reason}", err=True)


@suppression.command("check")
@click.argument("address")
@click.pass_context
@fail_cleanly
def suppression_check(ctx: click.Context, address: str) -> None:
    """Is ADDRESS suppressed? Exit 0 and print the entry if so; exit 1 if not."""
    from orchestrator.domain.clock import as_utc
    from orchestrator.consent.suppression import check_detailed

    results = check_detailed(get_rt(ctx), address)
    if not results:
        click.echo("not suppressed")
        ctx.exit(1)
    for r in results:
        e = r.entry
        older = " (hashed under a previous suppression key)" if r.previous_key else ""
        since = as_utc(e.created_at).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"
        click.echo(f"suppressed on {e.channel}: {e.reason} since {since}{older}")


@suppression.command("export")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="CSV file (default: stdout).")
@click.pass_context
@fail_cleanly
def suppression_export(ctx: click.Context, output: Path | None) -> None:
    """Write the list as CSV: key,channel,reason,source,created_at (hashes only, no address).

    The file re-imports with `suppression import` on an instance sharing the same suppression key.
    """
    from orchestrator.consent.suppression import export_list

    rt = get_rt(ctx)
    if output:
        with output.open("w", newline="", encoding="utf-8") as fh:
            n = export_list(rt, fh)
        click.echo(f"{n} entries written to {output}")
    else:
        export_list(rt, sys.stdout)


@suppression.command("rekey")
@click.pass_context
@fail_cleanly
def suppression_rekey(ctx: click.Context) -> None:
    """Move contacts and entries from security.previous_suppression_keys to the current key.

    Stop dispatchers and the scheduler first; see docs/suppression.md for the whole procedure.
    """
    from sqlalchemy import func, select

    from orchestrator.store.db import session_scope
    from orchestrator.store.models import Contact
    from orchestrator.consent.suppression import rekey

    rt = get_rt(ctx)
    with session_scope(rt.engine) as session:
        total = session.execute(select(func.count()).select_from(Contact)).scalar_one()
    with click.progressbar(length=int(total), label="re-keying", file=sys.stderr) as bar:
        report = rekey(rt, progress=bar.update)
    click.echo(report.summary())


# -- data-subject requests ----------------------------------------------------------------------------
@main.group()
def dsr() -> None:
    """Data-subject requests: access (export), erasure, and the register of requests."""


def _address_options(func: F) -> F:
    func = click.option("--phone", help="The person's phone number.")(func)
    func = click.option("--email", help="The person's email address.")(func)
    return func


def _one_address(email: str | None, phone: str | None) -> None:
    if bool(email) == bool(phone):
        raise click.UsageError("give exactly one of --email or --phone")


def _operator() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name (some containers)
        return "operator"


_by_option = click.option("--by", help="Who handled the request, for the register (default: your user name).")


@dsr.command("export")
@_address_options
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="JSON file (default: stdout).")
@_by_option
@click.pass_context
@fail_cleanly
def dsr_export(ctx: click.Context, email: str | None, phone: str | None, output: Path | None,
               by: str | None) -> None:
    """Everything held about one person, as JSON."""
    from orchestrator.proof.rights import export_person

    _one_address(email, phone)
    data = json.dumps(export_person(get_rt(ctx), email=email, phone=phone, handled_by=by or _operator()),
                      ensure_ascii=False, indent=2)
    if output:
        output.write_text(data + "\n", encoding="utf-8")
        click.echo(f"written to {output}")
    else:
        click.echo(data)


@dsr.command("erase")
@_address_options
@_by_option
@click.pass_context
@fail_cleanly
def dsr_erase(ctx: click.Context, email: str | None, phone: str | None, by: str | None) -> None:
    """Erase one person's personal data; the hashed suppression entry stays."""
    from orchestrator.proof.rights import erase_person

    _one_address(email, phone)
    n = erase_person(get_rt(ctx), email=email, phone=phone, handled_by=by or _operator())
    click.echo(f"{n} contact(s) erased; suppression entries kept so a re-import is refused")


# -- bounces and operator checks --------------------------------------------------------------------
@main.group()
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


@main.command()
@click.pass_context
def doctor(ctx: click.Context) -> None:
    """Check the settings a real deployment needs and say what to fix (exit 1 if something must be)."""
    from orchestrator.ops.doctor import run_checks
    from orchestrator.errors import ConfigError

    try:
        rt = get_rt(ctx, need_db=False)
    except ConfigError as exc:
        click.echo(f"FIX   configuration: {exc}")
        ctx.exit(1)
    findings = asyncio.run(run_checks(rt.config))
    for f in findings:
        click.echo(f"{f.level.upper():5} {f.topic}: {f.message}")
    must_fix = [f for f in findings if f.level == "fix"]
    click.echo(f"{len(must_fix)} thing(s) to fix, {sum(f.level == 'warn' for f in findings)} warning(s)")
    if must_fix:
        ctx.exit(1)
@dsr.command("add")
@click.option("--kind", required=True, type=click.Choice(["access", "erasure", "rectification"]))
@_address_options
@click.option("--received", help="When the request arrived (ISO date; default: now).")
@click.option("--source", default="operator", type=click.Choice(["operator", "email", "post", "preference_centre"]))
@click.option("--note", help="Free text (no personal data beyond what is needed).")
@click.pass_context
@fail_cleanly
def dsr_add(ctx: click.Context, kind: str, email: str | None, phone: str | None, received: str | None,
            source: str, note: str | None) -> None:
    """Register a request received by mail, post or phone; prints its id and due date."""
    from orchestrator.proof import requests as dsr
    from orchestrator.domain.clock import parse_now
    from orchestrator.proof.rights import subject_of
    from orchestrator.store.db import session_scope

    _one_address(email, phone)
    rt = get_rt(ctx)
    received_at = parse_now(received).now() if received else None
    with session_scope(rt.engine) as session:
        request = dsr.record(session, rt, kind, subject_of(rt, email=email, phone=phone), source=source,
                             received_at=received_at, note=note)
    click.echo(f"request {request.id} ({kind}) registered, due {request.due_at.date().isoformat()}")


@dsr.command("close")
@click.argument("request_id", type=int)
@click.option("--refused", is_flag=True, help="The request was refused (say why with --note).")
@click.option("--note", help="What was done, or why it was refused.")
@_by_option
@click.pass_context
@fail_cleanly
def dsr_close(ctx: click.Context, request_id: int, refused: bool, note: str | None, by: str | None) -> None:
    """Mark a registered request as handled (or refused)."""
    from orchestrator.proof import requests as dsr

    r = dsr.close(get_rt(ctx), request_id, handled_by=by or _operator(), refused=refused, note=note)
    click.echo(f"request {r.id} {r.state} by {r.handled_by}")


@dsr.command("list")
@click.option("--overdue", is_flag=True, help="Only open requests past their due date (exit 1 if any).")
@click.option("--json", "as_json", is_flag=True, help="One JSON array.")
@click.pass_context
@fail_cleanly
def dsr_list(ctx: click.Context, overdue: bool, as_json: bool) -> None:
    """The register: id, kind, received, due, state, source, handled by."""
    from orchestrator.proof import requests as dsr

    requests = dsr.list_requests(get_rt(ctx), overdue=overdue)
    if as_json:
        click.echo(json.dumps([dsr.as_dict(r) for r in requests], ensure_ascii=False))
    else:
        click.echo("id\tkind\treceived\tdue\tstate\tsource\thandled_by")
        for r in requests:
            click.echo(f"{r.id}\t{r.kind}\t{r.received_at.date().isoformat()}\t{r.due_at.date().isoformat()}\t"
                       f"{r.state}\t{r.source}\t{r.handled_by or '-'}")
    if overdue and requests:
        click.echo(f"{len(requests)} overdue request(s)", err=True)
        ctx.exit(1)


# -- retention --------------------------------------------------------------------------------------
@main.group()
def retention() -> None:
    """Retention clocks: personal data past its period is anonymised or deleted."""


@retention.command("run")
@click.option("--dry-run", is_flag=True, help="Print what would go and why; change nothing.")
@click.pass_context
@fail_cleanly
def retention_run(ctx: click.Context, dry_run: bool) -> None:
    """Apply the [retention] policies now (the scheduler runs this on scheduler.retention_cron)."""
    from orchestrator.proof.retention import run_retention

    rt = get_rt(ctx)
    if dry_run:
        report = run_retention(rt, dry_run=True)
    else:
        with click.progressbar(length=0, label="retention", file=sys.stderr) as bar:
            report = run_retention(rt, progress=bar.update)
    for line in report.lines():
        click.echo(line)
    click.echo(report.summary())


# -- evidence ---------------------------------------------------------------------------------------
@main.group()
def evidence() -> None:
    """Proof for an auditor: messages, consent events with proof, final states, suppression."""


def _emit_evidence(data: dict[str, Any], fmt: str, output: Path | None) -> None:
    from orchestrator.proof.evidence import write_csv

    out = output.open("w", newline="", encoding="utf-8") if output else sys.stdout
    try:
        if fmt == "csv":
            write_csv(data, out)
        else:
            out.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
    finally:
        if output:
            out.close()
    if output:
        click.echo(f"evidence for {len(data['contacts'])} contact(s) written to {output}")


@evidence.command("campaign")
@click.argument("campaign_id", type=int)
@click.option("--format", "fmt", type=click.Choice(["json", "csv"]), default="json", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="File (default: stdout).")
@click.pass_context
@fail_cleanly
def evidence_campaign(ctx: click.Context, campaign_id: int, fmt: str, output: Path | None) -> None:
    """Per enrolled contact (pseudonymised): messages, consent events with proof, final state."""
    from orchestrator.proof.evidence import campaign_evidence

    _emit_evidence(campaign_evidence(get_rt(ctx), campaign_id), fmt, output)


@evidence.command("contact")
@_address_options
@click.option("--format", "fmt", type=click.Choice(["json", "csv"]), default="json", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="File (default: stdout).")
@click.pass_context
@fail_cleanly
def evidence_contact(ctx: click.Context, email: str | None, phone: str | None, fmt: str, output: Path | None) -> None:
    """The same evidence for one person, across all campaigns."""
    from orchestrator.proof.evidence import contact_evidence

    _one_address(email, phone)
    _emit_evidence(contact_evidence(get_rt(ctx), email=email, phone=phone), fmt, output)


@main.group()
def audit() -> None:
    """Proof checks."""


@audit.command("verify")
@click.pass_context
@fail_cleanly
def audit_verify(ctx: click.Context) -> None:
    """Walk the consent ledger's hash chain; exit 1 at the first broken link."""
    from orchestrator.consent import ledger
    from orchestrator.store.db import session_scope

    with session_scope(get_rt(ctx).engine) as session:
        report = ledger.verify(session)
    if report.broken_at is not None or report.reason:
        raise ReconsentError(
            f"ledger broken at event {report.broken_at}: {report.reason} ({report.events} events read)"
        )
    click.echo(f"ledger intact: {report.events} events verified")


# -- console users (issue 8) --------------------------------------------------------------------------
@main.group()
def users() -> None:
    """Accounts of the marketer console under /admin (it stays a 404 until an admin exists)."""


@users.command("add")
@click.argument("email")
@click.option("--role", type=click.Choice(["admin", "viewer"]), default="viewer", show_default=True,
              help="admin acts (import, launch, erase…); viewer reads.")
@click.pass_context
@fail_cleanly
def users_add(ctx: click.Context, email: str, role: str) -> None:
    """Create a console user; the password is prompted (twice), or read from stdin's first line."""
    from preference_centre.admin.auth import add_user

    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    user_id = add_user(get_rt(ctx), email, password, role)
    click.echo(f"console user {user_id} created: {email} ({role})")


@main.command()
@click.option("--no-serve", is_flag=True, help="Run the whole story non-interactively and exit.")
@click.option("--port", default=8000, type=int, help="Port for the preference centre.")
@click.pass_context
@fail_cleanly
def demo(ctx: click.Context, no_serve: bool, port: int) -> None:
    """Run the re-consent loop end to end on embedded defaults (no server, no account)."""
    from orchestrator.ops.demo import run_demo

    run_demo(ctx.find_root().obj.get("config"), serve=not no_serve, port=port)


if __name__ == "__main__":  # pragma: no cover
    main()
