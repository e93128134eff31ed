"""Run the benchmark suite: ``python -m bench [--tiny | --quick | --full] [--db sqlite,postgresql]``.

Every figure is a ratio against a ceiling measured in the same run (see bench/README.md). Each
measured step runs in a child process (bench/steps.py) so its peak RSS is its own; the SMTP sink
and the web servers run in processes of their own too. ``--record`` appends the run to RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.data import Databases, load_contacts, runtime, write_csv

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
DEFAULT_PG = "postgresql+psycopg://reconsent:reconsent@127.0.0.1:5432/bench7"


@dataclass(frozen=True)
class Size:
    name: str
    contacts: int  # audience for launch, sweep, import
    dispatch: int  # messages sent per dispatch measurement
    memory_sizes: tuple[int, ...]  # N for the memory figure (launch and dispatch RSS)
    web_seconds: int
    connections: int = 4  # SMTP connections, pipeline and bare loop alike
    concurrency: int = 8  # messages in flight in the dispatcher (config dispatch.concurrency)
    web_concurrency: int = 64


SIZES = {
    "tiny": Size("tiny", 300, 100, (300,), 2, web_concurrency=8),
    "quick": Size("quick", 100_000, 5_000, (100_000,), 10),
    "full": Size("full", 1_000_000, 100_000, (100_000, 1_000_000), 15),
}


#: the parts ``--only`` can pick
PARTS = frozenset({"launch", "dispatch", "sweep", "import", "web", "memory", "results"})


@dataclass
class Figure:
    name: str
    db: str
    value: float
    unit: str
    ceiling: float | None
    ratio: float | None
    target: str
    met: bool
    note: str = ""


@dataclass
class Run:
    size: Size
    workdir: Path
    pg_url: str
    figures: list[Figure] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    log: Any = sys.stderr
    only: frozenset[str] = PARTS  # which figures to measure (set-up steps always run)

    def wants(self, part: str) -> bool:
        return part in self.only

    def say(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", file=self.log, flush=True)

    def step(self, name: str, **args: Any) -> dict[str, Any]:
        """Run one measured step in a child interpreter; returns its JSON result."""
        args.setdefault("workdir", str(self.workdir))
        proc = subprocess.run([sys.executable, "-m", "bench.steps", name, json.dumps(args)], cwd=ROOT,
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"bench step {name} failed:\n{proc.stderr[-4000:]}")
        result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
        self.say(f"{name}: {result}")
        return result

    def add(self, name: str, db: str, value: float, unit: str, ceiling: float | None, target: str, met: bool,
            note: str = "") -> None:
        ratio = (value / ceiling) if ceiling else None
        self.figures.append(Figure(name, db, value, unit, ceiling, ratio, target, met, note))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[Any], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server process exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on port {port}")


def stop(proc: subprocess.Popen[Any]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# -- the suite ----------------------------------------------------------------------------------
def bench_database(run: Run, kind: str) -> None:
    size = run.size
    dbs = Databases(kind, run.workdir, run.pg_url)
    try:
        base = dbs.fresh("base")
        run.say(f"{kind}: loading {size.contacts} contacts")
        load_contacts(runtime(base, run.workdir), size.contacts)

        raw = run.step("launch_raw", url=base)
        launch = run.step("launch", url=base)
        cid = launch["campaign_id"]
        assert launch["enrolled"] == raw["enrolled"] and launch["outbox"] == raw["outbox"], (launch, raw)
        results: dict[str, Any] = run.raw.setdefault(kind, {})
        results.update(launch=launch, launch_raw=raw)
        if run.wants("launch"):
            met = launch["seconds"] <= 60 * size.contacts / 1_000_000 and launch["seconds"] <= 3 * raw["seconds"]
            # ratio for "≤ 3× raw" figures is product/raw: lower is better
            run.add("launch (enrolments + outbox rows)", kind, launch["seconds"], "s", raw["seconds"],
                    "≤ 60 s per 1M and ≤ 3× raw", met,
                    f"{launch['enrolled']} enrolled, {launch['outbox']} outbox rows; ceiling: raw INSERT…SELECT; "
                    f"client CPU s {launch.get('cpu_seconds', 0):.2f} vs {raw.get('cpu_seconds', 0):.2f}")
        copies = (dbs.copy(base, "sweep"), dbs.copy(base, "sweepraw")) if run.wants("sweep") else None
        null_rss = None
        if run.wants("dispatch") or run.wants("memory"):
            null_rss = bench_dispatch(run, kind, base, results)
        if copies:
            bench_sweep(run, kind, copies, cid, results)
        if run.wants("results"):
            bench_results(run, kind, copies[0] if copies else base, cid, results)
        if kind == "sqlite":
            if run.wants("import"):
                bench_import(run, dbs)
            if run.wants("web"):
                bench_web(run, base, cid)
            if run.wants("memory") and null_rss is not None:
                bench_memory(run, dbs, {size.contacts: (launch["rss_mb"], null_rss)})
    finally:
        dbs.drop_all()


def bench_dispatch(run: Run, kind: str, base: str, results: dict[str, Any]) -> float:
    """The SMTP pipeline against the bare loop (the sink in its own process), then the null channel;
    returns the null-channel dispatcher's peak RSS (the memory figure)."""
    size = run.size
    if run.wants("dispatch"):
        port = free_port()
        sink = subprocess.Popen([sys.executable, "-m", "bench.sink", str(port)], cwd=ROOT,
                                stdout=subprocess.PIPE, text=True)
        try:
            assert sink.stdout is not None and sink.stdout.readline().strip() == "ready"
            common = {"port": port, "limit": size.dispatch, "connections": size.connections}
            bare1 = run.step("smtp_bare", url=base, **common)
            pipe = run.step("dispatch_smtp", url=base, concurrency=size.concurrency, **common)
            bare2 = run.step("smtp_bare", url=base, **common)
        finally:
            stop(sink)
        bare_rate = 2 / (bare1["seconds"] / bare1["sent"] + bare2["seconds"] / bare2["sent"])
        pipe_rate = pipe["sent"] / pipe["seconds"]
        assert pipe["sent"] >= size.dispatch * 0.99, pipe
        run.add("dispatch throughput to SMTP sink", kind, pipe_rate, "msg/s", bare_rate, "≥ 0.85 of bare",
                pipe_rate >= 0.85 * bare_rate,
                f"{pipe['sent']} messages, {size.connections} connections, concurrency {size.concurrency}; "
                f"client CPU ms/msg {1000 * pipe.get('cpu_seconds', 0) / max(pipe['sent'], 1):.2f} vs "
                f"{1000 * bare1.get('cpu_seconds', 0) / max(bare1['sent'], 1):.2f}")
        results.update(smtp_bare=[bare1, bare2], dispatch_smtp=pipe)
    null = run.step("dispatch_null", url=base, limit=size.dispatch)
    results["dispatch_null"] = null
    if run.wants("dispatch"):
        null_rate = null["sent"] / null["seconds"]
        run.add("pipeline overhead (null channel)", kind, null_rate, "msg/s", None,
                "≥ 5,000 msg/s (SQLite)", null_rate >= 5000 if kind == "sqlite" else True,
                f"{null['sent']} messages ({null['sent'] / max(null.get('cpu_seconds', 0), 1e-9):,.0f} msg per "
                f"client CPU second); on PostgreSQL reported only")
    return float(null["rss_mb"])


