"""The OGC API Features part of ``/api``: bbox, collection names and per-collection items paths.

Also the query values the per-collection paths invite and that the server
must refuse with a 400 on both stores: NUL characters in text (PostgreSQL
text cannot hold them) and years outside 1-9999.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient  # conftest.py imported it first (see there)

from api.items import queryables_filter
from api.openapi import published_layers
from gridmap.common.errors import BadInput
from layers.catalog import CATALOG


@pytest.fixture
def doc(client: TestClient) -> dict[str, Any]:
    r = client.get("/api")
    assert r.status_code == 200
    document: dict[str, Any] = r.json()
    return document


def _params(operation: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in operation.get("parameters", [])}


def test_bbox_is_four_numbers_comma_separated(doc: dict[str, Any]) -> None:
    found = 0
    for path, operations in doc["paths"].items():
        for operation in operations.values():
            bbox = _params(operation).get("bbox")
            if bbox is None:
                continue
            found += 1
            assert (bbox["in"], bbox["style"], bbox["explode"]) == ("query", "form", False), path
            schema = bbox["schema"]
            assert schema["type"] == "array" and schema["items"] == {"type": "number"}, path
            # OGC API Features' fragment: 4 to 6 (the server takes 4, the layers are 2D).
            assert (schema["minItems"], schema["maxItems"]) == (4, 6), path
    items = _params(doc["paths"]["/collections/{layer}/items"]["get"])
    assert items["bbox"]["schema"]["example"] == [24.93, 60.16, 24.96, 60.18]
    for name in ("limit", "datetime"):  # written out, as ogctests asks
        assert (items[name]["style"], items[name]["explode"]) == ("form", False)
    assert found >= 3  # items (template and per collection), heat map, hot spots


def test_layer_is_one_of_the_published_collections(doc: dict[str, Any]) -> None:
    names = [d.name for d in published_layers()]
    assert "buildings" in names and "events" in names
    assert "patrol_tracks" not in names and "workers" not in names  # never published
    templated = [p for p in doc["paths"] if p.startswith("/collections/{layer}")]
    assert len(templated) >= 6  # features and tiles
    for path in templated:
        layer = _params(doc["paths"][path]["get"])["layer"]
        assert layer["schema"]["enum"] == names, path


def test_every_collection_has_its_items_path_with_queryables(doc: dict[str, Any]) -> None:
    template = doc["paths"]["/collections/{layer}/items"]["get"]
    common = set(_params(template)) - {"layer"}
    ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))
    for ldef in published_layers():
        operation = doc["paths"][f"/collections/{ldef.name}/items"]["get"]
        params = _params(operation)
        assert common <= set(params) and "layer" not in params, ldef.name
        queryables = set(params) - common
        assert queryables, ldef.name
        for name in queryables:
            assert name == "id" or not CATALOG[ldef.name].field(name).personal, name
            assert params[name]["in"] == "query" and not params[name]["required"]
    buildings = _params(doc["paths"]["/collections/buildings/items"]["get"])
    assert buildings["floors"]["schema"] == {"type": "integer"}
    assert buildings["use"]["schema"] == {"type": "string"}
    grids = _params(doc["paths"]["/collections/grids/items"]["get"])
    assert grids["valid_from"]["schema"] == {"type": "string", "format": "date-time"}
    assert "workers" not in grids and "events_total" not in grids  # personal; staff only
    events = _params(doc["paths"]["/collections/events/items"]["get"])
    assert "reporter" not in events and "h3_r9" not in events
    assert set(events["status"]["schema"]["enum"]) >= {"reported", "closed"}


def test_documented_queryable_parameters_are_served(
    client: TestClient, doc: dict[str, Any]
) -> None:
    """A query built from the per-collection path's parameters is answered (not refused)."""
    examples = {"integer": "3", "number": "2.5", "boolean": "true", "string": "x"}
    common = set(_params(doc["paths"]["/collections/{layer}/items"]["get"]))
    for ldef in published_layers():
        params = _params(doc["paths"][f"/collections/{ldef.name}/items"]["get"])
        for name, param in params.items():
            if name in common:
                continue
            schema = param["schema"]
            value = schema["enum"][0] if "enum" in schema else examples.get(schema["type"])
            if schema.get("format") == "date-time":
                value = "2026-11-01T00:00:00Z"
            elif schema.get("format") == "date":
                value = "2026-11-01"
            r = client.get(f"/collections/{ldef.name}/items", params={name: value, "limit": 1})
            assert r.status_code == 200, (ldef.name, name, value, r.text[:200])


@pytest.mark.parametrize(
    "query",
    [
        {"name": "a\x00b"},
        {"filter": "name = 'a\x00'"},
        {
            "filter": '{"op": "=", "args": [{"property": "name"}, "\\u0000"]}',
            "filter-lang": "cql2-json",
        },
    ],
)
def test_nul_in_text_is_a_400(client: TestClient, query: dict[str, str]) -> None:
    r = client.get("/collections/buildings/items", params=query)
    assert r.status_code == 400, r.text
    assert "NUL" in r.json()["description"]


@pytest.mark.parametrize(
    "query",
    [
        {"valid_from": "0000-01-01T00:00:00Z"},
        {"valid_from": "nat"},
        {"valid_to": "10000-01-01T00:00:00Z"},
    ],
)
def test_times_outside_years_1_to_9999_are_a_400(client: TestClient, query: dict[str, str]) -> None:
    r = client.get("/collections/grids/items", params=query)
    assert r.status_code == 400, r.text
    (name,) = query
    assert r.json()["description"].startswith(f"{name} "), r.text
    route = client.get("/collections/patrol_routes/items", params={"route_date": "0000-01-01"})
    assert route.status_code == 400, route.text


@pytest.mark.parametrize(
    ("layer", "name", "text", "words"),
    [
        (
            "grids",
            "valid_from",
            "0000-01-01T00:00:00Z",
            "valid_from '0000-01-01T00:00:00Z' is not a valid date-time (ISO 8601): "
            "year 0 is outside 1–9999",
        ),
        ("grids", "valid_to", "10000-01-01T00:00:00Z", "year 10000 is outside 1–9999"),
        ("grids", "valid_from", "nat", "valid_from 'nat' is not a valid date-time (ISO 8601)"),
        ("grids", "valid_from", "2026-11-01T08:00:00", "it needs a time zone"),
        ("grids", "valid_from", "2026-11-01", "a date needs a time and a zone"),
        (
            "patrol_routes",
            "route_date",
            "0000-01-01",
            "route_date must be a date YYYY-MM-DD in years 1–9999, got '0000-01-01'",
        ),
        ("patrol_routes", "route_date", "2026-11-01T08:00:00Z", "must be a date YYYY-MM-DD"),
    ],
)
def test_time_queryables_are_read_by_the_one_time_parser(
    layer: str, name: str, text: str, words: str
) -> None:
    """``name=value`` on a time queryable: gridmap.common.timeparse's checks and words."""
    with pytest.raises(BadInput) as err:
        queryables_filter(CATALOG[layer], {name: text})
    assert words in str(err.value)
    assert err.value.field == name


def test_time_queryables_in_range_become_filters() -> None:
    grids = queryables_filter(CATALOG["grids"], {"valid_from": "2026-11-01T08:00:00+08:00"})
    assert grids is not None and grids.properties == frozenset({"valid_from"})
    routes = queryables_filter(CATALOG["patrol_routes"], {"route_date": "2026-11-01"})
    assert routes is not None and routes.properties == frozenset({"route_date"})
