"""Signed webhooks on consent changes (issue 17 §3), through the dispatcher to a real HTTP receiver on
loopback that checks every signature with its own HMAC (Standard Webhooks, written here, not the
product's code): written with the change, delivered at least once with a stable id, retried with
backoff for a day, and a dead endpoint never holds up the emails."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from orchestrator.campaigns.sweep import sweep
from orchestrator.config import DEFAULT_CONFIG, load_config
from orchestrator.consent import ledger
from orchestrator.consent.ledger import Proof
from orchestrator.consent.service import Answer, record_answer, record_unsubscribe
from orchestrator.delivery.webhooks import BACKOFF
from orchestrator.delivery.worker import dispatch_once
from orchestrator.domain.clock import FixedClock
from orchestrator.domain.model import ConsentSource
from orchestrator.errors import ConfigError
from orchestrator.runtime import Runtime
from orchestrator.store.models import ConsentEvent, OutboxMessage, WebhookDelivery
from orchestrator.webhook_settings import WebhookEndpoint
from tests.support.factories import launch, person, run

EMAIL_ONLY = [{"day": 0, "channel": "email", "template": "reconsent"}]


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


def signature_ok(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Standard Webhooks verification, written from the specification."""
    key = base64.b64decode(secret[len("whsec_"):])
    content = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(part, "v1," + expected) for part in headers["webhook-signature"].split(" "))


