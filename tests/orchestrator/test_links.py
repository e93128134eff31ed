from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings, strategies as st

from orchestrator.domain.clock import FixedClock
from orchestrator.rendering.links import PURPOSES, LinkClaims, LinkExpired, LinkInvalid, LinkSigner, _b62


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


# -- dumps() writes itsdangerous' token itself: pinned to the library -------------------------------
def _reference(keys: list[str], salt: str, timestamp: int):  # noqa: ANN202
    """The serializer tokens were made with before dumps() wrote them itself."""
    from itsdangerous import TimestampSigner, URLSafeTimedSerializer

    class Fixed(TimestampSigner):
        def get_timestamp(self) -> int:
            return timestamp

    return URLSafeTimedSerializer(list(reversed(keys)), salt=salt, signer=Fixed)


@settings(max_examples=300, deadline=None)
@given(contact=st.integers(min_value=0, max_value=2**63), campaign=st.one_of(st.none(), st.integers(0, 2**63)),
       channel=st.sampled_from([None, "email", "sms"]), purpose=st.sampled_from(sorted(PURPOSES)),
       keys=st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=3),
       seconds=st.integers(min_value=0, max_value=2**37))
def test_tokens_are_itsdangerous_tokens(contact: int, campaign: int | None, channel: str | None, purpose: str,
                                        keys: list[str], seconds: int) -> None:
    at = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=seconds)
    claims = LinkClaims(contact, campaign, channel)
    token = LinkSigner(keys, FixedClock(at)).dumps(purpose, claims)
    reference = _reference(keys, PURPOSES[purpose], seconds)
    expected = reference.dumps(claims.payload())
    if not expected.startswith("."):  # itsdangerous did not compress: byte for byte the same token
        assert token == expected
    # and always: the library reads it back, with its timestamp
    payload, stamp = reference.loads(token, max_age=None, return_timestamp=True)
    assert LinkClaims.from_payload(payload) == claims and int(stamp.timestamp()) == seconds


def test_tokens_made_by_itsdangerous_still_verify() -> None:
    clock = FixedClock()
    signer = LinkSigner(["new", "old"], clock)
    stamp = int(clock.now().timestamp())
    for keys in (["new"], ["old"]):
        claims = LinkClaims(111111111111111111, 111111111111111111, "email")  # compressed by itsdangerous
        old_token = _reference(keys, PURPOSES["unsubscribe"], stamp).dumps(claims.payload())
        assert old_token.startswith(".")
        assert signer.loads("unsubscribe", old_token, max_age_days=1) == claims
        plain = LinkClaims(42, 7, "sms")
        assert signer.loads("page", _reference(keys, PURPOSES["page"], stamp).dumps(plain.payload()),
                            max_age_days=1) == plain


@settings(max_examples=200, deadline=None)
@given(outbox_id=st.integers(min_value=0, max_value=2**62), key=st.text(min_size=1, max_size=20))
def test_short_codes_are_the_documented_hmac(outbox_id: int, key: str) -> None:
    import hashlib
    import hmac

    digest = hmac.new(key.encode(), f"short:{outbox_id}".encode(), hashlib.sha256).digest()
    signer = LinkSigner([key, "older"], FixedClock())
    code = signer.short_code(outbox_id)
    assert code.endswith(_b62(int.from_bytes(digest[:6], "big")).rjust(8, "0")[-8:])
    assert signer.resolve_short_code(code) == outbox_id
