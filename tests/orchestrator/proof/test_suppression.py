"""Suppression list: export/import round trip, hashed lists with channels, and key rotation."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from orchestrator.cli.main import main
from orchestrator.contacts.service import import_contacts
from orchestrator.delivery.worker import dispatch_once
from orchestrator.domain.suppression import suppression_key
from orchestrator.errors import ConfigError
from orchestrator.proof.rights import erase_person
from orchestrator.runtime import Runtime
from orchestrator.store.db import session_scope
from orchestrator.store.models import Contact, SuppressionEntry
from orchestrator.consent.suppression import check, check_detailed, export_list, import_list, rekey
from tests.support.factories import launch, person, run


def entries(rt: Runtime) -> set[tuple[str, str, str]]:
    with session_scope(rt.engine) as s:
        return {(e.key, e.channel, e.reason) for e in s.execute(select(SuppressionEntry)).scalars()}


def test_export_then_import_round_trips_keys_channels_and_reasons(rt: Runtime, tmp_path: Path) -> None:
    plain = tmp_path / "opposition.csv"
    plain.write_text("email\nAnne@Example.org\n06 12 34 56 78\nnot-an-address\n", encoding="utf-8")
    report = import_list(rt, plain)
    assert (report.added, report.rejected) == (2, [(4, "neither an email, a phone number nor a 64-hex-digit key")])
    erase_target = tmp_path / "c.csv"
    erase_target.write_text("external_id,kind,email\nX1,prospect,bob@example.org\n", encoding="utf-8")
    import_contacts(rt, erase_target)
    erase_person(rt, email="bob@example.org")
    before = entries(rt)
    assert (rt.key_for("anne@example.org"), "email", "imported") in before
    assert (rt.key_for("bob@example.org"), "email", "erased") in before

    out = io.StringIO()
    assert export_list(rt, out) == 3
    text = out.getvalue()
    assert text.splitlines()[0] == "key,channel,reason,source,created_at"
    assert "example.org" not in text.lower() and "+336" not in text and "0612" not in text  # hashes only
    with session_scope(rt.engine) as s:
        for e in s.execute(select(SuppressionEntry)).scalars():
            s.delete(e)
    exported = tmp_path / "export.csv"
    exported.write_text(text, encoding="utf-8")
    again = import_list(rt, exported)
    assert (again.added, again.rejected) == (3, [])
    assert entries(rt) == before  # same keys, same channel each (not both), same reasons


def test_hashed_list_without_channel_column_blocks_both_channels(rt: Runtime, tmp_path: Path) -> None:
    key = rt.key_for("carla@example.org")
    path = tmp_path / "hashed.txt"
    path.write_text(f"{key.upper()}\n", encoding="utf-8")
    assert import_list(rt, path).added == 2
    assert {e.channel for e in check(rt, "Carla@example.org ")} == {"email"}
    bad = tmp_path / "bad.csv"
    bad.write_text(f"key,channel,reason\n{key},fax,imported\n{key},email,gone\n", encoding="utf-8")
    assert import_list(rt, bad).rejected == [
        (2, "channel: expected email or sms, got 'fax'"),
        (3, "reason: expected one of bounced, complaint, erased, imported, no_response, not_granted, sms_stop, unsubscribed, got 'gone'"),
    ]


def test_suppression_export_command(rt: Runtime, tmp_path: Path, database_url: str) -> None:
    path = tmp_path / "l.txt"
    path.write_text("dora@example.org\n", encoding="utf-8")
    import_list(rt, path)
    env = {"RECONSENT_DATABASE__URL": database_url}
    result = CliRunner().invoke(main, ["suppression", "export"], env=env)
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0] == "key,channel,reason,source,created_at"
    assert lines[1] == f"{rt.key_for('dora@example.org')},email,imported,import:l.txt,2026-11-25T09:00:00Z"
    result = CliRunner().invoke(main, ["suppression", "export", "-o", str(tmp_path / "x.csv")], env=env)
    assert result.output.strip() == f"1 entries written to {tmp_path / 'x.csv'}"


def rotated(make_rt: Callable[..., Runtime], old: Runtime) -> Runtime:
    """The same database with a new suppression key; the old one listed as previous."""
    new = make_rt()
    new.config.security = replace(old.config.security, suppression_key="the-new-key",
                                  previous_suppression_keys=[old.config.security.suppression_key])
    return new


def test_key_rotation_rekeys_live_contacts_and_keeps_erased_entries_checkable(
        make_rt: Callable[..., Runtime], write_csv: Callable[..., Path], tmp_path: Path) -> None:
    old = make_rt()
    rows = [person(1), person(2), person(3)]
    launch(old, write_csv(rows))
    opposition = tmp_path / "opp.txt"
    opposition.write_text("person2@example.org\n", encoding="utf-8")  # a live contact's address
    import_list(old, opposition)
    erase_person(old, email="person3@example.org")  # plaintext gone after this
    erased_key_old = suppression_key(b"dev-only-suppression-key-change-me", "person3@example.org")
    assert (erased_key_old, "email", "erased") in entries(old)

    new = rotated(make_rt, old)
    report = rekey(new)
    assert report.contacts_rekeyed == 2  # persons 1 and 2 (person 3 is erased: no plaintext)
    assert report.entries_moved == 1  # person 2's email entry
    assert report.entries_untouched == 2  # person 3's email and sms entries stay under the old key
    with session_scope(new.engine) as s:
        c2 = s.execute(select(Contact).where(Contact.external_id == "C-2")).scalar_one()
    assert c2.email_key == new.key_for("person2@example.org") != old.key_for("person2@example.org")
    assert (new.key_for("person2@example.org"), "email", "imported") in entries(new)
    assert not any(k == old.key_for("person2@example.org") for k, _, _ in entries(new))

    # the erased person's entry is still found by address, through the previous key
    [found] = check_detailed(new, "person3@example.org")
    assert found.previous_key and found.entry.reason == "erased"
    # …and a re-import is refused, the entry being copied under the new key on sight
    again = import_contacts(new, write_csv([person(3)], name="again.csv"))
    assert again.created == 0 and "suppression list" in again.rejects[0].reason
    assert (new.key_for("person3@example.org"), "email", "erased") in entries(new)

    # dispatch still skips person 2 after the rotation (their entry moved with their key)
    report2 = run(dispatch_once(new))
    assert report2.sent == 1 and report2.skipped["suppressed"] == 1


def test_rekey_refuses_without_previous_keys(rt: Runtime) -> None:
    with pytest.raises(ConfigError, match="previous_suppression_keys is empty"):
        rekey(rt)
    rt.config.security = replace(rt.config.security, previous_suppression_keys=[rt.config.security.suppression_key])
    with pytest.raises(ConfigError, match="the current key must be the new one"):
        rekey(rt)
