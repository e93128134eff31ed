"""Consent receipts (issue 18 §4): what a person chose, when, on which wording, for which controller,
signed by the instance so that they (or anyone they give it to) can check it offline.

A receipt describes one *answer*: the ledger events the person's own act appended together (same
time, source, campaign and wording), whatever their channel, purpose and action, one purpose entry
per event, each named by its ledger hash. The fields follow the Kantara Consent Receipt v1.1
(docs/proof.md maps them to ISO/IEC TS 27560); a few ``reconsent``-specific ones carry the proof.

The receipt holds no address: the person is named by the pseudonym of the evidence export (an HMAC of
their contact id under the instance's suppression key), which the controller can map back and nobody
else can.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from orchestrator.consent.ledger import GIVEN
from orchestrator.domain.clock import as_utc
from orchestrator.domain.model import ConsentSource, Purpose
from orchestrator.proof import receipt_keys
from orchestrator.proof.evidence import pseudonym
from orchestrator.rendering.brand import read_brand
from orchestrator.runtime import Runtime
from orchestrator.store.db import session_scope
from orchestrator.store.models import ConsentEvent, Wording

VERSION = "KI-CR-v1.1.0"
#: where the public keys are published (a JWK Set)
JWKS_PATH = "/.well-known/jwks.json"
#: the sources of a person's own answer, and how the receipt names each (Kantara ``collectionMethod``)
ANSWER_SOURCES = {
    ConsentSource.PREFERENCE_CENTRE.value: "web form: the preference centre",
    ConsentSource.ONE_CLICK.value: "one-click unsubscribe from an email (RFC 8058)",
    ConsentSource.SMS_KEYWORD.value: "SMS reply",
}
#: Kantara ``piiCategory`` per channel (another channel is named as it is)
PII_CATEGORY = {"email": "email address", "sms": "mobile phone number"}
TERMINATION = ("Withdraw or change this consent at any time: the link in any of our messages, the unsubscribe "
               "link of every email, or STOP by SMS.")


@dataclass(frozen=True)
class Receipt:
    """A signed receipt: the compact JWS, and its claims as signed."""

    jws: str
    claims: dict[str, Any]

    def document(self, jwks_url: str) -> bytes:
        """The downloaded file: the JWS (the proof), its claims decoded (to read), where the keys are."""
        doc = {"receipt": self.claims, "jws": self.jws, "jwks_url": jwks_url,
               "verify": "reconsent receipts verify FILE --jwks " + jwks_url}
        return json.dumps(doc, indent=2, ensure_ascii=False).encode() + b"\n"


def principal_id(rt: Runtime, contact_id: int) -> str:
    """The person's pseudonym: the one of the evidence export (an HMAC of the contact id under the
    suppression key), so an auditor finds the receipt's person in it; meaningless elsewhere."""
    return pseudonym(rt, contact_id)


def latest_answer(session: Session, contact_id: int) -> list[ConsentEvent]:
    """The events of the person's most recent answer, in ledger order ([] before any answer): the
    newest event of one of their own acts and those appended with it, i.e. linked to it through the
    chain (``prev_hash``) with the same time, source, campaign and wording."""
    newest = session.exec(select(ConsentEvent).where(
        ConsentEvent.contact_id == contact_id, col(ConsentEvent.source).in_(list(ANSWER_SOURCES)))
        .order_by(col(ConsentEvent.id).desc()).limit(1)).first()
    if newest is None:
        return []
    same = (newest.source, newest.campaign_id, newest.wording_hash)
    by_hash = {e.hash: e for e in session.exec(select(ConsentEvent).where(
        ConsentEvent.contact_id == contact_id, ConsentEvent.occurred_at == newest.occurred_at,
        col(ConsentEvent.id) <= newest.id)) if (e.source, e.campaign_id, e.wording_hash) == same}
    answer = [newest]
    # Answers are told apart by their time: two by one person within the same microsecond (possible only
    # with a frozen clock, RECONSENT_NOW) would read as one.
    while (before := by_hash.get(answer[-1].prev_hash)) is not None:
        answer.append(before)
    return answer[::-1]


def receipt_for(rt: Runtime, contact_id: int) -> Receipt | None:
    """The signed receipt of the person's most recent answer; None before any. Reads only."""
    with session_scope(rt.engine) as session:
        events = latest_answer(session, contact_id)
        if not events:
            return None
        wording = session.get(Wording, events[0].wording_hash) if events[0].wording_hash else None
        claims = receipt_claims(rt, contact_id, events, wording)
    return Receipt(receipt_keys.sign(rt.config, claims), claims)


