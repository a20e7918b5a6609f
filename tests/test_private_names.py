"""No module imports a private name of another; a private module serves its own package only.

(Issue 23.) Ruff's PLC2701 sees imports across top-level packages; this also
covers imports inside ``gridmap``, ``api`` and ``layers``.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _offences() -> list[str]:
    out = []
    for root in ("gridmap", "api", "layers"):
        for path in (ROOT / root).rglob("*.py"):
            here = _module(path)
            package = here if path.name == "__init__.py" else here.rpartition(".")[0]
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.ImportFrom) or not node.module or node.level:
                    continue
                if node.module == "__future__":
                    continue
                where = f"{path.relative_to(ROOT)}:{node.lineno}"
                for alias in node.names:
                    if alias.name.startswith("_"):
                        out.append(f"{where} imports {alias.name} from {node.module}")
                parts = node.module.split(".")
                for i, part in enumerate(parts):
                    if part.startswith("_") and not part.startswith("__"):
                        owner = ".".join(parts[:i])
                        if not (package == owner or package.startswith(owner + ".")):
                            out.append(f"{where} imports private module {node.module}")
    return sorted(out)


def test_no_private_names_cross_modules() -> None:
    assert _offences() == []