class Receiver:
    """An HTTP server on a free loopback port; ``statuses`` are answered in turn (then 204)."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.received: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["content-length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.received.append({"headers": headers, "body": body,
                                          "valid": signature_ok(receiver.secret, headers, body)})
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/reconsent"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(r["body"]) for r in self.received]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(new_secret())
    yield r
    r.stop()


def dead_url() -> str:
    """A loopback port nobody listens on (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/gone"


def with_endpoints(make_rt: Callable[..., Runtime], *endpoints: WebhookEndpoint) -> Runtime:
    return make_rt(webhooks={"endpoints": list(endpoints), "timeout_seconds": 5.0})


def deliveries(rt: Runtime) -> list[WebhookDelivery]:
    with Session(rt.engine) as s:
        return list(s.exec(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def test_consent_changes_reach_the_endpoint_signed_with_the_proof(
        make_rt: Callable[..., Runtime], write_csv: Callable[..., Path], receiver: Receiver, clock: FixedClock) -> None:
    rt = with_endpoints(make_rt, WebhookEndpoint(receiver.url, receiver.secret))
    campaign_id = launch(rt, write_csv([person(1), person(2), person(3)]), steps=EMAIL_ONLY)
    record_answer(rt, 1, campaign_id, Answer(channels={"email": True, "sms": False}, partners=True),
                  Proof(source=ConsentSource.PREFERENCE_CENTRE, campaign_id=campaign_id, wording_hash="w-1"))
    record_unsubscribe(rt, 2, campaign_id, "email", Proof(source=ConsentSource.ONE_CLICK, campaign_id=campaign_id))
    assert receiver.received == []  # written with the change, posted by the dispatcher

    report = run(dispatch_once(rt))
    assert report.sent == 1  # person 3's email; 1 and 2 answered
    assert report.webhooks is not None and report.webhooks.delivered == len(receiver.received) > 0
    assert all(r["valid"] for r in receiver.received)
    got = sorted((e["type"], e["data"]["external_id"], e["data"].get("channel"), e["data"].get("purpose"))
                 for e in receiver.events())
    assert got == sorted([
        ("consent.confirmed", "C-1", "email", "marketing"), ("consent.not_granted", "C-1", "sms", "marketing"),
        ("consent.granted", "C-1", "email", "partners"), ("consent.granted", "C-1", "sms", "partners"),
        ("contact.suppressed", "C-1", "sms", None),
        ("consent.withdrawn", "C-2", "email", "marketing"), ("contact.suppressed", "C-2", "email", None)])
    with Session(rt.engine) as s:
        hashes = {e.hash for e in s.exec(select(ConsentEvent))}
    confirmed = next(e for e in receiver.events() if e["type"] == "consent.confirmed")["data"]
    assert confirmed["event_hash"] in hashes and confirmed["wording_version"] == "w-1"
    assert confirmed["source"] == "preference_centre" and confirmed["occurred_at"] == "2026-11-25T09:00:00Z"
    assert len({r["headers"]["webhook-id"] for r in receiver.received}) == len(receiver.received)
    assert {d.status for d in deliveries(rt)} == {"delivered"}

    # the sweep: expiry, suppression, erasure and the campaign's end, for an endpoint that asked for them
    clock.advance(timedelta(days=31))
    receiver.received.clear()
    sweep(rt)
    run(dispatch_once(rt))
    types = sorted(e["type"] for e in receiver.events())
    assert types == ["campaign.completed", "consent.expired", "consent.expired", "contact.erased",
                     "contact.suppressed", "contact.suppressed"]
    done = next(e for e in receiver.events() if e["type"] == "campaign.completed")["data"]
    assert (done["campaign_id"], done["confirmed"], done["declined"], done["expired"]) == (campaign_id, 1, 1, 1)
    erased = next(e for e in receiver.events() if e["type"] == "contact.erased")["data"]
    assert erased["external_id"] == "C-3" and all(r["valid"] for r in receiver.received)


def test_only_the_events_asked_for_and_nothing_when_the_change_rolls_back(
        make_rt: Callable[..., Runtime], write_csv: Callable[..., Path], receiver: Receiver) -> None:
    rt = with_endpoints(make_rt, WebhookEndpoint(receiver.url, receiver.secret, events=("consent.withdrawn",)))
    campaign_id = launch(rt, write_csv([person(1), person(2)]), steps=EMAIL_ONLY)
    record_answer(rt, 1, campaign_id, Answer(channels={"email": True}), Proof(source=ConsentSource.PREFERENCE_CENTRE))
    record_unsubscribe(rt, 2, campaign_id, "email", Proof(source=ConsentSource.ONE_CLICK))
    with Session(rt.engine) as s:  # a change that does not commit announces nothing
        ledger.append(s, contact_id=1, channel="sms", purpose="marketing", action="withdrawn", at=rt.clock.now(),
                      proof=Proof(source="test"))
        s.rollback()
    assert [(d.event_type, d.status) for d in deliveries(rt)] == [("consent.withdrawn", "pending")]
    run(dispatch_once(rt))
    assert [e["type"] for e in receiver.events()] == ["consent.withdrawn"]


def test_a_dead_endpoint_never_blocks_emails_and_is_retried_with_backoff(
        make_rt: Callable[..., Runtime], write_csv: Callable[..., Path], receiver: Receiver, clock: FixedClock) -> None:
    gone = dead_url()
    rt = with_endpoints(make_rt, WebhookEndpoint(gone, new_secret()), WebhookEndpoint(receiver.url, receiver.secret))
    campaign_id = launch(rt, write_csv([person(i) for i in range(1, 6)]), steps=EMAIL_ONLY)
    for n in (1, 2):
        record_unsubscribe(rt, n, campaign_id, "email", Proof(source=ConsentSource.ONE_CLICK))
    receiver.statuses = [500]  # the live endpoint fails once too

    report = run(dispatch_once(rt))
    assert report.sent == 3  # the emails went, whatever the endpoints did
    with Session(rt.engine) as s:
        assert len(s.exec(select(OutboxMessage).where(OutboxMessage.status == "sent")).all()) == 3
    dead = [d for d in deliveries(rt) if d.endpoint == gone]
    assert len(dead) == 4 and {d.status for d in dead} == {"pending"}
    assert sum(d.attempts for d in dead) == 1  # one refused connection, then the endpoint's round ended
    assert {d.next_attempt_at for d in dead} == {clock.now() + BACKOFF[0]}
    assert "Connect" in (dead[0].last_error or "")
    first_ids = [r["headers"]["webhook-id"] for r in receiver.received]
    assert len(first_ids) == 1  # 500 on the first: the rest wait for the retry

    run(dispatch_once(rt))  # not due yet: nothing posted
    assert len(receiver.received) == 1
    clock.advance(BACKOFF[0])
    run(dispatch_once(rt))
    live = [d for d in deliveries(rt) if d.endpoint == receiver.url]
    assert {d.status for d in live} == {"delivered"} and len(live) == 4
    assert receiver.received[1]["headers"]["webhook-id"] == first_ids[0]  # the retry keeps its id
    assert all(r["valid"] for r in receiver.received)
    assert [d.attempts for d in live] == [2, 1, 1, 1]


def test_a_failing_endpoint_is_given_up_after_a_day(
        make_rt: Callable[..., Runtime], write_csv: Callable[..., Path], receiver: Receiver, clock: FixedClock) -> None:
    rt = with_endpoints(make_rt, WebhookEndpoint(receiver.url, receiver.secret, events=("consent.withdrawn",)))
    campaign_id = launch(rt, write_csv([person(1)]), steps=EMAIL_ONLY)
    record_unsubscribe(rt, 1, campaign_id, "email", Proof(source=ConsentSource.ONE_CLICK))
    start = clock.now()
    receiver.statuses = [503] * 20
    while deliveries(rt)[0].status == "pending":
        run(dispatch_once(rt))
        clock.advance(deliveries(rt)[0].next_attempt_at - clock.now())
    row = deliveries(rt)[0]
    assert row.status == "failed" and row.last_status == 503 and row.attempts == 7
    assert timedelta(hours=17) < clock.now() - start <= timedelta(hours=28)
    assert len({r["headers"]["webhook-id"] for r in receiver.received}) == 1 and len(receiver.received) == 7


@pytest.mark.parametrize(("endpoint", "message"), [
    ({"url": "http://127.0.0.1:9/x", "secret": "whsec_" + "A" * 40, "colour": "red"}, "unknown setting colour"),
    ({"url": "http://127.0.0.1:9/x", "secret": "s3cret"}, ".secret: expected whsec_"),
    ({"url": "ftp://127.0.0.1/x", "secret": "whsec_" + "A" * 40}, ".url: expected an http(s) URL"),
    ({"url": "http://127.0.0.1:9/x", "secret": "whsec_" + "A" * 40, "events": ["consent.maybe"]},
     "unknown event consent.maybe"),
])
def test_endpoint_settings_are_checked(tmp_path: Path, endpoint: dict[str, Any], message: str) -> None:
    lines = ["[[webhooks.endpoints]]"] + [f"{k} = {json.dumps(v)}" for k, v in endpoint.items()]
    path = tmp_path / "reconsent.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(path, env={})


def test_endpoints_from_file_and_environment(tmp_path: Path) -> None:
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    path = tmp_path / "reconsent.toml"
    path.write_text(f'[[webhooks.endpoints]]\nurl = "http://10.0.0.5/h"\nsecret = "{secret}"\n'
                    'events = ["consent.withdrawn"]\n', encoding="utf-8")
    assert load_config(path, env={}).webhooks.endpoints == [
        WebhookEndpoint("http://10.0.0.5/h", secret, ("consent.withdrawn",))]
    env = {"RECONSENT_WEBHOOKS__ENDPOINTS": json.dumps([{"url": "http://127.0.0.1:8080/h", "secret": secret}])}
    (only,) = load_config(DEFAULT_CONFIG, env=env).webhooks.endpoints
    assert only.url == "http://127.0.0.1:8080/h" and only.wants("campaign.completed")
