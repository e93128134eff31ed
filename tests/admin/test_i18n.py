"""Every console string shown through ``_()`` has a French translation."""

from __future__ import annotations

import re
from pathlib import Path

from preference_centre.admin.i18n import catalog

ROOT = Path(__file__).resolve().parents[2]


def test_every_console_string_is_translated_to_french() -> None:
    strings: set[str] = set()
    for path in (ROOT / "templates" / "admin").glob("*.html"):
        strings |= set(re.findall(r"_\('((?:[^'\\]|\\.)*)'", path.read_text(encoding="utf-8")))
    for path in (ROOT / "preference_centre" / "admin").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        strings |= set(re.findall(r'\b_\("((?:[^"\\]|\\.)*)"', text))
        # messages handed to templates, which translate them (adjacent literals are one string)
        for literals in re.findall(r'(?:error\(request, \d+, |problem=|message=|question=|consequence=|button=)'
                                   r'\(?((?:"[^"]*"\s*)+)', text):
            strings.add("".join(re.findall(r'"([^"]*)"', literals)))
    strings.discard("Hello %(name)s")  # the doctest example in i18n.py
    assert len(strings) > 150
    fr = catalog("fr")
    assert sorted(s for s in strings if s not in fr) == []
