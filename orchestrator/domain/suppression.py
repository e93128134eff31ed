"""Suppression keys: a keyed HMAC of the normalised address, never the address itself [R3].

>>> key = suppression_key(b"secret", "  Jean.Dupont@Exemple.FR ")
>>> key == suppression_key(b"secret", "jean.dupont@exemple.fr")
True
>>> len(key)
64
"""

from __future__ import annotations

import hashlib
import hmac
from typing import NewType

SuppressionKey = NewType("SuppressionKey", str)


def normalise_email(address: str) -> str:
    """Lower-cased and trimmed, as SPEC R3 says."""
    return address.strip().lower()


def normalise_address(address: str) -> str:
    """An email is lower-cased/trimmed; a phone must already be E.164 (``+33612345678``)."""
    address = address.strip()
    if "@" in address:
        return normalise_email(address)
    return address.replace(" ", "")


def suppression_key(secret: bytes, address: str) -> SuppressionKey:
    """HMAC-SHA256 (hex) of the normalised address under the dedicated suppression secret."""
    digest = hmac.new(secret, normalise_address(address).encode("utf-8"), hashlib.sha256)
    return SuppressionKey(digest.hexdigest())


def looks_like_key(text: str) -> bool:
    """True for an already-hashed entry (64 hex digits), as found in exported opposition lists."""
    text = text.strip().lower()
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)
