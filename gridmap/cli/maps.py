"""``gridmap map …``: interactive maps written to files (地图), also for ``gridmap demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from gridmap.cli.common import DbOpt, cli_settings, open_store, out
from gridmap.common.errors import BadInput
from gridmap.storage import Store

__all__ = ["map_app", "write_map"]

map_app = typer.Typer(help="Interactive maps (地图).", no_args_is_help=True)


@map_app.command("render")
def map_render(
    out_file: Annotated[Path, typer.Option("--out", help="HTML file to write.")],
    lang: Annotated[str, typer.Option(help="zh, en or zh-en (bilingual).")] = "zh-en",
    area: Annotated[
        str | None,
        typer.Option(help="Only this area: a county, town, community or grid code."),
    ] = None,
    role: Annotated[
        str,
        typer.Option(
            help="Who the file is for. The default, viewer (the public), sees no events and "
            "no personal data; a staff role sees events with reporters and phones masked."
        ),
    ] = "viewer",
    title: Annotated[
        str | None, typer.Option(help="Map title (default: the area's name and code).")
    ] = None,
    layers: Annotated[
        str | None,
        typer.Option(help="Comma-separated layers (default: every layer the role may see)."),
    ] = None,
    tiles_url: Annotated[
        str | None,
        typer.Option(help="XYZ URL of a basemap (default GRIDMAP_TILES_URL; none: no tiles)."),
    ] = None,
    attribution: Annotated[
        str | None,
        typer.Option(help="Attribution of the basemap (default GRIDMAP_TILES_ATTRIBUTION)."),
    ] = None,
    basemap_crs: Annotated[
        str | None,
        typer.Option(help="wgs84 or gcj02 (Gaode tiles; default GRIDMAP_BASEMAP_CRS)."),
    ] = None,
    database_url: DbOpt = None,
) -> None:
    """Write a self-contained interactive map (assets inlined) for sharing.

    What a shared file holds is chosen by --role: by default the public's view
    (viewer), with no events, no reporter names, phones or event descriptions.
    """
    settings = cli_settings().maps
    with open_store(database_url) as store:
        write_map(
            store,
            out_file,
            lang=lang,
            inline=True,
            area=area,
            role=role,
            title=title,
            layers=None if layers is None else [x.strip() for x in layers.split(",")],
            tiles_url=tiles_url if tiles_url is not None else settings.tiles_url,
            attribution=attribution if attribution is not None else settings.tiles_attribution,
            basemap_crs=basemap_crs or settings.basemap_crs,
        )
    out.print(f"map written to {out_file} (for role {role})")


def _map_data(
    store: Store, *, area: str | None, role: str, layers: list[str] | None
) -> tuple[dict[str, Any], str | None]:
    """The layers *role* may see (of *area*, if given) and the area's name."""
    import geopandas as gpd
    import shapely

    from layers.catalog import CATALOG, check_role, get_layer

    check_role(role)
    if layers is not None:
        for name in layers:
            ldef = get_layer(name)
            if not ldef.is_spatial:
                raise BadInput(
                    f"layer {name!r} has no geometry and cannot be drawn", field="layers"
                )
            if not ldef.is_visible_to(role):
                raise BadInput(
                    f"role {role!r} may not see layer {name!r}: leave it out or name a role "
                    "that may (--role)",
                    field="layers",
                )
    names = [
        n
        for n, ldef in CATALOG.items()
        if ldef.is_spatial and ldef.is_visible_to(role) and (layers is None or n in layers)
    ]
    bbox = None
    label = None
    if area is not None:
        if not (area.isascii() and area.isdigit() and len(area) in (6, 9, 12, 15)):
            raise BadInput("--area must be a 6, 9, 12 or 15 digit code", field="area")
        table = "grids" if len(area) == 15 else "admin_units"
        units = store.read(table, where={"code": area})
        if len(units) == 0:
            raise BadInput(f"no area {area} in the store", field="area")
        label = f"{units['name'].iloc[-1] or area}（{area}）"
        if isinstance(units, gpd.GeoDataFrame):
            bbox = tuple(float(v) for v in shapely.bounds(shapely.union_all(units.geometry.values)))
    data: dict[str, Any] = {}
    for name in names:
        columns = {c.name for c in CATALOG[name].fields}
        where: dict[str, Any] = {}
        box = None
        if area is not None:
            from gridmap.storage import Prefix

            if name in ("grids", "admin_units"):
                where["code"] = Prefix((area,))
            elif "grid_code" in columns:
                where["grid_code"] = Prefix((area,))
            else:
                box = bbox
        frame = store.read(name, where=where or None, bbox=box, limit=20_000)  # type: ignore[arg-type]
        if "valid_to" in frame and len(frame):
            frame = frame[frame["valid_to"].isna()]  # the grids in force
        data[name] = frame
    return data, label


def write_map(
    store: Store,
    path: Path,
    *,
    lang: str,
    inline: bool,
    area: str | None = None,
    role: str = "viewer",
    title: str | None = None,
    layers: list[str] | None = None,
    tiles_url: str | None = None,
    attribution: str | None = None,
    basemap_crs: str = "wgs84",
) -> None:
    """Render the layers *role* may see (of *area*) and write them as one HTML page.

    *inline* puts the map assets inside the page (a file to share); otherwise
    they are copied into ``assets/`` beside it.
    """
    from layers.assets import copy_assets
    from layers.render import MapOptions, map_html, render_map

    data, label = _map_data(store, area=area, role=role, layers=layers)
    heading = title or (f"{label} 网格地图 Grid map" if label else "网格地图 Grid map")
    path.parent.mkdir(parents=True, exist_ok=True)
    base = "assets/"
    m = render_map(
        data,
        lang=lang,
        role=role,
        options=MapOptions(
            base_url=base,
            title=heading,
            tiles_url=tiles_url,
            attr=attribution,
            basemap_crs=basemap_crs,
        ),
    )
    if not inline:
        copy_assets(path.parent)
    path.write_text(map_html(m, inline=inline), encoding="utf-8")
