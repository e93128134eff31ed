"""One measured step per child process: ``python -m bench.steps NAME '{json args}'``.

Each step runs in its own interpreter so its peak RSS (``ru_maxrss``) belongs to that step alone,
and prints one JSON object (seconds, rss_mb and step-specific counts) as its last stdout line.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text

from bench.data import T0, runtime
from orchestrator.domain.clock import FixedClock
from orchestrator.domain.message import OutboundMessage, SendResult
from orchestrator.domain.model import Channel
from orchestrator.store.db import session_scope
from orchestrator.store.models import ConsentEvent, OutboxMessage

STEPS = [
    {"day": 0, "channel": "email", "template": "reconsent"},
    {"day": 7, "channel": "email", "template": "reminder"},
    {"day": 10, "channel": "sms", "template": "reconsent"},
]
DEADLINE_DAYS = 30


_cpu = {"start": 0.0, "timed": 0.0}


def _start() -> float:
    _cpu["start"] = time.process_time()
    return time.perf_counter()


def _stop(started: float) -> float:
    """Wall seconds since ``started``; keeps this interpreter's CPU seconds over the same span."""
    _cpu["timed"] = time.process_time() - _cpu["start"]
    return time.perf_counter() - started


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _rt(args: dict[str, Any], **sections: Any) -> Any:
    clock = FixedClock(T0 + timedelta(days=args.get("days_after", 0), minutes=args.get("minutes_after", 0)))
    return runtime(args["url"], Path(args["workdir"]), clock, **sections)


# -- import -------------------------------------------------------------------------------------
def step_import(args: dict[str, Any]) -> dict[str, Any]:
    from orchestrator.contacts.service import import_contacts

    rt = _rt(args)
    t = _start()
    report = import_contacts(rt, Path(args["csv"]))
    seconds = _stop(t)
    # the import validates big files in worker processes: their CPU and peak RSS count too
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"seconds": seconds, "rows": report.read, "created": report.created, "rejected": len(report.rejects),
            "workers_cpu_seconds": round(children.ru_utime + children.ru_stime, 3),
            "workers_rss_mb": round(children.ru_maxrss / 1024, 1)}


# -- launch -------------------------------------------------------------------------------------
def step_launch(args: dict[str, Any]) -> dict[str, Any]:
    from orchestrator.campaigns.service import create_campaign, launch_campaign
    from orchestrator.domain.campaign import CampaignPlan

    rt = _rt(args)
    plan = CampaignPlan.from_mapping({"name": "bench", "deadline_days": DEADLINE_DAYS, "steps": STEPS})
    campaign_id = create_campaign(rt, plan)
    t = _start()
    enrolled = launch_campaign(rt, campaign_id)
    seconds = _stop(t)
    with session_scope(rt.engine) as session:
        outbox = session.execute(select(func.count()).select_from(OutboxMessage)
                                 .where(OutboxMessage.campaign_id == campaign_id)).scalar_one()
    return {"seconds": seconds, "campaign_id": campaign_id, "enrolled": enrolled, "outbox": outbox}


def step_launch_raw(args: dict[str, Any]) -> dict[str, Any]:
    """The ceiling: hand-written INSERT … SELECT producing the same enrolment and outbox rows.

    Its enrolments get the state ``bench_raw`` so the product's launch afterwards still sees the
    whole audience (its busy check only looks at pending enrolments).
    """
    rt = _rt(args)
    now = rt.clock.now().replace(tzinfo=None)
    with rt.engine.begin() as conn:
        cid = conn.execute(text(
            "INSERT INTO campaign (name, state, plan, created_at) VALUES ('raw', 'draft', '{}', :now) RETURNING id"
        ), {"now": now}).scalar_one()
    t = _start()
    with rt.engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO enrolment (campaign_id, contact_id, state, enrolled_at) "
            "SELECT :cid, id, 'bench_raw', :now FROM contact WHERE erased_at IS NULL AND email IS NOT NULL"
        ), {"cid": cid, "now": now})
        for index, step in enumerate(STEPS):
            column = "email" if step["channel"] == "email" else "phone"
            conn.execute(text(
                "INSERT INTO outbox (campaign_id, contact_id, enrolment_id, step, channel, template, status, due_at, attempts) "
                f"SELECT :cid, e.contact_id, e.id, :step, :channel, :template, 'pending', :due, 0 "
                f"FROM enrolment e JOIN contact c ON c.id = e.contact_id WHERE e.campaign_id = :cid AND c.{column} IS NOT NULL"
            ), {"cid": cid, "step": index, "channel": step["channel"], "template": step["template"],
                "due": now + timedelta(days=step["day"])})
    seconds = _stop(t)
    with rt.engine.connect() as conn:
        enrolled = conn.execute(text("SELECT count(*) FROM enrolment WHERE campaign_id = :c"), {"c": cid}).scalar_one()
        outbox = conn.execute(text("SELECT count(*) FROM outbox WHERE campaign_id = :c"), {"c": cid}).scalar_one()
    return {"seconds": seconds, "campaign_id": cid, "enrolled": enrolled, "outbox": outbox}


