"""Micro-benchmark (not a test): CPU per message of ``Dispatcher.build_message`` and of the MIME
bytes the email channels send, without a database or a network.

    PYTHONPATH=. python -m bench.micro_message [N]

Prints one JSON line: µs of process CPU per message for each stage and in total.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

from bench.data import T0, runtime
from orchestrator.delivery.channels import mime

if hasattr(mime, "message_bytes"):
    def to_bytes(m):  # noqa: ANN001, ANN201
        return mime.message_bytes(m, None)[0]
else:  # main before the change
    def to_bytes(m):  # noqa: ANN001, ANN201
        return mime.wire_bytes(mime.build_email(m), None)
from orchestrator.domain.campaign import CampaignPlan
from orchestrator.domain.clock import FixedClock
from orchestrator.domain.model import Channel


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    folder = Path(tempfile.mkdtemp(prefix="micro-message-"))
    rt = runtime(f"sqlite:///{folder / 'x.db'}", folder, FixedClock(T0))
    from orchestrator.delivery.worker import Dispatcher, window_for

    dispatcher = Dispatcher(rt, channels={})
    plan = CampaignPlan.from_mapping({"name": "bench", "deadline_days": 30, "steps": [
        {"day": 0, "channel": "email", "template": "reconsent"}]})
    deadline = T0 + timedelta(days=30)
    window = window_for(rt, Channel.EMAIL)
    rows = [SimpleNamespace(id=1000 + i, contact_id=i, campaign_id=3, step=0, channel="email",
                            template="reconsent" if i % 5 else "reminder") for i in range(n)]
    contacts = [SimpleNamespace(first_name=(f"Prénom{i}" if i % 2 else f"Name{i}") if i % 7 else None,
                                locale="fr" if i % 3 else "en") for i in range(n)]
    addresses = [f"person{i}@example{i % 97}.org" for i in range(n)]
    # warm-up: caches, compiled templates, lazy imports
    for i in range(min(n, 200)):
        m = dispatcher.build_message(rows[i], contacts[i], plan, deadline, window, "Europe/Paris", addresses[i])
        to_bytes(m)

    def timed(fn) -> float:
        best = float("inf")
        for _ in range(3):
            c0 = time.process_time()
            fn()
            best = min(best, time.process_time() - c0)
        return best / n * 1e6

    messages = [dispatcher.build_message(rows[i], contacts[i], plan, deadline, window, "Europe/Paris", addresses[i])
                for i in range(n)]
    build_us = timed(lambda: [dispatcher.build_message(rows[i], contacts[i], plan, deadline, window,
                                                        "Europe/Paris", addresses[i]) for i in range(n)])
    mime_us = timed(lambda: [to_bytes(m) for m in messages])
    ctx = [m for m in messages]  # noqa: F841
    links_us = timed(lambda: [(rt.links.dumps("page", c), rt.links.dumps("unsubscribe", c), rt.links.short_code(i))
                              for i, c in enumerate(_claims(n))])
    print(json.dumps({"n": n, "build_message_us": round(build_us, 1), "links_us": round(links_us, 1),
                      "mime_us": round(mime_us, 1), "total_us": round(build_us + mime_us, 1)}))


def _claims(n: int) -> list:
    from orchestrator.rendering.links import LinkClaims

    return [LinkClaims(contact_id=i, campaign_id=3, channel="email") for i in range(n)]


if __name__ == "__main__":
    main()
