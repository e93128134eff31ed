"""Expired links and fresh links [T3], key rotation [T4], and the self-service data rights [R8]."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select
from starlette.testclient import TestClient

from orchestrator.delivery.worker import dispatch_once
from orchestrator.domain.clock import FixedClock
from orchestrator.rendering.links import LinkClaims
from orchestrator.runtime import Runtime
from orchestrator.store.models import ConsentEvent, Contact, SelfServiceRequest, SuppressionEntry
from preference_centre.app import create_app
from tests.preference_centre.test_pages import snapshot
from tests.support.factories import launch, person, run
from tests.support.smtp import SmtpServer


def _smtp_rt(make_rt: Callable[..., Runtime], smtp_server: SmtpServer, **security: object) -> Runtime:
    return make_rt(email={"transport": "smtp", "host": "127.0.0.1", "port": smtp_server.port},
                   security=security)


def _requests(rt: Runtime) -> list[tuple[str, str, str | None]]:
    with Session(rt.engine) as s:
        return [(r.kind, r.outcome, r.channel) for r in s.exec(select(SelfServiceRequest).order_by(SelfServiceRequest.id))]


def _link(mail_text: str, prefix: str = "/p/") -> str:
    found = re.search(r"https://prefs\.example\.com(" + prefix + r"\S+)", mail_text)
    assert found, mail_text
    return found.group(1)


def test_expired_link_offers_a_fresh_one_sent_to_the_address_on_file(
        make_rt: Callable[..., Runtime], smtp_server: SmtpServer, write_csv: Callable[..., Path],
        clock: FixedClock) -> None:
    rt = _smtp_rt(make_rt, smtp_server)
    campaign_id = launch(rt, write_csv([person(1), person(2)]))
    page = rt.links.dumps("page", LinkClaims(1, campaign_id, "email"))
    client = TestClient(create_app(rt))
    clock.advance(timedelta(days=rt.config.security.page_link_max_age_days + 1))
    before = snapshot(rt)

    expired = client.get(f"/p/{page}")
    assert expired.status_code == 410
    assert f'action="/p/{page}/renew"' in expired.text and "nouveau lien" in expired.text
    # Whatever the form says, the link goes to the address on file, never to one typed in.
    resp = client.post(f"/p/{page}/renew", data={"email": "attacker@evil.example", "action": "renew"})
    assert resp.status_code == 200 and "p•••@example.org" in resp.text and "attacker" not in resp.text
    assert [r.rcpt_tos for r in smtp_server.received] == [["person1@example.org"]]
    mail = smtp_server.received[0].message
    assert "nouveau lien" in str(mail["Subject"])
    fresh = _link(mail.get_body(("plain",)).get_content())  # type: ignore[union-attr]
    assert snapshot(rt) == before  # asking for a link changed no consent
    assert _requests(rt) == [("fresh_link", "sent", "email")]

    # The fresh link works and answers the same campaign.
    assert client.get(fresh).status_code == 200
    assert client.post(fresh, data={"email": "yes", "action": "confirm"}).status_code == 200
    with Session(rt.engine) as s:
        (event, _sms) = s.exec(select(ConsentEvent).order_by(ConsentEvent.id)).all()
    assert (event.contact_id, event.campaign_id, event.action) == (1, campaign_id, "confirmed")


def test_fresh_links_are_rate_limited_per_person_and_recorded(
        make_rt: Callable[..., Runtime], smtp_server: SmtpServer, write_csv: Callable[..., Path],
        clock: FixedClock) -> None:
    rt = _smtp_rt(make_rt, smtp_server, fresh_links_per_day=2)
    campaign_id = launch(rt, write_csv([person(1)]))
    unsub = rt.links.dumps("unsubscribe", LinkClaims(1, campaign_id, "email"))
    client = TestClient(create_app(rt))
    clock.advance(timedelta(days=400))
    codes = [client.post(f"/u/{unsub}/renew").status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    assert len(smtp_server.received) == 2
    assert [o for _, o, _ in _requests(rt)] == ["sent", "sent", "rate_limited"]
    clock.advance(timedelta(hours=25))
    assert client.post(f"/u/{unsub}/renew").status_code == 200  # a new day
    assert len(smtp_server.received) == 3


def test_tampered_renewal_sends_nothing(make_rt: Callable[..., Runtime], smtp_server: SmtpServer,
                                        write_csv: Callable[..., Path]) -> None:
    rt = _smtp_rt(make_rt, smtp_server)
    campaign_id = launch(rt, write_csv([person(1)]))
    page = rt.links.dumps("page", LinkClaims(1, campaign_id, "email"))
    client = TestClient(create_app(rt))
    assert client.post(f"/p/{page[:-2]}xx/renew").status_code == 400
    assert client.post(f"/u/{page}/renew").status_code == 400  # wrong purpose
    assert client.post("/s/zzzzzzzzzzzz/renew").status_code == 400
    assert smtp_server.received == [] and _requests(rt) == []


def test_expired_short_sms_link_renews_by_sms(make_rt: Callable[..., Runtime], write_csv: Callable[..., Path],
                                              clock: FixedClock, tmp_path: Path) -> None:
    rt = make_rt()
    launch(rt, write_csv([person(1)]), steps=[{"day": 0, "channel": "sms", "template": "reconsent"}])
    clock.advance(timedelta(hours=1))
    assert run(dispatch_once(rt)).sent == 1
    sms_log = tmp_path / "sms.jsonl"
    code = re.search(r"/s/(\w+)", sms_log.read_text()).group(1)  # type: ignore[union-attr]
    client = TestClient(create_app(rt))
    assert client.get(f"/s/{code}").status_code == 200
    clock.advance(timedelta(days=rt.config.security.page_link_max_age_days + 1))
    expired = client.get(f"/s/{code}")
    assert expired.status_code == 410 and f'action="/s/{code}/renew"' in expired.text
    assert client.post(f"/s/{code}/renew").status_code == 200
    lines = sms_log.read_text().splitlines()
    assert len(lines) == 2 and "+33612340001" in lines[1] and "/p/" in lines[1]
    assert _requests(rt) == [("fresh_link", "sent", "sms")]


def test_key_rotation_mid_campaign(make_rt: Callable[..., Runtime], smtp_server: SmtpServer,
                                   write_csv: Callable[..., Path], clock: FixedClock) -> None:
    smtp = {"transport": "smtp", "host": "127.0.0.1", "port": smtp_server.port}
    old = make_rt(email=smtp, security={"signing_keys": ["old-key-0123456789abcdef"]})
    launch(old, write_csv([person(1), person(2)]))
    assert run(dispatch_once(old)).sent == 2  # day 0 links signed with the old key
    old_link = _link(smtp_server.received[0].message.get_body(("plain",)).get_content())  # type: ignore[union-attr]

    # Rotation: the new key signs, the old one still verifies.
    rotated = make_rt(email=smtp, security={"signing_keys": ["new-key-fedcba9876543210", "old-key-0123456789abcdef"]})
    clock.advance(timedelta(days=7))
    run(dispatch_once(rotated))  # day 7 reminder to both, signed with the new key
    new_link = _link(smtp_server.received[-1].message.get_body(("plain",)).get_content())  # type: ignore[union-attr]
    assert new_link != old_link
    client = TestClient(create_app(rotated))
    assert client.get(old_link).status_code == 200 and client.get(new_link).status_code == 200
    # A server that only knows the old key refuses links signed with the new one, and vice versa.
    assert TestClient(create_app(old)).get(new_link).status_code == 400
    retired = make_rt(email=smtp, security={"signing_keys": ["new-key-fedcba9876543210"]})
    assert TestClient(create_app(retired)).get(old_link).status_code == 400
    assert TestClient(create_app(retired)).get(new_link).status_code == 200


def _rights_url(client: TestClient, page_link: str) -> str:
    found = re.search(r'href="(/r/[^"]+)"', client.get(page_link).text)
    assert found
    return found.group(1)


def test_download_my_data_is_a_post_behind_a_rights_token_and_recorded(
        rt: Runtime, write_csv: Callable[..., Path]) -> None:
    campaign_id = launch(rt, write_csv([person(1)]))
    client = TestClient(create_app(rt))
    page = "/p/" + rt.links.dumps("page", LinkClaims(1, campaign_id, "email"))
    client.post(page, data={"email": "yes", "action": "confirm"})
    rights = _rights_url(client, page)
    assert client.get(rights).status_code == 200 and _requests(rt) == []  # GET only shows
    resp = client.post(f"{rights}/export")
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/json"
    assert "attachment" in resp.headers["content-disposition"]
    (me,) = json.loads(resp.content)["people"]
    assert me["profile"]["email"] == "person1@example.org"
    assert [(e["channel"], e["action"]) for e in me["consent_events"]] == [("email", "confirmed"), ("sms", "not_granted")]
    assert me["consent_events"][0]["wording_text"] and me["consent_events"][0]["ip"] == "testclient"
    assert {(m["channel"], m["template"]) for m in me["messages"]} == {("email", "reconsent"), ("email", "reminder"),
                                                                        ("sms", "reconsent")}
    assert _requests(rt) == [("export", "done", None)]
    # A page token is not a rights token, and rights tokens expire quickly.
    assert client.post(page.replace("/p/", "/r/") + "/export").status_code == 400


def test_erase_my_data_needs_a_second_step_and_keeps_only_the_hashed_suppression(
        rt: Runtime, write_csv: Callable[..., Path], clock: FixedClock) -> None:
    campaign_id = launch(rt, write_csv([person(1), person(2)]))
    client = TestClient(create_app(rt))
    rights = _rights_url(client, "/p/" + rt.links.dumps("page", LinkClaims(1, campaign_id, "email")))
    before = snapshot(rt)
    confirm_page = client.get(f"{rights}/erase")
    assert confirm_page.status_code == 200 and 'name="confirm" value="yes"' in confirm_page.text
    assert client.post(f"{rights}/erase").status_code == 400  # no confirmation: nothing happens
    assert snapshot(rt) == before
    done = client.post(f"{rights}/erase", data={"confirm": "yes"})
    assert done.status_code == 200 and "effacées" in done.text
    with Session(rt.engine) as s:
        erased, other = s.get(Contact, 1), s.get(Contact, 2)
        entries = {(e.key, e.channel, e.reason) for e in s.exec(select(SuppressionEntry))}
    assert erased is not None and erased.erased_at is not None and erased.email is None and erased.phone is None
    assert other is not None and other.email == "person2@example.org"
    assert entries == {(rt.key_for("person1@example.org"), "email", "erased"),
                       (rt.key_for("+33612340001"), "sms", "erased")}
    assert _requests(rt) == [("erase", "done", None)]
    assert client.get(rights).status_code == 404  # nothing left to show
    clock.advance(timedelta(days=rt.config.security.rights_link_max_age_days + 1))
    assert client.get(rights).status_code == 410


def test_a_refused_fresh_link_is_recorded_without_the_address(
        make_rt: Callable[..., Runtime], smtp_server: SmtpServer, write_csv: Callable[..., Path],
        caplog: pytest.LogCaptureFixture) -> None:
    rt = _smtp_rt(make_rt, smtp_server)
    campaign_id = launch(rt, write_csv([person(1)]))
    smtp_server.handler.rcpt_replies["person1@example.org"] = "550 5.1.1 <person1@example.org> no such user"
    client = TestClient(create_app(rt))
    page = rt.links.dumps("page", LinkClaims(1, campaign_id, "email"))
    with caplog.at_level(logging.WARNING, logger="reconsent.web"):
        resp = client.post(f"/p/{page}/renew")
    assert resp.status_code == 503 and "pas pu envoyer" in resp.text and "Rien d’autre" in resp.text
    with Session(rt.engine) as s:
        rows = list(s.exec(select(SelfServiceRequest)))
    assert [(r.outcome, r.channel) for r in rows] == [("failed", "email")]
    assert rows[0].detail == "PermanentSendError 550"
    assert all("person1" not in (r.detail or "") for r in rows) and "person1" not in caplog.text
    assert smtp_server.received == []
