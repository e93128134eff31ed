"""``reconsent demo``: the whole re-consent loop on embedded defaults, with no server and no account.

It works in its own folder (``var/demo``, wiped at the start): imports the shipped sample contacts,
creates and launches a campaign, dispatches the first step to the .eml outbox, and either serves the
preference centre until Ctrl-C (then fast-forwards to the deadline) or, with ``--no-serve``, plays
the whole story: one person confirms and one unsubscribes through real HTTP requests, the clock moves
through the reminder and SMS steps to the deadline, the sweep runs, and the funnel is printed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email
import json
import re
import shutil
import socket
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import replace
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import click
from sqlalchemy import func, select
from sqlmodel import col

from orchestrator.campaigns.reports import funnel_table
from orchestrator.campaigns.service import campaign_status, create_campaign, launch_campaign, load_plan
from orchestrator.campaigns.sweep import sweep
from orchestrator.config import load_config
from orchestrator.contacts.service import import_contacts
from orchestrator.delivery.worker import DispatchReport, dispatch_once
from orchestrator.domain.clock import Clock, FixedClock, as_utc
from orchestrator.runtime import Runtime, clock_from_env, runtime_in
from orchestrator.store.db import migrate, session_scope
from orchestrator.store.models import OutboxMessage

DATA = Path(__file__).resolve().parent
SAMPLE_CONTACTS = DATA / "sample_contacts.csv"
SAMPLE_CAMPAIGN = DATA / "campaign.toml"
#: The demo's folder, under the instance folder (the config file's, else the current directory).
DEMO_SUBDIR = Path("var") / "demo"


def demo_folder(config_path: str | None) -> Path:
    """``var/demo`` under the instance folder: ``reconsent demo`` run in an empty folder writes only there."""
    return load_config(config_path).base_dir / DEMO_SUBDIR


def demo_runtime(config_path: str | None, folder: Path, clock: Clock) -> Runtime:
    return runtime_in(folder, load_config(config_path), clock)


def write_demo_config(rt: Runtime, folder: Path) -> Path:
    """A config file for running other commands on the demo's data: the settings the demo ran with
    (sender, transports, paths, public URL); secrets are not written (they come from the environment)."""
    cfg = rt.config

    def here(path: Path) -> str:  # relative to the demo folder (where this file is): the folder can move
        return str(path.relative_to(folder)) if path.is_relative_to(folder) else str(path)

    url = cfg.database_url
    if url.startswith("sqlite:///"):
        url = "sqlite:///" + here(Path(url[len("sqlite:///"):]))
    sections = {
        "database": {"url": url},
        "public": {"base_url": cfg.public.base_url},
        "sender": dataclasses.asdict(cfg.sender),
        "email": {"transport": cfg.email.transport, "outbox_dir": here(cfg.path(cfg.email.outbox_dir)),
                  "host": cfg.email.host, "port": cfg.email.port},
        "sms": {"transport": cfg.sms.transport, "outbox_file": here(cfg.path(cfg.sms.outbox_file))},
    }
    lines = ["# Written by `reconsent demo`: the settings the demo ran with (no secrets).",
             "# Relative paths resolve from this file's folder."]
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {json.dumps(value, ensure_ascii=False)}" for key, value in values.items()]
    path = folder / "demo.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def step(title: str) -> None:
    click.secho(f"\n▶ {title}", bold=True)


def links_in(path: Path) -> dict[str, str]:
    """The preference and unsubscribe links found in an .eml file's text part."""
    msg = email.message_from_bytes(path.read_bytes(), policy=default_policy)
    assert isinstance(msg, EmailMessage)
    part = msg.get_body(preferencelist=("plain",))
    text = part.get_content() if part is not None else ""
    found = {"to": str(msg["To"])}
    for kind, pattern in (("page", r"https?://\S+/p/\S+"), ("unsubscribe", r"https?://\S+/u/\S+")):
        m = re.search(pattern, text)
        if m:
            found[kind] = m.group(0)
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class BackgroundServer:
    """uvicorn in a thread, for the demo's real HTTP requests."""

    def __init__(self, rt: Runtime, port: int) -> None:
        import uvicorn

        from orchestrator.ops.server import install_log_scrubber
        from preference_centre.app import create_app

        install_log_scrubber()
        self.server = uvicorn.Server(uvicorn.Config(create_app(rt), host="127.0.0.1", port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("preference centre did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def http(url: str, data: dict[str, str] | None = None) -> tuple[int, str]:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    req = urllib.request.Request(url, data=body, headers={"User-Agent": "reconsent-demo", "Accept-Language": "fr"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, resp.read().decode()


def dispatch_until_sent(rt: Runtime, clock: FixedClock, until: datetime) -> DispatchReport:
    """Dispatch everything due before ``until``; messages waiting for their send window are sent
    by moving the clock to the window's opening (never by sleeping)."""
    total = DispatchReport()
    while True:
        total.add(replace(asyncio.run(dispatch_once(rt)), deferred=0))
        with session_scope(rt.engine) as session:
            nxt = session.execute(select(func.min(col(OutboxMessage.due_at))).where(
                col(OutboxMessage.status) == "pending", col(OutboxMessage.due_at) < until)).scalar()
        if nxt is None:
            return total
        clock.at = max(clock.at, as_utc(nxt))


def run_demo(config_path: str | None, *, serve: bool, port: int) -> None:
    folder = demo_folder(config_path)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    start = clock_from_env()
    t0 = start.now()
    clock = FixedClock(t0)
    if serve:
        base_url = f"http://127.0.0.1:{port}"
    else:
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
    rt = demo_runtime(config_path, folder, clock if not serve else start)
    rt.config.public = replace(rt.config.public, base_url=base_url)
    demo_cfg = write_demo_config(rt, folder)

    step(f"Database {rt.config.database_url_shown}")
    migrate(rt.engine)

    step(f"Importing the shipped sample contacts ({SAMPLE_CONTACTS.name}: invented people, French and English)")
    report = import_contacts(rt, SAMPLE_CONTACTS)
    click.echo(report.summary())
    for r in report.rejects:
        click.echo(f"  line {r.line}: {r.field}: {r.reason}")

    step(f"Creating and launching the shipped sample campaign ({SAMPLE_CAMPAIGN.name})")
    campaign_id = create_campaign(rt, load_plan(SAMPLE_CAMPAIGN))
    enrolled = launch_campaign(rt, campaign_id)
    click.echo(f"campaign {campaign_id}: {enrolled} inactive contacts enrolled "
               "(active ones and those with no email for the first step are left alone)")

    step("Dispatching the first step (email)")
    click.echo(asyncio.run(dispatch_once(rt)).summary())
    emls = sorted((folder / "outbox").glob("*.eml"))
    click.echo(f"{len(emls)} emails written to {folder / 'outbox'}")
    found = [links_in(p) for p in emls]
    for f in found:
        click.echo(f"  {f['to']:32} {f.get('page', '?')}")

    if serve:
        step(f"Preference centre on {base_url} — open a link above; Ctrl-C stops it and fast-forwards to the deadline")
        click.echo(f"(other commands on this demo: reconsent --config {demo_cfg} campaign status {campaign_id})")
        from orchestrator.ops.server import serve_forever

        try:
            serve_forever(rt, "127.0.0.1", port)
        except KeyboardInterrupt:
            pass
        rt = replace(rt, clock=clock)
        clock.at = max(clock.at, start.now())
        play_later_steps(rt, clock, t0, campaign_id, folder)
        return

    with BackgroundServer(rt, port):
        confirm = next(f for f in found if "camille" in f["to"])
        step(f"{confirm['to']} opens the link (GET changes nothing) and confirms (POST)")
        status, _ = http(confirm["page"])
        click.echo(f"GET page → {status}")
        status, page = http(confirm["page"], {"email": "yes", "sms": "yes", "action": "confirm"})
        outcome = "recorded" if "Merci" in page or "Thank" in page else "unexpected page"
        click.echo(f"POST confirm → {status}: {outcome}")
        leaver = next(f for f in found if "oliver" in f["to"])
        step(f"{leaver['to']}'s mail app sends the RFC 8058 one-click unsubscribe")
        status, _ = http(leaver["unsubscribe"], {"List-Unsubscribe": "One-Click"})
        click.echo(f"POST one-click → {status}")

    play_later_steps(rt, clock, t0, campaign_id, folder)
    click.echo(f"\nDemo files in {folder}; inspect with: "
               f"reconsent --config {demo_cfg} campaign status {campaign_id} --json")


def play_later_steps(rt: Runtime, clock: FixedClock, t0: datetime, campaign_id: int, folder: Path) -> None:
    """The rest of the story, on a clock moved forward: reminder, SMS, deadline sweep, funnel."""
    step("Day 7: the reminder goes only to people who have not answered")
    clock.advance(timedelta(days=7))
    click.echo(dispatch_until_sent(rt, clock, until=t0 + timedelta(days=10)).summary())
    step("Day 10: SMS to non-responders (inside the SMS send window)")
    clock.at = max(clock.at, t0 + timedelta(days=10))
    click.echo(dispatch_until_sent(rt, clock, until=t0 + timedelta(days=30)).summary())
    sms_file = folder / "sms.jsonl"
    if sms_file.exists():
        for line in sms_file.read_text(encoding="utf-8").splitlines()[:3]:
            click.echo(f"  SMS {json.loads(line)['body']}")

    step("Day 31: past the deadline, the sweep expires and suppresses whoever never answered")
    clock.at = t0 + timedelta(days=31)
    click.echo(sweep(rt).summary())

    step("Funnel")
    click.echo(funnel_table(campaign_status(rt, campaign_id)))
