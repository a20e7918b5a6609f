"""The one settings tree (gridmap.common.settings): names, errors, sharing, no stray reads."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
from pydantic import ValidationError

from api.deps import SettingsDep, get_settings
from api.main import create_app
from gridmap.analytics.heat import heatmap_cells
from gridmap.cli.common import cli_settings
from gridmap.common.errors import BadInput
from gridmap.common.settings import (
    DEFAULT_MIN_COUNT,
    MapSettings,
    PrivacySettings,
    SecuritySettings,
    Settings,
    StoreSettings,
    ToolSettings,
    WebhookSettings,
)
from gridmap.storage import open_store

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[2]

#: The variables of the README's table before the tree: a public contract, unchanged.
CONTRACT = [
    "GRIDMAP_DATABASE_URL",
    "GRIDMAP_MAX_LIMIT",
    "GRIDMAP_DEFAULT_LIMIT",
    "GRIDMAP_ASSETS_DIR",
    "GRIDMAP_SECRET_KEY",
    "GRIDMAP_DATA_KEY",
    "GRIDMAP_ENVIRONMENT",
    "GRIDMAP_TOKEN_MINUTES",
    "GRIDMAP_SESSION_MINUTES",
    "GRIDMAP_JWT_ISSUER",
    "GRIDMAP_JWT_AUDIENCE",
    "GRIDMAP_LOGIN_PER_MINUTE",
    "GRIDMAP_LOGIN_BURST",
    "GRIDMAP_REPORTS_PER_MINUTE",
    "GRIDMAP_REPORTS_BURST",
    "GRIDMAP_PRINCIPAL_CACHE_SECONDS",
    "GRIDMAP_CSP",
    "GRIDMAP_HSTS",
    "GRIDMAP_CORS_ORIGINS",
    "GRIDMAP_MAX_BODY_BYTES",
    "GRIDMAP_MAX_PHOTO_BYTES",
    "GRIDMAP_TAXONOMY_FILE",
    "GRIDMAP_RULES_FILE",
    "GRIDMAP_OBSERVED_MAX_AGE_HOURS",
    "GRIDMAP_EDGE_TOLERANCE_M",
    "GRIDMAP_STATEMENT_TIMEOUT_MS",
    "GRIDMAP_MEDIA_DIR",
    "GRIDMAP_TILES_URL",
    "GRIDMAP_TILES_ATTRIBUTION",
    "GRIDMAP_BASEMAP_CRS",
    "GRIDMAP_TIME_ZONE",
    "GRIDMAP_LOG_FORMAT",
    "GRIDMAP_LOG_LEVEL",
    "GRIDMAP_PDF_FONT",
    "GRIDMAP_PG_BIN",
    "GRIDMAP_DASK_SCHEDULER",
    "GRIDMAP_OPEN311_JURISDICTION_ID",
    "GRIDMAP_OPEN311_CONTACT",
    "GRIDMAP_OPEN311_KEY_SERVICE",
    "GRIDMAP_WEBHOOK_ENABLED",
    "GRIDMAP_WEBHOOK_MAX_ATTEMPTS",
    "GRIDMAP_WEBHOOK_BACKOFF_S",
    "GRIDMAP_WEBHOOK_MAX_BACKOFF_S",
    "GRIDMAP_WEBHOOK_TIMEOUT_S",
    "GRIDMAP_WEBHOOK_POLL_S",
    "GRIDMAP_WEBHOOK_OVERDUE_S",
    "GRIDMAP_WEBHOOK_ALLOW_PRIVATE_HOSTS",
]


def test_every_variable_keeps_its_name() -> None:
    names = Settings.all_variables()
    assert len(names) == len(set(names))  # no variable read by two fields
    assert sorted(set(CONTRACT) - set(names)) == []
    assert sorted(set(names) - set(CONTRACT)) == ["GRIDMAP_PRIVACY_MIN_COUNT"]


def test_sections_read_their_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GRIDMAP_DATABASE_URL", f"duckdb:///{tmp_path / 'x.duckdb'}")
    monkeypatch.setenv("GRIDMAP_PRIVACY_MIN_COUNT", "5")
    monkeypatch.setenv("GRIDMAP_WEBHOOK_ENABLED", "false")
    monkeypatch.setenv("GRIDMAP_OPEN311_JURISDICTION_ID", "370285")
    monkeypatch.setenv("GRIDMAP_PG_BIN", str(tmp_path))
    monkeypatch.setenv("GRIDMAP_ASSETS_DIR", str(tmp_path))
    monkeypatch.setenv("GRIDMAP_MAX_LIMIT", "500")
    s = Settings()
    assert s.store.database_url.endswith("x.duckdb") and s.max_limit == 500
    assert s.privacy.min_count == 5 and s.webhooks.enabled is False
    assert s.open311.jurisdiction_id == "370285"
    assert s.tools.pg_bin == tmp_path and s.maps.assets_dir == tmp_path
    # A section given explicitly wins; the others still come from the environment.
    t = Settings(privacy=PrivacySettings(min_count=9))
    assert t.privacy.min_count == 9 and t.max_limit == 500


def test_defaults_without_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GRIDMAP_PRIVACY_MIN_COUNT", raising=False)
    # The small-count threshold: one default, the heat maps' own.
    assert PrivacySettings().min_count == DEFAULT_MIN_COUNT == 3
    assert heatmap_cells.__kwdefaults__["min_count"] == DEFAULT_MIN_COUNT
    assert StoreSettings(database_url="x").statement_timeout_ms == 15_000
    assert WebhookSettings(max_attempts=3).options().max_attempts == 3
    assert ToolSettings(pg_bin="/opt/pg").pg_bin == Path("/opt/pg")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("GRIDMAP_MAX_LIMIT", "lots"),
        ("GRIDMAP_PRIVACY_MIN_COUNT", "0"),
        ("GRIDMAP_STATEMENT_TIMEOUT_MS", "-1"),
        ("GRIDMAP_WEBHOOK_MAX_ATTEMPTS", "twelve"),
        ("GRIDMAP_BASEMAP_CRS", "bd09"),
        ("GRIDMAP_TIME_ZONE", "Mars/Olympus"),
        ("GRIDMAP_TOKEN_MINUTES", "0"),
    ],
)
def test_errors_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as err:
        Settings()
    assert variable in str(err.value)


def test_errors_never_echo_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDMAP_ENVIRONMENT", "production")
    monkeypatch.setenv("GRIDMAP_SECRET_KEY", "hunter2-hunter2")
    with pytest.raises(ValidationError) as err:
        Settings()
    text = str(err.value)
    assert "GRIDMAP_SECRET_KEY" in text and "hunter2" not in text


def test_checks_over_several_fields_name_the_variables() -> None:
    with pytest.raises(ValidationError, match="GRIDMAP_TILES_ATTRIBUTION"):
        MapSettings(tiles_url="https://tiles.intra/{z}/{x}/{y}.png")
    with pytest.raises(ValidationError, match="GRIDMAP_DEFAULT_LIMIT"):
        Settings(default_limit=50, max_limit=10)
    assert SecuritySettings.variable("data_key") == "GRIDMAP_DATA_KEY"


def test_cli_and_api_share_the_tree(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDMAP_PRIVACY_MIN_COUNT", "7")
    cli = cli_settings()
    assert isinstance(cli, Settings) and cli.privacy.min_count == 7
    store = open_store(":memory:", migrate=True)
    try:
        tree = Settings(store=StoreSettings(database_url=":memory:"))
        app = create_app(tree, store=store)

        @app.get("/_probe")
        def probe(settings: SettingsDep) -> dict[str, int]:
            return {"min_count": settings.privacy.min_count, "max_limit": settings.max_limit}

        with TestClient(app) as client:
            assert client.get("/_probe").json() == {"min_count": 7, "max_limit": 10_000}
            app.dependency_overrides[get_settings] = lambda: Settings(max_limit=200)
            assert client.get("/_probe").json() == {"min_count": 7, "max_limit": 200}
    finally:
        store.close()
    monkeypatch.setenv("GRIDMAP_PRIVACY_MIN_COUNT", "none")
    with pytest.raises(BadInput, match="GRIDMAP_PRIVACY_MIN_COUNT"):
        cli_settings()


#: Reading the environment: os.environ / os.getenv / environ.get, click's envvar=.
_READ = re.compile(r"\bgetenv\b|\benviron\b|\benvvar\s*=")
#: Setting a variable for child processes (uvicorn workers, postgres), which is allowed.
_SET = re.compile(r"os\.environ\[[^\]]+\]\s*=[^=]")


def test_nothing_reads_the_environment_outside_the_settings_module() -> None:
    allowed = {ROOT / "gridmap" / "common" / "settings.py"}
    found = []
    for package in ("gridmap", "api", "layers"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path in allowed:
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if _READ.search(line) and not _SET.search(line):
                    found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == [], "\n".join(found)
