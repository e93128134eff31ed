"""Data-subject requests: the register (due in a month, overdue list), export with proof, erasure
that keeps the hashed suppression entry, and self-service requests from the preference centre."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from click.testing import CliRunner

from orchestrator.consent import ledger
from orchestrator.cli.main import main
from orchestrator.consent.service import Answer, record_answer
from orchestrator.contacts.service import import_contacts
from orchestrator.delivery.worker import dispatch_once
from orchestrator.domain.clock import FixedClock
from orchestrator.domain.model import ConsentSource
from orchestrator.proof.requests import list_requests
from orchestrator.consent.ledger import Proof
from orchestrator.proof.rights import erase_person, export_person, self_service_request
from orchestrator.runtime import Runtime
from orchestrator.store.db import session_scope
from orchestrator.consent.suppression import check
from tests.support.factories import launch, person, run


def cli(database_url: str, *args: str, now: str = "2026-11-25T09:00:00Z") -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env={"RECONSENT_DATABASE__URL": database_url, "RECONSENT_NOW": now})
    return result.exit_code, result.output


def test_export_has_profile_events_with_proof_messages_and_enrolments(rt: Runtime, write_csv: Callable[..., Path]) -> None:
    campaign_id = launch(rt, write_csv([person(1)]))
    run(dispatch_once(rt))
    with session_scope(rt.engine) as s:
        h = ledger.remember_wording(s, name="preference_page", locale="fr", text_shown="Voulez-vous…", at=rt.clock.now())
    record_answer(rt, 1, campaign_id, Answer({"email": True, "sms": False}),
                  Proof(source=ConsentSource.PREFERENCE_CENTRE, campaign_id=campaign_id, wording_name="preference_page",
                        wording_hash=h, locale="fr", ip="192.0.2.1", user_agent="Firefox"))
    data = export_person(rt, email="PERSON1@example.org", handled_by="dpo@example.org")
    [p] = data["people"]
    assert p["profile"]["email"] == "person1@example.org" and p["profile"]["first_name"] == "Prénom1"
    confirmed = next(e for e in p["consent_events"] if e["action"] == "confirmed")
    assert (confirmed["ip"], confirmed["user_agent"], confirmed["wording_text"]) == ("192.0.2.1", "Firefox", "Voulez-vous…")
    assert confirmed["hash"] and confirmed["source"] == "preference_centre"
    [m] = [m for m in p["messages"] if m["status"] == "sent"]
    assert (m["channel"], m["status"], m["template"]) == ("email", "sent", "reconsent")
    assert m["template_version"] and m["sent_at"].startswith("2026-11-25T09:00")
    assert p["enrolments"] == [{"campaign_id": campaign_id, "state": "confirmed",
                                "enrolled_at": "2026-11-25T09:00:00+00:00", "answered_at": "2026-11-25T09:00:00+00:00"}]
    assert {"channel": "email", "purpose": "marketing", "state": "given"} in p["current_consent"]
    assert p["suppression"] == [{"channel": "sms", "reason": "not_granted", "source": "preference_centre",
                                 "created_at": "2026-11-25T09:00:00+00:00"}]
    [request] = data["requests"]
    assert (request["kind"], request["state"], request["handled_by"]) == ("access", "done", "dpo@example.org")


def test_erasure_keeps_the_hash_and_refuses_a_reimport_even_with_a_new_phone(
        rt: Runtime, write_csv: Callable[..., Path]) -> None:
    import_contacts(rt, write_csv([person(1, phone="")]))
    assert erase_person(rt, email="person1@example.org", handled_by="dpo") == 1
    assert [e.reason for e in check(rt, "person1@example.org")] == ["erased"]
    again = import_contacts(rt, write_csv([person(1)], name="again.csv"))  # same email, a phone we never had
    assert again.created == 0 and "suppression list" in again.rejects[0].reason
    [request] = list_requests(rt)
    assert (request.kind, request.state, request.handled_by) == ("erasure", "done", "dpo")


def test_erasure_upgrades_an_earlier_reason(rt: Runtime, write_csv: Callable[..., Path]) -> None:
    campaign_id = launch(rt, write_csv([person(1)]))
    record_answer(rt, 1, campaign_id, Answer({"email": False, "sms": False}), Proof(source="preference_centre"))
    assert {e.reason for e in check(rt, "person1@example.org")} == {"unsubscribed"}
    erase_person(rt, phone="+33612340001")
    assert {e.reason for e in check(rt, "person1@example.org")} == {"erased"}  # no longer liftable by a "yes"


def test_register_due_dates_overdue_list_and_self_service(
        rt: Runtime, write_csv: Callable[..., Path], clock: FixedClock, database_url: str) -> None:
    import_contacts(rt, write_csv([person(1), person(2)]))
    request_id = self_service_request(rt, 2, "erasure")
    code, out = cli(database_url, "dsr", "add", "--kind", "rectification", "--email", "person1@example.org",
                    "--received", "2026-10-20", "--source", "post")
    assert (code, out.strip()) == (0, "request 2 (rectification) registered, due 2026-11-20")
    code, out = cli(database_url, "dsr", "list", "--overdue")
    assert code == 1
    assert out.splitlines() == ["id\tkind\treceived\tdue\tstate\tsource\thandled_by",
                                "2\trectification\t2026-10-20\t2026-11-20\treceived\tpost\t-",
                                "1 overdue request(s)"]
    code, out = cli(database_url, "dsr", "close", "2", "--by", "alice", "--note", "first name corrected")
    assert (code, out.strip()) == (0, "request 2 done by alice")
    assert cli(database_url, "dsr", "close", "2")[0] == 1  # already done
    code, out = cli(database_url, "dsr", "list", "--overdue")
    assert code == 0 and len(out.splitlines()) == 1
    # the self-service erasure is due a month after it arrived, and becomes overdue after that
    code, out = cli(database_url, "dsr", "list", "--overdue", "--json", now="2026-12-26T09:00:00Z")
    [row] = json.loads(out.splitlines()[0])
    assert (row["id"], row["kind"], row["source"], row["due_at"]) == (request_id, "erasure", "preference_centre",
                                                                     "2026-12-25T09:00:00+00:00")
    assert "person2" not in out  # the register holds a hash, not the address
    # an operator erasure closes the open self-service request rather than adding a second one
    clock.advance(timedelta(days=3))
    erase_person(rt, email="person2@example.org", handled_by="bob")
    states = {(r.id, r.kind): (r.state, r.handled_by) for r in list_requests(rt)}
    assert states[(request_id, "erasure")] == ("done", "bob") and len(states) == 2


def test_dsr_export_command_writes_one_json_file(rt: Runtime, write_csv: Callable[..., Path],
                                                 database_url: str, tmp_path: Path) -> None:
    import_contacts(rt, write_csv([person(1)]))
    out_file = tmp_path / "person1.json"
    code, out = cli(database_url, "dsr", "export", "--phone", "06 12 34 00 01", "-o", str(out_file), "--by", "dpo")
    assert (code, out.strip()) == (0, f"written to {out_file}")
    data = json.loads(out_file.read_text(encoding="utf-8"))
    assert data["people"][0]["profile"]["phone"] == "+33612340001"
    assert data["requests"][0]["kind"] == "access" and data["requests"][0]["handled_by"] == "dpo"


def test_erasure_answers_a_pending_request_so_no_further_step_goes(rt: Runtime, write_csv: Callable[..., Path],
                                                                   clock: FixedClock) -> None:
    from orchestrator.campaigns.service import campaign_status

    campaign_id = launch(rt, write_csv([person(1), person(2)]))
    run(dispatch_once(rt))
    erase_person(rt, email="person1@example.org")
    status = campaign_status(rt, campaign_id)
    assert (status["pending"], status["declined"]) == (1, 1)
    clock.advance(timedelta(days=7))
    report = run(dispatch_once(rt))
    assert report.sent == 1 and report.skipped["no_address"] == 1