def receipt_claims(rt: Runtime, contact_id: int, events: list[ConsentEvent], wording: Wording | None) -> dict[str, Any]:
    """The receipt's fields for ``events`` (one answer), before signing."""
    first = events[0]
    cfg = rt.config
    brand = read_brand(rt)
    at = as_utc(first.occurred_at)
    hashes = [e.hash for e in events]
    services: dict[str, list[dict[str, Any]]] = {}
    partner_names = {f"partner:{p.id}": p.name for p in cfg.partners}  # the named partners (issue 18 §2)
    for e in events:
        entry = {
            "purpose": e.purpose, "purposeCategory": [e.purpose], "consentType": "EXPLICIT",
            "piiCategory": [PII_CATEGORY.get(e.channel, e.channel)], "primaryPurpose": e.purpose == Purpose.MARKETING,
            "termination": TERMINATION, "thirdPartyDisclosure": e.purpose.startswith("partner"),
            "action": e.action, "consentGiven": e.action in GIVEN, "eventHash": e.hash,
        }
        if e.purpose in partner_names:
            entry["thirdPartyName"] = partner_names[e.purpose]
        if e.detail:  # what the event records besides its action: a frequency, a pause's end
            entry["detail"] = e.detail
        services.setdefault(e.channel, []).append(entry)
    return {
        "version": VERSION,
        "jurisdiction": cfg.receipts.jurisdiction,
        "consentTimestamp": int(at.timestamp()),
        "consentTime": at.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "collectionMethod": ANSWER_SOURCES.get(first.source, first.source),
        # the same answer always gets the same id: a uuid named by its last event's hash
        "consentReceiptID": str(uuid.uuid5(uuid.NAMESPACE_URL, "reconsent:receipt:" + hashes[-1])),
        "language": first.locale or "",
        "piiPrincipalId": principal_id(rt, contact_id),
        "piiControllers": [{
            "piiController": brand.sender_name, "contact": brand.sender_name,
            "address": {"streetAddress": cfg.sender.postal_address}, "email": cfg.sender.email_from,
            "piiControllerUrl": cfg.public.base_url,
        }],
        "policyUrl": brand.privacy_url,
        "services": [{"service": channel, "purposes": purposes} for channel, purposes in services.items()],
        "sensitive": False,
        "spiCat": [],
        "iss": cfg.public.base_url,
        "wording": {"name": first.wording_name, "locale": wording.locale if wording else first.locale,
                    "hash": first.wording_hash, "text": wording.text if wording else None},
        "ledgerEvents": hashes,
    }


def jwks_url(rt: Runtime) -> str:
    return rt.url(JWKS_PATH)


def verify_receipt(data: bytes, key_set: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The signed claims of a receipt file (the downloaded JSON document, or the bare JWS) and the
    ``kid`` that signed it, when a key of ``key_set`` verifies it; else ReceiptInvalid saying why. In a
    JSON document, the readable copy must be the signed one."""
    text = data.decode("utf-8", errors="replace").strip()
    shown: Any = None
    if text.startswith("{"):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError:
            doc = None
        if not isinstance(doc, dict) or not isinstance(doc.get("jws"), str):
            raise receipt_keys.ReceiptInvalid('a JSON file without a "jws" member: not a receipt')
        text, shown = doc["jws"], doc.get("receipt")
    claims, kid = receipt_keys.verify(text, key_set)
    if shown is not None and shown != claims:
        raise receipt_keys.ReceiptInvalid('the readable copy ("receipt") differs from the signed one ("jws"): '
                                          "the file was edited; only the signed content counts")
    return claims, kid


def load_jwks(source: str, *, timeout: float = 10.0) -> dict[str, Any]:
    """A JWK Set from a file or an http(s) URL."""
    try:
        if source.startswith(("https://", "http://")):
            with urllib.request.urlopen(source, timeout=timeout) as resp:  # http(s) only: checked above
                raw = resp.read()
        else:
            raw = Path(source).read_bytes()
        key_set: Any = json.loads(raw)
    except (OSError, ValueError) as exc:
        raise receipt_keys.ReceiptInvalid(f"cannot read the key set {source}: {exc}") from None
    if not isinstance(key_set, dict) or not isinstance(key_set.get("keys"), list):
        raise receipt_keys.ReceiptInvalid(f"{source} is not a JWK Set (an object with \"keys\")")
    return key_set
