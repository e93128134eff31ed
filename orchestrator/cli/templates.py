"""``reconsent templates import|list``."""

from __future__ import annotations

from pathlib import Path

import click

from orchestrator.cli.common import fail_cleanly, get_rt


@click.group()
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
