"""Prometheus metrics [operability].

Two sources, one naming scheme (``reconsent_…``):

* process metrics, counted where things happen (a dispatcher's sends, their latency, retried
  database transactions, rows sent again after a crash) — in :data:`REGISTRY`, served by
  ``reconsent dispatch --metrics-port`` / ``dispatch.metrics_port``;
* database metrics, read from the store at scrape time (messages by state and channel, queue depth,
  consent events by action) by :class:`StoreCollector` — served by the preference centre at
  ``/metrics`` and by each dispatcher, so any one scrape shows the whole queue.

No label ever holds an address, a name or a token: only channels, states, outcomes and actions.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlmodel import col

from orchestrator.domain.model import CampaignState, DeliveryState
from orchestrator.runtime import Runtime
from orchestrator.store import db
from orchestrator.store.models import Campaign, ConsentEvent, OutboxMessage, WebhookDelivery

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

REGISTRY = CollectorRegistry(auto_describe=True)
SENDS = Counter("reconsent_sends",
                "Send attempts by channel and outcome "
                "(sent, transient, permanent, unbuilt: the message could not be built)",
                ["channel", "outcome"], registry=REGISTRY)
SEND_LATENCY = Histogram("reconsent_send_latency_seconds", "Time the provider took to accept one message",
                         ["channel"], registry=REGISTRY,
                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
UNKNOWN_OUTCOME_RESENDS = Counter(
    "reconsent_unknown_outcome_resends",
    "Rows found handed to the provider by a worker that died before recording the result; sent again",
    registry=REGISTRY)
UNKNOWN_OUTCOME_FOUND = Counter(
    "reconsent_unknown_outcome_found",
    "Rows of unknown outcome the provider said it had accepted (SMS looked up at Twilio): recorded, not re-sent",
    registry=REGISTRY)
TAKEOVERS = Counter("reconsent_claims_taken_over", "Rows whose lease had expired, claimed from another worker",
                    registry=REGISTRY)
DB_RETRIES = Counter("reconsent_db_retries", "Database transactions retried after a transient error",
                     ["kind"], registry=REGISTRY)

db.on_retry.append(lambda kind: DB_RETRIES.labels(kind=kind).inc())


class StoreCollector(Collector):
    """Gauges read from the database at each scrape."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def collect(self) -> Iterator[Any]:
        rt = self.rt
        now = rt.clock.now()
        messages = GaugeMetricFamily("reconsent_messages", "Outbox rows by delivery state and channel",
                                     labels=["state", "channel"])
        depth = GaugeMetricFamily("reconsent_queue_depth",
                                  "Outbox rows due now (pending, in a running campaign) and not yet claimed")
        events = CounterMetricFamily("reconsent_consent_events", "Consent ledger events by action",
                                     labels=["action"])
        with rt.engine.connect() as conn:
            seen = set()
            for state, channel, n in conn.execute(
                select(col(OutboxMessage.status), col(OutboxMessage.channel), func.count()).group_by(
                    col(OutboxMessage.status), col(OutboxMessage.channel))
            ):
                seen.add((state, channel))
                messages.add_metric([state, channel], n)
            for state in DeliveryState:
                for channel in ("email", "sms"):
                    if (state.value, channel) not in seen:
                        messages.add_metric([state.value, channel], 0)
            depth.add_metric([], conn.execute(
                select(func.count()).select_from(OutboxMessage)
                .join(Campaign, col(Campaign.id) == col(OutboxMessage.campaign_id))
                .where(col(OutboxMessage.status) == DeliveryState.PENDING.value, col(OutboxMessage.due_at) <= now,
                       col(Campaign.state) == CampaignState.RUNNING.value)
            ).scalar_one())
            action_col = col(ConsentEvent.action)
            for action, n in conn.execute(select(action_col, func.count()).group_by(action_col)):
                events.add_metric([action], n)
            webhooks = GaugeMetricFamily("reconsent_webhooks", "Webhook deliveries by state (failed: given up)",
                                         labels=["state"])
            found = dict(conn.execute(select(col(WebhookDelivery.status), func.count())
                                      .group_by(col(WebhookDelivery.status))).all())
            for state in ("pending", "sending", "delivered", "failed"):
                webhooks.add_metric([state], found.get(state, 0))
        yield messages
        yield depth
        yield events
        yield webhooks


def store_registry(rt: Runtime, *, with_process: bool = False) -> CollectorRegistry:
    """A registry with the database gauges (and this process's counters when asked)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(rt))
    if with_process:
        registry.register(_Forward(REGISTRY))
    return registry


class _Forward(Collector):
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Any]:
        yield from self.registry.collect()


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
