"""Real processes for the service tests: `reconsent` commands and the logging SMTP server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.smtp import free_port

ROOT = Path(__file__).resolve().parents[2]


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_config(path: Path, sections: dict[str, dict[str, Any]]) -> Path:
    lines = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines.extend(f"{k} = {toml_value(v)}" for k, v in values.items())
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def wait_until(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll ``check`` until it returns something truthy (an awaited condition, not a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


class Proc:
    """A child process whose stderr/stdout go to a log file we can wait on."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.args = args
        self.log = log
        self.fh = log.open("ab")
        full_env = {**os.environ, **(env or {})}
        full_env.pop("RECONSENT_NOW", None)
        self.popen = subprocess.Popen(args, stdout=self.fh, stderr=subprocess.STDOUT, env=full_env, cwd=ROOT)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_for(self, needle: str, timeout: float = 60, since: int = 0) -> None:
        def seen() -> bool:
            if self.popen.poll() is not None and needle not in self.text()[since:]:
                raise AssertionError(f"{self.args[1:3]} exited with {self.popen.returncode}:\n{self.text()[-3000:]}")
            return needle in self.text()[since:]

        wait_until(seen, timeout, f"{needle!r} in {self.log.name}")

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=30)

    def terminate(self, timeout: float = 60) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        return self.popen.wait(timeout=timeout)

    def close(self) -> None:
        self.kill()
        self.fh.close()


def reconsent(config: Path, *args: str, log: Path, env: dict[str, str] | None = None) -> Proc:
    return Proc([sys.executable, "-m", "orchestrator.cli.main", "--config", str(config), *args], log,
                {"RECONSENT_HOME": str(config.parent), **(env or {})})


class SmtpLogServer:
    """tests.support.smtp_log_server in its own process."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.accepted = workdir / "accepted-message-ids.log"
        self.accepted.touch()
        self.proc = Proc([sys.executable, "-m", "tests.support.smtp_log_server", "--port", str(self.port),
                          "--log", str(self.accepted)], workdir / f"smtp-{self.port}.out")

    def start(self, timeout: float = 60) -> SmtpLogServer:
        self.proc.wait_for("ready", timeout)
        return self

    def stop(self) -> None:
        self.proc.terminate(30)
        self.proc.close()

    def ids(self) -> Counter[str]:
        return Counter(line for line in self.accepted.read_text(encoding="ascii").splitlines() if line)

    def count(self) -> int:
        with self.accepted.open("rb") as fh:
            return sum(1 for _ in fh)
