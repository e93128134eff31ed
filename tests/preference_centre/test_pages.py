from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select
from starlette.testclient import TestClient

from orchestrator.consent import ledger
from orchestrator.domain.clock import FixedClock
from orchestrator.rendering.links import LinkClaims
from orchestrator.runtime import Runtime
from orchestrator.store.models import (
    ConsentEvent,
    Contact,
    Enrolment,
    SelfServiceRequest,
    SuppressionEntry,
    Wording,
)
from preference_centre.app import create_app
from tests.support.factories import launch, person


def snapshot(rt: Runtime) -> tuple:
    with Session(rt.engine) as s:
        return (
            [(e.state, e.answered_at) for e in s.exec(select(Enrolment).order_by(Enrolment.id))],
            len(list(s.exec(select(ConsentEvent)))),
            len(list(s.exec(select(SuppressionEntry)))),
        )


@pytest.fixture
def setup(rt: Runtime, write_csv: Callable[..., Path]) -> tuple[Runtime, TestClient, str, str]:
    campaign_id = launch(rt, write_csv([person(1, first_name="Zoé")]))
    claims = LinkClaims(contact_id=1, campaign_id=campaign_id, channel="email")
    return rt, TestClient(create_app(rt)), rt.links.dumps("page", claims), rt.links.dumps("unsubscribe", claims)


def test_get_never_changes_state(setup: tuple[Runtime, TestClient, str, str]) -> None:
    rt, client, page, unsub = setup
    before = snapshot(rt)
    for _ in range(5):  # link scanners, previews, prefetchers
        assert client.get(f"/p/{page}").status_code == 200
        assert client.get(f"/u/{unsub}").status_code == 200
        client.head(f"/p/{page}")
    assert snapshot(rt) == before


def test_page_shows_sender_masked_address_and_no_unnamed_partners(setup: tuple[Runtime, TestClient, str, str]) -> None:
    _rt, client, page, _ = setup
    html = client.get(f"/p/{page}").text
    assert "Boutique Lumière" in html and "p•••@example.org" in html and "person1@example.org" not in html
    assert 'name="partners"' not in html  # no partner configured: no box for unnamed partners (issue 18)
    assert html.count('<button type="submit"') == 4  # yes, the two alternatives to leaving (issue 18), no
    assert '<html lang="fr">' in html


def test_confirm_records_events_with_proof_and_closes_the_request(setup: tuple[Runtime, TestClient, str, str]) -> None:
    rt, client, page, _ = setup
    resp = client.post(f"/p/{page}", data={"email": "yes", "action": "confirm"},
                       headers={"User-Agent": "Mozilla/5.0 (iPhone)"})
    assert resp.status_code == 200 and "Merci" in resp.text
    # what was recorded, in French typography: a no-break space before the colon
    assert re.search(r"Nouveautés et offres par e-mail \([^)]+\)\u00a0: <strong>oui</strong>", resp.text), resp.text
    with Session(rt.engine) as s:
        (enrolment,) = s.exec(select(Enrolment))
        events = list(s.exec(select(ConsentEvent).order_by(ConsentEvent.id)))
        wording = s.get(Wording, events[0].wording_hash)
        assert ledger.verify(s).broken_at is None
    assert enrolment.state == "confirmed"
    assert [(e.channel, e.action) for e in events] == [("email", "confirmed"), ("sms", "not_granted")]
    e = events[0]
    assert (e.source, e.campaign_id, e.wording_name, e.locale) == ("preference_centre", 1, "preference_page", "fr")
    assert e.ip == "testclient" and e.user_agent == "Mozilla/5.0 (iPhone)" and e.occurred_at is not None
    assert wording is not None and "Boutique Lumière" in wording.text


def test_decline_unsubscribes_from_everything(setup: tuple[Runtime, TestClient, str, str]) -> None:
    rt, client, page, _ = setup
    assert client.post(f"/p/{page}", data={"action": "decline", "email": "yes"}).status_code == 200
    with Session(rt.engine) as s:
        assert {(x.channel, x.reason) for x in s.exec(select(SuppressionEntry))} == {("email", "unsubscribed"), ("sms", "unsubscribed")}
        assert s.exec(select(Enrolment)).one().state == "declined"


