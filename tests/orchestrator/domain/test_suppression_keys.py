from orchestrator.domain.suppression import looks_like_key, normalise_address, suppression_key


def test_key_is_keyed_and_normalised() -> None:
    a = suppression_key(b"k1", "  Jean.Dupont@Exemple.FR ")
    assert a == suppression_key(b"k1", "jean.dupont@exemple.fr")
    assert a != suppression_key(b"k2", "jean.dupont@exemple.fr")
    assert "jean" not in a and looks_like_key(a)


def test_phone_keys_use_e164() -> None:
    assert normalise_address("+33 6 12 34 56 78") == "+33612345678"
    assert suppression_key(b"k", "+33 6 12 34 56 78") == suppression_key(b"k", "+33612345678")
