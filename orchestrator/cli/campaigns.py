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
    from orchestrator.campaigns.regime import audience_counts
    from orchestrator.campaigns.reports import b2b_line
    from orchestrator.campaigns.service import audience_size, preview_campaign, skipped_for_recent_consent

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
    click.echo(b2b_line(audience_counts(rt, campaign_id), "if launched now"))
    months = rt.config.contacts.recent_consent_months
    for channel, n in skipped_for_recent_consent(rt, campaign_id).items():
        if n:
            click.echo(f"skipped on {channel}: {n} contact(s) whose consent there is less than {months} months old "
                       "(contacts.recent_consent_months)")
    if broken:
        ctx.exit(1)


@campaign.command("launch")
@click.argument("campaign_id", type=ROW_ID)
@click.option("--at", "at", metavar="ISO8601",
              help="Launch later, at this time (without an offset: in scheduler.timezone); the audience is "
                   "frozen then.")
@click.pass_context
@fail_cleanly
def campaign_launch(ctx: click.Context, campaign_id: int, at: str | None) -> None:
    """Freeze the audience and queue every step (now, or --at a planned time)."""
    from orchestrator.campaigns.service import audience_size, launch_campaign

    rt = get_rt(ctx)
    if at is not None:
        from orchestrator.campaigns.schedule import launch_time_text, parse_launch_time, schedule_launch

        when = schedule_launch(rt, campaign_id, parse_launch_time(at, rt.config.scheduler.timezone))
        click.echo(f"campaign {campaign_id} scheduled: launch at {launch_time_text(when)} by the scheduler "
                   f"(audience frozen then; {audience_size(rt, campaign_id)} contact(s) if launched now)")
        return
    n = launch_campaign(rt, campaign_id)
    click.echo(f"campaign {campaign_id} launched: {n} contact(s) enrolled")


@campaign.command("test-send")
@click.argument("campaign_id", type=ROW_ID)
@click.option("--to", "to", required=True, metavar="ADDRESS_OR_PHONE",
              help="Your email address (email steps) or phone number (SMS steps).")
@click.option("--step", type=int, help="Only this step (0 is the first; default: every step on --to's channel).")
@click.option("--locale", help="The language to render in (default: the campaign's).")
@click.pass_context
@fail_cleanly
def campaign_test_send(ctx: click.Context, campaign_id: int, to: str, step: int | None, locale: str | None) -> None:
    """Send the campaign's messages to yourself: subject "[TEST]", links in preview mode; nothing is
    counted or recorded."""
    import asyncio

    from orchestrator.delivery.trial import send_trial

    sent = asyncio.run(send_trial(get_rt(ctx), campaign_id, to, step=step, locale=locale))
    for t in sent:
        subject = f" · {t.subject}" if t.subject else ""
        click.echo(f"step {t.step} · {t.channel} · {t.template} · {t.locale}: {t.outcome}{subject}")
    if not any(t.outcome == "sent" for t in sent) or any(t.outcome.startswith("failed") for t in sent):
        ctx.exit(1)


@campaign.command("unschedule")
@click.argument("campaign_id", type=ROW_ID)
@click.pass_context
@fail_cleanly
def campaign_unschedule(ctx: click.Context, campaign_id: int) -> None:
    """Cancel a planned launch: the campaign is a draft again."""
    from orchestrator.campaigns.schedule import unschedule

    unschedule(get_rt(ctx), campaign_id)
    click.echo(f"campaign {campaign_id} unscheduled (draft)")


@campaign.command("edit")
@click.argument("campaign_id", type=ROW_ID)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
@fail_cleanly
def campaign_edit(ctx: click.Context, campaign_id: int, file: Path) -> None:
    """Replace a draft's plan with FILE.toml (a launched campaign cannot change)."""
    from orchestrator.campaigns.schedule import edit_campaign
    from orchestrator.campaigns.service import load_plan

    edit_campaign(get_rt(ctx), campaign_id, load_plan(file))
    click.echo(f"campaign {campaign_id} updated")


@campaign.command("delete")
@click.argument("campaign_id", type=ROW_ID)
@click.pass_context
@fail_cleanly
def campaign_delete(ctx: click.Context, campaign_id: int) -> None:
    """Delete a draft (a launched campaign is kept: its messages and answers are proof)."""
    from orchestrator.campaigns.schedule import delete_campaign

    delete_campaign(get_rt(ctx), campaign_id)
    click.echo(f"campaign {campaign_id} deleted")


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


@campaign.command("results")
@click.argument("campaign_id", type=ROW_ID)
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True,
              help="CSV with a header row, or one JSON array.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="File to write (default: stdout).")
@click.pass_context
@fail_cleanly
def campaign_results(ctx: click.Context, campaign_id: int, fmt: str, output: Path | None) -> None:
    """One row per enrolled contact, by the CRM's external_id: request state, consent per channel
    (granted, withdrawn, expired, none), and the proof of the answer. Still complete after the sweep."""
    import sys

    from orchestrator.campaigns.results import iter_results, write_results

    rows = iter_results(get_rt(ctx), campaign_id)  # refuses an unknown campaign before any file is made
    if output is None:
        write_results(sys.stdout, rows, fmt)
        return
    with output.open("w", newline="", encoding="utf-8") as out:
        n = write_results(out, rows, fmt)
    click.echo(f"{n} row(s) written to {output}", err=True)
