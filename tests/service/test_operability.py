"""Operability: /healthz, Prometheus metrics (web and dispatcher), structured logs without PII."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from orchestrator.ops import metrics
from orchestrator.consent.service import record_unsubscribe
from orchestrator.delivery.worker import dispatch_once
from orchestrator.consent.ledger import Proof
from orchestrator.domain.model import ConsentSource
from orchestrator.ops.logs import JsonFormatter, Scrub, configure_logging
from orchestrator.runtime import Runtime
from preference_centre.app import create_app
from tests.support.factories import launch, person, run

STEPS = [{"day": 0, "channel": "email", "template": "reconsent"}, {"day": 7, "channel": "email", "template": "reminder"}]


def samples(body: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_endpoint_reports_messages_queue_and_consent_events(
    make_rt: Callable[..., Runtime], write_csv: Callable[..., Path]
) -> None:
    rt = make_rt(server={"metrics_allow": ["testclient"]})
    campaign_id = launch(rt, write_csv([person(1), person(2), person(3)]), steps=STEPS)
    client = TestClient(create_app(rt))
    before = samples(client.get("/metrics").text)
    assert before[("reconsent_queue_depth", ())] == 3
    assert before[("reconsent_messages", (("channel", "email"), ("state", "pending")))] == 6
    run(dispatch_once(rt))
    record_unsubscribe(rt, 1, campaign_id, "email", Proof(source=ConsentSource.ONE_CLICK, campaign_id=campaign_id))
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    after = samples(response.text)
    assert after[("reconsent_messages", (("channel", "email"), ("state", "sent")))] == 3
    assert after[("reconsent_messages", (("channel", "email"), ("state", "pending")))] == 3
    assert after[("reconsent_queue_depth", ())] == 0  # the reminders are not due yet
    actions = {labels[0][1]: v for (name, labels), v in after.items() if name == "reconsent_consent_events_total"}
    assert actions.get("withdrawn") == 1
    assert "person1" not in response.text and "example.org" not in response.text


def test_metrics_are_refused_to_clients_not_allowed(rt: Runtime) -> None:
    client = TestClient(create_app(rt))  # default: loopback only; the test client is not loopback
    assert client.get("/metrics").status_code == 404
    assert client.get("/healthz").text == "ok"


def test_dispatcher_counts_sends_and_latency(make_rt: Callable[..., Runtime], write_csv: Callable[..., Path]) -> None:
    rt = make_rt()
    launch(rt, write_csv([person(1), person(2)]), steps=STEPS[:1])
    latency_before = metrics.SEND_LATENCY.labels(channel="email")._sum.get()  # type: ignore[attr-defined]
    sent_before = metrics.SENDS.labels(channel="email", outcome="sent")._value.get()
    run(dispatch_once(rt))
    assert metrics.SENDS.labels(channel="email", outcome="sent")._value.get() == sent_before + 2
    assert metrics.SEND_LATENCY.labels(channel="email")._sum.get() > latency_before  # type: ignore[attr-defined]
    body = metrics.render(metrics.store_registry(rt, with_process=True)).decode()
    names = {name for name, _ in samples(body)}
    assert {"reconsent_send_latency_seconds_bucket", "reconsent_sends_total", "reconsent_messages",
            "reconsent_queue_depth"} <= names


@pytest.fixture
def root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_logs_hold_no_address_phone_or_token(root_logging: None) -> None:
    configure_logging("json", "INFO")
    stream = io.StringIO()
    ours = [h for h in logging.getLogger().handlers if h.get_name() == "reconsent"]
    assert len(ours) == 1 and isinstance(ours[0].formatter, JsonFormatter)
    ours[0].setStream(stream)  # type: ignore[attr-defined]
    log = logging.getLogger("reconsent.test")
    log.info("sent to %s / %s via GET /p/eyJjIjo3fQ.Zm9v.YmFy?x=1 with Message-ID <rc.abc123@exemple.example>",
             "chloe.martin@example.org", "+33 6 12 34 56 78", extra={"fields": {"row": 7}})
    try:
        raise RuntimeError("could not reach bob@example.org")
    except RuntimeError:
        log.exception("failure")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["level"] == "INFO" and lines[0]["logger"] == "reconsent.test" and lines[0]["row"] == 7
    text = stream.getvalue()
    for secret in ("chloe.martin", "example.org", "12 34 56", "eyJjIjo3fQ"):
        assert secret not in text
    assert "/p/[token]" in lines[0]["msg"] and "<rc.abc123@exemple.example>" in lines[0]["msg"]
    assert "[email]" in lines[1]["exc"]


def test_text_logs_are_scrubbed_too() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "unsubscribe %s from /u/abc.def", ("ann@example.org",), None)
    assert Scrub().filter(record)
    assert record.getMessage() == "unsubscribe [email] from /u/[token]"
