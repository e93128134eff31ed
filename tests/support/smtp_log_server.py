"""A real SMTP server (aiosmtpd) in its own process that logs the Message-ID of every message it
accepts, one per line, *before* it answers 250 — the ground truth for exactly-once tests.

    python -m tests.support.smtp_log_server --port 2525 --log accepted.log

Prints ``ready <port>`` on stdout once it listens; stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import re
import signal
import sys
import threading
from typing import Any

from aiosmtpd.controller import Controller

_MID = re.compile(rb"^Message-ID:\s*(<[^>\r\n]+>)", re.IGNORECASE | re.MULTILINE)


class LoggingHandler:
    def __init__(self, log_path: str) -> None:
        self.log = open(log_path, "a", encoding="ascii", buffering=1)  # noqa: SIM115 - lives with the process
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        data = envelope.original_content or envelope.content
        head = data.split(b"\r\n\r\n", 1)[0]
        match = _MID.search(head)
        mid = match.group(1).decode("ascii", "replace") if match else "<none>"
        with self.lock:
            self.log.write(mid + "\n")
            self.log.flush()
        return "250 Message accepted"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    controller = Controller(LoggingHandler(args.log), hostname="127.0.0.1", port=args.port)
    controller.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"ready {args.port}", flush=True)
    stop.wait()
    controller.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
