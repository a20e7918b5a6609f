"""Cross-area probes: a principal of grid B trying to read grid A every way the API offers.

Each :class:`Probe` is one way in (by id, by list filter, by search, by
export…). :func:`assert_no_leak` runs it as grid B's worker against grid A's
objects and checks the answer is a refusal (403/404) or carries nothing of
grid A. Routers landing later (features by id/bbox, tiles, events, KPIs,
heat maps) add their probes to :data:`PROBES`; the test picks them up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi.testclient import TestClient


@dataclass(frozen=True)
class Probe:
    """A request shape; ``{grid_a}``, ``{household_a}``, ``{resident_a}``, ``{event_a}`` filled."""

    name: str
    method: str
    path: str
    json: dict[str, Any] | None = None
    #: Texts of grid A that must not appear in a 200 answer (formatted like *path*).
    forbidden: tuple[str, ...] = ("{grid_a}",)
    params: dict[str, str] = field(default_factory=dict)


PROBES: tuple[Probe, ...] = (
    Probe("household by id", "GET", "/registry/households/{household_a}"),
    Probe("households of grid A", "GET", "/registry/households", params={"grid": "{grid_a}"}),
    Probe("all households", "GET", "/registry/households"),
    Probe("resident by id", "GET", "/registry/residents/{resident_a}"),
    Probe("resident by id, unmasked", "GET", "/registry/residents/{resident_a}?unmask=true"),
    Probe("residents of grid A", "GET", "/registry/residents", params={"grid": "{grid_a}"}),
    Probe(
        "residents of household A",
        "GET",
        "/registry/residents",
        params={"household": "{household_a}"},
    ),
    Probe("all residents", "GET", "/registry/residents"),
    Probe(
        "search by A's ID number",
        "POST",
        "/registry/residents/search",
        json={"id_number": "11010519491231002X"},
        forbidden=("{grid_a}", "002X"),
    ),
    Probe(
        "search by A's phone",
        "POST",
        "/registry/residents/search",
        json={"phone": "13812341234"},
        forbidden=("{grid_a}", "1234"),
    ),
    Probe("export", "GET", "/registry/residents.csv"),
    Probe(
        "register into household A",
        "POST",
        "/registry/residents",
        json={"household_id": "{household_a}", "name": "王五", "id_number": "110101199003074477"},
    ),
    Probe(
        "register a household in grid A",
        "POST",
        "/registry/households",
        json={"grid_code": "{grid_a}", "address": "Aleksanterinkatu 1"},
    ),
    Probe("event by id", "GET", "/events/{event_a}"),
    Probe("event history", "GET", "/events/{event_a}/transitions"),
    Probe("events of grid A", "GET", "/events", params={"grid_code": "{grid_a}"}),
    Probe("all events", "GET", "/events"),
    Probe("supervision list", "GET", "/events/supervision"),
    Probe("KPIs by grid", "GET", "/kpis", params={"by": "grid"}),
    Probe("OGC event item", "GET", "/collections/events/items/{event_a}"),
    Probe("OGC events page", "GET", "/collections/events/items", params={"limit": "10000"}),
    Probe(
        "OGC events in a city-wide bbox",
        "GET",
        "/collections/events/items",
        params={"bbox": "-180,-90,180,90", "limit": "10000"},
    ),
    Probe(
        "OGC events by time",
        "GET",
        "/collections/events/items",
        params={"datetime": "2000-01-01T00:00:00Z/..", "limit": "10000"},
    ),
    Probe("OGC grids page", "GET", "/collections/grids/items", params={"limit": "10000"}),
    Probe("OGC buildings page", "GET", "/collections/buildings/items", params={"limit": "10000"}),
    # The HTML views (f=html, or a browser's Accept) of the same items.
    Probe(
        "OGC grids page as HTML",
        "GET",
        "/collections/grids/items",
        params={"f": "html", "limit": "10000"},
    ),
    Probe(
        "OGC events page as HTML",
        "GET",
        "/collections/events/items",
        params={"f": "html", "limit": "10000"},
    ),
    Probe("OGC event item as HTML", "GET", "/collections/events/items/{event_a}?f=html"),
    Probe(
        "OGC events filtered city-wide",
        "GET",
        "/collections/events/items",
        params={"filter": "S_INTERSECTS(geometry, BBOX(-180,-90,180,90))", "limit": "10000"},
    ),
    # Vector tiles over grid A ({tile_a}: the z15 tile "z/y/x" holding a point of grid A).
    Probe("events tile over grid A", "GET", "/collections/events/tiles/WebMercatorQuad/{tile_a}"),
    Probe(
        "buildings tile over grid A", "GET", "/collections/buildings/tiles/WebMercatorQuad/{tile_a}"
    ),
    Probe("grids tile over grid A", "GET", "/collections/grids/tiles/WebMercatorQuad/{tile_a}"),
    Probe(
        "events tile at z10 (whole city)",
        "GET",
        "/collections/events/tiles/WebMercatorQuad/{tile_city}",
    ),
    Probe(
        "filtered events tile at z10 (whole city)",
        "GET",
        "/collections/events/tiles/WebMercatorQuad/{tile_city}",
        params={"filter": "S_INTERSECTS(geometry, BBOX(-180,-90,180,90))"},
    ),
    # Point lookup inside grid A: no grid code, no worker names of grid A.
    Probe(
        "locate a point of grid A",
        "GET",
        "/locate",
        params={"lon": "{lon_a}", "lat": "{lat_a}", "crs": "wgs84"},
        forbidden=("{grid_a}", "网格员"),
    ),
    # Per-grid statistics (table and CSV): only the caller's grids.
    Probe("grid statistics", "GET", "/grids/statistics"),
    Probe("grid statistics of grid A", "GET", "/grids/statistics", params={"grid": "{grid_a}"}),
    Probe("grid statistics as CSV", "GET", "/grids/statistics", params={"f": "csv"}),
    # Heat maps, hot spots and heat-map tiles over grid A: grid B's counts only (or 204).
    Probe("heat map of grid A", "GET", "/heatmap", params={"resolution": "11", "area": "{grid_a}"}),
    Probe("heat map, all areas", "GET", "/heatmap", params={"resolution": "7"}),
    Probe(
        "hot spots of grid A", "GET", "/hotspots", params={"resolution": "10", "area": "{grid_a}"}
    ),
    Probe("heat-map tile over grid A", "GET", "/heatmap/tiles/WebMercatorQuad/{tile_a}"),
    Probe("heat-map tile at z10 (whole city)", "GET", "/heatmap/tiles/WebMercatorQuad/{tile_city}"),
    # Door-knocking (敲门行动): campaign 1 covers grid A's town where a test creates one
    # (tests/api/test_doorknock_api.py); elsewhere there is none and each probe is a 404.
    Probe(
        "door-knocking visits of grid A",
        "GET",
        "/doorknock/campaigns/1/visits",
        params={"grid": "{grid_a}"},
    ),
    Probe("all door-knocking visits", "GET", "/doorknock/campaigns/1/visits"),
    Probe("door-knocking progress", "GET", "/doorknock/campaigns/1/progress"),
    Probe("door-knocking progress map", "GET", "/doorknock/campaigns/1/map"),
    Probe("campaigns over grid A", "GET", "/doorknock/campaigns", params={"area": "{grid_a}"}),
    Probe(
        "record a visit to household A",
        "POST",
        "/doorknock/campaigns/1/visits",
        json={
            "household_id": "{household_a}",
            "status": "visited",
            "at": "2026-11-05T10:00:00Z",
            "location": {"type": "Point", "coordinates": [24.94, 60.17]},
        },
    ),
)


_IDS = ("{household_a}", "{resident_a}", "{event_a}")


def _fill(value: Any, ctx: dict[str, str]) -> Any:
    if isinstance(value, str):
        return int(value.format(**ctx)) if value in _IDS else value.format(**ctx)
    if isinstance(value, dict):
        return {k: _fill(v, ctx) for k, v in value.items()}
    return value


def assert_no_leak(
    client: TestClient, headers: dict[str, str], probe: Probe, ctx: dict[str, str]
) -> None:
    """Run *probe* with *headers* (grid B's principal): refused, or nothing of grid A."""
    path = probe.path.format(**ctx)
    params = {k: v.format(**ctx) for k, v in probe.params.items()}
    r = client.request(
        probe.method, path, params=params, json=_fill(probe.json, ctx), headers=headers
    )
    assert r.status_code < 500, (probe.name, r.status_code, r.text)
    if r.status_code in (204, 403, 404):  # 204: an empty tile, nothing of grid A
        return
    assert r.status_code in (200, 201), (probe.name, r.status_code, r.text)
    if probe.method == "POST" and r.status_code == 201:
        raise AssertionError(f"{probe.name}: grid B's principal wrote into grid A")
    for text in probe.forbidden:
        needle = text.format(**ctx)
        assert needle not in r.text, (probe.name, needle, r.text[:300])
