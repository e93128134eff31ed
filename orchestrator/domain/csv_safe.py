"""The one CSV writer of the product: every cell is safe to open in a spreadsheet.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read as a formula
by Excel, LibreOffice and Google Sheets (``=HYPERLINK(...)`` in a recipient's User-Agent becomes a
link in the auditor's sheet). Following OWASP's CSV injection guidance, such a cell is written with a
leading apostrophe, which spreadsheets show as text. Plain numbers (``-3.5``, ``+2``) and E.164
phone numbers (``+33612345678``) are not formulas and stay as they are, so an export re-imports;
:func:`restore_cell` undoes the apostrophe for a reader that wants the value back.

Pure: it writes to the text stream it is given and opens nothing (``newline=""`` is the caller's).

>>> safe_cell("=HYPERLINK(\\"http://x\\")")
'\\'=HYPERLINK("http://x")'
>>> safe_cell("+33612345678"), safe_cell("-3.5"), safe_cell(None), safe_cell(7)
('+33612345678', '-3.5', '', '7')
>>> restore_cell(safe_cell("@SUM(A1)"))
'@SUM(A1)'
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

#: first characters a spreadsheet reads as the start of a formula (OWASP)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
#: what is put in front of such a cell
ESCAPE = "'"
#: a plain decimal number, signed or not (E.164 numbers are among them): never a formula
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


class TextSink(Protocol):
    def write(self, s: str, /) -> int: ...


def safe_cell(value: object) -> str:
    """The text of one cell: ``None`` → ``""``, a would-be formula → prefixed with an apostrophe."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(text):
        return ESCAPE + text
    return text


def restore_cell(text: str) -> str:
    """The value :func:`safe_cell` was given (for readers of our own exports).

    >>> restore_cell("'=1+1"), restore_cell("'quoted"), restore_cell("-2")
    ('=1+1', "'quoted", '-2')
    """
    if text.startswith(ESCAPE) and text[1:].startswith(FORMULA_STARTS):
        return text[1:]
    return text


def write_csv(fh: TextSink, header: Sequence[str],
              rows: Iterable[Sequence[object] | Mapping[str, object]], *, lineterminator: str = "\r\n",
              with_header: bool = True) -> int:
    """Write ``header`` then ``rows`` (sequences in header order, or mappings by header name, missing
    names empty) to ``fh``, every cell through :func:`safe_cell`; returns the number of rows.
    ``with_header=False`` writes the rows only (the next part of a file written in parts).

    >>> import io; out = io.StringIO()
    >>> write_csv(out, ["name", "ua"], [["Ann", "=cmd|' /C calc'!A0"], {"name": "-1"}], lineterminator="\\n")
    2
    >>> print(out.getvalue(), end="")
    name,ua
    Ann,'=cmd|' /C calc'!A0
    -1,
    """
    writer = csv.writer(fh, lineterminator=lineterminator)
    if with_header:
        writer.writerow([safe_cell(h) for h in header])
    n = 0
    for row in rows:
        if isinstance(row, Mapping):
            extra = set(row) - set(header)
            if extra:
                raise ValueError(f"fields not in the header: {', '.join(sorted(extra))}")
            cells: Iterable[object] = (row.get(h) for h in header)
        else:
            cells = row
        writer.writerow([safe_cell(c) for c in cells])
        n += 1
    return n
