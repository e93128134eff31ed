"""The console shows whether a dispatcher and the scheduler are alive, and a running campaign warns
when nothing would send it."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from orchestrator.domain.clock import FixedClock, SystemClock
from orchestrator.ops.heartbeat import DISPATCHER, SCHEDULER, Heartbeat
from tests.admin.conftest import Console
from tests.support.factories import launch, person


def _text(html: str, ident: str) -> str:
    match = re.search(rf'id="{ident}"[^>]*>(.*?)</(?:dd|p)>', html, re.DOTALL)
    assert match, f"no #{ident} in the page"
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())


def test_home_shows_each_service_alive_or_when_it_was_last_seen(admin: Console) -> None:
    home = admin.client.get("/admin/").text
    assert _text(home, "svc-dispatcher") == "never seen" and _text(home, "svc-scheduler") == "never seen"

    ten_minutes_ago = FixedClock(SystemClock().now() - timedelta(minutes=10))
    Heartbeat(admin.rt.engine, DISPATCHER, clock=ten_minutes_ago, interval=3600).start()  # then killed
    scheduler = Heartbeat(admin.rt.engine, SCHEDULER, state="standby", interval=3600).start()
    scheduler.update("active", "sweep, evergreen")
    home = admin.client.get("/admin/").text
    seen = ten_minutes_ago.now().strftime("%Y-%m-%d %H:%M:%S")
    assert _text(home, "svc-dispatcher") == f"not seen since {seen} UTC"
    assert _text(home, "svc-scheduler").startswith(f"alive · active on {scheduler.host} · jobs: sweep, evergreen")

    dispatcher = Heartbeat(admin.rt.engine, DISPATCHER, interval=3600).start()
    assert _text(admin.client.get("/admin/").text, "svc-dispatcher").startswith("alive · 1 process(es)")
    dispatcher.stop()
    scheduler.stop()
    home = admin.client.get("/admin/").text
    assert _text(home, "svc-dispatcher").startswith("not seen since")
    assert _text(home, "svc-scheduler").startswith("not seen since")
    french = admin.client.get("/admin/", headers={"accept-language": "fr"})
    assert _text(french.text, "svc-scheduler").startswith("pas vu depuis le")
    assert "Planificateur (tâches récurrentes)" in french.text


def test_a_running_campaign_warns_when_no_dispatcher_is_alive(admin: Console, write_csv: Callable[..., Path]) -> None:
    campaign_id = launch(admin.rt, write_csv([person(1)]))
    page = admin.client.get(f"/admin/campaigns/{campaign_id}").text
    assert "nothing of this campaign is sent" in _text(page, "no-dispatcher")
    assert "not closed at its deadline" in _text(page, "no-scheduler")
    assert "nothing is sent" in admin.client.get("/admin/").text

    # `reconsent scheduler` with its dispatch job sends: no warning at all
    scheduler = Heartbeat(admin.rt.engine, SCHEDULER, state="standby", interval=3600).start()
    scheduler.update("active", "dispatch, sweep")
    page = admin.client.get(f"/admin/campaigns/{campaign_id}").text
    assert 'id="no-dispatcher"' not in page and 'id="no-scheduler"' not in page
    assert "sending through the dispatch job of the scheduler" in _text(admin.client.get("/admin/").text,
                                                                         "svc-dispatcher")
    # `reconsent run`'s scheduler has no dispatch job; its dispatcher beats
    scheduler.update("active", "sweep")
    assert 'id="no-dispatcher"' in admin.client.get(f"/admin/campaigns/{campaign_id}").text
    dispatcher = Heartbeat(admin.rt.engine, DISPATCHER, interval=3600).start()
    assert 'id="no-dispatcher"' not in admin.client.get(f"/admin/campaigns/{campaign_id}").text
    dispatcher.stop()
    scheduler.stop()

    admin.post(f"/admin/campaigns/{campaign_id}/pause", {"confirm": "yes"})
    assert 'id="no-dispatcher"' not in admin.client.get(f"/admin/campaigns/{campaign_id}").text  # paused: nothing to send
