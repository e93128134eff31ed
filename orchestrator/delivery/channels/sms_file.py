"""Embedded default: SMS appended to a JSON-lines file (and echoed nowhere else)."""

from __future__ import annotations

import json
from pathlib import Path

from orchestrator.domain.message import OutboundMessage, SendResult
from orchestrator.domain.model import Channel


class FileSmsChannel:
    channel = Channel.SMS

    def __init__(self, path: Path) -> None:
        self.path = path

    async def send(self, message: OutboundMessage) -> SendResult:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(
            {"key": message.idempotency_key, "to": message.recipient, "body": message.text},
            ensure_ascii=False,
        )
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()
        return SendResult(provider_id=f"file:{message.idempotency_key}", status="sent")

    async def close(self) -> None:
        return None
