"""docs/architecture.md names every package and top-level module, so it follows the tree."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP = {"__pycache__", "static", "templates", "sql", "data"}


def _parts(root: str) -> set[str]:
    """Subpackages and top-level modules of *root* as the doc writes them."""
    out = set()
    for p in (ROOT / root).iterdir():
        package = p.is_dir() and p.name not in SKIP and (p / "__init__.py").exists()
        module = p.suffix == ".py" and not p.name.startswith("__")
        if package or module:
            out.add(p.name)
    return out


def test_every_package_and_module_is_described() -> None:
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    missing = {
        f"{root}/{name}"
        for root in ("gridmap", "api", "layers")
        for name in _parts(root)
        if f"`{name}`" not in doc
        and f"`{root}.{name}`" not in doc
        and f"`{root}/{name}`" not in doc
        and f"`{root}.{name.removesuffix('.py')}`" not in doc
    }
    assert not missing, f"docs/architecture.md does not describe: {sorted(missing)}"


def test_every_module_it_names_exists() -> None:
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`(?:[\w/]+/)?(\w+\.py)`", doc))
    present = {p.name for root in ("gridmap", "api", "layers") for p in (ROOT / root).rglob("*.py")}
    assert named and not named - present, sorted(named - present)
