"""Topics and named partners on the preference page (issue 18 §1–§2): offered from the config, nothing
pre-ticked but the person's own current choice, one ledger purpose each, and out through the results,
the contacts export, the API, the evidence and the webhooks."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlmodel import Session, select
from starlette.testclient import TestClient

from orchestrator.campaigns.results import RESULT_COLUMNS, iter_results, write_results
from orchestrator.choices_settings import Partner, Topic, partners_version
from orchestrator.consent import ledger
from orchestrator.contacts.export import export_table
from orchestrator.contacts.profile import contact_profile
from orchestrator.proof.evidence import campaign_evidence, write_csv
from orchestrator.rendering.links import LinkClaims
from orchestrator.runtime import Runtime
from orchestrator.store.models import ConsentEvent, Wording
from preference_centre.app import create_app
from orchestrator.delivery.worker import dispatch_once
from orchestrator.webhook_settings import WebhookEndpoint
from tests.orchestrator.delivery.test_webhooks import EMAIL_ONLY, Receiver, receiver, with_endpoints  # noqa: F401
from tests.support.factories import launch, person, run

TOPICS = [Topic("news", (("fr", "Nouveautés"), ("en", "News"))),
          Topic("sales", (("fr", "Soldes et promotions"), ("en", "Sales")))]
PARTNERS = [Partner("transport-express", "Transport Express SA",
                    (("fr", "vous proposer ses offres de livraison"), ("en", "offer you its delivery services")),
                    "https://transport-express.example/confidentialite"),
            Partner("banque-verte", "Banque Verte",
                    (("fr", "vous présenter ses crédits"), ("en", "present its loans")),
                    "https://banque-verte.example/vie-privee")]


def configure(rt: Runtime, topics: list[Topic] | None = None, partners: list[Partner] | None = None) -> Runtime:
    rt.config.topics = list(TOPICS if topics is None else topics)
    rt.config.partners = list(PARTNERS if partners is None else partners)
    return rt


@pytest.fixture
def page(rt: Runtime, write_csv: Callable[..., Path]) -> tuple[Runtime, TestClient, str, int]:
    configure(rt)
    campaign_id = launch(rt, write_csv([person(1), person(2)]))
    token = rt.links.dumps("page", LinkClaims(contact_id=1, campaign_id=campaign_id, channel="email"))
    return rt, TestClient(create_app(rt)), f"/p/{token}", campaign_id


def events(rt: Runtime, contact_id: int = 1) -> list[tuple[str, str, str]]:
    with Session(rt.engine) as s:
        return [(e.channel, e.purpose, e.action) for e in
                s.exec(select(ConsentEvent).where(ConsentEvent.contact_id == contact_id).order_by(ConsentEvent.id))]


def choice_events(rt: Runtime) -> list[tuple[str, str, str]]:
    return [e for e in events(rt) if e[1].startswith(("topic:", "partner:"))]


def test_the_page_lists_topics_and_named_partners_nothing_ticked(page: tuple[Runtime, TestClient, str, int]) -> None:
    _rt, client, url, _ = page
    html = client.get(url).text
    assert "Les sujets qui vous intéressent" in html and "Nouveautés" in html and "Soldes et promotions" in html
    assert 'name="topic" value="news">' in html and 'name="topic" value="sales">' in html  # not checked
    assert "Transport Express SA" in html and "vous proposer ses offres de livraison" in html
    assert 'href="https://transport-express.example/confidentialite"' in html
    assert "Politique de confidentialité de Banque Verte" in html
    assert 'name="partner" value="transport-express">' in html and 'name="partners" value="yes">' in html
    assert "Tous les partenaires de cette liste" in html
    assert f"Liste des partenaires, version {partners_version(PARTNERS)}" in html
    assert " checked" not in html
    english = client.get(url + "?lang=en").text
    assert "News" in english and "offer you its delivery services" in english


def test_without_partners_the_unnamed_partners_box_is_gone(rt: Runtime, write_csv: Callable[..., Path]) -> None:
    """The CNIL: consent to unnamed partners is not valid. With no [[partners]], no partners box, and an
    old page's ``partners=yes`` records nothing for partners."""
    campaign_id = launch(rt, write_csv([person(1)]))
    client = TestClient(create_app(rt))
    url = "/p/" + rt.links.dumps("page", LinkClaims(contact_id=1, campaign_id=campaign_id, channel="email"))
    html = client.get(url).text
    assert 'name="partners"' not in html and "partenaires" not in html.lower()
    assert client.post(url, data={"email": "yes", "partners": "yes", "action": "confirm"}).status_code == 200
    assert [p for _, p, _ in events(rt)] == ["marketing", "marketing"]


