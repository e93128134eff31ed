from datetime import timedelta

import pytest

from orchestrator.domain.clock import FixedClock
from orchestrator.links import LinkClaims, LinkExpired, LinkInvalid, LinkSigner


def test_round_trip_carries_only_opaque_ids() -> None:
    signer = LinkSigner(["k"], FixedClock())
    token = signer.dumps("page", LinkClaims(7, 3, "sms"))
    assert signer.loads("page", token, max_age_days=1) == LinkClaims(7, 3, "sms")
    import base64
    import json

    payload = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert payload == {"c": 7, "k": 3, "h": "s"}


def test_a_token_of_one_purpose_fails_in_another() -> None:
    signer = LinkSigner(["k"], FixedClock())
    token = signer.dumps("unsubscribe", LinkClaims(1, 1))
    for purpose in ("page", "rights"):
        with pytest.raises(LinkInvalid):
            signer.loads(purpose, token, max_age_days=1)


def test_tampered_and_expired() -> None:
    clock = FixedClock()
    signer = LinkSigner(["k"], clock)
    token = signer.dumps("page", LinkClaims(1, 2))
    with pytest.raises(LinkInvalid):
        signer.loads("page", token[:-2] + ("AA" if not token.endswith("AA") else "BB"), max_age_days=1)
    clock.advance(timedelta(days=2))
    with pytest.raises(LinkExpired) as exc:
        signer.loads("page", token, max_age_days=1)
    assert exc.value.claims == LinkClaims(1, 2)


def test_key_rotation_newest_signs_all_verify() -> None:
    clock = FixedClock()
    old = LinkSigner(["old"], clock)
    token = old.dumps("page", LinkClaims(5))
    rotated = LinkSigner(["new", "old"], clock)
    assert rotated.loads("page", token, max_age_days=1) == LinkClaims(5)
    fresh = rotated.dumps("page", LinkClaims(5))
    with pytest.raises(LinkInvalid):
        old.loads("page", fresh, max_age_days=1)
    with pytest.raises(LinkInvalid):
        LinkSigner(["new"], clock).loads("page", token, max_age_days=1)


def test_short_codes_are_compact_and_unforgeable() -> None:
    signer = LinkSigner(["k"], FixedClock())
    code = signer.short_code(123456)
    assert len(code) <= 12 and code.isalnum()
    assert signer.resolve_short_code(code) == 123456
    with pytest.raises(LinkInvalid):
        signer.resolve_short_code(signer.short_code(123457)[:-8] + code[-8:])
    assert LinkSigner(["new", "k"], FixedClock()).resolve_short_code(code) == 123456
