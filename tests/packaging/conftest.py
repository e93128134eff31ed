"""The installed product: a wheel built from this checkout, installed into a fresh virtualenv outside
it, and run from empty folders — how users and the black-box checks install Reconsent.

Building and installing take a minute, once per session (marker ``wheel``; still run by the README's
test command, on its SQLite pass)."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Installed:
    venv: Path
    site_packages: Path

    @property
    def reconsent(self) -> str:
        return str(self.venv / "bin" / "reconsent")

    @property
    def python(self) -> str:
        return str(self.venv / "bin" / "python")

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a user's shell: none of the test run's RECONSENT_* settings."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RECONSENT_", "PYTHON", "VIRTUAL_ENV"))}
        env["PATH"] = f"{self.venv / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}"
        env.update(extra)
        return env

    def run(self, *args: str, cwd: Path, timeout: float = 120, check: bool = True,
            **extra: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([self.reconsent, *args], cwd=cwd, env=self.env(**extra), text=True,
                              capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if check and done.returncode != 0:
            raise AssertionError(f"reconsent {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    work = tmp_path_factory.mktemp("wheel")
    dist = work / "dist"
    # The sdist, then the wheel built from the unpacked sdist (as `python -m build` does): this checks
    # the sdist too, and no stale build/ folder of the checkout can slip old modules into the wheel.
    # The build tools come from the test environment (no isolated build environment to fetch).
    subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(ROOT)],
                   check=True, capture_output=True, timeout=600)
    assert len(list(dist.glob("reconsent-*.tar.gz"))) == 1
    wheels = list(dist.glob("reconsent-*.whl"))
    assert len(wheels) == 1, wheels
    env_dir = work / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    pip = subprocess.run([str(env_dir / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheels[0])],
                         capture_output=True, text=True, timeout=900, cwd=work)
    assert pip.returncode == 0, pip.stderr[-3000:]
    site = Path(subprocess.run([str(env_dir / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True, cwd=work).stdout.strip())
    yield Installed(env_dir, site)
