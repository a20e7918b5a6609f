"""Reporter and contact: masked in every event surface, unmasked only with an audit trail.

Issue 25: the OGC items of ``events`` (GeoJSON, HTML and the file exports)
show the reporter's name and contact masked exactly like ``/events`` to staff
and leave them out for other systems; ``unmask=true`` answers them in clear
only to the roles of :data:`gridmap.security.disclosure.UNMASK_ROLES` holding the
unmask grant, for events of their area, and writes one ``audit_log`` row per
event with the event's grid code (migration 030). On PostGIS a scoped
connection reads only its areas' audit rows, and the webhook tables keep
their secrets and other areas' rows from the application role.

The world is the demo's (real Helsinki OSM geometry, synthetic events), on
both stores; one more synthetic event with a reporter and a contact is
reported through the API in grid A.
"""

from __future__ import annotations

import io
import json
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import morecantile
import pandas as pd
import psycopg
import pyogrio
import pytest
from fastapi.testclient import TestClient

from gridmap.security import disclosure as policy
from gridmap.security.access import Principal
from gridmap.security.audit import read_log, record
from gridmap.security.auth import add_user, issue_token
from gridmap.security.privacy import mask_name
from gridmap.storage import open_store
from gridmap.storage.pgserver import PgServer
from gridmap.storage.postgis import PostGISStore
from tests.conftest import fresh_pg_url
from tests.security.conftest import PASSWORD, World, security_settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "roles.md"
REPORTER, CONTACT = "欧阳娜娜", "13912345678"
MASKED = {"reporter": mask_name(REPORTER), "contact": "139****5678"}
DESCRIPTION = "合成事件 synthetic unmask probe: 占道经营 street vending"
REASON = "12345 热线回访 hotline call-back"


def parse_unmask_table(text: str) -> dict[str, str]:
    """``{audience: cell}`` from the unmask table of ``docs/roles.md``."""
    block = text.split("<!-- unmask-table:begin", 1)[1].split("<!-- unmask-table:end", 1)[0]
    rows = [ln for ln in block.splitlines() if ln.startswith("|")][2:]
    out: dict[str, str] = {}
    for line in rows:
        first, cell = (c.strip() for c in line.strip().strip("|").split("|"))
        name = first.split("`")[1]
        out[name] = cell
    return out


def test_docs_unmask_table_is_the_policy() -> None:
    table = parse_unmask_table(DOC.read_text(encoding="utf-8"))
    assert set(table) == set(policy.AUDIENCES)
    for audience, cell in table.items():
        assert cell == policy.unmask_cell(audience), audience
    assert {a for a, c in table.items() if c.startswith("yes")} == policy.UNMASK_ROLES
    assert "grid_worker" not in policy.UNMASK_ROLES
    # the parser sees a hand edit
    edited = DOC.read_text(encoding="utf-8").replace(
        "| `grid_worker` 网格员 | no (403) |", "| `grid_worker` 网格员 | yes |"
    )
    assert parse_unmask_table(edited)["grid_worker"] != policy.unmask_cell("grid_worker")


# --- over HTTP, both stores ----------------------------------------------------------


@dataclass
class Probe:
    world: World
    client: TestClient
    eid: int

    def headers(self, who: str) -> dict[str, str]:
        if who == "hotline":
            return {"X-API-Key": self.world.api_key}
        return self.world.headers(who)

    def get(self, who: str, path: str, **params: Any) -> Any:
        return self.client.get(path, params=params, headers=self.headers(who))

    def unmask_rows(self) -> pd.DataFrame:
        log = read_log(self.world.store, action="personal.unmask", limit=None)
        return log[log["target"] == f"events:{self.eid}"]


@pytest.fixture(scope="module")
def probe(world: World, client: TestClient) -> Probe:
    """The probe event in grid A, and coordinators holding the unmask grant."""
    cfg = security_settings().token_config()
    for name, spec in {
        "town_unmask": dict(role="town_coordinator", areas=[world.town], can_unmask=True),
        # community staff with the grant, scoped to grid B only
        "staff_b": dict(role="community_staff", areas=[world.grid_b], can_unmask=True),
    }.items():
        user = add_user(world.store, name, password=PASSWORD, **spec)  # type: ignore[arg-type]
        world.tokens[name] = issue_token(user, cfg)
    grids = world.store.read("grids", where={"code": world.grid_a})
    p = grids.geometry.iloc[0].representative_point()
    body = {
        "category": "city_management",
        "description": DESCRIPTION,
        "reporter": REPORTER,
        "contact": CONTACT,
        "location": {"lon": p.x, "lat": p.y, "crs": "wgs84"},
    }
    r = client.post("/events", json=body, headers=world.headers("admin"))
    assert r.status_code == 201, r.text
    return Probe(world, client, int(r.json()["id"]))