def bench_sweep(run: Run, kind: str, copies: tuple[str, str], campaign_id: int, results: dict[str, Any]) -> None:
    """The sweep on one copy of the launched database, the raw SQL on the other."""
    for copy in copies:  # same, current statistics for both (untimed set-up)
        run.step("analyze", url=copy)
    sw = run.step("sweep", url=copies[0])
    swr = run.step("sweep_raw", url=copies[1], campaign_id=campaign_id)
    assert (sw["expired"], sw["suppressed"], sw["events"]) == (swr["expired"], swr["suppressed"],
                                                               swr["events"]) and sw["chain_ok"], (sw, swr)
    run.add("sweep (expire + suppress + retention)", kind, sw["seconds"], "s", swr["seconds"], "≤ 3× raw",
            sw["seconds"] <= 3 * swr["seconds"],
            f"{sw['expired']} expired, {sw['suppressed']} suppressed, {sw['events']} events; "
            f"audit verify {sw['verify_seconds']:.1f} s, chain intact; client CPU s "
            f"{sw.get('cpu_seconds', 0):.2f} vs {swr.get('cpu_seconds', 0):.2f}")
    results.update(sweep=sw, sweep_raw=swr)


def bench_results(run: Run, kind: str, url: str, campaign_id: int, results: dict[str, Any]) -> None:
    """``campaign results`` (CSV) of the whole audience, after the sweep when it ran: rows/s and the
    peak RSS of the process writing them (flat in N: rows stream page by page)."""
    res = run.step("results", url=url, campaign_id=campaign_id)
    assert res["rows"] == results["launch"]["enrolled"], res
    rate = res["rows"] / res["seconds"]
    run.add("campaign results (CSV, streamed)", kind, rate, "rows/s", None, "≥ 20,000 rows/s and ≤ 300 MB",
            rate >= 20_000 and res["rss_mb"] <= 300,
            f"{res['rows']} rows, {res['bytes'] / 1e6:.0f} MB of CSV; peak RSS {res['rss_mb']:.0f} MB; "
            f"client CPU s {res.get('cpu_seconds', 0):.2f}")
    results["results"] = res