# -- sweep --------------------------------------------------------------------------------------
def step_sweep(args: dict[str, Any]) -> dict[str, Any]:
    from orchestrator.consent import ledger
    from orchestrator.campaigns.sweep import sweep

    rt = _rt({**args, "days_after": DEADLINE_DAYS + 1})
    t = _start()
    report = sweep(rt)
    seconds = _stop(t)
    t = time.perf_counter()
    with session_scope(rt.engine) as session:
        chain = ledger.verify(session)
    verify_seconds = time.perf_counter() - t
    return {"seconds": seconds, "expired": report.expired, "suppressed": report.suppressed,
            "anonymised": report.anonymised, "events": chain.events, "chain_ok": chain.broken_at is None
            and chain.reason is None, "verify_seconds": verify_seconds}


# -- campaign results (issue 17) -----------------------------------------------------------------
def step_results(args: dict[str, Any]) -> dict[str, Any]:
    """``campaign results`` as CSV to a file: every enrolled contact, streamed page by page."""
    from orchestrator.campaigns.results import iter_results, write_results

    rt = _rt({**args, "days_after": DEADLINE_DAYS + 1})
    path = Path(args["workdir"]) / "results.csv"
    t = _start()
    with path.open("w", newline="", encoding="utf-8") as out:
        rows = write_results(out, iter_results(rt, args["campaign_id"]), "csv")
    seconds = _stop(t)
    size = path.stat().st_size
    path.unlink()
    return {"seconds": seconds, "rows": rows, "bytes": size}


def step_sweep_raw(args: dict[str, Any]) -> dict[str, Any]:
    """The ceiling: set-based SQL doing the sweep's writes (without the hash chain, which SQL cannot).

    The pending contacts are materialised once in a temporary table, and suppression entries go in
    with ``ON CONFLICT DO NOTHING`` as the product does. An earlier version re-selected them with
    ``id IN (SELECT … FROM enrolment …)`` and skipped existing entries with ``NOT EXISTS (SELECT …
    FROM suppression …)``: PostgreSQL, planning on the (just analysed, empty) suppression table, ran
    that anti-join as a nested loop re-scanning the table the statement was filling — quadratic
    (100 s at 100k, unfinished after 12 minutes at 1M).
    """
    rt = _rt({**args, "days_after": DEADLINE_DAYS + 1})
    now = rt.clock.now().replace(tzinfo=None)
    cid = args["campaign_id"]
    t = _start()
    with rt.engine.begin() as conn:
        p = {"cid": cid, "now": now, "src": f"campaign:{cid}"}
        conn.execute(text(
            "CREATE TEMPORARY TABLE sweep_pending AS SELECT c.id, c.email_key, c.phone_key "
            "FROM enrolment e JOIN contact c ON c.id = e.contact_id "
            "WHERE e.campaign_id = :cid AND e.state = 'pending' AND c.erased_at IS NULL"
        ), p)
        if rt.engine.dialect.name == "postgresql":
            conn.execute(text("ANALYZE sweep_pending"))
        for channel, key in (("email", "email_key"), ("sms", "phone_key")):
            conn.execute(text(
                f"INSERT INTO suppression (key, channel, reason, source, created_at) "
                f"SELECT {key}, '{channel}', 'no_response', :src, :now FROM sweep_pending "
                f"WHERE {key} IS NOT NULL ON CONFLICT DO NOTHING"
            ), p)
            conn.execute(text(
                f"INSERT INTO consent_event (contact_id, channel, purpose, action, occurred_at, source, campaign_id, prev_hash, hash) "
                f"SELECT id, '{channel}', 'marketing', 'expired', :now, 'sweep', :cid, '', '' FROM sweep_pending "
                f"WHERE {key} IS NOT NULL"
            ), p)
        conn.execute(text(
            "UPDATE contact SET external_id = 'erased-' || id, email = NULL, phone = NULL, first_name = NULL, "
            "timezone = NULL, email_key = NULL, phone_key = NULL, attributes = '{}', erased_at = :now, "
            "updated_at = :now WHERE id IN (SELECT id FROM sweep_pending)"
        ), p)
        conn.execute(text("UPDATE enrolment SET state = 'expired', answered_at = NULL "
                          "WHERE campaign_id = :cid AND state = 'pending'"), p)
        conn.execute(text("UPDATE outbox SET status = 'skipped', skip_reason = 'expired', claimed_by = NULL, "
                          "claimed_until = NULL, updated_at = :now WHERE campaign_id = :cid "
                          "AND status IN ('pending', 'sending')"), p)
        conn.execute(text("UPDATE campaign SET state = 'completed', completed_at = :now WHERE id = :cid"), p)
        conn.execute(text("DROP TABLE sweep_pending"))
    seconds = _stop(t)
    with rt.engine.connect() as conn:
        expired = conn.execute(text("SELECT count(*) FROM enrolment WHERE campaign_id = :c AND state = 'expired'"),
                               {"c": cid}).scalar_one()
        suppressed = conn.execute(text("SELECT count(*) FROM suppression WHERE source = :s"),
                                  {"s": f"campaign:{cid}"}).scalar_one()
        events = conn.execute(text("SELECT count(*) FROM consent_event WHERE campaign_id = :c AND action = 'expired'"),
                              {"c": cid}).scalar_one()
    return {"seconds": seconds, "expired": expired, "suppressed": suppressed, "events": events}