def _props(probe: Probe, features: list[dict[str, Any]]) -> dict[str, Any]:
    (mine,) = [f for f in features if int(f["id"]) == probe.eid]
    props: dict[str, Any] = mine["properties"]
    return props


def _export(probe: Probe, who: str, kind: str, **params: Any) -> pd.DataFrame:
    r = probe.get(who, "/collections/events/items", f=kind, grid_code=probe.world.grid_a, **params)
    assert r.status_code == 200, r.text
    if kind == "csv":
        return pd.read_csv(io.StringIO(r.content.decode("utf-8")), dtype=str)
    if kind == "parquet":
        return pd.read_parquet(io.BytesIO(r.content))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"events.{kind}"
        path.write_bytes(r.content)
        return pyogrio.read_dataframe(path)


def _holds_clear(column: pd.Series) -> bool:
    return bool(column.map(lambda v: isinstance(v, str) and (REPORTER in v or CONTACT in v)).any())


STAFF = ["admin", "coordinator", "staff_a", "worker_a"]


@pytest.mark.parametrize("who", STAFF)
def test_items_show_masked_contacts_to_staff(probe: Probe, who: str) -> None:
    """GeoJSON page, one item, HTML and every export: masked as /events masks them."""
    before = len(probe.unmask_rows())
    events = probe.get(who, f"/events/{probe.eid}")
    assert events.status_code == 200, events.text
    assert {k: events.json()[k] for k in MASKED} == MASKED
    page = probe.get(who, "/collections/events/items", grid_code=probe.world.grid_a, f="json")
    assert page.status_code == 200, page.text
    assert {k: _props(probe, page.json()["features"])[k] for k in MASKED} == MASKED
    one = probe.get(who, f"/collections/events/items/{probe.eid}", f="json")
    assert one.status_code == 200, one.text
    assert {k: one.json()["properties"][k] for k in MASKED} == MASKED
    for r in (events, page, one):
        assert REPORTER not in r.text and CONTACT not in r.text
    html = probe.get(who, "/collections/events/items", grid_code=probe.world.grid_a, f="html")
    html_one = probe.get(who, f"/collections/events/items/{probe.eid}", f="html")
    for r in (html, html_one):
        assert r.status_code == 200 and "text/html" in r.headers["content-type"]
        assert MASKED["reporter"] in r.text and MASKED["contact"] in r.text
        assert REPORTER not in r.text and CONTACT not in r.text
    for kind in ("csv", "gpkg", "fgb", "parquet"):
        frame = _export(probe, who, kind)
        row = frame[frame["id"].astype(int) == probe.eid].iloc[0]
        assert (row["reporter"], row["contact"]) == (MASKED["reporter"], MASKED["contact"]), kind
        assert not any(_holds_clear(frame[c]) for c in frame.columns), kind
    assert len(probe.unmask_rows()) == before  # masked reads unmask nothing


def test_items_leave_contacts_out_for_other_systems_and_viewers(probe: Probe) -> None:
    page = probe.get("hotline", "/collections/events/items", grid_code=probe.world.grid_a)
    one = probe.get("hotline", f"/collections/events/items/{probe.eid}")
    assert page.status_code == 200 and one.status_code == 200, (page.text, one.text)
    props = _props(probe, page.json()["features"])
    assert props["description"] == DESCRIPTION  # the event is there, its people are not
    for doc in (props, one.json()["properties"]):
        assert "reporter" not in doc and "contact" not in doc
    for kind in ("csv", "parquet"):
        frame = _export(probe, "hotline", kind)
        assert probe.eid in frame["id"].astype(int).tolist()
        assert "reporter" not in frame.columns and "contact" not in frame.columns, kind
    for r in (page, one):
        assert MASKED["reporter"] not in r.text and REPORTER not in r.text
        assert MASKED["contact"] not in r.text and CONTACT not in r.text
    for path in ("/collections/events/items", f"/collections/events/items/{probe.eid}"):
        assert probe.get("viewer", path).status_code == 404
        assert probe.client.get(path).status_code == 404  # anonymous


