"""The console tells the truth about progress (issue 16 §4): messages queued while no dispatcher is
alive are flagged on the funnel and the results page; a development console served at another
address than ``public.base_url`` (the address every link in messages and previews uses) says so."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from starlette.testclient import TestClient

from orchestrator.accounts.service import add_user
from orchestrator.ops.heartbeat import DISPATCHER, Heartbeat
from orchestrator.runtime import Runtime
from preference_centre.app import create_app
from tests.admin.conftest import ADMIN, Console, sign_in
from tests.support.factories import launch, person

EMAIL_ONLY = [{"day": 0, "channel": "email", "template": "reconsent"}]


def test_queued_messages_without_a_dispatcher_are_flagged(admin: Console, write_csv: Callable[..., Path]) -> None:
    campaign_id = launch(admin.rt, write_csv([person(1), person(2)]), steps=EMAIL_ONLY)
    for path in (f"/admin/campaigns/{campaign_id}/funnel", f"/admin/campaigns/{campaign_id}/results"):
        page = admin.client.get(path).text
        assert 'id="queued-no-dispatcher"' in page, path
        assert "2 message(s) queued, but no dispatcher is running" in page
    dispatcher = Heartbeat(admin.rt.engine, DISPATCHER, interval=3600).start()
    try:
        for path in (f"/admin/campaigns/{campaign_id}/funnel", f"/admin/campaigns/{campaign_id}/results"):
            assert 'id="queued-no-dispatcher"' not in admin.client.get(path).text
    finally:
        dispatcher.stop()


def test_only_the_messages_due_now_are_counted(admin: Console, write_csv: Callable[..., Path]) -> None:
    """A later step's messages are queued too, but not due: the warning counts what a dispatcher
    would be sending now (it said 4 for 2 due here)."""
    steps = [{"day": 0, "channel": "email", "template": "reconsent"},
             {"day": 7, "channel": "email", "template": "reminder"}]
    campaign_id = launch(admin.rt, write_csv([person(1), person(2)]), steps=steps)
    page = admin.client.get(f"/admin/campaigns/{campaign_id}/results").text
    assert "2 message(s) queued, but no dispatcher is running" in page


def test_a_base_url_other_than_the_serving_address_is_warned_about_in_dev(
        make_rt: Callable[..., Runtime]) -> None:
    rt = make_rt(public={"base_url": "http://127.0.0.1:8000"})
    add_user(rt, *ADMIN, "admin")
    elsewhere = TestClient(create_app(rt), base_url="http://127.0.0.1:8001", headers={"accept-language": "en"})
    sign_in(elsewhere, *ADMIN)
    page = elsewhere.get("/admin/").text
    assert 'id="base-url-mismatch"' in page
    assert "point to http://127.0.0.1:8000 (public.base_url), but this console is served at http://127.0.0.1:8001" \
        in page
    same = TestClient(create_app(rt), base_url="http://127.0.0.1:8000")
    sign_in(same, *ADMIN)
    assert 'id="base-url-mismatch"' not in same.get("/admin/").text
