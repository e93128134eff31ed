"""The console's features over HTTP, against the same functions the CLI uses."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from sqlmodel import Session, select
from starlette.testclient import TestClient

from orchestrator.campaigns.service import campaign_status, create_campaign
from orchestrator.contacts.service import import_contacts
from orchestrator.domain.clock import FixedClock
from orchestrator.rendering.links import LinkClaims
from orchestrator.proof.rights import export_person
from orchestrator.runtime import Runtime
from orchestrator.store.models import Campaign, Contact, SuppressionEntry
from orchestrator.accounts.service import add_user
from preference_centre.app import create_app
from tests.admin.conftest import ADMIN, Console, sign_in
from tests.support.factories import launch, person, plan, run

ROOT = Path(__file__).resolve().parents[2]


def _cells(html: str, tag: str = "td") -> list[str]:
    return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(rf"<{tag}[^>]*>(.*?)</{tag}>", html, re.DOTALL)]


def test_contacts_upload_reports_rejects_like_the_cli(admin: Console, write_csv: Callable[..., Path],
                                                      tmp_path: Path) -> None:
    rows = [person(1), person(2, email="not-an-email"), person(3, kind="friend"), person(4)]
    path = write_csv(rows)
    resp = admin.post("/admin/contacts/import", files={"file": ("contacts.csv", path.read_bytes(), "text/csv")})
    assert resp.status_code == 200
    # row 3's invalid email is left out and the row imported on its phone: a warning (issue 16)
    warned = _cells(resp.text.split('id="import-warnings"')[1].split("</table>")[0])
    assert warned[:2] == ["3", "email"] and "not a valid email address: &#39;not-an-email&#39;" in warned[2]
    cells = _cells(resp.text.split('class="rejects"')[2].split("</table>")[0])
    assert cells[:2] == ["4", "kind"] and "expected customer (client) or prospect" in cells[2] and cells[3] == "friend"
    assert "4 rows read: 3 created, 0 updated, 0 duplicate rows merged, 1 rejected" in resp.text
    # the CLI's own import gives the same report on the same file (3 updated this time, nothing created)
    again = import_contacts(admin.rt, path)
    assert [(r.line, r.field) for r in again.rejects] == [(4, "kind")]
    assert [(r.line, r.field) for r in again.warnings] == [(3, "email")]
    assert admin.post("/admin/contacts/import", files={"file": ("bad.csv", b"name\nx\n", "text/csv")}).status_code == 400


def test_uploads_beyond_the_public_body_limit_work_and_the_console_has_its_own(
        make_rt: Callable[..., Runtime], write_csv: Callable[..., Path]) -> None:
    rt = make_rt(admin={"max_upload_bytes": 200_000})
    add_user(rt, ADMIN[0], ADMIN[1], "admin")
    client = TestClient(create_app(rt), base_url="https://testserver", headers={"accept-language": "en"})
    console = Console(rt, client, sign_in(client, *ADMIN))
    big = write_csv([person(n) for n in range(1, 900)]).read_bytes()
    assert rt.config.server.max_body_bytes < len(big) < 200_000
    resp = console.post("/admin/contacts/import", files={"file": ("contacts.csv", big, "text/csv")})
    assert resp.status_code == 200 and "899 rows read: 899 created" in resp.text
    too_big = console.post("/admin/contacts/import", files={"file": ("c.csv", big * 3, "text/csv")})
    assert too_big.status_code == 413
    assert client.post("/p/x", content=big, headers={"content-type": "text/plain"}).status_code == 413  # public limit


def test_lookup_shows_history_and_messages_then_export_and_erase(admin: Console, write_csv: Callable[..., Path]) -> None:
    rt = admin.rt
    campaign_id = launch(rt, write_csv([person(1), person(2)]))
    from orchestrator.delivery.worker import dispatch_once

    run(dispatch_once(rt))
    from starlette.testclient import TestClient

    from preference_centre.app import create_app

    token = rt.links.dumps("page", LinkClaims(1, campaign_id, "email"))
    TestClient(create_app(rt)).post(f"/p/{token}", data={"email": "yes", "action": "confirm"})
    page = admin.post("/admin/contacts/lookup", {"address": "  PERSON1@example.org "})
    assert page.status_code == 200 and "person1@example.org" not in page.request.url.path
    assert "C-1" in page.text and "confirmed" in page.text and "preference_centre" in page.text
    assert "person2@example.org" not in page.text
    phone = admin.post("/admin/contacts/lookup", {"address": "06 12 34 00 01"})
    assert "C-1" in phone.text

    export = admin.post("/admin/contacts/export", {"address": "person1@example.org"})
    assert export.headers["content-type"].startswith("application/json")
    assert "person1" not in export.headers["content-disposition"]
    assert json.loads(export.text) == export_person(rt, email="person1@example.org")

    ask = admin.post("/admin/contacts/erase", {"address": "person1@example.org"})
    assert ask.status_code == 200 and 'name="confirm" value="yes"' in ask.text
    with Session(rt.engine) as s:
        assert s.get(Contact, 1).email == "person1@example.org"  # type: ignore[union-attr]
    assert admin.post("/admin/contacts/erase", {"address": "person1@example.org", "confirm": "yes"}).status_code == 200
    with Session(rt.engine) as s:
        gone = s.get(Contact, 1)
        keys = {(e.key, e.channel) for e in s.exec(select(SuppressionEntry))}
    assert gone is not None and gone.email is None and gone.erased_at is not None
    assert (rt.key_for("person1@example.org"), "email") in keys


def test_campaign_from_form_and_from_toml_with_clear_errors(admin: Console) -> None:
    form = {"name": "Winter", "deadline_days": "30", "default_locale": "fr", "kinds": "customer",
            "customer_inactive_months": "12", "prospect_inactive_months": "36",
            "step0_day": "0", "step0_channel": "email", "step0_template": "reconsent",
            "step1_day": "10", "step1_channel": "sms", "step1_template": "reconsent"}
    resp = admin.post("/admin/campaigns", form)
    assert resp.status_code == 303
    campaign_id = int(resp.headers["location"].rsplit("/", 1)[1])
    with Session(admin.rt.engine) as s:
        saved = s.get(Campaign, campaign_id)
    assert saved is not None and [st["template"] for st in saved.plan["steps"]] == ["reconsent", "reconsent"]
    assert saved.plan["audience"]["kinds"] == ["customer"]

    bad = admin.post("/admin/campaigns", {**form, "step1_day": "40"})
    assert bad.status_code == 400 and "is not before the deadline" in bad.text and 'value="Winter"' in bad.text

    toml = (ROOT / "orchestrator" / "ops" / "demo" / "campaign.toml").read_bytes()
    resp = admin.post("/admin/campaigns", files={"file": ("winter.toml", toml, "application/toml")})
    assert resp.status_code == 303
    bad = admin.post("/admin/campaigns", files={"file": ("w.toml", b"name = 'x'\ndeadline_days = 0\n", "text/plain")})
    assert bad.status_code == 400 and "w.toml: &#39;deadline_days&#39; must be a whole number &gt; 0" in bad.text


def test_preview_every_step_and_locale_with_sms_encoding_and_sandboxed_email(admin: Console,
                                                                             write_csv: Callable[..., Path]) -> None:
    import_contacts(admin.rt, write_csv([person(1), person(2, kind="prospect")]))
    campaign_id = create_campaign(admin.rt, plan())
    page = admin.client.get(f"/admin/campaigns/{campaign_id}").text
    assert page.count('<section class="card preview"') == 3 * 2
    assert page.count('<iframe class="mail" sandbox=""') == 2 * 2
    assert re.search(r'id="audience-size">1<', page)  # the prospect is not inactive for 36 months
    assert "GSM-7" in page or "UCS-2" in page and "segment" in page
    frame = admin.client.get(f"/admin/campaigns/{campaign_id}/preview/0/fr")
    csp = frame.headers["content-security-policy"]
    assert "sandbox" in csp and "default-src 'none'" in csp and "script-src" not in csp
    assert "frame-ancestors 'self'" in csp and frame.headers["x-frame-options"] == "SAMEORIGIN"
    assert admin.client.get(f"/admin/campaigns/{campaign_id}/preview/2/fr").status_code == 404  # SMS step


def test_sms_preview_names_the_characters_that_force_ucs2(admin: Console, tmp_path: Path) -> None:
    from orchestrator.campaigns.service import preview_campaign

    campaign_id = create_campaign(admin.rt, plan())
    sms = [p for p in preview_campaign(admin.rt, campaign_id) if p.channel == "sms"]
    page = admin.client.get(f"/admin/campaigns/{campaign_id}").text
    for p in sms:
        assert f'<span class="enc enc-{p.encoding}">{p.encoding}</span>' in page
        for ch in p.ucs2_chars:
            assert f'<code class="ucs2">{ch}</code>' in page


def test_launch_pause_resume_need_confirmation(admin: Console, write_csv: Callable[..., Path]) -> None:
    import_contacts(admin.rt, write_csv([person(1), person(2)]))
    campaign_id = create_campaign(admin.rt, plan())

    def state() -> str:
        with Session(admin.rt.engine) as s:
            return s.get(Campaign, campaign_id).state  # type: ignore[union-attr]

    ask = admin.post(f"/admin/campaigns/{campaign_id}/launch")
    assert ask.status_code == 200 and "2 contact(s)" in ask.text and state() == "draft"
    assert admin.post(f"/admin/campaigns/{campaign_id}/launch", {"confirm": "yes"}).status_code == 303
    assert state() == "running"
    assert admin.post(f"/admin/campaigns/{campaign_id}/launch", {"confirm": "yes"}).status_code == 409
    admin.post(f"/admin/campaigns/{campaign_id}/pause")
    assert state() == "running"
    admin.post(f"/admin/campaigns/{campaign_id}/pause", {"confirm": "yes"})
    assert state() == "paused"
    admin.post(f"/admin/campaigns/{campaign_id}/resume", {"confirm": "yes"})
    assert state() == "running"


def test_funnel_numbers_are_those_of_campaign_status_json(admin: Console, write_csv: Callable[..., Path],
                                                          tmp_path: Path) -> None:
    rt = admin.rt
    campaign_id = launch(rt, write_csv([person(1), person(2), person(3, phone="")]))
    from orchestrator.delivery.worker import dispatch_once

    run(dispatch_once(rt))
    from starlette.testclient import TestClient

    from preference_centre.app import create_app

    TestClient(create_app(rt)).post(f"/p/{rt.links.dumps('page', LinkClaims(1, campaign_id, 'email'))}",
                                    data={"email": "yes", "action": "confirm"})
    TestClient(create_app(rt)).post(f"/p/{rt.links.dumps('page', LinkClaims(2, campaign_id, 'email'))}",
                                    data={"action": "decline"})
    status = campaign_status(rt, campaign_id)
    assert (status["confirmed"], status["declined"], status["email"]["sent"]) == (1, 1, 3)

    served = json.loads(admin.client.get(f"/admin/campaigns/{campaign_id}/status.json").text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONSENT_")}
    env.update({"RECONSENT_DATABASE__URL": rt.config.database_url, "RECONSENT_NOW": rt.clock.now().isoformat()})
    cli = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "campaign", "status", str(campaign_id), "--json"],
                         env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=True)
    assert served == json.loads(cli.stdout) == json.loads(json.dumps(status))

    html = admin.client.get(f"/admin/campaigns/{campaign_id}/funnel").text
    shown = dict(re.findall(r'data-key="([\w.]+)">(\d+)<', html))
    for key in ("enrolled", "pending", "confirmed", "declined", "expired"):
        assert int(shown[key]) == status[key], key
    for channel in ("email", "sms"):
        for col in ("queued", "sent", "delivered", "failed", "bounced", "skipped", "unsubscribed"):
            assert int(shown[f"{channel}.{col}"]) == status[channel][col], (channel, col)
    for step in status["steps"]:
        assert int(shown[f"step{step['step']}.sent"]) == step["sent"]
    assert '<svg class="chart"' in html and "http://" not in html.split("<svg", 1)[1].replace(
        'xmlns="http://www.w3.org/2000/svg"', "")
    assert "2026-11-25: 1" in html  # confirmations over time


def test_suppression_check_import_and_request_register(admin: Console, clock: FixedClock, tmp_path: Path) -> None:
    listing = "email\nopposed@example.org\n+33612349999\nnot a thing\n"
    resp = admin.post("/admin/suppression/import", files={"file": ("bloctel.csv", listing.encode(), "text/csv")})
    assert "2 entries added, 0 already present, 1 rejected" in resp.text and ">4</td>" in resp.text
    hit = admin.post("/admin/suppression/check", {"address": "Opposed@Example.org"})
    assert "Suppressed" in hit.text and "imported" in hit.text
    assert "Not suppressed." in admin.post("/admin/suppression/check", {"address": "free@example.org"}).text

    assert admin.post("/admin/requests", {"kind": "access", "address": "someone@example.org",
                                          "received_on": "2026-10-01"}).status_code == 303
    assert admin.post("/admin/requests", {"kind": "erasure", "address": "other@example.org"}).status_code == 303
    page = admin.client.get("/admin/requests").text
    rows = page.split("<tbody>")[1].split("</tbody>")[0]
    assert rows.count('<tr class="overdue">') == 1 and "2026-11-01" in rows and "OVERDUE" in rows  # + 1 month
    assert "someone@example.org" not in page  # the register shows hashed keys only
    clock.advance(timedelta(days=31))
    assert admin.client.get("/admin/requests", follow_redirects=False).status_code == 303  # session expired
    admin.csrf = sign_in(admin.client, *ADMIN)
    assert admin.client.get("/admin/requests").text.count('<tr class="overdue">') == 2
    bad = admin.post("/admin/requests", {"kind": "access", "address": "x@example.org", "received_on": "2099-01-01"})
    assert bad.status_code == 400 and "in the future" in bad.text


def test_french_and_english(admin: Console) -> None:
    fr = admin.client.get("/admin/contacts", headers={"accept-language": "fr"}).text
    assert '<html lang="fr">' in fr and "Importer un fichier CSV" in fr
    admin.post("/admin/lang", {"lang": "en", "next": "/admin/contacts"})
    en = admin.client.get("/admin/contacts", headers={"accept-language": "fr"}).text
    assert '<html lang="en">' in en and "Import a CSV file" in en


def test_one_register_for_console_cli_and_exports(admin: Console, write_csv: Callable[..., Path]) -> None:
    """A request recorded in the console is the CLI's `dsr list` row, and a console export closes it."""
    from orchestrator.proof import requests as dsr

    rt = admin.rt
    import_contacts(rt, write_csv([person(1)]))
    assert admin.post("/admin/requests", {"kind": "access", "address": "person1@example.org"}).status_code == 303
    (request,) = dsr.list_requests(rt)
    assert (request.kind, request.state, request.subject_key) == ("access", "received", rt.key_for("person1@example.org"))
    admin.post("/admin/contacts/export", {"address": "person1@example.org"})
    (request,) = dsr.list_requests(rt)
    assert request.state == "done" and request.handled_by == f"console:{ADMIN[0]}"
    assert f"console:{ADMIN[0]}" in admin.client.get("/admin/requests").text


