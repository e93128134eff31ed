"""Contacts written by a company's system through the HTTP API (``PUT /contacts/{external_id}``,
``POST /contacts:batch``, issue 17 §2): each JSON object is a row of the contacts CSV (same field
names, extra fields become attributes) and goes through the import's own core,
:func:`orchestrator.contacts.service.import_rows` — same validation, same merge on ``external_id``,
same refusal of suppressed or anonymised people. Sending the same contact again changes nothing
more: an upsert is idempotent by nature."""

from __future__ import annotations

from typing import Any

from orchestrator.contacts.service import ImportReport, Reject, import_rows
from orchestrator.errors import InputError
from orchestrator.runtime import Runtime

#: contacts per ``POST /contacts:batch``
MAX_BATCH = 1000


def _cell(value: Any, where: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise InputError(f"{where}: expected text, a number, true/false or null")


def as_row(item: Any, where: str, external_id: str | None = None) -> dict[str, str]:
    """One JSON object as a CSV row; ``external_id`` (from the URL) must agree with the body's."""
    if not isinstance(item, dict):
        raise InputError(f"{where}: expected a JSON object of contact fields")
    row = {str(k): _cell(v, f"{where}.{k}") for k, v in item.items()}
    if external_id is not None:
        if row.get("external_id", external_id) != external_id:
            raise InputError(f"{where}.external_id: differs from the external_id in the URL")
        row["external_id"] = external_id
    return row


def _problem(r: Reject) -> dict[str, Any]:
    return {"index": r.line - 1, "external_id": r.row.get("external_id") or None, "field": r.field,
            "reason": r.reason}


def report_body(report: ImportReport) -> dict[str, Any]:
    """The import report as JSON: counts, and rejects/warnings by the index of the item sent."""
    return {"received": report.read, "created": report.created, "updated": report.updated,
            "merged_duplicates": report.merged_duplicates, "prior_consent_recorded": report.prior_recorded,
            "rejected": [_problem(r) for r in report.rejects], "warnings": [_problem(w) for w in report.warnings]}


def upsert(rt: Runtime, rows: list[dict[str, str]]) -> dict[str, Any]:
    """Import ``rows`` (index order) as the CSV import would; the JSON report."""
    if len(rows) > MAX_BATCH:
        raise InputError(f"contacts: at most {MAX_BATCH} per request, got {len(rows)}; send several batches")
    report = import_rows(rt, iter([(i + 1, row) for i, row in enumerate(rows)]), label="request")
    return report_body(report)
