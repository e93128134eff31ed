"""SMS encoding and segment count [S6].

GSM 03.38 basic alphabet (1 septet) and extension table (escape + char = 2 septets). Anything else
forces UCS-2 for the whole message. GSM-7: 160 septets in one part, 153 per part when concatenated.
UCS-2: 70 / 67 UTF-16 code units.

>>> count_segments("Bonjour, répondez STOP au 36111").encoding
'GSM-7'
>>> count_segments("Ça va ? ç").ucs2_chars
('ç',)
>>> count_segments("a" * 161).segments
2
"""

from __future__ import annotations

from dataclasses import dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")


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
            return 160 if self.segments <= 1 else 153
        return 70 if self.segments <= 1 else 67


def count_segments(text: str) -> SegmentCount:
    offending: list[str] = []
    septets = 0
    for ch in text:
        if ch in GSM7_BASIC:
            septets += 1
        elif ch in GSM7_EXTENSION:
            septets += 2
        elif ch not in offending:
            offending.append(ch)
    if not offending:
        return SegmentCount("GSM-7", septets, _parts(septets, 160, 153), ())
    units = len(text.encode("utf-16-le")) // 2
    return SegmentCount("UCS-2", units, _parts(units, 70, 67), tuple(offending))


def _parts(units: int, single: int, multi: int) -> int:
    if units == 0:
        return 1
    if units <= single:
        return 1
    return -(-units // multi)
