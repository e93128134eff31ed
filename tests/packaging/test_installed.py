"""Reconsent installed from its wheel into a fresh virtualenv outside the checkout, run from empty
temporary folders (issue 12): the shipped templates, static files, catalogs, default config,
migrations and demo data are all found through the installed package, and an instance's files go
to its own folder and nowhere else."""

from __future__ import annotations

import email
import json
import re
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import pytest

from tests.packaging.conftest import ROOT, Installed

pytestmark = [pytest.mark.slow, pytest.mark.wheel]

NOW = "2026-11-25T09:00:00Z"


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def test_the_installed_code_is_not_the_checkout(installed: Installed, tmp_path: Path) -> None:
    out = subprocess.run([installed.python, "-c",
                          "import orchestrator, preference_centre.public.pages as p, orchestrator.resources as r;"
                          "print(orchestrator.__file__); print(r.DEFAULT_CONFIG); print(p.STATIC_DIR)"],
                         cwd=tmp_path, env=installed.env(), capture_output=True, text=True, check=True).stdout.split()
    for path in map(Path, out):
        assert path.exists(), path
        assert path.is_relative_to(installed.site_packages), path
        assert not path.resolve().is_relative_to(ROOT), path


def test_init_and_demo_write_only_in_the_empty_folder(installed: Installed, tmp_path: Path) -> None:
    before = files_under(installed.site_packages)
    folder = tmp_path / "instance"
    folder.mkdir()
    first = installed.run("init", cwd=folder)
    assert f"created {folder / 'reconsent.toml'}" in first.stdout
    config = (folder / "reconsent.toml").read_text()
    assert "dev-only" not in config and "@SIGNING_KEY@" not in config  # fresh secrets per instance
    assert (folder / "reconsent.toml").stat().st_mode & 0o077 == 0
    assert (folder / "var" / "reconsent.db").is_file()
    again = installed.run("init", cwd=folder)
    assert "kept" in again.stdout and (folder / "reconsent.toml").read_text() == config  # never overwrites

    demo = installed.run("demo", "--no-serve", cwd=folder, timeout=300, RECONSENT_NOW=NOW)
    assert "expired→suppressed 7" in demo.stdout, demo.stdout
    written = files_under(folder)
    assert len(list((folder / "var" / "demo" / "outbox").glob("*.eml"))) == 16
    assert (folder / "var" / "demo" / "sms.jsonl").is_file()
    assert all(p.is_relative_to(folder) for p in written)
    assert files_under(installed.site_packages) == before  # nothing written next to the installed code

    status = installed.run("--config", str(folder / "var" / "demo" / "demo.toml"), "campaign", "status", "1",
                           "--json", cwd=tmp_path)
    assert json.loads(status.stdout)["confirmed"] == 1


CAMPAIGN = """\
name = "Winter"
deadline_days = 30
[audience]
kinds = ["customer", "prospect"]
[[steps]]
day = 0
channel = "email"
template = "reconsent"
"""

CONTACTS = """\
external_id,kind,email,phone,first_name,locale,timezone,last_activity_at,b2b
A-1,customer,ana@example.org,,Ana,fr,Europe/Paris,2023-01-10,false
A-2,prospect,ben@example.com,,Ben,en,Europe/London,2021-05-02,false
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str, data: dict[str, str] | None = None) -> tuple[int, str]:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=10) as resp:  # noqa: S310 - loopback
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def wait_until_healthy(process: subprocess.Popen[str], port: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if get(f"http://127.0.0.1:{port}/healthz")[0] == 200:
                return
        except OSError:
            pass
        assert process.poll() is None, f"exited {process.returncode} before answering"
        assert time.monotonic() < deadline, "did not answer /healthz in time"
        time.sleep(0.2)


def test_a_campaign_end_to_end_from_an_empty_folder(installed: Installed, tmp_path: Path) -> None:
    port = free_port()
    env = {"RECONSENT_NOW": NOW, "RECONSENT_PUBLIC__BASE_URL": f"http://127.0.0.1:{port}"}
    installed.run("init", cwd=tmp_path)
    (tmp_path / "contacts.csv").write_text(CONTACTS, encoding="utf-8")
    (tmp_path / "winter.toml").write_text(CAMPAIGN, encoding="utf-8")
    assert "2 created" in installed.run("contacts", "import", "contacts.csv", cwd=tmp_path, **env).stdout
    campaign_id = installed.run("campaign", "create", "winter.toml", cwd=tmp_path, **env).stdout.strip()
    preview = installed.run("campaign", "preview", campaign_id, cwd=tmp_path, **env).stdout
    assert "Boutique Lumière" in preview
    installed.run("campaign", "launch", campaign_id, cwd=tmp_path, **env)
    installed.run("dispatch", "--once", cwd=tmp_path, **env)
    emails = sorted((tmp_path / "var" / "outbox").glob("*.eml"))
    assert len(emails) == 2
    message = email.message_from_bytes(emails[0].read_bytes(), policy=default_policy)
    assert isinstance(message, EmailMessage)
    text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    found = re.search(rf"http://127\.0\.0\.1:{port}/p/\S+", text)
    assert found, text
    link = found.group(0)

    done = subprocess.run([installed.reconsent, "users", "add", "dpo@example.org", "--role", "admin"], cwd=tmp_path,
                          env=installed.env(**env), input="correct horse battery staple\n", text=True,
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    server = subprocess.Popen([installed.reconsent, "serve", "--port", str(port)], cwd=tmp_path,
                              env=installed.env(**env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until_healthy(server, port)
        status, page = get(link)
        assert status == 200 and "Boutique Lumière" in page
        assert get(f"http://127.0.0.1:{port}/static/style.css")[0] == 200
        assert get(f"http://127.0.0.1:{port}/admin/login")[0] == 200
        assert get(f"http://127.0.0.1:{port}/admin/static/admin.css")[0] == 200
        status, page = get(link, {"email": "yes", "action": "confirm"})
        assert status == 200
    finally:
        server.send_signal(signal.SIGTERM)
        output = server.communicate(timeout=30)[0]
    # uvicorn shuts down gracefully, then re-raises SIGTERM (systemd counts that as a clean stop)
    assert server.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output
    assert "Traceback" not in output
    status_json = json.loads(installed.run("campaign", "status", campaign_id, "--json", cwd=tmp_path, **env).stdout)
    assert status_json["enrolled"] == 2 and status_json["confirmed"] == 1


def test_run_serves_and_stops_cleanly_from_an_empty_folder(installed: Installed, tmp_path: Path) -> None:
    port = free_port()
    installed.run("init", cwd=tmp_path)
    service = subprocess.Popen([installed.reconsent, "run", "--port", str(port)], cwd=tmp_path, env=installed.env(),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until_healthy(service, port)
        assert get(f"http://127.0.0.1:{port}/static/style.css")[0] == 200
    finally:
        service.send_signal(signal.SIGTERM)
        output = service.communicate(timeout=30)[0]
    assert service.returncode == 0, output
    assert "Traceback" not in output
