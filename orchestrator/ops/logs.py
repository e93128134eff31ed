"""Logging for the long-running commands: text or JSON lines, never an address or a token.

Every record passes :class:`Scrub` first: link tokens in paths (``/p/…``, ``/u/…``, ``/s/…``), email
addresses and phone numbers are replaced, whatever logger wrote them (ours, uvicorn's, a library's).

>>> scrub_text("GET /u/eyJjIjo3fQ.abc HTTP/1.1 for chloe@example.org, +33612345678")
'GET /u/[token] HTTP/1.1 for [email], [phone]'
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import datetime, timezone
from typing import Any

_TOKEN_PATH = re.compile(r"(/(?:p|u|s)/)[^\s\"?]+")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"\+?\d[\d .-]{7,}\d")
_SECRET_QS = re.compile(r"((?:token|signature|auth_token|password)=)[^&\s]+", re.IGNORECASE)
_MESSAGE_ID = re.compile(r"<rc\.[^>@]+@[^>]+>")


def scrub_text(text: str) -> str:
    text = _TOKEN_PATH.sub(r"\1[token]", text)
    text = _SECRET_QS.sub(r"\1[secret]", text)
    # Message-IDs carry a short code only (no PII) but look like addresses: keep them readable
    kept: list[str] = []

    def keep(m: re.Match[str]) -> str:
        kept.append(m.group(0))
        return f"\x00{len(kept) - 1}\x00"

    text = _MESSAGE_ID.sub(keep, text)
    text = _EMAIL.sub("[email]", text)
    text = _PHONE.sub("[phone]", text)
    return re.sub(r"\x00(\d+)\x00", lambda m: kept[int(m.group(1))], text)


class Scrub(logging.Filter):
    """Render the message once, scrubbed; drop the arguments (they may hold PII)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is still logged, scrubbed
            message = str(record.msg)
        record.msg = scrub_text(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = scrub_text(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = scrub_text(record.exc_text)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ts, level, logger, msg (+ exc, + fields given as ``extra={"fields": …}``)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
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


def configure_logging(fmt: str = "text", level: str = "INFO") -> None:
    """Install one stderr handler on the root logger (replacing any earlier one of ours)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(Scrub())
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
            h.addFilter(Scrub())
    logging.getLogger("apscheduler").setLevel(max(logging.getLevelName(level), logging.INFO))
