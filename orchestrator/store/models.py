"""sqlmodel tables. Timestamps are stored as naive UTC; ids are integers, never PII.

No table holds a plaintext address except ``contact`` (the profile itself, erasable) — the
suppression list only ever holds keyed hashes [R3].
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Float, Index, LargeBinary, Text, Unicode, UniqueConstraint
from sqlmodel import Field, SQLModel


class Contact(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    external_id: str = Field(index=True, unique=True)
    kind: str
    email: str | None = None
    phone: str | None = None  # E.164
    #: suppression keys of email/phone (keyed HMAC, not PII): lets launch join the suppression list
    email_key: str | None = Field(default=None, index=True)
    phone_key: str | None = Field(default=None, index=True)
    first_name: str | None = None
    locale: str = "fr"
    timezone: str | None = None
    last_activity_at: date | None = None
    #: last explicit confirmation: a confirmed person is not asked again before the rule says so
    consented_at: datetime | None = None
    b2b: bool = False
    attributes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime
    updated_at: datetime
    #: set when personal data was removed (anonymised); the row keeps statistics only
    erased_at: datetime | None = None


class Campaign(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str
    state: str = "draft"
    plan: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime
    launched_at: datetime | None = None
    deadline_at: datetime | None = None
    completed_at: datetime | None = None
    #: why dispatch paused it (too many messages that could not be built); cleared on resume
    paused_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    #: messages that could not be built since launch or the last resume (dispatch.failure_pause_threshold)
    build_failures: int = 0
    #: when a ``scheduled`` campaign is to be launched (``campaign launch ID --at``)
    launch_at: datetime | None = None


class Enrolment(SQLModel, table=True):
    """One consent request: a contact asked by a campaign [R10]."""

    __table_args__ = (UniqueConstraint("campaign_id", "contact_id"),)
    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    contact_id: int = Field(foreign_key="contact.id", index=True)
    state: str = Field(default="pending", index=True)
    enrolled_at: datetime
    answered_at: datetime | None = None
    #: per-person deadline (standing/evergreen campaigns); None: the campaign's deadline applies
    deadline_at: datetime | None = None


class OutboxMessage(SQLModel, table=True):
    """One row per (campaign, contact, step, channel), committed before any send [O2]."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("campaign_id", "contact_id", "step", "channel"),
        Index("ix_outbox_due", "status", "campaign_id", "due_at", "id"),  # a claim walks it in order, per campaign [O2]
    )
    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    contact_id: int = Field(foreign_key="contact.id", index=True)
    enrolment_id: int = Field(foreign_key="enrolment.id")
    step: int
    channel: str
    template: str
    status: str = "pending"
    due_at: datetime
    attempts: int = 0
    first_attempt_at: datetime | None = None
    claimed_by: str | None = None
    claimed_until: datetime | None = None
    #: committed just before the row is handed to the provider, cleared when the outcome is recorded:
    #: a row found ``sending`` with this set and its lease expired has an unknown outcome [O2]
    send_started_at: datetime | None = None
    skip_reason: str | None = None
    last_error: str | None = None
    message_id: str | None = Field(default=None, index=True)  # email Message-ID
    provider_id: str | None = Field(default=None, index=True, unique=True)  # Twilio SID / Message-ID
    provider_status: str | None = None  # the provider's own latest status (Twilio MessageStatus)
    template_version: str | None = None  # content hash of the rendered templates
    locale: str | None = None
    sent_at: datetime | None = None
    updated_at: datetime | None = None


class ConsentEvent(SQLModel, table=True):
    """Append-only proof of every consent change [R2]. Each event hashes its predecessor."""

    __tablename__ = "consent_event"
    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = Field(foreign_key="contact.id", index=True)
    channel: str
    purpose: str
    action: str
    occurred_at: datetime
    source: str
    campaign_id: int | None = None
    step: int | None = None
    wording_hash: str | None = None  # version of the exact wording shown (see Wording)
    wording_name: str | None = None
    locale: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    prev_hash: str
    hash: str = Field(index=True)
    #: what was chosen, for events that carry a value: a frequency ("monthly"), a pause's end date
    #: ("2027-03-01"); in the chain only when set, so events without one keep their hashes
    detail: str | None = None


