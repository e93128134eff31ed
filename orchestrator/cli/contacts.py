"""``reconsent contacts import|export``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from orchestrator.cli.common import fail_cleanly, get_rt


@click.group()
def contacts() -> None:
    """Import and export contacts."""


@contacts.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--rejects", type=click.Path(dir_okay=False, path_type=Path),
              help="Write rejected rows (with line numbers and reasons) here.")
@click.option("--strict", is_flag=True, help="Import nothing if any row is rejected.")
@click.option("--map", "maps", multiple=True, metavar="FIELD=COLUMN",
              help="Read FIELD (e.g. email) from the file's column COLUMN, when its header names it otherwise "
                   "(repeatable).")
@click.pass_context
@fail_cleanly
def contacts_import(ctx: click.Context, file: Path, rejects: Path | None, strict: bool,
                    maps: tuple[str, ...]) -> None:
    """Import FILE.csv (SPEC §10 columns, or their French names; ',' ';' or tab; UTF-8 or Windows-1252);
    re-importing updates, never duplicates."""
    from orchestrator.contacts.service import import_contacts, parse_mapping, write_rejects

    rt = get_rt(ctx)
    mapping = parse_mapping(maps)
    with click.progressbar(length=_count_lines(file), label="importing", file=sys.stderr,
                           show_pos=True) as bar:
        report = import_contacts(rt, file, strict=strict, progress=bar.update, mapping=mapping)
    click.echo(report.summary())
    problems = sorted([*report.rejects, *report.warnings], key=lambda r: r.line)
    for r in problems[:10]:
        kept = " (row imported without it)" if r.level == "warning" else ""
        click.echo(f"  line {r.line}: {r.field}: {r.reason}{kept}", err=True)
    if len(problems) > 10:
        hint = "" if rejects else " (use --rejects OUT.csv to get them all)"
        click.echo(f"  … and {len(problems) - 10} more{hint}", err=True)
    if rejects and problems:
        write_rejects(rejects, report)
        click.echo(f"rejected rows written to {rejects}")


def _count_lines(path: Path) -> int:
    """Data rows in a CSV file, for the progress bar (0 if it cannot be read: the import says why)."""
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
    """Export contacts as CSV: the import format (SPEC §10 columns first), then consent per channel
    and purpose (granted, withdrawn, expired, none), suppression per channel, and the extra
    attribute columns they were imported with. Re-importing it changes nothing."""
    from orchestrator.contacts.export import export_table
    from orchestrator.domain.csv_safe import write_csv

    rt = get_rt(ctx)
    table = export_table(rt)
    out = output.open("w", newline="", encoding="utf-8") if output else sys.stdout
    try:
        write_csv(out, table.header, table.rows)
    finally:
        if output:
            out.close()
