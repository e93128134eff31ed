"""Brand settings (issue 16 §1): edited in the console, stored in the database, used by the message
layout and the public pages; the colour checked for contrast; the shipped texts stay the defaults;
the wording recorded with an answer is the wording shown."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from pathlib import Path

from sqlmodel import Session, select
from starlette.testclient import TestClient

from orchestrator.campaigns.service import preview_campaign
from orchestrator.rendering.brand import read_brand
from orchestrator.rendering.links import LinkClaims
from orchestrator.store.models import ConsentEvent, Wording
from preference_centre.app import create_app
from tests.admin.conftest import Console
from tests.support.factories import launch, person

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")
FORM = {"sender_name": "Fromagerie Dupont", "privacy_url": "https://dupont.example/confidentialite",
        "colour": "#8a1538", "logo_url": "", "page_title_fr": "On reste en contact ?",
        "page_intro_fr": "Dites-nous si nos nouvelles vous intéressent encore.", "button_fr": "Oui, je reste",
        "page_title_en": "", "page_intro_en": "", "button_en": ""}


def test_a_low_contrast_colour_is_refused_next_to_its_field(admin: Console) -> None:
    admin.client.cookies.set("reconsent_admin_lang", "fr")
    resp = admin.post("/admin/brand", {**FORM, "colour": "#ffcc00"})
    assert resp.status_code == 400
    page = html.unescape(resp.text)
    problem = re.search(r'<p class="field-problem" id="colour-problem">([^<]*)</p>\s*<div class="row"><input '
                        r'type="text" id="colour"', page)
    assert problem, page
    assert problem.group(1).startswith("Le contraste avec le blanc est de 1.51")
    assert read_brand(admin.rt, fresh=True).sender_name == admin.rt.config.sender.name  # nothing stored
    bad_logo = admin.client.post("/admin/brand", data={"csrf": admin.csrf, **FORM},
                                 files={"logo": ("logo.png", b"<svg/>", "image/png")})
    assert bad_logo.status_code == 400 and 'id="logo-problem"' in bad_logo.text


def test_the_brand_reaches_messages_and_pages(admin: Console, write_csv: Callable[..., Path]) -> None:
    rt = admin.rt
    resp = admin.client.post("/admin/brand", data={"csrf": admin.csrf, **FORM},
                             files={"logo": ("logo.png", PNG, "image/png")}, follow_redirects=False)
    assert resp.status_code == 303, resp.text
    assert "Saved." in admin.client.get("/admin/brand?saved=1").text
    brand = read_brand(rt, fresh=True)
    assert (brand.sender_name, brand.colour, brand.text("fr", "button")) == ("Fromagerie Dupont", "#8a1538",
                                                                             "Oui, je reste")
    campaign_id = launch(rt, write_csv([person(1), person(2, locale="en")]),
                         steps=[{"day": 0, "channel": "email", "template": "reconsent"}])
    previews = {p.locale: p for p in preview_campaign(rt, campaign_id)}
    mail = previews["fr"].html or ""
    assert "Fromagerie Dupont" in mail and "https://dupont.example/confidentialite" in mail
    assert re.search(r'<td class="btn-cell" bgcolor="#8a1538" style="[^"]*background-color: #8a1538', mail), mail
    assert f'src="{rt.config.public.base_url}/brand/logo/{brand.logo_hash}"' in mail
    # the public pages: no script, the colour as a stylesheet of their own, the texts set per locale
    web = TestClient(create_app(rt))
    token = rt.links.dumps("page", LinkClaims(1, campaign_id, "email"))
    page = web.get(f"/p/{token}")
    assert "<script" not in page.text
    assert "<h1>On reste en contact ?</h1>" in html.unescape(page.text)
    hint = "si vous ne cochez rien, « Oui, je reste » vaut pour le canal"  # the hint names the brand's button
    assert hint in html.unescape(page.text)
    assert '<link rel="stylesheet" href="/brand.css?c=8a1538">' in page.text
    assert web.get("/brand.css?c=8a1538").text.startswith(":root{--accent:#8a1538}")
    assert f'src="/brand/logo/{brand.logo_hash}"' in page.text
    logo = web.get(f"/brand/logo/{brand.logo_hash}")
    assert logo.status_code == 200 and logo.content == PNG and logo.headers["content-type"] == "image/png"
    assert web.get("/brand/logo/0000000000000000").status_code == 404
    # English keeps the shipped texts
    english = web.get(f"/p/{rt.links.dumps('page', LinkClaims(2, campaign_id, 'email'))}")
    assert "Do you still want to hear from Fromagerie Dupont?" in html.unescape(english.text)
    # the answer records the wording shown, with the brand's texts
    web.post(f"/p/{token}", data={"email": "yes", "action": "confirm"})
    with Session(rt.engine) as s:
        event = s.exec(select(ConsentEvent).where(ConsentEvent.contact_id == 1,
                                                  ConsentEvent.source == "preference_centre")).first()
        assert event is not None
        wording = s.get(Wording, event.wording_hash)
    assert wording is not None and "On reste en contact ?" in wording.text and "Oui, je reste" in wording.text
    assert hint in wording.text and "Oui, je reste informé" not in wording.text


def test_emptied_fields_return_to_the_defaults(admin: Console) -> None:
    admin.post("/admin/brand", FORM)
    assert admin.post("/admin/brand", {k: "" for k in FORM}).status_code == 303
    brand = read_brand(admin.rt, fresh=True)
    assert brand.sender_name == admin.rt.config.sender.name and brand.colour == "#0b5cad"
    assert brand.text("fr", "page_title") is None


def _csp(headers: object) -> dict[str, str]:
    value = headers["content-security-policy"]  # type: ignore[index]
    return {d.split(" ", 1)[0]: d.split(" ", 1)[1] if " " in d else "" for d in value.split("; ")}


def test_a_logo_address_shows_on_the_pages_and_their_csp_allows_its_origin_only(
        admin: Console, write_csv: Callable[..., Path]) -> None:
    """Issue 16 §1: a logo given as an https address showed in emails only (the pages' CSP allowed
    images from 'self' alone). Now the pages show it and their img-src names exactly its origin;
    plain http is refused at save, with the reason next to the field, in the console's language."""
    rt = admin.rt
    web = TestClient(create_app(rt))
    campaign_id = launch(rt, write_csv([person(1)]), steps=[{"day": 0, "channel": "email", "template": "reconsent"}])
    token = rt.links.dumps("page", LinkClaims(1, campaign_id, "email"))
    before = _csp(web.get(f"/p/{token}").headers)
    assert before["img-src"] == "'self'"

    admin.client.cookies.set("reconsent_admin_lang", "fr")
    refused = admin.post("/admin/brand", {**FORM, "logo_url": "http://cdn.dupont.example/logo.png"})
    assert refused.status_code == 400
    assert re.search(r'id="logo_url-problem">[^<]*https://', refused.text), refused.text
    assert read_brand(rt, fresh=True).logo_url is None
    wildcard = admin.post("/admin/brand", {**FORM, "logo_url": "https://*.dupont.example/logo.png"})
    assert wildcard.status_code == 400 and 'id="logo_url-problem"' in wildcard.text  # no CSP could name it

    assert admin.post("/admin/brand", {**FORM, "logo_url": "https://cdn.dupont.example:8443/img/logo.png"}
                      ).status_code == 303
    assert read_brand(rt, fresh=True).logo_url == "https://cdn.dupont.example:8443/img/logo.png"
    page = web.get(f"/p/{token}")
    assert '<img class="logo" src="https://cdn.dupont.example:8443/img/logo.png"' in page.text
    after = _csp(page.headers)
    assert after["img-src"] == "'self' https://cdn.dupont.example:8443"
    assert {k: v for k, v in after.items() if k != "img-src"} == {k: v for k, v in before.items() if k != "img-src"}
    assert "*" not in page.headers["content-security-policy"] and "http:" not in page.headers["content-security-policy"]
    # every public answer carries it (an error page too); the console's own CSP is unchanged
    assert _csp(web.get("/p/not-a-token").headers)["img-src"] == "'self' https://cdn.dupont.example:8443"
    assert _csp(admin.client.get("/admin/brand").headers)["img-src"] == "'self'"
    mail = {p.locale: p for p in preview_campaign(rt, campaign_id)}["fr"].html or ""
    assert 'src="https://cdn.dupont.example:8443/img/logo.png"' in mail

    # an uploaded logo wins: served from here, and the other origin leaves the CSP
    assert admin.client.post("/admin/brand", data={"csrf": admin.csrf, **FORM, "logo_url": "https://cdn.dupont.example/l.png"},
                             files={"logo": ("logo.png", PNG, "image/png")}, follow_redirects=False).status_code == 303
    brand = read_brand(rt, fresh=True)
    page = web.get(f"/p/{token}")
    assert f'src="/brand/logo/{brand.logo_hash}"' in page.text and _csp(page.headers)["img-src"] == "'self'"
