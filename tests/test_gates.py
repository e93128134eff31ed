"""Architecture gates that are not a linter's job (issue 13).

ruff, mypy --strict and import-linter run from scripts/test.sh before pytest; what they check is
configured in pyproject.toml. This file holds the one rule none of them knows: a product module stays
small enough to read (STYLE.md: aim for ≲500 lines a module; split by concept, not by size alone).
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCT_PACKAGES = ("orchestrator", "preference_centre")
MAX_MODULE_LINES = 500


def product_modules() -> list[Path]:
    """Every Python module of the product, Alembic's migration scripts left out (they are history)."""
    migrations = ROOT / "orchestrator" / "store" / "migrations"
    return sorted(path for package in PRODUCT_PACKAGES for path in (ROOT / package).rglob("*.py")
                  if migrations not in path.parents)


def oversized(paths: list[Path], limit: int = MAX_MODULE_LINES, root: Path = ROOT) -> list[tuple[str, int]]:
    """(path relative to ``root``, line count) of the modules over ``limit`` lines, biggest first."""
    counts = [(str(path.relative_to(root)), len(path.read_text(encoding="utf-8").splitlines())) for path in paths]
    return sorted(((name, n) for name, n in counts if n > limit), key=lambda item: -item[1])


def test_product_modules_are_found():
    names = {str(path.relative_to(ROOT)) for path in product_modules()}
    assert "orchestrator/campaigns/service.py" in names
    assert "preference_centre/app.py" in names
    assert not any(name.startswith("orchestrator/store/migrations/") for name in names)


def test_no_product_module_is_over_500_lines():
    offenders = oversized(product_modules())
    assert not offenders, f"modules over {MAX_MODULE_LINES} lines (split them by concept): " + ", ".join(
        f"{name} ({n})" for name, n in offenders)


def test_oversized_lists_offenders_biggest_first(tmp_path):
    sizes = {"small.py": 3, "limit.py": 4, "big.py": 5, "bigger.py": 7}
    for name, n in sizes.items():
        (tmp_path / name).write_text("x = 1\n" * n)
    paths = sorted(tmp_path.iterdir())
    assert oversized(paths, limit=4, root=tmp_path) == [("bigger.py", 7), ("big.py", 5)]


def test_every_csv_goes_through_the_one_writer():
    """Issue 15: spreadsheet-safe CSV is one writer (orchestrator/domain/csv_safe.py); a module that
    builds its own csv.writer writes formulas raw (the console's results export once did)."""
    own = ROOT / "orchestrator" / "domain" / "csv_safe.py"
    offenders = [str(p.relative_to(ROOT)) for p in product_modules()
                 if p != own and re.search(r"\bcsv\.(writer|DictWriter)\(", p.read_text(encoding="utf-8"))]
    assert offenders == []
