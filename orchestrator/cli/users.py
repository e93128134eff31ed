"""``reconsent users …``: accounts of the marketer console (issues 8 and 15), with an optional second
factor (``users totp``).

Every change is written to the console's audit log (who: ``cli``); disable, remove, reset-password and
logout-all end the account's open sessions at once.
"""

from __future__ import annotations

import sys

import click

from orchestrator.cli.common import fail_cleanly, get_rt


@click.group()
def users() -> None:
    """Accounts of the marketer console under /admin (it stays a 404 until an admin exists)."""


def _new_password() -> str:
    """Prompted twice on a terminal, else the first line of stdin."""
    if sys.stdin.isatty():
        password: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
        return password
    return sys.stdin.readline().rstrip("\r\n")


@users.command("add")
@click.argument("email")
@click.option("--role", type=click.Choice(["admin", "viewer"]), default="viewer", show_default=True,
              help="admin acts (import, launch, erase…); viewer reads.")
@click.pass_context
@fail_cleanly
def users_add(ctx: click.Context, email: str, role: str) -> None:
    """Create a console user; the password is prompted (twice), or read from stdin's first line."""
    from orchestrator.accounts.service import add_user

    user_id = add_user(get_rt(ctx), email, _new_password(), role)
    click.echo(f"console user {user_id} created: {email} ({role})")


@users.command("list")
@click.pass_context
@fail_cleanly
def users_list(ctx: click.Context) -> None:
    """One line per account: email, role, state (active, blocked, disabled), sessions, last sign-in."""
    from orchestrator.accounts.users import list_users

    accounts = list_users(get_rt(ctx))
    if not accounts:
        click.echo("no console users (add one with `reconsent users add EMAIL --role admin`)")
    for a in accounts:
        last = a.last_login_at.strftime("%Y-%m-%d %H:%M") if a.last_login_at else "never"
        extra = f", {a.blocked_addresses} address(es) blocked" if a.blocked_addresses else ""
        click.echo(f"{a.email}  {a.role}  {a.state}  sessions {a.sessions}  failed {a.failed_logins}{extra}  "
                   f"2fa {'on' if a.second_factor else 'off'}  last sign-in {last}")


@users.command("disable")
@click.argument("email")
@click.pass_context
@fail_cleanly
def users_disable(ctx: click.Context, email: str) -> None:
    """Refuse every sign-in of EMAIL and end its sessions now (enable undoes it)."""
    from orchestrator.accounts.users import set_disabled

    ended = set_disabled(get_rt(ctx), email, True)
    click.echo(f"{email} disabled; {ended} session(s) ended")


@users.command("enable")
@click.argument("email")
@click.pass_context
@fail_cleanly
def users_enable(ctx: click.Context, email: str) -> None:
    """Let a disabled account sign in again."""
    from orchestrator.accounts.users import set_disabled

    set_disabled(get_rt(ctx), email, False)
    click.echo(f"{email} enabled")


@users.command("remove")
@click.argument("email")
@click.pass_context
@fail_cleanly
def users_remove(ctx: click.Context, email: str) -> None:
    """Delete the account and end its sessions (its audit entries stay)."""
    from orchestrator.accounts.users import remove_user

    click.echo(f"{remove_user(get_rt(ctx), email)} removed")


@users.command("set-role")
@click.argument("email")
@click.argument("role", type=click.Choice(["admin", "viewer"]))
@click.pass_context
@fail_cleanly
def users_set_role(ctx: click.Context, email: str, role: str) -> None:
    """Make EMAIL an admin or a viewer (from its next request on)."""
    from orchestrator.accounts.users import set_role

    set_role(get_rt(ctx), email, role)
    click.echo(f"{email} is now {role}")


@users.command("reset-password")
@click.argument("email")
@click.pass_context
@fail_cleanly
def users_reset_password(ctx: click.Context, email: str) -> None:
    """Set a new password (prompted twice, or stdin's first line); ends the account's sessions."""
    from orchestrator.accounts.users import reset_password

    rt = get_rt(ctx)
    ended = reset_password(rt, email, _new_password())
    click.echo(f"password of {email} changed; {ended} session(s) ended")


@users.command("unlock")
@click.argument("email")
@click.pass_context
@fail_cleanly
def users_unlock(ctx: click.Context, email: str) -> None:
    """Lift the sign-in blocks of EMAIL (addresses blocked after failed attempts)."""
    from orchestrator.accounts.users import unlock

    click.echo(f"{email} unlocked; {unlock(get_rt(ctx), email)} blocked address(es) lifted")


@users.command("logout-all")
@click.argument("email")
@click.pass_context
@fail_cleanly
def users_logout_all(ctx: click.Context, email: str) -> None:
    """End every session of EMAIL now (it signs in again)."""
    from orchestrator.accounts.users import logout_all

    click.echo(f"{logout_all(get_rt(ctx), email)} session(s) of {email} ended")


@users.command("totp")
@click.argument("email")
@click.option("--off", is_flag=True, help="Remove the second factor (a lost phone).")
@click.pass_context
@fail_cleanly
def users_totp(ctx: click.Context, email: str, off: bool) -> None:
    """Require a code from an authenticator app at EMAIL's sign-in (a new secret, printed once), or not."""
    from orchestrator.accounts.users import set_second_factor

    uri = set_second_factor(get_rt(ctx), email, not off)
    if uri is None:
        click.echo(f"{email}: second factor removed; password only")
        return
    click.echo(f"{email}: scan this in an authenticator app (shown once), then sign in with its code:")
    click.echo(uri)
