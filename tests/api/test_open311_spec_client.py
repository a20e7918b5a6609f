"""Open311 GeoReport v2 through a client written from the spec alone.

:class:`GeoReportClient` knows only what http://wiki.open311.org/GeoReport_v2
says: start from the discovery document, take the endpoint URL from it, ask
for ``.xml`` (the required format) or ``.json``, POST requests
form-encoded with ``api_key`` as a form field, pass ``api_key`` and
``jurisdiction_id`` as query parameters on GETs, and read errors as
``<errors><error><code>…</code><description>…</description></error></errors>``
or ``[{"code": …, "description": …}]``. It parses XML with ``xml.etree``.

The service runs in uvicorn on a loopback port over the Helsinki demo (real
OpenStreetMap grids, buildings with their real addresses, and roads); every
service request is synthetic. The caller is an ``external_system`` user with
a real API key: no dependency is overridden.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import geopandas as gpd
import httpx
import pandas as pd
import pytest
import shapely
from fastapi import FastAPI

from api.routers.open311 import open311_principal
from api.security import get_principal
from gridmap.demo.job import run_demo
from gridmap.security.access import Principal
from gridmap.security.auth import add_user, issue_api_key
from gridmap.storage import Store, open_store
from tests.api.events_app import events_app, map_event_errors
from tests.events_world import World, make_world

SPEC = "http://wiki.open311.org/GeoReport_v2"


class GeoReportError(Exception):
    """An error answer, parsed in the spec's form."""

    def __init__(self, status: int, errors: list[dict[str, str]]) -> None:
        super().__init__(f"{status}: {errors}")
        self.status = status
        self.errors = errors


def _records(root: ET.Element, item: str) -> list[dict[str, Any]]:
    """``<root><item><a>1</a>…</item>…</root>`` → ``[{"a": "1", …}, …]`` (empty → None)."""
    out = []
    for element in root.findall(item):
        out.append({child.tag: child.text for child in element})
    return out


class GeoReportClient:
    """A GeoReport v2 client from the spec: discovery first, then the endpoint it names."""

    def __init__(
        self, discovery_url: str, *, api_key: str | None, jurisdiction_id: str | None = None
    ) -> None:
        self.http = httpx.Client(timeout=30)
        self.api_key = api_key
        self.jurisdiction_id = jurisdiction_id
        doc = self.http.get(discovery_url)
        assert doc.status_code == 200, doc.text
        root = ET.fromstring(doc.content)
        assert root.tag == "discovery"
        self.endpoints: list[dict[str, Any]] = [
            {
                "specification": e.findtext("specification"),
                "url": e.findtext("url"),
                "type": e.findtext("type"),
                "formats": [f.text for f in e.iter("format")],
            }
            for e in root.iter("endpoint")
        ]
        [endpoint] = [e for e in self.endpoints if e["specification"] == SPEC]
        self.url = str(endpoint["url"]).rstrip("/")

    def close(self) -> None:
        self.http.close()

    def _params(self, extra: dict[str, str] | None = None, *, key: bool = True) -> dict[str, str]:
        params = dict(extra or {})
        if self.jurisdiction_id:
            params["jurisdiction_id"] = self.jurisdiction_id
        if key and self.api_key:
            params["api_key"] = self.api_key
        return params

    @staticmethod
    def _check(r: httpx.Response, fmt: str) -> httpx.Response:
        if r.status_code < 400:
            return r
        if fmt == "xml":
            assert r.headers["content-type"].startswith("text/xml"), r.text
            root = ET.fromstring(r.content)
            assert root.tag == "errors", r.text
            errors = [
                {"code": str(e.findtext("code")), "description": str(e.findtext("description"))}
                for e in root.findall("error")
            ]
        else:
            body = r.json()
            assert isinstance(body, list), r.text
            errors = [{"code": str(e["code"]), "description": e["description"]} for e in body]
        assert errors and all(e["code"] == str(r.status_code) for e in errors), r.text
        raise GeoReportError(r.status_code, errors)

    def services(self, fmt: str = "xml") -> list[dict[str, Any]]:
        r = self._check(
            self.http.get(f"{self.url}/services.{fmt}", params=self._params(key=False)), fmt
        )
        if fmt == "xml":
            return _records(ET.fromstring(r.content), "service")
        return list(r.json())

    def service_definition(self, code: str, fmt: str = "xml") -> dict[str, Any]:
        r = self._check(
            self.http.get(f"{self.url}/services/{code}.{fmt}", params=self._params(key=False)),
            fmt,
        )
        if fmt == "xml":
            root = ET.fromstring(r.content)
            assert root.tag == "service_definition"
            return {
                "service_code": root.findtext("service_code"),
                "attributes": list(root.iter("attribute")),
            }
        return dict(r.json())

    def post_request(self, fields: dict[str, str], fmt: str = "xml") -> dict[str, Any]:
        form = dict(fields)
        if self.api_key:
            form["api_key"] = self.api_key  # the spec's form field
        if self.jurisdiction_id:
            form["jurisdiction_id"] = self.jurisdiction_id
        r = self._check(self.http.post(f"{self.url}/requests.{fmt}", data=form), fmt)
        assert r.status_code in (200, 201)
        if fmt == "xml":
            [created] = _records(ET.fromstring(r.content), "request")
        else:
            [created] = r.json()
        return dict(created)

    def get_request(self, rid: str, fmt: str = "xml") -> dict[str, Any]:
        r = self._check(
            self.http.get(f"{self.url}/requests/{rid}.{fmt}", params=self._params()), fmt
        )
        if fmt == "xml":
            [one] = _records(ET.fromstring(r.content), "request")
        else:
            [one] = r.json()
        return dict(one)

    def get_requests(self, fmt: str = "xml", **filters: str) -> list[dict[str, Any]]:
        r = self._check(
            self.http.get(f"{self.url}/requests.{fmt}", params=self._params(filters)), fmt
        )
        if fmt == "xml":
            root = ET.fromstring(r.content)
            assert root.tag == "service_requests"
            return _records(root, "request")
        return list(r.json())


