"""The web layer's shape (issue 13): services are the only door, and one module composes the rest."""

from __future__ import annotations

import ast
from pathlib import Path

WEB = Path(__file__).resolve().parents[2] / "preference_centre"
FORBIDDEN = ("sqlalchemy", "sqlmodel", "orchestrator.store")
#: modules allowed to read the store themselves: none (self_service became orchestrator/delivery/fresh_links.py)
NOT_YET: set[str] = set()


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_the_web_layer_calls_services_never_the_store() -> None:
    offenders = sorted(
        f"{path.relative_to(WEB)}: {name}"
        for path in WEB.rglob("*.py") if path.name not in NOT_YET
        for name in _imports(path) if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)
    )
    assert offenders == []


def test_only_the_composition_module_knows_the_parts() -> None:
    """public/, webhooks/ and admin/ never import preference_centre.app, nor each other."""
    parts = ("public", "webhooks", "admin")
    for part in parts:
        for path in (WEB / part).rglob("*.py"):
            names = _imports(path)
            others = {f"preference_centre.{p}" for p in parts if p != part} | {"preference_centre.app"}
            assert not {n for n in names if any(n == o or n.startswith(o + ".") for o in others)}, path