class Wording(SQLModel, table=True):
    """The exact wording shown when consent was asked, stored once per version."""

    content_hash: str = Field(primary_key=True)
    name: str
    locale: str
    text: str = Field(sa_column=Column(Text, nullable=False))
    first_seen_at: datetime


class MessageTemplate(SQLModel, table=True):
    """One part of one version of an imported message template (``reconsent templates import``).

    ``version`` is the wording version of the part's channel, computed as for shipped templates
    (:func:`orchestrator.rendering.messages.wording_version`): the value outbox rows record as
    ``template_version``, so a message's exact wording can always be found again. Rows are never
    updated but for ``revision``/``imported_at``: the import that last made this version the
    current one (the highest revision of a template, locale and part is what new campaigns use).
    """

    __tablename__ = "message_template"
    __table_args__ = (
        UniqueConstraint("name", "locale", "part", "version"),
        Index("ix_message_template_current", "name", "locale", "part", "revision"),
    )
    id: int | None = Field(default=None, primary_key=True)
    name: str
    locale: str
    part: str  # subject.txt | body.txt | body.html | sms.txt
    source: str = Field(sa_column=Column(Text, nullable=False))
    version: str
    revision: int
    created_at: datetime  # first imported
    imported_at: datetime  # last made current


class SuppressionEntry(SQLModel, table=True):
    """The liste repoussoir: keyed HMAC only, never the address [R3]."""

    __tablename__ = "suppression"
    key: str = Field(primary_key=True)  # HMAC-SHA256 hex of the normalised address
    channel: str = Field(primary_key=True)
    reason: str
    source: str | None = None
    created_at: datetime


class LedgerHead(SQLModel, table=True):
    """The hash of the newest consent event; every append locks and moves it."""

    __tablename__ = "ledger_head"
    id: int = Field(default=1, primary_key=True)
    hash: str


class SelfServiceRequest(SQLModel, table=True):
    """What a person asked for from the preference centre, kept as a record [T3, R8].

    ``kind``: ``fresh_link`` (a new link sent to the address on file), ``export`` (download my data),
    ``erase`` (erase my data). ``outcome``: ``sent``, ``done``, ``rate_limited``, ``failed``,
    ``refused``, ``sending`` (reserved, being sent). No address and no token is stored: the contact id
    is enough to find the person.
    """

    __tablename__ = "self_service_request"
    __table_args__ = (Index("ix_self_service_contact_kind", "contact_id", "kind", "requested_at"),)
    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = Field(foreign_key="contact.id")
    kind: str
    channel: str | None = None
    outcome: str
    detail: str | None = None
    requested_at: datetime


class Bounce(SQLModel, table=True):
    """A delivery failure reported after the send (an RFC 3464 DSN, a Twilio callback).

    Holds the address's suppression key, never the address. ``fingerprint`` makes ingesting the same
    report twice a no-op; soft bounces per key are counted to suppress after N.
    """

    __tablename__ = "bounce"
    id: int | None = Field(default=None, primary_key=True)
    outbox_id: int = Field(foreign_key="outbox.id", index=True)
    channel: str
    key: str = Field(index=True)
    kind: str  # hard | soft
    status: str  # enhanced status code (5.1.1) or provider error code
    source: str  # dsn | twilio
    fingerprint: str = Field(unique=True)
    received_at: datetime


class ServiceLock(SQLModel, table=True):
    """A named lock with a lease (the single active scheduler on SQLite; see orchestrator.ops.locks)."""

    __tablename__ = "service_lock"
    name: str = Field(primary_key=True)
    holder: str
    lease_until: datetime
    acquired_at: datetime


