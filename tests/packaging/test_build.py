"""A wheel built in a checkout holds the modules of the source and nothing else, also when an earlier
build left ``build/lib`` behind (setuptools never deletes from it: a checkout built before a module
moved shipped the old module beside the new one)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.packaging.conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.wheel]

LEFT_OUT = {".git", ".venv", ".cache", "build", "dist", "__pycache__", ".mypy_cache", ".ruff_cache",
            ".pytest_cache", ".hypothesis", "var"}


def test_wheel_built_in_a_checkout_ignores_a_stale_build_folder(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT, checkout, symlinks=True, ignore=lambda _dir, names: [n for n in names if n in LEFT_OUT])
    stale = checkout / "build" / "lib" / "orchestrator" / "dispatch.py"  # a module of the old flat layout
    stale.parent.mkdir(parents=True)
    stale.write_text("raise SystemExit('a module that no longer exists')\n")
    dist = tmp_path / "dist"
    built = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist),
                            str(checkout)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = dist.glob("reconsent-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "orchestrator/dispatch.py" not in names
    assert "orchestrator/delivery/worker.py" in names
