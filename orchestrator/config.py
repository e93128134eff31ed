"""Configuration: one TOML file plus ``RECONSENT_<SECTION>__<KEY>`` environment overrides.

Every setting is declared once below, with its type, default and a one-line description; the docs
page ``docs/configuration.md`` lists every one of them (a test checks it). Loading never half-works:
a missing or invalid setting stops with one line naming the key and what is expected.

>>> cfg = load_config(None, env={"RECONSENT_EMAIL__PORT": "2525"})
>>> cfg.email.port
2525
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from orchestrator.alternatives_settings import FEWER_DOC, FREQUENCIES, PAUSE_DOC, pause_months
from orchestrator.choices_settings import Partner, Topic, read_choices
from orchestrator.config_values import check, coerce, described, hide_credentials, validate
from orchestrator.errors import ConfigError
from orchestrator.receipt_settings import ReceiptsConfig
from orchestrator.resources import DEFAULT_CONFIG
from orchestrator.webhook_settings import ENDPOINTS_DOC, WebhookEndpoint, webhook_endpoints

#: The config file of an instance folder (``reconsent init`` writes it), read when no other is given.
INSTANCE_CONFIG = "reconsent.toml"
DEV_SIGNING_KEY = "dev-only-signing-key-change-me"
DEV_SUPPRESSION_KEY = "dev-only-suppression-key-change-me"


def _doc(text: str, default: Any = dataclasses.MISSING, factory: Any = dataclasses.MISSING, *,
         lo: float | None = None, hi: float | None = None, zone: bool = False) -> Any:
    """A setting: its description, default and what values it takes (``lo``..``hi`` inclusive for a
    number, ``zone`` for an IANA time zone); :func:`allowed` says it in words, :func:`_set` enforces it."""
    meta = {"doc": text, "range": (lo, hi), "zone": zone}
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def _made(f: dataclasses.Field[Any]) -> Any:
    """What the default factory of the dataclass field ``f`` makes."""
    if not callable(f.default_factory):
        raise TypeError(f"{f.name} has no default factory")
    return f.default_factory()


@dataclass
class DatabaseConfig:
    url: str = _doc(
        "SQLAlchemy URL: sqlite:///path.db (WAL) or postgresql+psycopg://user@host/db", "sqlite:///reconsent.db")
    echo: bool = _doc("Log every SQL statement (debugging only)", False)
    busy_timeout_ms: int = _doc(
        "SQLite: how long a statement waits for a lock before \"database is locked\" (then the transaction is "
        "retried)", 30000, lo=0, hi=3_600_000)


@dataclass
class PublicConfig:
    base_url: str = _doc(
        "Public URL of the preference centre, used in every link (https in production)", "http://127.0.0.1:8000")
    trusted_proxies: list[str] = _doc("Proxy addresses whose X-Forwarded-For/Proto headers are trusted", factory=list)


@dataclass
class SenderConfig:
    name: str = _doc("The controller's name shown in every message and page", "Boutique Exemple")
    postal_address: str = _doc(
        "Postal address printed in every email footer", "1 rue de l'Exemple, 75001 Paris, France")
    email_from: str = _doc("From address of campaign emails", "bonjour@exemple.example")
    sms_from: str = _doc("Sender number or alphanumeric id for SMS (when no messaging service)", "+33700000000")
    stop_number: str = _doc("Number people reply STOP to, printed in every SMS", "36111")
    privacy_url: str = _doc("Link to the privacy notice shown on every page", "https://exemple.example/confidentialite")
    unsubscribe_mailto: str = _doc("Address for the mailto: form of List-Unsubscribe (empty: email_from)", "")
    sms_countries: dict[str, list[str]] = _doc(
        'Per country of the recipient\'s number: ["sender"] or ["sender", "STOP number"] used instead of sms_from and '
        'stop_number, e.g. GB = ["+447700900123"] (docs/sms.md)', factory=dict)


@dataclass
class EmailConfig:
    transport: str = _doc('"file" writes .eml files to outbox_dir; "smtp" sends through host:port', "file")
    outbox_dir: str = _doc("Folder for .eml files when transport = file", "var/outbox")
    host: str = _doc("SMTP relay host", "localhost")
    port: int = _doc("SMTP relay port", 25, lo=1, hi=65535)
    username: str = _doc("SMTP username (empty: no AUTH)", "")
    password: str = _doc("SMTP password: give it as RECONSENT_EMAIL__PASSWORD", "")
    starttls: bool = _doc("Upgrade the connection with STARTTLS", False)
    use_tls: bool = _doc("Implicit TLS from the first byte (port 465)", False)
    pool_size: int = _doc("Persistent SMTP connections reused across messages", 4, lo=1, hi=100)
    timeout: float = _doc("Seconds before an SMTP command times out (transient failure)", 30.0, lo=0.1, hi=3600)
    message_id_domain: str = _doc("Domain of generated Message-IDs (empty: the From address's domain)", "")
    dkim_key_path: str = _doc("PEM private key for DKIM signing (empty: no DKIM)", "")
    dkim_selector: str = _doc("DKIM selector", "reconsent")
    dkim_domain: str = _doc("DKIM signing domain d= (empty: the From address's domain, aligned for DMARC)", "")
    tls_ca_file: str = _doc("PEM bundle of CAs trusted for the relay's certificate (empty: the system store)", "")
    soft_bounce_limit: int = _doc("Soft bounces (4.x.x DSNs) after which an address is suppressed as bounced", 3,
                                   lo=1, hi=100)
    return_path: str = _doc(
        "Bounce address used as SMTP MAIL FROM (receivers write it as Return-Path), distinct from the From "
        "address; `{token}` in it (bounces+{token}@domain) becomes the message's opaque id (VERP, no personal "
        "data); empty: the From address", "")
    helo_name: str = _doc("Name this sender gives in SMTP EHLO/HELO (empty: this machine's fully qualified name)", "")


@dataclass
class SmsConfig:
    transport: str = _doc('"file" appends SMS to outbox_file; "twilio" sends through Twilio', "file")
    outbox_file: str = _doc("JSON-lines file for SMS when transport = file", "var/sms.jsonl")
    account_sid: str = _doc("Twilio account SID", "")
    auth_token: str = _doc("Twilio auth token: give it as RECONSENT_SMS__AUTH_TOKEN", "")
    messaging_service_sid: str = _doc("Twilio messaging service SID (else sender.sms_from is used)", "")
    api_base_url: str = _doc("Twilio API base URL override (regional edge, or a local stand-in in tests)", "")
    default_region: str = _doc("Region for phone numbers written without +country", "FR")
    segment_budget: int = _doc("Most segments an SMS step may use; campaign create refuses more", 1, lo=1, hi=10)
    segments_per_second: float = _doc("Rate limit per sender, in segments per second", 10.0, lo=0.01, hi=10_000)
    rate_limit_pause_seconds: float = _doc("Pause of a sender after Twilio answers 429/20429 (too many requests)", 5.0,
                                           lo=0, hi=3600)


#: SMS keywords [S4]. Matched on the whole body, case- and accent-insensitive, in every language
#: (a STOP is honoured whatever the contact's locale); the locale picks the help reply's language.
DEFAULT_STOP_WORDS = {
    "fr": ["STOP", "ARRET", "ARRETE", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"],
    "en": ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"],
}
DEFAULT_START_WORDS = {"fr": ["START", "UNSTOP"], "en": ["START", "UNSTOP"]}
DEFAULT_HELP_WORDS = {"fr": ["HELP", "INFO", "AIDE"], "en": ["HELP", "INFO"]}
DEFAULT_YES_WORDS = {"fr": ["OUI", "O"], "en": ["YES", "Y"]}
DEFAULT_NO_WORDS = {"fr": ["NON"], "en": ["NO"]}


@dataclass
class KeywordsConfig:
    stop: dict[str, list[str]] = _doc(
        "Per locale, replies that withdraw SMS consent and suppress the number (TOML table of lists; env: JSON)",
        factory=lambda: {k: list(v) for k, v in DEFAULT_STOP_WORDS.items()})
    start: dict[str, list[str]] = _doc(
        "Per locale, replies that (re)grant SMS consent",
        factory=lambda: {k: list(v) for k, v in DEFAULT_START_WORDS.items()})
    help: dict[str, list[str]] = _doc(
        "Per locale, replies answered with the help text (sender, STOP number, privacy notice)",
        factory=lambda: {k: list(v) for k, v in DEFAULT_HELP_WORDS.items()})
    yes: dict[str, list[str]] = _doc("Per locale, replies to a re-consent SMS that confirm it (docs/sms.md)",
                                     factory=lambda: {k: list(v) for k, v in DEFAULT_YES_WORDS.items()})
    no: dict[str, list[str]] = _doc("Per locale, replies to a re-consent SMS that decline it (number suppressed)",
                                    factory=lambda: {k: list(v) for k, v in DEFAULT_NO_WORDS.items()})


@dataclass
class SecurityConfig:
    signing_keys: list[str] = _doc(
        "Link signing keys, newest first: the first signs, all verify (env: comma-separated)",
        factory=lambda: [DEV_SIGNING_KEY])
    suppression_key: str = _doc(
        "Secret for the suppression list's HMAC (never change without re-keying)", DEV_SUPPRESSION_KEY)
    previous_suppression_keys: list[str] = _doc(
        "Former suppression keys, newest first: entries hashed under them stay checkable; `reconsent suppression "
        "rekey` moves what it can to the current key (see docs/suppression.md)", factory=list)
    page_link_max_age_days: int = _doc("How long a preference-page link works", 90, lo=1, hi=3650)
    unsubscribe_link_max_age_days: int = _doc("How long an unsubscribe link works", 365, lo=1, hi=3650)
    rights_link_max_age_days: int = _doc("How long a 'download / erase my data' link from the preference page works", 1,
                                        lo=1, hi=30)
    fresh_links_per_day: int = _doc("Fresh links a person may have sent to the address on file per 24 hours", 3,
                                    lo=0, hi=100)


@dataclass
class WindowsConfig:
    sms: str = _doc(
        'SMS send window preset: "default" (Mon–Sat 08:00–21:30, no French holidays), "strict" (weekdays '
        '08:00–20:00), "always" or "custom"', "default")
    email: str = _doc('Email send window preset (same names); "always" means no window', "always")
    default_timezone: str = _doc("Time zone for contacts without one", "Europe/Paris", zone=True)
    custom_start: str = _doc("Opening time of the custom window (HH:MM)", "09:00")
    custom_end: str = _doc("Closing time of the custom window (HH:MM)", "19:00")
    custom_days: list[str] = _doc("Days of the custom window", factory=lambda: ["mon", "tue", "wed", "thu", "fri"])
    holiday_country: str = _doc("Public holidays observed by the custom window (empty: none)", "FR")


@dataclass
class RetentionConfig:
    after_expiry: str = _doc(
        "What happens to a non-responder's data after the sweep: keep | anonymise | delete", "anonymise")
    after_decline: str = _doc(
        "What happens to the data of someone who refused: keep | anonymise | delete (applied by `reconsent "
        "retention run`)", "keep")
    prospect_months: int = _doc(
        "Prospects: months after their last activity before `retention run` removes their data (CNIL: 36)", 36,
        lo=1, hi=120)
    customer_months: int = _doc(
        "Customers: months after the relationship ends (CSV column relationship_ended_at, else last activity) "
        "before their data goes", 36, lo=1, hi=240)
    action: str = _doc(
        "What `retention run` does to a contact whose period is over: anonymise (statistics kept) | delete "
        "(messages and enrolments go too)", "anonymise")


@dataclass
class ImportConfig:
    default_region: str = _doc("Region used to parse phone numbers without +country", "FR")
    default_locale: str = _doc("Locale given to contacts whose locale column is empty", "fr")
    recent_consent_months: int = _doc("Campaigns skip a channel whose consent is younger than this (0: never)", 24,
                                      lo=0, hi=240)


@dataclass
class DispatchConfig:
    batch_size: int = _doc("Outbox rows claimed per batch", 200, lo=1, hi=100_000)
    concurrency: int = _doc("Messages in flight at once per dispatcher", 8, lo=1, hi=1000)
    group_size: int = _doc(
        "Rows re-checked (suppression, answer, pause, window) and marked together in one transaction just before "
        "they are sent; also the most sent messages whose result may wait for its (write-behind) commit, so a crash "
        "re-sends at most `concurrency` + `group_size` messages the provider had accepted", 32, lo=1,
        hi=10_000)
    lease_seconds: int = _doc("How long a claim is held before another dispatcher may take it over", 300,
                               lo=1, hi=86_400)
    retry_base_seconds: float = _doc(
        "First retry delay after a transient failure (doubles each time, with jitter)", 60.0, lo=0.01, hi=86_400)
    retry_horizon_hours: float = _doc("Give up (failed) when transient failures last longer than this", 48.0,
                                       lo=0, hi=8760)
    poll_seconds: float = _doc(
        "Idle wait between polls of `reconsent dispatch` without --once, and of the dispatcher of `reconsent run`", 5.0,
        lo=0.01, hi=3600)
    metrics_port: int = _doc("Serve this dispatcher's Prometheus metrics on 127.0.0.1:PORT (0: off; --metrics-port)", 0,
                            lo=0, hi=65535)
    failure_pause_threshold: int = _doc(
        "Messages of a campaign that could not be built (a template error the checks could not foresee; each such "
        "row is marked failed with the reason) after which dispatch pauses the campaign, with the reason shown by "
        "`campaign status` and the console; counted from launch or the last resume (0: never pause)", 10, lo=0,
        hi=1_000_000)


@dataclass
class SchedulerConfig:
    dispatch_cron: str = _doc(
        "Cron expression (5 fields) for sending due messages (`reconsent run` leaves this job out: its own "
        "dispatcher sends)", "* * * * *")
    sweep_cron: str = _doc("Cron expression for the deadline sweep", "15 3 * * *")
    retention_cron: str = _doc("Cron expression for the retention run (data past its retention period)", "45 3 * * *")
    timezone: str = _doc("Time zone the cron expressions are read in", "Europe/Paris", zone=True)
    evergreen_cron: str = _doc(
        "Cron expression for evergreen enrolment into the standing campaign (empty: off)", "30 2 * * *")
    evergreen_campaign_file: str = _doc(
        "Campaign TOML of the standing re-consent campaign that people newly past the inactivity threshold join "
        "(empty: no evergreen enrolment)", "")
    misfire_grace_seconds: int = _doc(
        "A run missed while no scheduler was up still runs (once) if it is at most this late", 21600, lo=0, hi=604_800)
    lock_lease_seconds: float = _doc(
        "Lease of the single-active-scheduler lock on SQLite (renewed every third); a standby takes over after it "
        "expires", 30.0, lo=1, hi=3600)
    standby_poll_seconds: float = _doc("How often a standby scheduler tries to take the lock", 5.0, lo=0.01, hi=3600)
    launch_cron: str = _doc(
        "Cron expression for launching the scheduled campaigns whose time has come (`campaign launch ID --at`; "
        "empty: off)", "* * * * *")


@dataclass
class LoggingConfig:
    format: str = _doc(
        'Log format of the long-running commands: "text" or "json" (one object a line; no addresses, no tokens)',
        "text")
    level: str = _doc("Log level: DEBUG, INFO, WARNING or ERROR", "INFO")
    ip_addresses: str = _doc(
        'IP addresses in log lines (the access log\'s client, a library\'s message): "full" (as they are), '
        '"truncated" (IPv4 to its /24, `203.0.113.77` → `203.0.113.0`; IPv6 to its /48) or "none" (replaced '
        "by `[ip]`); this machine's loopback and unspecified addresses (127.0.0.1, ::1, 0.0.0.0) always stay. "
        "Link tokens, email addresses and phone numbers are always removed; dates, times and other numbers stay",
        "truncated")


@dataclass
class ServerConfig:
    host: str = _doc("Address `reconsent serve` and `reconsent run` listen on", "127.0.0.1")
    port: int = _doc("Port `reconsent serve` and `reconsent run` listen on", 8000, lo=1, hi=65535)
    max_body_bytes: int = _doc("Largest request body accepted", 16384, lo=1024, hi=100_000_000)
    post_rate_per_minute: int = _doc("POSTs allowed per client IP per minute", 30, lo=1, hi=100_000)
    metrics_allow: list[str] = _doc(
        'Client addresses allowed to read /metrics ("*": anyone; empty: nobody)', factory=lambda: ["127.0.0.1", "::1"])
    header_timeout_seconds: float = _doc("Seconds a request's line and headers may take to arrive (then closed)", 10.0,
                                          lo=0.1, hi=600)
    body_timeout_seconds: float = _doc(
        "Seconds a request body may take to arrive (console uploads: plus 1 s per 64 KiB), and the longest pause "
        "inside it (then 408)", 10.0, lo=0.1, hi=600)
    keep_alive_seconds: int = _doc("Seconds an idle keep-alive connection stays open", 5, lo=1, hi=3600)
    max_connections: int = _doc("Connections (and requests) at once; beyond, new requests get 503", 1000,
                                 lo=1, hi=1_000_000)
    max_header_bytes: int = _doc("Largest request line plus headers, in bytes (then 400)", 16384, lo=1024,
                                 hi=1_048_576)


@dataclass
class AdminConfig:
    """The marketer console under /admin (issue 8); it stays a 404 until an admin user exists."""

    session_hours: int = _doc("How long a console sign-in lasts before signing in again", 8, lo=1, hi=720)
    cookie_secure: str = _doc(
        'Secure flag of the console cookies: "auto" (Secure unless public.base_url is plain http on a loopback '
        'host), "always" or "never"', "auto")
    login_rate_per_minute: int = _doc("Sign-in attempts allowed per client IP per minute (then 429)", 10,
                                      lo=1, hi=10_000)
    lockout_after: int = _doc("Consecutive failed sign-ins that lock an account", 5, lo=1, hi=100)
    lockout_minutes: int = _doc("How long a locked account stays locked", 15, lo=1, hi=10_080)
    max_upload_bytes: int = _doc(
        "Largest console request body (contacts CSV, opposition list, campaign TOML)", 20_000_000, lo=1024,
        hi=1_000_000_000)


@dataclass
class WebhooksConfig:
    endpoints: list[WebhookEndpoint] = _doc(ENDPOINTS_DOC, factory=list)
    timeout_seconds: float = _doc("How long one webhook POST may take before it counts as failed", 10.0,
                                     lo=0.1, hi=600)
    give_up_hours: float = _doc("Retry a failing webhook with backoff for this long, then mark it failed", 24.0,
                                  lo=0.01, hi=24 * 30)


@dataclass
class ChoicesConfig:
    fewer: str = _doc(FEWER_DOC, "monthly")
    pause_months: list[int] = _doc(PAUSE_DOC, factory=lambda: [3])


@dataclass
class Config:
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    public: PublicConfig = field(default_factory=PublicConfig)
    sender: SenderConfig = field(default_factory=SenderConfig)
    email: EmailConfig = field(default_factory=EmailConfig)
    sms: SmsConfig = field(default_factory=SmsConfig)
    keywords: KeywordsConfig = field(default_factory=KeywordsConfig)
    security: SecurityConfig = field(default_factory=SecurityConfig)
    windows: WindowsConfig = field(default_factory=WindowsConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    contacts: ImportConfig = field(default_factory=ImportConfig)
    dispatch: DispatchConfig = field(default_factory=DispatchConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    admin: AdminConfig = field(default_factory=AdminConfig)
    webhooks: WebhooksConfig = field(default_factory=WebhooksConfig)
    receipts: ReceiptsConfig = field(default_factory=ReceiptsConfig)
    #: ``[[topics]]`` and ``[[partners]]``: top-level arrays of tables (orchestrator.choices_settings)
    topics: list[Topic] = field(default_factory=list, metadata={"internal": True})
    partners: list[Partner] = field(default_factory=list, metadata={"internal": True})
    choices: ChoicesConfig = field(default_factory=ChoicesConfig)
    #: where relative paths (database file, outboxes) are resolved: the config file's folder, else the
    #: current directory (see load_config)
    base_dir: Path = field(default_factory=Path.cwd, metadata={"internal": True})

    def path(self, value: str) -> Path:
        p = Path(value)
        return p if p.is_absolute() else self.base_dir / p

    @property
    def database_url(self) -> str:
        url = self.database.url
        if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
            rel = url[len("sqlite:///"):]
            if rel and rel != ":memory:":
                return "sqlite:///" + str(self.path(rel))
        return url

    @property
    def database_url_shown(self) -> str:
        """The database URL with any password masked, for messages and logs.

        >>> Config(database=DatabaseConfig(url="postgresql+psycopg://app:s3cret@db/x")).database_url_shown
        'postgresql+psycopg://app:***@db/x'
        """
        return hide_credentials(self.database_url)

    def signing_secrets(self) -> list[str]:
        return list(self.security.signing_keys)

    def suppression_secret(self) -> bytes:
        return self.security.suppression_key.encode("utf-8")

    def previous_suppression_secrets(self) -> list[bytes]:
        return [k.encode("utf-8") for k in self.security.previous_suppression_keys if k.strip()]


def settings() -> list[tuple[str, str, Any, str]]:
    """Every (section, key, default, description), in declaration order (for docs and checks)."""
    rows = []
    for sect in dataclasses.fields(Config):
        if sect.metadata.get("internal"):
            continue
        for f in dataclasses.fields(_made(sect)):
            default = f.default if f.default is not dataclasses.MISSING else _made(f)
            rows.append((sect.name, f.name, default, f.metadata.get("doc", "")))
    return rows


_ALLOWED = {
    ("email", "transport"): {"file", "smtp"},
    ("sms", "transport"): {"file", "twilio"},
    ("retention", "after_expiry"): {"keep", "anonymise", "delete"},
    ("retention", "after_decline"): {"keep", "anonymise", "delete"},
    ("retention", "action"): {"anonymise", "delete"},
    ("windows", "sms"): {"default", "strict", "always", "custom"},
    ("windows", "email"): {"default", "strict", "always", "custom"},
    ("logging", "format"): {"text", "json"},
    ("logging", "level"): {"DEBUG", "INFO", "WARNING", "ERROR"},
    ("logging", "ip_addresses"): {"full", "truncated", "none"},
    ("admin", "cookie_secure"): {"auto", "always", "never"},
    ("choices", "fewer"): set(FREQUENCIES),
}


def config_file(path: str | Path | None, env: Mapping[str, str], cwd: Path | None = None) -> Path:
    """Which file to read: ``--config PATH``, else ``RECONSENT_CONFIG``, else ``reconsent.toml`` in the
    current directory (an instance made by ``reconsent init``), else the shipped defaults."""
    if path is None:
        path = env.get("RECONSENT_CONFIG") or None
    if path is not None:
        return Path(path)
    local = (cwd or Path.cwd()) / INSTANCE_CONFIG
    return local if local.is_file() else DEFAULT_CONFIG


def load_config(path: str | Path | None, env: Mapping[str, str] | None = None) -> Config:
    """Read the TOML file (see :func:`config_file`), then apply environment overrides.

    Relative paths in the file (database, outboxes, keys) resolve from the folder of that file; with
    no file of the operator's (the shipped defaults), from the current directory. ``RECONSENT_HOME``
    sets that folder explicitly."""
    env = os.environ if env is None else env
    path = config_file(path, env)
    shipped = path.resolve() == DEFAULT_CONFIG.resolve()
    data: dict[str, Any] = {}
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot be read: {exc}") from None
    elif not shipped:
        raise ConfigError(f"config file {path} does not exist (give --config PATH or RECONSENT_CONFIG, "
                          f"or run `reconsent init` to create {INSTANCE_CONFIG} here)")
    base_dir = Path.cwd().resolve() if shipped else path.resolve().parent
    if env.get("RECONSENT_HOME"):
        base_dir = Path(env["RECONSENT_HOME"]).resolve()
    cfg = Config(base_dir=base_dir)
    cfg.topics, cfg.partners = read_choices(data, env, str(path))
    for section_name, section in data.items():
        target = _section(cfg, section_name, f"{path}: [{section_name}]")
        if not isinstance(section, Mapping):
            raise ConfigError(f"{path}: [{section_name}] must be a table")
        for key, value in section.items():
            _set(target, section_name, key, value, f"{path}: {section_name}.{key}")
    for name, raw in env.items():
        if not name.startswith("RECONSENT_") or "__" not in name:
            continue
        section_name, _, key = name[len("RECONSENT_"):].partition("__")
        section_name, key = section_name.lower(), key.lower()
        target = _section(cfg, section_name, f"environment variable {name}")
        # environment values are strings; coerce parses numbers, booleans and lists
        _set(target, section_name, key, raw, f"environment variable {name}")
    validate(cfg)
    return cfg


def _section(cfg: Config, name: str, where: str) -> Any:
    known = [f.name for f in dataclasses.fields(Config) if not f.metadata.get("internal")]
    if name not in known:
        raise ConfigError(f"{where}: unknown section (expected one of {', '.join(known)})")
    return getattr(cfg, name)


def _set(target: Any, section: str, key: str, value: Any, where: str) -> None:
    hints = get_type_hints(type(target))
    if key not in hints:
        raise ConfigError(f"{where}: unknown setting (expected one of {', '.join(hints)}); see docs/configuration.md")
    expected = hints[key]
    if getattr(expected, "__origin__", None) is list and getattr(expected, "__args__", ()) == (WebhookEndpoint,):
        setattr(target, key, webhook_endpoints(value, where))
    elif (section, key) == ("choices", "pause_months"):
        setattr(target, key, pause_months(value, where))
    else:
        setattr(target, key, coerce(value, expected, where))
    check(next(f for f in dataclasses.fields(target) if f.name == key), _ALLOWED.get((section, key)),
          getattr(target, key), where)


def allowed(section: str, key: str) -> str:
    """The values ``section.key`` takes, in words ("" when any value of its type does).

    >>> allowed("server", "port"), allowed("email", "transport"), allowed("windows", "default_timezone")
    ('1 to 65535', 'one of file, smtp', 'an IANA time zone, e.g. Europe/Paris')
    """
    f = next(f for f in dataclasses.fields(getattr(Config(), section)) if f.name == key)
    return described(f, _ALLOWED.get((section, key)))
