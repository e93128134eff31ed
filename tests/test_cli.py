"""The SPEC §10 contract, through the real `reconsent` command in subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.factories import person

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def cli(tmp_path: Path):  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONSENT_")}
    env.update({
        "RECONSENT_DATABASE__URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "RECONSENT_EMAIL__OUTBOX_DIR": str(tmp_path / "outbox"),
        "RECONSENT_SMS__OUTBOX_FILE": str(tmp_path / "sms.jsonl"),
        "RECONSENT_NOW": "2026-11-25T09:00:00Z",
    })

    def call(*args: str, now: str | None = None, check: bool = True,
             database_url: str | None = None) -> subprocess.CompletedProcess[str]:
        e = dict(env, RECONSENT_NOW=now or env["RECONSENT_NOW"])
        if database_url is not None:
            e["RECONSENT_DATABASE__URL"] = database_url
        proc = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", *args], env=e, cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)
        if check and proc.returncode != 0:
            raise AssertionError(f"{args} → {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        return proc

    return call


def write_contacts(path: Path, rows: list[dict[str, str]]) -> Path:
    import csv

    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_full_cli_story_with_exit_codes(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert "not initialised" in cli("campaign", "status", "1", check=False).stderr
    cli("init")
    contacts = write_contacts(tmp_path / "c.csv", [person(1), person(2), person(3, email="bad")])
    out = cli("contacts", "import", str(contacts), "--rejects", str(tmp_path / "rej.csv"))
    # person 3's bad email is dropped, the row kept on its valid phone (issue 16)
    assert "3 created" in out.stdout and "0 rejected, 1 imported with a warning" in out.stdout
    assert "line 4: email" in out.stderr and "imported without it" in out.stderr
    assert (tmp_path / "rej.csv").read_text().count("\n") == 2

    campaign_file = ROOT / "orchestrator" / "ops" / "demo" / "campaign.toml"
    campaign_id = cli("campaign", "create", str(campaign_file)).stdout.strip()
    assert campaign_id == "1"
    preview = cli("campaign", "preview", campaign_id).stdout
    assert "GSM-7, 1 segment(s)" in preview and "audience if launched now: 2" in preview
    assert "2 contact(s) enrolled" in cli("campaign", "launch", campaign_id).stdout
    assert "sent 2" in cli("dispatch", "--once").stdout
    status = json.loads(cli("campaign", "status", campaign_id, "--json").stdout)
    for key in ("id", "name", "state", "enrolled", "pending", "confirmed", "declined", "expired"):
        assert key in status
    for channel in ("email", "sms"):
        for key in ("sent", "delivered", "failed", "bounced", "unsubscribed"):
            assert key in status[channel] and key in status["channels"][channel]
    assert (status["enrolled"], status["email"]["sent"]) == (2, 2)
    assert status["launched_at"] == "2026-11-25T09:00:00Z" and status["deadline_at"] == "2026-12-25T09:00:00Z"
    assert cli("campaign", "pause", campaign_id).stdout.strip() == "campaign 1 paused"
    assert cli("campaign", "resume", campaign_id).stdout.strip() == "campaign 1 running"

    assert "2 expired" in cli("sweep", now="2026-12-27T09:00:00Z").stdout
    check = cli("suppression", "check", "person1@example.org")
    assert "no_response" in check.stdout
    assert cli("suppression", "check", "someone@example.org", check=False).returncode == 1
    assert "ledger intact: 4 events" in cli("audit", "verify").stdout


def test_errors_are_one_line_with_exit_1_and_usage_is_2(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cli("init")
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\ndeadline_days = 10\n[[steps]]\nday = 0\nchannel = "fax"\ntemplate = "reconsent"\n')
    proc = cli("campaign", "create", str(bad), check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "steps[0]: 'channel' must be 'email' or 'sms'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert cli("campaign", "launch", "99", check=False).returncode == 1
    assert cli("campaign", "launch", check=False).returncode == 2
    assert cli("dsr", "export", check=False).returncode == 2
    proc = cli("campaign", "status", "1", check=False)
    assert proc.returncode == 1 and "campaign 1 does not exist" in proc.stderr
    env_bad = cli("init", now="yesterday", check=False)
    assert env_bad.returncode == 1 and "RECONSENT_NOW" in env_bad.stderr


def test_templates_import_list_and_a_campaign_that_sends_them(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cli("init")
    mine = tmp_path / "mine" / "promo" / "fr"
    mine.mkdir(parents=True)
    (mine / "sms.txt").write_text("{{ sender.name }} : on reste en contact ? {{ short_url }} STOP\n")
    imported = cli("templates", "import", str(tmp_path / "mine")).stdout.splitlines()
    version = imported[0].split("\t")[3]
    assert imported[0] == f"promo\tfr\tsms\t{version}\tnew"
    listed = cli("templates", "list").stdout.splitlines()
    assert listed[0] == "name\tlocale\tchannel\tversion\tsource\tstate\timported_at"
    assert f"promo\tfr\tsms\t{version}\timported\tcurrent\t2026-11-25T09:00:00Z" in listed
    assert any(line.startswith("reconsent\tfr\tsms\t") and "\tshipped\tcurrent" in line for line in listed)

    broken = tmp_path / "broken"
    (broken / "promo" / "fr").mkdir(parents=True)
    (broken / "promo" / "fr" / "sms.txt").write_text("changed {{ short_url }")
    (broken / "promo" / "fr" / "body.txt").write_text("half an email")
    proc = cli("templates", "import", str(broken), check=False)
    assert proc.returncode == 1 and proc.stdout == "" and "Traceback" not in proc.stderr
    assert proc.stderr.splitlines() == [
        f"{broken}/promo/fr/sms.txt: line 1: unexpected '}}'",
        f"{broken}/promo/fr: an email template needs subject.txt, body.txt, body.html; missing subject.txt, body.html",
    ]
    assert cli("templates", "list").stdout.splitlines() == listed  # nothing stored
    assert cli("templates", "import", str(tmp_path / "nowhere"), check=False).returncode == 2

    write_contacts(tmp_path / "c.csv", [person(1)])
    cli("contacts", "import", str(tmp_path / "c.csv"))
    (tmp_path / "promo.toml").write_text('name = "Promo"\ndeadline_days = 30\nlocales = ["fr"]\n'
                                         '[[steps]]\nday = 0\nchannel = "sms"\ntemplate = "promo"\n')
    campaign_id = cli("campaign", "create", str(tmp_path / "promo.toml")).stdout.strip()
    cli("campaign", "launch", campaign_id)
    assert "sent 1" in cli("dispatch", "--once").stdout
    sms = json.loads((tmp_path / "sms.jsonl").read_text().splitlines()[0])
    assert sms["body"].startswith("Boutique Lumière : on reste en contact ? http://127.0.0.1:8000/s/")
    evidence = json.loads(cli("evidence", "campaign", campaign_id).stdout)
    assert evidence["contacts"][0]["messages"][0]["template_version"] == version


def test_dsr_export_and_erase_keep_suppression(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cli("init")
    cli("contacts", "import", str(write_contacts(tmp_path / "c.csv", [person(1)])))
    data = json.loads(cli("dsr", "export", "--email", "person1@example.org").stdout)
    assert data["people"][0]["profile"]["email"] == "person1@example.org"
    assert "1 contact(s) erased" in cli("dsr", "erase", "--phone", "06 12 34 00 01").stdout
    assert cli("dsr", "export", "--email", "person1@example.org", check=False).returncode == 1
    reimport = cli("contacts", "import", str(tmp_path / "c.csv"))
    assert "0 created" in reimport.stdout and "suppression list" in reimport.stderr


def test_demo_no_serve_runs_the_whole_story(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONSENT_")}
    env["RECONSENT_NOW"] = "2026-11-25T09:00:00Z"
    proc = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "demo", "--no-serve"], env=env,
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "POST confirm → 200: recorded" in out
    assert "POST one-click → 200" in out
    assert "confirmed 1" in out and "declined 1" in out and "expired→suppressed 7" in out


def test_init_makes_an_instance_folder_and_never_overwrites(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from orchestrator.cli.main import main

    folder = tmp_path / "shop"
    first = CliRunner().invoke(main, ["init", str(folder)], env={"RECONSENT_CONFIG": None})
    assert first.exit_code == 0, first.output
    config = (folder / "reconsent.toml").read_text()
    assert "dev-only" not in config and "@SIGNING_KEY@" not in config
    assert (folder / "var" / "reconsent.db").is_file()
    (folder / "reconsent.toml").write_text(config + "\n# my edit\n")
    again = CliRunner().invoke(main, ["init", str(folder)], env={"RECONSENT_CONFIG": None})
    assert again.exit_code == 0 and "kept" in again.output
    assert (folder / "reconsent.toml").read_text().endswith("# my edit\n")
    production = CliRunner().invoke(main, ["init", "--production", str(tmp_path / "prod")], env={"RECONSENT_CONFIG": None})
    assert production.exit_code == 0, production.output
    assert "postgresql" in (tmp_path / "prod" / "reconsent.toml").read_text()
    assert not (tmp_path / "prod" / "var" / "reconsent.db").exists()  # the schema waits for the real URL


def test_a_database_left_at_an_older_schema_is_refused_with_what_to_do(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from orchestrator.cli.main import main
    from orchestrator.store.db import downgrade, make_engine

    env = {"RECONSENT_CONFIG": None, "RECONSENT_DATABASE__URL": f"sqlite:///{tmp_path / 'old.db'}"}
    assert CliRunner().invoke(main, ["--config", str(tmp_path / "none.toml"), "init"], env=env).exit_code == 1
    (tmp_path / "site.toml").write_text("")
    assert CliRunner().invoke(main, ["--config", str(tmp_path / "site.toml"), "init"], env=env).exit_code == 0
    downgrade(make_engine(env["RECONSENT_DATABASE__URL"]), "0008_claim_index")
    old = CliRunner().invoke(main, ["--config", str(tmp_path / "site.toml"), "campaign", "list"], env=env)
    assert old.exit_code == 1
    assert "has schema revision 0008_claim_index" in old.output and "run `reconsent init` to upgrade it" in old.output
    assert CliRunner().invoke(main, ["--config", str(tmp_path / "site.toml"), "init"], env=env).exit_code == 0
    assert CliRunner().invoke(main, ["--config", str(tmp_path / "site.toml"), "campaign", "list"], env=env).exit_code == 0
def test_broken_templates_through_the_cli(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Issue 12: create refuses a broken template in one line; preview of a campaign whose template
    broke since prints one line per step, no traceback; `dispatch --once` with messages that cannot be
    built (planted through the store) marks them failed and exits within seconds."""
    import time

    from sqlalchemy import create_engine, text

    cli("init")
    write_contacts(tmp_path / "c.csv", [person(1), person(2), person(3)])
    cli("contacts", "import", str(tmp_path / "c.csv"))
    spec = (ROOT / "orchestrator" / "ops" / "demo" / "campaign.toml").read_text(encoding="utf-8")
    (tmp_path / "bad.toml").write_text(spec.replace('template = "reminder"', 'template = "nosuch"'), encoding="utf-8")
    proc = cli("campaign", "create", str(tmp_path / "bad.toml"), check=False)
    assert proc.returncode == 1 and proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    assert "steps[1] (email): template 'nosuch': missing fr/subject.txt, fr/body.txt, fr/body.html" in proc.stderr

    campaign_id = cli("campaign", "create", str(ROOT / "orchestrator" / "ops" / "demo" / "campaign.toml")).stdout.strip()
    assert "3 contact(s) enrolled" in cli("campaign", "launch", campaign_id).stdout
    engine = create_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    with engine.begin() as conn:  # bypassing the checks: the store says "nosuch"
        conn.execute(text("UPDATE campaign SET plan = replace(plan, '\"reconsent\"', '\"nosuch\"')"))
        conn.execute(text("UPDATE outbox SET template = 'nosuch' WHERE step = 0"))
    engine.dispose()

    proc = cli("campaign", "preview", campaign_id, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stdout + proc.stderr
    assert "cannot be rendered: template 'nosuch': missing fr/subject.txt, fr/body.txt, fr/body.html" in proc.stdout
    assert "GSM-7" not in proc.stdout and "reminder" in proc.stdout  # step 1 still previewed

    started = time.monotonic()
    proc = cli("dispatch", "--once", check=False)
    assert proc.returncode == 0 and time.monotonic() - started < 30
    assert "sent 0, failed 3" in proc.stdout and "Traceback" not in proc.stderr
    assert len(proc.stderr.splitlines()) < 10, proc.stderr
    status = json.loads(cli("campaign", "status", campaign_id, "--json").stdout)
    assert (status["email"]["failed"], status["email"]["queued"], status["email"]["sent"]) == (3, 3, 0)
    assert status["failure_reasons"] == [{"step": 0, "channel": "email", "count": 3,
                                          "reason": "cannot build message: template 'nosuch': missing fr/subject.txt"}]
    assert "failed 3 · step 0 email · cannot build message" in cli("campaign", "status", campaign_id).stdout
    assert "sent 0, failed 0" in cli("dispatch", "--once").stdout  # nothing retried


def test_contacts_export_reimports_as_is_and_campaign_list(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Both read through services (issue 13): the export is the import format, erased people left out."""
    cli("init")
    cli("contacts", "import", str(write_contacts(tmp_path / "c.csv", [person(1), person(2, email=""), person(3)])))
    cli("dsr", "erase", "--email", "person3@example.org")
    lines = cli("contacts", "export").stdout.splitlines()
    # SPEC §10 columns first and unchanged; where the person stands appended (issue 17)
    assert lines == ["external_id,kind,email,phone,first_name,locale,timezone,last_activity_at,b2b,"
                     "email_consent,sms_consent,email_partners_consent,sms_partners_consent,"
                     "email_suppression,sms_suppression,topics,partners,frequency,paused_until",
                     "C-1,customer,person1@example.org,+33612340001,Prénom1,fr,Europe/Paris,2024-01-15,false,"
                     "none,none,none,none,,,,,,",
                     "C-2,customer,,+33612340002,Prénom2,fr,Europe/Paris,2024-01-15,false,none,none,none,none,,,,,,"]
    assert "written" not in cli("contacts", "export", "-o", str(tmp_path / "out.csv")).stdout
    assert (tmp_path / "out.csv").read_text(encoding="utf-8").splitlines() == lines
    assert "0 created" in cli("contacts", "import", str(tmp_path / "out.csv")).stdout
    assert cli("campaign", "list").stdout == ""
    cli("campaign", "create", str(ROOT / "orchestrator" / "ops" / "demo" / "campaign.toml"))
    assert cli("campaign", "list").stdout == "1\tdraft\tRe-consent winter 2026\n"


def test_exports_neutralise_formulas_and_still_reimport_as_they_were(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Issue 15: `contacts export` and the rejects file wrote `=…`, `@…`, `-…` raw; a spreadsheet ran them.
    Neutralised cells (a leading apostrophe) read back as they were; E.164 numbers and numbers stay."""
    import csv

    cli("init")
    rows = [person(1, first_name='=HYPERLINK("http://evil.example","x")'),
            person(2, external_id="-7", first_name="@SUM(A1)"),
            person(3, external_id="+C3", email="+tag@example.org", phone="+33612340003", first_name="-Anne")]
    cli("contacts", "import", str(write_contacts(tmp_path / "c.csv", rows)))
    out = tmp_path / "out.csv"
    cli("contacts", "export", "-o", str(out))
    cells = [row for row in csv.reader(out.open(newline="", encoding="utf-8"))]
    assert cells[1][4] == "'=HYPERLINK(\"http://evil.example\",\"x\")" and cells[2][:1] == ["-7"]
    assert cells[3][:5] == ["'+C3", "customer", "'+tag@example.org", "+33612340003", "'-Anne"]
    assert all(not c.startswith(("=", "@", "\t", "\r")) and (not c.startswith(("+", "-")) or c[1:].isdigit())
               for row in cells for c in row)
    assert "0 created" in cli("contacts", "import", str(out)).stdout
    again = tmp_path / "again.csv"
    cli("contacts", "export", "-o", str(again))
    assert again.read_text(encoding="utf-8") == out.read_text(encoding="utf-8")
    record = cli("dsr", "export", "--email", "person1@example.org").stdout
    def strings(value: object) -> list[object]:
        if isinstance(value, dict):
            return [s for v in value.values() for s in strings(v)]
        return [s for v in value for s in strings(v)] if isinstance(value, list) else [value]
    assert '=HYPERLINK("http://evil.example","x")' in strings(json.loads(record))

    bad = write_contacts(tmp_path / "bad.csv", [person(4, kind="=1+1", first_name="-x")])
    cli("contacts", "import", str(bad), "--rejects", str(tmp_path / "rejects.csv"))
    [_, reject] = list(csv.reader((tmp_path / "rejects.csv").open(newline="", encoding="utf-8")))
    assert reject[3:8] == ["C-4", "'=1+1", "person4@example.org", "+33612340004", "'-x"]


def test_campaign_results_after_the_sweep_and_prior_consent_in_the_preview(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Issue 17: `campaign results` by the CRM's id, still complete after the sweep anonymised everyone;
    the preview counts the channels skipped for a recent prior consent."""
    cli("init")
    rows = [person(1, email_consent_at="", consent_source=""), person(2, email_consent_at="", consent_source=""),
            person(3, email_consent_at="2026-01-15", consent_source="webform")]
    out = cli("contacts", "import", str(write_contacts(tmp_path / "c.csv", rows))).stdout
    assert "3 created" in out and "prior consent: 1 recorded" in out
    campaign_file = ROOT / "orchestrator" / "ops" / "demo" / "campaign.toml"
    campaign_id = cli("campaign", "create", str(campaign_file)).stdout.strip()
    preview = cli("campaign", "preview", campaign_id).stdout
    assert "skipped on email: 1 contact(s) whose consent there is less than 24 months old" in preview
    cli("campaign", "launch", campaign_id)
    cli("sweep", now="2027-02-01T09:00:00Z")
    cli("campaign", "results", campaign_id, "-o", str(tmp_path / "results.csv"))
    lines = (tmp_path / "results.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == ("external_id,kind,state,email_consent,sms_consent,partners_consent,answered_at,source,"
                        "wording_version,event_hash,topics,partners,frequency,paused_until")
    assert [line.split(",")[:6] for line in lines[1:]] == [
        ["C-1", "customer", "expired", "expired", "expired", "none"],
        ["C-2", "customer", "expired", "expired", "expired", "none"],
        ["C-3", "customer", "expired", "granted", "expired", "none"]]
    as_json = json.loads(cli("campaign", "results", campaign_id, "--format", "json").stdout)
    assert [r["external_id"] for r in as_json] == ["C-1", "C-2", "C-3"]
    assert as_json[0]["answered_at"] == "2027-02-01T09:00:00Z" and as_json[0]["source"] == "sweep"
    missing = cli("campaign", "results", "99", check=False)
    assert missing.returncode == 1 and missing.stderr.strip() == (
        "Error: campaign 99: no such campaign (see `reconsent campaign list`)")


def test_cli_excel_import_map_test_send_and_planned_launch(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Issue 16: a semicolon/Windows-1252/French-header/JJ-MM-AAAA file, --map, test-send, launch --at."""
    cli("init")
    excel = tmp_path / "export.csv"
    excel.write_bytes(("N° adhérent;Type;Courriel;Portable;Prénom;Dernière activité\r\n"
                       "A-1;Client;zoe@exemple.fr;06 12 34 56 78;Zoé;31/03/2024\r\n"
                       "A-2;prospect;pas-une-adresse;07 98 76 54 32;René;05/01/2019\r\n").encode("cp1252"))
    refused = cli("contacts", "import", str(excel), check=False)
    assert refused.returncode == 1 and "line 1: header must name the columns" in refused.stderr
    out = cli("contacts", "import", str(excel), "--map", "external_id=N° adhérent", "--rejects", str(tmp_path / "r.csv"))
    assert "2 created" in out.stdout and "1 imported with a warning" in out.stdout
    assert "file read as Windows-1252, ';'-separated" in out.stdout
    assert "line 3: email: not a valid email address" in out.stderr
    assert cli("contacts", "import", str(excel), "--map", "nope=x", check=False).returncode == 1

    campaign_file = ROOT / "orchestrator" / "ops" / "demo" / "campaign.toml"
    campaign_id = cli("campaign", "create", str(campaign_file)).stdout.strip()
    sent = cli("campaign", "test-send", campaign_id, "--to", "moi@exemple.fr")
    assert "step 0 · email" in sent.stdout and ": sent · [TEST] " in sent.stdout
    assert "skipped" in sent.stdout
    assert cli("campaign", "test-send", campaign_id, "--to", "pas-une-adresse", check=False).returncode == 1
    status = json.loads(cli("campaign", "status", campaign_id, "--json").stdout)
    assert (status["enrolled"], status["email"]["sent"]) == (0, 0)  # a test send counts nothing

    assert cli("campaign", "launch", campaign_id, "--at", "2026-11-25T08:00:00Z", check=False).returncode == 1
    planned = cli("campaign", "launch", campaign_id, "--at", "2026-11-26T09:00")  # Paris time
    assert "scheduled: launch at 2026-11-26T08:00:00Z" in planned.stdout
    status = json.loads(cli("campaign", "status", campaign_id, "--json").stdout)
    assert (status["state"], status["launch_at"]) == ("scheduled", "2026-11-26T08:00:00Z")
    assert "launch planned at 2026-11-26T08:00:00Z" in cli("campaign", "status", campaign_id).stdout
    assert "unscheduled" in cli("campaign", "unschedule", campaign_id).stdout
    cli("campaign", "launch", campaign_id, "--at", "2026-11-26T09:00")
    edit = cli("campaign", "edit", campaign_id, str(campaign_file))
    assert "updated" in edit.stdout
    assert "deleted" in cli("campaign", "delete", campaign_id).stdout
    assert cli("campaign", "status", campaign_id, check=False).returncode == 1


def test_absurd_campaign_values_are_one_line_never_a_traceback(cli, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 15: `deadline_days = 99999999999` was accepted, then `campaign launch` printed a 35-line traceback."""
    import dataclasses

    from orchestrator.campaigns.service import create_campaign
    from orchestrator.runtime import runtime_from_env
    from tests.support.factories import plan

    cli("init")
    absurd = tmp_path / "absurd.toml"
    absurd.write_text('name = "x"\ndeadline_days = 99999999999\n[[steps]]\nday = 0\nchannel = "email"\n'
                      'template = "reconsent"\n')
    created = cli("campaign", "create", str(absurd), check=False)
    assert created.returncode == 1
    assert created.stderr == (f"Error: {absurd}: 'deadline_days' must be a whole number > 0 and ≤ 730, "
                              "got 99999999999\n")
    # a plan stored before these checks existed (the dataclass itself does not check)
    monkeypatch.setenv("RECONSENT_DATABASE__URL", f"sqlite:///{tmp_path / 'cli.db'}")
    campaign_id = create_campaign(runtime_from_env(None), dataclasses.replace(plan(), deadline_days=99999999999))
    for args in (("campaign", "launch", str(campaign_id)), ("campaign", "status", str(campaign_id))):
        launched = cli(*args, check=False)
        assert launched.returncode == 1 and "Traceback" not in launched.stderr
        assert launched.stderr == (f"Error: campaign {campaign_id}: 'deadline_days' must be a whole number > 0 and ≤ 730, "
                                   "got 99999999999\n")
    huge = cli("campaign", "launch", "99999999999999999999", check=False)
    assert huge.returncode == 2 and "Traceback" not in huge.stderr
    assert "99999999999999999999 is not in the range 1<=x<=2147483647" in huge.stderr


@pytest.mark.parametrize("case", ["closed port", "wrong password"])
def test_a_database_that_cannot_be_used_is_one_line_naming_the_host_never_the_password(
        cli, tmp_path: Path, case: str) -> None:  # type: ignore[no-untyped-def]
    """Issue 15: an unreachable database printed a 146-line traceback, and `init` showed the password."""
    from tests.support.smtp import free_port

    pg = os.environ.get("RECONSENT_TEST_PG_URL", "postgresql+psycopg://reconsent:reconsent@127.0.0.1:5432/x")
    host_port = pg.split("@", 1)[1].split("/", 1)[0]
    if case == "closed port":
        host_port = f"127.0.0.1:{free_port()}"
    url = f"postgresql+psycopg://reconsent:Secr3t-pw@{host_port}/reconsent_test"
    for args in (["init"], ["campaign", "status", "1"], ["serve", "--port", str(free_port())], ["dispatch", "--once"]):
        proc = cli(*args, check=False, database_url=url)
        assert proc.returncode == 1, (args, proc.stdout, proc.stderr)
        assert "Secr3t" not in proc.stdout + proc.stderr and "Traceback" not in proc.stderr
        [line] = proc.stderr.splitlines()
        assert line.startswith(f"Error: database {host_port} (postgresql+psycopg://reconsent:***@{host_port}/"), line
        if case == "closed port":
            assert "Connection refused" in line
        elif os.environ.get("RECONSENT_TEST_PG_URL"):
            assert 'password authentication failed for user "reconsent"' in line
    doctor = cli("doctor", check=False, database_url=url)
    assert doctor.returncode == 1 and "Secr3t" not in doctor.stdout + doctor.stderr
    assert f"FIX   database.url: database {host_port} (postgresql+psycopg://reconsent:***@" in doctor.stdout


def test_no_command_shows_a_database_password(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`init` printed the database URL with its password (given as a query parameter it was not masked),
    and a URL of an unsupported database came back whole in the error."""
    for args in (["init"], ["campaign", "list"]):
        proc = cli(*args, check=False, database_url="mysql://app:Secr3t-pw@db/x")
        assert proc.returncode == 1 and "Secr3t" not in proc.stdout + proc.stderr, proc.stderr
        assert proc.stderr == "Error: database.url: expected sqlite:///… or postgresql+psycopg://…, got 'mysql://app:***@db/x'\n"
    pg = os.environ.get("RECONSENT_TEST_PG_URL")
    if pg:  # the real server, the password as a query parameter: init creates the schema and says where
        from tests.conftest import _database_url

        gen = _database_url(tmp_path)
        url = next(gen)
        user, password = url.split("://", 1)[1].split("@", 1)[0].split(":", 1)
        url = url.replace(f":{password}@", "@") + f"?password={password}"
        out = cli("init", database_url=url).stdout
        assert f"database ready: postgresql+psycopg://{user}@" in out and "?password=***" in out, out
        assert f"password={password}" not in out
        for _ in gen:
            pass
