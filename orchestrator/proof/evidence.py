"""Evidence for an auditor: one command answers "show me the proof" for a campaign or a person.

Contacts appear under a pseudonym (keyed hash of the contact id: stable, not reversible without the
suppression secret, and printed by ``evidence contact`` so the controller can find a person again).
Each contact comes with every message (time, channel, template version, provider id, delivery
status), every consent event with its proof (source, wording version, IP, user agent, chain hash),
the request's final state and the suppression entries that exist for their addresses.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any, TextIO

from sqlalchemy import select
from sqlmodel import Session, col

from orchestrator.consent import ledger
from orchestrator.domain.clock import as_utc
from orchestrator.domain.csv_safe import write_csv as write_safe_csv
from orchestrator.errors import NotFoundError
from orchestrator.proof.record import Records, contacts_by_key, read_records
from orchestrator.proof.rights import address_key
from orchestrator.runtime import Runtime
from orchestrator.store.db import session_scope
from orchestrator.store.models import (
    Campaign,
    ConsentEvent,
    Contact,
    Enrolment,
    OutboxMessage,
    SuppressionEntry,
)

CSV_COLUMNS = (
    "contact", "kind", "final_state", "record", "at", "campaign_id", "channel", "step", "template",
    "template_version", "provider_id", "status", "purpose", "action", "source", "wording_name",
    "wording_hash", "ip", "user_agent", "event_id", "event_hash", "reason",
    "detail",  # issue 18: the value an event records (a frequency, a pause's end), after the earlier columns
)


def pseudonym(rt: Runtime, contact_id: int) -> str:
    digest = hmac.new(rt.config.suppression_secret(), f"contact:{contact_id}".encode(), hashlib.sha256)
    return "p-" + digest.hexdigest()[:16]


def _iso(value: Any) -> Any:
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def _message(m: OutboxMessage) -> dict[str, Any]:
    return {"campaign_id": m.campaign_id, "step": m.step, "channel": m.channel, "template": m.template,
            "template_version": m.template_version, "locale": m.locale, "status": m.status,
            "sent_at": _iso(m.sent_at), "provider_id": m.provider_id, "skip_reason": m.skip_reason}


def _event(e: ConsentEvent) -> dict[str, Any]:
    return {"id": e.id, "at": _iso(e.occurred_at), "channel": e.channel, "purpose": e.purpose,
            "action": e.action, "source": e.source, "campaign_id": e.campaign_id, "step": e.step,
            "wording_name": e.wording_name, "wording_hash": e.wording_hash, "locale": e.locale,
            "ip": e.ip, "user_agent": e.user_agent, "prev_hash": e.prev_hash, "hash": e.hash,
            "detail": e.detail}


def _people(rt: Runtime, records: Records) -> list[dict[str, Any]]:
    out = []
    for record in records.people:
        c = record.contact
        assert c.id is not None
        requests = [{"campaign_id": r.campaign_id, "state": r.state, "enrolled_at": _iso(r.enrolled_at),
                     "answered_at": _iso(r.answered_at)} for r in record.enrolments]
        out.append({
            "contact": pseudonym(rt, c.id),
            "kind": c.kind,
            "erased": c.erased_at is not None,
            "final_state": requests[-1]["state"] if requests else None,
            "requests": requests,
            "messages": [_message(m) for m in record.messages],
            "consent_events": [_event(e) for e in record.events],
            "suppression": [{"channel": s.channel, "reason": s.reason, "source": s.source,
                             "created_at": _iso(s.created_at)} for s in record.suppression],
            "suppression_note": None if c.erased_at is None else
            "personal data erased: suppression entries are kept under the address hash but no longer "
            "linked to this record (see the expired/withdrawn events)",
        })
    return out


def _wordings(records: Records) -> dict[str, dict[str, Any]]:
    return {w.content_hash: {"name": w.name, "locale": w.locale, "text": w.text,
                             "first_seen_at": _iso(w.first_seen_at)} for w in records.wordings.values()}


def _ledger_state(session: Session) -> dict[str, Any]:
    report = ledger.verify(session)
    return {"events": report.events, "intact": report.broken_at is None and report.reason is None,
            "broken_at": report.broken_at, "reason": report.reason}


def campaign_evidence(rt: Runtime, campaign_id: int) -> dict[str, Any]:
    with session_scope(rt.engine) as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            raise NotFoundError(f"campaign {campaign_id} does not exist")
        contacts = list(session.execute(
            select(Contact).join(Enrolment, col(Enrolment.contact_id) == col(Contact.id))
            .where(col(Enrolment.campaign_id) == campaign_id).order_by(col(Contact.id))).scalars())
        records = read_records(session, contacts, campaign_id=campaign_id)
        return {
            "generated_at": rt.clock.now().isoformat(),
            "campaign": {"id": campaign.id, "name": campaign.name, "state": campaign.state,
                         "created_at": _iso(campaign.created_at), "launched_at": _iso(campaign.launched_at),
                         "deadline_at": _iso(campaign.deadline_at), "completed_at": _iso(campaign.completed_at),
                         "plan": campaign.plan},
            "ledger": _ledger_state(session),
            "contacts": _people(rt, records),
            "wordings": _wordings(records),
        }


def contact_evidence(rt: Runtime, *, email: str | None = None, phone: str | None = None) -> dict[str, Any]:
    column, key = address_key(rt, email=email, phone=phone)
    with session_scope(rt.engine) as session:
        contacts = contacts_by_key(session, key, column)
        channel = "email" if column == "email_key" else "sms"
        entry = session.get(SuppressionEntry, (key, channel))
        if not contacts and entry is None:
            raise NotFoundError("no contact and no suppression entry for that address")
        records = read_records(session, contacts)
        return {
            "generated_at": rt.clock.now().isoformat(),
            "address_suppression": None if entry is None else {
                "channel": entry.channel, "reason": entry.reason, "source": entry.source,
                "created_at": _iso(entry.created_at)},
            "ledger": _ledger_state(session),
            "contacts": _people(rt, records),
            "wordings": _wordings(records),
        }


def write_csv(evidence: dict[str, Any], out: TextIO) -> int:
    """One row per record (request, message, consent event, suppression entry), through the one safe
    CSV writer (no cell a spreadsheet would run as a formula); returns rows written."""
    return write_safe_csv(out, CSV_COLUMNS, _csv_rows(evidence), lineterminator="\n")


def _csv_rows(evidence: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for p in evidence["contacts"]:
        base = {"contact": p["contact"], "kind": p["kind"], "final_state": p["final_state"] or ""}
        rows: list[dict[str, Any]] = []
        for r in p["requests"]:
            rows.append({"record": "request", "at": r["enrolled_at"], "campaign_id": r["campaign_id"],
                         "status": r["state"]})
        for m in p["messages"]:
            rows.append({"record": "message", "at": m["sent_at"], "campaign_id": m["campaign_id"],
                         "channel": m["channel"], "step": m["step"], "template": m["template"],
                         "template_version": m["template_version"], "provider_id": m["provider_id"],
                         "status": m["status"], "reason": m["skip_reason"]})
        for e in p["consent_events"]:
            rows.append({"record": "consent_event", "at": e["at"], "campaign_id": e["campaign_id"],
                         "channel": e["channel"], "step": e["step"], "purpose": e["purpose"],
                         "action": e["action"], "source": e["source"], "wording_name": e["wording_name"],
                         "wording_hash": e["wording_hash"], "ip": e["ip"], "user_agent": e["user_agent"],
                         "event_id": e["id"], "event_hash": e["hash"], "detail": e["detail"]})
        for s in p["suppression"]:
            rows.append({"record": "suppression", "at": s["created_at"], "channel": s["channel"],
                         "source": s["source"], "reason": s["reason"]})
        for row in rows:
            yield {**base, **row}


def verify_ledger(rt: Runtime) -> ledger.ChainReport:
    """Walk the consent ledger's hash chain (``reconsent audit verify``)."""
    with session_scope(rt.engine) as session:
        return ledger.verify(session)
