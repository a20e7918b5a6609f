"""The Dask path keeps a bounded number of tasks and releases everything (issue 11).

Worker memory used to grow with the lake: every file was submitted up front as
a read task plus a partial task, and read tasks ran ahead of their consumers.
Now at most two tasks per worker thread are in flight and every result is
released once folded. Events are synthetic (seeded, on the real Helsinki streets).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from distributed import Client, LocalCluster
from distributed.diagnostics.plugin import SchedulerPlugin

from gridmap.batch import BatchResult
from gridmap.batch.dask import run_dask
from gridmap.batch.lake import lake_files
from gridmap.batch.single import run_single
from gridmap.batch.synthetic import write_synthetic_lake
from tests.gridmap.batch.conftest import Helsinki

FIELDS = ("grid_counts", "heat", "kpis_grid", "kpis_town", "hotspots")


class MostTasks(SchedulerPlugin):  # type: ignore[misc]
    """The most tasks the scheduler knew at once."""

    name = "most-tasks"

    def __init__(self) -> None:
        self.scheduler: Any = None
        self.most = 0

    async def start(self, scheduler: Any) -> None:
        self.scheduler = scheduler

    def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
        self.most = max(self.most, len(self.scheduler.tasks))


@pytest.fixture(scope="module")
def many_files(world: Helsinki, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60,000 synthetic events in 60 files (20 chunks × 3 months)."""
    root = tmp_path_factory.mktemp("many")
    write_synthetic_lake(
        world.roads, world.buildings, root, n=60_000, grids=world.grids, chunk_rows=3_000
    )
    return root


@pytest.fixture
def client() -> Iterator[Client]:
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster) as c,
    ):
        yield c


def most_tasks(client: Client) -> int:
    """What the plugin (a copy living in the scheduler) saw."""
    return int(
        client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.plugins["most-tasks"].most)
    )


def assert_nothing_left(client: Client) -> None:
    """No future in the client, no task in the scheduler (releases travel asynchronously)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        tasks = client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))
        if not client.futures and tasks == 0:
            return
        time.sleep(0.05)
    raise AssertionError(f"left behind: {list(client.futures)}, {tasks} scheduler tasks")


def assert_same(a: BatchResult, b: BatchResult) -> None:
    assert a.events == b.events
    for name in FIELDS:
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=False)


def test_tasks_in_flight_stay_bounded_and_are_released(many_files: Path, client: Client) -> None:
    assert len(lake_files(many_files, "events")) == 60
    client.register_plugin(MostTasks())
    result = run_dask(many_files, client=client, hotspots=False, chunk_rows=1_000)
    # 2 threads × 2 tasks in flight, the broadcast grids, and a finished task
    # whose release is on its way: not 60 reads + 60 partials + a reduction tree.
    assert 1 <= most_tasks(client) <= 6, most_tasks(client)
    assert_nothing_left(client)
    expected = run_single(many_files, chunk_rows=7_001, hotspots=False)
    assert_same(expected, result)


def test_a_failing_task_cancels_the_rest(many_files: Path, client: Client) -> None:
    client.register_plugin(MostTasks())
    broken = many_files.parent / "broken"
    for path in lake_files(many_files, "events"):
        target = broken / "events" / path.parent.relative_to(many_files / "events")
        target.mkdir(parents=True, exist_ok=True)
        (target / path.name).write_bytes(path.read_bytes())
    (broken / "grids").mkdir()
    for path in (many_files / "grids").rglob("*.parquet"):
        target = broken / "grids" / path.parent.relative_to(many_files / "grids")
        target.mkdir(parents=True, exist_ok=True)
        (target / path.name).write_bytes(path.read_bytes())
    # The 10th file is not Parquet: its task fails, the run fails with it.
    victim = lake_files(broken, "events")[9]
    victim.write_bytes(b"not parquet")
    with pytest.raises(Exception, match=r"(?i)parquet|magic"):
        run_dask(broken, client=client, hotspots=False)
    assert_nothing_left(client)
    assert most_tasks(client) <= 6
