"""SMS encoding and segment count [S6].

GSM 03.38 basic alphabet (1 septet) and extension table (escape + char = 2 septets). Anything else
forces UCS-2 for the whole message. GSM-7: 160 septets in one part, 153 per part when concatenated.
UCS-2: 70 / 67 UTF-16 code units. Parts are cut the way handsets and carriers cut them: an escape
pair (``€`` = ESC + e) or a UTF-16 surrogate pair (an emoji) is never split across two parts, so a
message can need one part more than ``ceil(units / 153)``.

>>> count_segments("Bonjour, répondez STOP au 36111").encoding
'GSM-7'
>>> count_segments("Ça va ? ç").ucs2_chars
('ç',)
>>> count_segments("a" * 161).segments
2
>>> count_segments("a" * 152 + "€" + "a" * 152).segments  # 306 septets, but € cannot straddle
3
"""

from __future__ import annotations

from dataclasses import dataclass

#: GSM 03.38 basic character set, all 128 positions but ESC (0x1B), in table order
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
#: GSM 03.38 default extension table: each is sent as ESC + char (2 septets)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

GSM7_SINGLE, GSM7_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67


@dataclass(frozen=True)
class SegmentCount:
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int
    #: characters that forced UCS-2, in order of first appearance
    ucs2_chars: tuple[str, ...]

    @property
    def per_segment(self) -> int:
        if self.encoding == "GSM-7":
            return GSM7_SINGLE if self.segments <= 1 else GSM7_MULTI
        return UCS2_SINGLE if self.segments <= 1 else UCS2_MULTI


def char_units(ch: str, encoding: str) -> int:
    """Septets (GSM-7) or UTF-16 code units (UCS-2) one character takes.

    >>> char_units("€", "GSM-7"), char_units("é", "GSM-7"), char_units("😀", "UCS-2")
    (2, 1, 2)
    """
    if encoding == "GSM-7":
        return 2 if ch in GSM7_EXTENSION else 1
    return 2 if ord(ch) > 0xFFFF else 1


def ucs2_forcing(text: str) -> tuple[str, ...]:
    """The characters of ``text`` outside GSM-7 (basic and extension), first appearance first."""
    seen: dict[str, None] = {}
    for ch in text:
        if ch not in GSM7_BASIC and ch not in GSM7_EXTENSION:
            seen.setdefault(ch, None)
    return tuple(seen)


def split_segments(text: str) -> list[str]:
    """The parts a message is sent as. Escape pairs and surrogate pairs stay whole.

    >>> [len(p) for p in split_segments("a" * 200)]
    [153, 47]
    >>> split_segments("")
    ['']
    """
    encoding = "UCS-2" if ucs2_forcing(text) else "GSM-7"
    single, multi = (GSM7_SINGLE, GSM7_MULTI) if encoding == "GSM-7" else (UCS2_SINGLE, UCS2_MULTI)
    if sum(char_units(ch, encoding) for ch in text) <= single:
        return [text]
    parts: list[str] = []
    current: list[str] = []
    used = 0
    for ch in text:
        size = char_units(ch, encoding)
        if used + size > multi:
            parts.append("".join(current))
            current, used = [], 0
        current.append(ch)
        used += size
    parts.append("".join(current))
    return parts


def count_segments(text: str) -> SegmentCount:
    offending = ucs2_forcing(text)
    encoding = "UCS-2" if offending else "GSM-7"
    units = sum(char_units(ch, encoding) for ch in text)
    return SegmentCount(encoding, units, len(split_segments(text)), offending)
