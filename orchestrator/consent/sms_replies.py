"""What people answer by SMS [S4]: keywords and replies to a re-consent SMS, applied to the consent
ledger, the suppression list and the requests. The Twilio webhook verifies and parses; the rules
live here.

- STOP words withdraw SMS consent, suppress the number and decline every pending request of every
  contact with that number.
- START words lift an opt-out (not a bounce or an erasure) and (re)grant SMS consent (``granted``);
  a request that asked this number by SMS and is still pending is confirmed (``confirmed``).
- Yes words (OUI, O, YES, Y) answer a re-consent SMS: SMS consent is confirmed and the request
  closed as confirmed. Without such a pending request a "yes" is not an answer to anything (it is
  treated as a reply we did not understand).
- No words (NON, NO) decline: SMS consent declined for the requests asked by SMS, withdrawn for the
  other contacts sharing the number, and the number suppressed (always honoured, like STOP).
- HELP words get the help text; any other reply gets one short "reply YES or NO" text, at most one
  per number per day (:func:`first_notice_today`), and changes nothing.
- An inbound MessageSid already applied (a webhook delivered twice) changes nothing and gets no answer.

*Which request a reply answers* (also when several contacts share the number): the pending requests
of the contacts holding that number to which a re-consent SMS was sent (an outbox row of the SMS
channel with ``sent_at``, not reported bounced or failed). A contact whose request went by email
only, or who has no pending request, is not answered for by a "yes" sent from the phone.

Every event carries its proof: source ``sms_keyword``, ``wording_name`` ``sms_keyword:<WORD>``, the
campaign and step answered, and as wording a stored document (name ``sms_reply``) with the reply as
received, the inbound MessageSid, the time, and the SMS it answered (its provider id, template,
locale, wording version and the SMS template's text of that version). The document holds no phone
number.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Table, bindparam, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from orchestrator.consent import enrolments, ledger
from orchestrator.consent.keywords import (
    HELP_TEXT,
    NOT_UNDERSTOOD_TEXT,
    help_text,
    keyword,
    match_keyword,
    sms_sender_for,
)
from orchestrator.consent.ledger import Proof
from orchestrator.consent.service import withdraw
from orchestrator.consent.suppression import lift
from orchestrator.domain.addresses import normalise_sender
from orchestrator.domain.model import (
    Channel,
    ConsentAction,
    ConsentSource,
    DeliveryState,
    Purpose,
    RequestState,
    SuppressionReason,
)
from orchestrator.runtime import Runtime
from orchestrator.store.db import session_scope
from orchestrator.store.models import Contact, Enrolment, OutboxMessage, SmsInboundSeen, SmsReplyNotice

log = logging.getLogger("reconsent.twilio")

_NOTICE: Table = SmsReplyNotice.metadata.tables["sms_reply_notice"]
_SEEN: Table = SmsInboundSeen.metadata.tables["sms_inbound_seen"]
_CONTACT: Table = Contact.metadata.tables["contact"]
#: an SMS the provider reported as not delivered was not received: a reply does not answer it
_NOT_RECEIVED = (DeliveryState.BOUNCED.value, DeliveryState.FAILED.value)
#: the event each kind of reply records
_ACTIONS = {"stop": ConsentAction.WITHDRAWN, "start": ConsentAction.GRANTED, "yes": ConsentAction.CONFIRMED,
            "no": ConsentAction.DECLINED}


def sms_reply(rt: Runtime, from_number: str, body: str, message_sid: str = "") -> str | None:
    """Apply one inbound SMS (``From``, ``Body``, ``MessageSid``); returns the text to answer with, or
    None for no answer. See the module's docstring for the rules."""
    if not from_number:
        return None
    matched = match_keyword(rt.config, body)
    key = rt.key_for(normalise_sender(from_number, rt.config.contacts.default_region))
    now = rt.clock.now()
    with session_scope(rt.engine) as session:
        if message_sid and not _first_delivery(session.connection(), message_sid, now):
            return None  # the same inbound SMS again (a webhook retry): already applied and answered
        contacts = list(session.execute(
            select(Contact).where(col(Contact.phone_key) == key, col(Contact.erased_at).is_(None))
            .order_by(col(Contact.id))).scalars())
        locales = [c.locale for c in contacts]
        if matched is None or matched[0] == "help":
            if matched is None and not keyword(body):
                return None  # nothing written (a picture, an empty message): nothing to answer
            return _helpful(rt, session.connection(), key, locales, matched, now, from_number)
        kind, word, keyword_locales = matched
        asked = asked_requests(session.connection(), [c.id for c in contacts if c.id is not None])
        if kind == "yes" and not asked:
            return _helpful(rt, session.connection(), key, locales, None, now, from_number)
        _apply(rt, session, kind, word, keyword_locales, key, contacts, asked, body, message_sid, now)
    log.info("SMS reply %s (%s) applied to %d contact(s), %d request(s)", word, kind, len(contacts), len(asked))
    return None


