"""Imported templates: checked whole, stored versioned, pinned by campaigns, sent and recorded."""

from __future__ import annotations

import email
import email.policy
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlmodel import Session, func, select

from orchestrator.campaigns.service import create_campaign, launch_campaign, preview_campaign
from orchestrator.contacts.service import import_contacts
from orchestrator.delivery.worker import dispatch_once
from orchestrator.domain.model import Channel
from orchestrator.errors import InputError, TemplateProblems
from orchestrator.proof.evidence import campaign_evidence
from orchestrator.rendering.links import LinkClaims
from orchestrator.rendering.messages import TEMPLATES_DIR, MessageRenderer, wording_version
from orchestrator.runtime import Runtime
from orchestrator.store.models import Contact, MessageTemplate, OutboxMessage
from orchestrator.rendering.template_store import (
    fetch_wording,
    import_templates,
    list_templates,
    template_names,
)
from orchestrator.delivery.fresh_links import build_fresh_link, send_fresh_link
from tests.support.factories import person, plan, run

PROMO = {
    "fr": {
        "subject.txt": "{{ sender.name }} : on reste en contact ?",
        "body.txt": "Coucou {{ first_name or 'vous' }} ! Un clic pour rester : {{ page_url }}\n"
                    "--\n{{ sender.name }}, {{ sender.postal_address }} · Se désabonner : {{ unsubscribe_url }}\n",
        "body.html": '{% extends "_layout.html" %}\n{% block body %}<p>Coucou {{ first_name }} !</p>'
                     '<p><a href="{{ page_url }}">Rester</a></p>{% endblock %}\n'
                     '{% block footer %}{{ sender.name }}, {{ sender.postal_address }} '
                     '<a href="{{ unsubscribe_url }}">Se désabonner</a>{% endblock %}\n',
        "sms.txt": "{{ sender.name }} : on reste en contact ? {{ short_url }} STOP au {{ sender.stop_number }}\n",
    },
    "en": {
        "subject.txt": "{{ sender.name }}: shall we stay in touch?",
        "body.txt": "Hi {{ first_name or 'there' }}! One click to stay: {{ page_url }}\n"
                    "--\n{{ sender.name }}, {{ sender.postal_address }} · Unsubscribe: {{ unsubscribe_url }}\n",
        "body.html": '{% extends "_layout.html" %}\n{% block body %}<p>Hi {{ first_name }}!</p>'
                     '<p><a href="{{ page_url }}">Stay</a></p>{% endblock %}\n'
                     '{% block footer %}{{ sender.name }}, {{ sender.postal_address }} '
                     '<a href="{{ unsubscribe_url }}">Unsubscribe</a>{% endblock %}\n',
        "sms.txt": "{{ sender.name }}: stay in touch? {{ short_url }} STOP to {{ sender.stop_number }}\n",
    },
}
PROMO_STEPS = [{"day": 0, "channel": "email", "template": "promo"}, {"day": 0, "channel": "sms", "template": "promo"}]


def write_templates(root: Path, name: str, locales: dict[str, dict[str, str]]) -> Path:
    for locale, parts in locales.items():
        folder = root / name / locale
        folder.mkdir(parents=True, exist_ok=True)
        for part, text in parts.items():
            (folder / part).write_text(text, encoding="utf-8")
    return root


def version_of(parts: dict[str, str], channel: Channel) -> str:
    names = ("sms.txt",) if channel is Channel.SMS else ("subject.txt", "body.txt", "body.html")
    return wording_version((n, parts[n].encode()) for n in names)


def stored_rows(rt: Runtime) -> int:
    with Session(rt.engine) as s:
        return int(s.exec(select(func.count()).select_from(MessageTemplate)).one())


def imported(rt: Runtime, **where: str) -> list[tuple[str, str, str, str, str]]:
    return [(w.name, w.locale, w.channel.value, w.version, w.state) for w in list_templates(rt, all_versions=True)
            if w.source == "imported" and all(getattr(w, k) == v for k, v in where.items())]


