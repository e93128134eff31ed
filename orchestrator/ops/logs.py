"""Logging for the long-running commands: text or JSON lines, never an address or a token.

The one scrubber, :func:`scrub_text`: every record passes :class:`Scrub` first (the handler's filter
and uvicorn's loggers), whatever logger wrote it (ours, uvicorn's, a library's). Replaced: the token
of every signed-link path (``/p/…``, ``/u/…``, ``/r/…``, ``/s/…``; a sub-path such as ``/renew``
stays), secrets in query strings, email addresses and phone numbers. Kept as they are: dates, times,
plain numbers and Message-IDs; IP addresses as ``logging.ip_addresses`` says (``full``, ``truncated``
to their /24 or /48 network, or ``none``: replaced by ``[ip]``); this machine's loopback and
unspecified addresses (``127.0.0.1``, ``::1``, ``0.0.0.0``) always stay, so a server's start line is right.

>>> scrub_text("GET /u/eyJjIjo3fQ.abc/renew HTTP/1.1 for chloe@example.org, +33612345678")
'GET /u/[token]/renew HTTP/1.1 for [email], [phone]'
>>> scrub_text("2026-12-30 09:15:02,120 from 203.0.113.77:58340 in 1234567 ms", ip_addresses="truncated")
'2026-12-30 09:15:02,120 from 203.0.113.0:58340 in 1234567 ms'
>>> scrub_text("Uvicorn running on http://127.0.0.1:8000", ip_addresses="none")
'Uvicorn running on http://127.0.0.1:8000'
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

from orchestrator.config_values import hide_credentials

#: what ``logging.ip_addresses`` may say: kept whole, truncated to the network, or replaced
IP_POLICIES = ("full", "truncated", "none")

_TOKEN_PATH = re.compile(r"(/[purs]/)[^\s\"'?#/<>]+")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_SECRET_QS = re.compile(r"((?:token|signature|auth_token|password)=)[^&\s]+", re.IGNORECASE)
_MESSAGE_ID = re.compile(r"<rc\.[^>@]+@[^>]+>")

#: Numbers, in the order tried at each position (the first alternative that matches wins, so a
#: date or an IP address is read whole before a phone number could start inside it).
_NUMBERS = re.compile(r"""
    (?<![\w.+])
    (?:
      (?P<ipv6>(?=[0-9A-Fa-f:]*:[0-9A-Fa-f:]*:)
          (?:[0-9A-Fa-f]{0,4}:){2,7}(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]{1,4})?(?![\w:]))
    | (?P<ipv4>\d{1,3}(?:\.\d{1,3}){3})(?!\w|\.\d)
    | (?P<datetime>\d{4}-\d{2}-\d{2}(?:[T\ ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?
                  | \d{1,2}(?P<sep>[-/.])\d{1,2}(?P=sep)\d{4})(?!\d)
    | (?P<time>\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)(?![\d:])
    | (?P<phone>
          \+\d(?:[\ .\-]?\(?\d\)?){6,16}
        | \(\d{3}\)\ ?\d{3}[\-.\ ]\d{4}
        | \(?0\d{1,4}\)?(?:[\ .\-]?\d{2,8}){1,6}
        | \d{2,4}(?:[\ .\-]\d{2,4}){2,5}
      )(?!\w)
    | (?P<number>\d+(?:[.,]\d+)*)
    )
""", re.VERBOSE)


def _ip(text: str, policy: str) -> str:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return text  # looked like one, is not (a time such as 12:30:45): kept as it is
    if policy == "full" or address.is_loopback or address.is_unspecified:
        return text  # this machine's own addresses are nobody's: a server says where it listens
    if policy == "none":
        return "[ip]"
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


def _number(match: re.Match[str], policy: str) -> str:
    kind, text = match.lastgroup, match.group(0)
    if kind in ("ipv4", "ipv6"):
        return _ip(text, policy)
    if kind == "phone":
        digits = sum(c.isdigit() for c in text)
        return "[phone]" if (8 if text[0] == "+" else 9) <= digits <= 15 else text
    return text


def scrub_text(text: str, *, ip_addresses: str = "truncated") -> str:
    """``text`` without link tokens, secrets, email addresses or phone numbers (see the module's doc).

    >>> scrub_text('"POST /r/eyJjIjo3fQ.abc.def/erase?lang=en HTTP/1.1" 200')
    '"POST /r/[token]/erase?lang=en HTTP/1.1" 200'
    >>> scrub_text("call 06 12 34 56 78 or (555) 123-4567 at 12:30", ip_addresses="none")
    'call [phone] or [phone] at 12:30'
    >>> scrub_text("client [2001:db8:85a3::8a2e:370:7334]:443 and 10.1.2.3", ip_addresses="none")
    'client [[ip]]:443 and [ip]'
    """
    text = hide_credentials(_TOKEN_PATH.sub(r"\1[token]", text))
    text = _SECRET_QS.sub(r"\1[secret]", text)
    # Message-IDs carry a short code only (no PII) but look like addresses: keep them readable
    kept: list[str] = []

    def keep(m: re.Match[str]) -> str:
        kept.append(m.group(0))
        return f"\x00{len(kept) - 1}\x00"

    text = _MESSAGE_ID.sub(keep, text)
    text = _EMAIL.sub("[email]", text)
    text = _NUMBERS.sub(lambda m: _number(m, ip_addresses), text)
    return re.sub(r"\x00(\d+)\x00", lambda m: kept[int(m.group(1))], text) if kept else text


class Scrub(logging.Filter):
    """Render the message once, scrubbed; drop the arguments (they may hold PII).

    ``keep_args``: scrub the format and each text argument instead and keep the arguments, for a
    logger whose own formatter reads them (uvicorn's AccessFormatter takes the client address and
    the request line from them). Scrubbing twice changes nothing.
    """

    def __init__(self, ip_addresses: str = "truncated", *, keep_args: bool = False) -> None:
        super().__init__()
        if ip_addresses not in IP_POLICIES:
            raise ValueError(f"ip_addresses: expected one of {', '.join(IP_POLICIES)}, got {ip_addresses!r}")
        self.ip_addresses = ip_addresses
        self.keep_args = keep_args

    def scrub(self, text: str) -> str:
        return scrub_text(text, ip_addresses=self.ip_addresses)

    def filter(self, record: logging.LogRecord) -> bool:
        if self.keep_args and isinstance(record.args, tuple):
            record.msg = self.scrub(str(record.msg))
            record.args = tuple(self.scrub(a) if isinstance(a, str) else a for a in record.args)
        else:
            try:
                message = record.getMessage()
            except Exception:
                message = str(record.msg)
            record.msg = self.scrub(message)
            record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self.scrub(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ts, level, logger, msg (+ exc, + fields given as ``extra={"fields": …}``)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": record.process,
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update({k: v for k, v in fields.items() if k not in out})
        if record.exc_info and not record.exc_text:
            record.exc_text = scrub_text(self.formatException(record.exc_info))
        if record.exc_text:
            out["exc"] = record.exc_text
        return json.dumps(out, ensure_ascii=False, default=str)


def configure_logging(fmt: str = "text", level: str = "INFO", ip_addresses: str = "truncated") -> None:
    """Install one stderr handler on the root logger (replacing any earlier one of ours)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(Scrub(ip_addresses))
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    handler.set_name("reconsent")
    root = logging.getLogger()
    for old in list(root.handlers):
        if old.get_name() == "reconsent":
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.access", "uvicorn.error"):
        for h in logging.getLogger(name).handlers:
            h.addFilter(Scrub(ip_addresses))
    logging.getLogger("apscheduler").setLevel(max(logging.getLevelName(level), logging.INFO))


#: the loggers :func:`install_log_scrubber` guards at their source
SCRUBBED_LOGGERS = ("uvicorn.access", "uvicorn.error", "reconsent", "reconsent.web")


def install_log_scrubber(ip_addresses: str = "truncated") -> None:
    """Scrub uvicorn's and our web loggers' records where they are made, whichever handler and
    formatter uvicorn installs later (arguments kept: see :class:`Scrub`)."""
    for name in SCRUBBED_LOGGERS:
        logging.getLogger(name).addFilter(Scrub(ip_addresses, keep_args=True))