def _helpful(rt: Runtime, conn: Connection, key: str, locales: list[str], matched: tuple[str, str, list[str]] | None,
             now: datetime, from_number: str) -> str | None:
    """HELP: the help text, always. A reply we did not understand: the short "reply YES or NO" text,
    once a day per number."""
    if matched is None and not first_notice_today(conn, key, now):
        return None
    wanted = [loc for loc in locales if loc in HELP_TEXT] + (matched[2] if matched else [])
    locale = wanted[0] if wanted else rt.config.contacts.default_locale
    return help_text(rt.config, locale, stop_number_for(rt, from_number),
                     texts=HELP_TEXT if matched else NOT_UNDERSTOOD_TEXT)


def stop_number_for(rt: Runtime, phone: str) -> str:
    """The number a recipient replies STOP to: their country's (:func:`sms_sender_for`)."""
    return sms_sender_for(rt.config, normalise_sender(phone, rt.config.contacts.default_region))[1]


def _first_delivery(conn: Connection, message_sid: str, now: datetime) -> bool:
    """Record an inbound MessageSid; False when it was already recorded (by a committed request, or
    by a concurrent one, which the primary key makes wait and then refuses)."""
    try:
        with conn.begin_nested():
            conn.execute(insert(_SEEN).values(message_sid=message_sid[:64], received_at=now))
    except IntegrityError:
        return False
    return True


def first_notice_today(conn: Connection, key: str, now: datetime) -> bool:
    """Record that a "not understood" answer goes to this number today; False when one already went.
    Atomic on both databases: the day moves forward in one conditional UPDATE, or the first row is
    inserted (a concurrent first insert loses on the primary key)."""
    today = now.date()
    moved = conn.execute(update(_NOTICE).where(_NOTICE.c.key == key, _NOTICE.c.replied_on < today)
                         .values(replied_on=today))
    if moved.rowcount:
        return True
    if conn.execute(select(_NOTICE.c.key).where(_NOTICE.c.key == key)).first() is not None:
        return False
    try:
        with conn.begin_nested():
            conn.execute(insert(_NOTICE).values(key=key, replied_on=today))
    except IntegrityError:
        return False
    return True


def asked_requests(conn: Connection, contact_ids: Sequence[int]) -> list[Row[Any]]:
    """The pending requests of these contacts that a re-consent SMS was sent for, one row each (its
    newest SMS): enrolment id, contact, campaign, step, provider id, template, locale, wording version,
    sent time. Newest first."""
    if not contact_ids:
        return []
    rows: Sequence[Any] = conn.execute(
        select(col(Enrolment.id).label("enrolment_id"), col(Enrolment.contact_id), col(Enrolment.campaign_id),
               col(OutboxMessage.step), col(OutboxMessage.provider_id), col(OutboxMessage.template),
               col(OutboxMessage.locale), col(OutboxMessage.template_version), col(OutboxMessage.sent_at))
        .join(OutboxMessage, (col(OutboxMessage.campaign_id) == col(Enrolment.campaign_id))
              & (col(OutboxMessage.contact_id) == col(Enrolment.contact_id)))
        .where(col(Enrolment.contact_id).in_(list(contact_ids)),
               col(Enrolment.state) == RequestState.PENDING.value,
               col(OutboxMessage.channel) == Channel.SMS.value, col(OutboxMessage.sent_at).is_not(None),
               col(OutboxMessage.status).not_in(_NOT_RECEIVED))
        .order_by(col(OutboxMessage.sent_at).desc(), col(OutboxMessage.id).desc())
    ).all()
    seen: set[int] = set()
    newest: list[Row[Any]] = []
    for row in rows:
        if row.enrolment_id not in seen:
            seen.add(row.enrolment_id)
            newest.append(row)
    return newest


def _last_sms(conn: Connection, contact_id: int) -> Row[Any] | None:
    """The newest SMS sent to a contact (any request state): what a STOP or START answers."""
    row = cast("Row[Any] | None", conn.execute(
        select(col(OutboxMessage.contact_id), col(OutboxMessage.campaign_id), col(OutboxMessage.step),
               col(OutboxMessage.provider_id), col(OutboxMessage.template), col(OutboxMessage.locale),
               col(OutboxMessage.template_version), col(OutboxMessage.sent_at))
        .where(col(OutboxMessage.contact_id) == contact_id, col(OutboxMessage.channel) == Channel.SMS.value,
               col(OutboxMessage.sent_at).is_not(None))
        .order_by(col(OutboxMessage.sent_at).desc()).limit(1)
    ).first())
    return row