@pytest.mark.parametrize("multipart", [False, True])
def test_one_click_unsubscribe_is_rfc8058(setup: tuple[Runtime, TestClient, str, str], multipart: bool) -> None:
    rt, client, _, unsub = setup
    kwargs = {"files": {"List-Unsubscribe": (None, "One-Click")}} if multipart else {"data": {"List-Unsubscribe": "One-Click"}}
    for _ in range(3):  # idempotent
        resp = client.post(f"/u/{unsub}", follow_redirects=False, **kwargs)  # type: ignore[arg-type]
        assert resp.status_code == 200
        assert "location" not in resp.headers and "set-cookie" not in resp.headers
    with Session(rt.engine) as s:
        events = list(s.exec(select(ConsentEvent)))
        (entry,) = s.exec(select(SuppressionEntry))
    assert [(e.action, e.source) for e in events] == [("withdrawn", "one_click")]
    assert (entry.channel, entry.reason) == ("email", "unsubscribed")


def test_tampered_token_is_a_400_page_and_changes_nothing(setup: tuple[Runtime, TestClient, str, str]) -> None:
    rt, client, page, _unsub = setup
    before = snapshot(rt)
    bad = page[:-3] + ("aaa" if not page.endswith("aaa") else "bbb")
    assert client.get(f"/p/{bad}").status_code == 400
    assert client.post(f"/p/{bad}", data={"email": "yes"}).status_code == 400
    assert client.post(f"/u/{page}", data={"List-Unsubscribe": "One-Click"}).status_code == 400  # wrong purpose
    assert client.get("/s/zzzzzzzzzzzz").status_code == 400
    assert snapshot(rt) == before


def test_expired_token_gets_a_friendly_page_and_changes_nothing(setup: tuple[Runtime, TestClient, str, str], clock: FixedClock) -> None:
    rt, client, page, _ = setup
    before = snapshot(rt)
    clock.advance(timedelta(days=rt.config.security.page_link_max_age_days + 1))
    resp = client.post(f"/p/{page}", data={"email": "yes", "action": "confirm"})
    assert resp.status_code == 410 and "expiré" in resp.text
    assert snapshot(rt) == before


