"""The embedded store survives crashes: kill -9, SIGTERM and power loss (issue 20).

Root cause of the failures these tests reproduce (DuckDB 1.5.5 with
duckdb-extension-spatial 1.5.5): a write-ahead log left by a process that
did not close the file is replayed into tables whose indexes are not bound
yet, so DuckDB buffers the replayed appends/deletes and applies them when an
index is first bound; the R-tree's append then fails with "INTERNAL Error:
Operation requires a flat vector but a non-flat vector was encountered" and
DuckDB invalidates the database. The store now replays a leftover log with
its R-tree indexes dropped and builds them again (gridmap.storage.duckdb).

Everything here is real: real store files, real ``gridmap serve`` processes
killed with real signals, power loss simulated by copying the files of a
stopped (SIGSTOP) server mid-load. Events are synthetic, on the real Helsinki
demo grids. These tests use only the store's public interface, so they run
unchanged on the code before the fix (where they fail).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import httpx
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from gridmap.storage import Store, open_store
from tests.conftest import free_port, wait_for_port
from tests.events_world import make_world

ROOT = Path(__file__).resolve().parents[3]
#: The whole plane in degrees: a bbox query over it goes through the R-tree index.
EVERYWHERE = (-180.0, -90.0, 180.0, 90.0)


@dataclass
class Template:
    """A migrated store file holding the demo world and a demo admin."""

    path: Path
    token: str
    points: list[tuple[float, float]] = field(default_factory=list)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    from gridmap.common.settings import SecuritySettings
    from gridmap.security.auth import demo_users, get_user, issue_token

    path = tmp_path_factory.mktemp("crash") / "world.duckdb"
    store = open_store(f"duckdb:///{path}", migrate=True)
    try:
        world = make_world(store)
        demo_users(store, grid_code=world.code(0), password="synthetic-demo-password")
        admin = get_user(store, "demo_admin")
        assert admin is not None
        token = issue_token(admin, SecuritySettings().token_config(), minutes=60)
        points = [world.point(i) for i in range(min(len(world.grids), 8))]
    finally:
        store.close()
    return Template(path, token, points)


def _copy_store(src: Path, dst: Path) -> Path:
    """Copy a store file and its write-ahead log, as they are on disk now."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    wal = Path(f"{src}.wal")
    if wal.exists():
        shutil.copyfile(wal, f"{dst}.wal")
    return dst


def _events(points: list[tuple[float, float]], tag: str) -> gpd.GeoDataFrame:
    n = len(points)
    return gpd.GeoDataFrame(
        {
            "category": ["dispute"] * n,
            "status": ["reported"] * n,
            "description": [f"合成事件 synthetic {tag} {i}" for i in range(n)],
            "reported_at": pd.Timestamp("2026-03-01T08:00:00Z"),
            "synthetic": True,
            "source": "crash-test",
            "source_id": [f"{tag}/{i}" for i in range(n)],
        },
        geometry=[shapely.Point(x, y) for x, y in points],
        crs="EPSG:4326",
    )


def _more_writes(store: Store, points: list[tuple[float, float]], tag: str) -> None:
    """Insert, delete and query through the R-tree, as the service does after a restart."""
    before = store.count("events")
    assert store.write("events", _events(points[:3], tag)).inserted == 3
    assert store.count("events", bbox=EVERYWHERE) == before + 3
    mine = store.read("events", where={"source": "crash-test"})
    gone = int(mine["id"].iloc[-1])
    assert store.delete("events", where={"id": [gone]}) == 1
    assert store.count("events", bbox=EVERYWHERE) == before + 2


# -- the root cause, deterministically ----------------------------------------------
_RAW_WRITER = textwrap.dedent(
    """
    import os, sys
    import duckdb, duckdb_extension_spatial
    from pathlib import Path
    ext = sorted((Path(duckdb_extension_spatial.__file__).parent / "extensions").glob(
        f"v{duckdb.__version__}/spatial.duckdb_extension"))[-1]
    con = duckdb.connect(":memory:")
    con.execute(f"LOAD '{ext}'")
    con.execute(f"ATTACH '{sys.argv[1]}' AS g")
    con.execute("USE g")
    for i in range(3):  # one row per statement, as the API writes events
        con.execute(
            "INSERT INTO events (source_key, category, status, geometry) "
            "VALUES (?, 'dispute', 'reported', ST_Point(?, ?))",
            [f"raw/{i}", float(sys.argv[2]), float(sys.argv[3])],
        )
    con.execute("DELETE FROM events WHERE source_key = 'raw/0'")
    os._exit(0)  # no checkpoint, no close: the log stays behind
    """
)


def test_a_log_left_with_rtree_rows_is_replayed_into_a_usable_store(
    template: Template, tmp_path: Path
) -> None:
    path = _copy_store(template.path, tmp_path / "raw.duckdb")
    x, y = template.points[0]
    subprocess.run([sys.executable, "-c", _RAW_WRITER, str(path), str(x), str(y)], check=True)
    assert Path(f"{path}.wal").stat().st_size > 0
    store = open_store(f"duckdb:///{path}")
    try:
        assert store.count("events") == 2  # both acknowledged rows, not the deleted one
        assert store.count("events", bbox=EVERYWHERE) == 2  # ... and the R-tree finds them
        _more_writes(store, template.points, "after-raw")
    finally:
        store.close()
    store = open_store(f"duckdb:///{path}")  # and once more after a clean close
    try:
        assert store.count("events", bbox=EVERYWHERE) == 4
    finally:
        store.close()


# -- mixed writes, then an unclean close (Hypothesis) -------------------------------
_SPATIAL = ("buildings", "roads", "key_areas", "events")


def _frame(layer: str, keys: list[int], rnd: random.Random) -> gpd.GeoDataFrame:
    geoms: list[shapely.Geometry] = []
    for _ in keys:
        x, y = 24.90 + rnd.random() * 0.1, 60.15 + rnd.random() * 0.05
        if layer == "roads":
            geoms.append(shapely.LineString([(x, y), (x + 0.001, y + 0.0005)]))
        elif layer == "events":
            geoms.append(shapely.Point(x, y))
        else:
            geoms.append(shapely.box(x, y, x + 0.0005, y + 0.0004))
    data: dict[str, object] = {"source": "hypothesis", "source_id": [f"k{k}" for k in keys]}
    if layer == "events":
        data.update(category="dispute", status="reported", synthetic=True)
    return gpd.GeoDataFrame(data, geometry=geoms, crs="EPSG:4326")


_ops = st.lists(
    st.tuples(
        st.sampled_from(["insert", "insert", "replace", "delete", "update", "checkpoint"]),
        st.sampled_from(_SPATIAL),
        st.integers(min_value=1, max_value=40),
    ),
    min_size=1,
    max_size=12,
)


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hyp") / "empty.duckdb"
    open_store(f"duckdb:///{path}", migrate=True).close()
    return path


@settings(
    max_examples=12,
    deadline=None,
    # each example opens real files: no shrinking (minutes), the failing example is shown
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=_ops, seed=st.integers(min_value=0, max_value=2**16))
def test_mixed_writes_then_unclean_close_reopen_cleanly(
    empty_store: Path, tmp_path: Path, ops: list[tuple[str, str, int]], seed: int
) -> None:
    """Insert/replace/delete/update on R-tree layers, then the files copied mid-run
    (as a power loss or kill -9 leaves them: data file plus write-ahead log)."""
    work = tmp_path / uuid.uuid4().hex
    live = _copy_store(empty_store, work / "live.duckdb")
    rnd = random.Random(seed)
    model: dict[str, set[str]] = {layer: set() for layer in _SPATIAL}
    next_key = 0
    store = open_store(f"duckdb:///{live}")
    try:
        for op, layer, n in ops:
            if op in ("insert", "replace"):
                keys = list(range(next_key, next_key + n))
                next_key += n
                store.write(
                    layer, _frame(layer, keys, rnd), mode="append" if op == "insert" else "replace"
                )
                fresh = {f"k{k}" for k in keys}
                model[layer] = model[layer] | fresh if op == "insert" else fresh
            elif op == "delete" and model[layer]:
                doomed = sorted(model[layer])[: max(1, n % (len(model[layer]) + 1))]
                assert store.delete(layer, where={"source_id": doomed}) == len(doomed)
                model[layer] -= set(doomed)
            elif op == "update" and model[layer]:
                rows = store.read(layer, where={"source_id": sorted(model[layer])[:n]})
                store.update(layer, pd.DataFrame({"id": rows["id"], "source": "hypothesis-upd"}))
            elif op == "checkpoint":
                store.sql("CHECKPOINT")  # type: ignore[attr-defined]
        crashed = _copy_store(live, work / "crashed.duckdb")  # the unclean close
    finally:
        store.close()
    reopened = open_store(f"duckdb:///{crashed}")
    try:
        for layer in _SPATIAL:
            got = set(reopened.read(layer)["source_id"])
            assert got == model[layer], layer
            assert reopened.count(layer, bbox=EVERYWHERE) == len(model[layer]), layer
        # more writes of every kind on the reopened store
        for layer in _SPATIAL:
            keys = list(range(next_key, next_key + 3))
            next_key += 3
            assert reopened.write(layer, _frame(layer, keys, rnd)).inserted == 3
            assert reopened.delete(layer, where={"source_id": [f"k{keys[0]}"]}) == 1
            assert reopened.count(layer, bbox=EVERYWHERE) == len(model[layer]) + 2
            assert reopened.write(layer, _frame(layer, keys, rnd), mode="replace").inserted == 3
            assert reopened.count(layer, bbox=EVERYWHERE) == 3
    finally:
        reopened.close()


# -- a serving store: power loss at random moments, SIGKILL, SIGTERM ----------------
class _Server:
    """``gridmap serve`` on a store file, in its own process."""

    def __init__(self, path: Path) -> None:
        self.port = free_port()
        env = dict(os.environ, GRIDMAP_DATABASE_URL=f"duckdb:///{path}", PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gridmap", "serve", "--port", str(self.port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_port("127.0.0.1", self.port, timeout=120)
        except TimeoutError:
            self.proc.kill()
            raise AssertionError(self.output()) from None
        self.base = f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        self.proc.wait(30)
        assert self.proc.stdout is not None
        return self.proc.stdout.read().decode(errors="replace")

    def stop(self, sig: int) -> str:
        self.proc.send_signal(sig)
        return self.output()


class _Reporter(threading.Thread):
    """POSTs synthetic events one after another; keeps the ids acknowledged (201)."""

    def __init__(self, base: str, token: str, points: list[tuple[float, float]]) -> None:
        super().__init__(daemon=True)
        self.client = httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        self.points = points
        self.acked: list[int] = []
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.halt = threading.Event()

    def run(self) -> None:
        i = 0
        while not self.halt.is_set():
            lon, lat = self.points[i % len(self.points)]
            body = {
                "category": "dispute",
                "description": f"合成事件 synthetic crash-test report {i}",
                "location": {"lon": lon, "lat": lat, "crs": "wgs84"},
            }
            i += 1
            try:
                r = self.client.post(
                    "/events", json=body, headers={"Idempotency-Key": uuid.uuid4().hex}
                )
            except httpx.HTTPError:
                continue  # the server is gone (killed): not acknowledged
            if r.status_code == 201:
                with self.lock:
                    self.acked.append(int(r.json()["id"]))
            elif r.status_code >= 500:
                self.errors.append(f"{r.status_code} {r.text[:200]}")

    def wait_for(self, n: int, timeout: float = 60.0) -> None:
        """Until *n* reports are acknowledged (the server is up and writing)."""
        deadline = time.monotonic() + timeout
        while len(self.acknowledged()) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.acknowledged()) >= n, self.errors[:3]

    def acknowledged(self) -> set[int]:
        with self.lock:
            return set(self.acked)

    def finish(self) -> None:
        self.halt.set()
        self.join(60)
        self.client.close()


def test_power_loss_sigkill_and_sigterm_of_a_serving_store_lose_nothing(
    template: Template, tmp_path: Path
) -> None:
    rnd = random.Random(20)
    db = _copy_store(template.path, tmp_path / "serve" / "gridmap.duckdb")
    server = _Server(db)
    reporter = _Reporter(server.base, template.token, template.points)
    reporter.start()
    snapshots: list[tuple[int, Path, set[int]]] = []
    try:
        reporter.wait_for(1)
        # 20 power losses: the server frozen at a random moment of the load and
        # its files copied as they are on disk, then thawed.
        for round_ in range(20):
            time.sleep(rnd.uniform(0.05, 0.3))
            acked = reporter.acknowledged()
            os.kill(server.proc.pid, signal.SIGSTOP)
            try:
                copy = _copy_store(db, tmp_path / f"loss{round_}" / "gridmap.duckdb")
            finally:
                os.kill(server.proc.pid, signal.SIGCONT)
            snapshots.append((round_, copy, acked))
        # a real crash: SIGKILL mid-load
        time.sleep(rnd.uniform(0.05, 0.3))
        server.proc.kill()
        server.output()
    finally:
        reporter.finish()
        if server.proc.poll() is None:
            server.proc.kill()
    acked_at_kill = reporter.acknowledged()
    assert not reporter.errors, reporter.errors[:3]
    assert len(acked_at_kill) >= 5

    failed: dict[int, str] = {}
    for round_, copy, acked in snapshots:
        try:
            store = open_store(f"duckdb:///{copy}")
            try:
                stored = set(store.read("events", ids=sorted(acked))["id"]) if acked else set()
                if acked - stored:
                    raise AssertionError(f"{len(acked - stored)} acknowledged events missing")
                _more_writes(store, template.points, f"loss{round_}")
            finally:
                store.close()
        except Exception as exc:
            failed[round_] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    assert not failed, f"{len(failed)} of {len(snapshots)} power-loss rounds failed: {failed}"

    # the demo job run again on the last power-loss copy (on pyrosm's small
    # test extract): it replaces the grids and imports buildings and roads,
    # deletes and inserts on every R-tree
    from gridmap.demo.job import demo_extract, run_demo

    store = open_store(f"duckdb:///{snapshots[-1][1]}")
    try:
        run_demo(store, extract=demo_extract("test"), events=20)
        assert store.count("grids", bbox=EVERYWHERE) == store.count("grids") > 0
        assert store.count("buildings", bbox=EVERYWHERE) == store.count("buildings") > 0
    finally:
        store.close()

    # restart after the SIGKILL: everything acknowledged is served and new
    # reports are taken; then SIGTERM mid-load, which closes the file cleanly.
    server = _Server(db)
    client = httpx.Client(
        base_url=server.base, headers={"Authorization": f"Bearer {template.token}"}, timeout=30
    )
    reporter = _Reporter(server.base, template.token, template.points)
    try:
        for eid in sorted(acked_at_kill):
            assert client.get(f"/events/{eid}").status_code == 200, eid
        reporter.start()
        reporter.wait_for(3)
        time.sleep(rnd.uniform(0.0, 0.3))
        out = server.stop(signal.SIGTERM)
        assert "Traceback" not in out, out[-2000:]
    finally:
        reporter.finish()
        client.close()
        if server.proc.poll() is None:
            server.proc.kill()
    assert not reporter.errors, reporter.errors[:3]
    acked_at_kill |= reporter.acknowledged()
    wal = Path(f"{db}.wal")
    assert not wal.exists() or wal.stat().st_size == 0, "SIGTERM left a write-ahead log"
    store = open_store(f"duckdb:///{db}")
    try:
        stored = set(store.read("events", ids=sorted(acked_at_kill))["id"])
        assert acked_at_kill <= stored, f"{len(acked_at_kill - stored)} acknowledged events lost"
        _more_writes(store, template.points, "final")
    finally:
        store.close()
