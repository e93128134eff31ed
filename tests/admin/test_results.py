"""A campaign's results page (issue 16 §4): who confirmed, declined, unsubscribed, bounced, expired or
has not answered, with filters, search by email or phone, paging and the CSV export of the filter;
per-step and per-locale response rates; the time-to-answer curve."""

from __future__ import annotations

import csv
import html
import io
import os
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from sqlalchemy import update
from starlette.testclient import TestClient

from orchestrator.campaigns.outcomes import campaign_outcomes, response_rates
from orchestrator.delivery.worker import dispatch_once
from orchestrator.domain.clock import FixedClock
from orchestrator.rendering.links import LinkClaims
from orchestrator.store.models import Contact, Enrolment, OutboxMessage
from preference_centre.app import create_app
from tests.admin.conftest import ADMIN, Console, sign_in
from tests.support.factories import launch, person, run

EMAIL_ONLY = [{"day": 0, "channel": "email", "template": "reconsent"}]


def words(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def six_outcomes(admin: Console, write_csv: Callable[..., Path]) -> int:
    """Six people, one per outcome: 1 confirms, 2 declines, 3 unsubscribes, 4 bounces, 5 expires,
    6 has not answered (5 is English). The answers come 30 hours after the launch (the console
    signs in again: its session has ended meanwhile)."""
    rt = admin.rt
    people = [person(n) for n in range(1, 7)]
    people[4]["locale"] = "en"
    campaign_id = launch(rt, write_csv(people), steps=EMAIL_ONLY)
    run(dispatch_once(rt))
    assert isinstance(rt.clock, FixedClock)
    rt.clock.advance(timedelta(hours=30))
    admin.csrf = sign_in(admin.client, *ADMIN)
    web = TestClient(create_app(rt))
    web.post(f"/p/{rt.links.dumps('page', LinkClaims(1, campaign_id, 'email'))}",
             data={"email": "yes", "action": "confirm"})
    web.post(f"/p/{rt.links.dumps('page', LinkClaims(2, campaign_id, 'email'))}", data={"action": "decline"})
    web.post(f"/u/{rt.links.dumps('unsubscribe', LinkClaims(3, campaign_id, 'email'))}",
             data={"List-Unsubscribe": "One-Click"})
    with rt.engine.begin() as conn:  # what a DSN and the sweep would leave (each tested where it is written)
        conn.execute(update(OutboxMessage).where(OutboxMessage.contact_id == 4).values(status="bounced"))  # type: ignore[arg-type]
        conn.execute(update(Enrolment).where(Enrolment.contact_id == 5).values(state="expired"))  # type: ignore[arg-type]
    return campaign_id


def test_one_outcome_per_person_with_filters_search_and_paging(
        admin: Console, write_csv: Callable[..., Path]) -> None:
    rt = admin.rt
    campaign_id = six_outcomes(admin, write_csv)
    page = campaign_outcomes(rt, campaign_id)
    assert {r.external_id: r.outcome for r in page.rows} == {
        "C-1": "confirmed", "C-2": "declined", "C-3": "unsubscribed", "C-4": "bounced", "C-5": "expired",
        "C-6": "pending"}
    assert page.counts == {"confirmed": 1, "declined": 1, "unsubscribed": 1, "bounced": 1, "expired": 1, "pending": 1}
    answered = [r for r in page.rows if r.answered_at is not None]
    assert {r.external_id for r in answered} == {"C-1", "C-2", "C-3"}
    assert all(r.answered_after_step == 0 for r in answered)

    resp = admin.client.get(f"/admin/campaigns/{campaign_id}/results?outcome=confirmed&outcome=declined")
    assert resp.status_code == 200
    rows = re.findall(r"<tr><td>(C-\d)</td>", resp.text)
    assert rows == ["C-1", "C-2"]
    assert "2 person(s) match." in words(resp.text)
    # search by a phone number as a French marketer types it, and by part of an email address
    by_phone = admin.client.get(f"/admin/campaigns/{campaign_id}/results", params={"q": "06 12 34 00 04"})
    assert re.findall(r"<tr><td>(C-\d)</td>", by_phone.text) == ["C-4"]
    by_email = admin.client.get(f"/admin/campaigns/{campaign_id}/results", params={"q": "PERSON6@"})
    assert re.findall(r"<tr><td>(C-\d)</td>", by_email.text) == ["C-6"]
    # paging keeps the filter
    two = campaign_outcomes(rt, campaign_id, page=2, page_size=4)
    assert (two.page, two.pages, two.total, [r.external_id for r in two.rows]) == (2, 2, 6, ["C-5", "C-6"])


def test_rates_and_time_to_answer(admin: Console, write_csv: Callable[..., Path]) -> None:
    rt = admin.rt
    campaign_id = six_outcomes(admin, write_csv)
    rates = response_rates(rt, campaign_id)
    assert rates["steps"] == [{"step": 0, "reached": 6, "answered": 3, "confirmed": 1}]
    assert rates["locales"] == [{"locale": "en", "enrolled": 1, "answered": 0, "confirmed": 0},
                                {"locale": "fr", "enrolled": 5, "answered": 3, "confirmed": 1}]
    assert rates["hours"] == [30, 30, 30]
    page = admin.client.get(f"/admin/campaigns/{campaign_id}/results").text
    assert "day 0: 0%; day 1: 50%" in page  # the curve's points, in its <desc>
    assert re.search(r'<table class="num" id="step-rates">.*<td>6</td><td>3</td><td>50%</td>', page, re.S)


def test_the_csv_export_is_the_current_filter(admin: Console, write_csv: Callable[..., Path]) -> None:
    campaign_id = six_outcomes(admin, write_csv)
    page = admin.client.get(f"/admin/campaigns/{campaign_id}/results?outcome=unsubscribed&outcome=bounced").text
    form = re.search(r'<form method="post" action="([^"]+results\.csv)".*?</form>', page, re.S)
    assert form
    fields = re.findall(r'<input type="hidden" name="(outcome|q)" value="([^"]*)">', form.group(0))
    assert fields == [("outcome", "unsubscribed"), ("outcome", "bounced"), ("q", "")]
    data: dict[str, str | list[str]] = {"csrf": admin.csrf, "q": "",
                                        "outcome": [v for k, v in fields if k == "outcome"]}
    resp = admin.client.post(form.group(1), data=data)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(resp.content.decode("utf-8-sig"))))
    assert [(r["external_id"], r["outcome"]) for r in rows] == [("C-3", "unsubscribed"), ("C-4", "bounced")]
    assert admin.client.get("/admin/audit").text.count("campaign.results.export") == 1
    # a GET changes nothing and exports nothing
    assert admin.client.get(form.group(1)).status_code == 405


