"""``reconsent doctor``: the checks a real deployment needs, each with what to do about it.

Levels: ``ok``; ``warn`` (works, but not what production wants); ``fix`` (must be fixed before
sending: the command exits 1). Nothing here changes anything; the SMTP check only connects, says
EHLO (and STARTTLS/AUTH when configured) and quits; the database check only reads the schema revision
(a SQLite file that does not exist is reported, not created). No message shows a password.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

from orchestrator.config import DEV_SIGNING_KEY, DEV_SUPPRESSION_KEY, Config
from orchestrator.config_values import hide_credentials
from orchestrator.errors import ConfigError, TransientSendError

MIN_SECRET_LENGTH = 32
#: domains reserved for documentation and tests (RFC 2606, RFC 6761): a sender identity in one of
#: them is the shipped placeholder, not the operator's
PLACEHOLDER_DOMAINS = ("example.com", "example.org", "example.net")
PLACEHOLDER_SUFFIXES = (".example", ".test", ".invalid", ".localhost")


@dataclass(frozen=True)
class Finding:
    level: str  # ok | warn | fix
    topic: str
    message: str


async def run_checks(config: Config) -> list[Finding]:
    findings = [
        *check_database(config),
        *check_public_url(config),
        *check_secrets(config),
        *check_sender(config),
        *check_sender_identity(config),
        *check_dkim(config),
        *check_return_path(config),
        *await check_smtp(config),
        *check_twilio(config),
    ]
    return [replace(f, message=hide_credentials(f.message)) for f in findings]


def check_database(config: Config) -> list[Finding]:
    """Reachable, credentials accepted, schema at this version's revision; SQLite where the rest of
    the configuration looks like production (https, a real relay or Twilio) is a warning."""
    from orchestrator.ops.schema import database_problem
    from orchestrator.store.db import make_engine, schema_problem

    url = config.database_url
    out = []
    if url.startswith("sqlite:"):
        path = url.split("///", 1)[-1]
        if path != ":memory:" and not Path(path).is_file():
            return [Finding("fix", "database.url", f"{path} does not exist: run `reconsent init`")]
        if (config.public.base_url.startswith("https://") or config.email.transport != "file"
                or config.sms.transport != "file"):
            out.append(Finding("warn", "database.url", "SQLite in a production setup (https, a relay or Twilio): "
                               "fine on one machine running `reconsent run`; use PostgreSQL to run dispatchers "
                               "or the web on several machines (docs/operations.md)"))
    try:
        engine = make_engine(url, busy_timeout_ms=config.database.busy_timeout_ms)
        try:
            problem = schema_problem(engine)
        finally:
            engine.dispose()
    except ConfigError as exc:
        return [*out, Finding("fix", "database.url", str(exc))]
    except Exception as exc:
        line = database_problem(exc, url)
        if line is None:
            raise
        return [*out, Finding("fix", "database.url", line)]
    if problem:
        return [*out, Finding("fix", "database.url", f"{config.database_url_shown} {problem}")]
    return [*out, Finding("ok", "database.url", f"{config.database_url_shown}: reachable, schema up to date")]


def check_sender_identity(config: Config) -> list[Finding]:
    """The shipped placeholders (``exemple.example``, example.com, ….test) in the sender identity."""
    s, e = config.sender, config.email
    addresses = {"sender.email_from": s.email_from, "sender.unsubscribe_mailto": s.unsubscribe_mailto,
                 "sender.privacy_url": urlsplit(s.privacy_url).hostname or "",
                 "email.message_id_domain": e.message_id_domain, "email.dkim_domain": e.dkim_domain}
    out = []
    for key, value in addresses.items():
        domain = value.rpartition("@")[2].lower().rstrip(".")
        if f".{domain}".endswith((*(f".{d}" for d in PLACEHOLDER_DOMAINS), *PLACEHOLDER_SUFFIXES)):
            out.append(Finding("fix", key, f"{value!r} is a placeholder (a domain reserved for examples): "
                               "set your own"))
    shipped = Config().sender
    for key, value, example in (("sender.name", s.name, shipped.name),
                                ("sender.postal_address", s.postal_address, shipped.postal_address)):
        if value == example:
            out.append(Finding("fix", key, f"still the shipped example {value!r}: set yours"))
    return out or [Finding("ok", "sender identity", "no placeholder domain or example name")]


def check_public_url(config: Config) -> list[Finding]:
    url = urlsplit(config.public.base_url)
    if url.scheme != "https":
        return [Finding("fix", "public.base_url", f"{config.public.base_url} is not https: links in messages and "
                        "Twilio webhooks need https (set public.base_url = \"https://…\")")]
    if url.hostname in ("localhost", "127.0.0.1", "::1") or not url.hostname or "." not in url.hostname:
        return [Finding("fix", "public.base_url",
                        f"{url.hostname!r} is not reachable by recipients: use the public host name")]
    return [Finding("ok", "public.base_url", config.public.base_url)]


def check_secrets(config: Config) -> list[Finding]:
    out = []
    keys = config.security.signing_keys
    if DEV_SIGNING_KEY in keys:
        out.append(Finding("fix", "security.signing_keys",
                           "the development key is still set: give fresh random keys as "
                           "RECONSENT_SECURITY__SIGNING_KEYS "
                           "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)"))
    elif any(len(k) < MIN_SECRET_LENGTH for k in keys[:1]):
        out.append(Finding("fix", "security.signing_keys",
                           f"the signing key is shorter than {MIN_SECRET_LENGTH} characters"))
    else:
        out.append(Finding("ok", "security.signing_keys", f"{len(keys)} key(s), newest signs"))
    if config.security.suppression_key == DEV_SUPPRESSION_KEY:
        out.append(Finding("fix", "security.suppression_key",
                           "the development key is still set: give a random secret as "
                           "RECONSENT_SECURITY__SUPPRESSION_KEY before the first import "
                           "(changing it later needs re-keying)"))
    elif len(config.security.suppression_key) < MIN_SECRET_LENGTH:
        out.append(Finding("fix", "security.suppression_key", f"shorter than {MIN_SECRET_LENGTH} characters"))
    else:
        out.append(Finding("ok", "security.suppression_key", "set"))
    out.append(receipt_key_finding(config))
    return out


def receipt_key_finding(config: Config) -> Finding:
    """The key of consent receipts: set, readable, not the public development key."""
    from orchestrator.proof.receipt_keys import enabled, keys, uses_development_key

    make = ("make a key with `reconsent receipts keygen --out receipts.pem` and give it as "
            "RECONSENT_RECEIPTS__SIGNING_KEY")
    if not enabled(config):
        return Finding("fix", "receipts.signing_key", "no key of this instance's own: the done page offers no consent "
                       "receipt (the public development key is never used for real people); " + make)
    if uses_development_key(config):
        return Finding("warn", "receipts.signing_key",
                       "the public development key signs consent receipts (fine for the demo: anyone could forge one); "
                       + make)
    try:
        found = keys(config)
    except ConfigError as exc:
        return Finding("fix", "receipts.signing_key", str(exc))
    return Finding("ok", "receipts.signing_key", f"{found[0].alg} key {found[0].kid}; {len(found) - 1} former key(s) "
                   "published")


def check_sender(config: Config) -> list[Finding]:
    s = config.sender
    out = []
    if not s.postal_address.strip():
        out.append(Finding("fix", "sender.postal_address", "every email must show the sender's postal address"))
    if config.sms.transport == "twilio" and not s.stop_number.strip():
        out.append(Finding("fix", "sender.stop_number", "every SMS must say \"STOP au <number>\""))
    if not s.privacy_url.startswith("https://"):
        out.append(Finding("warn", "sender.privacy_url", "the privacy notice should be an https URL"))
    return out or [Finding("ok", "sender", f"{s.name} <{s.email_from}>")]


def check_dkim(config: Config) -> list[Finding]:
    from orchestrator.delivery.channels.mime import signer_from

    if not config.email.dkim_key_path:
        level = "warn" if config.email.transport == "smtp" else "ok"
        return [Finding(level, "email.dkim_key_path", "no DKIM signing here: make sure your relay signs with a key "
                        "aligned with the From domain (Gmail and Yahoo require DKIM and DMARC)")]
    try:
        signer = signer_from(config)
        assert signer is not None
        signer.sign(b"From: a@b.example\r\nSubject: doctor\r\n\r\nbody\r\n")
    except ConfigError as exc:
        return [Finding("fix", "email.dkim_key_path", str(exc))]
    return [Finding("ok", "email.dkim_key_path", f"key readable, signs as d={signer.domain.decode()} "
                    f"s={signer.selector.decode()}; publish its public key at "
                    f"{signer.selector.decode()}._domainkey.{signer.domain.decode()}")]


def check_return_path(config: Config) -> list[Finding]:
    """The bounce address (``email.return_path``): set when sending through a relay, an address, not
    the From address, and in the From's domain (or a parent or child of it) so that SPF aligns for DMARC."""
    from orchestrator.domain.message import address_of, envelope_sender

    e = config.email
    topic = "email.return_path"
    if not e.return_path.strip():
        return [Finding("warn" if e.transport == "smtp" else "ok", topic,
                        "bounces go back to the From address: set a bounce mailbox of its own (e.g. "
                        "bounces+{token}@mail.<your domain>) and feed it to `reconsent bounces ingest`")]
    sample = envelope_sender(e.return_path, "<rc.doctor@doctor.invalid>") or ""
    local, _, domain = sample.rpartition("@")
    if not local or "." not in domain or any(c in sample for c in " <>,;"):
        return [Finding("fix", topic, f"not an email address: {e.return_path!r}")]
    sender = address_of(config.sender.email_from).lower()
    if sample.lower() == sender:
        return [Finding("warn", topic, "the bounce address is the From address: bounces and replies mix; use a "
                        "mailbox of its own")]
    from_domain = sender.rpartition("@")[2]
    domain = domain.lower()
    if not (domain == from_domain or domain.endswith("." + from_domain) or from_domain.endswith("." + domain)):
        return [Finding("warn", topic, f"its domain {domain} is not aligned with the From domain {from_domain}: "
                        "SPF then passes for another domain than the one DMARC checks")]
    return [Finding("ok", topic, f"bounces go to {e.return_path.strip()}")]


