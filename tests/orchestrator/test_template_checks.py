"""Broken templates never reach the queue (issue 12, point 4): each kind of mistake is refused when a
campaign is created, with one line naming the template, locale, part and line."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from sqlmodel import select

from orchestrator.campaigns.service import create_campaign, launch_campaign, plan_problems, preview_campaign
from orchestrator.domain.model import Channel
from orchestrator.errors import InputError
from orchestrator.rendering.messages import MessageRenderer
from orchestrator.runtime import Runtime
from orchestrator.store.db import session_scope
from orchestrator.store.models import Campaign
from orchestrator.rendering.checks import documented_variables, render_context
from tests.support.factories import plan

ROOT = Path(__file__).resolve().parents[2]
EMAIL = [{"day": 0, "channel": "email", "template": "t"}]
SMS = [{"day": 0, "channel": "sms", "template": "t"}]


def with_template(rt: Runtime, tmp_path: Path, parts: dict[str, str], *, locales: tuple[str, ...] = ("fr", "en"),
                  layout: str | None = None) -> Runtime:
    """A copy of the shipped templates plus template ``t`` (a copy of ``reconsent``) whose ``parts``
    (``"fr/body.txt": "…"``; ``None`` removes it) are replaced; the runtime renders from there."""
    root = tmp_path / "tpl"
    shutil.copytree(rt.renderer.root, root / "messages")
    for locale in locales:
        shutil.copytree(root / "messages" / "reconsent" / locale, root / "messages" / "t" / locale)
    for name, text in parts.items():
        path = root / "messages" / "t" / name
        if text is None:
            path.unlink()
        else:
            path.write_text(text, encoding="utf-8")
    if layout is not None:
        (root / "messages" / "_layout.html").write_text(layout, encoding="utf-8")
    rt.renderer = MessageRenderer(root)  # type: ignore[misc]
    return rt


def refused(rt: Runtime, steps: list[dict[str, object]]) -> str:
    with pytest.raises(InputError) as caught:
        create_campaign(rt, plan(steps=steps))
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    return message


BODY_TXT = "Bonjour,\n\n{{ page_url }}\n{{ nosuch }}\n{{ sender.name }} {{ sender.postal_address }} {{ unsubscribe_url }}\n"

BROKEN = {
    "syntax error": (EMAIL, {"fr/body.txt": "Bonjour\n{% if first_name %}\n{{ page_url }}\n"},
                     r"^steps\[0\] \(email\): template 't', fr/body\.txt line 3: Unexpected end of template"),
    "unknown filter": (EMAIL, {"fr/subject.txt": "{{ sender.name|shout }}"},
                       r"template 't', fr/subject\.txt line 1: No filter named 'shout'"),
    "undefined variable": (EMAIL, {"fr/body.txt": BODY_TXT},
                           r"template 't', fr/body\.txt line 4: undefined variable 'nosuch'"),
    "undefined variable in a branch no sample takes": (
        SMS, {"en/sms.txt": "{{ sender.name }} {{ short_url }} STOP\n{% if locale == 'de' %}{{ frist_name }}{% endif %}"},
        r"template 't', en/sms\.txt line 2: undefined variable 'frist_name'"),
    "undefined key of sender": (SMS, {"fr/sms.txt": "{{ sender.nom }} {{ short_url }} STOP au {{ sender.stop_number }}"},
                                r"template 't', fr/sms\.txt line 1: undefined variable 'sender\.nom'"),
    "render error for a contact without a first name": (
        EMAIL, {"fr/subject.txt": "{{ sender.name }} pour\n{{ first_name.upper() }}"},
        r"template 't', fr/subject\.txt line 2: 'None' has no attribute 'upper' \(for a contact without a first name\)"),
    "missing part": (SMS, {"en/sms.txt": None}, r"template 't': missing en/sms\.txt \(available locales: en, fr"),
    "no unsubscribe link in the HTML": (
        EMAIL, {"en/body.html": "<p>{{ sender.name }} {{ sender.postal_address }} {{ page_url }}</p>"},
        r"template 't', en/body\.html: no unsubscribe link \(\{\{ unsubscribe_url \}\}\)"),
    "no postal address in the text": (
        EMAIL, {"fr/body.txt": "{{ page_url }}\n{{ sender.name }} {{ unsubscribe_url }}"},
        r"template 't', fr/body\.txt: no postal address \(\{\{ sender\.postal_address \}\}\)"),
    "no preference link": (
        EMAIL, {"fr/body.txt": "{{ sender.name }} {{ sender.postal_address }} {{ unsubscribe_url }}"},
        r"template 't', fr/body\.txt: no preference link \(\{\{ page_url \}\}\)"),
    "no sender name, for a contact without a first name": (
        EMAIL, {"fr/body.txt": "{% if first_name %}{{ sender.name }}{% endif %} {{ sender.postal_address }} "
                               "{{ page_url }} {{ unsubscribe_url }}"},
        r"template 't', fr/body\.txt: no sender name \(\{\{ sender\.name \}\}\) \(for a contact without a first name\)"),
    "no STOP mention": (SMS, {"fr/sms.txt": "{{ sender.name }} : répondez ici {{ short_url }}"},
                        r"template 't', fr/sms\.txt: no STOP mention"),
    "no link in the SMS": (SMS, {"fr/sms.txt": "{{ sender.name }} : STOP au {{ sender.stop_number }}"},
                           r"template 't', fr/sms\.txt: no link"),
    "over the segment budget": (
        SMS, {"fr/sms.txt": "{{ sender.name }} : " + "ç" * 80 + " {{ short_url }} STOP au {{ sender.stop_number }}"},
        (r"template 't', fr/sms\.txt: 3 segments \(UCS-2, \d+ units\) exceeds sms\.segment_budget = 1; "
         r"characters forcing UCS-2: ç")),
}


@pytest.mark.parametrize("kind", list(BROKEN))
def test_each_broken_template_is_refused_at_create_naming_what_is_wrong(rt: Runtime, tmp_path: Path,
                                                                        kind: str) -> None:
    steps, parts, expected = BROKEN[kind]
    with_template(rt, tmp_path, parts)
    assert re.search(expected, refused(rt, steps)), refused(rt, steps)
    with session_scope(rt.engine) as session:
        assert session.exec(select(Campaign)).all() == []


def test_a_syntax_error_in_the_layout_names_the_part_and_the_layout_line(rt: Runtime, tmp_path: Path) -> None:
    layout = (rt.renderer.root / "_layout.html").read_text(encoding="utf-8").replace(
        "{% block body %}", "{% block body %}{% if %}")
    with_template(rt, tmp_path, {}, layout=layout)
    message = refused(rt, EMAIL)
    assert re.search(r"template 't', fr/body\.html \(_layout\.html line \d+\): Expected an expression", message)
    assert message.endswith("(and 1 more problem(s))")  # the same layout, through the English part


def test_every_problem_is_listed_one_per_line(rt: Runtime, tmp_path: Path) -> None:
    with_template(rt, tmp_path, {"fr/sms.txt": "{{ short_url }}", "en/sms.txt": "{{ nosuch }}"})
    assert plan_problems(rt, plan(steps=SMS)) == [
        "steps[0] (sms): template 't', fr/sms.txt: no STOP mention (e.g. STOP au {{ sender.stop_number }})",
        "steps[0] (sms): template 't', en/sms.txt line 1: undefined variable 'nosuch' (see docs/templates.md)",
    ]


def test_a_locale_the_campaign_does_not_use_is_not_required(rt: Runtime, tmp_path: Path) -> None:
    with_template(rt, tmp_path, {}, locales=("fr",))
    assert "missing en/sms.txt" in refused(rt, SMS)
    # contacts in English (or any other language) get the campaign's default locale
    assert create_campaign(rt, plan(steps=SMS, locales=["fr"], default_locale="fr"))


def test_the_shipped_templates_pass(rt: Runtime) -> None:
    steps = [{"day": d, "channel": c, "template": t} for d, (c, t) in enumerate(
        [("email", "reconsent"), ("email", "reminder"), ("sms", "reconsent"), ("sms", "reminder"),
         ("email", "newlink")])]
    assert plan_problems(rt, plan(steps=steps)) == []


def test_launch_checks_again(rt: Runtime, tmp_path: Path) -> None:
    """A template edited after the campaign was created is refused at launch, and the preview shows
    the problem instead of raising."""
    with_template(rt, tmp_path, {})
    campaign_id = create_campaign(rt, plan(steps=SMS))
    (rt.renderer.root / "t" / "en" / "sms.txt").write_text("{{ short_url }} STOP {% endif %}", encoding="utf-8")
    rt.renderer = MessageRenderer(rt.renderer.root.parent)  # type: ignore[misc]  # a new process
    with pytest.raises(InputError, match=r"template 't', en/sms\.txt line 1: Encountered unknown tag 'endif'"):
        launch_campaign(rt, campaign_id)
    previews = preview_campaign(rt, campaign_id)
    assert [(p.locale, p.problem) for p in previews] == [
        ("fr", None), ("en", "template 't', en/sms.txt line 1: Encountered unknown tag 'endif'.")]


def test_docs_list_exactly_the_variables_templates_get(rt: Runtime) -> None:
    doc = (ROOT / "docs" / "templates.md").read_text(encoding="utf-8")
    table = doc.split("## Variables", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| `([a-z_.]+)` \|", table, re.MULTILINE)
    supplied = documented_variables(render_context(rt.config.sender, first_name=None, page_url="", unsubscribe_url="",
                                                   short_url="", deadline=None, locale="fr"))
    assert sorted(listed) == sorted(supplied)
    assert "`longdate`" in doc  # the one filter of ours
    assert set(rt.renderer.env.filters) >= {"longdate"}


def test_channel_parts_are_named_in_the_docs() -> None:
    doc = (ROOT / "docs" / "templates.md").read_text(encoding="utf-8")
    renderer = MessageRenderer()
    for channel in Channel:
        for part in renderer.parts(channel):
            assert f"`{part}`" in doc
