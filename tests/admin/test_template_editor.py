"""The console's template editor (issue 16 §1): per template and locale, the parts edited in the
browser, the checks on save with each problem next to its field in the console's language, every
save a new version, a campaign keeping the version it was created with, the SMS's encoding."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import Callable
from pathlib import Path

from sqlmodel import Session, select

from orchestrator.campaigns.service import create_campaign, launch_campaign
from orchestrator.delivery.worker import dispatch_once
from orchestrator.domain.model import Channel
from orchestrator.rendering.editor import Draft, draft_for
from orchestrator.rendering.template_store import list_templates
from orchestrator.store.models import MessageTemplate, OutboxMessage
from tests.admin.conftest import Console
from tests.support.factories import person, plan

EDIT = "/admin/templates/reconsent/fr"


def words(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def fields_of(d: Draft) -> dict[str, str]:
    return {"subject": d.subject, "body_txt": d.body_txt, "body_html": d.body_html, "markdown": d.markdown or "",
            "mode": "html" if d.markdown is None else "markdown", "sms": d.sms}


def stored_rows(admin: Console) -> int:
    with Session(admin.rt.engine) as s:
        return len(s.exec(select(MessageTemplate)).all())


def test_the_list_and_the_editor_show_the_shipped_wording(admin: Console) -> None:
    listing = admin.client.get("/admin/templates")
    assert listing.status_code == 200
    assert 'href="/admin/templates/reconsent/fr"' in listing.text
    page = admin.client.get(EDIT)
    assert page.status_code == 200
    assert "Votre choix" in html.unescape(page.text) or "choix" in html.unescape(page.text)
    assert 'name="subject"' in page.text and 'name="sms"' in page.text
    assert "{{ first_name }}" in html.unescape(page.text)  # the variables and their insert helper
    assert 'src="/admin/static/editor.js"' in page.text
    assert 'formtarget="preview"' in page.text  # the preview works without JavaScript


def test_a_save_with_an_unknown_variable_is_refused_next_to_its_field_in_french(admin: Console) -> None:
    admin.client.cookies.set("reconsent_admin_lang", "fr")
    data = fields_of(draft_for(admin.rt, "reconsent", "fr"))
    data["body_txt"] = "Bonjour {{ frist_name }}\n" + data["body_txt"]
    before = stored_rows(admin)
    resp = admin.post(EDIT, {**data, "intent": "save"})
    assert resp.status_code == 400
    page = html.unescape(resp.text)
    # the problem sits right above its field, says the line, in French, and the field is marked invalid
    problem = re.search(r'<p class="field-problem" id="body_txt-problem-1">([^<]*)</p>\s*<textarea id="body_txt"',
                        page)
    assert problem, page
    assert problem.group(1) == ("Ligne\u00a01\u00a0: Variable inconnue «\u00a0frist_name\u00a0»\u00a0: "
                                "utilisez l’une des variables de la liste.")
    assert 'aria-invalid="true" aria-describedby="body_txt-problem-1' in page
    assert stored_rows(admin) == before  # nothing stored


def test_missing_mandatory_content_and_sms_budget_are_placed_on_their_fields(admin: Console) -> None:
    data = fields_of(draft_for(admin.rt, "reconsent", "en"))
    data["sms"] = "Hello, no link and no opt-out here. " + "ç" * 200
    resp = admin.post("/admin/templates/reconsent/en", {**data, "intent": "save"})
    assert resp.status_code == 400
    page = html.unescape(resp.text)
    sms_problems = re.findall(r'<p class="field-problem" id="sms-problem-\d+">([^<]*)</p>', page)
    assert "The STOP mention is missing: add “STOP au {{ sender.stop_number }}”." in sms_problems
    assert "The link is missing: insert {{ short_url }}." in sms_problems
    assert any(p.startswith("4 SMS segments (UCS-2), more than the") for p in sms_problems), sms_problems
    # the encoding, segment count and the characters forcing UCS-2 are shown for the draft
    found = re.search(r'<p id="sms-info".*?</p>', page, re.S)
    assert found
    info = words(found.group(0))
    assert info.startswith("UCS-2 · 4 segment(s)") and "UCS-2 forced by: ç" in info


def test_every_save_is_a_new_version_and_campaigns_keep_theirs(
        admin: Console, write_csv: Callable[..., Path]) -> None:
    rt = admin.rt
    before = create_campaign(rt, plan(steps=[{"day": 0, "channel": "sms", "template": "reconsent"}]))
    data = fields_of(draft_for(rt, "reconsent", "fr"))
    data["sms"] = "{{ sender.name }} : gardons le contact ? {{ short_url }} STOP au {{ sender.stop_number }}"
    resp = admin.post(EDIT, {**data, "intent": "save"})
    assert resp.status_code == 303 and resp.headers["location"] == EDIT + "?saved=new"
    assert "Saved as a new version" in admin.client.get(EDIT + "?saved=new").text
    current = {(w.locale, w.channel.value): w for w in list_templates(rt)
               if w.name == "reconsent" and w.state == "current"}
    assert current[("fr", "sms")].source == "imported"
    # the other locale of a shipped name is kept, as shipped: campaigns in English still work
    assert current[("en", "sms")].source == "imported"
    assert current[("en", "sms")].version == rt.renderer.version("reconsent", current[("en", "sms")].channel, "en")
    # saving the same wording again adds nothing, even with the final line break a browser's text
    # field drops from the subject; the email wording kept its shipped version
    data["subject"] = data["subject"].rstrip("\n")
    assert admin.post(EDIT, {**data, "intent": "save"}).headers["location"] == EDIT + "?saved=unchanged"
    assert current[("fr", "email")].version == rt.renderer.version("reconsent", Channel.EMAIL, "fr")
    after = create_campaign(rt, plan(steps=[{"day": 0, "channel": "sms", "template": "reconsent"}]))
    from orchestrator.contacts.service import import_contacts

    new_version = current[("fr", "sms")].version
    sent: dict[int, set[str | None]] = {}
    for n, campaign_id in ((1, before), (2, after)):  # one person each: a person is in one campaign at a time
        import_contacts(rt, write_csv([person(n)], name=f"c{n}.csv"))
        launch_campaign(rt, campaign_id)
        asyncio.run(asyncio.wait_for(dispatch_once(rt), 20))
        with Session(rt.engine) as s:
            rows = s.exec(select(OutboxMessage).where(OutboxMessage.campaign_id == campaign_id)).all()
        sent[campaign_id] = {r.template_version for r in rows if r.status in ("sent", "delivered")}
    assert sent[after] == {new_version}
    assert sent[before] == {rt.renderer.version("reconsent", Channel.SMS, "fr")}  # the shipped wording it pinned


def test_markdown_becomes_the_layout_and_comes_back_to_the_editor(admin: Console) -> None:
    data = fields_of(draft_for(admin.rt, "reconsent", "en"))
    data["mode"] = "markdown"
    data["markdown"] = ("Hello {% if first_name %}{{ first_name }}{% endif %},\n\nWill you **stay** with "
                        "{{ sender.name }}?\n\n[[I answer]]({{ page_url }})")
    preview = admin.post("/admin/templates/reconsent/en/preview", data)
    assert preview.status_code == 200
    assert "sandbox" in preview.headers["content-security-policy"]
    assert "<strong" in preview.text and "I answer" in preview.text and "Alex" in preview.text
    assert 'class="btn-cell"' in preview.text  # the layout's bulletproof button
    assert admin.post("/admin/templates/reconsent/en", {**data, "intent": "save"}).status_code == 303
    again = draft_for(admin.rt, "reconsent", "en")
    assert again.markdown is not None and "**stay**" in again.markdown
    page = html.unescape(admin.client.get("/admin/templates/reconsent/en").text)
    assert 'value="markdown" checked' in page and "**stay**" in page


def test_a_new_template_by_name_and_a_viewer_cannot_save(admin: Console, viewer: Console) -> None:
    assert admin.client.get("/admin/templates/open?name=winter&locale=fr",
                            follow_redirects=False).headers["location"] == "/admin/templates/winter/fr"
    assert admin.client.get("/admin/templates/open?name=Bad Name&locale=fr").status_code == 400
    assert admin.client.get("/admin/templates/winter/fr").status_code == 200
    sms = {"sms": "{{ sender.name }}: on garde le contact ? {{ short_url }} STOP au {{ sender.stop_number }}",
           "mode": "markdown", "intent": "save"}
    assert viewer.post("/admin/templates/winter/fr", sms).status_code == 403
    assert admin.post("/admin/templates/winter/fr", sms).status_code == 303
    assert [(w.name, w.locale, w.channel.value) for w in list_templates(admin.rt) if w.name == "winter"] == \
        [("winter", "fr", "sms")]
    assert admin.client.get("/admin/templates/..%2Fetc/fr").status_code == 404