def test_each_choice_is_an_event_and_only_a_granted_one_is_withdrawn(page: tuple[Runtime, TestClient, str, int]) -> None:
    rt, client, url, _ = page
    resp = client.post(url, data={"email": "yes", "topic": ["news"], "partner": ["banque-verte"],
                                  "action": "confirm"})
    assert resp.status_code == 200
    assert "Nouveautés\u00a0: <strong>oui</strong>" in resp.text and "Transport Express SA\u00a0: <strong>non" in resp.text
    assert choice_events(rt) == [("email", "topic:news", "granted"), ("sms", "topic:news", "granted"),
                                 ("email", "partner:banque-verte", "granted"),
                                 ("sms", "partner:banque-verte", "granted")]
    html = client.get(url).text  # coming back: ticked only what the person has [R1]
    assert 'value="news" checked' in html and 'value="banque-verte" checked' in html
    assert 'value="sales">' in html and 'value="transport-express">' in html
    # untick news, keep the bank, tick sales: news is withdrawn; nothing for the never-granted partner
    client.post(url, data={"email": "yes", "topic": ["sales"], "partner": ["banque-verte"], "action": "confirm"})
    assert choice_events(rt)[4:] == [("email", "topic:news", "withdrawn"), ("sms", "topic:news", "withdrawn"),
                                     ("email", "topic:sales", "granted"), ("sms", "topic:sales", "granted"),
                                     ("email", "partner:banque-verte", "granted"),
                                     ("sms", "partner:banque-verte", "granted")]
    # "unsubscribe me from everything": every granted choice is withdrawn, nothing else
    client.post(url, data={"action": "decline"})
    assert choice_events(rt)[10:] == [("email", "topic:sales", "withdrawn"), ("sms", "topic:sales", "withdrawn"),
                                      ("email", "partner:banque-verte", "withdrawn"),
                                      ("sms", "partner:banque-verte", "withdrawn")]
    assert " checked" not in client.get(url).text
    with Session(rt.engine) as s:
        assert ledger.verify(s).broken_at is None


def test_all_listed_partners_ticks_each_and_the_wording_names_the_list(page: tuple[Runtime, TestClient, str, int]) -> None:
    rt, client, url, _ = page
    client.post(url, data={"email": "yes", "partners": "yes", "action": "confirm"})  # also an old page's box
    assert {p for _, p, a in choice_events(rt) if a == "granted"} == {"partner:transport-express",
                                                                      "partner:banque-verte"}
    version = partners_version(PARTNERS)
    with Session(rt.engine) as s:
        event = s.exec(select(ConsentEvent).where(ConsentEvent.purpose == "partner:banque-verte")).first()
        assert event is not None and event.wording_name == f"preference_page;partners={version}"
        wording = s.get(Wording, event.wording_hash)
    assert wording is not None
    assert "Banque Verte: vous présenter ses crédits (https://banque-verte.example/vie-privee)" in wording.text
    assert f"Liste des partenaires, version {version}" in wording.text and "Nouveautés" in wording.text


