"""Architecture boundaries (architecture.md), checked on the source itself.

- Only ``gridmap/storage/`` imports a database driver (psycopg, duckdb).
- The core (``gridmap/``, its CLI too) imports no web framework and no folium.
- Renderers in ``layers/`` never open a database.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DRIVERS = {"psycopg", "psycopg_pool", "duckdb", "duckdb_extension_spatial"}
WEB = {"fastapi", "starlette", "uvicorn", "folium", "branca"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def _files(pkg: str) -> list[Path]:
    return sorted((ROOT / pkg).rglob("*.py"))


@pytest.mark.parametrize("pkg", ["gridmap", "api", "layers"])
def test_only_storage_imports_database_drivers(pkg: str) -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for p in _files(pkg)
        if "storage" not in p.relative_to(ROOT).parts and _imports(p) & DRIVERS
    ]
    assert offenders == []


def test_core_imports_no_web_framework_or_folium() -> None:
    # The CLI too: it reaches the web framework only through api (api.server runs uvicorn).
    offenders = [str(p.relative_to(ROOT)) for p in _files("gridmap") if _imports(p) & WEB]
    assert offenders == []


def test_import_linter_contracts_hold() -> None:
    exe = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(exe)], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
