"""The benchmark suite at tiny size, so its code cannot rot. Timings are never asserted here (they
live in bench/RESULTS.md); only that every figure is produced, with its ceiling where it has one.
SQLite figures in the SQLite pass, PostgreSQL figures (launch, dispatch, sweep) in the PostgreSQL pass."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PG_URL = os.environ.get("RECONSENT_TEST_PG_URL", "")
DATABASE_FIGURES = {"launch (enrolments + outbox rows)", "dispatch throughput to SMTP sink",
                    "pipeline overhead (null channel)", "sweep (expire + suppress + retention)",
                    "campaign results (CSV, streamed)"}
SQLITE_ONLY = {"import CSV with validation", "preference page GET /p/{token}",
               "preference page POST /p/{token} confirm", "peak RSS of launch", "peak RSS of dispatch"}
WITH_CEILING = {"launch (enrolments + outbox rows)", "dispatch throughput to SMTP sink",
                "sweep (expire + suppress + retention)", "preference page GET /p/{token}",
                "preference page POST /p/{token} confirm"}


@pytest.mark.slow
def test_bench_tiny_produces_every_figure(tmp_path: Path) -> None:
    kind = "postgresql" if PG_URL else "sqlite"
    out = tmp_path / "bench.json"
    args = [sys.executable, "-m", "bench", "--tiny", "--db", kind, "--json", str(out), "--workdir", str(tmp_path)]
    if PG_URL:
        args += ["--pg-url", PG_URL]
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(out.read_text())
    figures = {f["name"]: f for f in data["figures"]}
    expected = DATABASE_FIGURES | (set() if PG_URL else SQLITE_ONLY)
    assert set(figures) == expected
    for name, figure in figures.items():
        assert figure["db"] == ("sqlite" if name in SQLITE_ONLY else kind)
        assert figure["value"] > 0, figure
        assert isinstance(figure["met"], bool)
        if name in WITH_CEILING:
            assert figure["ceiling"] > 0 and figure["ratio"] > 0, figure
    sweep = data["raw"][kind]["sweep"]
    assert sweep["chain_ok"] and sweep["expired"] == 300 and sweep["events"] == 600
    assert data["machine"]["nproc"] and data["machine"]["commit"]
    assert "| figure | db | value | ceiling | ratio | target | met |" in proc.stdout  # the printed table
    assert not list(tmp_path.glob("reconsent-bench-*"))  # its databases and files are cleaned up
