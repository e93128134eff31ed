"""A contact read by its CRM id, its ledger events page by page, and the suppression list checked and
added to, through the API (issue 17 §2)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlmodel import Session, select

from orchestrator.consent.ledger import Proof
from orchestrator.consent.service import Answer, record_answer
from orchestrator.domain.model import ConsentSource
from orchestrator.store.models import AdminAudit, Enrolment, SuppressionEntry
from tests.api.conftest import Api, new_token
from tests.api.test_api_campaigns import problem_of
from tests.support.factories import launch, person


def test_a_contact_its_consent_suppression_and_events(api: Api, write_csv: Callable[..., Path]) -> None:
    campaign_id = launch(api.rt, write_csv([person(1), person(2)]))
    record_answer(api.rt, 1, campaign_id, Answer(channels={"email": True, "sms": False}, partners=True),
                  Proof(source=ConsentSource.PREFERENCE_CENTRE, campaign_id=campaign_id, wording_hash="w1"))
    with api.client(new_token(api.rt, "read")) as http:
        profile = http.get("/contacts/C-1").json()
        assert profile["external_id"] == "C-1" and profile["email"] == person(1)["email"]
        assert profile["consent"]["email"] == {"marketing": "granted", "partners": "granted"}
        assert profile["consent"]["sms"]["marketing"] == "withdrawn"
        assert profile["suppression"]["sms"] == "not_granted" and profile["suppression"]["email"] is None
        assert profile["created_at"].endswith("Z")
        problem_of(http.get("/contacts/C-404"), 404)
        first = http.get("/contacts/C-1/events", params={"limit": 2}).json()
        assert len(first["data"]) == 2 and first["next"]
        rest = http.get("/contacts/C-1/events", params={"after": first["next"], "limit": 100}).json()
        events = first["data"] + rest["data"]
        assert rest["next"] is None and len({e["id"] for e in events}) == len(events) >= 3
        assert {(e["channel"], e["purpose"], e["action"]) for e in events} >= {
            ("email", "marketing", "confirmed"), ("email", "partners", "granted")}
        assert all(e["event_hash"] and e["occurred_at"].endswith("Z") for e in events)
        assert http.get("/contacts/C-2/events").json() == {"data": [], "next": None}


def test_suppression_is_checked_and_added_through_the_one_writer(api: Api, write_csv: Callable[..., Path]) -> None:
    campaign_id = launch(api.rt, write_csv([person(1), person(2)]))
    address = person(2)["email"]
    read, write = new_token(api.rt, "read"), new_token(api.rt, "write", "crm-writer")
    with api.client(read) as http:
        assert http.post("/suppression:check", json={"value": address}).json() == {"suppressed": False, "entries": []}
        problem_of(http.post("/suppression:check", json={"value": "neither"}), 422)
        problem_of(http.post("/suppression:check", content=b"{not json"), 422)
    with api.client(write) as http:
        added = http.post("/suppression", json={"value": address, "reason": "unsubscribed"})
        assert added.status_code == 201 and added.json() == {"added": ["email"], "already": []}
        again = http.post("/suppression", json={"value": address, "reason": "unsubscribed"})
        assert again.status_code == 200 and again.json() == {"added": [], "already": ["email"]}
        problem_of(http.post("/suppression", json={"value": address, "reason": "because"}), 422)
        checked = http.post("/suppression:check", json={"value": address.upper()}).json()
        assert checked["suppressed"] and checked["entries"][0]["reason"] == "unsubscribed"
        profile = http.get("/contacts/C-2").json()
        assert profile["suppression"]["email"] == "unsubscribed"
        # the proof: a withdrawal in the ledger (source api), so consent reads withdrawn, as after an unsubscribe
        assert profile["consent"]["email"]["marketing"] == "withdrawn"
        events = http.get("/contacts/C-2/events").json()["data"]
        assert [(e["channel"], e["action"], e["source"]) for e in events] == [("email", "withdrawn", "api")]
    with Session(api.rt.engine) as s:
        entry = s.exec(select(SuppressionEntry)).one()
        assert entry.source == "api:crm-writer" and address not in entry.key
        assert s.exec(select(Enrolment).where(Enrolment.contact_id == 2)).one().state == "declined"
        audit = [a for a in s.exec(select(AdminAudit)) if a.action.startswith("api.")]
    assert [(a.action, a.user_email) for a in audit] == [("api.suppression.add", "api:crm-writer")] * 2
    assert all(address not in str(a.detail) for a in audit)
    assert campaign_id
