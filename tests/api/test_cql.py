"""CQL2 filters on both stores, compared with an independent in-memory evaluation.

Each case pairs a filter (CQL2 text and, for some, CQL2 JSON) with a pandas /
shapely predicate written by hand over the same rows; SQL NULL semantics
(a comparison with NULL is not true) are spelled out in the predicates.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from fastapi.testclient import TestClient

from api.items import layer_filter
from gridmap.common.errors import BadInput
from gridmap.storage import Store
from layers.catalog import CATALOG

Pred = Callable[[gpd.GeoDataFrame], "pd.Series[bool]"]
BOX = shapely.box(24.940, 60.165, 24.948, 60.172)
BOX_WKT = BOX.wkt

BUILDINGS: list[tuple[str, Pred]] = [
    ("floors > 3", lambda d: d.floors > 3),
    ("floors >= 2 AND floors <= 5", lambda d: (d.floors >= 2) & (d.floors <= 5)),
    ("floors BETWEEN 2 AND 5", lambda d: d.floors.between(2, 5)),
    ("NOT (floors < 4)", lambda d: d.floors.notna() & ~(d.floors < 4)),
    ("floors IS NULL", lambda d: d.floors.isna()),
    ("NOT floors IS NULL", lambda d: d.floors.notna()),
    (
        "use IN ('commercial', 'retail', 'office')",
        lambda d: d["use"].isin(["commercial", "retail", "office"]),
    ),
    ("use = 'residential' OR floors = 7", lambda d: (d["use"] == "residential") | (d.floors == 7)),
    (
        "name LIKE 'Hotel%'",
        lambda d: d["name"].fillna("").str.startswith("Hotel") & d["name"].notna(),
    ),
    ("name LIKE '%a_a%'", lambda d: d["name"].fillna("\0").str.contains(r"a.a", regex=True)),
    ("address LIKE '%katu 1_'", lambda d: d["address"].fillna("\0").str.match(r".*katu 1.$")),
    (
        "name = 'it''s; DROP TABLE buildings; --'",
        lambda d: d["name"] == "it's; DROP TABLE buildings; --",
    ),
    ("3 < floors", lambda d: d.floors > 3),
    ("id < 50", lambda d: d["id"] < 50),
    (f"S_INTERSECTS(geometry, {BOX_WKT})", lambda d: d.intersects(BOX)),
    (f"S_WITHIN(geometry, {BOX_WKT})", lambda d: d.within(BOX)),
    ("S_INTERSECTS(geometry, BBOX(24.940, 60.165, 24.948, 60.172))", lambda d: d.intersects(BOX)),
    (
        "S_CONTAINS(geometry, POINT(24.9441 60.1700))",
        lambda d: d.contains(shapely.Point(24.9441, 60.1700)),
    ),
    (
        f"S_INTERSECTS(geometry, {BOX_WKT}) AND floors > 4",
        lambda d: d.intersects(BOX) & (d.floors > 4),
    ),
]

EVENTS: list[tuple[str, Pred]] = [
    (
        "T_AFTER(reported_at, TIMESTAMP('2026-11-15T00:00:00Z'))",
        lambda d: d.reported_at > pd.Timestamp("2026-11-15T00:00:00Z"),
    ),
    (
        "T_BEFORE(reported_at, TIMESTAMP('2026-11-10T08:00:00+08:00'))",
        lambda d: d.reported_at < pd.Timestamp("2026-11-10T00:00:00Z"),
    ),
    (
        "T_DURING(reported_at, INTERVAL('2026-11-05T00:00:00Z', '2026-11-20T00:00:00Z'))",
        lambda d: (
            (d.reported_at > pd.Timestamp("2026-11-05T00:00:00Z"))
            & (d.reported_at < pd.Timestamp("2026-11-20T00:00:00Z"))
        ),
    ),
    (
        "reported_at > TIMESTAMP('2026-11-15T00:00:00Z')",
        lambda d: d.reported_at > pd.Timestamp("2026-11-15T00:00:00Z"),
    ),
    (
        "closed_at IS NULL AND status <> 'closed'",
        lambda d: d.closed_at.isna() & (d.status != "closed"),
    ),
    ("synthetic = true", lambda d: d.synthetic.fillna(False).astype(bool)),
]


def _check(store: Store, layer: str, cases: list[tuple[str, Pred]]) -> list[Any]:
    frame = store.read(layer)
    assert isinstance(frame, gpd.GeoDataFrame)
    wrong = []
    for text, pred in cases:
        flt = layer_filter(CATALOG[layer], text, None, None)
        expected = set(frame.loc[pred(frame).fillna(False).astype(bool), "id"])
        got = set(store.read(layer, cql=flt)["id"])
        if got != expected or store.count(layer, cql=flt) != len(expected):
            wrong.append((text, len(got), len(expected), sorted(got ^ expected)[:5]))
        # The same tree as CQL2 JSON gives the same rows.
        as_json = layer_filter(CATALOG[layer], json.dumps(flt.tree), "cql2-json", None)
        if set(store.read(layer, cql=as_json)["id"]) != expected:
            wrong.append(("json", text))
    return wrong


def test_filters_match_in_memory_evaluation(filled: Store) -> None:
    wrong = _check(filled, "buildings", BUILDINGS) + _check(filled, "events", EVENTS)
    assert not wrong
    # Non-trivial cases: most filters select some rows, but not all.
    frame = filled.read("buildings")
    sizes = [int(p(frame).fillna(False).sum()) for _, p in BUILDINGS]
    assert sum(0 < s < len(frame) for s in sizes) >= 12


BAD = [
    ("floors >", "syntax"),
    ("floors > 'three'", "floors"),
    ("nope = 1", "unknown property"),
    ("reporter = 'x'", "unknown property"),  # personal: never queryable
    ("name = 'unterminated", "syntax"),
    ("name = 'a'' OR 1=1 --", "syntax"),
    ("name = 'a'; DROP TABLE buildings", "syntax"),
    ('"name" = \'x\' OR "1" = "1"', "unknown property"),
    ("floors = floors", "property"),
    ("name LIKE 5", "LIKE"),
    ("S_INTERSECTS(floors, POINT(1 2))", "geometry"),
    ("S_INTERSECTS(geometry, POINT(1000 2))", "outside"),
    ("T_AFTER(name, TIMESTAMP('2026-01-01T00:00:00Z'))", "timestamp"),
    ("floors IN ()", "syntax"),
    ("(" * 200 + "floors > 1" + ")" * 200, "deeper"),
    ("NOT " * 5000 + "floors > 1", "deeper"),
    ("floors = 1 AND " * 3000 + "floors > 1", "__ok__"),
    ("", "empty"),
]


@pytest.mark.parametrize(("text", "fragment"), BAD, ids=range(len(BAD)))
def test_bad_filters_are_bad_input(text: str, fragment: str) -> None:
    if fragment == "__ok__":  # long but flat: accepted
        assert layer_filter(CATALOG["buildings"], text, None, None).properties == {"floors"}
        return
    with pytest.raises(BadInput) as err:
        layer_filter(CATALOG["buildings"], text, None, None)
    assert fragment.lower() in str(err.value).lower()


def test_filter_http(client: TestClient) -> None:
    url = "/collections/buildings/items"
    r = client.get(url, params={"filter": "floors > 3", "limit": 1000})
    assert r.status_code == 200
    assert all(f["properties"]["floors"] > 3 for f in r.json()["features"])
    body = {"op": ">", "args": [{"property": "floors"}, 3]}
    r2 = client.get(
        url, params={"filter": json.dumps(body), "filter-lang": "cql2-json", "limit": 1000}
    )
    assert r2.json()["numberMatched"] == r.json()["numberMatched"]
    deep = "[" * 10_000 + "]" * 10_000
    for params in (
        {"filter": "floors >"},
        {"filter": "floors > 1", "filter-lang": "ecql"},
        {"filter": deep, "filter-lang": "cql2-json"},
        {"filter": '{"op": "=", "args": [', "filter-lang": "cql2-json"},
        {"filter": "floors > 1", "filter-crs": "EPSG:3857"},
        {"filter-lang": "cql2-text"},
    ):
        bad = client.get(url, params=params)
        assert bad.status_code == 400, (params, bad.text)
    # Year 0 parses in pandas but is no Python date: a 400, not a 500.
    for text in (
        "reported_at > TIMESTAMP('0000-01-01T00:00:00Z')",
        "T_BEFORE(reported_at, DATE('0000-01-01'))",
    ):
        bad = client.get("/collections/events/items", params={"filter": text})
        assert bad.status_code == 400 and "0001 to 9999" in bad.text, (text, bad.text)
    classes = client.get("/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter" in classes