def test_import_of_a_valid_folder_stores_every_wording_once_and_keeps_old_versions(rt: Runtime, tmp_path: Path) -> None:
    folder = write_templates(tmp_path / "mine", "promo", PROMO)
    report = import_templates(rt, folder)
    assert [(w.locale, w.channel.value, w.outcome) for w in report.wordings] == [
        ("en", "email", "new"), ("en", "sms", "new"), ("fr", "email", "new"), ("fr", "sms", "new")]
    assert report.replacing == []
    assert stored_rows(rt) == 8  # one row per part
    fr_sms = version_of(PROMO["fr"], Channel.SMS)
    assert ("promo", "fr", "sms", fr_sms, "current") in imported(rt)
    assert "promo" in template_names(rt) and "reconsent" in template_names(rt)
    shipped = [w for w in list_templates(rt) if w.source == "shipped"]
    assert shipped and {w.state for w in shipped} == {"current"}  # nothing of that name was shipped

    # unchanged wording: nothing new
    assert {w.outcome for w in import_templates(rt, folder).wordings} == {"unchanged"}
    assert stored_rows(rt) == 8

    # changed SMS wording: a new version, current; the old one kept
    (folder / "promo" / "fr" / "sms.txt").write_text("{{ sender.name }} : toujours là ? {{ short_url }} STOP\n")
    outcomes = {(w.locale, w.channel.value): w.outcome for w in import_templates(rt, folder).wordings}
    assert outcomes[("fr", "sms")] == "new" and set(outcomes.values()) == {"new", "unchanged"}
    assert stored_rows(rt) == 9
    assert [state for *_, version, state in imported(rt, locale="fr", channel=Channel.SMS)
            if version == fr_sms] == ["old"]

    # the old wording again: that version is current again, nothing new stored
    (folder / "promo" / "fr" / "sms.txt").write_text(PROMO["fr"]["sms.txt"])
    outcomes = {(w.locale, w.channel.value): w.outcome for w in import_templates(rt, folder).wordings}
    assert outcomes[("fr", "sms")] == "restored"
    assert stored_rows(rt) == 9
    assert ("promo", "fr", "sms", fr_sms, "current") in imported(rt)


def test_import_of_a_broken_folder_names_every_problem_and_stores_nothing(rt: Runtime, tmp_path: Path) -> None:
    folder = write_templates(tmp_path / "mine", "promo", PROMO)  # a valid template beside the broken ones
    write_templates(folder, "half", {"fr": {"subject.txt": "Objet", "body.txt": "Corps {{ page_url }}"}})
    write_templates(folder, "syntax", {"fr": {"sms.txt": "Hello\n{{ first_name }\n"}})
    write_templates(folder, "include", {"fr": {"sms.txt": '{% include "reconsent/fr/sms.txt" %}'}})
    write_templates(folder, "Capital", {"fr": {"sms.txt": "x"}})
    write_templates(folder, "odd", {"fr": {"sms.md": "x"}, "fr_CA": {"sms.txt": "x"}})
    (folder / "latin1" / "fr").mkdir(parents=True)
    (folder / "latin1" / "fr" / "sms.txt").write_bytes("ligne\nCafé {{ short_url }}".encode("latin-1"))
    (folder / "_layout.html").write_text("<html>{% block body %}{% endblock %}</html>")
    with pytest.raises(TemplateProblems) as refused:
        import_templates(rt, folder)
    assert refused.value.problems == [
        f"{folder}/Capital: a template name is lowercase letters, digits, '-' and '_' (at most 64)",
        (f"{folder}/_layout.html: layouts are not imported (HTML bodies extend the shipped _layout.html): "
         "remove this file or undo its changes"),
        f"{folder}/half/fr: an email template needs subject.txt, body.txt, body.html; missing body.html",
        (f"{folder}/include/fr/sms.txt: line 1: only {{% extends \"_layout.html\" %}} (the shipped layout) may "
         "load another template"),
        f"{folder}/latin1/fr/sms.txt: line 2: not UTF-8 text (byte 0xe9)",
        f"{folder}/odd/fr/sms.md: unknown part (expected subject.txt, body.txt, body.html, sms.txt)",
        f"{folder}/odd/fr_CA: not a locale folder (a 2- or 3-letter language code: fr, en)",
        f"{folder}/syntax/fr/sms.txt: line 2: unexpected '}}'",
    ]
    assert stored_rows(rt) == 0
    assert imported(rt) == []


def test_an_unchanged_copy_of_the_shipped_templates_has_the_shipped_versions(rt: Runtime, tmp_path: Path) -> None:
    """The version is computed the same way from the same sources, shipped or imported."""
    copy = tmp_path / "copy"
    shutil.copytree(TEMPLATES_DIR / "messages", copy)  # _layout.html included: an unchanged copy is skipped
    report = import_templates(rt, copy)
    assert report.replacing == ["newlink", "notice", "reconsent", "reminder"]
    listed = list_templates(rt)
    shipped = {(w.name, w.locale, w.channel): w.version for w in listed if w.source == "shipped"}
    ours = {(w.name, w.locale, w.channel): w.version for w in listed if w.source == "imported"}
    assert ours == shipped and len(ours) == 14  # notice: email only (fr, en)
    assert {w.state for w in listed if w.source == "shipped"} == {"replaced"}


