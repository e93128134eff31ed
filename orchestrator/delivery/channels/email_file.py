"""Embedded default: each email written as an .eml file named after its outbox key.

The file holds exactly the bytes an SMTP relay would get (DKIM-signed when configured), after the
``Return-Path`` line a receiving server writes from MAIL FROM when ``email.return_path`` is set.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from orchestrator.delivery.channels.mime import DkimSigner, message_bytes
from orchestrator.domain.message import OutboundMessage, SendResult
from orchestrator.domain.model import Channel


class FileEmailChannel:
    channel = Channel.EMAIL

    def __init__(self, folder: Path, *, signer: DkimSigner | None = None) -> None:
        self.folder = folder
        self.signer = signer

    async def send(self, message: OutboundMessage) -> SendResult:
        self.folder.mkdir(parents=True, exist_ok=True)
        data, message_id = message_bytes(message, self.signer)
        if message.return_path:  # what the receiving server writes from MAIL FROM
            data = b"Return-Path: <" + message.return_path.encode() + b">\r\n" + data
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", message.idempotency_key) + ".eml"
        tmp = self.folder / (name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, self.folder / name)  # atomic: a re-send after a crash overwrites
        return SendResult(provider_id=message_id, status="sent")

    async def close(self) -> None:
        return None
