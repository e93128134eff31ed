"""Posting webhook deliveries (issue 17): claim, sign (Standard Webhooks), post, record, retry.

The rows are written by ``orchestrator.consent.webhooks`` in the transaction of each change. The
dispatcher (``dispatch``, ``dispatch --once``, ``run``) runs :meth:`WebhookSender.run_once` beside its
message loop, as a task of its own: messages never wait for an endpoint.

- **Per endpoint.** Each configured endpoint is a queue of its own (claimed by URL), worked by its own
  task: a dead or slow endpoint delays only its own events. Its first failure in a round ends that
  endpoint's round and pushes its other due rows to the failed row's next attempt (one request per
  retry step to an endpoint that is down, not one per queued event).
- **At least once, stable id.** A row is claimed with a lease (``sending``), posted, then marked
  ``delivered`` (any 2xx) or given its next attempt. A worker that dies between the post and the mark
  leaves the row to be posted again once the lease expires, with the same ``webhook-id`` (receivers
  de-duplicate on it). No redirects are followed.
- **Backoff for a day.** After attempt n the next one waits :data:`BACKOFF` [n] (5 s, 5 min, 30 min,
  2 h, 5 h, 10 h, 10 h…); once the next attempt would fall past ``webhooks.give_up_hours`` after the
  first attempt, the row is ``failed`` (the console and the ``reconsent_webhooks`` metric show it).
- **Signature.** ``webhook-signature: v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`` where
  the key is the base64 after ``whsec_``; ``webhook-timestamp`` is Unix seconds of this attempt (real
  time, so receivers can refuse stale or replayed requests).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from sqlalchemy import Table, bindparam, func, or_, select, update
from sqlalchemy.engine import Connection

from orchestrator.domain.clock import Clock, SystemClock, as_utc
from orchestrator.runtime import Runtime
from orchestrator.store.db import run_in_connection
from orchestrator.store.models import WebhookDelivery
from orchestrator.webhook_settings import WebhookEndpoint

log = logging.getLogger("reconsent.webhooks")

BACKOFF = (timedelta(seconds=5), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2),
           timedelta(hours=5), timedelta(hours=10))
PENDING, SENDING, DELIVERED, FAILED = "pending", "sending", "delivered", "failed"
_T: Table = WebhookDelivery.metadata.tables["webhook_delivery"]
_c = _T.c


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value (Standard Webhooks, v1).

    >>> sign("whsec_" + base64.b64encode(b"k" * 24).decode(), "msg_1", 1700000000, b"{}")[:3]
    'v1,'
    """
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def next_delay(attempts: int) -> timedelta:
    """How long to wait after ``attempts`` failed attempts.

    >>> next_delay(1), next_delay(9)
    (datetime.timedelta(seconds=5), datetime.timedelta(seconds=36000))
    """
    return BACKOFF[min(attempts, len(BACKOFF)) - 1] if attempts <= len(BACKOFF) else BACKOFF[-1]


def shown(url: str) -> str:
    """An endpoint for logs and pages: scheme, host and port only (a path may hold a token).

    >>> shown("https://hooks.example.com/T0/secret-path?x=1")
    'https://hooks.example.com'
    """
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"


@dataclass
class WebhookReport:
    delivered: int = 0
    failed_attempts: int = 0
    given_up: int = 0


@dataclass(frozen=True)
class _Claimed:
    id: int
    webhook_id: str
    body: str
    attempts: int
    first_attempt_at: datetime | None


