"""Issue 16 in the console: the import's mapping step and messages in the console's language, test
sends, planned launches, and drafts edited and deleted."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import func, select
from sqlmodel import Session

from orchestrator.campaigns.service import campaign_status, create_campaign
from orchestrator.contacts.service import import_contacts
from orchestrator.store.models import Campaign, Contact, OutboxMessage
from tests.admin.conftest import Console
from tests.support.factories import person, plan

EXPORT = ("N° adhérent;Statut;Courriel;Prénom\r\nA-1;client;zoe@exemple.fr;Zoé\r\n"
          "A-2;prospect;rene@exemple.fr;René\r\n").encode("cp1252")


def test_a_header_it_does_not_understand_opens_the_mapping_step(admin: Console) -> None:
    resp = admin.post("/admin/contacts/import", files={"file": ("export.csv", EXPORT, "text/csv")})
    assert resp.status_code == 400 and 'id="mapping"' in resp.text
    assert "Line 1: header must name the columns" in resp.text
    assert "File read as Windows-1252, columns separated by &#39;;&#39;" in resp.text
    assert "<td>Zoé</td>" in resp.text  # the first rows, decoded
    assert re.search(r'name="map_email".*?<option value="Courriel" selected>', resp.text, re.DOTALL)
    upload = re.search(r'name="upload" value="([0-9a-f]{32})"', resp.text)
    assert upload is not None
    done = admin.post("/admin/contacts/import/mapped", data={
        "upload": upload.group(1), "map_external_id": "N° adhérent", "map_kind": "Statut", "map_email": "Courriel"})
    assert done.status_code == 200 and "2 rows read: 2 created" in done.text
    with Session(admin.rt.engine) as s:
        assert s.execute(select(func.count()).select_from(Contact)).scalar_one() == 2
    again = admin.post("/admin/contacts/import/mapped", data={"upload": upload.group(1)})
    assert again.status_code == 400 and "no longer here" in again.text  # removed once imported
    forged = admin.post("/admin/contacts/import/mapped", data={"upload": "../../etc/passwd"})
    assert forged.status_code == 400


def test_import_errors_in_french_with_their_line_numbers(admin: Console) -> None:
    admin.client.cookies.set("reconsent_admin_lang", "fr")
    page = admin.client.get("/admin/contacts")
    assert 'id="expected-columns"' in page.text and "courriel" in page.text  # every column, readable in full
    rows = "external_id,kind,email\nC-1,ami,a@example.org\nC-2,client,b@example.org\n"
    resp = admin.post("/admin/contacts/import", files={"file": ("c.csv", rows.encode(), "text/csv")})
    cells = [re.sub(r"<[^>]+>", "", c).strip()
             for c in re.findall(r"<td>(.*?)</td>", resp.text.split('class="rejects"')[1], re.DOTALL)]
    assert cells[:2] == ["2", "kind"] and "attendu\u00a0: client (customer) ou prospect, reçu &#39;ami&#39;" in cells[2]
    broken = admin.post("/admin/contacts/import", files={
        "file": ("c.csv", b'external_id,kind,email\nC-1,client,a@example.org\nC-2,client,"b@example.org\n', "text/csv")})
    assert broken.status_code == 400 and "Ligne 3\u00a0: un guillemet" in broken.text


def test_test_send_schedule_edit_and_delete_from_the_campaign_page(admin: Console,
                                                                    write_csv: Callable[..., Path]) -> None:
    rt = admin.rt
    import_contacts(rt, write_csv([person(1)]))
    campaign_id = create_campaign(rt, plan("Hiver"))
    base = f"/admin/campaigns/{campaign_id}"
    page = admin.client.get(base)
    assert 'id="test-send"' in page.text and 'name="at"' in page.text

    sent = admin.post(base + "/test-send", data={"to": "moi@exemple.fr", "step": "", "locale": "fr"})
    assert sent.status_code == 200 and 'id="test-results"' in sent.text and "[TEST]" in sent.text
    assert len(list(Path(rt.config.email.outbox_dir).glob("*.eml"))) == 2
    with Session(rt.engine) as s:
        assert s.execute(select(func.count()).select_from(OutboxMessage)).scalar_one() == 0
    bad = admin.post(base + "/test-send", data={"to": "pas-une-adresse"})
    assert bad.status_code == 400

    ask = admin.post(base + "/schedule", data={"at": "2026-11-26T09:00"})
    assert ask.status_code == 200 and "2026-11-26 09:00 (Europe/Paris)" in ask.text  # the confirmation step
    assert campaign_status(rt, campaign_id)["state"] == "draft"
    done = admin.post(base + "/schedule", data={"at": "2026-11-26T09:00", "confirm": "yes"})
    assert done.status_code == 303
    status = campaign_status(rt, campaign_id)
    assert (status["state"], status["launch_at"], status["enrolled"]) == ("scheduled", "2026-11-26T08:00:00Z", 0)
    assert 'id="launch-at"' in admin.client.get(base).text
    past = admin.post(base + "/schedule", data={"at": "2020-01-01T09:00", "confirm": "yes"})
    assert past.status_code == 409
    assert admin.post(base + "/unschedule", data={"confirm": "yes"}).status_code == 303
    assert campaign_status(rt, campaign_id)["state"] == "draft"

    form = admin.client.get(base + "/edit")
    assert form.status_code == 200 and 'value="Hiver"' in form.text
    fields = {"name": "Hiver 2026", "deadline_days": "20", "default_locale": "fr", "customer_inactive_months": "12",
              "prospect_inactive_months": "36", "kinds": "customer", "step0_day": "0", "step0_channel": "email",
              "step0_template": "reconsent"}
    assert admin.post(base + "/edit", data=fields).status_code == 303
    assert campaign_status(rt, campaign_id)["name"] == "Hiver 2026"

    assert admin.post(base + "/delete").status_code == 200  # asks first
    assert admin.post(base + "/delete", data={"confirm": "yes"}).status_code == 303
    with Session(rt.engine) as s:
        assert s.get(Campaign, campaign_id) is None
