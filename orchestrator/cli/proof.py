"""Rights and proof: ``dsr`` (data-subject requests), ``retention``, ``evidence``, ``audit``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from orchestrator.cli.common import (
    ROW_ID,
    address_options,
    by_option,
    fail_cleanly,
    get_rt,
    one_address,
    operator,
)
from orchestrator.errors import ReconsentError


# -- data-subject requests ----------------------------------------------------------------------------
@click.group()
def dsr() -> None:
    """Data-subject requests: access (export), erasure, and the register of requests."""


@dsr.command("export")
@address_options
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="JSON file (default: stdout).")
@by_option
@click.pass_context
@fail_cleanly
def dsr_export(ctx: click.Context, email: str | None, phone: str | None, output: Path | None,
               by: str | None) -> None:
    """Everything held about one person, as JSON."""
    from orchestrator.proof.rights import export_person

    one_address(email, phone)
    data = json.dumps(export_person(get_rt(ctx), email=email, phone=phone, handled_by=by or operator()),
                      ensure_ascii=False, indent=2)
    if output:
        output.write_text(data + "\n", encoding="utf-8")
        click.echo(f"written to {output}")
    else:
        click.echo(data)


@dsr.command("erase")
@address_options
@by_option
@click.pass_context
@fail_cleanly
def dsr_erase(ctx: click.Context, email: str | None, phone: str | None, by: str | None) -> None:
    """Erase the personal data of every contact with this address (each is named by its
    external_id); the hashed suppression entries stay."""
    from orchestrator.proof.rights import erase_by_address

    one_address(email, phone)
    erased = erase_by_address(get_rt(ctx), email=email, phone=phone, handled_by=by or operator())
    click.echo(f"{len(erased)} contact(s) erased; suppression entries kept so a re-import is refused")
    for external_id in erased:
        click.echo(f"  erased: {external_id}")


@dsr.command("add")
@click.option("--kind", required=True, type=click.Choice(["access", "erasure", "rectification"]))
@address_options
@click.option("--received", help="When the request arrived (ISO date; default: now).")
@click.option("--source", default="operator", type=click.Choice(["operator", "email", "post", "preference_centre"]))
@click.option("--note", help="Free text (no personal data beyond what is needed).")
@click.pass_context
@fail_cleanly
def dsr_add(ctx: click.Context, kind: str, email: str | None, phone: str | None, received: str | None,
            source: str, note: str | None) -> None:
    """Register a request received by mail, post or phone; prints its id and due date."""
    from orchestrator.domain.clock import parse_now
    from orchestrator.proof.requests import register
    from orchestrator.proof.rights import subject_of

    one_address(email, phone)
    rt = get_rt(ctx)
    received_at = parse_now(received).now() if received else None
    request = register(rt, kind, subject_of(rt, email=email, phone=phone), source=source,
                       received_at=received_at, note=note)
    click.echo(f"request {request.id} ({kind}) registered, due {request.due_at.date().isoformat()}")


@dsr.command("close")
@click.argument("request_id", type=ROW_ID)
@click.option("--refused", is_flag=True, help="The request was refused (say why with --note).")
@click.option("--note", help="What was done, or why it was refused.")
@by_option
@click.pass_context
@fail_cleanly
def dsr_close(ctx: click.Context, request_id: int, refused: bool, note: str | None, by: str | None) -> None:
    """Mark a registered request as handled (or refused)."""
    from orchestrator.proof.requests import close

    r = close(get_rt(ctx), request_id, handled_by=by or operator(), refused=refused, note=note)
    click.echo(f"request {r.id} {r.state} by {r.handled_by}")


@dsr.command("list")
@click.option("--overdue", is_flag=True, help="Only open requests past their due date (exit 1 if any).")
@click.option("--json", "as_json", is_flag=True, help="One JSON array.")
@click.pass_context
@fail_cleanly
def dsr_list(ctx: click.Context, overdue: bool, as_json: bool) -> None:
    """The register: id, kind, received, due, state, source, handled by."""
    from orchestrator.proof.requests import as_dict, list_requests

    requests = list_requests(get_rt(ctx), overdue=overdue)
    if as_json:
        click.echo(json.dumps([as_dict(r) for r in requests], ensure_ascii=False))
    else:
        click.echo("id\tkind\treceived\tdue\tstate\tsource\thandled_by")
        for r in requests:
            click.echo(f"{r.id}\t{r.kind}\t{r.received_at.date().isoformat()}\t{r.due_at.date().isoformat()}\t"
                       f"{r.state}\t{r.source}\t{r.handled_by or '-'}")
    if overdue and requests:
        click.echo(f"{len(requests)} overdue request(s)", err=True)
        ctx.exit(1)


# -- retention --------------------------------------------------------------------------------------
@click.group()
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
@click.group()
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


_format_option = click.option("--format", "fmt", type=click.Choice(["json", "csv"]), default="json", show_default=True)
_output_option = click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
                              help="File (default: stdout).")


@evidence.command("campaign")
@click.argument("campaign_id", type=ROW_ID)
@_format_option
@_output_option
@click.pass_context
@fail_cleanly
def evidence_campaign(ctx: click.Context, campaign_id: int, fmt: str, output: Path | None) -> None:
    """Per enrolled contact (pseudonymised): messages, consent events with proof, final state."""
    from orchestrator.proof.evidence import campaign_evidence

    _emit_evidence(campaign_evidence(get_rt(ctx), campaign_id), fmt, output)


@evidence.command("contact")
@address_options
@_format_option
@_output_option
@click.pass_context
@fail_cleanly
def evidence_contact(ctx: click.Context, email: str | None, phone: str | None, fmt: str, output: Path | None) -> None:
    """The same evidence for one person, across all campaigns."""
    from orchestrator.proof.evidence import contact_evidence

    one_address(email, phone)
    _emit_evidence(contact_evidence(get_rt(ctx), email=email, phone=phone), fmt, output)


# -- audit ------------------------------------------------------------------------------------------
@click.group()
def audit() -> None:
    """Proof checks."""


@audit.command("verify")
@click.pass_context
@fail_cleanly
def audit_verify(ctx: click.Context) -> None:
    """Walk the consent ledger's hash chain; exit 1 at the first broken link."""
    from orchestrator.proof.evidence import verify_ledger

    report = verify_ledger(get_rt(ctx))
    if report.broken_at is not None or report.reason:
        raise ReconsentError(
            f"ledger broken at event {report.broken_at}: {report.reason} ({report.events} events read)"
        )
    click.echo(f"ledger intact: {report.events} events verified")


COMMANDS = (dsr, retention, evidence, audit)
