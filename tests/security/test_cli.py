"""``gridmap users …`` and ``gridmap token``: credentials for scripts and tests."""

from __future__ import annotations

from pathlib import Path

import jwt
import pandas as pd
import pytest
from typer.testing import CliRunner

from gridmap.cli import app
from gridmap.security.audit import read_log
from gridmap.security.auth import authenticate, principal_for_api_key
from gridmap.storage import open_store
from tests.security.hierarchy import add_units


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"duckdb:///{tmp_path / 'cli.duckdb'}"
    monkeypatch.setenv("GRIDMAP_DATABASE_URL", url)
    monkeypatch.setenv("GRIDMAP_SECRET_KEY", "cli-secret-" + "x" * 40)
    return url


def test_users_and_tokens(db: str) -> None:
    store = open_store(db, migrate=True)
    add_units(store, grid="990100001001003")
    store.close()
    runner = CliRunner()
    r = runner.invoke(
        app,
        [
            "users",
            "add",
            "wang",
            "--role",
            "grid_worker",
            "--area",
            "990100001001003",
            "--password-stdin",
        ],
        input="a long enough password\n",
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["users", "add", "hotline", "--role", "external_system"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["users", "list"])
    assert r.exit_code == 0 and "wang" in r.output and "hotline" in r.output
    assert "argon2" not in r.output

    r = runner.invoke(app, ["token", "wang", "--expires-minutes", "5"])
    assert r.exit_code == 0, r.output
    claims = jwt.decode(
        r.stdout.strip(), "cli-secret-" + "x" * 40, algorithms=["HS256"], audience="gridmap-api"
    )
    assert claims["sub"] == "wang" and claims["areas"] == ["990100001001003"]
    assert claims["exp"] - claims["iat"] == 300

    r = runner.invoke(app, ["users", "api-key", "hotline"])
    assert r.exit_code == 0
    key = r.stdout.strip()
    store = open_store(db)
    try:
        assert principal_for_api_key(store, key).name == "hotline"
        assert authenticate(store, "wang", "a long enough password").role == "grid_worker"
        assert key not in store.read("users").to_string()
        actions = set(read_log(store)["action"])
        assert {"user.add", "token.issue", "api_key.issue"} <= actions
    finally:
        store.close()

    r = runner.invoke(app, ["users", "disable", "wang"])
    assert r.exit_code == 0
    r = runner.invoke(app, ["token", "wang"])
    assert r.exit_code == 1


@pytest.mark.parametrize(
    "args",
    [
        ["users", "add", "li", "--role", "grid_worker"],  # needs an area
        ["users", "add", "li", "--role", "wizard"],
        ["users", "add", "li", "--role", "viewer", "--area", "12ab"],
        ["users", "add", "li", "--role", "viewer", "--unmask"],
        ["users", "add", "li", "--role", "grid_worker", "--area", "999999999999999"],
        ["users", "add", "li", "--role", "town_coordinator", "--area", "990100001"],
        ["users", "add", "bad name!", "--role", "viewer"],
        ["token", "nobody"],
        ["users", "api-key", "nobody"],
    ],
)
def test_cli_bad_input(db: str, args: list[str]) -> None:
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 1, r.output


def test_duplicate_user(db: str) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["users", "add", "zhao", "--role", "viewer"]).exit_code == 0
    r = runner.invoke(app, ["users", "add", "zhao", "--role", "viewer"])
    assert r.exit_code == 1 and "already exists" in r.output


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".gpkg"])
def test_export_layer_users_writes_no_secrets(db: str, tmp_path: Path, suffix: str) -> None:
    """Issue 25: ``gridmap export layer users`` wrote the password and API-key hashes."""
    runner = CliRunner()
    r = runner.invoke(
        app,
        ["users", "add", "zhao", "--role", "city_admin", "--password-stdin"],
        input="a long enough password\n",
    )
    assert r.exit_code == 0, r.output
    assert runner.invoke(app, ["users", "api-key", "zhao"]).exit_code == 0
    out = tmp_path / f"users{suffix}"
    r = runner.invoke(app, ["export", "layer", "users", "--out", str(out)])
    assert r.exit_code == 0, r.output
    raw = out.read_bytes()
    assert b"zhao" in raw or suffix != ".csv"
    assert b"argon2" not in raw and b"password_hash" not in raw and b"api_key_hash" not in raw
    if suffix == ".parquet":
        frame = pd.read_parquet(out)
        assert frame["name"].tolist() == ["zhao"]
        assert not {"password_hash", "api_key_hash"} & set(frame.columns)
