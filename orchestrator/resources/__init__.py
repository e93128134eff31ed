"""Files shipped inside the package: message, page and console templates, static files, the default
configuration and its production example.

In the repository they live in the top-level ``templates/`` and ``config/`` folders;
``orchestrator/resources/templates`` and ``orchestrator/resources/config`` are symbolic links to them,
and the build copies their contents into the wheel and the sdist at those places. Code finds them
through the installed package (:mod:`importlib.resources`), the same way in a checkout, an editable
install and a wheel, and never through the working directory.

>>> (shipped("config") / "default.toml").is_file()
True
>>> sorted(p.name for p in shipped("templates").iterdir() if p.is_dir())
['admin', 'messages', 'pages']
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def shipped(*parts: str) -> Path:
    """The path of a shipped folder or file, e.g. ``shipped("templates", "pages")``.

    Reconsent is installed as plain files (a wheel, not a zip), so the resource is a real path
    Jinja's and Starlette's file loaders can read."""
    root = Path(str(files(__name__)))
    return root.joinpath(*parts)


TEMPLATES = shipped("templates")
DEFAULT_CONFIG = shipped("config", "default.toml")
PRODUCTION_EXAMPLE = shipped("config", "production.example.toml")
