"""The preference page of a B2B notice (issue 18 §3): what the professional reads, "keep receiving"
and "I object" (recorded with the notice's wording as proof), and after the deadline: kept, and still
able to object."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from sqlmodel import Session, select
from starlette.testclient import TestClient

from orchestrator.campaigns.service import create_campaign, launch_campaign
from orchestrator.campaigns.sweep import sweep
from orchestrator.contacts.service import import_contacts
from orchestrator.domain.clock import FixedClock
from orchestrator.rendering.links import LinkClaims
from orchestrator.runtime import Runtime
from orchestrator.store.models import ConsentEvent, Enrolment, Wording, SuppressionEntry
from preference_centre.app import create_app
from tests.support.factories import person, plan


def _setup(rt: Runtime, write_csv: Callable[..., Path]) -> tuple[TestClient, dict[int, str]]:
    import_contacts(rt, write_csv([person(1), person(2, b2b="true"), person(3, b2b="true", locale="en")]))
    campaign_id = create_campaign(rt, plan(audience={"b2b_regime": "notice"}))
    launch_campaign(rt, campaign_id)
    pages = {i: "/p/" + rt.links.dumps("page", LinkClaims(i, campaign_id, "email")) for i in (1, 2, 3)}
    return TestClient(create_app(rt)), pages


def test_the_notice_page_in_french_and_english(make_rt: Callable[..., Runtime],
                                               write_csv: Callable[..., Path]) -> None:
    client, pages = _setup(make_rt(), write_csv)
    fr = client.get(pages[2])
    assert fr.status_code == 200
    assert "Boutique Lumière continuera de vous écrire à votre adresse professionnelle" in fr.text
    assert "Vous pouvez vous y opposer à tout moment" in fr.text
    assert "Je m’y oppose\u00a0: ne plus m’écrire" in fr.text and "Continuer à les recevoir" in fr.text
    assert "Sans opposition de votre part d’ici le 25 décembre 2026" in fr.text
    assert 'name="partners"' not in fr.text and 'name="sms"' not in fr.text
    en = client.get(pages[3])
    assert "Boutique Lumière will keep writing to your work address" in en.text
    assert "I object: stop writing to me" in en.text and "Keep receiving them" in en.text
    consumer = client.get(pages[1])  # a consumer of the same campaign: the consent request
    assert "continuera de vous écrire" not in consumer.text and 'name="sms"' in consumer.text


def test_objecting_suppresses_with_the_notice_as_proof(make_rt: Callable[..., Runtime],
                                                       write_csv: Callable[..., Path]) -> None:
    rt = make_rt()
    client, pages = _setup(rt, write_csv)
    before = client.get(pages[2]).text
    resp = client.post(pages[2], data={"action": "decline"})
    assert resp.status_code == 200 and "Merci" in resp.text
    with Session(rt.engine) as s:
        event = s.exec(select(ConsentEvent).where(ConsentEvent.contact_id == 2,
                                                  ConsentEvent.channel == "email")).one()
        wording = s.exec(select(Wording).where(Wording.content_hash == event.wording_hash)).one()
        entry = s.exec(select(SuppressionEntry).where(SuppressionEntry.channel == "email")).one()
        state = s.exec(select(Enrolment).where(Enrolment.contact_id == 2)).one().state
    assert event.action == "declined" and event.source == "preference_centre" and event.wording_name == "notice_page"
    assert "Je m’y oppose\u00a0: ne plus m’écrire" in wording.text and "Vous pouvez vous y opposer" in wording.text
    assert "Je m’y oppose" in before
    assert entry.key == rt.key_for("person2@example.org") and entry.reason == "unsubscribed"
    assert state == "declined"


def test_keep_receiving_confirms_the_email_channel(make_rt: Callable[..., Runtime],
                                                   write_csv: Callable[..., Path]) -> None:
    rt = make_rt()
    client, pages = _setup(rt, write_csv)
    # the page has no box to tick: "keep" applies to the channel the notice came by (email)
    assert client.post(pages[2], data={"action": "confirm"}).status_code == 200
    with Session(rt.engine) as s:
        actions = {e.channel: (e.action, e.wording_name) for e in s.exec(
            select(ConsentEvent).where(ConsentEvent.contact_id == 2))}
        state = s.exec(select(Enrolment).where(Enrolment.contact_id == 2)).one().state
    assert actions["email"] == ("confirmed", "notice_page") and state == "confirmed"


def test_after_the_deadline_the_professional_is_kept_and_can_still_object(
        make_rt: Callable[..., Runtime], write_csv: Callable[..., Path], clock: FixedClock) -> None:
    rt = make_rt(retention={"after_expiry": "keep"})
    client, pages = _setup(rt, write_csv)
    clock.advance(timedelta(days=31))
    sweep(rt)
    page = client.get(pages[2]).text
    assert "Vous ne vous y êtes pas opposé(e)\u00a0: nous continuons de vous écrire" in page
    assert "Sans opposition de votre part" not in page
    resp = client.post(pages[2], data={"action": "decline", "email": "yes"})
    assert resp.status_code == 200
    with Session(rt.engine) as s:
        actions = [e.action for e in s.exec(select(ConsentEvent).where(ConsentEvent.contact_id == 2,
                                                                      ConsentEvent.channel == "email")
                                            .order_by(ConsentEvent.id))]
        entry = s.exec(select(SuppressionEntry).where(
            SuppressionEntry.key == rt.key_for("person2@example.org"))).one()
    assert actions == ["notified", "declined"] and entry.reason == "unsubscribed"
    over = client.get(pages[1]).text  # the consumer: the campaign is over for them
    assert "Cette campagne est terminée" in over


def test_keep_receiving_leaves_the_topics_and_partners_as_they_were(make_rt: Callable[..., Runtime],
                                                                    write_csv: Callable[..., Path]) -> None:
    """The notice page shows no topic or partner box: keeping must not read their absence as "unticked"
    and withdraw what the person granted before (issue 18 §1-§3 together)."""
    from orchestrator.choices_settings import Topic
    from orchestrator.consent import ledger
    from orchestrator.consent.ledger import Proof
    from orchestrator.store.db import session_scope

    rt = make_rt()
    rt.config.topics = [Topic("news", (("fr", "Nouveautés"), ("en", "News")))]
    client, pages = _setup(rt, write_csv)
    with session_scope(rt.engine) as s:
        ledger.append(s, contact_id=2, channel="email", purpose="topic:news", action="granted",
                      at=rt.clock.now(), proof=Proof(source="preference_centre"))
    assert client.post(pages[2], data={"action": "confirm"}).status_code == 200
    with Session(rt.engine) as s:
        topics = [e.action for e in s.exec(select(ConsentEvent).where(ConsentEvent.contact_id == 2,
                                                                      ConsentEvent.purpose == "topic:news"))]
    assert topics == ["granted"]


def test_keep_receiving_records_and_suppresses_nothing_about_sms(make_rt: Callable[..., Runtime],
                                                                  write_csv: Callable[..., Path]) -> None:
    """The notice asks about email only: "keep" on a professional who also has a phone leaves their SMS
    as it was (no ``not_granted`` event, no suppression), and the done page lists only what was asked
    and recorded (no « SMS : non », no topic the page did not show)."""
    from orchestrator.choices_settings import Topic

    rt = make_rt()
    rt.config.topics = [Topic("news", (("fr", "Nouveautés"), ("en", "News")))]
    client, pages = _setup(rt, write_csv)
    done = client.post(pages[2], data={"action": "confirm"})
    assert done.status_code == 200
    with Session(rt.engine) as s:
        sms_events = list(s.exec(select(ConsentEvent).where(ConsentEvent.contact_id == 2,
                                                            ConsentEvent.channel == "sms")))
        entries = list(s.exec(select(SuppressionEntry)))
        state = s.exec(select(Enrolment).where(Enrolment.contact_id == 2)).one().state
    assert sms_events == [] and entries == [] and state == "confirmed"
    assert "Nouveautés et offres par e-mail (p•••@example.org)\u00a0: <strong>oui</strong>" in done.text
    assert "par SMS" not in done.text and "Nouveautés\u00a0:" not in done.text
    assert "Vous ne recevrez plus de messages" not in done.text


def test_objecting_stops_every_channel_as_the_button_says(make_rt: Callable[..., Runtime],
                                                          write_csv: Callable[..., Path]) -> None:
    """« Je m’y oppose : ne plus m’écrire » covers every channel the person has (email and SMS), and
    the done page lists both as recorded, then says no more messages will come. Topics and partners,
    which the notice does not show, are left as they are."""
    from orchestrator.choices_settings import Topic
    from orchestrator.consent import ledger
    from orchestrator.consent.ledger import Proof
    from orchestrator.store.db import session_scope

    rt = make_rt()
    rt.config.topics = [Topic("news", (("fr", "Nouveautés"), ("en", "News")))]
    client, pages = _setup(rt, write_csv)
    with session_scope(rt.engine) as s:
        ledger.append(s, contact_id=2, channel="email", purpose="topic:news", action="granted",
                      at=rt.clock.now(), proof=Proof(source="preference_centre"))
    done = client.post(pages[2], data={"action": "decline"})
    assert done.status_code == 200 and "Nouveautés :" not in done.text
    with Session(rt.engine) as s:
        actions = {e.channel: e.action for e in s.exec(select(ConsentEvent).where(
            ConsentEvent.contact_id == 2, ConsentEvent.purpose == "marketing"))}
        topics = [e.action for e in s.exec(select(ConsentEvent).where(ConsentEvent.purpose == "topic:news"))]
        reasons = {e.channel: e.reason for e in s.exec(select(SuppressionEntry))}
    assert topics == ["granted"]
    assert actions == {"email": "declined", "sms": "declined"}
    assert reasons == {"email": "unsubscribed", "sms": "unsubscribed"}
    assert "par e-mail" in done.text and "par SMS" in done.text
    assert "Vous ne recevrez plus de messages de notre part." in done.text
