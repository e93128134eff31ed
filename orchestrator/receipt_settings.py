"""The ``[receipts]`` settings (issue 18 §4): the key that signs consent receipts, the former keys still
published for verification, and the jurisdiction a receipt names. Declared here, not in
:mod:`orchestrator.config`, which only holds the section."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def _meta(text: str) -> dict[str, Any]:
    """A setting's documentation, as :func:`orchestrator.config._doc` records it (any value of its type)."""
    return {"doc": text, "range": (None, None), "zone": False}


@dataclass
class ReceiptsConfig:
    signing_key: str = field(default="", metadata=_meta(
        "Private key that signs consent receipts (JWS, Ed25519 or P-256): the PEM text or the path of a PEM file; "
        "give it as RECONSENT_RECEIPTS__SIGNING_KEY. Empty: the public development key while no real person is "
        "reached, else receipts are off; `reconsent receipts keygen` makes one"))
    previous_keys: list[str] = field(default_factory=list, metadata=_meta(
        "Former receipt keys (PEM text or paths, private or public), still published at /.well-known/jwks.json "
        "so the receipts they signed keep verifying (env: comma-separated)"))
    jurisdiction: str = field(default="FR", metadata=_meta(
        "Jurisdiction a consent receipt names (Kantara `jurisdiction`)"))
