"""The build backend: setuptools', after emptying the ``build/`` folder it works in.

setuptools copies the modules into ``build/lib`` and never deletes what is no longer in the source, so
``pip install .`` or ``python -m build --wheel`` in a checkout that was built before a module moved
would ship the old module beside the new one. Every wheel is therefore built from an empty
``build/``. Named in ``pyproject.toml`` (``backend-path = ["scripts"]``); shipped in the sdist
(``MANIFEST.in``).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403 - every hook setuptools offers, unchanged

__all__ = [*_setuptools.__all__]


def _empty_build_folder() -> None:
    shutil.rmtree(Path("build"), ignore_errors=True)


def build_wheel(wheel_directory: str, config_settings: dict[str, Any] | None = None,
                metadata_directory: str | None = None) -> str:
    _empty_build_folder()
    return _setuptools.build_wheel(wheel_directory, config_settings, metadata_directory)


def build_editable(wheel_directory: str, config_settings: dict[str, Any] | None = None,
                   metadata_directory: str | None = None) -> str:
    _empty_build_folder()
    return _setuptools.build_editable(wheel_directory, config_settings, metadata_directory)
