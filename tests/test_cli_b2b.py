"""``[audience] b2b`` and ``b2b_regime`` through the real ``reconsent`` command (issue 18 §3):
create, preview (the notice and the counts), launch, status, sweep and results, on the test database
(SQLite, or PostgreSQL with RECONSENT_TEST_PG_URL)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.factories import person
from tests.test_cli import write_contacts

CAMPAIGN = """name = "Pros {mode}"
deadline_days = 30
[audience]
b2b = "{mode}"
b2b_regime = "{regime}"
[[steps]]
day = 0
channel = "email"
template = "reconsent"
[[steps]]
day = 10
channel = "sms"
template = "reconsent"
"""


def _cli(tmp_path: Path, database_url: str):  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONSENT_")}
    env.update({"RECONSENT_DATABASE__URL": database_url, "RECONSENT_EMAIL__OUTBOX_DIR": str(tmp_path / "outbox"),
                "RECONSENT_SMS__OUTBOX_FILE": str(tmp_path / "sms.jsonl"), "RECONSENT_NOW": "2026-11-25T09:00:00Z"})

    def call(*args: str, now: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", *args],
                              env=dict(env, RECONSENT_NOW=now or env["RECONSENT_NOW"]), cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)
        if check and proc.returncode != 0:
            raise AssertionError(f"{args} → {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        return proc

    return call


def test_b2b_audience_and_notice_through_the_cli(tmp_path: Path, database_url: str) -> None:
    cli = _cli(tmp_path, database_url)
    cli("init")
    cli("contacts", "import", str(write_contacts(tmp_path / "c.csv", [
        person(1), person(2), person(3, b2b="true"), person(4, b2b="oui")])))

    bad = tmp_path / "bad.toml"
    bad.write_text(CAMPAIGN.format(mode="some", regime="consent"), encoding="utf-8")
    proc = cli("campaign", "create", str(bad), check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (f"Error: {bad}: [audience] b2b: unknown value 'some' "
                                   "(expected 'include', 'exclude' or 'only')")

    ids = {}
    for mode in ("exclude", "only"):
        path = tmp_path / f"{mode}.toml"
        path.write_text(CAMPAIGN.format(mode=mode, regime="consent"), encoding="utf-8")
        ids[mode] = cli("campaign", "create", str(path)).stdout.strip()
    assert "b2b = exclude: 0 professional(s), 2 consumer(s) if launched now" in cli("campaign", "preview", ids["exclude"]).stdout
    assert "b2b = only: 2 professional(s), 0 consumer(s) if launched now" in cli("campaign", "preview", ids["only"]).stdout

    path = tmp_path / "notice.toml"
    path.write_text(CAMPAIGN.format(mode="include", regime="notice"), encoding="utf-8")
    campaign_id = cli("campaign", "create", str(path)).stdout.strip()
    preview = cli("campaign", "preview", campaign_id).stdout
    assert "── step 0 · day 0 · email · notice · fr" in preview
    assert "Subject: Boutique Lumière\u00a0: nous continuerons de vous écrire à votre adresse professionnelle" in preview
    assert "audience if launched now: 4 contact(s)" in preview
    assert "b2b = include: 2 professional(s), 2 consumer(s) if launched now; b2b_regime = notice: 2 get the notice" in preview
    assert "4 contact(s) enrolled" in cli("campaign", "launch", campaign_id).stdout
    assert "sent 4" in cli("dispatch", "--once").stdout
    status = json.loads(cli("campaign", "status", campaign_id, "--json").stdout)
    assert status["audience"] == {"b2b": "include", "b2b_regime": "notice", "professional": 2, "consumer": 2,
                                  "notice": 2}

    assert "2 kept (B2B notice, no objection)" in cli("sweep", now="2026-12-27T09:00:00Z").stdout
    status = json.loads(cli("campaign", "status", campaign_id, "--json").stdout)
    assert (status["kept"], status["expired"]) == (2, 2)
    table = cli("campaign", "status", campaign_id).stdout
    assert "expired→suppressed 2 · kept (B2B notice, no objection) 2" in table
    rows = {r["external_id"]: r for r in csv.DictReader(io.StringIO(cli("campaign", "results", campaign_id).stdout))}
    assert list(rows["C-3"])[:10] == ["external_id", "kind", "state", "email_consent", "sms_consent",
                                      "partners_consent", "answered_at", "source", "wording_version", "event_hash"]
    assert (rows["C-3"]["state"], rows["C-3"]["email_consent"], rows["C-3"]["sms_consent"]) == ("kept", "opt_out", "expired")
    assert (rows["C-1"]["state"], rows["C-1"]["email_consent"]) == ("expired", "expired")
    assert cli("suppression", "check", "person3@example.org", check=False).returncode == 1  # not suppressed
    assert "no_response" in cli("suppression", "check", "person1@example.org").stdout
    assert "ledger intact" in cli("audit", "verify").stdout
