"""The consent ledger: tampering is detected and named; erasure redacts without breaking the chain;
current consent is derived from the ledger only."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select, text

from orchestrator.consent import ledger
from orchestrator.cli.main import main
from orchestrator.consent.service import Answer, record_answer, record_unsubscribe
from orchestrator.domain.model import ConsentSource
from orchestrator.consent.ledger import Proof
from orchestrator.proof.rights import erase_person
from orchestrator.runtime import Runtime
from orchestrator.store.db import session_scope
from orchestrator.store.models import ConsentEvent
from tests.support.factories import launch, person


def proof(rt: Runtime, campaign_id: int | None) -> Proof:
    with session_scope(rt.engine) as s:
        h = ledger.remember_wording(s, name="preference_page", locale="fr", text_shown="Encore ?", at=rt.clock.now())
    return Proof(source=ConsentSource.PREFERENCE_CENTRE, campaign_id=campaign_id, wording_name="preference_page",
                 wording_hash=h, locale="fr", ip="198.51.100.4", user_agent="Mozilla/5.0 (Android)")


def some_history(rt: Runtime, write_csv: Callable[..., Path]) -> int:
    campaign_id = launch(rt, write_csv([person(1), person(2), person(3)]))
    record_answer(rt, 1, campaign_id, Answer({"email": True, "sms": False}, partners=True), proof(rt, campaign_id))
    record_unsubscribe(rt, 2, campaign_id, "email", proof(rt, campaign_id))
    record_answer(rt, 3, campaign_id, Answer({"email": False, "sms": False}), proof(rt, campaign_id))
    return campaign_id


def verify(rt: Runtime) -> ledger.ChainReport:
    with session_scope(rt.engine) as s:
        return ledger.verify(s)


def audit_verify(rt: Runtime, database_url: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["audit", "verify"], env={"RECONSENT_DATABASE__URL": database_url})
    return result.exit_code, result.output


def test_an_edited_row_fails_verify_naming_the_event(rt: Runtime, write_csv: Callable[..., Path], database_url: str) -> None:
    some_history(rt, write_csv)
    assert verify(rt) == ledger.ChainReport(events=7, broken_at=None)
    with session_scope(rt.engine) as s:  # someone turns a refusal into a confirmation, in SQL
        target = s.execute(select(ConsentEvent.id).where(ConsentEvent.contact_id == 3, ConsentEvent.channel == "email")).scalar_one()
        s.execute(text("UPDATE consent_event SET action = 'confirmed' WHERE id = :id"), {"id": target})
    report = verify(rt)
    assert report.broken_at == target and "edited" in (report.reason or "")
    code, output = audit_verify(rt, database_url)
    assert code == 1 and f"ledger broken at event {target}: content does not match its hash" in output


def test_an_edited_ip_is_detected_too(rt: Runtime, write_csv: Callable[..., Path]) -> None:
    some_history(rt, write_csv)
    with session_scope(rt.engine) as s:
        s.execute(text("UPDATE consent_event SET ip = '203.0.113.9' WHERE id = 1"))
    assert verify(rt).broken_at == 1


def test_a_deleted_row_fails_verify_at_the_next_event(rt: Runtime, write_csv: Callable[..., Path], database_url: str) -> None:
    some_history(rt, write_csv)
    with session_scope(rt.engine) as s:
        s.execute(text("DELETE FROM consent_event WHERE id = 3"))
    report = verify(rt)
    assert report.broken_at == 4 and report.reason == (
        "prev_hash does not match event 2 (an event between them was deleted or altered)")
    code, output = audit_verify(rt, database_url)
    assert code == 1 and "ledger broken at event 4" in output


def test_deleting_the_newest_events_is_detected_by_the_head(rt: Runtime, write_csv: Callable[..., Path]) -> None:
    some_history(rt, write_csv)
    with session_scope(rt.engine) as s:
        s.execute(text("DELETE FROM consent_event WHERE id >= 6"))
    report = verify(rt)
    assert report.broken_at is None and report.reason == (
        "chain head does not match event 5: the newest events were deleted")


def test_erasure_redacts_ip_and_user_agent_and_the_chain_still_verifies(rt: Runtime, write_csv: Callable[..., Path]) -> None:
    some_history(rt, write_csv)
    erase_person(rt, email="person1@example.org")
    with session_scope(rt.engine) as s:
        events = list(s.execute(select(ConsentEvent).where(ConsentEvent.contact_id == 1)).scalars())
        others = list(s.execute(select(ConsentEvent).where(ConsentEvent.contact_id == 2)).scalars())
    assert events and all((e.ip or "").startswith("redacted:") and "198.51" not in (e.ip or "") for e in events if e.ip)
    assert any(e.ip for e in events)
    assert all(e.ip == "198.51.100.4" for e in others)
    assert verify(rt).broken_at is None and verify(rt).reason is None


def test_current_consent_is_derived_from_the_ledger(rt: Runtime, write_csv: Callable[..., Path]) -> None:
    campaign_id = some_history(rt, write_csv)
    record_answer(rt, 3, None, Answer({"email": True, "sms": True}), proof(rt, None))  # changed their mind
    with session_scope(rt.engine) as s:
        live = ledger.current_consent(s)
        replay = ledger.fold_consent(list(s.execute(select(ConsentEvent)).scalars()))
    assert live == replay
    assert live[(1, "email", "marketing")] == "given" and live[(1, "sms", "marketing")] == "refused"
    assert live[(1, "email", "partners")] == "given"
    assert live[(2, "email", "marketing")] == "refused"
    assert live[(3, "email", "marketing")] == "given" and live[(3, "sms", "marketing")] == "given"
    assert campaign_id == 1