def _check_unmask_row(row: pd.Series, probe: Probe, who: str, surface: str) -> None:
    assert row["actor"] == who and row["area_code"] == probe.world.grid_a
    assert pd.Timestamp(row["at"]) <= pd.Timestamp.now(tz="UTC")
    detail = json.loads(row["detail"])
    assert detail["fields"] == ["contact", "reporter"] and detail["surface"] == surface


@pytest.mark.parametrize("who", ["admin", "town_unmask"])
def test_unmask_gives_clear_text_and_one_audit_row_each(probe: Probe, who: str) -> None:
    rows = probe.unmask_rows
    n = len(rows())
    r = probe.get(who, f"/events/{probe.eid}", unmask="true", reason=REASON)
    assert r.status_code == 200, r.text
    assert (r.json()["reporter"], r.json()["contact"]) == (REPORTER, CONTACT)
    assert r.headers["cache-control"] == "no-store"
    assert len(rows()) == n + 1
    last = rows().iloc[-1]
    _check_unmask_row(last, probe, who, "events")
    assert json.loads(last["detail"])["reason"] == REASON
    assert last["role"] == {"admin": "city_admin", "town_unmask": "town_coordinator"}[who]

    one = probe.get(who, f"/collections/events/items/{probe.eid}", unmask="true")
    assert one.status_code == 200, one.text
    props = one.json()["properties"]
    assert (props["reporter"], props["contact"]) == (REPORTER, CONTACT)
    assert len(rows()) == n + 2
    _check_unmask_row(rows().iloc[-1], probe, who, "items")
    assert json.loads(rows().iloc[-1]["detail"])["reason"] is None

    frame = _export(probe, who, "csv", unmask="true")
    row = frame[frame["id"].astype(int) == probe.eid].iloc[0]
    assert (row["reporter"], row["contact"]) == (REPORTER, CONTACT)
    assert len(rows()) == n + 3
    _check_unmask_row(rows().iloc[-1], probe, who, "items.csv")


@pytest.mark.parametrize(
    ("who", "path"),
    [
        ("worker_a", "/events/{id}"),  # a grid worker, even with the account's grant
        ("worker_a", "/collections/events/items/{id}"),
        ("worker_a", "/collections/events/items"),
        ("coordinator", "/events/{id}"),  # the right role without the grant
        ("coordinator", "/collections/events/items"),
        ("staff_a", "/collections/events/items/{id}"),
        ("hotline", "/events/{id}"),
        ("hotline", "/collections/events/items/{id}"),
        ("viewer", "/events/{id}"),
    ],
)
def test_unmask_refused_with_403_naming_the_permission(probe: Probe, who: str, path: str) -> None:
    log_before = len(read_log(probe.world.store, action="personal.unmask", limit=None))
    r = probe.get(who, path.format(id=probe.eid), unmask="true", reason=REASON)
    assert r.status_code == 403, r.text
    assert "'unmask'" in r.text and "查看明文" in r.text
    assert REPORTER not in r.text and CONTACT not in r.text
    assert len(read_log(probe.world.store, action="personal.unmask", limit=None)) == log_before


def test_unmask_outside_the_area_finds_nothing(probe: Probe) -> None:
    """Community staff with the grant, of another grid: the event is not there (404)."""
    n = len(probe.unmask_rows())
    for path in (f"/events/{probe.eid}", f"/collections/events/items/{probe.eid}"):
        r = probe.get("staff_b", path, unmask="true", reason=REASON)
        assert r.status_code == 404, r.text
        assert REPORTER not in r.text
    page = probe.get(
        "staff_b", "/collections/events/items", unmask="true", grid_code=probe.world.grid_a
    )
    assert page.status_code == 200 and page.json()["features"] == []
    assert len(probe.unmask_rows()) == n
    # and its own area unmasks (the grant works), audited with grid B's code
    own = probe.get("staff_b", "/collections/events/items", unmask="true", limit=5)
    assert own.status_code == 200, own.text
    feats = own.json()["features"]
    assert feats and {f["properties"]["grid_code"] for f in feats} == {probe.world.grid_b}
    log = read_log(probe.world.store, actor="staff_b", limit=None)
    targets = {f"events:{f['id']}": f["properties"]["grid_code"] for f in feats}
    audited = log[log["target"].isin(targets)]
    assert len(audited) == len(feats)
    assert dict(zip(audited["target"], audited["area_code"], strict=True)) == targets


