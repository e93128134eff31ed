"""``reconsent suppression import|check|export|rekey``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from orchestrator.cli.common import fail_cleanly, get_rt


@click.group()
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
    from orchestrator.consent.suppression import check_detailed
    from orchestrator.domain.clock import as_utc

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
    from orchestrator.consent.suppression import rekey, rekey_size

    rt = get_rt(ctx)
    with click.progressbar(length=rekey_size(rt), label="re-keying", file=sys.stderr) as bar:
        report = rekey(rt, progress=bar.update)
    click.echo(report.summary())
