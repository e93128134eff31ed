"""Consent receipts (issue 18 §4): after an answer, GET /p/{token}/receipt downloads a JWS signed by the
instance, verifiable offline with the JWK Set at /.well-known/jwks.json. Verified here with PyJWT's own
verify and with the raw Ed25519 check of ``cryptography``: not with the product's code path."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlmodel import Session, select
from starlette.testclient import TestClient

from orchestrator.choices_settings import Partner
from orchestrator.domain.clock import FixedClock
from orchestrator.ops.logs import scrub_text
from orchestrator.proof.evidence import pseudonym
from orchestrator.proof.receipt_keys import ReceiptInvalid, new_key
from orchestrator.proof.receipts import verify_receipt
from orchestrator.rendering.links import LinkClaims
from orchestrator.runtime import Runtime
from orchestrator.store.models import ConsentEvent, Enrolment, SuppressionEntry, Wording
from preference_centre.app import create_app
from tests.conftest import T0
from tests.support.factories import launch, person


def _b64(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def snapshot(rt: Runtime) -> tuple[Any, ...]:
    with Session(rt.engine) as s:
        return ([(e.state, e.answered_at) for e in s.exec(select(Enrolment).order_by(Enrolment.id))],
                [e.hash for e in s.exec(select(ConsentEvent).order_by(ConsentEvent.id))],
                len(list(s.exec(select(SuppressionEntry)))))


@pytest.fixture
def setup(rt: Runtime, write_csv: Callable[..., Path]) -> tuple[Runtime, TestClient, str]:
    campaign_id = launch(rt, write_csv([person(1, first_name="Zoé")]))
    token = rt.links.dumps("page", LinkClaims(contact_id=1, campaign_id=campaign_id, channel="email"))
    return rt, TestClient(create_app(rt)), token


def _answer(client: TestClient, token: str, **form: str) -> str:
    resp = client.post(f"/p/{token}", data=form)
    assert resp.status_code == 200, resp.text
    return resp.text


def test_the_receipt_verifies_against_the_published_keys_and_names_the_ledger_events(
        setup: tuple[Runtime, TestClient, str]) -> None:
    rt, client, token = setup
    rt.config.partners = [Partner("transport-express", "Transport Express SA", (("fr", "livrer"), ("en", "deliver")),
                                  "https://transport-express.example/confidentialite")]
    done = _answer(client, token, email="yes", partner="transport-express", action="confirm")
    assert f'href="/p/{token}/receipt"' in done and "Télécharger mon reçu" in done
    assert "signé par Boutique Lumière\u00a0: vous" in done  # French typography

    resp = client.get(f"/p/{token}/receipt")
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/json"
    assert resp.headers["content-disposition"].startswith("attachment; filename=\"consent-receipt-")
    assert resp.headers["cache-control"] == "no-store"
    doc = resp.json()
    assert doc["jwks_url"] == "https://prefs.example.com/.well-known/jwks.json"

    key_set = client.get("/.well-known/jwks.json")
    assert key_set.status_code == 200 and key_set.headers["content-type"] == "application/jwk-set+json"
    header = jwt.get_unverified_header(doc["jws"])
    assert header["alg"] == "EdDSA" and header["kid"]
    # PyJWT's verify, from the published JWK Set only
    published = jwt.PyJWKSet.from_dict(key_set.json())[header["kid"]]
    claims = jwt.decode(doc["jws"], published.key, algorithms=["EdDSA"])
    assert claims == doc["receipt"]
    # and the raw Ed25519 signature over the JWS signing input (RFC 7515), with cryptography
    jwk = next(k for k in key_set.json()["keys"] if k["kid"] == header["kid"])
    signing_input, _, signature = doc["jws"].rpartition(".")
    Ed25519PublicKey.from_public_bytes(_b64(jwk["x"])).verify(_b64(signature), signing_input.encode())

    with Session(rt.engine) as s:
        events = list(s.exec(select(ConsentEvent).order_by(ConsentEvent.id)))
        wording = s.get(Wording, events[0].wording_hash)
    assert wording is not None
    # one purpose entry per ledger event of the answer, each named by its hash, whatever channel/purpose/action
    assert claims["ledgerEvents"] == [e.hash for e in events]
    listed = [(s["service"], p["purpose"], p["action"], p["eventHash"])
              for s in claims["services"] for p in s["purposes"]]
    assert sorted(listed) == sorted((e.channel, e.purpose, e.action, e.hash) for e in events)
    assert {("email", "marketing", "confirmed"), ("sms", "marketing", "not_granted"),
            ("email", "partner:transport-express", "granted")} <= {x[:3] for x in listed}
    partners = next(p for s in claims["services"] for p in s["purposes"] if p["purpose"] == "partner:transport-express")
    assert partners["thirdPartyDisclosure"] is True and partners["consentGiven"] is True
    assert partners["thirdPartyName"] == "Transport Express SA"
    # the wording version: its hash, and the text it is the hash of
    w = claims["wording"]
    assert w["hash"] == events[0].wording_hash == hashlib.sha256(
        f"{w['name']}\0{w['locale']}\0{w['text']}".encode()).hexdigest()
    assert (claims["version"], claims["jurisdiction"], claims["language"]) == ("KI-CR-v1.1.0", "FR", "fr")
    assert (claims["consentTimestamp"], claims["consentTime"]) == (int(T0.timestamp()), "2026-11-25T09:00:00Z")
    assert claims["piiControllers"][0]["piiController"] == "Boutique Lumière"
    assert claims["policyUrl"].startswith("https://")
    # a pseudonym, no address: the file can be shown to anyone
    assert claims["piiPrincipalId"] == pseudonym(rt, 1) and claims["piiPrincipalId"].startswith("p-")
    text = json.dumps(doc)
    assert "person1@example.org" not in text and "+336" not in text and "Zoé" not in text


def test_tampering_breaks_the_signature(setup: tuple[Runtime, TestClient, str]) -> None:
    _rt, client, token = setup
    _answer(client, token, action="decline")
    doc = client.get(f"/p/{token}/receipt").json()
    key_set = client.get("/.well-known/jwks.json").json()
    head, payload, signature = doc["jws"].split(".")
    claims = json.loads(_b64(payload))
    assert {p["action"] for s in claims["services"] for p in s["purposes"]} == {"declined"}
    for s in claims["services"]:
        for p in s["purposes"]:
            p["action"], p["consentGiven"] = "confirmed", True
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    forged = f"{head}.{forged_payload}.{signature}"
    key = jwt.PyJWKSet.from_dict(key_set)[jwt.get_unverified_header(forged)["kid"]]
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(forged, key.key, algorithms=["EdDSA"])
    with pytest.raises(InvalidSignature):
        Ed25519PublicKey.from_public_bytes(_b64(key_set["keys"][0]["x"])).verify(
            _b64(signature), f"{head}.{forged_payload}".encode())
    with pytest.raises(ReceiptInvalid, match="signature does not match"):
        verify_receipt(json.dumps({**doc, "jws": forged, "receipt": claims}).encode(), key_set)
    # the readable copy edited, the JWS left alone: refused too (only the signed content counts)
    with pytest.raises(ReceiptInvalid, match="readable copy"):
        verify_receipt(json.dumps({**doc, "receipt": claims}).encode(), key_set)
    assert verify_receipt(json.dumps(doc).encode(), key_set)[0] == doc["receipt"]


def test_no_receipt_before_an_answer_and_none_for_a_bad_link(setup: tuple[Runtime, TestClient, str]) -> None:
    rt, client, token = setup
    assert client.get(f"/p/{token}/receipt").status_code == 404
    assert client.get(f"/p/{token[:-2]}xx/receipt").status_code == 400
    assert client.post(f"/p/{token}/receipt").status_code == 405
    # the preview of a test send records nothing, so offers no receipt
    preview = rt.links.dumps("preview", LinkClaims(contact_id=0, campaign_id=1, channel="email"))
    assert "/receipt" not in client.post(f"/p/{preview}", data={"action": "confirm"}).text


def test_get_changes_nothing_and_gives_the_same_receipt(setup: tuple[Runtime, TestClient, str]) -> None:
    rt, client, token = setup
    _answer(client, token, sms="yes", action="confirm")
    before = snapshot(rt)
    bodies = {client.get(f"/p/{token}/receipt").content for _ in range(3)}
    client.head(f"/p/{token}/receipt")
    assert snapshot(rt) == before
    assert len(bodies) == 1  # deterministic: the same answer, the same signed file


def test_the_receipt_covers_the_most_recent_answer(setup: tuple[Runtime, TestClient, str], clock: FixedClock) -> None:
    _rt, client, token = setup
    _answer(client, token, email="yes", action="confirm")
    first = client.get(f"/p/{token}/receipt").json()["receipt"]
    clock.advance(timedelta(minutes=5))
    _answer(client, token, action="decline")
    second = client.get(f"/p/{token}/receipt").json()["receipt"]
    assert first["consentReceiptID"] != second["consentReceiptID"]
    assert not set(first["ledgerEvents"]) & set(second["ledgerEvents"])
    assert {p["action"] for s in second["services"] for p in s["purposes"]} == {"declined"}


def test_the_url_holds_no_personal_data_and_the_log_masks_the_token(setup: tuple[Runtime, TestClient, str]) -> None:
    _rt, _client, token = setup
    path = f"/p/{token}/receipt"
    assert "person1" not in path and "example.org" not in path and "+336" not in path
    assert scrub_text(f'"GET {path} HTTP/1.1" 200') == '"GET /p/[token]/receipt HTTP/1.1" 200'


def test_rotation_old_receipts_verify_with_previous_keys(setup: tuple[Runtime, TestClient, str], tmp_path: Path,
                                                        make_rt: Callable[..., Runtime]) -> None:
    rt, _client, token = setup
    old_pem, old_jwk = new_key()
    (tmp_path / "old.pem").write_text(old_pem)
    rt.config.receipts = replace(rt.config.receipts, signing_key="old.pem")
    rt.config.base_dir = tmp_path
    client = TestClient(create_app(rt))
    _answer(client, token, email="yes", action="confirm")
    old_doc = client.get(f"/p/{token}/receipt").json()
    assert jwt.get_unverified_header(old_doc["jws"])["kid"] == old_jwk["kid"]

    new_pem, new_jwk = new_key()
    rotated = make_rt()
    rotated.config.receipts = replace(rotated.config.receipts, signing_key=new_pem, previous_keys=["old.pem"])
    rotated.config.base_dir = tmp_path
    client = TestClient(create_app(rotated))
    key_set = client.get("/.well-known/jwks.json").json()
    assert [k["kid"] for k in key_set["keys"]] == [new_jwk["kid"], old_jwk["kid"]]
    assert all("d" not in k for k in key_set["keys"])  # public keys only
    old_key = jwt.PyJWKSet.from_dict(key_set)[old_jwk["kid"]]
    assert jwt.decode(old_doc["jws"], old_key.key, algorithms=["EdDSA"]) == old_doc["receipt"]
    new_doc = client.get(f"/p/{token}/receipt").json()
    assert jwt.get_unverified_header(new_doc["jws"])["kid"] == new_jwk["kid"]
    # without previous_keys the old receipt no longer finds its key
    rotated.config.receipts = replace(rotated.config.receipts, previous_keys=[])
    alone = TestClient(create_app(rotated)).get("/.well-known/jwks.json").json()
    with pytest.raises(ReceiptInvalid, match="does not hold"):
        verify_receipt(json.dumps(old_doc).encode(), alone)


def test_a_p256_key_signs_es256(setup: tuple[Runtime, TestClient, str]) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    rt, _client, token = setup
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    rt.config.receipts = replace(rt.config.receipts, signing_key=pem)
    client = TestClient(create_app(rt))
    _answer(client, token, email="yes", action="confirm")
    doc = client.get(f"/p/{token}/receipt").json()
    (key,) = client.get("/.well-known/jwks.json").json()["keys"]
    assert (key["kty"], key["crv"], key["alg"]) == ("EC", "P-256", "ES256")
    assert jwt.get_unverified_header(doc["jws"])["alg"] == "ES256"
    verified = jwt.decode(doc["jws"], jwt.PyJWKSet.from_dict({"keys": [key]})[key["kid"]].key, algorithms=["ES256"])
    assert verified == doc["receipt"]


def test_an_unreadable_key_is_named_when_the_config_is_used(rt: Runtime) -> None:
    from orchestrator.errors import ConfigError
    from orchestrator.proof.receipt_keys import jwks

    rt.config.receipts = replace(rt.config.receipts, signing_key="-----BEGIN PRIVATE KEY-----\nnot a key\n")
    with pytest.raises(ConfigError, match="receipts.signing_key: not an unencrypted PEM private key"):
        jwks(rt.config)
    rt.config.receipts = replace(rt.config.receipts, signing_key="", previous_keys=["nowhere.pem"])
    with pytest.raises(ConfigError, match=r"receipts.previous_keys\[0\]: not a PEM key and no readable file"):
        jwks(rt.config)


def test_an_instance_reaching_people_without_a_key_of_its_own_runs_with_receipts_off(
        setup: tuple[Runtime, TestClient, str], tmp_path: Path) -> None:
    """An instance upgraded from before receipts (https, no receipts.signing_key) keeps serving: the public
    development key never signs for real people, so no receipt is offered, the route is 404 and the JWK
    Set holds only former keys; on http with files (the demo) the development key signs."""
    rt, _client, token = setup
    old_pem, old_jwk = new_key()
    rt.config.receipts = replace(rt.config.receipts, signing_key="", previous_keys=[old_pem])
    client = TestClient(create_app(rt))
    done = _answer(client, token, email="yes", action="confirm")
    assert "/receipt" not in done and "Télécharger mon reçu" not in done
    assert client.get(f"/p/{token}/receipt").status_code == 404
    assert [k["kid"] for k in client.get("/.well-known/jwks.json").json()["keys"]] == [old_jwk["kid"]]

    rt.config.public = replace(rt.config.public, base_url="http://localhost:8000")  # the demo
    client = TestClient(create_app(rt))
    assert client.get(f"/p/{token}/receipt").status_code == 200
    assert len(client.get("/.well-known/jwks.json").json()["keys"]) == 2
