"""The "send me a new link" limit is atomic (issue 14 §6): 15 simultaneous requests for one person,
against a real server and a real SMTP server, send exactly ``fresh_links_per_day`` emails, each with
a Message-ID of its own. Before, all 15 passed the count while the first was still being sent."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from threading import Barrier

from sqlmodel import Session, select

from orchestrator.domain.clock import FixedClock
from orchestrator.rendering.links import LinkClaims
from orchestrator.runtime import Runtime
from orchestrator.store.models import SelfServiceRequest
from preference_centre.app import create_app
from tests.support.factories import launch, person
from tests.support.live_server import live_server
from tests.support.smtp import SmtpServer

REQUESTS = 15


def test_fifteen_simultaneous_fresh_link_requests_send_three_emails(
        make_rt: Callable[..., Runtime], smtp_server: SmtpServer, write_csv: Callable[..., Path],
        clock: FixedClock) -> None:
    smtp_server.handler.data_delay = 0.2  # a real relay takes a moment: the window the old code lost in
    rt = make_rt(email={"transport": "smtp", "host": "127.0.0.1", "port": smtp_server.port})
    assert rt.config.security.fresh_links_per_day == 3
    campaign_id = launch(rt, write_csv([person(1)]))
    unsub = rt.links.dumps("unsubscribe", LinkClaims(1, campaign_id, "email"))
    clock.advance(timedelta(days=400))  # every link has expired
    start = Barrier(REQUESTS)

    def renew(base: str) -> int:
        start.wait()
        try:
            with urllib.request.urlopen(urllib.request.Request(f"{base}/u/{unsub}/renew", data=b"", method="POST"),
                                        timeout=60) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as err:
            return err.code

    with live_server(create_app(rt)) as base, ThreadPoolExecutor(REQUESTS) as pool:
        codes = sorted(pool.map(lambda _: renew(base), range(REQUESTS)))
    assert codes == [200] * 3 + [429] * 12
    message_ids = [r.message["Message-ID"] for r in smtp_server.received]
    assert len(message_ids) == 3 and len(set(message_ids)) == 3
    with Session(rt.engine) as s:
        outcomes = sorted(r.outcome for r in s.exec(select(SelfServiceRequest)))
    assert outcomes == ["rate_limited"] * 12 + ["sent"] * 3
