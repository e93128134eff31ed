"""System calls per POST /p/{token} under wrk (64 connections), per checkout: a count, not a time, so a
loaded machine does not blur it. Each checkout makes its own database (5,000 contacts) with its own code,
answers every token once, then ``strace -f -c`` is attached to its server during a 4 s wrk run.

    .venv/bin/python bench/profiles/web_syscalls.py flat=/tmp/bench-old main=/tmp/bench-main fix=.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import web_ab as w  # noqa: E402

CALLS = ("pread64", "pwrite64", "fcntl", "fdatasync", "sendto", "recvfrom", "futex", "getpid")


def per_request(tree: Path, label: str) -> dict[str, float]:
    wd = Path(tempfile.mkdtemp(prefix=f"sys-{label}-"))
    out = subprocess.run([sys.executable, "-c", w.SETUP, str(wd), "5000"], cwd=tree, env=w.env_for(tree),
                         capture_output=True, text=True, check=True).stdout
    url = json.loads(out.strip().splitlines()[-1])["url"]
    lua = w.scripts(wd)
    proc, port = w.serve(tree, ["app", url, str(wd)])
    try:
        w.wrk(port, lua["POST"], 3)  # every token answered once: what follows are re-answers
        report = wd / "strace.txt"
        st = subprocess.Popen(["strace", "-f", "-c", "-o", str(report), "-p", str(proc.pid)])
        time.sleep(1)
        res = w.wrk(port, lua["POST"], 4)
        st.terminate()
        st.wait()
    finally:
        w.stop(proc)
    counts = {}
    for line in report.read_text().splitlines():
        parts = line.split()
        if parts and parts[-1] in CALLS:
            counts[parts[-1]] = int(parts[3])
    return {"requests": res["requests"], **{c: counts.get(c, 0) / res["requests"] for c in CALLS}}


def main() -> None:
    print("checkout  requests  " + "  ".join(f"{c:>9}" for c in CALLS))
    for arg in sys.argv[1:]:
        label, path = arg.split("=", 1)
        r = per_request(Path(path).resolve(), label)
        print(f"{label:9} {r['requests']:8.0f}  " + "  ".join(f"{r[c]:9.2f}" for c in CALLS), flush=True)


if __name__ == "__main__":
    main()
