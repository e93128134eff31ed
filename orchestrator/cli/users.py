"""``reconsent users add``: accounts of the marketer console (issue 8)."""

from __future__ import annotations

import sys

import click

from orchestrator.cli.common import fail_cleanly, get_rt


@click.group()
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
    from orchestrator.accounts.service import add_user

    if sys.stdin.isatty():
        password: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    user_id = add_user(get_rt(ctx), email, password, role)
    click.echo(f"console user {user_id} created: {email} ({role})")
