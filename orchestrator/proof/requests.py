"""The register of data-subject requests [R8]: what was asked, when, by whom it was handled, and
whether the one-month deadline (GDPR art. 12(3)) is kept.

The person is identified by the keyed hash of one address, never the address: the register must
survive the erasure it records.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from sqlalchemy import select
from sqlmodel import Session, col

from orchestrator.domain.clock import as_utc
from orchestrator.domain.model import Channel
from orchestrator.domain.retention import add_months
from orchestrator.errors import InputError, NotFoundError, StateError
from orchestrator.runtime import Runtime
from orchestrator.store.db import session_scope
from orchestrator.store.models import Contact, DsrRequest

KINDS = ("access", "erasure", "rectification")
OPEN, DONE, REFUSED = "received", "done", "refused"
SOURCES = ("operator", "preference_centre", "email", "post")


def due_for(received: datetime) -> datetime:
    """One calendar month after receipt (clamped to the month's end).

    >>> from datetime import timezone
    >>> due_for(datetime(2026, 1, 31, 10, tzinfo=timezone.utc)).isoformat()
    '2026-02-28T10:00:00+00:00'
    """
    received = as_utc(received)
    return datetime.combine(add_months(received.date(), 1), received.timetz())


@dataclass(frozen=True)
class Subject:
    """Who a request is about: the keyed hash of one of their addresses."""

    key: str
    channel: str


def subject_of_contact(contact: Contact) -> Subject:
    if contact.email_key:
        return Subject(contact.email_key, Channel.EMAIL.value)
    if contact.phone_key:
        return Subject(contact.phone_key, Channel.SMS.value)
    raise NotFoundError(f"contact {contact.id} holds no address any more (erased)")


def record(session: Session, rt: Runtime, kind: str, subject: Subject, *, source: str = "operator",
           received_at: datetime | None = None, handled_by: str | None = None, done: bool = False,
           note: str | None = None) -> DsrRequest:
    """Add a request to the register (in the caller's transaction)."""
    if kind not in KINDS:
        raise InputError(f"kind: expected one of {', '.join(KINDS)}, got {kind!r}")
    received = as_utc(received_at) if received_at else rt.clock.now()
    request = DsrRequest(kind=kind, subject_key=subject.key, subject_channel=subject.channel,
                         received_at=received, due_at=due_for(received), state=DONE if done else OPEN,
                         source=source, handled_by=handled_by if done else None,
                         handled_at=rt.clock.now() if done else None, note=note)
    session.add(request)
    session.flush()
    return request


def record_handled(session: Session, rt: Runtime, kind: str, subject: Subject, *, handled_by: str,
                   source: str = "operator") -> DsrRequest:
    """Close the oldest open request of this kind for this person, or register one already handled."""
    request: DsrRequest | None = session.execute(
        select(DsrRequest).where(col(DsrRequest.kind) == kind, col(DsrRequest.subject_key) == subject.key,
                                 col(DsrRequest.state) == OPEN).order_by(col(DsrRequest.received_at)).limit(1)
    ).scalar_one_or_none()
    if request is None:
        return record(session, rt, kind, subject, source=source, handled_by=handled_by, done=True)
    request.state, request.handled_by, request.handled_at = DONE, handled_by, rt.clock.now()
    session.add(request)
    return request


def close(rt: Runtime, request_id: int, *, handled_by: str, refused: bool = False,
          note: str | None = None) -> DsrRequest:
    with session_scope(rt.engine) as session:
        request = session.get(DsrRequest, request_id)
        if request is None:
            raise NotFoundError(f"request {request_id} does not exist (see `reconsent dsr list`)")
        if request.state != OPEN:
            raise StateError(f"request {request_id} is already {request.state}")
        request.state = REFUSED if refused else DONE
        request.handled_by, request.handled_at = handled_by, rt.clock.now()
        if note:
            request.note = note
        session.add(request)
        return request


def list_requests(rt: Runtime, *, overdue: bool = False, subject_keys: list[str] | None = None) -> list[DsrRequest]:
    """The register, oldest first; ``overdue``: still open after their due date."""
    query = select(DsrRequest).order_by(col(DsrRequest.received_at), col(DsrRequest.id))
    if overdue:
        query = query.where(col(DsrRequest.state) == OPEN, col(DsrRequest.due_at) < rt.clock.now())
    if subject_keys is not None:
        query = query.where(col(DsrRequest.subject_key).in_(subject_keys))
    with session_scope(rt.engine) as session:
        return list(session.execute(query).scalars())


def as_dict(r: DsrRequest) -> dict[str, object]:
    def iso(v: datetime | None) -> str | None:
        return as_utc(v).isoformat() if v else None

    return {"id": r.id, "kind": r.kind, "received_at": iso(r.received_at), "due_at": iso(r.due_at),
            "state": r.state, "source": r.source, "handled_by": r.handled_by,
            "handled_at": iso(r.handled_at), "subject": f"{r.subject_channel}:{r.subject_key[:12]}…",
            "note": r.note}


def register(rt: Runtime, kind: str, subject: Subject, *, source: str = "operator",
             received_at: datetime | None = None, note: str | None = None) -> DsrRequest:
    """Register a request received by mail, post or phone (``reconsent dsr add``), in its own
    transaction; the returned row carries its id and due date."""
    with session_scope(rt.engine) as session:
        return record(session, rt, kind, subject, source=source, received_at=received_at, note=note)
def record_received(rt: Runtime, kind: str, subject: Subject, received_on: date, *, recorded_by: str) -> int:
    """Register a request an operator received by mail, phone or letter on ``received_on`` (due one
    month later); returns its id. InputError for a kind not in :data:`KINDS`."""
    received = datetime.combine(received_on, time(0, 0), tzinfo=UTC)
    with session_scope(rt.engine) as session:
        request = record(session, rt, kind, subject, source="operator", received_at=received,
                         note=f"recorded in the console by {recorded_by}")
        assert request.id is not None
        return request.id