@lru_cache(maxsize=1)
def demo_places() -> dict[str, pd.DataFrame]:
    """Buildings and roads of the Helsinki demo (real OSM names and addresses), built once."""
    s = open_store(":memory:", migrate=True)
    try:
        run_demo(s, events=0)
        return {name: s.read(name) for name in ("buildings", "roads")}
    finally:
        s.close()


@dataclass
class Served:
    base: str
    world: World
    api_key: str
    buildings: gpd.GeoDataFrame

    @property
    def discovery(self) -> str:
        return f"{self.base}/open311/v2/discovery.xml"

    def client(self, api_key: str | None = "default", **kw: Any) -> GeoReportClient:
        key = self.api_key if api_key == "default" else api_key
        return GeoReportClient(self.discovery, api_key=key, **kw)

    def grid_of(self, geom: shapely.Geometry) -> str:
        """The demo grid containing *geom*'s surface point (computed here, not by gridmap)."""
        point = shapely.point_on_surface(geom)
        grids = self.world.grids
        [code] = grids.loc[grids.geometry.contains(point), "code"].tolist()
        return str(code)


@pytest.fixture
def served(
    store: Store,
    tmp_path: Path,
    serve: Callable[[FastAPI], AbstractContextManager[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Served]:
    map_event_errors(monkeypatch)
    world = make_world(store)
    for name, frame in demo_places().items():
        store.write(name, frame.drop(columns="id"))
    buildings = store.read("buildings")
    assert isinstance(buildings, gpd.GeoDataFrame)
    add_user(store, "citizen_app", role="external_system")
    key = issue_api_key(store, "citizen_app")
    app = events_app(store, principal=Principal("unused", "viewer"), media_dir=tmp_path / "media")
    # Real authentication, no override: the api_key of the external system.
    app.dependency_overrides.pop(get_principal)
    app.dependency_overrides.pop(open311_principal)
    with serve(app) as base:
        yield Served(base, world, key, buildings)


def _error(exc: pytest.ExceptionInfo[GeoReportError]) -> str:
    return " ".join(e["description"] for e in exc.value.errors)


@pytest.mark.timeout(180)
def test_discovery_services_and_errors(served: Served) -> None:
    anonymous = served.client(api_key=None)
    try:
        [endpoint] = anonymous.endpoints
        assert {"text/xml", "application/json"} <= set(endpoint["formats"])
        assert endpoint["url"].endswith("/open311/v2") and endpoint["type"] == "production"
        as_json = httpx.get(f"{served.base}/open311/v2/discovery.json").json()
        assert as_json["endpoints"][0]["formats"] == endpoint["formats"]

        # The service list is public, in both formats, with the same services.
        xml_services = anonymous.services("xml")
        json_services = anonymous.services("json")
        assert [s["service_code"] for s in xml_services] == [
            s["service_code"] for s in json_services
        ]
        garbage = next(s for s in xml_services if s["service_code"] == "city_management.garbage")
        assert garbage["metadata"] == "false" and garbage["type"] == "realtime"
        assert garbage["service_name"] == next(
            s["service_name"] for s in json_services if s["service_code"] == garbage["service_code"]
        )
        definition = anonymous.service_definition("city_management.garbage")
        assert definition == {"service_code": "city_management.garbage", "attributes": []}
        assert anonymous.service_definition("dispute", "json")["service_code"] == "dispute"
        with pytest.raises(GeoReportError) as exc:
            anonymous.service_definition("ufo")
        assert exc.value.status == 404 and "ufo" in _error(exc)

        # Reads and writes need the api_key: 401 in the spec's form.
        for fmt in ("xml", "json"):
            with pytest.raises(GeoReportError) as exc:
                anonymous.get_requests(fmt)
            assert exc.value.status == 401 and "api_key" in _error(exc)
        wrong = served.client(api_key="gmk_not-a-real-key")
        with pytest.raises(GeoReportError) as exc:
            wrong.post_request({"service_code": "dispute", "lat": "60.17", "long": "24.94"})
        assert exc.value.status == 401 and "invalid API key" in _error(exc)
        wrong.close()

        # The jurisdiction is the city's code (990100 in the demo); another is 404.
        city = served.client(jurisdiction_id="990100")
        assert city.services() == xml_services
        assert city.get_requests() == []
        city.close()
        other = served.client(jurisdiction_id="370285")
        for fmt in ("xml", "json"):
            with pytest.raises(GeoReportError) as exc:
                other.services(fmt)
            assert exc.value.status == 404 and "jurisdiction_id" in _error(exc)
        with pytest.raises(GeoReportError) as exc:
            other.post_request({"service_code": "dispute", "lat": "60.17", "long": "24.94"})
        assert exc.value.status == 404
        other.close()

        # Anything else under the endpoint: errors in the spec's form too.
        for path, status in (
            ("/requests/abc.xml", 401),  # no api_key
            ("/tokens/123.xml", 404),
            ("/services.csv", 404),
            ("/services.xml?colour=red", 400),
        ):
            r = httpx.get(f"{anonymous.url}{path}")
            assert r.status_code == status, (path, r.text)
            if path.endswith(".xml") or ".xml?" in path:
                root = ET.fromstring(r.content)
                assert root.tag == "errors" and root.findtext("error/code") == str(status)
            else:
                assert r.json()[0]["code"] == status
    finally:
        anonymous.close()
    assert served.world.store.count("events") == 0


@pytest.mark.timeout(180)
def test_create_and_read_back_in_xml_and_json(served: Served) -> None:
    lon, lat = served.world.point(8)
    client = served.client()
    try:
        fields = {
            "service_code": "city_management.garbage",
            "lat": f"{lat}",
            "long": f"{lon}",
            "description": "合成 synthetic: rubbish bags left by the bench",
            "first_name": "Maija",
            "email": "maija@example.org",
            "media_url": "https://photos.example.org/o311/bench.jpg",
        }
        created = client.post_request(fields, "xml")
        rid = created["service_request_id"]
        assert rid and rid.isdigit() and "已受理" in created["service_notice"]

        as_xml = client.get_request(rid, "xml")
        as_json = client.get_request(rid, "json")
        assert as_xml["service_request_id"] == as_json["service_request_id"] == rid
        assert as_xml["status"] == as_json["status"] == "open"
        assert as_xml["service_code"] == as_json["service_code"] == "city_management.garbage"
        assert float(as_xml["lat"]) == pytest.approx(lat, abs=1e-6) == as_json["lat"]
        assert float(as_xml["long"]) == pytest.approx(lon, abs=1e-6) == as_json["long"]
        assert as_xml["media_url"] == as_json["media_url"] == fields["media_url"]
        assert as_xml["requested_datetime"] == as_json["requested_datetime"]
        assert as_xml["description"] == as_json["description"] == fields["description"]
        assert as_xml["address"] is None and as_json["address"] is None
        listed = client.get_requests("xml", service_request_id=rid)
        assert [r["service_request_id"] for r in listed] == [rid]
        assert [r["service_request_id"] for r in client.get_requests("json", status="open")] == [
            rid
        ]

        # JSON answer to a POST, the same api_key as a query parameter on GETs.
        second = client.post_request({**fields, "service_code": "dispute"}, "json")
        assert second["service_request_id"] != rid

        row = served.world.store.get("events", int(rid)).iloc[0]
        assert row["media_url"] == fields["media_url"] and row["channel"] == "open311"
        assert row["grid_code"] == served.world.code(8)

        # Errors of a POST, in both formats.
        for fmt in ("xml", "json"):
            for bad, fragment in (
                ({**fields, "lat": "abc"}, "lat must be a number"),
                ({**fields, "service_code": "ufo"}, "unknown category"),
                ({k: v for k, v in fields.items() if k not in ("lat", "long")}, "lat"),
                ({**fields, "media_url": "http://169.254.169.254/latest/"}, "public host"),
            ):
                with pytest.raises(GeoReportError) as exc:
                    client.post_request(bad, fmt)
                assert exc.value.status == 400 and fragment in _error(exc), (bad, exc.value)
            with pytest.raises(GeoReportError) as exc:
                client.get_request("999999", fmt)
            assert exc.value.status == 404
    finally:
        client.close()
    # Nothing leaked: contact data never comes back.
    text = httpx.get(
        f"{served.base}/open311/v2/requests.xml", params={"api_key": served.api_key}
    ).text
    assert "Maija" not in text and "maija@" not in text
    assert served.world.store.count("events") == 2


@pytest.mark.timeout(180)
def test_address_string_only_requests_land_in_the_right_grid(served: Served) -> None:
    client = served.client()
    b = served.buildings
    try:
        for address, expected in (
            ("Kaivokatu 2", "Kaivokatu 2"),  # exact address (Ateneum)
            ("Ateneumm", "Ateneum"),  # a misspelt building name
            ("snellmaninkatu 14, Helsinki", "Snellmaninkatu 14A"),  # fuzzy, same number
            ("Mannerheimintie 22", "Mannerheimintie 22-24"),
        ):
            [building] = b.loc[(b["address"] == expected) | (b["name"] == expected)].geometry
            created = client.post_request(
                {
                    "service_code": "city_management",
                    "address_string": address,
                    "description": f"合成 synthetic: report at {address}",
                },
                "xml",
            )
            rid = created["service_request_id"]
            assert expected in created["service_notice"]
            row = served.world.store.get("events", int(rid)).iloc[0]
            assert row["grid_code"] == served.grid_of(building), address
            back = client.get_request(rid, "json")
            point = shapely.Point(back["long"], back["lat"])
            assert building.buffer(1e-6).contains(point), (address, back)

        for address, status, fragment in (
            ("Mannerheimintie", 400, "ambiguous"),  # a street 800 m long
            ("Nowhere Street 99", 400, "matches no building or road"),
            ("Snellmaninkatu 13", 400, "matches no building or road"),  # no such number
            ("   ", 400, "address_string"),
        ):
            for fmt in ("xml", "json"):
                with pytest.raises(GeoReportError) as exc:
                    client.post_request({"service_code": "dispute", "address_string": address}, fmt)
                assert exc.value.status == status and fragment in _error(exc), (address, exc)
    finally:
        client.close()
    assert served.world.store.count("events") == 4
