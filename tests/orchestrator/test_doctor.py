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
from orchestrator.proof.receipt_keys import new_key
from tests.orchestrator.delivery.channels.test_email_smtp import dkim_key
from tests.support.smtp import SmtpServer, free_port

STRONG = "k" * 48


#: a sender identity that is nobody's placeholder (doctor refuses example.com, .example, .test…)
SENDER = {"RECONSENT_SENDER__NAME": "Boutique Durand", "RECONSENT_SENDER__POSTAL_ADDRESS": "12 rue des Lilas, Lyon",
          "RECONSENT_SENDER__EMAIL_FROM": "bonjour@boutique-durand.fr",
          "RECONSENT_SENDER__PRIVACY_URL": "https://boutique-durand.fr/confidentialite"}


def migrated(tmp_path: Path) -> str:
    """A SQLite database at this version's schema."""
    from orchestrator.store.db import make_engine, migrate

    url = f"sqlite:///{tmp_path / 'doctor.db'}"
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    return url


def production(tmp_path: Path, smtp_port: int) -> Config:
    key_path, _ = dkim_key(tmp_path)
    cfg = Config(base_dir=tmp_path)
    cfg.database = replace(cfg.database, url=migrated(tmp_path))
    cfg.sender = replace(cfg.sender, name="Boutique Durand", postal_address="12 rue des Lilas, Lyon",
                         email_from="bonjour@boutique-durand.fr",
                         privacy_url="https://boutique-durand.fr/confidentialite")
    cfg.public = replace(cfg.public, base_url="https://preferences.boutique.example")
    cfg.security = replace(cfg.security, signing_keys=[STRONG], suppression_key="s" * 40)
    cfg.receipts = replace(cfg.receipts, signing_key=new_key()[0])
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
    cfg.receipts = replace(cfg.receipts, signing_key="")
    found = asyncio.run(run_checks(cfg))
    fix = {f.topic: f.message for f in found if f.level == "fix"}
    assert set(fix) == {"public.base_url", "security.signing_keys", "security.suppression_key",
                        "email.dkim_key_path", "email.host", "sms.auth_token", "receipts.signing_key"}
    assert "RECONSENT_RECEIPTS__SIGNING_KEY" in fix["receipts.signing_key"]
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
    good = doctor(**SENDER, RECONSENT_DATABASE__URL=migrated(tmp_path),
                  RECONSENT_PUBLIC__BASE_URL="https://preferences.boutique.example",
                  RECONSENT_SECURITY__SIGNING_KEYS=STRONG, RECONSENT_SECURITY__SUPPRESSION_KEY="s" * 40,
                  RECONSENT_RECEIPTS__SIGNING_KEY=new_key()[0],
                  RECONSENT_EMAIL__TRANSPORT="smtp", RECONSENT_EMAIL__HOST="127.0.0.1",
                  RECONSENT_EMAIL__PORT=str(smtp_server.port), RECONSENT_EMAIL__DKIM_KEY_PATH=str(key_path))
    assert good.returncode == 0, good.stdout + good.stderr
    assert "0 thing(s) to fix" in good.stdout


def test_the_database_is_checked_and_never_created(tmp_path: Path) -> None:
    """Issue 15: doctor did not look at the database at all."""
    cfg = production(tmp_path, free_port())
    [warn, ok] = [f for f in asyncio.run(run_checks(cfg)) if f.topic == "database.url"]
    assert warn.level == "warn" and "SQLite in a production setup" in warn.message
    assert ok.level == "ok" and ok.message.endswith("reachable, schema up to date")
    cfg.database = replace(cfg.database, url=f"sqlite:///{tmp_path / 'none.db'}")
    [db] = [f for f in asyncio.run(run_checks(cfg)) if f.topic == "database.url"]
    assert db.level == "fix" and "none.db does not exist: run `reconsent init`" in db.message
    assert not (tmp_path / "none.db").exists()
    (tmp_path / "empty.db").touch()
    cfg.database = replace(cfg.database, url=f"sqlite:///{tmp_path / 'empty.db'}")
    [db] = [f for f in asyncio.run(run_checks(cfg)) if f.topic == "database.url" and f.level == "fix"]
    assert db.message.endswith("is not initialised: run `reconsent init` first")
    port = free_port()
    cfg.database = replace(cfg.database, url=f"postgresql+psycopg://app:Secr3t@127.0.0.1:{port}/crm")
    [db] = [f for f in asyncio.run(run_checks(cfg)) if f.topic == "database.url"]  # PostgreSQL: no SQLite warning
    assert db.level == "fix" and "Secr3t" not in db.message and "Connection refused" in db.message
    assert db.message.startswith(f"database 127.0.0.1:{port} (postgresql+psycopg://app:***@127.0.0.1:{port}/crm)")


def test_placeholder_sender_identity_is_to_fix(tmp_path: Path) -> None:
    cfg = production(tmp_path, free_port())
    assert [f.level for f in asyncio.run(run_checks(cfg)) if f.topic == "sender identity"] == ["ok"]
    cfg.sender = Config().sender  # the shipped example: Boutique Exemple <bonjour@exemple.example>
    cfg.email = replace(cfg.email, message_id_domain="mail.example.com", dkim_domain="boutique.test")
    fix = {f.topic: f.message for f in asyncio.run(run_checks(cfg)) if f.level == "fix"}
    assert {"sender.email_from", "sender.privacy_url", "sender.name", "sender.postal_address",
            "email.message_id_domain", "email.dkim_domain"} <= set(fix)
    assert "'bonjour@exemple.example' is a placeholder" in fix["sender.email_from"]
    cfg.sender = replace(cfg.sender, name="Durand", postal_address="Lyon", email_from="news@notexample.com",
                         privacy_url="https://example.fr/p")
    cfg.email = replace(cfg.email, message_id_domain="", dkim_domain="")
    assert not [f for f in asyncio.run(run_checks(cfg)) if f.level == "fix" and f.topic.startswith("sender")]


def test_the_return_path_is_checked(tmp_path: Path, smtp_server: SmtpServer) -> None:
    """Issue 15: doctor checks the bounce address (email.return_path)."""
    cfg = production(tmp_path, smtp_server.port)

    def found(return_path: str) -> tuple[str, str]:
        cfg.email = replace(cfg.email, return_path=return_path)
        (finding,) = [f for f in asyncio.run(run_checks(cfg)) if f.topic == "email.return_path"]
        return finding.level, finding.message

    assert found("")[0] == "warn" and "bounces go back to the From address" in found("")[1]
    assert found("bounces+{token}@mail.boutique-durand.fr") == ("ok", "bounces go to bounces+{token}@mail.boutique-durand.fr")
    assert found("not an address")[0] == "fix"
    assert found("bonjour@boutique-durand.fr")[0] == "warn"  # the From address itself
    assert "not aligned" in found("bounces@elsewhere.fr")[1]


def test_an_unreadable_receipt_key_is_named(tmp_path: Path) -> None:
    """Issue 18: the receipt key is checked like the other secrets."""
    cfg = production(tmp_path, free_port())
    found = {f.topic: f for f in asyncio.run(run_checks(cfg))}
    assert found["receipts.signing_key"].level == "ok" and "EdDSA key" in found["receipts.signing_key"].message
    cfg.receipts = replace(cfg.receipts, signing_key="missing.pem")
    found = {f.topic: f for f in asyncio.run(run_checks(cfg))}
    assert found["receipts.signing_key"].level == "fix" and "missing.pem" in found["receipts.signing_key"].message
