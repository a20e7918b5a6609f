"""Every command group of ``gridmap`` answers ``--help`` in English and zh-CN, without extras.

The groups are read from the application itself, so a group added later is
checked too; the command names of the public contract (architecture.md) are
listed by ``gridmap --help``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from gridmap.cli import app

#: A CJK ideograph: the zh-CN beside the English.
HAN = re.compile(r"[\u4e00-\u9fff]")
#: The optional heavy packages `gridmap --help` must not need.
HEAVY = (
    "scipy",
    "networkx",
    "pyrosm",
    "ortools",
    "dask",
    "distributed",
    "reportlab",
    "esda",
    "libpysal",
    "spopt",
)
#: Commands and groups other programs rely on (architecture.md, "CLI").
CONTRACT = (
    "init",
    "import",
    "export",
    "grids",
    "patrol",
    "report",
    "demo",
    "serve",
    "users",
    "token",
    "units",
    "workers",
)


def _groups() -> dict[str, Any]:
    """Each group's name → its click group, from the root application."""
    root = typer.main.get_command(app)
    ctx = type(root).context_class(root)
    found = {"": root}
    for name in root.list_commands(ctx):  # type: ignore[attr-defined]
        cmd = root.get_command(ctx, name)  # type: ignore[attr-defined]
        if hasattr(cmd, "list_commands"):
            found[name] = cmd
    return found


GROUPS = _groups()


def test_the_groups_are_found() -> None:
    assert {"import", "export", "grids", "map", "users", "workers", "units", "patrol", "db"} <= set(
        GROUPS
    )


@pytest.mark.parametrize("group", sorted(GROUPS), ids=lambda g: g or "gridmap")
def test_group_help_exits_0_and_speaks_zh_cn(group: str) -> None:
    args = [group, "--help"] if group else ["--help"]
    result = CliRunner().invoke(app, args, prog_name="gridmap", env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert HAN.search(text), text
    cmd = GROUPS[group]
    ctx = type(cmd).context_class(cmd)
    for name in cmd.list_commands(ctx):
        assert re.search(rf"^\s+{re.escape(name)}\b", text, re.M), (name, text)
    usage = f"gridmap {group} [OPTIONS] COMMAND" if group else "gridmap [OPTIONS] COMMAND"
    assert usage in text, text


def test_root_help_lists_the_public_commands() -> None:
    result = CliRunner().invoke(app, ["--help"], prog_name="gridmap", env={"COLUMNS": "200"})
    assert result.exit_code == 0
    listed = set(re.findall(r"^\s{2}([a-z][a-z-]*)\s", result.stdout, re.M))
    assert set(CONTRACT) <= listed, listed
    assert "网格化服务管理" in result.stdout


@pytest.mark.parametrize("group", ["import", "db"])
def test_a_group_without_a_command_is_a_usage_error(group: str) -> None:
    result = CliRunner().invoke(app, [group], prog_name="gridmap")
    assert result.exit_code == 2
    assert "Usage: gridmap" in result.output


def test_help_needs_no_heavy_optional_package() -> None:
    """``python -m gridmap --help`` and every group's help with scipy, ortools, dask … absent."""
    block = f"import sys\nfor name in {HEAVY!r}:\n    sys.modules[name] = None\n"
    main = block + "import runpy\nrunpy.run_module('gridmap', run_name='__main__')\n"
    env = {"COLUMNS": "200", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-c", main, "--help"], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert "Usage: " in proc.stdout and HAN.search(proc.stdout), proc.stdout
    groups = sorted(g for g in GROUPS if g)
    each = block + (
        "from typer.testing import CliRunner\n"
        "from gridmap.cli import app\n"
        f"for group in {groups!r}:\n"
        "    result = CliRunner().invoke(app, [group, '--help'], prog_name='gridmap')\n"
        "    print(group, result.exit_code, len(result.stdout))\n"
    )
    proc = subprocess.run([sys.executable, "-c", each], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    for group, line in zip(groups, lines, strict=False):
        name, code, size = line.split()
        assert (name, code) == (group, "0") and int(size) > 100, line
    assert len(lines) == len(groups), proc.stdout