def test_security_headers_and_language_negotiation(setup: tuple[Runtime, TestClient, str, str]) -> None:
    _rt, client, page, _ = setup
    resp = client.get("/nowhere", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert resp.status_code == 404 and "does not exist" in resp.text
    assert "frame-ancestors 'none'" in resp.headers["content-security-policy"]
    assert resp.headers["referrer-policy"] == "no-referrer"
    assert resp.headers["cache-control"] == "no-store"
    assert "Do you still want" in client.get(f"/p/{page}?lang=en").text
    assert client.get("/healthz").text == "ok"


def test_body_limit_and_post_rate_limit(make_rt: Callable[..., Runtime]) -> None:
    rt = make_rt(server={"post_rate_per_minute": 3, "max_body_bytes": 1000})
    client = TestClient(create_app(rt))
    assert client.post("/p/x", content=b"a" * 2000, headers={"content-type": "application/x-www-form-urlencoded"}).status_code == 413
    codes = [client.post("/p/x", data={"a": "b"}).status_code for _ in range(4)]
    assert codes == [400, 400, 400, 429]


def test_many_gets_and_heads_on_every_page_change_nothing(setup: tuple[Runtime, TestClient, str, str],
                                                         clock: FixedClock) -> None:
    """Link scanners, mail previews and prefetchers open every link, sometimes many times."""
    rt, client, page, unsub = setup
    rights = rt.links.dumps("rights", LinkClaims(contact_id=1, campaign_id=1, channel="email"))
    urls = [f"/p/{page}", f"/p/{page}?lang=en", f"/u/{unsub}", f"/r/{rights}", f"/r/{rights}/erase",
            f"/p/{page[:-2]}zz", "/s/zzzzzzzzzzzz", "/nowhere", f"/p/{page}/renew", f"/r/{rights}/export"]

    def everything() -> tuple:
        with Session(rt.engine) as s:
            requests = len(list(s.exec(select(SelfServiceRequest))))
            contact = s.get(Contact, 1)
            assert contact is not None
            return snapshot(rt), requests, contact.erased_at, contact.email

    before = everything()
    for _ in range(3):
        for url in urls:
            assert client.get(url).status_code in (200, 400, 404, 405)
            assert client.head(url).status_code in (200, 400, 404, 405)
    clock.advance(timedelta(days=rt.config.security.page_link_max_age_days + 1))
    for url in urls:  # expired links: still only reading
        client.get(url)
        client.head(url)
    assert everything() == before


def test_language_switch_survives_the_answer(setup: tuple[Runtime, TestClient, str, str]) -> None:
    rt, client, page, _ = setup
    html = client.get(f"/p/{page}?lang=en").text
    assert f'action="/p/{page}?lang=en"' in html and 'lang="en"' in html
    done = client.post(f"/p/{page}?lang=en", data={"email": "yes", "action": "confirm"})
    assert done.status_code == 200 and "Thank you, your choice is recorded" in done.text
    assert "News and offers by email (p•••@example.org): <strong>yes</strong>" in done.text
    assert "News and offers by SMS (+336••••••01): <strong>no</strong>" in done.text
    with Session(rt.engine) as s:
        event = s.exec(select(ConsentEvent).order_by(ConsentEvent.id)).first()
        assert event is not None and event.locale == "en"
        wording = s.get(Wording, event.wording_hash)
    assert wording is not None and wording.text.startswith("Do you still want to hear from")


def test_short_sms_link_page_posts_to_the_page_route(rt: Runtime, write_csv: Callable[..., Path],
                                                     clock: FixedClock, tmp_path: Path) -> None:
    import re as _re

    from orchestrator.delivery.worker import dispatch_once
    from tests.support.factories import run

    launch(rt, write_csv([person(1)]), steps=[{"day": 0, "channel": "sms", "template": "reconsent"}])
    clock.advance(timedelta(hours=1))
    run(dispatch_once(rt))
    code = _re.search(r"/s/(\w+)", (tmp_path / "sms.jsonl").read_text()).group(1)  # type: ignore[union-attr]
    client = TestClient(create_app(rt))
    html = client.get(f"/s/{code}").text
    action = _re.search(r'<form method="post" action="([^"]+)"', html).group(1)  # type: ignore[union-attr]
    assert action.startswith("/p/")
    assert client.post(action, data={"sms": "yes", "action": "confirm"}).status_code == 200
    with Session(rt.engine) as s:
        assert s.exec(select(Enrolment)).one().state == "confirmed"


def test_nothing_is_pre_ticked_and_yes_alone_applies_to_the_links_channel(setup: tuple[Runtime, TestClient, str, str]) -> None:
    """R1: no box is ticked for a pending request; "Yes" with nothing ticked confirms only the
    channel the link came by; coming back, the page shows the person's own recorded choice."""
    rt, client, page, _ = setup
    html = client.get(f"/p/{page}").text
    assert 'type="checkbox"' in html and " checked" not in html
    assert client.post(f"/p/{page}", data={"action": "confirm"}).status_code == 200
    with Session(rt.engine) as s:
        events = [(e.channel, e.action) for e in s.exec(select(ConsentEvent).order_by(ConsentEvent.id))]
    assert events == [("email", "confirmed"), ("sms", "not_granted")]  # the link was sent by email
    again = client.get(f"/p/{page}").text
    assert 'name="email" value="yes" checked' in again and 'name="sms" value="yes" checked' not in again


def test_two_first_answers_in_a_language_at_once_both_record(setup: tuple[Runtime, TestClient, str, str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The wording of a language is stored by the first answer in it; when another request stores it
    between this one's look-up and insert, the answer is recorded anyway (once), not a 500."""
    import hashlib

    from orchestrator.store.models import Wording as WordingRow

    rt, client, page, _ = setup
    real = ledger.remember_wording
    raced: list[str] = []

    def racing(session: Session, *, name: str, locale: str, text_shown: str, at: Any) -> str:
        if not raced:  # the other request wins: it commits the row first, this one inserts blindly
            content_hash = hashlib.sha256(f"{name}\0{locale}\0{text_shown}".encode()).hexdigest()
            raced.append(content_hash)
            with Session(rt.engine) as other:
                other.add(WordingRow(content_hash=content_hash, name=name, locale=locale, text=text_shown,
                                     first_seen_at=at))
                other.commit()
            session.add(WordingRow(content_hash=content_hash, name=name, locale=locale, text=text_shown,
                                   first_seen_at=at))
            session.flush()
        return real(session, name=name, locale=locale, text_shown=text_shown, at=at)

    monkeypatch.setattr(ledger, "remember_wording", racing)
    assert client.post(f"/p/{page}", data={"email": "yes", "action": "confirm"}).status_code == 200
    with Session(rt.engine) as s:
        events = list(s.exec(select(ConsentEvent)))
        assert [(e.channel, e.action) for e in events] == [("email", "confirmed"), ("sms", "not_granted")]
        assert {e.wording_hash for e in events} == set(raced)
        assert ledger.verify(s).broken_at is None
