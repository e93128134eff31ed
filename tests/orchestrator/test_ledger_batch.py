"""ledger.append_many continues the same hash chain as ledger.append, whatever the events hold."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlmodel import Session, select

from orchestrator.consent import ledger
from orchestrator.consent.ledger import Proof
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


_ZONES = [UTC, timezone(timedelta(hours=5, minutes=45)), ZoneInfo("Europe/Paris")]
_chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")  # PostgreSQL text: no NUL
_text = st.text(_chars, max_size=12)
_proofs = st.builds(Proof, source=st.sampled_from(["sweep", "preference_centre", "api"]),
                    campaign_id=st.none() | st.integers(1, 10**6), step=st.none() | st.integers(0, 9),
                    wording_name=st.none() | _text, wording_hash=st.none() | st.text("0123456789abcdef", max_size=8),
                    locale=st.none() | st.sampled_from(["fr", "en"]), ip=st.none() | st.sampled_from(["192.0.2.1", "::1"]),
                    user_agent=st.none() | _text | st.text(_chars, min_size=395, max_size=420))
_events = st.lists(st.tuples(st.sampled_from(["email", "sms"]), st.sampled_from(["expired", "confirmed", "withdrawn"]),
                             st.builds(lambda d, z: d.replace(tzinfo=z), st.datetimes(datetime(2000, 1, 1),
                                       datetime(2100, 1, 1)), st.sampled_from(_ZONES)),
                             _proofs), min_size=1, max_size=5)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_events)
def test_append_many_stores_what_append_stores(rt: Runtime, events: list[tuple[str, str, datetime, Proof]]) -> None:
    """Row for row, the driver-level stored values (SQLite's DATETIME strings, etc.) of the batch path
    equal the ORM path's, apart from the chain position; and the whole chain verifies."""
    with Session(rt.engine) as s:
        contact_id = _contacts_in(s, rt, 1)[0]
        first = s.execute(text("SELECT coalesce(max(id), 0) FROM consent_event")).scalar_one()
        for channel, action, at, proof in events:
            ledger.append(s, contact_id=contact_id, channel=channel, purpose="marketing", action=action, at=at,
                          proof=proof)
        s.flush()
        ledger.append_many(s, [{"contact_id": contact_id, "channel": channel, "purpose": "marketing",
                                "action": action, "at": at, "proof": proof} for channel, action, at, proof in events])
        columns = ", ".join(c.name for c in ConsentEvent.__table__.columns  # type: ignore[attr-defined]
                            if c.name not in ("id", "prev_hash", "hash"))
        stored = s.connection().exec_driver_sql(
            f"SELECT {columns} FROM consent_event WHERE id > {int(first)} ORDER BY id").all()
        report = ledger.verify(s)
        s.commit()
    n = len(events)
    assert len(stored) == 2 * n
    assert [tuple(r) for r in stored[n:]] == [tuple(r) for r in stored[:n]]
    assert report.broken_at is None and report.reason is None


def _contacts_in(s: Session, rt: Runtime, n: int) -> list[int]:
    now = rt.clock.now()
    rows = [Contact(external_id=f"H-{uuid.uuid4().hex}", kind="customer", created_at=now, updated_at=now)
            for _ in range(n)]
    s.add_all(rows)
    s.flush()
    return [c.id for c in rows]  # type: ignore[misc]
