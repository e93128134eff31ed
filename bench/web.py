"""Preference-centre load test: the real app and a bare Starlette endpoint under the same uvicorn
settings, each in its own process; the load generator (wrk) in another.

``python -m bench.web app URL PORT`` or ``python -m bench.web bare PORT``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import uvicorn

#: the same settings for both servers: one process, default loop and HTTP parser, no access log
UVICORN = {"host": "127.0.0.1", "log_level": "warning", "access_log": False}
BARE_BODY = "<!doctype html><html lang=en><title>bare</title><p>" + "x" * 3000 + "</p></html>"


def bare_app() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    async def page(request: Request) -> HTMLResponse:
        if request.method == "POST":
            await request.form()
        return HTMLResponse(BARE_BODY)

    return Starlette(routes=[Route("/p/{token}", page, methods=["GET", "POST"])])


def product_app(url: str, workdir: str) -> Any:
    from bench.data import runtime
    from preference_centre.app import create_app

    rt = runtime(url, Path(workdir))
    # The per-IP POST limit (30/min by default) would turn a one-machine load test into 429 pages.
    rt.config.server = replace(rt.config.server, post_rate_per_minute=10**9)
    return create_app(rt)


LUA = r"""
local tokens = {}
for line in io.lines("%(tokens)s") do tokens[#tokens + 1] = line end
local n = 0
request = function()
  n = n + 1
  local t = tokens[(n %% #tokens) + 1]
  %(body)s
end
"""
GET_BODY = 'return wrk.format("GET", "/p/" .. t)'
POST_BODY = ('return wrk.format("POST", "/p/" .. t, {["Content-Type"] = "application/x-www-form-urlencoded"}, '
             '"action=confirm&email=yes&sms=yes")')


def wrk(port: int, tokens: Path, *, post: bool, seconds: int, connections: int, workdir: Path) -> dict[str, float]:
    """Run wrk against 127.0.0.1:port and parse req/s, p50, p99 (ms) and non-2xx count."""
    exe = shutil.which("wrk")
    if exe is None:
        raise RuntimeError("wrk is not installed (apt-get install -y wrk)")
    script = workdir / ("post.lua" if post else "get.lua")
    script.write_text(LUA % {"tokens": tokens, "body": POST_BODY if post else GET_BODY})
    out = subprocess.run([exe, "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "--latency", "-s", str(script),
                          f"http://127.0.0.1:{port}"], capture_output=True, text=True, timeout=seconds + 60,
                         check=True).stdout
    return parse_wrk(out)


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def parse_wrk(out: str) -> dict[str, float]:
    """>>> parse_wrk("  50%  1.50ms\\n  99%  12.00ms\\nRequests/sec:   812.40\\n")["p99_ms"]
    12.0
    """
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {"rps": rps, "p50_ms": p50, "p99_ms": p99, "non_2xx": float(bad.group(1)) if bad else 0.0,
            "socket_errors": float(sum(int(x) for x in errors.groups())) if errors else 0.0}


def main() -> None:
    if sys.argv[1] == "bare":
        uvicorn.run(bare_app(), port=int(sys.argv[2]), **UVICORN)  # type: ignore[arg-type]
    else:
        uvicorn.run(product_app(sys.argv[2], sys.argv[4]), port=int(sys.argv[3]), **UVICORN)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