class ServiceHeartbeat(SQLModel, table=True):
    """One long-running dispatcher or scheduler process saying it is alive (orchestrator.ops.heartbeat).
    Times come from a real clock, never the business clock (RECONSENT_NOW may freeze that)."""

    __tablename__ = "service_heartbeat"
    id: str = Field(primary_key=True)  # this process's instance id
    role: str = Field(index=True)  # dispatcher | scheduler
    host: str
    pid: int
    state: str  # dispatcher: running | once; scheduler: active | standby
    detail: str = ""  # the active scheduler's jobs ("sweep, evergreen, retention")
    started_at: datetime
    seen_at: datetime
    stopped_at: datetime | None = None


class DispatchWorker(SQLModel, table=True):
    """One running dispatcher that may hold claims (orchestrator.delivery.claimants): its rows are
    taken over as soon as it is seen dead — its PostgreSQL advisory lock (``lock_key``) free, or, on
    SQLite, its process gone from this host or its row not renewed for a short lease — rather than
    when their own lease (``dispatch.lease_seconds``) runs out. Real-clock times."""

    __tablename__ = "dispatch_worker"
    id: str = Field(primary_key=True)  # the worker id that starts each of its claim ids
    host: str
    pid: int
    lock_key: int  # PostgreSQL: pg_advisory_lock(namespace, lock_key) held for the worker's life; else 0
    #: the process's start time (Linux clock ticks since boot; 0: unknown): tells a reused pid apart
    proc_start: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    started_at: datetime
    seen_at: datetime


class SchedulerJob(SQLModel, table=True):
    """APScheduler 3's SQLAlchemyJobStore table, declared here so migrations own it."""

    __tablename__ = "apscheduler_jobs"
    id: str = Field(sa_column=Column(Unicode(191), primary_key=True))
    next_run_time: float | None = Field(default=None, sa_column=Column(Float(25), index=True))
    job_state: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
# -- marketer console (issue 8) -----------------------------------------------------------------------


class AdminUser(SQLModel, table=True):
    """A console user. ``role`` is admin (acts) or viewer (reads); passwords are argon2id hashes."""

    __tablename__ = "admin_user"
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(index=True, unique=True)
    role: str = "viewer"
    password_hash: str
    created_at: datetime
    #: consecutive failed sign-ins; reaching admin.lockout_after locks the account until locked_until
    failed_logins: int = 0
    locked_until: datetime | None = None
    last_login_at: datetime | None = None
    #: set by ``users disable`` (or the console): no sign-in, every session ended, until enabled again
    disabled_at: datetime | None = None
    #: base32 TOTP secret once a second factor is set up (``users totp``); empty: password only
    totp_secret: str | None = None
    #: the 30-second step of the last code accepted: a code is good once (no replay)
    totp_last_step: int | None = None


class AdminLoginBlock(SQLModel, table=True):
    """Failed sign-ins of one account from one client address (issue 15). Reaching
    ``admin.lockout_after`` blocks that address, and only that one, for that account, for
    ``admin.lockout_minutes`` doubled at each further block: whoever knows an admin's email can no
    longer lock the admin out from elsewhere. A success clears its address's row; ``users unlock`` all of them."""

    __tablename__ = "admin_login_block"
    user_id: int = Field(primary_key=True)
    ip: str = Field(primary_key=True)
    failures: int = 0
    blocks: int = 0
    blocked_until: datetime | None = None


class AdminSession(SQLModel, table=True):
    """A signed-in browser. ``id`` is the SHA-256 of the cookie value, so the table holds no live cookie."""

    __tablename__ = "admin_session"
    id: str = Field(primary_key=True)
    user_id: int = Field(foreign_key="admin_user.id", index=True)
    csrf_token: str
    created_at: datetime
    expires_at: datetime


class AdminAudit(SQLModel, table=True):
    """Who did what, when, in the console. ``target`` holds ids or suppression keys, never an address."""

    __tablename__ = "admin_audit"
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(index=True)
    user_id: int | None = None
    user_email: str
    action: str = Field(index=True)
    target: str | None = Field(default=None, index=True)
    outcome: str = "ok"
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    ip: str | None = None