def test_a_campaign_sends_the_imported_wording_and_records_its_version(
    make_rt: Callable[..., Runtime], write_csv: Callable[..., Path], tmp_path: Path
) -> None:
    rt = make_rt()
    import_templates(rt, write_templates(tmp_path / "mine", "promo", PROMO))
    import_contacts(rt, write_csv([person(1, first_name="Chloé"), person(2, locale="en")]))
    campaign_id = create_campaign(rt, plan(steps=PROMO_STEPS))
    launch_campaign(rt, campaign_id)

    worker = make_rt()  # another dispatcher process: a fresh renderer, the wording read from the database
    assert run(dispatch_once(worker)).sent == 4

    eml = {p.name: email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
           for p in Path(rt.config.email.outbox_dir).glob("*.eml")}
    texts = sorted(m.get_body(("plain",)).get_content() for m in eml.values())  # type: ignore[union-attr]
    assert texts[0].startswith("Coucou Chloé ! Un clic pour rester : https://prefs.example.com/p/")
    assert texts[1].startswith("Hi Prénom2! One click to stay:")
    subjects = sorted(str(m["Subject"]) for m in eml.values())
    assert subjects == ["Boutique Lumière : on reste en contact ?", "Boutique Lumière: shall we stay in touch?"]
    sms = [json.loads(line)["body"] for line in Path(rt.config.sms.outbox_file).read_text().splitlines()]
    assert sorted(s.split(" ?")[0].split("?")[0] for s in sms) == [
        "Boutique Lumière : on reste en contact", "Boutique Lumière: stay in touch"]

    expected = {(loc, c.value): version_of(PROMO[loc], c) for loc in ("fr", "en") for c in Channel}
    with Session(rt.engine) as s:
        rows = list(s.exec(select(OutboxMessage).order_by(OutboxMessage.id)))
    assert {(r.locale, r.channel): r.template_version for r in rows} == expected
    # the proof: each message's version finds its exact wording again, and the evidence names it
    for (locale, channel), version in expected.items():
        parts = ("sms.txt",) if channel == "sms" else ("subject.txt", "body.txt", "body.html")
        assert fetch_wording(rt.engine, "promo", locale, version) == {p: PROMO[locale][p] for p in parts}
    evidence = campaign_evidence(rt, campaign_id)
    assert {(m["locale"], m["channel"]): m["template_version"]
            for c in evidence["contacts"] for m in c["messages"]} == expected
    assert evidence["campaign"]["plan"]["wordings"]["promo/fr/sms"] == expected[("fr", "sms")]


def test_a_campaign_keeps_the_wording_it_was_created_with(
    rt: Runtime, write_csv: Callable[..., Path], tmp_path: Path
) -> None:
    folder = write_templates(tmp_path / "mine", "promo", PROMO)
    import_templates(rt, folder)
    import_contacts(rt, write_csv([person(1)]))
    sms_only = [{"day": 0, "channel": "sms", "template": "promo"}]
    before = create_campaign(rt, plan(name="before", steps=sms_only))
    (folder / "promo" / "fr" / "sms.txt").write_text("{{ sender.name }} : nouvelle version {{ short_url }} STOP\n")
    import_templates(rt, folder)
    after = create_campaign(rt, plan(name="after", steps=sms_only))

    old, new = version_of(PROMO["fr"], Channel.SMS), wording_version([("sms.txt", (
        folder / "promo" / "fr" / "sms.txt").read_bytes())])
    assert next(p.text for p in preview_campaign(rt, before) if p.locale == "fr").endswith(
        "on reste en contact ? https://prefs.example.com/s/xxxxxxxxxxx STOP au 36111")
    assert "nouvelle version" in next(p.text for p in preview_campaign(rt, after) if p.locale == "fr")
    launch_campaign(rt, before)
    run(dispatch_once(rt))
    with Session(rt.engine) as s:
        sent = s.exec(select(OutboxMessage.template_version).where(OutboxMessage.campaign_id == before)).all()
    assert sent == [old] and old != new
    assert "on reste en contact" in Path(rt.config.sms.outbox_file).read_text()