def test_the_console_records_every_kind_the_cli_does(admin: Console) -> None:
    """One list of kinds (orchestrator.proof.requests.KINDS) for `dsr add` and the console: the form
    offers each, and a rectification request lands in the register like the others."""
    from orchestrator.proof import requests as dsr

    form = admin.client.get("/admin/requests").text
    assert [k for k in dsr.KINDS if f'name="kind" value="{k}"' in form] == list(dsr.KINDS)
    assert "rectification" in dsr.KINDS
    assert admin.post("/admin/requests", {"kind": "rectification", "address": "someone@example.org"}).status_code == 303
    (request,) = dsr.list_requests(admin.rt)
    assert (request.kind, request.source, request.state) == ("rectification", "operator", "received")
    bad = admin.post("/admin/requests", {"kind": "objection", "address": "someone@example.org"})
    assert bad.status_code == 400 and "access, erasure or rectification" in bad.text


def test_dsr_add_accepts_exactly_the_register_kinds() -> None:
    """`reconsent dsr add --kind` and the console's form both offer orchestrator.proof.requests.KINDS
    (the CLI keeps a literal list so its start-up does not load the tables; this keeps them equal)."""
    import click

    from orchestrator.cli.main import main
    from orchestrator.proof import requests as dsr

    group = main.commands["dsr"]
    assert isinstance(group, click.Group)
    (kind,) = [p for p in group.commands["add"].params if p.name == "kind"]
    assert isinstance(kind.type, click.Choice) and tuple(kind.type.choices) == dsr.KINDS
