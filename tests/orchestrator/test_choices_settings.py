"""``[[topics]]`` and ``[[partners]]`` (issue 18): top-level arrays of tables, checked at load with one
line naming the entry and the field; a JSON list from the environment replaces the file's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.choices_settings import partners_version
from orchestrator.config import load_config, settings
from orchestrator.errors import ConfigError

GOOD = """
[[topics]]
id = "news"
fr = "Nouveautés"
en = "News"

[[partners]]
id = "transport-express"
name = "Transport Express SA"
purpose_fr = "vous proposer ses offres de livraison"
purpose_en = "offer you its delivery services"
privacy_url = "https://transport-express.example/confidentialite"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "reconsent.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_topics_and_partners_from_the_file(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD), env={})
    (topic,) = cfg.topics
    (partner,) = cfg.partners
    assert (topic.purpose, topic.label("fr"), topic.label("en")) == ("topic:news", "Nouveautés", "News")
    assert (partner.purpose, partner.name, partner.purpose_text("en")) == (
        "partner:transport-express", "Transport Express SA", "offer you its delivery services")
    assert len(partners_version(cfg.partners)) == 8
    assert not any(section in ("topics", "partners") for section, *_ in settings())  # not [section] keys


def test_shipped_default_has_none() -> None:
    cfg = load_config(None, env={})
    assert cfg.topics == [] and cfg.partners == []


def test_environment_json_replaces_the_file(tmp_path: Path) -> None:
    env = {"RECONSENT_TOPICS": json.dumps([{"id": "sales", "fr": "Soldes", "en": "Sales"}]),
           "RECONSENT_PARTNERS": "[]"}
    cfg = load_config(write(tmp_path, GOOD), env=env)
    assert [t.id for t in cfg.topics] == ["sales"] and cfg.partners == []
    with pytest.raises(ConfigError, match="^environment variable RECONSENT_TOPICS: expected a JSON list"):
        load_config(None, env={"RECONSENT_TOPICS": "news"})


@pytest.mark.parametrize(("extra", "message"), [
    ('[[topics]]\nid = "news"\nfr = "Autre"\nen = "Other"\n', r'topics\[2\] "news"\.id: the id \'news\' is used twice'),
    ('[[topics]]\nid = "Mes News"\nfr = "x"\nen = "y"\n', r"topics\[2\]\.id: expected 1 to 40 of a-z"),
    ('[[topics]]\nid = "promo"\nfr = "Promotions"\n', r'topics\[2\] "promo"\.en: a non-empty text is required'),
    ('[[topics]]\nid = "promo"\nfr = "P"\nen = "P"\nde = "P"\n', r'topics\[2\] "promo": unknown setting de'),
    ('[[partners]]\nid = "b"\nname = "B"\npurpose_fr = "x"\npurpose_en = "y"\nprivacy_url = "http://b.example/p"\n',
     r'partners\[2\] "b"\.privacy_url: expected the https URL'),
    ('[[partners]]\nid = "b"\npurpose_fr = "x"\npurpose_en = "y"\nprivacy_url = "https://b.example/p"\n',
     r'partners\[2\] "b"\.name: a non-empty text is required'),
])
def test_a_wrong_entry_is_named_in_one_line(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(write(tmp_path, GOOD + extra), env={})
    assert "\n" not in str(caught.value) and str(caught.value).startswith(str(tmp_path))


def test_a_new_partner_or_a_changed_purpose_is_a_new_version(tmp_path: Path) -> None:
    first = partners_version(load_config(write(tmp_path, GOOD), env={}).partners)
    changed = partners_version(load_config(write(tmp_path, GOOD.replace("livraison", "transport")), env={}).partners)
    assert first != changed and partners_version([]) == ""
