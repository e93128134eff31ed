"""The ``reconsent`` command (SPEC §10). Errors become one line on stderr and exit code 1;
usage errors exit 2 (click's convention).

Each command group lives in its own module (``orchestrator.cli.contacts``, ``.campaigns``, …) and is
registered here on the main group, as datasette does. Commands call services only: they never touch
the database themselves.
"""

from __future__ import annotations

import click

from orchestrator.cli import (
    api_tokens,
    campaigns,
    contacts,
    delivery,
    ops,
    proof,
    receipts,
    suppression,
    templates,
    users,
)
from orchestrator.cli.common import CommandGroup


@click.group(cls=CommandGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config", type=click.Path(dir_okay=False), envvar="RECONSENT_CONFIG",
              help="TOML config file (default: reconsent.toml in the current directory if there is one, "
                   "else the shipped defaults; also RECONSENT_CONFIG).")
@click.version_option(package_name="reconsent")
@click.pass_context
def main(ctx: click.Context, config: str | None) -> None:
    """Reconsent: win back permission to message your contacts, with proof."""
    ctx.obj = {"config": config}


for command in (
    *ops.COMMANDS,
    contacts.contacts,
    campaigns.campaign,
    templates.templates,
    *delivery.COMMANDS,
    suppression.suppression,
    *proof.COMMANDS,
    users.users,
    api_tokens.api_tokens,
    receipts.receipts,
):
    main.add_command(command)


if __name__ == "__main__":  # pragma: no cover
    main()