def bench_import(run: Run, dbs: Databases) -> None:
    n = run.size.contacts
    csv_path = write_csv(run.workdir / "contacts.csv", n)
    result = run.step("import", url=dbs.fresh("import"), csv=str(csv_path))
    assert result["created"] == n, result
    rate = n / result["seconds"]
    run.add("import CSV with validation", "sqlite", rate, "rows/s", None, "≥ 20,000 rows/s", rate >= 20_000,
            f"{n} rows, peak RSS {result['rss_mb']:.0f} MB (largest worker {result.get('workers_rss_mb', 0):.0f} MB); "
            f"CPU s {result.get('cpu_seconds', 0):.1f} + workers {result.get('workers_cpu_seconds', 0):.1f}")
    run.raw["import"] = result
    csv_path.unlink()


def bench_memory(run: Run, dbs: Databases, known: dict[int, tuple[float, float]]) -> None:
    measured = dict(known)
    for n in run.size.memory_sizes:
        if n in measured:
            continue
        url = dbs.fresh(f"mem{n}")
        load_contacts(runtime(url, run.workdir), n)
        launch = run.step("launch", url=url)
        null = run.step("dispatch_null", url=url, limit=run.size.dispatch)
        measured[n] = (launch["rss_mb"], null["rss_mb"])
    sizes = sorted(measured)
    for index, label in ((0, "launch"), (1, "dispatch")):
        values = [measured[n][index] for n in sizes]
        peak = max(values)
        flat = values[-1] <= values[0] * 1.25 + 10
        run.add(f"peak RSS of {label}", "sqlite", peak, "MB", None, "≤ 300 MB, flat in N", peak <= 300 and flat,
                " · ".join(f"N={n:,}: {v:.0f} MB" for n, v in zip(sizes, values)))
    run.raw["memory"] = {str(n): v for n, v in measured.items()}


def bench_web(run: Run, url: str, campaign_id: int) -> None:
    tokens = run.workdir / "tokens.txt"
    run.step("tokens", url=url, campaign_id=campaign_id, count=1000, out=str(tokens))
    from bench.web import wrk

    results: dict[str, dict[str, float]] = {}
    for server in ("app", "bare"):
        port = free_port()
        cmd = [sys.executable, "-m", "bench.web", "bare", str(port)] if server == "bare" else \
              [sys.executable, "-m", "bench.web", "app", url, str(port), str(run.workdir)]
        proc = subprocess.Popen(cmd, cwd=ROOT)
        try:
            wait_port(port, proc)
            for method in ("GET", "POST"):
                res = wrk(port, tokens, post=method == "POST", seconds=run.size.web_seconds,
                          connections=run.size.web_concurrency, workdir=run.workdir)
                run.say(f"web {server} {method}: {res}")
                results[f"{server} {method}"] = res
        finally:
            stop(proc)
    for method, what in (("GET", "GET /p/{token}"), ("POST", "POST /p/{token} confirm")):
        app, bare = results[f"app {method}"], results[f"bare {method}"]
        ok = (app["rps"] >= 0.5 * bare["rps"] and app["p99_ms"] < 100 and app["non_2xx"] == 0
              and app["socket_errors"] == 0)
        run.add(f"preference page {what}", "sqlite", app["rps"], "req/s", bare["rps"],
                "≥ 0.5 of bare, p99 < 100 ms", ok,
                f"p50 {app['p50_ms']:.1f} ms, p99 {app['p99_ms']:.1f} ms (bare p50 {bare['p50_ms']:.1f}, "
                f"p99 {bare['p99_ms']:.1f}); {run.size.web_concurrency} connections; "
                f"non-2xx {app['non_2xx']:.0f}, socket errors/timeouts {app['socket_errors']:.0f}")
    run.raw["web"] = results


