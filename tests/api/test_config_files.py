"""Event taxonomy and assessment rules from files (GRIDMAP_TAXONOMY_FILE, GRIDMAP_RULES_FILE).

A taxonomy file that adds a category (噪音扰民, noise) makes it a service of
Open311, a choice of the field app's category picker and a row of the KPIs;
a broken file stops the start with an error naming the file and the key.
The grids are the demo's (real Helsinki streets); events are SYNTHETIC.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.main import create_app
from api.settings import Settings
from gridmap.assessment.rules import default_rules, load_rules
from gridmap.cli import app as cli
from gridmap.common.configfiles import ConfigError, shipped
from gridmap.common.settings import ReportSettings, StoreSettings
from gridmap.events.taxonomy import default_taxonomy, load_taxonomy
from gridmap.security.access import Principal
from gridmap.storage import Store, open_store
from tests.api.events_app import TestClient, events_app, map_event_errors
from tests.events_world import make_world

ADMIN = Principal("admin", "city_admin", ("",))
NOISE = """
[categories.noise]
zh = "噪音扰民"
en = "Noise nuisance"
responsible = "城管执法中队 Urban management"
kinds = ["event", "help_request"]
limits = { scale = 0.5, total_hours = { normal = 48 } }

[categories.noise.subcategories.night_works]
zh = "夜间施工"
en = "Night-time works"
"""


def taxonomy_file(folder: Path) -> Path:
    """The shipped taxonomy plus a noise category."""
    path = folder / "taxonomy.toml"
    shutil.copyfile(shipped("taxonomy.toml"), path)
    with path.open("a", encoding="utf-8") as f:
        f.write(NOISE)
    return path


def test_shipped_files_are_the_defaults() -> None:
    assert load_taxonomy(shipped("taxonomy.toml")) == default_taxonomy()
    assert load_rules(shipped("rules.toml")) == default_rules()
    assert len(default_taxonomy().categories) == 7


@pytest.mark.timeout(300)
def test_taxonomy_file_adds_a_category_everywhere(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    map_event_errors(monkeypatch)
    world = make_world(store)
    application = events_app(
        store, principal=ADMIN, media_dir=tmp_path / "media", taxonomy_file=taxonomy_file(tmp_path)
    )
    with TestClient(application) as client:
        services = client.get("/open311/v2/services.json").json()
        codes = {s["service_code"] for s in services}
        assert {"noise", "noise.night_works", "dispute"} <= codes
        page = client.get("/app/")
        assert page.status_code == 200 and "噪音扰民" in page.text and "night_works" in page.text
        body = world.body(3, category="noise", subcategory="night_works")
        made = client.post("/events", json=body, headers={"Idempotency-Key": "noise-1"})
        assert made.status_code == 201, made.text
        assert made.json()["category"] == "noise"
        kpis = client.get("/kpis", params={"by": "category"}).json()
        rows = kpis.get("rows", kpis.get("kpis", kpis))
        cats = {r["category"]: r for r in rows}
        assert cats["noise"]["reported"] == 1
        unknown = client.post("/events", json=world.body(3, category="karaoke"))
        assert unknown.status_code in (400, 422) and "karaoke" in unknown.text


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('[categories.noise]\nzh = "噪音"\nen = "Noise"\n', "categories.noise.responsible"),
        (
            '[categories.noise]\nzh = "噪音"\nen = "Noise"\nresponsible = "x"\nkinds = ["evnt"]\n',
            "unknown kind 'evnt'",
        ),
        (
            '[categories.Noise]\nzh = "噪音"\nen = "Noise"\nresponsible = "x"\n',
            "category code 'Noise'",
        ),
        (
            '[categories.noise]\nzh = "噪音"\nen = "Noise"\nresponsible = "x"\n'
            '[categories.noise.subcategories.Loud]\nzh = "大声"\nen = "Loud"\n',
            "subcategory code 'Loud'",
        ),
        (
            '[categories.noise]\nzh = "噪音"\nen = "N"\nresponsible = "x"\n'
            "limits = { step_hours = { handeling = 3 } }\n",
            "unknown state 'handeling'",
        ),
        ("[categories.noise\n", "syntax error"),
        ("colour = 1\n", "categories: Field required"),
    ],
)
def test_broken_taxonomy_stops_the_start(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "tax.toml"
    path.write_text(text, encoding="utf-8")
    s = open_store(":memory:", migrate=True)
    try:
        with pytest.raises(ConfigError, match="taxonomy file") as err:
            create_app(
                Settings(store=StoreSettings(database_url=":memory:"), taxonomy_file=path), store=s
            )
    finally:
        s.close()
    assert problem in err.value.message and str(path) in err.value.message


def test_rules_file_for_report(tmp_path: Path) -> None:
    text = shipped("rules.toml").read_text(encoding="utf-8")
    stricter = text.replace("min_percent = 95.0", "min_percent = 98.0", 1)
    good = tmp_path / "rules.toml"
    good.write_text(stricter, encoding="utf-8")
    assert load_rules(good).indicator("patrol_coverage").bands[0].min_percent == 98.0
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("weight = 25.0", "weight = 30.0", 1), encoding="utf-8")
    with pytest.raises(ConfigError, match="weights must sum to 100"):
        load_rules(bad)
    s = open_store(":memory:", migrate=True)
    try:
        with pytest.raises(ConfigError, match="rules file"):
            settings = Settings(
                store=StoreSettings(database_url=":memory:"),
                reports=ReportSettings(rules_file=bad),
            )
            create_app(settings, store=s)
    finally:
        s.close()
    url = f"duckdb:///{tmp_path / 'g.duckdb'}"
    open_store(url, migrate=True).close()
    runner = CliRunner()
    args = ["report", "--area", "370285", "--from", "2026-11-01", "--to", "2026-12-01"]
    res = runner.invoke(
        cli, [*args, "--out", str(tmp_path / "r.json"), "--rules", str(bad), "--database-url", url]
    )
    assert res.exit_code == 1 and "weights must sum to 100" in res.output
    res = runner.invoke(
        cli,
        [*args, "--out", str(tmp_path / "r.json"), "--database-url", url],
        env={"GRIDMAP_RULES_FILE": str(tmp_path / "missing.toml")},
    )
    assert res.exit_code == 1 and "no such file" in res.output