def test_bulk_unmask_needs_a_reason(probe: Probe) -> None:
    total = probe.world.store.count("events")
    assert total > policy.UNMASK_MAX_WITHOUT_REASON
    log = len(read_log(probe.world.store, action="personal.unmask", limit=None))
    r = probe.get("admin", "/collections/events/items", unmask="true", limit=150)
    assert r.status_code == 400, r.text
    assert "reason" in r.text and str(policy.UNMASK_MAX_WITHOUT_REASON) in r.text
    r = probe.get("admin", "/collections/events/items", unmask="true", f="csv")
    assert r.status_code == 400 and "reason" in r.text, r.text
    assert len(read_log(probe.world.store, action="personal.unmask", limit=None)) == log
    # a page of 100 needs none; 150 with a reason: one audit row per event shown
    r = probe.get("admin", "/collections/events/items", unmask="true", limit=100)
    assert r.status_code == 200 and r.json()["numberReturned"] == 100, r.text
    r = probe.get("admin", "/collections/events/items", unmask="true", limit=150, reason=REASON)
    assert r.status_code == 200, r.text
    ids = {f"events:{f['id']}" for f in r.json()["features"]}
    assert len(ids) == 150
    after = read_log(probe.world.store, action="personal.unmask", limit=None)
    assert len(after) == log + 250
    tail = after.iloc[-150:]
    assert set(tail["target"]) == ids and tail["area_code"].notna().all()
    assert {json.loads(d)["reason"] for d in tail["detail"]} == {REASON}


def test_tiles_take_no_unmask(probe: Probe) -> None:
    grids = probe.world.store.read("grids", where={"code": probe.world.grid_a})
    p = grids.geometry.iloc[0].representative_point()
    t = morecantile.tms.get("WebMercatorQuad").tile(p.x, p.y, 15)
    path = f"/collections/events/tiles/WebMercatorQuad/{t.z}/{t.y}/{t.x}"
    assert probe.get("admin", path).status_code == 200
    r = probe.get("admin", path, unmask="true", reason=REASON)
    assert r.status_code == 400 and "unmask" in r.text, r.text
    # other layers take no unmask either
    r = probe.get("admin", "/collections/grids/items", unmask="true")
    assert r.status_code == 400 and "unmask" in r.text, r.text


# --- PostGIS: row-level security of migration 030 ------------------------------------

GRID_A, GRID_B = "990100001001003", "990100002001001"
TOWN_A = GRID_A[:9]


@pytest.fixture(scope="module")
def pg_store(pg_server: PgServer) -> Iterator[PostGISStore]:
    with fresh_pg_url(pg_server) as url:
        store = open_store(url, migrate=True)
        assert isinstance(store, PostGISStore)
        try:
            yield store
        finally:
            store.close()


