"""One Message-ID form [E1]: the header sent, the row stored, ``dsr export`` and the bounce match agree.

A sender written ``Name <address>`` (as people write From addresses) once stored ``<rc.…@domain>>``
while the header said ``<rc.…@domain>``: the DSN quoting the header then matched no row by its id.
"""

from __future__ import annotations

import doctest
import email
import mailbox
from collections.abc import Callable
from datetime import timedelta
from email.policy import default as default_policy
from pathlib import Path

from sqlalchemy import text
from sqlmodel import Session, select

from orchestrator.delivery.bounces import ingest
from orchestrator.delivery.worker import dispatch_once
from orchestrator.domain import message as message_module
from orchestrator.domain.clock import FixedClock
from orchestrator.proof.rights import export_person
from orchestrator.runtime import Runtime
from orchestrator.store.db import downgrade, migrate
from orchestrator.store.models import OutboxMessage
from tests.support.dsn import postfix
from tests.support.factories import launch, person, run

TWO_EMAILS = [{"day": 0, "channel": "email", "template": "reconsent"},
              {"day": 7, "channel": "email", "template": "reminder"}]


def test_doctests() -> None:
    assert doctest.testmod(message_module).failed == 0


def _headers(outbox: Path) -> dict[str, dict[str, str]]:
    """Message-ID and From of each .eml written, by file name."""
    out = {}
    for path in sorted(outbox.glob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=default_policy)
        out[path.name] = {"Message-ID": str(msg["Message-ID"]), "From": str(msg["From"])}
    return out


def test_a_named_sender_gets_one_message_id_sent_stored_exported_and_matched(
    make_rt: Callable[..., Runtime], write_csv: Callable[..., Path], clock: FixedClock, tmp_path: Path
) -> None:
    rt = make_rt(sender={"email_from": "Boutique Lumière <bonjour@boutique-lumiere.example>"})
    launch(rt, write_csv([person(1)]), steps=TWO_EMAILS)
    assert run(dispatch_once(rt)).sent == 1
    clock.advance(timedelta(days=7, hours=1))
    assert run(dispatch_once(rt)).sent == 1
    headers = _headers(tmp_path / "outbox")
    sent_ids = sorted(h["Message-ID"] for h in headers.values())
    assert len(sent_ids) == 2 and all(h["From"].endswith("<bonjour@boutique-lumiere.example>") for h in headers.values())
    with Session(rt.engine) as s:
        rows = sorted(s.exec(select(OutboxMessage)), key=lambda r: r.step)
    assert sorted(r.message_id or "" for r in rows) == sent_ids  # stored as sent: no trailing ">>"
    assert sorted(r.provider_id or "" for r in rows) == sent_ids
    assert all(m.endswith("@boutique-lumiere.example>") and not m.endswith(">>") for m in sent_ids)
    exported = export_person(rt, email="person1@example.org")
    assert sorted(m["message_id"] for p in exported["people"] for m in p["messages"]) == sent_ids
    # a DSN quoting the FIRST email's header is matched to that email, not to the last one sent
    box = mailbox.mbox(str(tmp_path / "bounces.mbox"))
    box.add(postfix("person1@example.org", rows[0].message_id or ""))
    box.close()
    assert ingest(rt, tmp_path / "bounces.mbox").hard == 1
    with Session(rt.engine) as s:
        assert {r.step: r.status for r in s.exec(select(OutboxMessage))} == {0: "bounced", 1: "sent"}


def test_the_migration_normalises_stored_message_ids(
    make_rt: Callable[..., Runtime], write_csv: Callable[..., Path]
) -> None:
    rt = make_rt()
    launch(rt, write_csv([person(1), person(2)]), steps=TWO_EMAILS[:1])
    assert run(dispatch_once(rt)).sent == 2
    with Session(rt.engine) as s:
        good = {r.id: r.message_id for r in s.exec(select(OutboxMessage))}
    downgrade(rt.engine, "0012_job_paths")
    with rt.engine.begin() as conn:  # what the old code stored for a sender written "Name <address>"
        conn.execute(text("UPDATE outbox SET message_id = message_id || '>', provider_id = provider_id || '>' "
                          "WHERE channel = 'email'"))
        assert all(m.endswith(">>") for m in conn.execute(text("SELECT message_id FROM outbox")).scalars())
    migrate(rt.engine)
    with Session(rt.engine) as s:
        rows = list(s.exec(select(OutboxMessage)))
    assert {r.id: r.message_id for r in rows} == good
    assert {r.id: r.provider_id for r in rows} == good


def test_return_path_with_a_token_is_the_envelope_and_matches_a_bounce_without_headers(
    make_rt: Callable[..., Runtime], write_csv: Callable[..., Path], clock: FixedClock, tmp_path: Path
) -> None:
    """``email.return_path = "bounces+{token}@…"`` (VERP): each email's envelope sender carries the
    Message-ID's opaque left part (never the address); a DSN delivered there is matched to that email
    even when the reporting server dropped the original headers."""
    rt = make_rt(email={"return_path": "Bounces <bounces+{token}@mail.boutique-lumiere.example>"})
    launch(rt, write_csv([person(1)]), steps=TWO_EMAILS)
    assert run(dispatch_once(rt)).sent == 1
    clock.advance(timedelta(days=7, hours=1))
    assert run(dispatch_once(rt)).sent == 1
    with Session(rt.engine) as s:
        first, second = sorted(s.exec(select(OutboxMessage)), key=lambda r: r.step)
    files = {p.read_bytes().split(b"\r\n", 1)[0]: p for p in (tmp_path / "outbox").glob("*.eml")}
    token = (first.message_id or "")[1:].partition("@")[0]
    assert token.startswith("rc.") and "person1" not in token
    assert f"Return-Path: <bounces+{token}@mail.boutique-lumiere.example>".encode() in files
    from tests.support.dsn import exchange

    report = exchange("person1@example.org", status="5.1.1", action="failed", dsn_id="v1@x").replace(
        b"To: bonjour@boutique-lumiere.example", f"To: bounces+{token}@mail.boutique-lumiere.example".encode())
    box = mailbox.mbox(str(tmp_path / "verp.mbox"))
    box.add(report)
    box.close()
    assert ingest(rt, tmp_path / "verp.mbox").hard == 1
    with Session(rt.engine) as s:
        assert {r.step: r.status for r in s.exec(select(OutboxMessage))} == {0: "bounced", 1: "sent"}
    assert second.message_id != first.message_id