def test_a_new_partner_gets_a_new_version_and_is_not_covered(page: tuple[Runtime, TestClient, str, int]) -> None:
    rt, client, url, _ = page
    client.post(url, data={"email": "yes", "partners": "yes", "action": "confirm"})
    before = partners_version(rt.config.partners)
    newco = Partner("newco", "NewCo", (("fr", "vous écrire"), ("en", "write to you")), "https://newco.example/p")
    configure(rt, partners=[*PARTNERS, newco])
    assert partners_version(rt.config.partners) != before
    html = client.get(url).text
    assert 'value="transport-express" checked' in html and 'value="newco">' in html  # not covered
    assert contact_profile(rt, "C-1")["partners"] == ["banque-verte", "transport-express"]


def test_choices_go_out_in_results_export_api_evidence(page: tuple[Runtime, TestClient, str, int]) -> None:
    rt, client, url, campaign_id = page
    client.post(url, data={"email": "yes", "topic": ["news", "sales"], "partner": ["transport-express"],
                           "action": "confirm"})
    assert RESULT_COLUMNS[:10] == ("external_id", "kind", "state", "email_consent", "sms_consent", "partners_consent",
                                   "answered_at", "source", "wording_version", "event_hash")  # SPEC §11 first
    assert RESULT_COLUMNS[10:12] == ("topics", "partners")
    rows = {r.external_id: r for r in iter_results(rt, campaign_id)}
    assert (rows["C-1"].topics, rows["C-1"].partners, rows["C-1"].partners_consent) == (
        "news;sales", "transport-express", "granted")
    assert (rows["C-2"].topics, rows["C-2"].partners, rows["C-2"].partners_consent) == ("", "", "none")
    out = io.StringIO()
    write_results(out, iter_results(rt, campaign_id), "json")
    assert json.loads(out.getvalue())[0]["topics"] == "news;sales"
    table = export_table(rt)
    exported = [dict(zip(table.header, row, strict=True)) for row in table.rows]
    assert (exported[0]["topics"], exported[0]["partners"]) == ("news;sales", "transport-express")
    profile = contact_profile(rt, "C-1")
    assert (profile["topics"], profile["partners"]) == (["news", "sales"], ["transport-express"])
    evidence = campaign_evidence(rt, campaign_id)
    mine = next(c for c in evidence["contacts"] if any(e["purpose"] == "topic:news" for e in c["consent_events"]))
    purposes = {(e["purpose"], e["action"]) for e in mine["consent_events"]}
    assert {("topic:news", "granted"), ("topic:sales", "granted"), ("partner:transport-express", "granted")} <= purposes
    csv_out = io.StringIO()
    write_csv(evidence, csv_out)
    assert f"partner:transport-express,granted,preference_centre,preference_page;partners={partners_version(PARTNERS)}" \
        in csv_out.getvalue()


def test_webhooks_carry_the_topic_and_partner_purpose(make_rt: Callable[..., Runtime], write_csv: Callable[..., Path],
                                                      receiver: Receiver) -> None:  # noqa: F811
    rt = configure(with_endpoints(make_rt, WebhookEndpoint(receiver.url, receiver.secret)))
    campaign_id = launch(rt, write_csv([person(1)]), steps=EMAIL_ONLY)
    client = TestClient(create_app(rt))
    url = "/p/" + rt.links.dumps("page", LinkClaims(contact_id=1, campaign_id=campaign_id, channel="email"))
    client.post(url, data={"email": "yes", "topic": ["news"], "partner": ["banque-verte"], "action": "confirm"})
    client.post(url, data={"email": "yes", "partner": ["banque-verte"], "action": "confirm"})
    run(dispatch_once(rt))
    assert all(r["valid"] for r in receiver.received)
    got = [(e["type"], e["data"]["channel"], e["data"]["purpose"]) for e in receiver.events()
           if e["data"].get("purpose", "").startswith(("topic:", "partner:"))]
    assert sorted(got) == sorted([
        ("consent.granted", "email", "topic:news"), ("consent.granted", "sms", "topic:news"),
        ("consent.granted", "email", "partner:banque-verte"), ("consent.granted", "sms", "partner:banque-verte"),
        ("consent.withdrawn", "email", "topic:news"), ("consent.withdrawn", "sms", "topic:news"),
        ("consent.granted", "email", "partner:banque-verte"), ("consent.granted", "sms", "partner:banque-verte")])
