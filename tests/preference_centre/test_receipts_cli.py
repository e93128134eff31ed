"""`reconsent receipts keygen` and `reconsent receipts verify` through the real command (subprocesses),
against receipts downloaded from a real server; and the development key refused for real people."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from click.testing import CliRunner
from starlette.testclient import TestClient

from orchestrator.cli.main import main
from orchestrator.rendering.links import LinkClaims
from orchestrator.runtime import Runtime
from preference_centre.app import create_app
from tests.support.factories import launch, person
from tests.support.live_server import live_server


def reconsent(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RECONSENT_")}
    return subprocess.run([sys.executable, "-m", "orchestrator.cli.main", *args], env={**clean, **env},
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)


def test_keygen_then_verify_a_downloaded_receipt_offline(rt: Runtime, write_csv: Callable[..., Path],
                                                         tmp_path: Path) -> None:
    made = reconsent(tmp_path, "receipts", "keygen", "--out", "receipts.pem")
    assert made.returncode == 0, made.stderr
    key_file = tmp_path / "receipts.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    kid = made.stderr.split("kid ")[1].split(";")[0]
    again = reconsent(tmp_path, "receipts", "keygen", "--out", "receipts.pem")
    assert again.returncode == 1 and "refusing to overwrite" in again.stderr

    rt.config.receipts = replace(rt.config.receipts, signing_key=str(key_file))
    campaign_id = launch(rt, write_csv([person(1)]))
    token = rt.links.dumps("page", LinkClaims(contact_id=1, campaign_id=campaign_id, channel="email"))
    with live_server(create_app(rt)) as base:
        answer = urllib.request.Request(f"{base}/p/{token}", data=b"email=yes&action=confirm", method="POST")
        with urllib.request.urlopen(answer, timeout=30) as resp:
            assert resp.status == 200
        with urllib.request.urlopen(f"{base}/p/{token}/receipt", timeout=30) as resp:
            (tmp_path / "receipt.json").write_bytes(resp.read())
        # against the published keys, fetched from the URL
        by_url = reconsent(tmp_path, "receipts", "verify", "receipt.json", "--jwks", f"{base}/.well-known/jwks.json")
        assert by_url.returncode == 0, by_url.stderr
        assert by_url.stdout.startswith("valid: receipt ") and f"signed by key {kid}" in by_url.stdout
        assert "email marketing: confirmed" in by_url.stdout
        with urllib.request.urlopen(f"{base}/.well-known/jwks.json", timeout=30) as resp:
            (tmp_path / "jwks.json").write_bytes(resp.read())
    # offline: a saved key set, or this instance's own keys
    assert reconsent(tmp_path, "receipts", "verify", "receipt.json", "--jwks", "jwks.json").returncode == 0
    own = reconsent(tmp_path, "receipts", "verify", "receipt.json", RECONSENT_RECEIPTS__SIGNING_KEY=str(key_file))
    assert own.returncode == 0, own.stderr
    # the bare JWS verifies as well
    doc = json.loads((tmp_path / "receipt.json").read_text())
    (tmp_path / "receipt.jws").write_text(doc["jws"])
    assert reconsent(tmp_path, "receipts", "verify", "receipt.jws", "--jwks", "jwks.json").returncode == 0
    # another instance's keys (here: the development key) do not verify it
    other = reconsent(tmp_path, "receipts", "verify", "receipt.json")
    assert other.returncode == 1 and "does not hold" in other.stderr
    # an edited receipt: exit 1, one line
    doc["receipt"]["services"][0]["purposes"][0]["action"] = "declined"
    (tmp_path / "edited.json").write_text(json.dumps(doc))
    edited = reconsent(tmp_path, "receipts", "verify", "edited.json", "--jwks", "jwks.json")
    assert edited.returncode == 1 and edited.stderr.startswith("Error: ") and len(edited.stderr.splitlines()) == 1
    assert edited.stdout == ""


def test_an_upgraded_instance_without_a_receipt_key_still_starts_and_doctor_says_receipts_are_off(
        rt: Runtime) -> None:
    """An instance from before receipts (smtp, real keys, no receipts.signing_key) must not stop at the
    upgrade: it starts, receipts are off, and ``doctor`` tells how to turn them on."""
    from dataclasses import replace

    from orchestrator.ops.doctor import receipt_key_finding
    from orchestrator.ops.server import refuse_development_keys

    cfg = rt.config
    cfg.email = replace(cfg.email, transport="smtp")
    cfg.security = replace(cfg.security, signing_keys=["a-real-random-secret-0123456789"],
                           suppression_key="another-real-random-secret-0123456789")
    cfg.receipts = replace(cfg.receipts, signing_key="")
    refuse_development_keys(cfg)  # no refusal
    finding = receipt_key_finding(cfg)
    assert finding.level == "fix" and "offers no consent receipt" in finding.message
    assert "reconsent receipts keygen" in finding.message


def test_an_instance_made_by_init_signs_with_its_own_key(tmp_path: Path) -> None:
    made = CliRunner().invoke(main, ["init", str(tmp_path / "shop")], env={"RECONSENT_CONFIG": None})
    assert made.exit_code == 0, made.output
    from orchestrator.config import load_config
    from orchestrator.proof.receipt_keys import development_key, keys

    cfg = load_config(tmp_path / "shop" / "reconsent.toml", env={})
    assert cfg.receipts.signing_key.startswith("-----BEGIN PRIVATE KEY-----")
    assert keys(cfg)[0].kid != development_key().kid


def test_the_jwks_is_public_and_cacheable(rt: Runtime) -> None:
    resp = TestClient(create_app(rt)).get("/.well-known/jwks.json")
    assert resp.status_code == 200 and "max-age=3600" in resp.headers["cache-control"]
    (key,) = resp.json()["keys"]
    assert (key["kty"], key["crv"], key["alg"], key["use"]) == ("OKP", "Ed25519", "EdDSA", "sig") and "d" not in key


def test_an_unreadable_receipt_key_stops_serve_in_one_line(rt: Runtime) -> None:
    env = {"RECONSENT_CONFIG": "", "RECONSENT_DATABASE__URL": rt.config.database_url,
           "RECONSENT_RECEIPTS__SIGNING_KEY": "missing-receipts.pem"}
    result = CliRunner().invoke(main, ["serve", "--port", "1"], env=env)
    assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("Error: receipts.signing_key: not a PEM key and no readable file")
