"""Human-readable funnel for ``campaign status`` and the demo."""

from __future__ import annotations

from typing import Any

COLUMNS = ("queued", "sent", "delivered", "failed", "bounced", "skipped", "unsubscribed", "declined", "not_granted")
#: per channel only: a person's "no" on a channel (an unsubscribe, a "no thanks" to the request, a
#: channel left unticked by someone who confirmed another), kept apart
PER_CHANNEL = ("unsubscribed", "declined", "not_granted")


def funnel_table(status: dict[str, Any]) -> str:
    lines = [
        f"campaign {status['id']} · {status['name']} · {status['state']}"
        + (f" · launch planned at {status['launch_at']}" if status.get("state") == "scheduled" else ""),
        f"enrolled {status['enrolled']} → pending {status['pending']} · confirmed {status['confirmed']} · "
        f"declined {status['declined']} · expired→suppressed {status['expired']}"
        + (f" · kept (B2B notice, no objection) {status['kept']}" if status.get("kept") else ""),
        "",
        f"{'':22}" + "".join(f"{c.replace('_', ' '):>13}" for c in COLUMNS),
    ]
    for channel, counts in status["channels"].items():
        lines.append(f"{channel:22}" + "".join(f"{counts[c]:>13}" for c in COLUMNS))
    for step in status["steps"]:
        label = f"step {step['step']} d{step['day']} {step['channel']}"
        lines.append(f"{label:22}" + "".join(f"{step[c]:>13}" for c in COLUMNS if c not in PER_CHANNEL))
    if status.get("audience"):
        lines += ["", b2b_line(status["audience"], "enrolled")]
    if status.get("paused_reason"):
        lines += ["", status["paused_reason"]]
    if status.get("failure_reasons"):
        lines.append("")
        lines += [f"failed {r['count']} · step {r['step']} {r['channel']} · {r['reason']}"
                  for r in status["failure_reasons"]]
    return "\n".join(lines)


def b2b_line(counts: dict[str, Any], what: str) -> str:
    """Professionals and consumers of an audience (orchestrator.campaigns.regime.b2b_counts), one line.

    >>> b2b_line({"b2b": "include", "b2b_regime": "notice", "professional": 2, "consumer": 3, "notice": 1},
    ...          "enrolled")
    'b2b = include: 2 professional(s), 3 consumer(s) enrolled; b2b_regime = notice: 1 get the notice (email)'
    """
    line = (f"b2b = {counts['b2b']}: {counts['professional']} professional(s), {counts['consumer']} consumer(s) "
            f"{what}")
    if counts["b2b_regime"] == "notice":
        line += f"; b2b_regime = notice: {counts['notice']} get the notice (email)"
    return line
