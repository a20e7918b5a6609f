"""OGC API Features Part 2: output in EPSG:4326/4490 (latitude first) and 3857; bbox-crs."""

from __future__ import annotations

import pytest
import shapely
from fastapi.testclient import TestClient  # conftest.py imported it first (see there)
from pyproj import Transformer
from shapely.geometry import shape

from gridmap.storage import Store

EPSG = "http://www.opengis.net/def/crs/EPSG/0/"


def _first(client: TestClient, **params: str) -> tuple[dict, str]:
    r = client.get("/collections/buildings/items", params={"limit": "5", **params})
    assert r.status_code == 200, r.text
    return r.json(), r.headers["content-crs"]


def test_crs84_default_and_lat_first_epsg(client: TestClient, filled: Store) -> None:
    base, hdr = _first(client)
    assert hdr == "<http://www.opengis.net/def/crs/OGC/1.3/CRS84>"
    for code in ("4326", "4490"):
        doc, hdr = _first(client, crs=f"{EPSG}{code}")
        assert hdr == f"<{EPSG}{code}>"
        for a, b in zip(base["features"], doc["features"], strict=True):
            ga, gb = shape(a["geometry"]), shape(b["geometry"])
            swapped = shapely.transform(ga, lambda c: c[:, ::-1])
            assert shapely.equals_exact(swapped, gb, 1e-12)


def test_web_mercator_output(client: TestClient, filled: Store) -> None:
    base, _ = _first(client)
    doc, hdr = _first(client, crs="EPSG:3857")
    assert hdr == f"<{EPSG}3857>"
    tr = Transformer.from_crs(4326, 3857, always_xy=True)

    def fwd(c):  # type: ignore[no-untyped-def]
        x, y = tr.transform(c[:, 0], c[:, 1])
        return __import__("numpy").column_stack([x, y])

    for a, b in zip(base["features"], doc["features"], strict=True):
        expected = shapely.transform(shape(a["geometry"]), fwd)
        assert shapely.equals_exact(expected, shape(b["geometry"]), 1e-6)


def test_bbox_crs_equals_crs84_bbox(client: TestClient, filled: Store) -> None:
    lon0, lat0, lon1, lat1 = 24.94, 60.165, 24.95, 60.17
    ref = {
        f["id"]
        for f in client.get(
            "/collections/buildings/items",
            params={"bbox": f"{lon0},{lat0},{lon1},{lat1}", "limit": "1000"},
        ).json()["features"]
    }
    assert ref
    lat_first = {
        f["id"]
        for f in client.get(
            "/collections/buildings/items",
            params={
                "bbox": f"{lat0},{lon0},{lat1},{lon1}",
                "bbox-crs": f"{EPSG}4326",
                "limit": "1000",
            },
        ).json()["features"]
    }
    assert lat_first == ref
    tr = Transformer.from_crs(4326, 3857, always_xy=True)
    (x0, x1), (y0, y1) = tr.transform([lon0, lon1], [lat0, lat1])
    merc = {
        f["id"]
        for f in client.get(
            "/collections/buildings/items",
            params={"bbox": f"{x0},{y0},{x1},{y1}", "bbox-crs": "EPSG:3857", "limit": "1000"},
        ).json()["features"]
    }
    assert merc == ref


@pytest.mark.parametrize(
    "params",
    [
        {"crs": "EPSG:2000"},
        {"crs": "urn:evil"},
        {"bbox-crs": "EPSG:27700", "bbox": "0,0,1,1"},
        {"bbox-crs": "EPSG:3857", "bbox": "1,2,3"},
        {"bbox-crs": "EPSG:3857", "bbox": "a,b,c,d"},
        {"bbox-crs": "EPSG:4326", "bbox": "100,0,101,1"},
    ],
)
def test_bad_crs_is_400(client: TestClient, params: dict[str, str]) -> None:
    r = client.get("/collections/buildings/items", params=params)
    assert r.status_code == 400, r.text
    assert "crs" in r.json()["description"] or "bbox" in r.json()["description"]


def test_collection_lists_crs(client: TestClient) -> None:
    doc = client.get("/collections/buildings").json()
    assert f"{EPSG}3857" in doc["crs"] and f"{EPSG}4490" in doc["crs"]
    conf = client.get("/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs" in conf