async def check_smtp(config: Config) -> list[Finding]:
    if config.email.transport != "smtp":
        return [Finding("warn", "email.transport", "\"file\": emails are written to disk, not sent")]
    from orchestrator.delivery.channels.email_smtp import SmtpChannel

    cfg = config.email
    out = []
    if not (cfg.starttls or cfg.use_tls):
        out.append(Finding("warn", "email.starttls", "the connection to the relay is not encrypted"))
    channel = SmtpChannel(cfg)
    try:
        client = await asyncio.wait_for(channel._connect(), timeout=cfg.timeout + 1)
        if client.is_ehlo_or_helo_needed:
            await client.ehlo()
        await client.quit()
    except (TimeoutError, TransientSendError, OSError, Exception) as exc:
        reason = exc.reason if isinstance(exc, TransientSendError) else f"{type(exc).__name__}: {exc}"
        out.append(Finding("fix", "email.host", f"cannot reach the relay {cfg.host}:{cfg.port}: {reason}"))
        return out
    auth = " with AUTH" if cfg.username else ""
    out.append(Finding("ok", "email.host", f"{cfg.host}:{cfg.port} answered{auth}"))
    return out


def check_twilio(config: Config) -> list[Finding]:
    sms = config.sms
    if sms.transport != "twilio":
        return [Finding("warn", "sms.transport", "\"file\": SMS are written to a file, not sent")]
    out = []
    if not sms.account_sid.startswith("AC") or len(sms.account_sid) != 34:
        out.append(Finding("fix", "sms.account_sid", "expected a Twilio account SID (AC followed by 32 characters)"))
    if not sms.auth_token:
        out.append(Finding("fix", "sms.auth_token",
                           "missing: give it as RECONSENT_SMS__AUTH_TOKEN (webhooks are refused without it)"))
    if sms.messaging_service_sid and not sms.messaging_service_sid.startswith("MG"):
        out.append(Finding("fix", "sms.messaging_service_sid", "expected MG followed by 32 characters"))
    if not sms.messaging_service_sid and not config.sender.sms_from:
        out.append(Finding("fix", "sender.sms_from", "no messaging service and no sender number"))
    return out or [Finding("ok", "sms", "Twilio credentials present; set the inbound and status webhooks to "
                           f"{config.public.base_url.rstrip('/')}/twilio/inbound and …/twilio/status")]
