"""ledger.append_many continues the same hash chain as ledger.append, whatever the events hold."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, select

from orchestrator import ledger
from orchestrator.ledger import Proof
from orchestrator.runtime import Runtime
from orchestrator.store.models import ConsentEvent, Contact


def _contacts(rt: Runtime, n: int) -> list[int]:
    now = rt.clock.now()
    with Session(rt.engine) as s:
        rows = [Contact(external_id=f"L-{i}", kind="customer", email=f"l{i}@example.org", created_at=now,
                        updated_at=now) for i in range(n)]
        s.add_all(rows)
        s.commit()
        return [c.id for c in rows]  # type: ignore[misc]


def test_append_many_keeps_the_chain(rt: Runtime) -> None:
    ids = _contacts(rt, 4)
    now = rt.clock.now()
    odd = Proof(source="preference_centre", campaign_id=3, step=1, wording_name="page", wording_hash="ab" * 8,
                locale="fr", ip="192.0.2.1", user_agent="Ünïcode \"quoted\" agent " + "x" * 500)
    with Session(rt.engine) as s:
        ledger.append(s, contact_id=ids[0], channel="email", purpose="marketing", action="confirmed", at=now,
                      proof=Proof(source="api"))
        n = ledger.append_many(s, [
            {"contact_id": ids[1], "channel": "email", "purpose": "marketing", "action": "expired", "at": now,
             "proof": Proof(source="sweep", campaign_id=3)},
            {"contact_id": ids[1], "channel": "sms", "purpose": "marketing", "action": "expired", "at": now,
             "proof": Proof(source="sweep", campaign_id=3)},
            {"contact_id": ids[2], "channel": "email", "purpose": "marketing", "action": "expired", "at": now,
             "proof": Proof(source="sweep", campaign_id=3)},
            {"contact_id": ids[3], "channel": "email", "purpose": "partners", "action": "granted",
             "at": now + timedelta(microseconds=7), "proof": odd},
        ])
        ledger.append(s, contact_id=ids[2], channel="sms", purpose="marketing", action="withdrawn", at=now,
                      proof=Proof(source="sms_keyword"))
        assert ledger.append_many(s, []) == 0
        s.commit()
        report = ledger.verify(s)
        events = list(s.exec(select(ConsentEvent).order_by(ConsentEvent.id)))  # type: ignore[arg-type]
    assert n == 4
    assert report.broken_at is None and report.reason is None and report.events == 6
    assert [e.action for e in events] == ["confirmed", "expired", "expired", "expired", "granted", "withdrawn"]
    assert all(e.hash == ledger.chain_hash(e.prev_hash, e) for e in events)
    assert events[4].user_agent is not None and len(events[4].user_agent) == 400


def test_verify_notices_a_tampered_batch_event(rt: Runtime) -> None:
    ids = _contacts(rt, 2)
    with Session(rt.engine) as s:
        ledger.append_many(s, [{"contact_id": i, "channel": "email", "purpose": "marketing", "action": "expired",
                                "at": rt.clock.now(), "proof": Proof(source="sweep")} for i in ids])
        s.commit()
        first = s.exec(select(ConsentEvent).order_by(ConsentEvent.id)).first()  # type: ignore[arg-type]
        assert first is not None
        tampered_id = first.id
        first.action = "confirmed"
        s.add(first)
        s.commit()
        report = ledger.verify(s)
    assert report.broken_at == tampered_id and report.reason == "content does not match its hash (the row was edited)"
