import csv
from pathlib import Path
from typing import Callable

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings, strategies as st
from sqlmodel import Session, select

from orchestrator.consent.service import suppress
from orchestrator.contacts.service import RowError, checked_email, import_contacts, write_rejects
from orchestrator.errors import InputError
from orchestrator.runtime import Runtime
from orchestrator.store.models import ConsentEvent, Contact
from tests.support.factories import person


def contacts(rt: Runtime) -> list[Contact]:
    with Session(rt.engine) as s:
        return list(s.exec(select(Contact).order_by(Contact.external_id)))


def test_valid_rows_are_imported_normalised(rt: Runtime, write_csv: Callable[..., Path]) -> None:
    path = write_csv([person(1, phone="06 12 34 00 01", email="Person1@Example.ORG", loyalty="gold")])
    report = import_contacts(rt, path)
    assert (report.created, report.rejects) == (1, [])
    (c,) = contacts(rt)
    assert c.phone == "+33612340001"
    assert c.email == "Person1@example.org"
    assert c.attributes == {"loyalty": "gold"}
    assert c.email_key and c.phone_key and c.email_key != c.phone_key


def test_bad_rows_are_rejected_with_line_and_field(rt: Runtime, write_csv: Callable[..., Path], tmp_path: Path) -> None:
    path = write_csv([
        person(1),
        person(2, email="not-an-email"),
        person(3, phone="12"),
        person(4, kind="friend"),
        person(5, email="", phone=""),
        person(6, last_activity_at="last tuesday"),
        person(7, timezone="Mars/Olympus"),
        person(8, b2b="maybe"),
        person(9, external_id=""),
    ])
    report = import_contacts(rt, path)
    assert report.created == 3  # rows 3 and 4 keep their valid address (issue 16)
    assert [(r.line, r.field) for r in report.rejects] == [
        (5, "kind"), (6, "email"), (7, "last_activity_at"),
        (8, "timezone"), (9, "b2b"), (10, "external_id"),
    ]
    assert [(r.line, r.field, r.level) for r in report.warnings] == [(3, "email", "warning"), (4, "phone", "warning")]
    out = tmp_path / "rejects.csv"
    write_rejects(out, report)
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert rows[0]["line"] == "3" and rows[0]["field"] == "email" and rows[0]["email"] == "not-an-email"
    assert rows[0]["level"] == "warning" and rows[2]["level"] == "error"
    assert len(rows) == 8


def test_strict_refuses_the_whole_file(rt: Runtime, write_csv: Callable[..., Path]) -> None:
    path = write_csv([person(1), person(2, email="nope", phone="")])
    with pytest.raises(InputError, match="line 3: email"):
        import_contacts(rt, path, strict=True)
    assert contacts(rt) == []


def test_reimport_updates_and_never_duplicates_or_touches_consent(rt: Runtime, write_csv: Callable[..., Path]) -> None:
    import_contacts(rt, write_csv([person(1), person(2)]))
    report = import_contacts(rt, write_csv([person(1, first_name="Nouveau"), person(2), person(2, locale="en")], name="b.csv"))
    assert (report.created, report.updated, report.merged_duplicates) == (0, 2, 1)
    rows = contacts(rt)
    assert len(rows) == 2
    assert rows[0].first_name == "Nouveau" and rows[1].locale == "en"
    with Session(rt.engine) as s:
        assert list(s.exec(select(ConsentEvent))) == []


def test_suppressed_people_are_refused(rt: Runtime, write_csv: Callable[..., Path]) -> None:
    with Session(rt.engine) as s:
        suppress(s, rt.key_for("person1@example.org"), "email", "unsubscribed", "test", rt.clock.now())
        s.commit()
    report = import_contacts(rt, write_csv([person(1, phone=""), person(2)]))
    assert report.created == 1
    assert report.rejects[0].line == 2 and "suppression list" in report.rejects[0].reason


def test_missing_columns_and_unreadable_files(rt: Runtime, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("name,mail\nx,y\n", encoding="utf-8")
    with pytest.raises(InputError, match="line 1: header must name the columns"):
        import_contacts(rt, bad)
    with pytest.raises(InputError, match="cannot read"):
        import_contacts(rt, tmp_path / "missing.csv")
    mixed = tmp_path / "mixed.csv"  # UTF-8 on line 2, Windows-1252 on line 3: refused, naming line 3
    mixed.write_bytes("external_id,kind,email\nC-1,customer,zoé@example.org\n".encode()
                      + "C-2,customer,h\xe9@example.org\n".encode("cp1252"))
    with pytest.raises(InputError, match="line 3: this line is not UTF-8 while earlier ones are"):
        import_contacts(rt, mixed)


_LOCAL_CHARS = "abcXYZ09._+-!#'é\" "
_DOMAINS = ["example.org", "Exemple.FR", "sub.example.co.uk", "localhost", "foo.test", "x.123", "-bad.org",
            "bad-.org", "xn--bcher-kva.example", "bücher.example", "a..b.org", "", "exa mple.org",
            "x" * 63 + ".org", "x" * 64 + ".org", ("y" * 60 + ".") * 4 + "org"]


@given(local=st.text(alphabet=_LOCAL_CHARS, min_size=0, max_size=70), domain=st.sampled_from(_DOMAINS))
@settings(max_examples=400, deadline=None)
def test_fast_email_check_agrees_with_email_validator(local: str, domain: str) -> None:
    """The import's fast path accepts and normalises exactly what email_validator does."""
    address = f"{local}@{domain}"
    try:
        expected: str | None = validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError:
        expected = None
    try:
        got: str | None = checked_email(address)
    except RowError as err:
        assert err.field == "email"
        got = None
    assert got == expected