def test_an_imported_name_replaces_the_shipped_template_in_every_locale(rt: Runtime, tmp_path: Path) -> None:
    import_templates(rt, write_templates(tmp_path / "mine", "reconsent", {"fr": PROMO["fr"]}))
    with pytest.raises(InputError, match=r"imported template 'reconsent' has no en email wording \(it has: fr\)"):
        create_campaign(rt, plan())  # locales fr and en; no silent English from the shipped template
    campaign_id = create_campaign(rt, plan(locales=["fr"]))
    previews = {(p.template, p.channel): p for p in preview_campaign(rt, campaign_id)}
    assert previews[("reconsent", "email")].subject == "Boutique Lumière : on reste en contact ?"
    # shipped, its no-break space kept (French typography)
    assert previews[("reminder", "email")].subject == "Rappel\u00a0: Boutique Lumière attend votre réponse"


def test_a_fresh_link_uses_the_current_imported_newlink(
    rt: Runtime, write_csv: Callable[..., Path], tmp_path: Path
) -> None:
    import_contacts(rt, write_csv([person(1)]))
    with Session(rt.engine) as s:
        contact = s.exec(select(Contact)).one()
    claims = LinkClaims(contact_id=contact.id or 0, campaign_id=1, channel="sms")
    shipped = build_fresh_link(rt, contact, claims, Channel.SMS)
    wording = "Lien : {{ page_url }} STOP au {{ sender.stop_number }}"
    import_templates(rt, write_templates(tmp_path / "mine", "newlink", {"fr": {"sms.txt": wording}}))
    message = build_fresh_link(rt, contact, claims, Channel.SMS)
    assert message.text.startswith("Lien : https://prefs.example.com/p/") and message.text != shipped.text
    assert message.meta["template_version"] == wording_version([("sms.txt", wording.encode())])
    with pytest.raises(InputError, match="has no email wording"):  # never the shipped email instead
        build_fresh_link(rt, contact, claims, Channel.EMAIL)
    by_email = LinkClaims(contact_id=contact.id or 0, campaign_id=1, channel="email")
    assert run(send_fresh_link(rt, by_email, channels={})) == "failed"  # recorded; no error page


def test_a_stored_version_renders_fast_as_full_and_only_as_itself(tmp_path: Path) -> None:
    stored = {"fr": PROMO["fr"]}
    parts = stored["fr"]
    version = version_of(parts, Channel.EMAIL)
    renderer = MessageRenderer(TEMPLATES_DIR, fetch=lambda t, loc, v: parts if (t, loc, v) == ("promo", "fr", version)
                               else None)
    sender = {"name": "B", "postal_address": "1 rue X", "email": "b@x.example", "stop_number": "1",
              "privacy_url": "https://x.example/p"}
    for name in ("Zoé", "Léa", None):
        ctx = {"first_name": name, "sender": sender, "page_url": f"https://p.example/p/{name}",
               "unsubscribe_url": "https://p.example/u/x", "short_url": "https://p.example/s/x", "deadline": None}
        fast = renderer.render("promo", Channel.EMAIL, "fr", ctx, version)
        assert fast == renderer.render_full("promo", Channel.EMAIL, "fr", ctx, version)
        assert fast.version == version and fast.subject == "B : on reste en contact ?"
    assert [f for f in renderer._forms.values()] and all(f is not None for f in renderer._forms.values())
    with pytest.raises(InputError, match="not in the template store"):
        renderer.render("promo", Channel.EMAIL, "fr", ctx, "0" * 16)
    with pytest.raises(InputError, match="not this version"):
        renderer.load("promo", "en", "0" * 16, Channel.SMS, {"sms.txt": "x"})


def test_import_runs_the_campaign_checks_on_what_it_would_store(rt: Runtime, tmp_path: Path) -> None:
    """Variables, mandatory content and the SMS budget are refused at import as at campaign creation."""
    folder = write_templates(tmp_path / "mine", "promo", PROMO)
    write_templates(folder, "typo", {"fr": {"sms.txt": "{{ sender.name }} : {{ shorturl }} STOP au 36111\n"}})
    write_templates(folder, "nostop", {"fr": {"sms.txt": "{{ sender.name }} : {{ short_url }}\n"}})
    write_templates(folder, "long", {"fr": {"sms.txt": "{{ sender.name }} " + "blabla " * 40 + "{{ short_url }} STOP\n"}})
    with pytest.raises(TemplateProblems) as refused:
        import_templates(rt, folder)
    problems = refused.value.problems
    assert len(problems) == 3, problems
    assert any(p.startswith(f"{folder}/typo/fr: ") and "undefined variable 'shorturl'" in p and "line 1" in p
               for p in problems), problems
    assert any(p.startswith(f"{folder}/nostop/fr: ") and "STOP" in p for p in problems), problems
    assert any(p.startswith(f"{folder}/long/fr: ") and "segment" in p for p in problems), problems
    assert stored_rows(rt) == 0
