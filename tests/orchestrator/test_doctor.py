"""`reconsent doctor`: what a real deployment needs, and what to fix."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from orchestrator.config import Config
from orchestrator.ops.doctor import run_checks
from tests.orchestrator.delivery.channels.test_email_smtp import dkim_key
from tests.support.smtp import SmtpServer, free_port

STRONG = "k" * 48


def production(tmp_path: Path, smtp_port: int) -> Config:
    key_path, _ = dkim_key(tmp_path)
    cfg = Config(base_dir=tmp_path)
    cfg.public = replace(cfg.public, base_url="https://preferences.boutique.example")
    cfg.security = replace(cfg.security, signing_keys=[STRONG], suppression_key="s" * 40)
    cfg.email = replace(cfg.email, transport="smtp", host="127.0.0.1", port=smtp_port, dkim_key_path=str(key_path))
    cfg.sms = replace(cfg.sms, transport="twilio", account_sid="AC" + "1" * 32, auth_token="t" * 32)
    return cfg


def levels(cfg: Config) -> dict[str, str]:
    return {f.topic: f.level for f in asyncio.run(run_checks(cfg))}


def test_a_production_config_passes(tmp_path: Path, smtp_server: SmtpServer) -> None:
    found = levels(production(tmp_path, smtp_server.port))
    assert "fix" not in found.values(), found
    assert found["email.host"] == "ok" and found["email.dkim_key_path"] == "ok" and found["sms"] == "ok"
    assert smtp_server.handler.connections == 1 and smtp_server.received == []  # connected, sent nothing


def test_each_problem_is_named(tmp_path: Path) -> None:
    cfg = production(tmp_path, free_port())  # nothing listens there
    cfg.public = replace(cfg.public, base_url="http://preferences.boutique.example")
    cfg.security = replace(cfg.security, signing_keys=["dev-only-signing-key-change-me"],
                           suppression_key="dev-only-suppression-key-change-me")
    cfg.email = replace(cfg.email, dkim_key_path=str(tmp_path / "missing.pem"), timeout=2)
    cfg.sms = replace(cfg.sms, auth_token="")
    found = asyncio.run(run_checks(cfg))
    fix = {f.topic: f.message for f in found if f.level == "fix"}
    assert set(fix) == {"public.base_url", "security.signing_keys", "security.suppression_key",
                        "email.dkim_key_path", "email.host", "sms.auth_token"}
    assert "not https" in fix["public.base_url"]
    assert "RECONSENT_SECURITY__SIGNING_KEYS" in fix["security.signing_keys"]
    assert "cannot reach the relay" in fix["email.host"]


def test_cli_exit_codes(tmp_path: Path, smtp_server: SmtpServer) -> None:
    key_path, _ = dkim_key(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONSENT_")}

    def doctor(**extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "doctor"], env={**env, **extra},
                              cwd=tmp_path, capture_output=True, text=True, timeout=60)

    embedded = doctor()
    assert embedded.returncode == 1
    assert "FIX   public.base_url" in embedded.stdout and "FIX   security.signing_keys" in embedded.stdout
    good = doctor(RECONSENT_PUBLIC__BASE_URL="https://preferences.boutique.example",
                  RECONSENT_SECURITY__SIGNING_KEYS=STRONG, RECONSENT_SECURITY__SUPPRESSION_KEY="s" * 40,
                  RECONSENT_EMAIL__TRANSPORT="smtp", RECONSENT_EMAIL__HOST="127.0.0.1",
                  RECONSENT_EMAIL__PORT=str(smtp_server.port), RECONSENT_EMAIL__DKIM_KEY_PATH=str(key_path))
    assert good.returncode == 0, good.stdout + good.stderr
    assert "0 thing(s) to fix" in good.stdout
