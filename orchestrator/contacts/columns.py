"""The contacts file's columns: one table of the product's fields and the header names they go by.

A header cell names a field when it matches one of the field's aliases once both are folded (case,
accents, spaces, dashes and underscores ignored: ``Prénom``, ``PRENOM`` and ``prénom`` are one name).
``--map FIELD=COLUMN`` names a column for a field when the file's header says something else. Columns
naming no field are kept as the contact's attributes, under their header text.

To add a column to the import, append a :class:`Column` to :data:`CONTACT_COLUMNS` (its values then
reach ``orchestrator.contacts.rows.parse_row`` under the column's ``name``).

Pure: no database (the import's worker processes import it).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from orchestrator.errors import InputError


@dataclass(frozen=True)
class Column:
    #: the field's name: the header of the SPEC §10 format, and the key parse_row reads
    name: str
    #: other header names meaning this field (French first), folded when compared
    aliases: tuple[str, ...] = ()


CONTACT_COLUMNS: tuple[Column, ...] = (
    Column("external_id", ("identifiant", "id", "identifiant client", "id client", "numero client", "n client",
                           "reference client", "ref client", "customer id", "contact id")),
    Column("kind", ("type", "type de contact", "categorie", "contact type")),
    Column("email", ("courriel", "e-mail", "mail", "adresse email", "adresse e-mail", "adresse mail",
                     "adresse electronique", "email address")),
    Column("phone", ("telephone", "portable", "mobile", "tel", "gsm", "numero de telephone", "telephone portable",
                     "telephone mobile", "numero de portable", "phone number", "mobile phone", "cell phone")),
    Column("first_name", ("prenom", "firstname", "first name", "given name")),
    Column("locale", ("langue", "language", "lang", "langue preferee")),
    Column("timezone", ("fuseau", "fuseau horaire", "time zone", "tz")),
    Column("last_activity_at", ("derniere activite", "date de derniere activite", "date derniere activite",
                                "last activity", "last activity date")),
    Column("b2b", ("professionnel", "pro", "client professionnel", "business")),
)

#: the fields, in the order of the SPEC §10 header
COLUMNS: tuple[str, ...] = tuple(c.name for c in CONTACT_COLUMNS)
#: the fields a file must give (and one of email/phone)
REQUIRED = ("external_id", "kind")


def fold(text: str) -> str:
    """A header name as compared: no accents, lower case, words separated by one space.

    >>> fold("  Dernière_Activité "), fold("E-MAIL"), fold("Téléphone")
    ('derniere activite', 'e mail', 'telephone')
    """
    plain = "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))
    return " ".join(re.split(r"[^0-9a-z]+", plain.casefold())).strip()


def _alias_table() -> dict[str, str]:
    table: dict[str, str] = {}
    for column in CONTACT_COLUMNS:
        for name in (column.name, *column.aliases):
            table.setdefault(fold(name), column.name)
    return table


ALIASES: dict[str, str] = _alias_table()


class FileProblem(InputError):
    """The file as a whole cannot be imported: ``message`` (an English template with ``%(name)s``
    placeholders, translated by the console) filled with ``params``, at ``line`` of ``where``."""

    def __init__(self, where: str, line: int, message: str, **params: object) -> None:
        self.where, self.line, self.message, self.params = where, line, message, params
        super().__init__(f"{where}: line {line}: {message % params}")


class HeaderProblem(FileProblem):
    """The header row does not name the columns as needed (the console then offers its mapping step)."""

    def __init__(self, where: str, message: str, **params: object) -> None:
        super().__init__(where, 1, message, **params)


def parse_mapping(pairs: Sequence[str]) -> dict[str, str]:
    """``FIELD=COLUMN`` options → {field: column}; InputError naming the bad one.

    >>> parse_mapping(["email=Adresse perso", "external_id = N° adhérent"])
    {'email': 'Adresse perso', 'external_id': 'N° adhérent'}
    """
    mapping: dict[str, str] = {}
    for pair in pairs:
        field_name, eq, column = pair.partition("=")
        field_name, column = field_name.strip(), column.strip()
        if not eq or not column:
            raise InputError(f"--map {pair!r}: expected FIELD=COLUMN, e.g. email=Adresse perso")
        if field_name not in COLUMNS:
            raise InputError(f"--map {pair!r}: unknown field {field_name!r} (fields: {', '.join(COLUMNS)})")
        mapping[field_name] = column
    return mapping


def resolve_header(header: Sequence[str], mapping: Mapping[str, str], where: str) -> list[str | None]:
    """The key of each header cell: a field name, the header text itself (an attribute), or None (an
    empty header cell: ignored). FileProblem for duplicate columns, a field given twice, a mapped
    column that is not there, or missing required fields."""
    folded = [fold(h) for h in header]
    seen: dict[str, int] = {}
    for number, name in enumerate(folded, 1):
        if not name:
            continue
        if name in seen:
            raise FileProblem(where, 1, "the column %(name)s appears twice (columns %(first)s and %(second)s): "
                              "rename or remove one", name=repr(header[number - 1].strip()), first=seen[name],
                              second=number)
        seen[name] = number
    keys: list[str | None] = [h.strip() or None for h in header]
    mapped: dict[int, str] = {}
    exact_at: set[int] = set()
    for mapped_field, column in mapping.items():
        index = seen.get(fold(column))
        if index is None:
            raise HeaderProblem(where, "--map %(field)s=%(column)s: the file has no column %(column)s "
                                "(its columns: %(columns)s)", field=mapped_field, column=column,
                                columns=", ".join(h.strip() for h in header if h.strip()))
        mapped[index - 1] = mapped_field
    given: dict[str, int] = {field_name: index for index, field_name in mapped.items()}
    # a field's own name first, then its aliases: a file with ``kind`` keeps its ``type`` as an attribute
    for exact in (True, False):
        for index, name in enumerate(folded):
            field_name = None if index in mapped else ALIASES.get(name)
            if field_name is None or field_name in mapping or exact != (name == fold(field_name)):
                continue
            if field_name in given:
                if not exact and given[field_name] in exact_at:
                    continue
                raise HeaderProblem(where, "columns %(first)s and %(second)s both give %(field)s: keep one, "
                                    "or choose with --map %(field)s=COLUMN", first=given[field_name] + 1,
                                    second=index + 1, field=field_name)
            given[field_name] = index
            if exact:
                exact_at.add(index)
    for index, key in enumerate(keys):
        if key is not None and index not in given.values() and key in COLUMNS:
            keys[index] = f"{key} ({index + 1})"  # an attribute never takes a field's name
    for field_name, index in given.items():
        keys[index] = field_name
    missing = [f for f in REQUIRED if f not in given] + ([] if {"email", "phone"} & set(given) else ["email/phone"])
    if missing:
        raise HeaderProblem(where, "header must name the columns %(columns)s (missing: %(missing)s; "
                            "found: %(found)s)", columns=", ".join(COLUMNS), missing=", ".join(missing),
                            found=", ".join(h.strip() for h in header if h.strip()) or "-")
    return keys


def detected(header: Sequence[str]) -> dict[str, str]:
    """{field: header cell} as the aliases read ``header`` (what the console's mapping step proposes).

    >>> detected(["Courriel", "Adhérent", "Type", "kind"])
    {'kind': 'kind', 'email': 'Courriel'}
    """
    found: dict[str, str] = {}
    for exact in (True, False):
        for cell in header:
            field_name = ALIASES.get(fold(cell))
            if field_name and field_name not in found and exact == (fold(cell) == fold(field_name)):
                found[field_name] = cell.strip()
    return {c: found[c] for c in COLUMNS if c in found}