class DsrRequest(SQLModel, table=True):
    """The register of data-subject requests [R8]: access, erasure, rectification.

    The person is identified by the keyed hash of their address (never the address itself), so the
    register outlives an erasure and can still answer "when did they ask, who handled it".
    """

    __tablename__ = "dsr_request"
    id: int | None = Field(default=None, primary_key=True)
    kind: str  # access | erasure | rectification
    subject_key: str = Field(index=True)  # suppression-style HMAC of the normalised address
    subject_channel: str  # email | sms: which address the key was made from
    received_at: datetime
    due_at: datetime = Field(index=True)  # received + 1 month (GDPR art. 12(3))
    state: str = Field(default="received", index=True)  # received | done | refused
    source: str  # operator | preference_centre
    handled_by: str | None = None
    handled_at: datetime | None = None
    note: str | None = None


class SmsReplyNotice(SQLModel, table=True):
    """When we last answered an SMS reply we did not understand, per number (keyed hash, never the
    number): at most one such answer per number per day (``orchestrator.consent.sms_replies``)."""

    __tablename__ = "sms_reply_notice"
    key: str = Field(primary_key=True)  # suppression-style HMAC of the number
    replied_on: date  # the day (UTC) of the last answer


class BrandSetting(SQLModel, table=True):
    """The brand of the messages and the preference centre, edited in the console (issue 16):
    one row per setting and locale (``""`` for a setting of every locale). No row: the default
    (``sender`` settings of the config, the shipped texts)."""

    __tablename__ = "brand_setting"
    key: str = Field(primary_key=True)
    locale: str = Field(default="", primary_key=True)
    value: str = Field(sa_column=Column(Text, nullable=False))
    updated_at: datetime


class WebhookDelivery(SQLModel, table=True):
    """One event for one webhook endpoint (issue 17): written in the transaction of the change it
    tells, delivered by the dispatcher at least once with a stable ``webhook_id``.

    ``body`` is the exact JSON posted (what the signature covers); ``endpoint`` the configured URL.
    ``status``: pending → sending → delivered | failed (gave up after ``webhooks.give_up_hours``).
    """

    __tablename__ = "webhook_delivery"
    __table_args__ = (Index("ix_webhook_delivery_due", "endpoint", "status", "next_attempt_at", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    webhook_id: str = Field(index=True)
    endpoint: str
    event_type: str
    body: str = Field(sa_column=Column(Text, nullable=False))
    status: str = "pending"
    attempts: int = 0
    created_at: datetime
    next_attempt_at: datetime
    #: the first time it was posted: the give-up horizon counts from here (not from the change, which
    #: an import may date in the past, nor from a time no dispatcher was running)
    first_attempt_at: datetime | None = None
    claimed_by: str | None = None
    claimed_until: datetime | None = None
    delivered_at: datetime | None = None
    last_status: int | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class SmsInboundSeen(SQLModel, table=True):
    """Inbound SMS already applied, by Twilio MessageSid: a webhook delivered twice changes nothing
    the second time (no second event, no second reply)."""

    __tablename__ = "sms_inbound_seen"
    message_sid: str = Field(primary_key=True)
    received_at: datetime


class ApiToken(SQLModel, table=True):
    """A bearer token of the HTTP API (issue 17 §2). Only the SHA-256 of the token is kept; ``prefix``
    (its first characters, not enough to use it) lets an operator recognise it in a list."""

    __tablename__ = "api_token"
    id: int | None = Field(default=None, primary_key=True)
    name: str
    scope: str
    token_hash: str = Field(index=True, unique=True)
    prefix: str
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class ApiIdempotency(SQLModel, table=True):
    """The stored answer of a write sent with an ``Idempotency-Key``: the same key and body get the
    same answer again; the same key with another body is refused."""

    __tablename__ = "api_idempotency"
    __table_args__ = (UniqueConstraint("token_id", "key"),)
    id: int | None = Field(default=None, primary_key=True)
    token_id: int = Field(index=True)
    key: str
    request_hash: str
    status: int
    body: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime
