"""The storage conformance suite: every test runs on DuckDB and on a real PostGIS."""

from __future__ import annotations

from collections.abc import Iterator

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from gridmap.common.errors import BadInput, NotFound, UnknownLayer
from gridmap.storage import Store, open_store


def _buildings(n: int = 3, source: str = "test") -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "name": [f"楼{i} 𠮷 <b>" for i in range(n)],
            "use": ["apartments"] * n,
            "floors": [i + 1 for i in range(n)],
            "households": [10 * (i + 1) for i in range(n)],
            "residents": [26 * (i + 1) for i in range(n)],
            "area_m2": [100.5 + i for i in range(n)],
            "source": source,
            "source_id": [f"way/{i}" for i in range(n)],
        },
        geometry=[
            shapely.box(24.94 + i * 0.001, 60.17, 24.9405 + i * 0.001, 60.1705) for i in range(n)
        ],
        crs="EPSG:4326",
    )


def test_migrate_is_idempotent(store: Store) -> None:
    v = store.schema_version()
    assert v >= 2
    assert store.migrate() == v


def test_upgrade_keeps_data(store_url: str) -> None:
    s = open_store(store_url)
    try:
        assert s.migrate(target=1) == 1
        s.write("buildings", _buildings())
        assert s.migrate() >= 2
        assert s.count("buildings") == 3
    finally:
        s.close()


def test_write_read_roundtrip(store: Store) -> None:
    g = _buildings()
    res = store.write("buildings", g)
    assert (res.offered, res.inserted) == (3, 3)
    out = store.read("buildings")
    assert list(out["name"]) == list(g["name"])
    assert list(out["floors"]) == [1, 2, 3]
    assert out.crs.to_epsg() == 4326
    assert all(
        shapely.equals_exact(a, b, 1e-12) for a, b in zip(out.geometry, g.geometry, strict=True)
    )


def test_write_is_idempotent(store: Store) -> None:
    store.write("buildings", _buildings())
    again = store.write("buildings", _buildings())
    assert again.inserted == 0 and again.skipped == 3
    assert store.count("buildings") == 3


def test_rows_without_source_id_are_deduplicated_by_content(store: Store) -> None:
    g = _buildings().drop(columns=["source_id"])
    assert store.write("buildings", g).inserted == 3
    assert store.write("buildings", g).inserted == 0
    g2 = g.copy()
    g2.loc[0, "floors"] = 9
    assert store.write("buildings", g2).inserted == 1


def test_transaction_rolls_back(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        store.write("buildings", _buildings())
        store.write(
            "roads",
            gpd.GeoDataFrame(
                {"name": ["x"], "source": "t", "source_id": ["1"]},
                geometry=[shapely.LineString([(24.94, 60.17), (24.95, 60.17)])],
                crs=4326,
            ),
        )
        raise RuntimeError("boom")
    assert store.count("buildings") == 0
    assert store.count("roads") == 0


def test_failed_write_leaves_store_unchanged(store: Store) -> None:
    store.write("buildings", _buildings(2))
    bad = _buildings(3, source="other")
    bad["floors"] = bad["floors"].astype(object)
    bad.loc[1, "floors"] = "many"
    with pytest.raises(BadInput, match="floors"):
        store.write("buildings", bad)
    assert store.count("buildings") == 2


def test_bbox_filter_and_paging(store: Store) -> None:
    store.write("buildings", _buildings(10))
    inside = store.read("buildings", bbox=(24.9395, 60.1695, 24.9425, 60.1710))
    assert len(inside) == 3
    assert store.count("buildings", bbox=(24.9395, 60.1695, 24.9425, 60.1710)) == 3
    page1 = store.read("buildings", limit=4)
    page2 = store.read("buildings", limit=4, offset=4)
    assert len(page1) == 4 and len(page2) == 4
    assert set(page1["id"]).isdisjoint(page2["id"])
    assert list(page1["id"]) == sorted(page1["id"])


@pytest.mark.parametrize(
    "bbox",
    [
        (1, 2, 3),
        (1, 2, 3, 4, 5),
        (float("nan"), 0, 1, 1),
        (2, 0, 1, 1),
        (0, -91, 1, 1),
        ("a", 0, 1, 1),
    ],
)
def test_bad_bbox(store: Store, bbox: tuple) -> None:
    with pytest.raises(BadInput):
        store.read("buildings", bbox=bbox)  # type: ignore[arg-type]


def test_where_filters_and_unknown_property(store: Store) -> None:
    store.write("buildings", _buildings(4))
    assert store.count("buildings", where={"floors": [1, 2]}) == 2
    assert len(store.read("buildings", where={"use": "apartments"})) == 4
    with pytest.raises(BadInput, match="unknown property"):
        store.read("buildings", where={"name; DROP TABLE buildings": 1})
    assert store.count("buildings", where={"name": "x' OR '1'='1"}) == 0


def test_get_and_not_found(store: Store) -> None:
    store.write("buildings", _buildings(1))
    first = store.read("buildings")
    row = store.get("buildings", int(first["id"].iloc[0]))
    assert row["name"].iloc[0] == "楼0 𠮷 <b>"
    with pytest.raises(NotFound):
        store.get("buildings", 2**62)


def test_unknown_layer(store: Store) -> None:
    with pytest.raises(UnknownLayer):
        store.read("nope")


def test_delete(store: Store) -> None:
    store.write("buildings", _buildings(3))
    assert store.delete("buildings", where={"floors": 1}) == 1
    assert store.count("buildings") == 2


def test_replace_mode(store: Store) -> None:
    store.write("buildings", _buildings(3))
    store.write("buildings", _buildings(1, source="new"), mode="replace")
    assert store.count("buildings") == 1


def test_bounds(store: Store) -> None:
    assert store.bounds("buildings") is None
    store.write("buildings", _buildings(2))
    b = store.bounds("buildings")
    assert b is not None
    assert b == pytest.approx((24.94, 60.17, 24.9415, 60.1705))


def test_types_roundtrip(store: Store) -> None:
    ev = gpd.GeoDataFrame(
        {
            "category": ["safety_hazard", "dispute"],
            "status": ["reported", "closed"],
            "reported_at": pd.to_datetime(
                ["2026-11-01T08:00:00+08:00", "2026-11-02T00:00:00Z"], utc=True
            ),
            "closed_at": [pd.NaT, pd.Timestamp("2026-11-03T00:00:00Z")],
            "synthetic": [True, True],
            "source": "t",
            "source_id": ["1", "2"],
        },
        geometry=[shapely.Point(24.94, 60.17), shapely.Point(24.95, 60.18)],
        crs=4326,
    )
    store.write("events", ev)
    out = store.read("events")
    assert out["reported_at"].iloc[0] == pd.Timestamp("2026-11-01T00:00:00Z")
    assert pd.isna(out["closed_at"].iloc[0])
    assert bool(out["synthetic"].iloc[1]) is True
    grids = gpd.GeoDataFrame(
        {"code": ["990100001001001"], "workers": [["张三", "李四"]], "households": [300]},
        geometry=[shapely.box(24.9, 60.1, 25.0, 60.2)],
        crs=4326,
    )
    store.write("grids", grids)
    assert list(store.read("grids")["workers"].iloc[0]) == ["张三", "李四"]
    workers = pd.DataFrame(
        {"name": ["张三"], "role": ["grid_worker"], "grid_codes": [["990100001001001"]]}
    )
    store.write("workers", workers)
    assert store.read("workers")["role"].tolist() == ["grid_worker"]


@pytest.mark.parametrize("rows", [2, 25_000])  # the staged path and the bulk COPY path
def test_text_columns_of_any_dtype_roundtrip(store: Store, rows: int) -> None:
    """Text columns given as Python objects (strings, numbers, None, NaN, pd.NA),
    as pandas' Arrow-backed strings or as numbers are stored as text, missing as null."""
    mixed = ["住宅 residential", None, 12, float("nan"), pd.NA, "b"]
    n = max(_bulk_rows(store, rows) if rows > 2 else rows, len(mixed))
    b = gpd.GeoDataFrame(
        {
            "name": pd.Series((mixed * n)[:n], dtype=object),
            "use": pd.Series((["商业", None] * n)[:n], dtype="string"),
            "address": np.arange(n) % 7,
            "source_id": [f"t{i}" for i in range(n)],
        },
        geometry=shapely.points(24.9 + np.arange(n) * 1e-6, 60.1),
        crs=4326,
    )
    assert store.write("buildings", b).inserted == n
    out = store.read("buildings").sort_values("source_id", key=lambda k: k.str[1:].astype(int))
    assert out["name"].tolist()[:6] == ["住宅 residential", None, "12", None, None, "b"]
    assert out["use"].tolist()[:2] == ["商业", None]
    assert out["address"].tolist()[:8] == [str(i % 7) for i in range(min(n, 8))]


def test_null_geometry_rejected(store: Store) -> None:
    g = _buildings(2)
    g.loc[1, "geometry"] = None
    with pytest.raises(BadInput, match="geometry"):
        store.write("buildings", g)
    assert store.count("buildings") == 0


def test_non_wgs84_rejected(store: Store) -> None:
    with pytest.raises(BadInput, match="WGS84"):
        store.write("buildings", _buildings().to_crs(3857))


def test_update_sets_columns_by_id(store: Store) -> None:
    store.write("buildings", _buildings(3))
    ids = store.read("buildings")["id"].tolist()
    changed = store.update(
        "buildings", pd.DataFrame({"id": ids[:2], "grid_code": ["990100001001001", None]})
    )
    assert changed == 2
    out = store.read("buildings").set_index("id")
    assert out.loc[ids[0], "grid_code"] == "990100001001001"
    assert out.loc[ids[1], "grid_code"] is None
    assert out.loc[ids[2], "floors"] == 3
    with pytest.raises(BadInput, match="unknown"):
        store.update("buildings", pd.DataFrame({"id": ids, "nope": 1}))


def _many_points(n: int, source: str = "bulk") -> gpd.GeoDataFrame:
    rng = np.random.default_rng(1)
    return gpd.GeoDataFrame(
        {
            "category": "safety_hazard",
            "status": "reported",
            "source": source,
            "source_id": [str(i) for i in range(n)],
            "reported_at": pd.Timestamp("2026-11-01T00:00:00Z"),
        },
        geometry=shapely.points(rng.uniform(24.9, 25.0, n), rng.uniform(60.1, 60.2, n)),
        crs=4326,
    )


def _bulk_rows(store: Store, postgis_rows: int) -> int:
    """Rows of a bulk-load test: *postgis_rows* on PostGIS, whose bulk path starts at
    20,000 rows; 5,000 on DuckDB, which has no size-dependent path (more than two of
    its 2,048-row vectors take the same way as 25,000 rows, in a fifth of the time)."""
    return postgis_rows if store.dialect == "postgis" else 5_000


def test_bulk_load_into_empty_table_keeps_indexes_and_idempotence(store: Store) -> None:
    def indexes() -> set[tuple[str, str]]:
        rows = store.sql(  # type: ignore[attr-defined]
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'events'"
        )
        return {(r[0], r[1]) for r in rows}

    before = indexes() if store.dialect == "postgis" else set()
    n = _bulk_rows(store, 25_000)
    ev = _many_points(n)
    assert store.write("events", ev).inserted == n
    assert store.write("events", ev).inserted == 0  # unique source_key is back
    assert store.count("events", bbox=(24.9, 60.1, 24.95, 60.15)) == int(
        ((ev.geometry.x <= 24.95) & (ev.geometry.y <= 60.15)).sum()
    )
    if store.dialect == "postgis":
        # Every index and key dropped for the load is back, defined as before.
        assert indexes() == before
        assert {"events_geometry_gist", "events_grid_code_idx"} <= {n for n, _ in before}
    ids = store.read("events")["id"]
    assert ids.is_unique and len(ids) == n
    # The id sequence moved past the bulk block: a later write gets fresh ids.
    assert store.write("events", _many_points(3, source="later")).inserted == 3
    later = store.read("events", where={"source": "later"})["id"]
    assert later.min() > ids.max()


def test_bulk_load_rebuilds_the_primary_key(store: Store) -> None:
    """Buildings (a table with a primary key): the key is dropped for COPY and comes back."""
    n = _bulk_rows(store, 20_000)
    assert store.write("buildings", _buildings(n, source="bulk")).inserted == n
    ids = store.read("buildings")["id"]
    assert ids.is_unique and ids.min() >= 1
    if store.dialect == "postgis":
        row = store.sql(  # type: ignore[attr-defined]
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'buildings'::regclass AND contype = 'p'"
        )
        assert row == [("PRIMARY KEY (id)",)]
    assert store.write("buildings", _buildings(2, source="later")).inserted == 2
    assert store.read("buildings", where={"source": "later"})["id"].min() > ids.max()


@pytest.fixture
def pg(pg_migrated_url: str) -> Iterator[Store]:
    """A PostGIS store alone, for what only PostgreSQL has (COPY FREEZE, collations)."""
    s = open_store(pg_migrated_url, migrate=True)
    yield s
    s.close()


@pytest.mark.postgis
def test_bulk_load_lands_frozen_rows(pg: Store) -> None:
    """Buildings loaded by COPY FREEZE are all-visible and frozen at once."""
    store = pg
    assert store.write("buildings", _buildings(20_000, source="bulk")).inserted == 20_000
    store.sql("CREATE EXTENSION IF NOT EXISTS pg_visibility")  # type: ignore[attr-defined]
    (pages, frozen), *_ = store.sql(  # type: ignore[attr-defined]
        "SELECT pg_relation_size('buildings') / current_setting('block_size')::int, "
        "all_frozen FROM pg_visibility_map_summary('buildings')"
    )
    assert pages > 0 and frozen == pages
    # FREEZE left the keys in place: the same rows again add nothing.
    assert store.write("buildings", _buildings(20_000, source="bulk")).inserted == 0


def test_large_scoped_write_never_takes_the_bulk_path(store: Store) -> None:
    """A scoped writer sees only its area, so "the table is empty" is not its to say.

    The area-scoped application role neither owns the table (it may not drop
    indexes) nor sees the other areas' rows; its large write goes through the
    staged insert and leaves everyone else's rows and keys alone.
    """
    other = _buildings(1, source="other")
    other["grid_code"] = "990100002001001"
    store.write("buildings", other)
    n = _bulk_rows(store, 20_000)
    mine = _buildings(n, source="mine")
    mine["grid_code"] = "990100001001001"
    with store.scoped(["990100001"]):
        if store.dialect == "postgis":  # row-level security: the other area is out of sight
            assert store.count("buildings") == 0
        assert store.write("buildings", mine).inserted == n
        assert store.write("buildings", mine).inserted == 0
    assert store.count("buildings") == n + 1
    assert store.count("buildings", where={"source": "other"}) == 1


@pytest.mark.postgis
def test_source_keys_compare_bytewise(pg: Store) -> None:
    """Every source_key column is COLLATE "C" (015): a cheap unique index, same equality."""
    store = pg
    rows = store.sql(  # type: ignore[attr-defined]
        "SELECT c.relname, coalesce(l.collname, '') FROM pg_attribute a "
        "JOIN pg_class c ON c.oid = a.attrelid "
        "LEFT JOIN pg_collation l ON l.oid = a.attcollation "
        "WHERE a.attname = 'source_key' AND c.relkind IN ('r', 'p') "
        "AND c.relnamespace = current_schema()::regnamespace"
    )
    assert {"buildings", "events", "grids", "roads"} <= {r[0] for r in rows}
    assert {r[1] for r in rows} == {"C"}
    # Keys differing only in case or accents stay distinct, as before.
    b = _buildings(3)
    b["source_id"] = ["É", "é", "e"]
    assert store.write("buildings", b).inserted == 3


def test_text_with_nul_is_refused_by_name(store: Store) -> None:
    """NUL cannot live in PostgreSQL text: both stores refuse it, naming the column."""
    store.write("buildings", _buildings(1, source="before"))
    bad = _buildings(3)
    bad.loc[1, "name"] = "楼\x00一"
    with pytest.raises(BadInput, match="column 'name' contains a NUL") as err:
        store.write("buildings", bad)
    assert err.value.field == "name"
    assert store.count("buildings") == 1  # nothing of the refused batch landed


def test_bulk_load_failure_rolls_back_everything(store: Store) -> None:
    ev = _many_points(_bulk_rows(store, 25_000))
    with pytest.raises(RuntimeError), store.transaction():
        store.write("events", ev)
        raise RuntimeError("crash after the bulk copy")
    assert store.count("events") == 0
    assert store.write("events", ev.iloc[:10]).inserted == 10
    assert store.write("events", ev.iloc[:10]).inserted == 0


def test_update_with_condition_is_compare_and_set(store: Store) -> None:
    store.write("buildings", _buildings(2))
    ids = store.read("buildings")["id"].tolist()
    frame = pd.DataFrame({"id": [ids[0]], "floors": [7]})
    assert store.update("buildings", frame, where={"floors": 99}) == 0  # stale
    assert store.update("buildings", frame, where={"floors": 1}) == 1
    assert store.update("buildings", frame, where={"floors": 1}) == 0  # already changed
    assert store.get("buildings", ids[0])["floors"].iloc[0] == 7


def test_comparison_filters(store: Store) -> None:
    from gridmap.storage import AllOf, Cmp

    store.write("buildings", _buildings(5))
    assert store.count("buildings", where={"floors": Cmp(">=", 3)}) == 3
    assert store.count("buildings", where={"floors": AllOf((Cmp(">", 1), Cmp("<", 5)))}) == 3
    with pytest.raises(BadInput, match="comparison"):
        store.count("buildings", where={"floors": Cmp("; DROP", 1)})


def test_prefix_filter_scopes_by_code_hierarchy(store: Store) -> None:
    from gridmap.storage import Prefix

    b = _buildings(4)
    b["grid_code"] = ["990100001001001", "990100001001002", "990100001002001", None]
    store.write("buildings", b)
    assert store.count("buildings", where={"grid_code": Prefix(("990100001001",))}) == 2
    assert (
        store.count("buildings", where={"grid_code": Prefix(("990100001001001", "990100001002"))})
        == 2
    )
    assert store.count("buildings", where={"grid_code": Prefix(("",))}) == 4
    assert store.count("buildings", where={"grid_code": Prefix(())}) == 0
    with pytest.raises(BadInput):
        store.count("buildings", where={"grid_code": Prefix(("99%",))})


def test_column_range(store: Store) -> None:
    assert store.column_range("events", "reported_at") == (None, None)
    store.write("events", _many_points(5))
    lo, hi = store.column_range("events", "reported_at")
    assert lo == hi == pd.Timestamp("2026-11-01T00:00:00Z")
    store.write("buildings", _buildings(3))
    assert store.column_range("buildings", "floors") == (1, 3)
    with pytest.raises(BadInput):
        store.column_range("buildings", "nope")


def test_time_comparison_filters(store: Store) -> None:
    from gridmap.storage import AllOf, Cmp

    ev = _many_points(10)
    ev["reported_at"] = pd.date_range("2026-11-01", periods=10, freq="D", tz="UTC")
    store.write("events", ev)
    t0, t1 = pd.Timestamp("2026-11-03T00:00:00Z"), pd.Timestamp("2026-11-05T00:00:00Z")
    where = {"reported_at": AllOf((Cmp(">=", t0.to_pydatetime()), Cmp("<=", t1.to_pydatetime())))}
    assert store.count("events", where=where) == 3
    assert len(store.read("events", where=where)) == 3
