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


def test_full_gsm7_basic_table_is_one_septet_each() -> None:
    from orchestrator.domain.segments import GSM7_BASIC

    # 128 positions of GSM 03.38 minus ESC (0x1B)
    assert len(GSM7_BASIC) == 127
    seg = count_segments("".join(sorted(GSM7_BASIC)))
    assert (seg.encoding, seg.units) == ("GSM-7", 127)


def test_full_extension_table_counts_double() -> None:
    seg = count_segments("^{}\\[~]|€\f")
    assert (seg.encoding, seg.units) == ("GSM-7", 20)


def test_an_escape_pair_is_never_split_across_parts() -> None:
    from orchestrator.domain.segments import split_segments

    text = "a" * 152 + "€" + "a" * 152  # 306 septets: naive count says 2
    parts = split_segments(text)
    assert [len(p) for p in parts] == [152, 152, 1]
    assert "".join(parts) == text
    assert count_segments(text).segments == 3
    assert count_segments("a" * 151 + "€" + "a" * 153).segments == 2  # fits exactly


def test_a_surrogate_pair_is_never_split_in_ucs2() -> None:
    text = "ç" * 66 + "😀" + "ç" * 66  # 134 code units, the emoji straddles 67
    seg = count_segments(text)
    assert (seg.encoding, seg.units, seg.segments) == ("UCS-2", 134, 3)
    assert seg.ucs2_chars == ("ç", "😀")