def test_french_results_page(admin: Console, write_csv: Callable[..., Path]) -> None:
    campaign_id = six_outcomes(admin, write_csv)
    admin.client.cookies.set("reconsent_admin_lang", "fr")
    raw = html.unescape(admin.client.get(f"/admin/campaigns/{campaign_id}/results").text)
    page = words(raw)
    assert "Résultats de Test campaign" in page and "désinscrit" in page
    assert "6\u00a0personne(s) correspondent." in raw and "jour\u00a01\u00a0: 50\u00a0%" in raw


def test_the_csv_export_neutralises_formulas(admin: Console, write_csv: Callable[..., Path]) -> None:
    """Issue 15: every CSV the product writes goes through the one writer; the console's results export
    wrote a CRM id starting with "=" raw."""
    campaign_id = launch(admin.rt, write_csv([person(1, external_id="=HYPERLINK(\"http://x.example\")")]))
    resp = admin.post(f"/admin/campaigns/{campaign_id}/results.csv", {"q": ""})
    assert resp.status_code == 200
    (row,) = list(csv.DictReader(io.StringIO(resp.content.decode("utf-8-sig"))))
    assert row["external_id"] == "'=HYPERLINK(\"http://x.example\")"


def test_the_crm_file_is_the_clis_campaign_results(admin: Console, write_csv: Callable[..., Path],
                                                  database_url: str, tmp_path: Path) -> None:
    """Issue 16 §4 "the export of the CRM issue": the console downloads the rows of issue 17's
    `reconsent campaign results ID` — the same bytes as the real CLI's output on the same database,
    CSV (through the one CSV writer: a formula-like CRM id is neutralised) and JSON; audited."""
    campaign_id = six_outcomes(admin, write_csv)
    with admin.rt.engine.begin() as conn:  # a CRM id a spreadsheet would read as a formula
        conn.execute(update(Contact).where(Contact.id == 6).values(external_id="=1+1"))  # type: ignore[arg-type]
    page = admin.client.get(f"/admin/campaigns/{campaign_id}/results").text
    assert f'action="/admin/campaigns/{campaign_id}/crm-results"' in page
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONSENT_")}
    env["RECONSENT_DATABASE__URL"] = database_url
    for fmt in ("csv", "json"):
        resp = admin.post(f"/admin/campaigns/{campaign_id}/crm-results", {"format": fmt})
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-disposition"] == f'attachment; filename="campaign-{campaign_id}-crm.{fmt}"'
        cli = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "campaign", "results", str(campaign_id),
                              "--format", fmt], env=env, cwd=tmp_path, capture_output=True, timeout=120, check=True)
        assert resp.content == cli.stdout and len(cli.stdout) > 200
    rows = list(csv.DictReader(io.StringIO(admin.post(f"/admin/campaigns/{campaign_id}/crm-results",
                                                      {"format": "csv"}).text)))
    assert [(r["external_id"], r["state"]) for r in rows] == [
        ("C-1", "confirmed"), ("C-2", "declined"), ("C-3", "declined"), ("C-4", "pending"), ("C-5", "expired"),
        ("'=1+1", "pending")]
    audit = admin.client.get("/admin/audit").text
    assert audit.count("campaign.crm_results.export") == 3
    assert admin.client.get(f"/admin/campaigns/{campaign_id}/crm-results").status_code == 405
    assert admin.post("/admin/campaigns/999/crm-results", {"format": "csv"}).status_code == 404
