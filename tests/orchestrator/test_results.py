"""Campaign results by the CRM's id (issue 17 §1): one row per enrolled contact, still complete after
the sweep anonymised the people who never answered; the proof columns name real ledger events."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Callable

import pytest
from sqlmodel import Session, select

from orchestrator.campaigns.results import RESULT_COLUMNS, iter_results, results_page, write_results
from orchestrator.campaigns.sweep import sweep
from orchestrator.consent.ledger import Proof
from orchestrator.consent.service import Answer, record_answer, record_unsubscribe
from orchestrator.contacts.service import import_contacts
from orchestrator.domain.clock import FixedClock
from orchestrator.domain.model import ConsentSource
from orchestrator.errors import NotFoundError
from orchestrator.runtime import Runtime
from orchestrator.store.models import ConsentEvent, Contact
from tests.support.factories import launch, person


def test_results_of_a_swept_campaign_list_every_enrolled_external_id(
        make_rt: Callable[..., Runtime], write_csv: Callable[..., Path], clock: FixedClock) -> None:
    rt = make_rt()  # retention.after_expiry = anonymise (the default)
    campaign_id = launch(rt, write_csv([person(i) for i in range(1, 6)]))
    record_answer(rt, 1, campaign_id, Answer(channels={"email": True, "sms": False}, partners=True),
                  Proof(source=ConsentSource.PREFERENCE_CENTRE, campaign_id=campaign_id, wording_hash="w1"))
    record_unsubscribe(rt, 2, campaign_id, "email", Proof(source=ConsentSource.ONE_CLICK, campaign_id=campaign_id))
    clock.advance(timedelta(days=31))
    sweep(rt)

    rows = {r.external_id: r for r in iter_results(rt, campaign_id)}
    assert sorted(rows) == ["C-1", "C-2", "C-3", "C-4", "C-5"]
    assert {k: r.state for k, r in rows.items()} == {
        "C-1": "confirmed", "C-2": "declined", "C-3": "expired", "C-4": "expired", "C-5": "expired"}
    one, two, three = rows["C-1"], rows["C-2"], rows["C-3"]
    assert (one.email_consent, one.sms_consent, one.partners_consent) == ("granted", "withdrawn", "granted")
    assert (one.source, one.wording_version) == ("preference_centre", "w1")
    assert (two.email_consent, two.sms_consent, two.partners_consent) == ("withdrawn", "none", "none")
    assert two.source == "one_click"
    assert (three.email_consent, three.sms_consent, three.source) == ("expired", "expired", "sweep")
    assert three.answered_at is not None and three.answered_at == clock.now()
    with Session(rt.engine) as s:
        hashes = {e.hash: e for e in s.exec(select(ConsentEvent))}
        anonymised = s.exec(select(Contact).where(Contact.external_id == "C-3")).one()
    assert anonymised.email is None and anonymised.first_name is None and anonymised.erased_at is not None
    for r in rows.values():  # every proof column points at the ledger event that ended the request
        event = hashes[r.event_hash or ""]
        assert event.contact_id == {"C-1": 1, "C-2": 2, "C-3": 3, "C-4": 4, "C-5": 5}[r.external_id]
        assert event.campaign_id == campaign_id


def test_results_stream_in_pages_and_page_with_a_cursor(rt: Runtime, write_csv: Callable[..., Path]) -> None:
    campaign_id = launch(rt, write_csv([person(i) for i in range(1, 8)]))
    assert [r.external_id for r in iter_results(rt, campaign_id, page=3)] == [f"C-{i}" for i in range(1, 8)]
    first = results_page(rt, campaign_id, limit=4)
    assert [r.external_id for r in first.rows] == ["C-1", "C-2", "C-3", "C-4"] and first.next_cursor is not None
    second = results_page(rt, campaign_id, after=first.next_cursor, limit=4)
    assert [r.external_id for r in second.rows] == ["C-5", "C-6", "C-7"] and second.next_cursor is None
    pending = first.rows[0]
    assert (pending.state, pending.email_consent, pending.answered_at, pending.event_hash) == ("pending", "none", None, None)
    with pytest.raises(NotFoundError):
        iter_results(rt, 99)


def test_results_as_csv_and_json(rt: Runtime, write_csv: Callable[..., Path]) -> None:
    campaign_id = launch(rt, write_csv([person(1), person(2)]))
    out = io.StringIO()
    assert write_results(out, iter_results(rt, campaign_id), "csv") == 2
    table = list(csv.reader(io.StringIO(out.getvalue())))
    assert table[0] == list(RESULT_COLUMNS)
    # topics, partners, frequency, paused_until (issue 18) after SPEC §11's columns
    assert table[1] == ["C-1", "customer", "pending", "none", "none", "none", "", "", "", "", "", "", "", ""]
    out = io.StringIO()
    write_results(out, iter_results(rt, campaign_id), "json")
    data = json.loads(out.getvalue())
    assert [d["external_id"] for d in data] == ["C-1", "C-2"] and list(data[0]) == list(RESULT_COLUMNS)
    out = io.StringIO()
    write_results(out, iter(()), "json")
    assert json.loads(out.getvalue()) == []


def test_an_anonymised_external_id_is_not_filled_in_again_by_an_import(
        make_rt: Callable[..., Runtime], write_csv: Callable[..., Path], clock: FixedClock) -> None:
    rt = make_rt()
    campaign_id = launch(rt, write_csv([person(1)]))
    clock.advance(timedelta(days=31))
    sweep(rt)
    report = import_contacts(rt, write_csv([person(1, email="new@example.org", phone="")], name="again.csv"))
    assert report.created == report.updated == 0
    assert [(r.field, r.reason) for r in report.rejects] == [
        ("external_id", "this external_id belongs to a contact anonymised after refusing or not answering a campaign "
                        "(kept as proof of that outcome): not imported")]
    assert [r.external_id for r in iter_results(rt, campaign_id)] == ["C-1"]


def test_results_stream_in_parts_that_join_into_the_file(rt: Runtime, write_csv: Callable[..., Path]) -> None:
    """The console's CRM download streams: parts of `batch` rows, joined exactly what write_results writes."""
    from orchestrator.campaigns.results import stream_results

    campaign_id = launch(rt, write_csv([person(i) for i in range(1, 6)]))
    for fmt in ("csv", "json"):
        whole = io.StringIO()
        assert write_results(whole, iter_results(rt, campaign_id), fmt) == 5
        counted = [0]
        parts = list(stream_results(iter_results(rt, campaign_id, page=2), fmt, batch=2, counted=counted))
        assert len(parts) == 3 and "".join(parts) == whole.getvalue() and counted == [5]
        exact = list(stream_results(iter_results(rt, campaign_id), fmt, batch=5))  # a multiple of the batch
        assert "".join(exact) == whole.getvalue()
        empty = io.StringIO()
        write_results(empty, iter(()), fmt)
        assert "".join(stream_results(iter(()), fmt)) == empty.getvalue() in ("[]\n", ",".join(RESULT_COLUMNS) + "\r\n")
