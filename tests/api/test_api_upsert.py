"""Contacts upserted through the API with the CSV import's validation, and Idempotency-Key honoured
(issue 17 §2)."""

from __future__ import annotations

from sqlmodel import Session, select

from orchestrator.store.models import AdminAudit, Contact
from tests.api.conftest import Api, new_token
from tests.api.test_api_campaigns import problem_of
from tests.support.factories import person


def _contacts(api: Api) -> dict[str, Contact]:
    with Session(api.rt.engine) as s:
        return {c.external_id: c for c in s.exec(select(Contact))}


def test_put_creates_then_updates_with_the_import_validation(api: Api) -> None:
    with api.client(new_token(api.rt, "write")) as http:
        body = {**person(1), "plan": "gold", "b2b": False}
        created = http.put("/contacts/C-1", json=body)
        assert created.status_code == 201 and created.json()["result"] == "created"
        again = http.put("/contacts/C-1", json=body)
        assert again.status_code == 200 and again.json()["result"] == "updated"
        profile = http.get("/contacts/C-1").json()
        assert profile["attributes"] == {"plan": "gold"} and profile["email"] == person(1)["email"]
        bad = problem_of(http.put("/contacts/C-2", json={**person(2), "email": "not-an-address", "phone": ""}), 422)
        assert bad["errors"][0]["field"] == "email"
        problem_of(http.put("/contacts/C-3", json={**person(3), "external_id": "C-4"}), 422)
        problem_of(http.put("/contacts/C-3", json=[1, 2]), 422)
        problem_of(http.put("/contacts/C-3", json={**person(3), "first_name": {"nested": 1}}), 422)
    assert sorted(_contacts(api)) == ["C-1"]
    with Session(api.rt.engine) as s:
        audit = [(a.action, a.target, a.outcome) for a in s.exec(select(AdminAudit)) if a.action.startswith("api.")]
    assert audit[:3] == [("api.contact.upsert", "external_id:C-1", "ok")] * 2 + [
        ("api.contact.upsert", "external_id:C-2", "refused")]


def test_a_batch_imports_the_valid_rows_and_reports_the_others_by_index(api: Api) -> None:
    with api.client(new_token(api.rt, "write")) as http:
        items = [person(1), {**person(2), "email": "nope", "phone": ""}, person(3), {**person(1), "first_name": "Zoé"}]
        report = http.post("/contacts:batch", json={"contacts": items}).json()
        assert (report["created"], report["updated"], report["merged_duplicates"]) == (2, 0, 1)
        assert [(r["index"], r["external_id"], r["field"]) for r in report["rejected"]] == [(1, "C-2", "email")]
        problem_of(http.post("/contacts:batch", json={"contacts": []}), 422)
        problem_of(http.post("/contacts:batch", json={"contacts": [person(i) for i in range(1002)]}), 422)
    contacts = _contacts(api)
    assert sorted(contacts) == ["C-1", "C-3"] and contacts["C-1"].first_name == "Zoé"


def test_an_idempotency_key_replays_the_stored_answer_and_refuses_another_body(api: Api) -> None:
    with api.client(new_token(api.rt, "write")) as http:
        key = {"idempotency-key": "sync-2026-11-25-0001"}
        first = http.put("/contacts/C-1", json=person(1), headers=key)
        assert first.status_code == 201
        replay = http.put("/contacts/C-1", json=person(1), headers=key)
        assert replay.status_code == 201 and replay.json() == first.json()  # the stored answer, not "updated"
        assert replay.headers["idempotent-replayed"] == "true"
        problem_of(http.put("/contacts/C-1", json={**person(1), "first_name": "Other"}, headers=key), 422)
        assert http.put("/contacts/C-1", json=person(1), headers={"idempotency-key": "another"}).status_code == 200
    with Session(api.rt.engine) as s:
        upserts = [a for a in s.exec(select(AdminAudit)) if a.action == "api.contact.upsert"]
    assert len(upserts) == 2  # the replay did nothing again
