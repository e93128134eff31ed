import pytest

from orchestrator.domain.segments import count_segments


def test_plain_french_with_gsm_accents_is_gsm7() -> None:
    seg = count_segments("Réponse à Éric : très bien, où es-tu ? Ç")
    assert seg.encoding == "GSM-7"
    assert seg.segments == 1


@pytest.mark.parametrize("char", ["ç", "ê", "â", "î", "ô", "û", "ë", "ï", "œ", "«", "»", "’", "\u00a0"])
def test_these_characters_force_ucs2(char: str) -> None:
    seg = count_segments(f"Bonjour {char} merci")
    assert seg.encoding == "UCS-2"
    assert seg.ucs2_chars == (char,)


def test_extension_characters_count_double() -> None:
    assert count_segments("€" * 80).segments == 1
    assert count_segments("€" * 81).segments == 2
    assert count_segments("[]{}").units == 8


def test_boundaries() -> None:
    assert count_segments("a" * 160).segments == 1
    assert count_segments("a" * 161).segments == 2
    assert count_segments("a" * 306).segments == 2
    assert count_segments("a" * 307).segments == 3
    assert count_segments("ç" * 70).segments == 1
    assert count_segments("ç" * 71).segments == 2
    assert count_segments("ç" * 134).segments == 2
