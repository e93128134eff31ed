"""Instances: an instance of Reconsent is a folder, not the checkout.

``reconsent init DIR`` makes one: ``DIR/reconsent.toml`` (commented, embedded defaults, fresh random
secrets, readable by its owner only), ``DIR/var/`` and the database schema. It never overwrites an
existing file: run again, it only upgrades the schema. Every command run inside DIR then reads
``reconsent.toml`` (orchestrator.config.config_file) and resolves relative paths from DIR.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.config import INSTANCE_CONFIG, Config, load_config
from orchestrator.errors import ConfigError
from orchestrator.proof.receipt_keys import new_key
from orchestrator.resources import PRODUCTION_EXAMPLE, shipped

INSTANCE_TEMPLATE = shipped("config", "instance.toml")


@dataclass
class InitReport:
    folder: Path
    config_path: Path
    created: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)
    database_url: str = ""

    def lines(self) -> list[str]:
        out = [f"created {p}" for p in self.created] + [f"kept {p} (already there, not overwritten)" for p in self.kept]
        out.append(f"database ready: {self.database_url}")
        return out


def instance_config_text(*, production: bool = False) -> str:
    """The text of a new instance's ``reconsent.toml``: the commented embedded defaults with fresh
    secrets, or the production example (whose secrets come from the environment)."""
    if production:
        return PRODUCTION_EXAMPLE.read_text(encoding="utf-8")
    text = INSTANCE_TEMPLATE.read_text(encoding="utf-8")
    return (text.replace("@SIGNING_KEY@", secrets.token_urlsafe(32))
                .replace("@SUPPRESSION_KEY@", secrets.token_urlsafe(32))
                .replace("@RECEIPT_KEY@", new_key()[0].strip()))


def write_new(path: Path, text: str, *, private: bool = False) -> bool:
    """Write ``text`` to ``path`` unless a file is there already (never overwrites). True if written."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    try:
        fd = os.open(path, flags, 0o600 if private else 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    return True


def prepare_instance(folder: Path, *, production: bool = False) -> tuple[InitReport, Config | None]:
    """Create the instance's files (config, var/) and load its config; the schema is the caller's
    (it needs an engine): see :func:`orchestrator.store.db.migrate`. A production config just written
    is not loaded (None): its database URL and secrets are still to be filled in."""
    folder = folder.resolve()
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{folder} is not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    config_path = folder / INSTANCE_CONFIG
    report = InitReport(folder, config_path)
    if write_new(config_path, instance_config_text(production=production), private=True):
        report.created.append(config_path)
    else:
        report.kept.append(config_path)
    var = folder / "var"
    if var.is_dir():
        report.kept.append(var)
    else:
        var.mkdir(parents=True)
        report.created.append(var)
    if production and config_path in report.created:
        return report, None
    config = load_config(config_path)
    report.database_url = config.database_url_shown
    return report, config
