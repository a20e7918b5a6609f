"""Open311 GeoReport v2 round trip with a plain HTTP client that knows only the spec.

The service runs in uvicorn on a loopback port over the demo grids (real
Helsinki streets); requests are synthetic. The client is httpx with form
posts and the paths of GeoReport v2, nothing gridmap-specific.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from gridmap.events.workflow import TransitionRequest, transition
from gridmap.security.access import SYSTEM, Principal
from gridmap.storage import Store
from tests.api.events_app import events_app, map_event_errors
from tests.events_world import World, make_world

CITIZEN_APP = Principal("citizen-app", "external_system")


@pytest.fixture
def served(
    store: Store,
    tmp_path: Path,
    serve: Callable[[FastAPI], AbstractContextManager[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[str, World]]:
    map_event_errors(monkeypatch)
    world = make_world(store)
    app = events_app(store, principal=CITIZEN_APP, media_dir=tmp_path / "media")
    with serve(app) as base:
        yield base, world


@pytest.mark.timeout(120)
def test_georeport_round_trip(served: tuple[str, World]) -> None:
    base, world = served
    lon, lat = world.point(8)
    with httpx.Client(base_url=f"{base}/open311/v2", timeout=30) as http:
        services = http.get("/services.json").json()
        codes = {s["service_code"] for s in services}
        assert {"city_management", "city_management.garbage", "dispute"} <= codes
        assert all({"service_name", "metadata", "type"} <= set(s) for s in services)

        form = {
            "service_code": "city_management.garbage",
            "lat": f"{lat}",
            "long": f"{lon}",
            "description": "合成 synthetic: rubbish bags left by the bench",
            "first_name": "Maija",
            "last_name": "Meikäläinen",
            "email": "maija@example.org",
            "phone": "+358401234567",
            "media_url": "https://photos.example.org/o311/bench.jpg",
        }
        created = http.post("/requests.json", data=form, headers={"Idempotency-Key": "o311-1"})
        assert created.status_code == 201, created.text
        [token] = created.json()
        rid = token["service_request_id"]
        again = http.post("/requests.json", data=form, headers={"Idempotency-Key": "o311-1"})
        assert again.json()[0]["service_request_id"] == rid
        assert world.store.count("events") == 1

        one = http.get(f"/requests/{rid}.json")
        assert one.status_code == 200
        [req] = one.json()
        assert req["service_request_id"] == rid and req["status"] == "open"
        assert req["service_code"] == "city_management.garbage"
        assert req["lat"] == pytest.approx(lat, abs=1e-6) and req["long"] == pytest.approx(
            lon, abs=1e-6
        )
        assert "上报" in req["status_notes"]
        for secret in ("Maija", "Meik", "maija@", "358401234567", "1234567"):
            assert secret not in one.text
        # media_url is stored and returned as given (never fetched).
        assert req["media_url"] == form["media_url"]

        # Staff handle it in gridmap (short path); the Open311 client sees it closed.
        grid_worker = Principal("w", "grid_worker", (world.code(8),))
        transition(world.store, int(rid), TransitionRequest("self_handle"), principal=grid_worker)
        [done] = http.get(f"/requests/{rid}.json").json()
        assert done["status"] == "closed" and "结案" in done["status_notes"]
        closed = http.get("/requests.json", params={"status": "closed"}).json()
        assert [r["service_request_id"] for r in closed] == [rid]
        assert http.get("/requests.json", params={"status": "open"}).json() == []
        listed = http.get("/requests.json", params={"service_request_id": rid}).text
        for secret in ("Maija", "maija@", "358401234567"):
            assert secret not in listed

        # The contact is kept for the staff, masked.
        row = world.store.get("events", int(rid)).iloc[0]
        assert row["contact"] == "+358401234567" and row["channel"] == "open311"
        assert row["reporter"] == "Maija Meikäläinen"
        # … encrypted at rest (issue 25): only ciphertext in the database.
        [stored] = world.store.sql(  # type: ignore[attr-defined]
            "SELECT reporter, contact, reported_by FROM events"
        )
        assert stored[0].startswith("v1.") and stored[1].startswith("v1.")
        for secret in ("Maija", "Meik", "358401234567"):
            assert secret not in repr(stored)
        assert stored[2] == CITIZEN_APP.name

        bad: list[tuple[dict[str, Any], int, str]] = [
            ({**form, "lat": "abc"}, 400, "lat must be a number"),
            ({**form, "lat": "nan"}, 400, "finite"),
            ({**form, "long": "1e400"}, 400, "finite"),
            ({k: v for k, v in form.items() if k != "lat"}, 400, "lat is required"),
            ({**form, "service_code": ""}, 400, "service_code"),
            ({**form, "service_code": "ufo"}, 400, "unknown category"),
            ({**form, "lat": "0", "long": "0"}, 422, "null island"),
            ({**form, "lat": f"{lon}", "long": f"{lat}"}, 422, "swapped"),
            ({**form, "colour": "red"}, 400, "unknown field"),
            ({**form, "media_url": "http://169.254.169.254/latest/"}, 400, "public host"),
            ({**form, "media_url": "http://localhost:8000/x.jpg"}, 400, "public host"),
            ({**form, "media_url": "file:///etc/passwd"}, 400, "http or https"),
            ({**form, "media_url": "https://u:p@photos.example.org/"}, 400, "password"),
        ]
        for data, status, fragment in bad:
            r = http.post("/requests.json", data=data)
            assert r.status_code == status, (data, r.text)
            [error] = r.json()  # GeoReport v2 error form: [{"code", "description"}]
            assert error["code"] == status and fragment in error["description"], (fragment, r.text)
        r = http.post("/requests.json", content=b"<xml/>", headers={"Content-Type": "text/xml"})
        assert r.status_code == 415
        assert http.get("/requests/999999.json").status_code == 404
        assert http.get("/requests/abc.json").status_code == 404
        assert http.get("/requests.json", params={"status": "pending"}).status_code == 400
        assert (
            http.get("/requests.json", params={"start_date": "2026-01-01T00:00"}).status_code == 400
        )
    # Nothing else was stored.
    assert world.store.count("events") == 1
    assert SYSTEM.covers(world.code(8))
