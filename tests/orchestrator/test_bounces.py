"""Asynchronous bounces [E3]: RFC 3464 DSNs from a maildir or an mbox, matched to what was sent."""

from __future__ import annotations

import mailbox
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlmodel import Session, select

from orchestrator.delivery.bounces import ingest, parse_dsn
from orchestrator.delivery.worker import dispatch_once
from orchestrator.errors import InputError
from orchestrator.runtime import Runtime
from orchestrator.store.models import Bounce, OutboxMessage, SuppressionEntry
from tests.support.dsn import exchange, postfix
from tests.support.factories import launch, person, run


def sent(rt: Runtime, write_csv: Callable[..., Path], n: int = 3) -> dict[str, str]:
    launch(rt, write_csv([person(i) for i in range(1, n + 1)]),
           steps=[{"day": 0, "channel": "email", "template": "reconsent"}])
    assert run(dispatch_once(rt)).sent == n
    with Session(rt.engine) as s:
        return {f"person{r.contact_id}@example.org": r.message_id or "" for r in s.exec(select(OutboxMessage))}


def write_mbox(path: Path, messages: list[bytes]) -> Path:
    box = mailbox.mbox(str(path))
    for m in messages:
        box.add(m)
    box.close()
    return path


def state(rt: Runtime) -> tuple[dict[int, str], dict[str, str], list[str]]:
    with Session(rt.engine) as s:
        rows = {r.contact_id: r.status for r in s.exec(select(OutboxMessage))}
        supp = {e.key: e.reason for e in s.exec(select(SuppressionEntry))}
        kinds = sorted(b.kind for b in s.exec(select(Bounce)))
    return rows, supp, kinds


def test_parse_a_postfix_report() -> None:
    dsn = parse_dsn(postfix("gone@example.org", "<rc.abc@boutique-lumiere.example>"))
    assert dsn is not None and dsn.original_message_id == "<rc.abc@boutique-lumiere.example>"
    (r,) = dsn.recipients
    assert (r.recipient, r.action, r.status, r.kind) == ("gone@example.org", "failed", "5.1.1", "hard")
    assert parse_dsn(b"From: a@b\r\nSubject: hello\r\n\r\nnot a report\r\n") is None


def test_hard_bounce_suppresses_soft_ones_count_until_the_limit(
    rt: Runtime, write_csv: Callable[..., Path], tmp_path: Path
) -> None:
    ids = sent(rt, write_csv)
    path = write_mbox(tmp_path / "bounces.mbox", [
        postfix("person1@example.org", ids["person1@example.org"]),
        exchange("person2@example.org", status="4.2.2", action="delayed", dsn_id="s1@x"),
        exchange("person2@example.org", status="4.2.2", action="delayed", dsn_id="s2@x"),
        postfix("person3@example.org", ids["person3@example.org"], status="4.4.7", action="failed", dsn_id="s3@x"),
        postfix("stranger@example.org", "<rc.unknown@boutique-lumiere.example>", dsn_id="u@x"),
        b"From: someone@example.org\r\nSubject: out of office\r\n\r\nback monday\r\n",
    ])
    report = ingest(rt, path)
    assert (report.read, report.hard, report.soft, report.unmatched, report.not_dsn) == (6, 1, 3, 1, 1)
    rows, supp, kinds = state(rt)
    assert rows == {1: "bounced", 2: "sent", 3: "failed"}
    assert supp == {rt.key_for("person1@example.org"): "bounced"}
    assert kinds == ["hard", "soft", "soft", "soft"]

    # one more soft bounce for person2 reaches email.soft_bounce_limit (3): suppressed
    more = write_mbox(tmp_path / "more.mbox", [exchange("person2@example.org", status="4.2.2", action="delayed", dsn_id="s4@x")])
    assert ingest(rt, more).suppressed == 1
    _, supp, _ = state(rt)
    assert supp[rt.key_for("person2@example.org")] == "bounced"
    with Session(rt.engine) as s:
        assert all("@" not in b.key for b in s.exec(select(Bounce)))  # keys, never addresses


def test_ingesting_the_same_reports_again_changes_nothing(
    rt: Runtime, write_csv: Callable[..., Path], tmp_path: Path
) -> None:
    sent(rt, write_csv)
    path = write_mbox(tmp_path / "b.mbox", [
        exchange("person2@example.org", status="4.2.2", action="delayed", dsn_id="s1@x"),
        exchange("person2@example.org", status="4.2.2", action="delayed", dsn_id="s2@x"),
    ])
    ingest(rt, path)
    before = state(rt)
    again = ingest(rt, path)
    assert (again.duplicates, again.soft) == (2, 0)
    assert state(rt) == before


def test_maildir_and_the_soft_limit_from_config(
    make_rt: Callable[..., Runtime], write_csv: Callable[..., Path], tmp_path: Path
) -> None:
    rt = make_rt(email={"soft_bounce_limit": 2})
    ids = sent(rt, write_csv)
    box = mailbox.Maildir(str(tmp_path / "Maildir"), create=True)
    box.add(postfix("person1@example.org", ids["person1@example.org"], status="4.2.2", action="delayed", dsn_id="a@x"))
    box.add(postfix("person1@example.org", ids["person1@example.org"], status="5.7.1", action="failed", dsn_id="b@x"))
    box.close()
    report = ingest(rt, tmp_path / "Maildir")
    assert (report.soft, report.hard, report.suppressed) == (2, 0, 1)
    rows, supp, _ = state(rt)
    assert rows[1] == "failed" and supp == {rt.key_for("person1@example.org"): "bounced"}


def test_a_path_that_is_neither_maildir_nor_mbox_is_a_clear_error(rt: Runtime, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="not an mbox file"):
        ingest(rt, tmp_path / "notes.txt")
    with pytest.raises(InputError, match="must be a maildir"):
        ingest(rt, tmp_path)
    with pytest.raises(InputError, match="no such file"):
        ingest(rt, tmp_path / "nope")


def test_cli_bounces_ingest(rt: Runtime, write_csv: Callable[..., Path], tmp_path: Path, database_url: str) -> None:
    import os
    import subprocess
    import sys

    ids = sent(rt, write_csv)
    path = write_mbox(tmp_path / "b.mbox", [postfix("person1@example.org", ids["person1@example.org"])])
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONSENT_")}
    env.update(RECONSENT_DATABASE__URL=database_url, RECONSENT_NOW="2026-11-25T10:00:00Z")
    proc = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "bounces", "ingest", str(path)], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "1 hard bounce(s)" in proc.stdout and "1 address(es) suppressed" in proc.stdout
    _, supp, _ = state(rt)
    assert supp == {rt.key_for("person1@example.org"): "bounced"}
    bad = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "bounces", "ingest", str(tmp_path / "nope")],
                         env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "no such file or folder" in bad.stderr