@pytest.fixture(scope="module")
def login_url(pg_store: PostGISStore, pg_server: PgServer) -> Iterator[str]:
    """A LOGIN role that is a member of gridmap_app (how a production API may connect)."""
    name = "api_" + uuid.uuid4().hex[:8]
    with psycopg.connect(pg_store.url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {name} LOGIN INHERIT IN ROLE gridmap_app")
    try:
        yield pg_store.url.replace(f"{pg_server.user}@", f"{name}@", 1)
    finally:
        with psycopg.connect(pg_store.url, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {name}")
            conn.execute(f"DROP ROLE {name}")


@pytest.mark.postgis
def test_scoped_connection_reads_only_its_areas_audit_rows(
    pg_store: PostGISStore, login_url: str
) -> None:
    admin = Principal("admin", "city_admin", can_unmask=True)
    policy.audit_unmask(pg_store, admin, [(1, GRID_A), (2, GRID_B)], surface="events")
    record(pg_store, "someone", "login.failure")  # no area: city-wide only
    record(pg_store, admin, "personal.read", "households:3", area=GRID_A[:12])
    assert pg_store.sql("SELECT area_code FROM audit_log ORDER BY id") == [
        (GRID_A,),
        (GRID_B,),
        (None,),
        (GRID_A[:12],),
    ]
    with pg_store.scoped([GRID_A]):
        seen = pg_store.sql("SELECT target FROM audit_log ORDER BY id")
    assert seen == [("events:1",)]
    with pg_store.scoped([TOWN_A]):
        seen = pg_store.sql("SELECT target FROM audit_log ORDER BY id")
    assert seen == [("events:1",), ("households:3",)]
    with pg_store.scoped([GRID_B]):
        assert pg_store.sql("SELECT count(*) FROM audit_log WHERE area_code = %s", [GRID_A]) == [
            (0,)
        ]
    with pg_store.scoped([""]):
        assert pg_store.sql("SELECT count(*) FROM audit_log") == [(4,)]
    with pg_store.scoped([]):
        assert pg_store.sql("SELECT count(*) FROM audit_log") == [(0,)]
    # a non-trusted store on a login role: nothing unscoped, its area when scoped
    api = PostGISStore(login_url, trusted=False)
    try:
        assert api.count("audit_log") == 0
        with api.scoped([GRID_B]):
            assert api.read("audit_log")["target"].tolist() == ["events:2"]
            record(api, admin, "personal.unmask", "events:9", area=GRID_A)  # appending is open
            assert api.count("audit_log") == 1
    finally:
        api.close()
    assert pg_store.count("audit_log", where={"target": "events:9"}) == 1
    with pytest.raises(psycopg.errors.InsufficientPrivilege), pg_store.scoped([GRID_A]):
        pg_store.sql("DELETE FROM audit_log")


@pytest.mark.postgis
def test_webhook_tables_keep_secrets_and_other_areas_from_the_app_role(
    pg_store: PostGISStore, login_url: str
) -> None:
    rows = {"a": ([GRID_A], GRID_A), "b": ([GRID_B], GRID_B), "city": ([""], GRID_A)}
    for key, (areas, _) in rows.items():
        pg_store.sql(
            "INSERT INTO webhook_subscriptions (source_key, url, secret, areas, active) "
            "VALUES (%s, 'https://example.org/hook', %s, %s, true)",
            [f"sub:{key}", f"secret-{key}-0123456789", areas],
        )
    subs = dict(pg_store.sql("SELECT source_key, id FROM webhook_subscriptions"))
    for key, (_, grid) in rows.items():
        pg_store.sql(
            "INSERT INTO webhook_outbox (source_key, event_id, grid_code, kind, state) "
            "VALUES (%s, 1, %s, 'reported', 'new')",
            [f"out:{key}", grid],
        )
        pg_store.sql(
            "INSERT INTO webhook_deliveries (source_key, delivery_id, subscription_id, "
            "event_id, status) VALUES (%s, %s, %s, 1, 'dead')",
            [f"del:{key}", key, subs[f"sub:{key}"]],
        )
    # the trusted store (owner, the delivery worker) sees everything
    assert pg_store.sql("SELECT count(*) FROM webhook_deliveries") == [(3,)]
    with pg_store.scoped([TOWN_A]):
        assert pg_store.sql("SELECT source_key FROM webhook_subscriptions") == [("sub:a",)]
        assert pg_store.sql("SELECT source_key FROM webhook_outbox ORDER BY id") == [
            ("out:a",),
            ("out:city",),
        ]
        assert pg_store.sql("SELECT delivery_id FROM webhook_deliveries") == [("a",)]
    for statement in (
        "SELECT secret FROM webhook_subscriptions",
        "SELECT * FROM webhook_subscriptions",
        "UPDATE webhook_subscriptions SET url = 'http://127.0.0.1/'",
        "UPDATE webhook_deliveries SET status = 'pending'",
        "INSERT INTO webhook_subscriptions (source_key, url) VALUES ('x', 'http://10.0.0.1/')",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege), pg_store.scoped([""]):
            pg_store.sql(statement)
    with psycopg.connect(login_url) as conn:
        assert conn.execute("SELECT count(*) FROM webhook_outbox").fetchone() == (0,)
        conn.execute("SELECT set_config('gridmap.areas', '*', true)")
        assert conn.execute("SELECT count(*) FROM webhook_subscriptions").fetchone() == (3,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT secret FROM webhook_subscriptions")
    flags = pg_store.sql(
        "SELECT relname, relrowsecurity FROM pg_class WHERE relname LIKE 'webhook_%%' "
        "AND relkind = 'r' ORDER BY relname"
    )
    assert flags == [
        ("webhook_deliveries", True),
        ("webhook_outbox", True),
        ("webhook_subscriptions", True),
    ]
