"""The example bridge of docs/integrations.md (docs/examples/crm_bridge.py), run as a real process: it
receives the dispatcher's webhooks, checks their signatures, ignores a replay, and prints the CRM
requests; it translates a ``campaign results`` export the same way."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.campaigns.results import iter_results, write_results
from orchestrator.consent.ledger import Proof
from orchestrator.consent.service import Answer, record_answer, record_unsubscribe
from orchestrator.delivery.worker import dispatch_once
from orchestrator.domain.model import ConsentSource
from orchestrator.runtime import Runtime
from orchestrator.webhook_settings import WebhookEndpoint
from tests.orchestrator.delivery.test_webhooks import new_secret
from tests.support.factories import launch, person, run

BRIDGE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "crm_bridge.py"
EMAIL_ONLY = [{"day": 0, "channel": "email", "template": "reconsent"}]


class Bridge:
    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, str(BRIDGE), *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.port = json.loads(self.proc.stdout.readline())["listening"]
        self.url = f"http://127.0.0.1:{self.port}/reconsent"

    def lines(self, n: int, timeout: float = 20) -> list[dict[str, Any]]:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        out = []
        while len(out) < n and time.monotonic() < deadline:
            out.append(json.loads(self.proc.stdout.readline()))
        return out

    def stop(self) -> str:
        self.proc.terminate()
        _, err = self.proc.communicate(timeout=10)
        return err


@pytest.fixture
def bridge_factory() -> Iterator[Callable[..., Bridge]]:
    made: list[Bridge] = []

    def make(*args: str) -> Bridge:
        b = Bridge(*args)
        made.append(b)
        return b

    yield make
    for b in made:
        b.stop()


def test_bridge_turns_webhooks_into_brevo_updates(make_rt: Callable[..., Runtime], write_csv: Callable[..., Path],
                                                 bridge_factory: Callable[..., Bridge]) -> None:
    secret = new_secret()
    bridge = bridge_factory("--target", "brevo", "serve", "--port", "0", "--secret", secret)
    rt = make_rt(webhooks={"endpoints": [WebhookEndpoint(bridge.url, secret, events=(
        "consent.confirmed", "consent.declined", "consent.withdrawn", "consent.expired", "consent.granted",
        "consent.not_granted"))]})
    campaign_id = launch(rt, write_csv([person(1), person(2)]), steps=EMAIL_ONLY)
    record_answer(rt, 1, campaign_id, Answer(channels={"email": True, "sms": False}, partners=True),
                  Proof(source=ConsentSource.PREFERENCE_CENTRE, campaign_id=campaign_id))
    record_unsubscribe(rt, 2, campaign_id, "email", Proof(source=ConsentSource.ONE_CLICK, campaign_id=campaign_id))
    report = run(dispatch_once(rt))
    assert report.webhooks is not None and report.webhooks.delivered == 5  # 2 + 2 partners + 1
    got = sorted((line["external_id"], line["request"]["method"], line["request"]["url"],
                  json.dumps(line["request"]["json"])) for line in bridge.lines(3))
    base = "https://api.brevo.com/v3/contacts"
    assert got == [
        ("C-1", "PUT", f"{base}/C-1?identifierType=ext_id", '{"emailBlacklisted": false}'),
        ("C-1", "PUT", f"{base}/C-1?identifierType=ext_id", '{"smsBlacklisted": true}'),
        ("C-2", "PUT", f"{base}/C-2?identifierType=ext_id", '{"emailBlacklisted": true}'),
    ]  # partner sharing is not an own-marketing change: nothing to tell Brevo

    forged = urllib.request.Request(bridge.url, method="POST", data=b'{"type":"consent.confirmed"}', headers={
        "webhook-id": "msg_x", "webhook-timestamp": str(int(time.time())), "webhook-signature": "v1,AAAA"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(forged, timeout=10)
    assert refused.value.code == 401


def test_bridge_translates_a_results_export(rt: Runtime, write_csv: Callable[..., Path], tmp_path: Path) -> None:
    campaign_id = launch(rt, write_csv([person(1), person(2), person(3)]), steps=EMAIL_ONLY)
    record_answer(rt, 1, campaign_id, Answer(channels={"email": True, "sms": True}),
                  Proof(source=ConsentSource.PREFERENCE_CENTRE, campaign_id=campaign_id))
    record_unsubscribe(rt, 2, campaign_id, "email", Proof(source=ConsentSource.ONE_CLICK, campaign_id=campaign_id))
    results = tmp_path / "results.csv"
    with results.open("w", newline="", encoding="utf-8") as out:
        write_results(out, iter_results(rt, campaign_id))
    emails = tmp_path / "emails.csv"
    emails.write_text("external_id,email\nC-1,person1@example.org\nC-2,person2@example.org\n", encoding="utf-8")
    for target, expect in (
        ("hubspot", [("C-1", "email", True, "SUBSCRIBED"), ("C-2", "email", False, "UNSUBSCRIBED")]),
        ("salesforce", [("C-1", "email", True, "OptIn"), ("C-1", "sms", True, "OptIn"), ("C-2", "email", False, "OptOut")]),
        ("mailchimp", [("C-1", "email", True, "subscribed"), ("C-2", "email", False, "unsubscribed")]),
    ):
        proc = subprocess.run([sys.executable, str(BRIDGE), "--target", target, "--emails", str(emails),
                               "--subscription-id", "123", "--purpose-id", "0ZW1", "--list-id", "abc",
                               "results", str(results)], capture_output=True, text=True, timeout=60, check=True)
        lines = [json.loads(line) for line in proc.stdout.splitlines()]
        word = {"hubspot": "statusState", "salesforce": "PrivacyConsentStatus", "mailchimp": "status"}[target]
        got = [(x["external_id"], x["channel"], x["opted_in"], x["request"] and x["request"]["json"][word])
               for x in lines if x["request"]]
        assert got == expect, target
