"""What people can choose besides channels (issue 18 §1–§2): ``[[topics]]`` and named ``[[partners]]``.

Two top-level arrays of tables of the config file, checked when the config is loaded like every other
setting (one line naming the entry and the field)::

    [[topics]]
    id = "news"
    fr = "Nouveautés"
    en = "News"

    [[partners]]
    id = "transport-express"
    name = "Transport Express SA"
    purpose_fr = "vous proposer ses offres de livraison"
    purpose_en = "offer you its delivery services"
    privacy_url = "https://transport-express.example/privacy"

Environment: ``RECONSENT_TOPICS`` and ``RECONSENT_PARTNERS``, each a JSON list of objects with the
same keys, replace the file's list. Each choice is its own ledger purpose: ``topic:<id>`` and
``partner:<id>`` (:mod:`orchestrator.consent.choices`). The partner list has a version
(:func:`partners_version`): a short hash of the ordered ids, names, purposes and privacy URLs, stored
with the wording of every answer given while that list was shown.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import ConfigError

#: the languages the product's pages ship in (preference_centre.i18n.SUPPORTED says the same)
LOCALES = ("fr", "en")
ID_PATTERN = re.compile(r"^[a-z0-9_-]{1,40}$")
TOPICS_DOC = ("`[[topics]]` tables: `id` (^[a-z0-9_-]{1,40}$, unique) and a label per language (`fr`, `en`). "
              "The page offers each topic as a checkbox; ledger purpose `topic:<id>`. "
              "Env: RECONSENT_TOPICS, a JSON list of objects")
PARTNERS_DOC = ("`[[partners]]` tables: `id` (^[a-z0-9_-]{1,40}$, unique), `name`, `purpose_fr`, `purpose_en` "
                "(what the partner does with the details) and `privacy_url` (https). The page lists them by name, "
                "one checkbox each plus \"all listed partners\"; ledger purpose `partner:<id>`. "
                "Env: RECONSENT_PARTNERS, a JSON list of objects")


@dataclass(frozen=True)
class Topic:
    """One ``[[topics]]`` table: an id and its label per language."""

    id: str
    labels: tuple[tuple[str, str], ...]

    @property
    def purpose(self) -> str:
        return f"topic:{self.id}"

    def label(self, lang: str) -> str:
        found = dict(self.labels)
        return found.get(lang) or found[LOCALES[0]]


@dataclass(frozen=True)
class Partner:
    """One ``[[partners]]`` table: who, for what (per language), and where their privacy policy is."""

    id: str
    name: str
    purposes: tuple[tuple[str, str], ...]
    privacy_url: str

    @property
    def purpose(self) -> str:
        return f"partner:{self.id}"

    def purpose_text(self, lang: str) -> str:
        found = dict(self.purposes)
        return found.get(lang) or found[LOCALES[0]]


def partners_version(partners: tuple[Partner, ...] | list[Partner]) -> str:
    """A short hash of the ordered partner list: any change of id, name, purpose or privacy URL gives a
    new version ("" when there are no partners).

    >>> p = Partner("a", "A SA", (("fr", "livrer"), ("en", "deliver")), "https://a.example/p")
    >>> partners_version([]), len(partners_version([p])), partners_version([p]) == partners_version([p])
    ('', 8, True)
    """
    if not partners:
        return ""
    text = json.dumps([[p.id, p.name, list(p.purposes), p.privacy_url] for p in partners], ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def read_choices(data: MutableMapping[str, Any], env: Mapping[str, str], where: str) -> tuple[list[Topic],
                                                                                              list[Partner]]:
    """Take ``topics`` and ``partners`` out of the file's top level (``data``), the environment winning."""
    raw_topics, raw_partners = data.pop("topics", []), data.pop("partners", [])
    topics_where, partners_where = f"{where}: topics", f"{where}: partners"
    if "RECONSENT_TOPICS" in env:
        raw_topics, topics_where = _json(env["RECONSENT_TOPICS"], "environment variable RECONSENT_TOPICS"), \
            "environment variable RECONSENT_TOPICS"
    if "RECONSENT_PARTNERS" in env:
        raw_partners, partners_where = _json(env["RECONSENT_PARTNERS"], "environment variable RECONSENT_PARTNERS"), \
            "environment variable RECONSENT_PARTNERS"
    return topics(raw_topics, topics_where), partners(raw_partners, partners_where)


def _json(raw: str, where: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        raise ConfigError(f"{where}: expected a JSON list of objects") from None


def _entries(value: Any, where: str, table: str, keys: set[str]) -> list[tuple[str, Mapping[str, Any]]]:
    """Each entry with where it is (``topics[2] "news"``), its keys and id checked, ids unique."""
    if not isinstance(value, list):
        raise ConfigError(f"{where}: expected [[{table}]] tables, got {value!r}")
    seen: set[str] = set()
    out = []
    for n, item in enumerate(value, 1):
        here = f"{where}[{n}]"
        if not isinstance(item, Mapping):
            raise ConfigError(f"{here}: expected a table with {', '.join(sorted(keys))}")
        ident = item.get("id")
        if not isinstance(ident, str) or not ID_PATTERN.match(ident):
            raise ConfigError(f"{here}.id: expected 1 to 40 of a-z, 0-9, _ and -, got {ident!r}")
        here = f"{where}[{n}] \"{ident}\""
        if ident in seen:
            raise ConfigError(f"{here}.id: the id {ident!r} is used twice (ids must be unique)")
        seen.add(ident)
        unknown = sorted(set(item) - keys)
        if unknown:
            raise ConfigError(f"{here}: unknown setting {', '.join(unknown)} (expected {', '.join(sorted(keys))})")
        out.append((here, item))
    return out


def _text(item: Mapping[str, Any], key: str, here: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{here}.{key}: a non-empty text is required")
    return value.strip()


def topics(value: Any, where: str) -> list[Topic]:
    """``[[topics]]`` tables (or a list of objects from the environment)."""
    return [Topic(item["id"], tuple((lang, _text(item, lang, here)) for lang in LOCALES))
            for here, item in _entries(value, where, "topics", {"id", *LOCALES})]


def partners(value: Any, where: str) -> list[Partner]:
    """``[[partners]]`` tables (or a list of objects from the environment)."""
    keys = {"id", "name", "privacy_url", *(f"purpose_{lang}" for lang in LOCALES)}
    found = []
    for here, item in _entries(value, where, "partners", keys):
        url = item.get("privacy_url")
        if not isinstance(url, str) or not re.match(r"^https://[^\s/]+\.[^\s]+$", url):
            raise ConfigError(f"{here}.privacy_url: expected the https URL of the partner's privacy policy, "
                              f"got {url!r}")
        found.append(Partner(item["id"], _text(item, "name", here),
                             tuple((lang, _text(item, f"purpose_{lang}", here)) for lang in LOCALES), url))
    return found