# -- reporting ----------------------------------------------------------------------------------
def table(figures: list[Figure]) -> str:
    lines = ["| figure | db | value | ceiling | ratio | target | met | notes |", "|---|---|---|---|---|---|---|---|"]
    for f in figures:
        ceiling = f"{f.ceiling:,.1f} {f.unit}" if f.ceiling is not None else "—"
        ratio = f"{f.ratio:.2f}" if f.ratio is not None else "—"
        lines.append(f"| {f.name} | {f.db} | {f.value:,.1f} {f.unit} | {ceiling} | {ratio} | {f.target} | "
                     f"{'met' if f.met else 'MISSED'} | {f.note} |")
    return "\n".join(lines)


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal"))
        memory = f"{int(mem) / 1024 / 1024:.1f} GiB"
    except OSError:
        memory = "unknown"
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()
    return {"cpu": cpu, "nproc": str(os.cpu_count()), "memory": memory, "load": load,
            "commit": commit + (" (+ uncommitted changes)" if dirty else ""), "python": platform.python_version()}


def record(run: Run, started: dict[str, str], finished: dict[str, str], label: str) -> str:
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"\n## {now} — {run.size.name} ({run.size.contacts:,} contacts){' — ' + label if label else ''}\n\n"
        f"- machine: {started['cpu']}, {started['nproc']} cores (nproc), {started['memory']} RAM, Python {started['python']}\n"
        f"- commit: {started['commit']}\n"
        f"- load average (1/5/15 min) at start: {started['load']}; at end: {finished['load']}\n\n"
        f"{table(run.figures)}\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--tiny", action="store_const", const="tiny", dest="size", help="a few hundred contacts (smoke test)")
    group.add_argument("--quick", action="store_const", const="quick", dest="size", help="~100k contacts")
    group.add_argument("--full", action="store_const", const="full", dest="size", help="1M contacts (default)")
    parser.add_argument("--db", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    parser.add_argument("--pg-url", default=os.environ.get("RECONSENT_BENCH_PG_URL", DEFAULT_PG),
                        help="a PostgreSQL URL whose user may CREATE DATABASE (env RECONSENT_BENCH_PG_URL)")
    parser.add_argument("--record", action="store_true", help="append the results to bench/RESULTS.md")
    parser.add_argument("--label", default="", help="a note for the RESULTS.md heading (e.g. 'before sweep fix')")
    parser.add_argument("--json", type=Path, help="also write every raw measurement to this JSON file")
    parser.add_argument("--workdir", type=Path, help="folder for SQLite files and the CSV (default: a temp dir)")
    parser.add_argument("--messages", type=int, help="messages per dispatch measurement (default: by size)")
    parser.add_argument("--only", default=",".join(sorted(PARTS)),
                        help=f"comma-separated figures to measure, of {', '.join(sorted(PARTS))} (default: all; "
                             "the contacts are loaded and the campaign launched whatever is picked)")
    parser.add_argument("--record-json", type=Path, metavar="FILE",
                        help="append a run saved earlier with --json to RESULTS.md, then exit")
    args = parser.parse_args(argv)
    if args.record_json:
        saved = json.loads(args.record_json.read_text())
        run = Run(SIZES[saved["size"]], Path("."), "", figures=[Figure(**f) for f in saved["figures"]])
        with RESULTS.open("a", encoding="utf-8") as fh:
            fh.write(record(run, saved["machine"], saved.get("machine_end", saved["machine"]), args.label))
        return 0
    size = SIZES[args.size or "full"]
    if args.messages:
        size = replace(size, dispatch=args.messages)
    kinds = [k.strip() for k in args.db.split(",") if k.strip()]
    only = frozenset(p.strip() for p in args.only.split(",") if p.strip())
    if not only or not only <= PARTS:
        parser.error(f"--only: pick among {', '.join(sorted(PARTS))} (got {args.only!r})")
    started = machine()
    with tempfile.TemporaryDirectory(prefix="reconsent-bench-", dir=args.workdir) as tmp:
        run = Run(size, Path(tmp), args.pg_url, only=only)
        run.say(f"bench {size.name}: {size.contacts:,} contacts on {', '.join(kinds)}; machine {started}")
        for kind in kinds:
            bench_database(run, kind)
    finished = machine()
    print(table(run.figures))
    if args.json:
        args.json.write_text(json.dumps({"size": size.name, "machine": started, "machine_end": finished, "raw": run.raw,
                                         "figures": [f.__dict__ for f in run.figures]}, indent=2, default=str))
    if args.record:
        with RESULTS.open("a", encoding="utf-8") as fh:
            fh.write(record(run, started, finished, args.label))
    return 0
