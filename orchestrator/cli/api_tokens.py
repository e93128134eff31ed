"""``reconsent api-tokens …``: bearer tokens of the HTTP API under /api/v1 (issue 17 §2).

The token is printed once, at creation; only its hash is kept. Creation and revocation go to the
console's audit log.
"""

from __future__ import annotations

import click

from orchestrator.cli.common import fail_cleanly, get_rt


@click.group("api-tokens")
def api_tokens() -> None:
    """Bearer tokens of the HTTP API (/api/v1): read tokens read, write tokens also write."""


@api_tokens.command("create")
@click.option("--name", required=True, help="What uses the token (e.g. crm-sync); shown in the audit log.")
@click.option("--scope", type=click.Choice(["read", "write"]), default="read", show_default=True,
              help="read: GET endpoints only; write: also upserts, suppressions and links.")
@click.pass_context
@fail_cleanly
def tokens_create(ctx: click.Context, name: str, scope: str) -> None:
    """Create a token and print it once (store it in your integration's secrets now)."""
    from orchestrator.accounts.api_tokens import create_token

    token_id, token = create_token(get_rt(ctx), name, scope)
    click.echo(f"api token {token_id} created: {name} ({scope}); it is shown only now:", err=True)
    click.echo(token)


@api_tokens.command("list")
@click.pass_context
@fail_cleanly
def tokens_list(ctx: click.Context) -> None:
    """One line per token: id, name, scope, state, recognisable prefix, created, last used."""
    from orchestrator.accounts.api_tokens import list_tokens

    tokens = list_tokens(get_rt(ctx))
    if not tokens:
        click.echo("no api tokens (create one with `reconsent api-tokens create --name NAME --scope read`)")
    for t in tokens:
        used = t.last_used_at.strftime("%Y-%m-%d %H:%M") if t.last_used_at else "never"
        click.echo(f"{t.id}  {t.name}  {t.scope}  {t.state}  {t.prefix}…  created {t.created_at:%Y-%m-%d %H:%M}"
                   f"  last used {used}")


@api_tokens.command("revoke")
@click.argument("token_id", type=int)
@click.pass_context
@fail_cleanly
def tokens_revoke(ctx: click.Context, token_id: int) -> None:
    """Revoke a token: every request with it is refused (401) from now on."""
    from orchestrator.accounts.api_tokens import revoke_token

    if revoke_token(get_rt(ctx), token_id):
        click.echo(f"api token {token_id} revoked")
    else:
        click.echo(f"api token {token_id} was already revoked")
