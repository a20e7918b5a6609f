"""The role table of ``docs/roles.md``, checked over HTTP on both stores.

``docs/roles.md`` is the specification: each cell says what a role reads on a
surface (full / masked fields / grid-level only / aggregates only / 401 / 403 /
404). :func:`test_docs_table_is_the_policy` checks the file against the policy
in the core (:mod:`gridmap.security.disclosure`); :func:`test_role_reads_what_the_table_says`
calls every surface as a town coordinator (staff), a grid worker, a viewer, an
external system (API key) and a caller without credentials, on the embedded
store and on PostGIS, and checks the *content* of each answer against the cell.

The world is the demo's (real Helsinki OSM geometry, synthetic events); one
more synthetic event with a reporter, a contact, an assignee and a note is
reported through the API in grid A.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mapbox_vector_tile
import morecantile
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from gridmap.security import disclosure as policy
from gridmap.security.privacy import mask_name
from tests.security.conftest import World

DOC = Path(__file__).resolve().parents[2] / "docs" / "roles.md"
DESCRIPTION = "合成事件 synthetic role-table probe: 井盖缺失 manhole cover missing"
REPORTER, CONTACT = "张三丰", "13812341234"
NOTE = "现场核实 checked on site"


def parse_docs_table(text: str) -> dict[str, dict[str, str]]:
    """``{audience: {surface: cell}}`` from the Markdown role table of *text*."""
    block = text.split("<!-- role-table:begin", 1)[1].split("<!-- role-table:end", 1)[0]
    rows = [ln for ln in block.splitlines() if ln.startswith("|")]

    def cells(line: str) -> list[str]:
        return [c.strip() for c in line.strip().strip("|").split("|")]

    head = cells(rows[0])[1:]
    surfaces = []
    for title in head:  # "Event list / detail 事件列表/详情" → "events"
        found = [s for s, (zh, en, _) in policy.SURFACES.items() if title == f"{en} {zh}"]
        assert len(found) == 1, f"unknown column {title!r} in docs/roles.md"
        surfaces.append(found[0])
    out: dict[str, dict[str, str]] = {}
    for line in rows[2:]:
        first, *rest = cells(line)
        m = re.fullmatch(r"`(\w+)`.*", first)
        assert m, f"row without a role: {line!r}"
        out[m.group(1)] = dict(zip(surfaces, rest, strict=True))
    return out


DOC_TABLE = parse_docs_table(DOC.read_text(encoding="utf-8"))


def test_docs_table_is_the_policy() -> None:
    """Every role and surface of the policy has the same cell in docs/roles.md, and no more."""
    assert set(DOC_TABLE) == set(policy.AUDIENCES)
    for audience, row in DOC_TABLE.items():
        assert set(row) == set(policy.SURFACES)
        for surface, text in row.items():
            assert text == policy.cell(audience, surface), (audience, surface)
    # The legend names every field the policy drops or masks.
    doc = DOC.read_text(encoding="utf-8")
    for name in policy.CONTACT_FIELDS | policy.WORKER_FIELDS | policy.EXACT_FIELDS:
        assert f"`{name}`" in doc, name


def test_docs_table_parser_sees_a_change() -> None:
    """A hand edit of one cell is caught (the check above is not vacuous)."""
    text = DOC.read_text(encoding="utf-8")
    edited = text.replace("| `viewer` 地图浏览 | grid-level only |", "| `viewer` 地图浏览 | full |")
    assert edited != text
    assert parse_docs_table(edited)["viewer"]["events"] != policy.cell("viewer", "events")


# --- over HTTP ---------------------------------------------------------------------------

#: Who calls: name in the test world (None: no credentials), how, and the table row.
CALLERS = {
    "coordinator": "town_coordinator",
    "worker_a": "grid_worker",
    "viewer": "viewer",
    "hotline": "external_system",
    "anonymous": "anonymous",
}


@dataclass
class Case:
    """The probe event of grid A and what is known about it."""

    world: World
    client: TestClient
    eid: int
    assigned: list[str]
    tile: str
    grid_events: int

    def headers(self, who: str) -> dict[str, str]:
        if who == "anonymous":
            return {}
        if who == "hotline":
            return {"X-API-Key": self.world.api_key}
        return self.world.headers(who)

    def get(self, who: str, path: str, **params: Any) -> Any:
        return self.client.get(path, params=params, headers=self.headers(who))


@pytest.fixture(scope="module")
def case(world: World, client: TestClient) -> Case:
    grids = world.store.read("grids", where={"code": world.grid_a})
    p = grids.geometry.iloc[0].representative_point()
    body = {
        "category": "city_management",
        "description": DESCRIPTION,
        "urgency": "urgent",
        "reporter": REPORTER,
        "contact": CONTACT,
        "location": {"lon": p.x, "lat": p.y, "crs": "wgs84"},
    }
    r = client.post("/events", json=body, headers=world.headers("admin"))
    assert r.status_code == 201, r.text
    eid = int(r.json()["id"])
    assigned = list(r.json()["assigned_to"])
    if not assigned:  # the demo grid has no worker on duty: name one, as dispatch would
        frame = pd.DataFrame({"assigned_to": [["王小明"]]})
        assert world.store.update("events", frame, where={"id": eid}) == 1
        assigned = ["王小明"]
    for action, extra in (("accept", {"note": NOTE}), ("supervise", {})):
        r = client.post(
            f"/events/{eid}/transitions",
            json={"action": action, **extra},
            headers=world.headers("coordinator"),
        )
        assert r.status_code == 200, r.text
    t = morecantile.tms.get("WebMercatorQuad").tile(p.x, p.y, 15)
    return Case(
        world,
        client,
        eid,
        assigned,
        f"{t.z}/{t.y}/{t.x}",
        world.store.count("events", where={"grid_code": world.grid_a}),
    )


def _refused(r: Any, text: str) -> bool:
    return text in ("401", "403", "404") and r.status_code == int(text)


def _check_event(doc: dict[str, Any], text: str, case: Case) -> None:
    """One event document (``/events``, detail, supervision) against a cell."""
    assert doc["id"] == case.eid and doc["grid_code"] == case.world.grid_a
    assert doc["category"] == "city_management" and doc["status"] == "accepted"
    if text == "full":
        assert doc["description"] == DESCRIPTION and doc["location"]["crs"] == "wgs84"
        assert doc["reporter"] == mask_name(REPORTER) and doc["contact"] == "138****1234"
        assert doc["assigned_to"] == case.assigned
    elif text == "masked fields":
        assert doc["description"] == DESCRIPTION and doc["location"] is not None
        assert "reporter" not in doc and "contact" not in doc
        assert doc["assigned_to"] == [mask_name(n) for n in case.assigned]
        assert doc["assigned_to"] != case.assigned
    elif text == "grid-level only":
        for gone in ("description", "location", "reporter", "contact", "assigned_to", "photos"):
            assert gone not in doc, gone
        assert doc["community_code"] == case.world.grid_a[:12]
    else:
        raise AssertionError(f"no event content check for {text!r}")
    assert REPORTER not in str(doc) and CONTACT not in str(doc)


def probe_events(case: Case, who: str, text: str) -> None:
    listed = case.get(who, "/events", grid_code=case.world.grid_a, limit=10_000)
    one = case.get(who, f"/events/{case.eid}")
    if _refused(listed, text):
        assert _refused(one, text)
        return
    assert listed.status_code == 200 and one.status_code == 200, (listed.text, one.text)
    page = listed.json()
    assert page["total"] == case.grid_events == len(page["events"])
    assert {e["grid_code"] for e in page["events"]} == {case.world.grid_a}
    mine = [e for e in page["events"] if e["id"] == case.eid]
    assert len(mine) == 1
    _check_event(mine[0], text, case)
    _check_event(one.json(), text, case)
    if text == "grid-level only":  # no event of the page carries a point or free text
        assert not any("location" in e or "description" in e for e in page["events"])


def probe_transitions(case: Case, who: str, text: str) -> None:
    r = case.get(who, f"/events/{case.eid}/transitions")
    if _refused(r, text):
        return
    assert r.status_code == 200, r.text
    steps = r.json()["transitions"]
    assert [s["action"] for s in steps] == ["report", "accept", "supervise"]
    accept = steps[1]
    assert accept["from"] == "reported" and accept["to"] == "accepted"
    if text == "full":
        assert accept["actor"] == "coordinator" and accept["note"] == NOTE
    elif text == "masked fields":
        assert accept["actor"] == mask_name("coordinator") and accept["note"] == NOTE
    elif text == "grid-level only":
        assert all("actor" not in s and "note" not in s and "photos" not in s for s in steps)
    else:
        raise AssertionError(text)


def probe_supervision(case: Case, who: str, text: str) -> None:
    r = case.get(who, "/events/supervision")
    if _refused(r, text):
        return
    assert r.status_code == 200, r.text
    docs = r.json()["events"]
    mine = [d for d in docs if d["id"] == case.eid]
    assert len(mine) == 1 and mine[0]["supervised"] is True and "supervised" in mine[0]["reasons"]
    _check_event(mine[0], text, case)


def probe_open311(case: Case, who: str, text: str) -> None:
    listed = case.get(who, "/open311/v2/requests.json", service_request_id=str(case.eid))
    one = case.get(who, f"/open311/v2/requests/{case.eid}.json")
    if _refused(listed, text):
        assert _refused(one, text)
        return
    assert listed.status_code == 200 and one.status_code == 200, (listed.text, one.text)
    assert listed.json() == one.json()
    (req,) = one.json()
    assert req["service_request_id"] == str(case.eid) and req["status"] == "open"
    if text in ("full", "masked fields"):
        assert req["description"] == DESCRIPTION
        assert req["lat"] is not None and req["long"] is not None
    elif text == "grid-level only":
        assert req["description"] is None and req["lat"] is None and req["long"] is None
        assert req["service_code"] == "city_management"
    else:
        raise AssertionError(text)
    assert REPORTER not in str(req) and CONTACT not in str(req)


def probe_kpis(case: Case, who: str, text: str) -> None:
    r = case.get(who, "/kpis", by="grid")
    if _refused(r, text):
        return
    assert r.status_code == 200 and text in ("full", "aggregates only"), r.text
    rows = {row["grid"]: row for row in r.json()["rows"]}
    counts = ("reported", "closed", "overdue", "reworked", "extended", "self_handled")
    if text == "full":
        assert rows[case.world.grid_a]["reported"] == case.grid_events
        for row in rows.values():  # only figures: no names, no text of an event
            assert all(
                v is None or isinstance(v, int | float) for k, v in row.items() if k != "grid"
            )
    else:  # aggregates only: no count of 1 or 2 anywhere (小数抑制)
        assert 1 <= case.grid_events < 3  # grid A holds a small count to hide
        assert rows[case.world.grid_a]["reported"] == "<3"
        assert rows[case.world.grid_a]["mean_hours_to_close"] is None
        cells = [row[c] for row in rows.values() for c in counts]
        assert all(v in ("<3", "*") or (isinstance(v, int) and v not in (1, 2)) for v in cells)
        assert any(isinstance(v, int) and v >= 3 for v in cells)
    assert DESCRIPTION not in r.text and REPORTER not in r.text


def probe_kpis_by_worker(case: Case, who: str, text: str) -> None:
    r = case.get(who, "/kpis", by="worker")
    if _refused(r, text):
        return
    assert r.status_code == 200 and text == "full", r.text
    workers = {row["worker"] for row in r.json()["rows"]}
    # Named people, unmasked, to staff only: who acted on the probe event and its assignees.
    assert {"admin", "coordinator", *case.assigned} <= workers


def probe_items(case: Case, who: str, text: str) -> None:
    listed = case.get(
        who, "/collections/events/items", grid_code=case.world.grid_a, limit=10_000, f="json"
    )
    one = case.get(who, f"/collections/events/items/{case.eid}", f="json")
    if _refused(listed, text):
        assert _refused(one, text)
        return
    assert listed.status_code == 200 and one.status_code == 200, (listed.text, one.text)
    feats = listed.json()["features"]
    assert len(feats) == case.grid_events
    props = one.json()["properties"]
    assert one.json()["geometry"]["type"] == "Point"
    assert props["description"] == DESCRIPTION
    if text == "full":
        assert props["assigned_to"] == case.assigned
    elif text == "masked fields":
        for gone in ("assigned_to", "reporter", "contact", "reported_by"):
            assert gone not in props, gone
            assert not any(gone in f["properties"] for f in feats), gone
        assert not any(n in str(feats) for n in case.assigned)
    else:
        raise AssertionError(text)


def probe_tiles(case: Case, who: str, text: str) -> None:
    r = case.get(who, f"/collections/events/tiles/WebMercatorQuad/{case.tile}")
    if _refused(r, text):
        return
    assert r.status_code == 200, r.text
    feats = mapbox_vector_tile.decode(r.content)["events"]["features"]
    mine = [f for f in feats if int(f["id"]) == case.eid]
    assert len(mine) == 1
    props = mine[0]["properties"]
    assert props["grid_code"] == case.world.grid_a
    if text == "full":
        assert "assigned_to" in props
    elif text == "masked fields":
        for gone in ("assigned_to", "reporter", "contact", "reported_by"):
            assert not any(gone in f["properties"] for f in feats), gone
    else:
        raise AssertionError(text)


PROBES: dict[str, Callable[[Case, str, str], None]] = {
    "events": probe_events,
    "transitions": probe_transitions,
    "supervision": probe_supervision,
    "open311": probe_open311,
    "kpis": probe_kpis,
    "kpis_by_worker": probe_kpis_by_worker,
    "items": probe_items,
    "tiles": probe_tiles,
}


def test_every_surface_has_a_probe() -> None:
    assert set(PROBES) == set(policy.SURFACES)


@pytest.mark.parametrize("surface", list(PROBES))
@pytest.mark.parametrize("who", list(CALLERS))
def test_role_reads_what_the_table_says(case: Case, who: str, surface: str) -> None:
    """The answer of *surface* to *who* is what its cell in docs/roles.md says."""
    text = DOC_TABLE[CALLERS[who]][surface]
    PROBES[surface](case, who, text)
