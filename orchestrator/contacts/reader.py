"""Reading a contacts file the way spreadsheets write it, one row at a time (memory stays flat).

* Encoding: a byte-order mark says UTF-8 or UTF-16 (Excel's "Unicode text"); otherwise the file is
  UTF-8 when every byte of it is, else Windows-1252 (Excel's "CSV (separator: semicolon)" on a French
  Windows). A file mixing both is refused at the first line that is not UTF-8, since guessing would
  garble names.
* Delimiter: the one of ``,`` ``;`` tab the header row uses most (outside quotes); CRLF, LF or CR.
* Header: columns resolved by :func:`orchestrator.contacts.columns.resolve_header` (aliases, ``--map``).
* Every row carries the number of the line it starts on (a quoted value may span lines). A row whose
  quotes are broken is yielded marked so that it is rejected with its line; a quote never closed
  refuses the file (every later row would be swallowed into one value).
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from orchestrator.contacts.columns import FileProblem, resolve_header
from orchestrator.domain.csv_safe import restore_cell
from orchestrator.errors import InputError

#: marks of a raw row (never a header: header cells are stripped text without these underscores)
EXTRA, BROKEN_QUOTES, END_LINE = "__extra__", "__quote__", "__end__"
DELIMITERS = {",": "','", ";": "';'", "\t": "tab"}
_CHUNK = 1 << 20
_CP1252_UNDEFINED = re.compile(rb"[\x81\x8d\x8f\x90\x9d]")


@dataclass(frozen=True)
class FileFormat:
    #: the Python codec the file is read with
    encoding: str
    #: as said to the user: UTF-8, UTF-8 (BOM), UTF-16, Windows-1252
    label: str
    delimiter: str = ","

    @property
    def delimiter_name(self) -> str:
        return DELIMITERS[self.delimiter]

    def describe(self) -> str:
        return f"{self.label}, {self.delimiter_name}-separated"


def detect_encoding(path: Path) -> FileFormat:
    """The file's encoding (see the module's docstring); FileProblem naming the line that cannot be read."""
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    with fh:
        head = fh.read(4)
        if head.startswith(codecs.BOM_UTF8):
            return FileFormat("utf-8-sig", "UTF-8 (BOM)")
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return FileFormat("utf-16", "UTF-16")
        fh.seek(0)
        bad_line, non_ascii_before = _first_non_utf8_line(fh)
    if bad_line is None:
        return FileFormat("utf-8", "UTF-8")
    if non_ascii_before:
        raise FileProblem(str(path), bad_line, "this line is not UTF-8 while earlier ones are: the file mixes "
                          "encodings; save it again as CSV UTF-8")
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, 1):
            if _CP1252_UNDEFINED.search(raw):
                raise FileProblem(str(path), number, "neither UTF-8 nor Windows-1252 text; save the file as "
                                  "CSV UTF-8")
    return FileFormat("cp1252", "Windows-1252")


def _first_non_utf8_line(fh: BinaryIO) -> tuple[int | None, bool]:
    """(line of the first byte that is not UTF-8 or None, whether non-ASCII UTF-8 came before it)."""
    carry, lines, non_ascii = b"", 0, False
    while True:
        chunk = fh.read(_CHUNK)
        data = carry + chunk
        if not data:
            return None, non_ascii
        try:
            data.decode("utf-8")
            good, carry = data, b""
        except UnicodeDecodeError as exc:
            if chunk and exc.reason == "unexpected end of data" and exc.start >= len(data) - 3:
                good, carry = data[:exc.start], data[exc.start:]  # a character cut by the chunk
            else:
                before = data[:exc.start]
                return lines + before.count(b"\n") + 1, non_ascii or not before.isascii()
        lines += good.count(b"\n")
        non_ascii = non_ascii or not good.isascii()
        if not chunk:
            return None, non_ascii


def _delimiter(first_line: str) -> str:
    """The delimiter the header row uses most, outside quotes (a comma when it uses none)."""
    outside = re.sub(r'"[^"]*"', "", first_line)
    counts = {d: outside.count(d) for d in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


class ContactsFile:
    """A contacts file: its format, its header's keys (fields or attribute names) and its rows."""

    def __init__(self, path: Path, mapping: Mapping[str, str] | None = None) -> None:
        self.path = path
        self.mapping = dict(mapping or {})
        encoding = detect_encoding(path)
        with path.open(encoding=encoding.encoding, newline="") as fh:
            first = fh.readline()
        self.format = FileFormat(encoding.encoding, encoding.label, _delimiter(first))

    def rows(self) -> Iterator[tuple[int, dict[str, str]]]:
        """(line the row starts on, {key: cell}) of each data row, blank rows left out."""
        where = str(self.path)
        with self.path.open(encoding=self.format.encoding, newline="") as fh:
            reader = csv.reader(fh, delimiter=self.format.delimiter, strict=True)
            keys: list[str | None] | None = None
            end = 0
            while True:
                start = end + 1
                try:
                    cells = next(reader)
                except StopIteration:
                    break
                except csv.Error as exc:
                    if "unexpected end of data" in str(exc):
                        raise FileProblem(where, start, "a quote (\") opened on this line is never closed, so "
                                          "every line after it would be read as one value; close or remove "
                                          "it") from None
                    end = reader.line_num
                    if keys is None:
                        raise FileProblem(where, start, "the header row has a misplaced quote (\")") from None
                    yield start, {BROKEN_QUOTES: "1"}
                    continue
                end = reader.line_num
                if not any(c.strip() for c in cells):
                    continue  # a blank line, or one of the empty rows spreadsheets leave at the end
                if keys is None:
                    keys = resolve_header(cells, self.mapping, where)
                    continue
                # a cell our own export neutralised ('=…) reads back as it was
                row = {key: restore_cell(value) for key, value in zip(keys, cells, strict=False)
                       if key is not None}
                if len(cells) > len(keys) and any(c.strip() for c in cells[len(keys):]):
                    row[EXTRA] = "1"
                if end > start:
                    row[END_LINE] = str(end)
                yield start, row
            if keys is None:
                raise FileProblem(where, 1, "the file is empty (a header row is expected)")

    def sample(self, rows: int = 5) -> tuple[list[str], list[list[str]]]:
        """The header cells and the cells of the first ``rows`` rows, unresolved (the console's mapping
        step shows them)."""
        with self.path.open(encoding=self.format.encoding, newline="") as fh:
            reader = csv.reader(fh, delimiter=self.format.delimiter)
            read = [cells for cells, _ in zip(reader, range(rows + 1), strict=False)]
        return (read[0] if read else []), read[1:]


def read_rows(path: Path, mapping: Mapping[str, str] | None = None) -> Iterator[tuple[int, dict[str, str]]]:
    """The rows of ``path`` (see :class:`ContactsFile`)."""
    return ContactsFile(path, mapping).rows()
