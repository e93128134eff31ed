"""Interleaved A/B of the preference page under wrk (64 connections), robust to a shared machine.

For each checkout given (``label=path``), the database is made by that checkout's own code (its
migrations, its launch, its tokens), and its server runs with ``PYTHONPATH`` and cwd set to it. Then,
round after round, in turn: each checkout's server, and the bare Starlette endpoint (the same-run
ceiling), GET then POST under wrk. Reported per run: req/s, ratio to the bare endpoint of the same
round, and the server's CPU milliseconds per request (utime + stime of the server process from
/proc/<pid>/stat, read just before and after the wrk run) — the CPU a request costs under
concurrency, steadier than req/s when other work shares the cores.

    .venv/bin/python bench/profiles/web_ab.py --rounds 3 old=/tmp/bench-old new=.

Options: ``--contacts N`` (default 20,000), ``--seconds S`` per wrk run (default 8),
``--pyspy DIR`` (record a py-spy profile of each server's POST run into DIR; needs py-spy),
``--server-script FILE`` (run the app through a wrapper taking URL PORT WORKDIR, sent SIGUSR1 before
and after each wrk run, e.g. to print counters), ``--json FILE`` (every row). A label ``name+flag``
runs the same checkout with ``FLAG=1`` in the server's environment (for such a wrapper).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
#: --server-script: run the app through this wrapper; it is sent SIGUSR1 before and after each wrk run
SERVER_SCRIPT = ""
SETUP = r"""
import sys, json
from pathlib import Path
from bench.data import Databases, load_contacts, runtime
from bench import steps
wd = Path(sys.argv[1]); n = int(sys.argv[2])
dbs = Databases("sqlite", wd)
url = dbs.fresh("ab")
load_contacts(runtime(url, wd), n)
cid = steps.step_launch({"url": url, "workdir": str(wd)})["campaign_id"]
steps.step_tokens({"url": url, "workdir": str(wd), "campaign_id": cid, "count": 1000, "out": str(wd / "tokens.txt")})
print(json.dumps({"url": url}))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(1200):  # up to 120 s: a loaded machine starts a server slowly
        if proc.poll() is not None:
            raise RuntimeError("server exited")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server never listened")


