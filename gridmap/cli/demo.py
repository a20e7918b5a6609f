"""``gridmap demo``: the whole job on the bundled real extract, embedded store, offline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from gridmap.cli.common import DbOpt, open_store, out, progress
from gridmap.cli.maps import write_map
from gridmap.cli.serve import serve_app

__all__ = ["demo"]


def demo(
    serve_api: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Start the API after.")
    ] = True,
    port: Annotated[int, typer.Option(help="API port.")] = 8000,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the map.")] = Path(
        "gridmap-demo"
    ),
    events: Annotated[int, typer.Option(help="Synthetic events to generate.")] = 600,
    database_url: DbOpt = None,
) -> None:
    """The whole job on the bundled real OSM extract (Helsinki), embedded store, offline.

    Imports the extract, creates a city/town/community hierarchy, divides it into
    grids, generates seeded SYNTHETIC events on real streets, writes a map and
    starts the API on 127.0.0.1.
    """
    from gridmap.demo.job import run_demo

    map_path = out_dir / "map.html"
    # The server opens the store itself and closes it (checkpointed) when it
    # stops, on SIGTERM too (a store handed to it would be left open then).
    with open_store(database_url) as store:
        with progress() as step:
            summary = run_demo(store, events=events, progress=step)
        write_map(
            store,
            map_path,
            lang="zh-en",
            inline=False,
            role="city_admin",
            title="gridmap demo 演示（合成事件 synthetic events）",
        )
        from gridmap.security.auth import demo_users

        first_grid = str(store.read("grids", limit=1)["code"].iloc[0])
        creds = demo_users(store, grid_code=first_grid)
    table = Table(
        title="gridmap demo 演示", caption="Helsinki OSM extract; events are synthetic 合成数据"
    )
    table.add_column("layer 图层")
    table.add_column("features 要素", justify="right")
    for layer, n in summary.counts.items():
        table.add_row(layer, str(n))
    out.print(table)
    out.print(f"store 数据库:  {store.url}")
    out.print(f"map 地图:      {map_path.resolve()}")
    users = Table(title="demo users 演示用户 (one per role)")
    users.add_column("user 用户")
    users.add_column("role 角色")
    users.add_column("area 区域")
    for name, (role, area) in creds.users.items():
        users.add_row(name, role, "all 全市" if area in ("", "*") else area)
    out.print(users)
    out.print(f"password 密码:  {creds.password}   (POST /auth/token, form username/password)")
    out.print(f"API key (demo_system, header X-API-Key): {creds.api_key}")
    if not serve_api:
        return
    from api.main import create_app
    from gridmap.common.settings import Settings, StoreSettings

    base = f"http://127.0.0.1:{port}"
    out.print(f"API:          {base}/  ·  {base}/collections  ·  {base}/docs")
    out.print(f"map page:     {base}/maps/overview")
    out.print(f"sign in 登录:  {base}/login  ·  网格通 field app (demo_worker): {base}/app/")
    out.print("Ctrl-C stops the server.")
    settings = Settings(store=StoreSettings(database_url=store.url))
    serve_app(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
