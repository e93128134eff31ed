"""One address checked or added to the suppression list by a company's system (the HTTP API's
``POST /suppression:check`` and ``POST /suppression``, issue 17 §2).

Adding goes through :func:`orchestrator.consent.service.withdraw`, the one writer of "stop messaging
this address": the entry is added (the first reason stays) and the open requests of the contacts
holding that address are declined, so no further step goes out, and each of them gets a
``withdrawn`` ledger event (source ``api``) as an unsubscribe leaves one. The answer names channels and
reasons, never the address; the key (a keyed hash) is what the list holds.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlmodel import col

from orchestrator.consent import ledger
from orchestrator.consent.ledger import Proof
from orchestrator.consent.service import withdraw
from orchestrator.consent.standing import iso
from orchestrator.consent.suppression import adopt_previous, check_detailed, normalise
from orchestrator.domain.model import Channel, ConsentAction, ConsentSource, Purpose, SuppressionReason
from orchestrator.errors import InputError
from orchestrator.runtime import Runtime
from orchestrator.store.db import session_scope
from orchestrator.store.models import Contact

REASONS = tuple(r.value for r in SuppressionReason)


def check_value(rt: Runtime, value: str) -> dict[str, Any]:
    """``{"suppressed": bool, "entries": [{channel, reason, since}]}`` for an email, phone or key."""
    entries = [{"channel": r.entry.channel, "reason": r.entry.reason, "since": iso(r.entry.created_at)}
               for r in check_detailed(rt, value)]
    return {"suppressed": bool(entries), "entries": entries}


def add_value(rt: Runtime, value: str, reason: str, *, source: str,
              channel: str | None = None) -> dict[str, Any]:
    """Suppress an email, phone or key (on ``channel`` only, when given) for ``reason``; returns which
    channels were newly added and which were already listed."""
    if reason not in REASONS:
        raise InputError(f"reason: expected one of {', '.join(REASONS)}, got {reason!r}")
    address, channels = normalise(rt, value)
    if channel is not None:
        if channel not in channels:
            raise InputError(f"channel: {channel!r} does not fit this value (it can be {' or '.join(channels)})")
        channels = [channel]
    key = rt.key_for(address) if address else value.strip().lower()
    added, already = [], []
    now = rt.clock.now()
    with session_scope(rt.engine) as session:
        if address:
            adopt_previous(session, rt, [address])
        for ch in channels:
            column = col(Contact.email_key) if ch == Channel.EMAIL.value else col(Contact.phone_key)
            holders = list(session.execute(select(col(Contact.id)).where(column == key)).scalars())
            if withdraw(session, key, ch, reason, source, now, decline=holders):
                added.append(ch)
                for contact_id in holders:  # the proof, as an unsubscribe leaves one (and its webhook)
                    ledger.append(session, contact_id=contact_id, channel=ch, purpose=Purpose.MARKETING,
                                  action=ConsentAction.WITHDRAWN, at=now, proof=Proof(source=ConsentSource.API))
            else:
                already.append(ch)
    return {"added": added, "already": already}
