"""`reconsent users add EMAIL [--role admin|viewer]`, through the real command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlmodel import Session, create_engine, select

from orchestrator.store.models import AdminUser


def test_users_add_reads_the_password_from_stdin(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONSENT_")}
    env["RECONSENT_DATABASE__URL"] = f"sqlite:///{tmp_path / 'cli.db'}"

    def call(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "orchestrator.cli.main", *args], check=False, env=env, cwd=tmp_path, input=stdin,
                              capture_output=True, text=True, timeout=120)

    assert call("init").returncode == 0
    ok = call("users", "add", "Marie@Shop.example", "--role", "admin", stdin="a long enough passphrase\n")
    assert ok.returncode == 0 and "marie@shop.example (admin)" in ok.stdout.lower()
    dup = call("users", "add", "marie@shop.example", stdin="another long passphrase\n")
    assert dup.returncode == 1 and "already exists" in dup.stderr and len(dup.stderr.strip().splitlines()) == 1
    weak = call("users", "add", "paul@shop.example", stdin="short\n")
    assert weak.returncode == 1 and "at least 12 characters" in weak.stderr
    assert call("users", "add", "paul@shop.example", "--role", "owner", stdin="x" * 20).returncode == 2
    engine = create_engine(env["RECONSENT_DATABASE__URL"])
    with Session(engine) as s:
        (user,) = s.exec(select(AdminUser))
    engine.dispose()
    assert (user.email, user.role) == ("marie@shop.example", "admin") and user.password_hash.startswith("$argon2id$")
