"""OGC API Features over both stores (DuckDB and a real PostGIS), with real Helsinki data."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest
import shapely
from fastapi.testclient import TestClient  # conftest.py imported it first (see there)
from shapely.geometry import shape

from gridmap.common.model import LAYERS
from gridmap.storage import Store
from layers.catalog import CATALOG

#: Layers with geometry that the catalog publishes to someone (patrol_tracks never is).
PUBLISHED = {n for n, s in LAYERS.items() if s.geometry_type is not None and CATALOG[n].visible_to}
CORE = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core"


def _walk(client: TestClient, url: str) -> list[dict[str, Any]]:
    """All features reachable from *url* by following ``next`` links."""
    features: list[dict[str, Any]] = []
    pages = 0
    while url:
        r = client.get(url)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/geo+json"
        doc = r.json()
        assert doc["numberReturned"] == len(doc["features"])
        features += doc["features"]
        nxt = [link["href"] for link in doc["links"] if link["rel"] == "next"]
        url = nxt[0] if nxt else ""
        pages += 1
        assert pages < 1000
    return features


def test_landing_page_links_resolve(client: TestClient) -> None:
    doc = client.get("/").json()
    rels = {link["rel"]: link for link in doc["links"]}
    assert {"self", "service-desc", "service-doc", "conformance", "data"} <= set(rels)
    assert rels["service-desc"]["type"] == "application/vnd.oai.openapi+json;version=3.0"
    for link in doc["links"]:
        assert client.get(link["href"]).status_code == 200, link
    assert "swagger" in client.get("/docs").text.lower()


def test_conformance(client: TestClient) -> None:
    classes = client.get("/conformance").json()["conformsTo"]
    assert CORE in classes
    assert any(c.endswith("/conf/geojson") for c in classes)
    assert any(c.endswith("/conf/oas30") for c in classes)


def test_collections_describe_every_spatial_layer(client: TestClient, filled: Store) -> None:
    doc = client.get("/collections").json()
    described = {c["id"]: c for c in doc["collections"]}
    assert set(described) == PUBLISHED
    assert "workers" not in described
    for name, c in described.items():
        schema = LAYERS[name]
        assert c["itemType"] == "feature"
        assert c["crs"][0] == "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
        assert "http://www.opengis.net/def/crs/EPSG/0/4490" in c["crs"]
        assert schema.title_zh in c["title"] and schema.title_en in c["title"]
        assert any(link["rel"] == "items" for link in c["links"])
        assert client.get(f"/collections/{name}").json() == c
        bounds = filled.bounds(name)
        if bounds is None:
            assert "spatial" not in c.get("extent", {})
        else:
            assert c["extent"]["spatial"]["bbox"][0] == pytest.approx(list(bounds))
    events = filled.read("events")
    interval = described["events"]["extent"]["temporal"]["interval"][0]
    assert pd.Timestamp(interval[0]) == events["reported_at"].min()
    assert pd.Timestamp(interval[1]) == events["reported_at"].max()
    # a grid still valid today leaves the temporal extent open at its end
    assert described["grids"]["extent"]["temporal"]["interval"][0] == ["2025-01-01T00:00:00Z", None]
    assert "temporal" not in described["buildings"].get("extent", {})


def test_anonymous_callers_see_no_events_and_no_personal_fields(
    anonymous: TestClient, client: TestClient
) -> None:
    listed = {c["id"] for c in anonymous.get("/collections").json()["collections"]}
    assert "events" not in listed and {"buildings", "roads", "grids"} <= listed
    for path in ("", "/items", "/items/1", "/queryables"):
        r = anonymous.get(f"/collections/events{path}")
        assert r.status_code == 404 and "not visible" in r.json()["description"]
    grid = anonymous.get("/collections/grids/items").json()["features"][0]["properties"]
    assert "workers" not in grid and "households" in grid
    route = anonymous.get("/collections/patrol_routes/items/1").json()["properties"]
    assert "worker" not in route and "route_date" in route
    staff = client.get("/collections/events/items?limit=1").json()["features"][0]["properties"]
    # masked as /events masks it (issue 25): "居民1" -> "居**"
    assert staff["reporter"][0] == "居" and set(staff["reporter"][1:]) == {"*"}
    assert "reporter" not in client.get("/collections/events/queryables").json()["properties"]


def test_unknown_collection_is_404(client: TestClient) -> None:
    for name in ["workers", "nope", "BUILDINGS", "x" * 10_000, "buildings;DROP", "%F0%A0%AE%B7"]:
        for path in ("", "/items", "/items/1", "/queryables"):
            r = client.get(f"/collections/{name}{path}")
            assert r.status_code == 404, (name[:20], path, r.text[:200])
            body = r.json()
            assert body["code"] == "unknown_layer" and len(body["description"]) < 300


def test_paging_walks_every_feature_once(client: TestClient, filled: Store) -> None:
    features = _walk(client, "/collections/roads/items?limit=700")
    ids = [f["id"] for f in features]
    stored = filled.read("roads")
    assert len(ids) == len(set(ids)) == len(stored) == 2321
    assert ids == sorted(ids) == stored["id"].tolist()
    by_id = dict(zip(stored["id"], stored.geometry, strict=True))
    for f in features[::50]:
        assert shapely.equals_exact(shape(f["geometry"]), by_id[f["id"]], 0)


def test_page_links_counts_and_prev(client: TestClient) -> None:
    doc = client.get("/collections/buildings/items?limit=100&offset=200").json()
    assert doc["numberMatched"] == 486 and doc["numberReturned"] == 100
    links = {link["rel"]: link["href"] for link in doc["links"]}
    assert "offset=300" in links["next"] and "limit=100" in links["next"]
    assert "offset=100" in links["prev"]
    assert links["self"].endswith("/collections/buildings/items?limit=100&offset=200")
    pd.Timestamp(doc["timeStamp"])  # parses
    last = client.get("/collections/buildings/items?limit=100&offset=400").json()
    assert last["numberReturned"] == 86
    assert "next" not in {link["rel"] for link in last["links"]}
    beyond = client.get("/collections/buildings/items?offset=99999999999999999999999").json()
    assert beyond["numberReturned"] == 0 and beyond["numberMatched"] == 486
    assert client.get("/collections/buildings/items").json()["numberReturned"] == 100


def test_limit_above_maximum_is_clamped(filled: Store, make_app: Any) -> None:
    app = make_app(filled, max_limit=50, default_limit=20)
    with TestClient(app) as c:
        doc = c.get("/collections/roads/items?limit=10001").json()
        assert doc["numberReturned"] == 50
        nxt = next(link["href"] for link in doc["links"] if link["rel"] == "next")
        assert "limit=50" in nxt and "offset=50" in nxt
        assert c.get("/collections/roads/items").json()["numberReturned"] == 20
        api = c.get("/api").json()
        params = api["paths"]["/collections/{layer}/items"]["get"]["parameters"]
        limit = next(p for p in params if p["name"] == "limit")
        assert limit["schema"] == {"type": "integer", "minimum": 1, "maximum": 50, "default": 20}


BBOXES = [
    (24.940, 60.165, 24.945, 60.170),
    (24.9452, 60.1701, 24.9458, 60.1716),  # small: diagonal lines whose envelopes meet it
    (24.9, 60.1, 25.0, 60.2),
    (0.0, 0.0, 1.0, 1.0),
]
#: Zero-area boxes: a point and a vertical line inside real buildings.
DEGENERATE = [(24.9448, 60.1692, 24.9448, 60.1692), (24.9448, 60.1690, 24.9448, 60.1692)]


def test_bbox_equals_brute_force(client: TestClient, filled: Store) -> None:
    checked = 0
    for layer in ("buildings", "roads", "events"):
        stored = filled.read(layer)
        for bbox in BBOXES:
            url = f"/collections/{layer}/items?limit=400&bbox={','.join(map(str, bbox))}"
            got = [f["id"] for f in _walk(client, url)]
            hit = shapely.intersects(stored.geometry.values, shapely.box(*bbox))
            assert got == sorted(stored.loc[hit, "id"]), (layer, bbox)
            checked += len(got)
    assert checked > 3000


def test_zero_area_bbox(client: TestClient, filled: Store) -> None:
    stored = filled.read("buildings")
    for bbox in DEGENERATE:
        got = [
            f["id"]
            for f in _walk(client, f"/collections/buildings/items?bbox={','.join(map(str, bbox))}")
        ]
        expected = sorted(
            stored.loc[shapely.intersects(stored.geometry.values, shapely.box(*bbox)), "id"]
        )
        assert expected
        assert got == expected, bbox


def test_features_equal_the_store(client: TestClient, filled: Store) -> None:
    features = {f["id"]: f for f in _walk(client, "/collections/buildings/items?limit=10000")}
    stored = filled.read("buildings")
    assert set(features) == set(stored["id"])
    for row in stored.itertuples():
        f = features[row.id]
        assert f["type"] == "Feature"
        assert shapely.equals_exact(shape(f["geometry"]), row.geometry, 0)
        assert f["properties"]["source_id"] == row.source_id
        assert f["properties"]["floors"] == (None if pd.isna(row.floors) else int(row.floors))


def test_json_safe_properties(client: TestClient, filled: Store) -> None:
    r = client.get("/collections/events/items?limit=10000")
    doc = json.loads(r.content)  # strict JSON: no NaN/Infinity
    props = [f["properties"] for f in doc["features"]]
    assert all(p["reported_at"].endswith("Z") for p in props)
    assert any(p["closed_at"] is None for p in props)
    assert all(p["synthetic"] is True for p in props)
    assert "<img src=x onerror=alert(1)>" in props[0]["description"]  # JSON keeps text as is
    grids = client.get("/collections/grids/items").json()["features"]
    by_code = {f["properties"]["code"]: f["properties"] for f in grids}
    assert by_code["990100001001001"]["workers"] == ["张三", "李四"]
    assert by_code["990100001001003"]["workers"] is None
    assert by_code["990100001001002"]["households"] is None
    routes = client.get("/collections/patrol_routes/items").json()["features"]
    assert routes[0]["properties"]["route_date"] == "2026-11-01"


def test_single_feature(client: TestClient, filled: Store) -> None:
    row = filled.read("events", limit=1, offset=7)
    fid = int(row["id"].iloc[0])
    r = client.get(f"/collections/events/items/{fid}")
    assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json"
    f = r.json()
    assert f["id"] == fid and f["type"] == "Feature"
    assert shapely.equals_exact(shape(f["geometry"]), row.geometry.iloc[0], 0)
    rels = {link["rel"]: link["href"] for link in f["links"]}
    assert rels["self"].endswith(f"/collections/events/items/{fid}")
    assert rels["collection"].endswith("/collections/events")
    assert client.get(rels["self"]).json() == f


def _count(client: TestClient, layer: str, when: str) -> int:
    r = client.get(f"/collections/{layer}/items", params={"datetime": when, "limit": 10000})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["numberMatched"] == doc["numberReturned"]
    return int(doc["numberMatched"])


DATETIMES = [
    (
        "2026-11-10T00:00:00+08:00/2026-11-20T00:00:00+08:00",
        "2026-11-09T16:00Z",
        "2026-11-19T16:00Z",
    ),
    ("../2026-11-05T12:00:00Z", None, "2026-11-05T12:00Z"),
    ("2026-11-25T00:00:00.5Z/..", "2026-11-25T00:00:00.5Z", None),
    ("2026-11-25T00:00:00Z/", "2026-11-25T00:00Z", None),
    (
        "2026-11-25t00:00:00z/2026-11-26T08:00:00.123456789+08:00",
        "2026-11-25T00:00Z",
        "2026-11-26T00:00:00.123456Z",
    ),
]


def test_datetime_on_events_equals_brute_force(client: TestClient, filled: Store) -> None:
    t = filled.read("events")["reported_at"]
    for when, lo, hi in DATETIMES:
        mask = pd.Series(True, index=t.index)
        if lo:
            mask &= t >= pd.Timestamp(lo)
        if hi:
            mask &= t <= pd.Timestamp(hi)
        assert 0 < mask.sum() < len(t)
        assert _count(client, "events", when) == mask.sum(), when


def test_datetime_instant_paging_and_other_layers(client: TestClient, filled: Store) -> None:
    first = filled.read("events").sort_values("reported_at").iloc[0]
    instant = first["reported_at"].isoformat()
    assert _count(client, "events", instant) >= 1
    # paging a datetime query keeps the filter and exact counts
    when = "2026-11-10T00:00:00Z/.."
    feats = _walk(client, f"/collections/events/items?limit=17&datetime={when}")
    assert len(feats) == _count(client, "events", when) == len({f["id"] for f in feats})
    assert all(f["properties"]["reported_at"] >= "2026-11-10T00:00:00Z" for f in feats)
    far = client.get(f"/collections/events/items?datetime={when}&offset={10**23}").json()
    assert far["numberReturned"] == 0 and far["numberMatched"] == len(feats)
    # validity periods: grid 1 valid 2025, grids 2 and 3 from 2026 on
    assert _count(client, "grids", "2025-06-01T00:00:00Z") == 1
    assert _count(client, "grids", "2026-07-01T00:00:00Z") == 2
    assert _count(client, "grids", "2025-12-31T00:00:00Z/2026-01-01T00:00:00Z") == 2
    # dates cover their whole (UTC) day
    assert _count(client, "patrol_routes", "2026-11-02T12:00:00Z") == 2
    assert _count(client, "patrol_routes", "2026-11-02T23:00:00Z/2026-11-03T01:00:00Z") == 3


def test_queryables_is_a_json_schema(client: TestClient) -> None:
    from jsonschema import Draft202012Validator

    for name in PUBLISHED:
        r = client.get(f"/collections/{name}/queryables")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/schema+json")
        doc = r.json()
        Draft202012Validator.check_schema(doc)
        assert doc["$id"].endswith(f"/collections/{name}/queryables")
        assert doc["type"] == "object"
        assert set(doc["properties"]) == {"geometry", *CATALOG[name].queryables_for("city_admin")}
        assert all("title" in p for p in doc["properties"].values())
    events = client.get("/collections/events/queryables").json()["properties"]
    assert events["reported_at"] == {
        "title": "上报时间 Reported at",
        "type": "string",
        "format": "date-time",
        "x-ogc-role": "primary-instant",
    }


def _null_types(node: Any) -> int:
    if isinstance(node, dict):
        here = int(node.get("type") == "null" or isinstance(node.get("type"), list))
        return here + sum(_null_types(v) for v in node.values())
    if isinstance(node, list):
        return sum(_null_types(v) for v in node)
    return 0


def test_api_document_is_openapi_30(client: TestClient) -> None:
    r = client.get("/api")
    assert r.headers["content-type"] == "application/vnd.oai.openapi+json;version=3.0"
    doc = r.json()
    assert doc["openapi"].startswith("3.0.")
    assert {
        "/",
        "/conformance",
        "/collections",
        "/collections/{layer}",
        "/collections/{layer}/items",
        "/collections/{layer}/items/{item_id}",
        "/collections/{layer}/queryables",
    } <= set(doc["paths"])
    assert _null_types(doc) == 0
    items = doc["paths"]["/collections/{layer}/items"]["get"]
    assert {p["name"] for p in items["parameters"]} >= {"bbox", "datetime", "limit", "offset"}
    assert "application/geo+json" in items["responses"]["200"]["content"]
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(doc)


def test_queryables_as_query_parameters(client: TestClient, anonymous: TestClient) -> None:
    def ids(c: TestClient, **params: str) -> list[int]:
        r = c.get("/collections/" + params.pop("layer") + "/items", params=params)
        assert r.status_code == 200, (params, r.text)
        return [f["id"] for f in r.json()["features"]]

    for layer, params, cql in [
        ("buildings", {"floors": "5"}, "floors = 5"),
        ("buildings", {"use": "apartments", "floors": "6"}, "use = 'apartments' AND floors = 6"),
        ("roads", {"walkable": "true", "class": "steps"}, "walkable = true AND class = 'steps'"),
        ("grids", {"code": "990100001001002"}, "code = '990100001001002'"),
        (
            "events",
            {"category": "dispute", "status": "closed"},
            "category = 'dispute' AND status = 'closed'",
        ),
    ]:
        got = ids(client, layer=layer, limit="10000", **params)
        assert got and got == ids(client, layer=layer, limit="10000", filter=cql), params
        both = ids(client, layer=layer, limit="10000", filter="id > 100", **params)
        assert both == [i for i in got if i > 100]
    for layer, params in [
        ("buildings", {"floors": "five"}),
        ("buildings", {"floors": "1e400"}),
        ("roads", {"walkable": "yes"}),
        ("grids", {"valid_from": "2025-01-01"}),  # no time zone
        ("events", {"reporter": "居民1"}),  # personal: never a queryable
        ("buildings", {"floors": "5", "Floors": "5"}),
        ("buildings", {"geometry": "POINT(1 2)"}),
    ]:
        r = client.get(f"/collections/{layer}/items", params=params)
        assert r.status_code == 400, (params, r.text)
    assert client.get("/collections/buildings/items?floors=5&floors=6").status_code == 400
    grid = ids(anonymous, layer="grids", valid_from="2026-01-01T00:00:00Z")
    assert len(grid) == 1
    assert "/conf/queryables-query-parameters" in " ".join(
        client.get("/conformance").json()["conformsTo"]
    )
