"""``gridmap.cli.common.open_store``: the one way commands open, guard and close the store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import typer

from gridmap.cli.common import DOMAIN_ERROR_EXIT, open_store
from gridmap.common.errors import BadInput

OPEN_ELSEWHERE = "import duckdb, sys; duckdb.connect(sys.argv[1]).close()"


def _other_process_opens(path: Path) -> bool:
    """May another process open the DuckDB file for writing (nobody holds it)?"""
    proc = subprocess.run(
        [sys.executable, "-c", OPEN_ELSEWHERE, str(path)], capture_output=True, check=False
    )
    return proc.returncode == 0


def test_the_store_is_open_in_the_block_and_closed_after(tmp_path: Path) -> None:
    path = tmp_path / "gridmap.duckdb"
    with open_store(f"duckdb:///{path}") as store:
        assert store.schema_version() > 0  # migrated on opening
        assert not _other_process_opens(path)  # this process holds the file
    assert _other_process_opens(path)


def test_a_domain_error_is_one_line_exit_1_and_the_store_is_closed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "gridmap.duckdb"
    with pytest.raises(typer.Exit) as stopped, open_store(f"duckdb:///{path}") as store:
        store.count("grids")
        raise BadInput("grid code must be 15 digits", field="grid")
    assert stopped.value.exit_code == DOMAIN_ERROR_EXIT == 1
    err = capsys.readouterr().err
    assert "error: grid code must be 15 digits" in err and "Traceback" not in err
    assert _other_process_opens(path)


def test_read_only_opens_a_missing_file_for_writing_and_reads_share_it(tmp_path: Path) -> None:
    path = tmp_path / "new.duckdb"
    with open_store(f"duckdb:///{path}", read_only=True) as store:  # no file yet: created
        version = store.schema_version()
    assert path.exists() and version > 0
    with (
        open_store(str(path), read_only=True) as first,
        open_store(str(path), read_only=True) as second,
    ):
        assert first.count("grids") == second.count("grids") == 0


def test_a_file_that_is_no_database_is_a_domain_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "notes.duckdb"
    path.write_text("not a database", encoding="utf-8")
    with pytest.raises(typer.Exit) as stopped, open_store(str(path)):
        pass
    assert stopped.value.exit_code == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and "gridmap db check" in err
    assert path.read_text(encoding="utf-8") == "not a database"  # left as it was