def step_analyze(args: dict[str, Any]) -> dict[str, Any]:
    """Set-up, untimed: fresh planner statistics on a PostgreSQL database copy, so the product's sweep
    and its raw ceiling both start from the same, current statistics. A ``CREATE DATABASE … TEMPLATE``
    copy carries the template's statistics as they were and none of its activity counters, so
    autovacuum would not refresh them before the timed step. (SQLite: nothing; the product never
    runs ANALYZE there, and a file copy is the same database.)"""
    rt = _rt(args)
    t = _start()
    if rt.engine.dialect.name == "postgresql":
        with rt.engine.begin() as conn:
            conn.execute(text("ANALYZE contact, enrolment, outbox, suppression, consent_event, campaign"))
    return {"seconds": _stop(t)}


# -- dispatch -----------------------------------------------------------------------------------
class NullChannel:
    """Accepts every message at once: what is left is the pipeline's own cost."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.count = 0

    async def send(self, message: OutboundMessage) -> SendResult:
        self.count += 1
        return SendResult(provider_id=f"null-{message.idempotency_key}")

    async def close(self) -> None:
        pass


async def _dispatch(rt: Any, channels: Any, limit: int) -> dict[str, Any]:
    """Run the real Dispatcher (claim, re-check, render, sign, send, record) for ``limit`` messages:
    the batches of ``run_once``, every result committed before the clock stops."""
    from orchestrator.delivery.worker import Dispatcher, DispatchReport

    dispatcher = Dispatcher(rt, channels)
    report = DispatchReport()
    t = _start()
    done = 0
    while done < limit:
        claimed = await dispatcher.dispatch_batch(report)
        if not claimed:
            break
        done += claimed
    await dispatcher.flush()
    seconds = _stop(t)
    await dispatcher.close()
    return {"seconds": seconds, "sent": report.sent, "processed": done, "skipped": sum(report.skipped.values()),
            "failed": report.failed + report.retried}


def step_dispatch_null(args: dict[str, Any]) -> dict[str, Any]:
    rt = _rt({**args, "minutes_after": 1}, dispatch={"batch_size": args.get("batch_size", 200)})
    channels = {c: NullChannel(c) for c in Channel}
    return asyncio.run(_dispatch(rt, channels, args["limit"]))


def step_dispatch_smtp(args: dict[str, Any]) -> dict[str, Any]:
    from orchestrator.delivery.channels import build_channels

    rt = _rt({**args, "minutes_after": 2}, email={"transport": "smtp", "host": "127.0.0.1", "port": args["port"],
                                                  "pool_size": args["connections"]},
             dispatch={"concurrency": args["concurrency"]})
    channels = build_channels(rt.config)
    result = asyncio.run(_dispatch(rt, channels, args["limit"]))
    result["connections_opened"] = channels[Channel.EMAIL].connections_opened  # type: ignore[attr-defined]
    return result


def step_smtp_bare(args: dict[str, Any]) -> dict[str, Any]:
    """The ceiling: aiosmtplib alone sending pre-rendered messages over the same number of connections."""
    import aiosmtplib

    from orchestrator.campaigns.service import message_context
    from orchestrator.delivery.channels.mime import build_email

    rt = _rt(args)
    distinct = min(args["limit"], 1000)
    prepared = []
    for i in range(distinct):
        locale = "fr" if i % 3 else "en"
        ctx = message_context(rt, first_name=f"Name{i}", page_url=f"https://prefs.example.com/p/{'x' * 60}{i}",
                              unsubscribe_url=f"https://prefs.example.com/u/{'y' * 60}{i}",
                              short_url="https://prefs.example.com/s/abc", deadline=rt.clock.now(), locale=locale)
        r = rt.renderer.render("reconsent", Channel.EMAIL, locale, ctx)
        msg = OutboundMessage(channel=Channel.EMAIL, recipient=f"person{i}@example.org", idempotency_key=str(i),
                              text=r.text, subject=r.subject, html=r.html, sender=rt.config.sender.email_from,
                              sender_name=rt.config.sender.name, message_id=f"<bare.{i}@exemple.example>",
                              headers=(("List-Unsubscribe", "<https://prefs.example.com/u/x>"),
                                       ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")))
        prepared.append((msg.recipient, build_email(msg).as_bytes()))
    sender = rt.config.sender.email_from

    async def run() -> dict[str, Any]:
        n, conns = args["limit"], args["connections"]
        clients = [aiosmtplib.SMTP(hostname="127.0.0.1", port=args["port"]) for _ in range(conns)]
        for c in clients:
            await c.connect()
        t = _start()

        async def worker(k: int, client: aiosmtplib.SMTP) -> None:
            for i in range(k, n, conns):
                rcpt, data = prepared[i % distinct]
                await client.sendmail(sender, [rcpt], data)

        await asyncio.gather(*(worker(k, c) for k, c in enumerate(clients)))
        seconds = _stop(t)
        for c in clients:
            await c.quit()
        return {"seconds": seconds, "sent": n}

    return asyncio.run(run())


# -- preference page helpers ---------------------------------------------------------------------
def step_tokens(args: dict[str, Any]) -> dict[str, Any]:
    """Page tokens for pending enrolments of a campaign (written to a file for the load generator)."""
    from orchestrator.rendering.links import LinkClaims
    from orchestrator.store.models import Enrolment

    rt = _rt(args)
    with session_scope(rt.engine) as session:
        ids = list(session.execute(select(Enrolment.contact_id).where(
            Enrolment.campaign_id == args["campaign_id"], Enrolment.state == "pending")
            .order_by(Enrolment.id).limit(args["count"])).scalars())
    tokens = [rt.links.dumps("page", LinkClaims(contact_id=i, campaign_id=args["campaign_id"], channel="email"))
              for i in ids]
    Path(args["out"]).write_text("\n".join(tokens) + "\n")
    return {"seconds": 0.0, "tokens": len(tokens)}


def step_count_events(args: dict[str, Any]) -> dict[str, Any]:
    rt = _rt(args)
    with session_scope(rt.engine) as session:
        n = session.execute(select(func.count()).select_from(ConsentEvent)).scalar_one()
    return {"seconds": 0.0, "events": n}


def main() -> None:
    name, raw = sys.argv[1], sys.argv[2]
    result = globals()["step_" + name](json.loads(raw))
    result["rss_mb"] = round(rss_mb(), 1)
    # CPU seconds of this interpreter over the timed span: on a shared machine steadier than wall
    # time; on SQLite it includes the database work, on PostgreSQL (a server process) it does not.
    result["cpu_seconds"] = round(_cpu["timed"], 3)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
