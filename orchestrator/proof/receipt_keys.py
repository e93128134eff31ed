"""The keys of consent receipts (issue 18 §4): the instance signs each receipt as a compact JWS and
publishes its public keys as a JWK Set, so that anyone can check a receipt offline.

``[receipts] signing_key`` is a PEM private key (Ed25519, signed with EdDSA; or P-256, ES256), given as
text or as the path of a file; ``previous_keys`` are published too, so receipts signed before a rotation
keep verifying. Each key is named by its RFC 7638 thumbprint (``kid``). With no key configured the
instance signs with a development key derived from a public seed: fine on a laptop, refused by
``serve`` once real people are reached and reported by ``doctor``.

Signing and verifying are PyJWT's (``jwt.encode``, ``PyJWKSet``, ``jwt.decode``), not code of ours.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from jwt.algorithms import ECAlgorithm, OKPAlgorithm

from orchestrator.config import Config
from orchestrator.config_values import reaching_people
from orchestrator.errors import ConfigError, ReconsentError

#: the seed of the development key: public on purpose (anyone can sign with it), so never for real people
DEV_RECEIPT_SEED = hashlib.sha256(b"reconsent dev-only receipt key: public, never for real people").digest()
#: the algorithms a receipt may be signed with
ALGORITHMS = ("EdDSA", "ES256")

PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey


class ReceiptInvalid(ReconsentError):
    """A receipt that does not verify: unreadable, unknown key, or a signature that does not match."""


@dataclass(frozen=True)
class ReceiptKey:
    """One key: its public JWK (with ``kid``, ``alg``, ``use``) and, for the signing key, the private key."""

    jwk: dict[str, str]
    private: PrivateKey | None = None

    @property
    def kid(self) -> str:
        return self.jwk["kid"]

    @property
    def alg(self) -> str:
        return self.jwk["alg"]


def thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638: SHA-256 of the required members in lexicographic order, base64url without padding."""
    required = {"OKP": ("crv", "kty", "x"), "EC": ("crv", "kty", "x", "y")}[jwk["kty"]]
    data = json.dumps({k: jwk[k] for k in required}, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def public_jwk(public: PublicKey) -> dict[str, str]:
    """The public JWK of ``public``, named by its thumbprint."""
    if isinstance(public, ed25519.Ed25519PublicKey):
        jwk, alg = OKPAlgorithm.to_jwk(public, as_dict=True), "EdDSA"
    elif isinstance(public.curve, ec.SECP256R1):
        jwk, alg = ECAlgorithm.to_jwk(public, as_dict=True), "ES256"
    else:
        raise ConfigError(f"receipts: a {public.curve.name} key cannot sign receipts (use Ed25519 or P-256)")
    members = {k: str(v) for k, v in jwk.items() if k in ("kty", "crv", "x", "y")}
    return {**members, "kid": thumbprint(members), "alg": alg, "use": "sig"}


def _read_pem(value: str, base_dir: Path, where: str) -> bytes:
    text = value.strip()
    if text.startswith("-----BEGIN"):
        return text.encode()
    path = Path(text) if Path(text).is_absolute() else base_dir / text
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{where}: not a PEM key and no readable file {path} ({exc.strerror}); "
                          "give the PEM text or its path (`reconsent receipts keygen` makes one)") from None


def _load(value: str, base_dir: Path, where: str, *, private_only: bool) -> ReceiptKey:
    pem = _read_pem(value, base_dir, where)
    try:
        private = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        if private_only:
            raise ConfigError(f"{where}: not an unencrypted PEM private key (Ed25519 or P-256)") from None
        return _public(pem, where)
    if not isinstance(private, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
        raise ConfigError(f"{where}: an Ed25519 or P-256 key is expected")
    return ReceiptKey(public_jwk(private.public_key()), private if private_only else None)


def _public(pem: bytes, where: str) -> ReceiptKey:
    try:
        public = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError):
        raise ConfigError(f"{where}: not a PEM key (Ed25519 or P-256, private or public)") from None
    if not isinstance(public, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey):
        raise ConfigError(f"{where}: an Ed25519 or P-256 key is expected")
    return ReceiptKey(public_jwk(public))


def development_key() -> ReceiptKey:
    private = ed25519.Ed25519PrivateKey.from_private_bytes(DEV_RECEIPT_SEED)
    return ReceiptKey(public_jwk(private.public_key()), private)


def uses_development_key(cfg: Config) -> bool:
    """True when receipts would be signed with the public development key (no key configured)."""
    return not cfg.receipts.signing_key.strip()


def enabled(cfg: Config) -> bool:
    """Whether receipts are offered: with a key of the instance's own, or on the development key while no
    real person is reached (the demo, a laptop). An instance reaching people without a key (one upgraded
    from before receipts) keeps running with receipts off until it is given one: ``doctor`` says so."""
    return not uses_development_key(cfg) or not reaching_people(cfg)


@lru_cache(maxsize=8)
def _keys(signing: str, previous: tuple[str, ...], base_dir: Path) -> tuple[ReceiptKey, ...]:
    current = development_key() if not signing.strip() else \
        _load(signing, base_dir, "receipts.signing_key", private_only=True)
    older = [_load(v, base_dir, f"receipts.previous_keys[{i}]", private_only=False)
             for i, v in enumerate(previous) if v.strip()]
    return (current, *(k for k in older if k.kid != current.kid))


def keys(cfg: Config) -> tuple[ReceiptKey, ...]:
    """The signing key first, then the former ones (ConfigError naming the setting when one is unreadable)."""
    r = cfg.receipts
    return _keys(r.signing_key, tuple(r.previous_keys), cfg.base_dir)


def jwks(cfg: Config) -> dict[str, list[dict[str, str]]]:
    """The JWK Set published at ``/.well-known/jwks.json``: public keys only (receipts off: the former
    keys only, never the public development key)."""
    published = keys(cfg) if enabled(cfg) else keys(cfg)[1:]
    return {"keys": [k.jwk for k in published]}


def sign(cfg: Config, claims: dict[str, Any]) -> str:
    """The compact JWS of ``claims``, signed by the current key (header: ``alg``, ``kid``, ``typ``)."""
    key = keys(cfg)[0]
    assert key.private is not None  # the first key is always loaded as a private key
    return jwt.encode(claims, key.private, algorithm=key.alg, headers={"kid": key.kid, "typ": "JWT"})


def verify(token: str, key_set: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The claims of ``token`` and the ``kid`` of the key of ``key_set`` (a JWK Set) that signed it;
    ReceiptInvalid when none did."""
    try:
        header = jwt.get_unverified_header(token)
        found = [k for k in jwt.PyJWKSet.from_dict(key_set).keys if k.key_id == header.get("kid")]
    except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
        raise ReceiptInvalid(f"not a readable receipt or key set ({exc})") from None
    if not found:
        raise ReceiptInvalid(f"signed by key {header.get('kid')!r}, which the key set does not hold")
    key = found[0]
    try:
        claims: dict[str, Any] = jwt.decode(token, key.key, algorithms=[a for a in ALGORITHMS
                                                                         if a == key.algorithm_name],
                                            options={"verify_aud": False})
    except jwt.PyJWTError as exc:
        raise ReceiptInvalid(f"the signature does not match (the receipt was altered or not signed by this "
                             f"key): {exc}") from None
    return claims, str(key.key_id)


def new_key() -> tuple[str, dict[str, str]]:
    """A fresh Ed25519 key: its PEM (PKCS#8, unencrypted) and public JWK."""
    private = ed25519.Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return pem, public_jwk(private.public_key())
