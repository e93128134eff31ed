"""Consent the company already holds (issue 17 §4): the contacts CSV's prior-consent columns become
``granted`` ledger events with their proof, never over the person's own later word; a campaign skips
a channel whose consent is recent, and the preview counts them."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Callable

from sqlmodel import Session, select

from orchestrator.campaigns.service import (
    audience_size,
    create_campaign,
    launch_campaign,
    skipped_for_recent_consent,
)
from orchestrator.campaigns.results import iter_results
from orchestrator.campaigns.sweep import sweep
from orchestrator.consent import ledger
from orchestrator.consent.ledger import Proof
from orchestrator.consent.service import record_unsubscribe
from orchestrator.contacts.export import export_table
from orchestrator.contacts.service import import_contacts
from orchestrator.domain.clock import FixedClock
from orchestrator.domain.model import ConsentSource
from orchestrator.runtime import Runtime
from orchestrator.store.models import ConsentEvent, Contact, Enrolment, OutboxMessage, Wording
from tests.support.factories import STANDARD_STEPS, person, plan

WORDING = "Oui, je souhaite recevoir les offres de Boutique Exemple par email."


def test_prior_consent_is_recorded_with_its_proof_once(rt: Runtime, write_csv: Callable[..., Path]) -> None:
    rows = [
        person(1, email_consent_at="2025-06-01", sms_consent_at="2023-02-01T10:30:00+01:00",
               consent_source="webform 2023", consent_wording=WORDING, segment="gold"),
        person(2),
        person(3, email="", email_consent_at="2025-06-01"),  # consent for a channel the row lacks
        person(4, sms_consent_at="le 3 mars"),
    ]
    report = import_contacts(rt, write_csv(rows))
    assert (report.created, report.prior_recorded) == (2, 2)
    assert [(r.line, r.field) for r in report.rejects] == [(4, "email_consent_at"), (5, "sms_consent_at")]
    assert "expected an ISO date" in report.rejects[1].reason
    with Session(rt.engine) as s:
        events = s.exec(select(ConsentEvent).order_by(ConsentEvent.id)).all()
        contact = s.exec(select(Contact).where(Contact.external_id == "C-1")).one()
        wording = s.get(Wording, events[0].wording_hash)
        assert ledger.verify(s).broken_at is None
    assert contact.attributes == {"segment": "gold"}  # the proof went to the ledger, not the attributes
    assert [(e.channel, e.action, e.source, e.wording_name, str(e.occurred_at)[:16]) for e in events] == [
        ("email", "granted", "import", "webform 2023", "2025-06-01 00:00"),
        ("sms", "granted", "import", "webform 2023", "2023-02-01 09:30")]
    assert wording is not None and wording.text == WORDING

    again = import_contacts(rt, write_csv(rows, name="again.csv"))  # the same file again records nothing new
    assert again.prior_recorded == 0
    assert again.prior_ignored == {"a later answer or the same consent is already on record": 2}
    assert "prior consent: 0 recorded" in again.summary()


def test_prior_consent_never_overrides_the_person(rt: Runtime, write_csv: Callable[..., Path]) -> None:
    import_contacts(rt, write_csv([person(1), person(2)]))
    record_unsubscribe(rt, 1, None, "email", Proof(source=ConsentSource.ONE_CLICK))
    with Session(rt.engine) as s:
        ledger.append(s, contact_id=2, channel="sms", purpose="marketing", action="withdrawn",
                      at=rt.clock.now(), proof=Proof(source="operator"))
        s.commit()
    report = import_contacts(rt, write_csv([person(1, email_consent_at="2026-01-10"),
                                            person(2, sms_consent_at="2026-01-10"),
                                            person(3, email_consent_at="2027-01-01")], name="prior.csv"))
    assert report.prior_recorded == 0
    assert report.prior_ignored == {"the address is on the suppression list": 1, "dated in the future": 1,
                                    "a later answer or the same consent is already on record": 1}
    table = export_table(rt)
    consent = {r[0]: (r[9], r[10]) for r in table.rows}
    assert consent == {"C-1": ("withdrawn", "none"), "C-2": ("none", "withdrawn"), "C-3": ("none", "none")}


def test_the_audience_skips_channels_with_recent_consent(make_rt: Callable[..., Runtime],
                                                         write_csv: Callable[..., Path], clock: FixedClock) -> None:
    rt = make_rt()  # contacts.recent_consent_months = 24; today is 2026-11-25
    import_contacts(rt, write_csv([
        person(1, email_consent_at="2025-06-01"),  # email recent: asked by SMS only
        person(2, email_consent_at="2025-06-01", sms_consent_at="2026-01-01"),  # both recent: not asked
        person(3, email_consent_at="2024-11-01"),  # older than 24 months: asked again
        person(4),
    ]))
    campaign_id = create_campaign(rt, plan(steps=STANDARD_STEPS))
    assert skipped_for_recent_consent(rt, campaign_id) == {"email": 2, "sms": 1}
    assert audience_size(rt, campaign_id) == 3
    assert launch_campaign(rt, campaign_id) == 3
    with Session(rt.engine) as s:
        enrolled = sorted(e.contact_id for e in s.exec(select(Enrolment)))
        rows = sorted((m.contact_id, m.channel) for m in s.exec(select(OutboxMessage)))
    assert enrolled == [1, 3, 4]
    assert rows == [(1, "sms"), (3, "email"), (3, "email"), (3, "sms"), (4, "email"), (4, "email"), (4, "sms")]

    # the sweep expires what was asked and not answered; the consent held on email stays, and so does the person
    clock.advance(timedelta(days=31))
    sweep(rt)
    states = {r.external_id: (r.state, r.email_consent, r.sms_consent) for r in iter_results(rt, campaign_id)}
    assert states == {"C-1": ("expired", "granted", "expired"), "C-3": ("expired", "expired", "expired"),
                      "C-4": ("expired", "expired", "expired")}
    with Session(rt.engine) as s:
        kept = s.exec(select(Contact).where(Contact.external_id == "C-1")).one()
        gone = s.exec(select(Contact).where(Contact.external_id == "C-3")).one()
    assert kept.erased_at is None and kept.email == "person1@example.org" and gone.erased_at is not None

    never = make_rt(contacts={"recent_consent_months": 0})
    other = create_campaign(never, plan(name="Everyone", steps=STANDARD_STEPS))
    assert skipped_for_recent_consent(never, other) == {}
