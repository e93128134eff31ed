"""The contacts file a French marketer exports from Excel (issue 16 §3) and the import's strictness
(issue 15): encodings, delimiters, French headers and values, --map, warnings, line numbers."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from sqlmodel import Session, select

from orchestrator.contacts.service import FileProblem, import_contacts, parse_mapping, write_rejects
from orchestrator.errors import InputError
from orchestrator.runtime import Runtime
from orchestrator.store.models import Contact

EXCEL_FR = (
    "Identifiant;Type;Courriel;Téléphone;Prénom;Langue;Fuseau horaire;Dernière activité;Professionnel;Fidélité\r\n"
    "C-1;Client;zoe@exemple.fr;06 12 34 56 78;Zoé;Français;Europe/Paris;31/03/2024;oui;or\r\n"
    "C-2;prospect;;07 98 76 54 32;Hélène;;;05/01/2023;non;\r\n"
    "C-3;CLIENT;rene@exemple.fr;;René;anglais;;2024-02-29;Faux;argent\r\n"
)


def stored(rt: Runtime) -> dict[str, Contact]:
    with Session(rt.engine) as s:
        return {c.external_id: c for c in s.exec(select(Contact))}


def test_a_windows_1252_semicolon_file_with_french_headers_and_values(rt: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "export excel.csv"
    path.write_bytes(EXCEL_FR.encode("cp1252"))
    report = import_contacts(rt, path)
    assert (report.created, report.rejects, report.warnings) == (3, [], [])
    assert "read as Windows-1252, ';'-separated" in report.summary()
    people = stored(rt)
    zoe, helene, rene = people["C-1"], people["C-2"], people["C-3"]
    assert (zoe.kind, zoe.email, zoe.phone, zoe.first_name, zoe.locale) == (
        "customer", "zoe@exemple.fr", "+33612345678", "Zoé", "fr")
    assert (str(zoe.last_activity_at), zoe.b2b, zoe.attributes) == ("2024-03-31", True, {"Fidélité": "or"})
    assert (helene.kind, helene.phone, str(helene.last_activity_at), helene.b2b) == (
        "prospect", "+33798765432", "2023-01-05", False)
    assert (rene.locale, str(rene.last_activity_at), rene.b2b) == ("en", "2024-02-29", False)


@pytest.mark.parametrize(("encoding", "delimiter", "label"), [
    ("utf-8-sig", "\t", "UTF-8 (BOM), tab-separated"), ("utf-16", "\t", "UTF-16, tab-separated"),
    ("utf-8", ",", "UTF-8, ','-separated"),
])
def test_encodings_and_delimiters(rt: Runtime, tmp_path: Path, encoding: str, delimiter: str, label: str) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes(EXCEL_FR.replace(";", delimiter).encode(encoding))
    report = import_contacts(rt, path)
    assert report.created == 3 and report.format is not None and report.format.describe() == label
    assert stored(rt)["C-1"].first_name == "Zoé"


def test_map_names_columns_the_header_calls_otherwise(rt: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("N° adhérent,Statut,Adresse perso,Type\nA-1,prospect,a@example.org,VIP\n", encoding="utf-8")
    with pytest.raises(FileProblem, match="line 1: header must name the columns") as refused:
        import_contacts(rt, path)
    assert "found: N° adhérent, Statut, Adresse perso, Type" in str(refused.value)
    mapping = parse_mapping(["external_id=n° ADHÉRENT", "kind=Statut", "email=Adresse perso"])
    report = import_contacts(rt, path, mapping=mapping)
    assert report.created == 1
    person = stored(rt)["A-1"]
    # "Type" would be kind's alias, but kind is mapped: it stays an attribute
    assert (person.kind, person.email, person.attributes) == ("prospect", "a@example.org", {"Type": "VIP"})
    with pytest.raises(FileProblem, match="--map email=Courriel: the file has no column Courriel"):
        import_contacts(rt, path, mapping={**mapping, "email": "Courriel"})
    with pytest.raises(InputError, match="unknown field 'mail'"):
        parse_mapping(["mail=Adresse perso"])


def test_an_exact_column_name_wins_over_an_alias(rt: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("external_id,kind,email,type\nC-1,customer,a@example.org,gold\n", encoding="utf-8")
    import_contacts(rt, path)
    assert stored(rt)["C-1"].attributes == {"type": "gold"}
    twice = tmp_path / "twice.csv"
    twice.write_text("external_id,kind,courriel,e-mail\nC-1,customer,a@example.org,b@example.org\n", encoding="utf-8")
    with pytest.raises(FileProblem, match="line 1: columns 3 and 4 both give email"):
        import_contacts(rt, twice)


def test_an_invalid_address_next_to_a_valid_one_is_a_warning(rt: Runtime, tmp_path: Path) -> None:
    first = tmp_path / "first.csv"
    first.write_text("external_id,kind,email,phone\nC-1,customer,good@example.org,\n", encoding="utf-8")
    import_contacts(rt, first)
    path = tmp_path / "c.csv"
    path.write_text("external_id,kind,email,phone\n"
                    "C-1,customer,good@@example,06 12 34 56 78\n"
                    "C-2,customer,c2@example.org,12\n"
                    "C-3,customer,bad@@example,12\n", encoding="utf-8")
    report = import_contacts(rt, path)
    assert (report.created, report.updated) == (1, 1)
    assert [(w.line, w.field, w.level) for w in report.warnings] == [(2, "email", "warning"), (3, "phone", "warning")]
    assert [(r.line, r.field) for r in report.rejects] == [(4, "email")]
    people = stored(rt)
    # the stored good email is not cleared by the invalid one; the new phone is added
    assert (people["C-1"].email, people["C-1"].phone) == ("good@example.org", "+33612345678")
    assert people["C-1"].email_key is not None
    assert (people["C-2"].email, people["C-2"].phone) == ("c2@example.org", None)
    out = tmp_path / "rejects.csv"
    write_rejects(out, report)
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [(r["line"], r["field"], r["level"]) for r in rows] == [
        ("2", "email", "warning"), ("3", "phone", "warning"), ("4", "email", "error")]
    assert "2 imported with a warning" in report.summary()


def test_an_unterminated_quote_refuses_the_file_at_its_line(rt: Runtime, tmp_path: Path) -> None:
    """Issue 15: the quote swallowed the next row into a first name ("1 rows read")."""
    path = tmp_path / "c.csv"
    path.write_text('external_id,kind,email,first_name\nC-1,customer,a@example.org,Ann\n'
                    'C-2,customer,b@example.org,"Bob\nC-3,customer,c@example.org,Cy\n', encoding="utf-8")
    with pytest.raises(FileProblem, match="line 3: a quote") as refused:
        import_contacts(rt, path)
    assert refused.value.line == 3
    assert stored(rt) == {}  # nothing half-imported


def test_row_problems_are_rejects_with_the_right_line(rt: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text(
        "external_id,kind,email,first_name,note\n"
        "C-1,friend,a@example.org,Ann,\n"                       # line 2: the first data line
        'C-2,customer,b@example.org,Bob,"two\nlines"\n'         # lines 3-4: a quoted value may span lines
        "C-3,customer,c@exa\x00mple.org,Cy,\n"                 # line 5: NUL
        'C-4,customer,d@example.org,"Di"x,\n'                  # line 6: broken quotes
        'C-5,customer,e@example.org,"Ed\nC-6,customer,f@example.org,Fy",\n'  # lines 7-8: a quote closed late
        "C-7,customer,g@example.org,Gus,,surplus\n"             # line 9
        ",,,,\n\n"                                                 # blank rows: skipped
        "C-8,customer,h@example.org,Hal,\n", encoding="utf-8")
    report = import_contacts(rt, path)
    assert [(r.line, r.field) for r in report.rejects] == [
        (2, "kind"), (5, "email"), (6, "row"), (7, "first_name"), (9, "row")]
    assert "NUL" in report.rejects[1].reason and "lines 7 to 8" in report.rejects[3].reason
    assert (report.read, report.created) == (7, 2)
    assert stored(rt)["C-2"].attributes == {"note": "two\nlines"}


def test_duplicate_header_columns_are_refused(rt: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("external_id,kind,email,Note,note\nC-1,customer,a@example.org,x,y\n", encoding="utf-8")
    with pytest.raises(FileProblem, match="line 1: the column 'note' appears twice \\(columns 4 and 5\\)"):
        import_contacts(rt, path)


def test_undecodable_bytes_are_named_by_line(rt: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes(b"external_id,kind,email\nC-1,customer,a@example.org\nC-2,customer,b\x81@example.org\n")
    with pytest.raises(FileProblem, match="line 3: neither UTF-8 nor Windows-1252"):
        import_contacts(rt, path)