class WebhookSender:
    """Delivers due webhook rows, one task per configured endpoint."""

    def __init__(self, rt: Runtime, *, worker_id: str, lease_clock: Clock | None = None,
                 batch_size: int = 50, lease: timedelta = timedelta(minutes=5),
                 stopping: Callable[[], bool] = lambda: False) -> None:
        self.rt = rt
        self.worker_id = worker_id
        self.lease_clock: Clock = lease_clock or SystemClock()
        self.batch_size = batch_size
        self.lease = lease
        self.stop_requested = stopping
        self._rounds = 0

    async def run_once(self) -> WebhookReport:
        """Post every due row of every endpoint (each endpoint stops at its first failure)."""
        report = WebhookReport()
        endpoints = self.rt.config.webhooks.endpoints
        if not endpoints:
            return report
        timeout = aiohttp.ClientTimeout(total=self.rt.config.webhooks.timeout_seconds)
        async with aiohttp.ClientSession(timeout=timeout, headers={"User-Agent": "Reconsent-Webhooks/1"}) as http:
            await asyncio.gather(*(self._endpoint(http, e, report) for e in endpoints))
        return report

    async def _endpoint(self, http: aiohttp.ClientSession, endpoint: WebhookEndpoint, report: WebhookReport) -> None:
        try:
            while not self.stop_requested():
                self._rounds += 1
                claim_id = f"{self.worker_id}-w{self._rounds}"
                rows = await asyncio.to_thread(self._claim, endpoint.url, claim_id)
                if not rows:
                    return
                for n, row in enumerate(rows):
                    error, status = await self._post(http, endpoint, row)
                    last = error is not None or self.stop_requested()
                    if last:  # given back first, so that a failure's push below reaches them too
                        await asyncio.to_thread(self._release, claim_id, [r.id for r in rows[n + 1:]])
                    await asyncio.to_thread(self._record, endpoint.url, claim_id, row, error, status, report)
                    if last:
                        return
        except Exception:  # the message loop goes on; rows left claimed are taken over when the lease ends
            log.exception("webhook round for %s failed", shown(endpoint.url))

    async def _post(self, http: aiohttp.ClientSession, endpoint: WebhookEndpoint,
                    row: _Claimed) -> tuple[str | None, int | None]:
        body = row.body.encode("utf-8")
        timestamp = int(self.lease_clock.now().timestamp())
        headers = {"content-type": "application/json", "webhook-id": row.webhook_id,
                   "webhook-timestamp": str(timestamp),
                   "webhook-signature": sign(endpoint.secret, row.webhook_id, timestamp, body)}
        try:
            async with http.post(endpoint.url, data=body, headers=headers, allow_redirects=False) as response:
                if 200 <= response.status < 300:
                    return None, response.status
                return f"HTTP {response.status}", response.status
        except TimeoutError:
            return f"no answer within {self.rt.config.webhooks.timeout_seconds:g} s", None
        except aiohttp.ClientError as exc:
            return f"{type(exc).__name__}: {str(exc)[:200]}", None

    # -- the queue's statements (each its own short transaction) -----------------------------------
    def _claim(self, url: str, claim_id: str) -> list[_Claimed]:
        now, lease_now = self.rt.clock.now(), self.lease_clock.now()

        def work(conn: Connection) -> list[_Claimed]:
            due: Any = (select(_c.id).where(_c.endpoint == url, or_(
                (_c.status == PENDING) & (_c.next_attempt_at <= now),
                (_c.status == SENDING) & (_c.claimed_until < lease_now))).order_by(_c.id).limit(self.batch_size))
            if conn.dialect.name == "postgresql":
                due = due.with_for_update(skip_locked=True)
            got = conn.execute(update(_T).where(_c.id.in_(due.scalar_subquery()))
                               .values(status=SENDING, claimed_by=claim_id, claimed_until=lease_now + self.lease)
                               .returning(_c.id, _c.webhook_id, _c.body, _c.attempts, _c.first_attempt_at)).all()
            return sorted((_Claimed(r[0], r[1], r[2], r[3], as_utc(r[4]) if r[4] else None) for r in got),
                          key=lambda r: r.id)

        return run_in_connection(self.rt.engine, work)

    def _record(self, url: str, claim_id: str, row: _Claimed, error: str | None, status: int | None,
                report: WebhookReport) -> None:
        now = self.rt.clock.now()
        attempts = row.attempts + 1
        first = row.first_attempt_at or now
        mine = (_c.id == row.id) & (_c.claimed_by == claim_id)
        if error is None:
            values: dict[str, Any] = {"status": DELIVERED, "delivered_at": now, "last_error": None,
                                      "first_attempt_at": first}
            report.delivered += 1
        else:
            retry_at = now + next_delay(attempts)
            give_up = retry_at > first + timedelta(hours=self.rt.config.webhooks.give_up_hours)
            values = {"status": FAILED if give_up else PENDING, "next_attempt_at": retry_at, "last_error": error,
                      "first_attempt_at": first}
            report.failed_attempts += 1
            report.given_up += give_up
            log.warning("webhook %s to %s failed (attempt %d): %s%s", row.webhook_id, shown(url), attempts, error,
                        "; giving up" if give_up else f"; next attempt at {retry_at:%Y-%m-%d %H:%M:%S}")

        def work(conn: Connection) -> None:
            conn.execute(update(_T).where(mine).values(attempts=attempts, last_status=status, claimed_by=None,
                                                        claimed_until=None, **values))
            if error is not None:  # the endpoint is down: its other due rows wait for the same retry
                conn.execute(update(_T).where(_c.endpoint == url, _c.status == PENDING,
                                              _c.next_attempt_at < values["next_attempt_at"])
                             .values(next_attempt_at=values["next_attempt_at"]))

        run_in_connection(self.rt.engine, work)

    def _release(self, claim_id: str, ids: list[int]) -> None:
        if not ids:
            return
        run_in_connection(self.rt.engine, lambda conn: conn.execute(
            update(_T).where(_c.id.in_(bindparam("ids", expanding=True)), _c.claimed_by == claim_id)
            .values(status=PENDING, claimed_by=None, claimed_until=None), {"ids": ids}))


# -- what the console and the metrics show ------------------------------------------------------------
@dataclass(frozen=True)
class Failure:
    webhook_id: str
    event_type: str
    attempts: int
    status: str
    last_error: str | None
    next_attempt_at: datetime | None


@dataclass(frozen=True)
class EndpointStatus:
    """One configured endpoint: where (scheme and host only), its events, its queue and its failures."""

    shown: str
    events: tuple[str, ...]
    pending: int
    delivered: int
    failed: int
    recent_failures: tuple[Failure, ...]


def webhook_status(rt: Runtime, *, failures: int = 10) -> list[EndpointStatus]:
    """Every configured endpoint with its counts by state and its latest failing rows (read only)."""
    out = []
    with rt.engine.connect() as conn:
        for endpoint in rt.config.webhooks.endpoints:
            counts: dict[str, int] = dict(conn.execute(
                select(_c.status, func.count()).where(_c.endpoint == endpoint.url).group_by(_c.status)).all())
            failing = conn.execute(
                select(_c.webhook_id, _c.event_type, _c.attempts, _c.status, _c.last_error, _c.next_attempt_at)
                .where(_c.endpoint == endpoint.url, _c.last_error.is_not(None), _c.status != DELIVERED)
                .order_by(_c.id.desc()).limit(failures)).all()
            out.append(EndpointStatus(
                shown(endpoint.url), endpoint.events, int(counts.get(PENDING, 0)) + int(counts.get(SENDING, 0)),
                int(counts.get(DELIVERED, 0)), int(counts.get(FAILED, 0)),
                tuple(Failure(r[0], r[1], r[2], r[3], r[4], as_utc(r[5]) if r[5] else None) for r in failing)))
    return out
