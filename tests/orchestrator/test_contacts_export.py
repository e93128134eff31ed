"""``contacts export`` (issue 17 §1): the import format first, then consent per channel and purpose,
suppression per channel and the extra attribute columns imported; a re-import of it changes nothing."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Callable

from orchestrator.campaigns.results import write_csv
from orchestrator.consent.ledger import Proof
from orchestrator.consent.service import Answer, record_answer, record_unsubscribe
from orchestrator.contacts.export import export_table
from orchestrator.contacts.rows import COLUMNS
from orchestrator.contacts.service import import_contacts
from orchestrator.domain.model import ConsentSource
from orchestrator.runtime import Runtime
from orchestrator.store.db import session_scope
from orchestrator.store.models import Contact
from sqlmodel import select
from tests.support.factories import launch, person


def exported(rt: Runtime) -> list[dict[str, str]]:
    table = export_table(rt, page=2)
    out = io.StringIO()
    write_csv(out, table.header, table.rows)
    return list(csv.DictReader(io.StringIO(out.getvalue())))


def test_export_has_consent_suppression_and_attributes(rt: Runtime, write_csv: Callable[..., Path],
                                                       tmp_path: Path) -> None:
    rows = [person(1, segment="gold", store="Lyon"), person(2, segment="silver"), person(3, phone="")]
    campaign_id = launch(rt, write_csv(rows))
    record_answer(rt, 1, campaign_id, Answer(channels={"email": True, "sms": False}, partners=True),
                  Proof(source=ConsentSource.PREFERENCE_CENTRE, campaign_id=campaign_id))
    record_unsubscribe(rt, 2, campaign_id, "email", Proof(source=ConsentSource.ONE_CLICK, campaign_id=campaign_id))

    table = export_table(rt)
    assert tuple(table.header[:len(COLUMNS)]) == COLUMNS
    assert table.header[len(COLUMNS):] == ["email_consent", "sms_consent", "email_partners_consent",
                                           "sms_partners_consent", "email_suppression", "sms_suppression",
                                           "topics", "partners", "frequency", "paused_until", "segment", "store"]
    got = {r["external_id"]: r for r in exported(rt)}
    assert sorted(got) == ["C-1", "C-2", "C-3"]
    one, two, three = got["C-1"], got["C-2"], got["C-3"]
    assert [one[c] for c in table.header[len(COLUMNS):]] == [
        "granted", "withdrawn", "granted", "granted", "", "not_granted", "", "", "", "", "gold", "Lyon"]
    assert [two[c] for c in table.header[len(COLUMNS):]] == [
        "withdrawn", "none", "none", "none", "unsubscribed", "", "", "", "", "", "silver", ""]
    assert (three["email_consent"], three["phone"], three["sms_suppression"]) == ("none", "", "")

    # a re-import of the export changes nothing: the consent columns are not taken for attributes
    path = tmp_path / "export.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=table.header)
        writer.writeheader()
        writer.writerows(got.values())
    with session_scope(rt.engine) as s:
        before = {c.external_id: c.attributes for c in s.exec(select(Contact)).all()}
    report = import_contacts(rt, path)
    assert report.rejects == [] and report.updated == 3
    with session_scope(rt.engine) as s:
        after = {c.external_id: c.attributes for c in s.exec(select(Contact)).all()}
    assert after == before == {"C-1": {"segment": "gold", "store": "Lyon"}, "C-2": {"segment": "silver"}, "C-3": {}}
