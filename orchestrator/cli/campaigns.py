"""``reconsent campaign create|preview|launch|pause|resume|status|list``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from orchestrator.cli.common import ROW_ID, fail_cleanly, get_rt


@click.group()
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
@click.argument("campaign_id", type=ROW_ID)
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
@click.argument("campaign_id", type=ROW_ID)
@click.pass_context
@fail_cleanly
def campaign_launch(ctx: click.Context, campaign_id: int) -> None:
    """Freeze the audience and queue every step."""
    from orchestrator.campaigns.service import launch_campaign

    rt = get_rt(ctx)
    n = launch_campaign(rt, campaign_id)
    click.echo(f"campaign {campaign_id} launched: {n} contact(s) enrolled")


@campaign.command("pause")
@click.argument("campaign_id", type=ROW_ID)
@click.pass_context
@fail_cleanly
def campaign_pause(ctx: click.Context, campaign_id: int) -> None:
    """Stop sending; nothing is lost."""
    from orchestrator.campaigns.service import set_paused

    click.echo(f"campaign {campaign_id} {set_paused(get_rt(ctx), campaign_id, True)}")


@campaign.command("resume")
@click.argument("campaign_id", type=ROW_ID)
@click.pass_context
@fail_cleanly
def campaign_resume(ctx: click.Context, campaign_id: int) -> None:
    """Resume sending where it stopped: no re-send, no skip."""
    from orchestrator.campaigns.service import set_paused

    click.echo(f"campaign {campaign_id} {set_paused(get_rt(ctx), campaign_id, False)}")


@campaign.command("status")
@click.argument("campaign_id", type=ROW_ID)
@click.option("--json", "as_json", is_flag=True, help="One JSON object (SPEC §10).")
@click.pass_context
@fail_cleanly
def campaign_status_cmd(ctx: click.Context, campaign_id: int, as_json: bool) -> None:
    """The funnel: enrolled, answers, and per channel/step sent, delivered, failed, bounced…"""
    from orchestrator.campaigns.reports import funnel_table
    from orchestrator.campaigns.service import campaign_status

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
    from orchestrator.campaigns.service import list_campaigns

    for c in list_campaigns(get_rt(ctx), newest_first=False):
        click.echo(f"{c.id}\t{c.state}\t{c.name}")
