"""Tokens for two grids trying to read each other's data, every way the API offers."""

from __future__ import annotations

import morecantile
import pytest
from fastapi.testclient import TestClient

from tests.security.conftest import World
from tests.security.cross_area import PROBES, Probe, assert_no_leak


def _tile_context(world: World) -> dict[str, str]:
    grids = world.store.read("grids", where={"code": world.grid_a})
    p = grids.geometry.iloc[0].representative_point()
    tms = morecantile.tms.get("WebMercatorQuad")
    t, city = tms.tile(p.x, p.y, 15), tms.tile(p.x, p.y, 10)
    return {
        "tile_a": f"{t.z}/{t.y}/{t.x}",
        "tile_city": f"{city.z}/{city.y}/{city.x}",
        "lon_a": repr(p.x),
        "lat_a": repr(p.y),
    }


@pytest.mark.parametrize("probe", PROBES, ids=lambda p: p.name)
def test_grid_b_cannot_reach_grid_a(
    world: World, client: TestClient, registered: dict[str, int], probe: Probe
) -> None:
    ctx = {
        "grid_a": world.grid_a,
        "household_a": str(registered[f"household_{world.grid_a}"]),
        "resident_a": str(registered[f"resident_{world.grid_a}_0"]),
        **_tile_context(world),
        "event_a": str(
            int(
                world.store.read("events", where={"grid_code": world.grid_a}, limit=1)["id"].iloc[0]
            )
        ),
    }
    assert_no_leak(client, world.headers("worker_b"), probe, ctx)


def test_grid_a_sees_its_own(world: World, client: TestClient, registered: dict[str, int]) -> None:
    r = client.get("/registry/residents", headers=world.headers("worker_a"))
    assert r.status_code == 200
    grids = {x["grid_code"] for x in r.json()["residents"]}
    assert grids == {world.grid_a}
    r = client.get("/registry/residents", headers=world.headers("worker_b"))
    assert {x["grid_code"] for x in r.json()["residents"]} == {world.grid_b}


def test_town_coordinator_sees_the_town(
    world: World, client: TestClient, registered: dict[str, int]
) -> None:
    r = client.get("/registry/residents", headers=world.headers("coordinator"))
    grids = {x["grid_code"] for x in r.json()["residents"]}
    assert world.grid_a in grids
    assert all(g.startswith(world.town) for g in grids)