def _apply(rt: Runtime, session: Session, kind: str, word: str, keyword_locales: list[str], key: str,
           contacts: list[Contact], asked: list[Row[Any]], body: str, message_sid: str, now: datetime) -> None:
    conn = session.connection()
    sms = Channel.SMS.value
    # The requests' transition comes first, as for a page answer: it is where an answer and the
    # deadline sweep meet. Only the requests this reply moved out of pending are answered by it; when
    # the sweep expired them first, a "yes" records nothing (the campaign is over).
    ids = [row.enrolment_id for row in asked]
    if ids and kind in ("yes", "start", "no"):
        target = RequestState.DECLINED if kind == "no" else RequestState.CONFIRMED
        moved = enrolments.close(session, target, now, ids=ids)
        asked = [row for row in asked if row.enrolment_id in moved]
    if kind == "yes" and not asked:
        return
    if kind == "stop":
        withdraw(session, key, sms, SuppressionReason.SMS_STOP, ConsentSource.SMS_KEYWORD.value, now,
                 decline=[c.id for c in contacts if c.id is not None])
    elif kind == "no":
        withdraw(session, key, sms, SuppressionReason.UNSUBSCRIBED, ConsentSource.SMS_KEYWORD.value, now)
    else:
        lift(conn, key, sms)
    by_contact: dict[int, list[Row[Any]]] = {}
    for row in asked:
        by_contact.setdefault(row.contact_id, []).append(row)
    events: list[dict[str, Any]] = []
    for contact in contacts:
        assert contact.id is not None
        answered = by_contact.get(contact.id, [])
        if kind == "yes" and not answered:
            continue  # a yes answers the requests sent to this phone only
        # the "no" of a contact whose request was not asked by SMS stops their SMS too: withdrawn
        action = ConsentAction.WITHDRAWN if kind == "no" and not answered else _ACTIONS[kind]
        if kind == "start" and answered:
            action = ConsentAction.CONFIRMED  # a re-grant that answers a pending request confirms it
        locale = contact.locale if contact.locale in keyword_locales else keyword_locales[0]
        messages: list[Row[Any] | None] = list(answered) or [_last_sms(conn, contact.id)]
        for message in messages:
            text = None if message is None else rt.renderer.source_of(
                message.template, Channel.SMS, message.locale or "", message.template_version, "sms.txt")
            document = _proof_document(body, word, message_sid, now, message, text)
            wording = ledger.remember_wording(session, name="sms_reply", locale=locale, text_shown=document, at=now)
            proof = Proof(source=ConsentSource.SMS_KEYWORD, campaign_id=message.campaign_id if message else None,
                          step=message.step if message else None, wording_name=f"sms_keyword:{word}",
                          wording_hash=wording, locale=locale)
            events.append({"contact_id": contact.id, "channel": sms, "purpose": Purpose.MARKETING.value,
                           "action": action.value, "at": now, "proof": proof})
    ledger.append_many(session, events)
    if kind in ("yes", "start") and asked:
        session.execute(update(_CONTACT).where(_CONTACT.c.id.in_(bindparam("ids", expanding=True)))
                        .values(consented_at=now), {"ids": sorted(by_contact)})


def _proof_document(body: str, word: str, message_sid: str, now: datetime, message: Row[Any] | None,
                    text: str | None = None) -> str:
    """The reply's proof as canonical JSON (stored as a wording, so the event's hash covers it).

    >>> from datetime import UTC
    >>> doc = _proof_document(" Oui ", "OUI", "SM1", datetime(2026, 1, 1, tzinfo=UTC), None)
    >>> doc[:61]
    '{"answered": null, "message_sid": "SM1", "received_at": "2026'
    """
    answered = None if message is None else {
        "campaign_id": message.campaign_id, "step": message.step, "provider_id": message.provider_id,
        "template": message.template, "locale": message.locale, "template_version": message.template_version,
        "sent_at": message.sent_at.isoformat() if message.sent_at else None, "wording": text,
    }
    return json.dumps({"reply": body.strip()[:160], "word": word, "message_sid": message_sid[:64],
                       "received_at": now.isoformat(), "answered": answered}, sort_keys=True, ensure_ascii=False)