def cpu_split(pid: int) -> tuple[float, float, int, int]:
    """(utime s, stime s, threads, context switches of all threads) of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()  # utime, stime: fields 14, 15
    switches = 0
    tasks = list(Path(f"/proc/{pid}/task").iterdir())
    for task in tasks:
        for line in (task / "status").read_text().splitlines():
            if "ctxt_switches" in line:
                switches += int(line.split()[1])
    return int(fields[11]) / TICK, int(fields[12]) / TICK, len(tasks), switches


def env_for(tree: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(tree)}


def wrk(port: int, script: Path, seconds: int) -> dict[str, float]:
    out = subprocess.run(["wrk", "-t1", "-c64", f"-d{seconds}s", "--timeout", "10s", "--latency", "-s", str(script),
                          f"http://127.0.0.1:{port}"], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    n = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    p99 = re.search(r"\s99%\s+([\d.]+)(us|ms|s)", out)
    p99_ms = float(p99.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)] if p99 else 0.0
    return {"rps": rps, "requests": n, "non_2xx": int(bad.group(1)) if bad else 0, "p99_ms": p99_ms}


def scripts(wd: Path) -> dict[str, Path]:
    from_lua = ('local tokens = {}\nfor line in io.lines("%s") do tokens[#tokens + 1] = line end\n'
                'local n = 0\nrequest = function()\n  n = n + 1\n  local t = tokens[(n %% #tokens) + 1]\n  %s\nend\n')
    get = 'return wrk.format("GET", "/p/" .. t)'
    post = ('return wrk.format("POST", "/p/" .. t, {["Content-Type"] = "application/x-www-form-urlencoded"}, '
            '"action=confirm&email=yes&sms=yes")')
    out = {}
    for name, body in (("GET", get), ("POST", post)):
        out[name] = wd / f"{name}.lua"
        out[name].write_text(from_lua % (wd / "tokens.txt", body))
    return out


def serve(tree: Path, args: list[str], extra_env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    # bench.web's own argument order: ``bare PORT`` or ``app URL PORT WORKDIR``
    cmd = [sys.executable, "-m", "bench.web", "bare", str(port)] if args[0] == "bare" else \
          [sys.executable, "-m", "bench.web", "app", args[1], str(port), args[2]]
    if args[0] != "bare" and SERVER_SCRIPT:  # a wrapper of bench.web's app taking URL PORT WORKDIR
        cmd = [sys.executable, SERVER_SCRIPT, args[1], str(port), args[2]]
    proc = subprocess.Popen(cmd, cwd=tree, env={**env_for(tree), **(extra_env or {})})
    try:
        wait_port(port, proc)
    except RuntimeError:
        stop(proc)  # not left running behind a failed run
        raise
    return proc, port


def measure(proc: subprocess.Popen[bytes], port: int, lua: dict[str, Path], seconds: int,
            pyspy: Path | None, tag: str) -> dict[str, dict[str, float]]:
    wrk(port, lua["POST"], 3)  # warm-up: every token answered once, so POSTs below are re-answers
    res = {}
    for method in ("GET", "POST"):
        spy = None
        if pyspy is not None and method == "POST":
            spy = subprocess.Popen(["py-spy", "record", "--native", "-r", "200", "-d", str(seconds), "-f", "raw",
                                    "-o", str(pyspy / f"{tag}.txt"), "--pid", str(proc.pid)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if SERVER_SCRIPT and tag != "bare":
            print(f"-- {tag} {method} before", file=sys.stderr, flush=True)
            proc.send_signal(signal.SIGUSR1)
            time.sleep(0.2)
        before = cpu_split(proc.pid)
        r = wrk(port, lua[method], seconds)
        after = cpu_split(proc.pid)
        n = r["requests"]
        r["cpu_ms_per_req"] = (after[0] + after[1] - before[0] - before[1]) * 1000 / n
        r["sys_ms_per_req"] = (after[1] - before[1]) * 1000 / n
        r["threads"] = after[2]
        r["switches_per_req"] = (after[3] - before[3]) / n
        if spy is not None:
            spy.wait()
        if SERVER_SCRIPT and tag != "bare":
            proc.send_signal(signal.SIGUSR1)
            time.sleep(0.2)
            print(f"-- {tag} {method} after: {r['requests']} requests", file=sys.stderr, flush=True)
        res[method] = r
    return res


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("trees", nargs="+", help="label=path of a checkout")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--contacts", type=int, default=20_000)
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--pyspy", type=Path)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--server-script", default="")
    a = ap.parse_args()
    global SERVER_SCRIPT
    SERVER_SCRIPT = a.server_script
    trees = {t.split("=", 1)[0]: Path(t.split("=", 1)[1]).resolve() for t in a.trees}
    base = Path(tempfile.mkdtemp(prefix="web-ab-"))
    setups = {}
    for label, tree in trees.items():
        wd = base / label
        wd.mkdir()
        out = subprocess.run([sys.executable, "-c", SETUP, str(wd), str(a.contacts)], cwd=tree, env=env_for(tree),
                             capture_output=True, text=True, check=True).stdout
        setups[label] = (wd, json.loads(out.strip().splitlines()[-1])["url"], scripts(wd))
    if a.pyspy:
        a.pyspy.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, object]] = []
    try:
        for rnd in range(a.rounds):
            order = list(trees) if rnd % 2 == 0 else list(reversed(trees))
            proc, port = serve(next(iter(trees.values())), ["bare"])
            try:
                bare = measure(proc, port, setups[next(iter(trees))][2], a.seconds, None, "bare")
            finally:
                stop(proc)
            for label in order:
                wd, url, lua = setups[label]
                # ``label+NAME`` runs the same checkout with NAME=1 in the server's environment
                extra = {flag.upper(): "1" for flag in label.split("+")[1:]}
                proc, port = serve(trees[label], ["app", url, str(wd)], extra)
                try:
                    res = measure(proc, port, lua, a.seconds, a.pyspy, f"{label}-{rnd}")
                finally:
                    stop(proc)
                for method in ("GET", "POST"):
                    row = {"round": rnd, "label": label, "method": method, **res[method],
                           "bare_rps": bare[method]["rps"], "ratio": res[method]["rps"] / bare[method]["rps"],
                           "load1": os.getloadavg()[0]}
                    rows.append(row)
                    print(f"round {rnd} {label:8} {method:4} {res[method]['rps']:8.1f} req/s  bare {bare[method]['rps']:8.1f}"
                          f"  ratio {row['ratio']:.3f}  cpu {res[method]['cpu_ms_per_req']:.2f} ms/req"
                          f" (sys {res[method]['sys_ms_per_req']:.2f})  threads {res[method]['threads']}"
                          f"  cs/req {res[method]['switches_per_req']:.1f}  p99 {res[method]['p99_ms']:.0f} ms  non2xx {res[method]['non_2xx']}  load {row['load1']:.1f}",
                          flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print("\nmedians over rounds:")
    for label in trees:
        for method in ("GET", "POST"):
            sel = [r for r in rows if r["label"] == label and r["method"] == method]
            med = {k: statistics.median(float(r[k]) for r in sel)  # type: ignore[arg-type]
                   for k in ("rps", "bare_rps", "ratio", "cpu_ms_per_req", "p99_ms")}
            print(f"{label:8} {method:4} {med['rps']:8.1f} req/s (bare {med['bare_rps']:.1f})  ratio {med['ratio']:.3f}"
                  f"  cpu {med['cpu_ms_per_req']:.2f} ms/req  p99 {med['p99_ms']:.0f} ms")
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
