"""``gridmap patrol …``: patrol routes, major-event security plans and compliance (巡查)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from gridmap.cli.common import DbOpt, console, errors, open_store, out

__all__ = ["patrol_app"]

patrol_app = typer.Typer(help="Patrol routes and coverage (巡查).", no_args_is_help=True)


@patrol_app.command("plan")
def patrol_plan(
    grid: Annotated[str, typer.Option("--grid", help="15-digit grid code.")],
    mode: Annotated[str, typer.Option("--mode", help="streets, points or mixed.")] = "streets",
    budget_min: Annotated[float, typer.Option("--budget-min", help="Shift minutes.")] = 240.0,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the route (.gpx or .geojson).")
    ] = None,
    database_url: DbOpt = None,
) -> None:
    """Plan a grid's patrol route (规划巡查路线) and print its turn-by-turn steps."""
    import json as _json

    from gridmap.patrol.service import RouteRequest, plan_route, route_gpx

    with open_store(database_url) as store:
        req = RouteRequest.from_json({"grid": grid, "mode": mode, "budget_min": budget_min})
        feature = plan_route(store, req)
    with errors():
        props = feature["properties"]
        console.print(
            f"route {grid} ({mode}): {props['length_m']:.0f} m, {props['duration_min']:.0f} min"
        )
        for i, step in enumerate(props.get("steps", [])[:40], start=1):
            console.print(f"{i:>3}. {step['zh']} / {step['en']}")
        if out is not None:
            suffix = out.suffix.lower()
            if suffix == ".gpx":
                out.write_text(route_gpx(feature, name=f"{grid} {mode}"), encoding="utf-8")
            elif suffix in (".geojson", ".json"):
                out.write_text(_json.dumps(feature, ensure_ascii=False), encoding="utf-8")
            else:
                console.print("[bold red]error:[/] --out must end in .gpx or .geojson")
                raise typer.Exit(2)
            console.print(f"wrote {out}")


# -- event security plans (issue 21) ---------------------------------------------
@patrol_app.command("plan-event")
def patrol_plan_event(
    start: Annotated[str, typer.Option("--start", help="Window start, ISO 8601 with zone.")],
    end: Annotated[str, typer.Option("--end", help="Window end, ISO 8601 with zone.")],
    area: Annotated[
        str | None, typer.Option("--area", help="City, town, community or grid code.")
    ] = None,
    grids: Annotated[
        str | None, typer.Option("--grids", help="Comma-separated 15-digit grid codes.")
    ] = None,
    polygon: Annotated[
        Path | None, typer.Option("--polygon", help="GeoJSON file: the area's polygon.")
    ] = None,
    polygon_crs: Annotated[str, typer.Option("--polygon-crs", help="wgs84, gcj02, …")] = "wgs84",
    worker: Annotated[
        list[str] | None,
        typer.Option("--worker", help="NAME@LON,LAT[@SHIFT+SHIFT] (repeat per worker)."),
    ] = None,
    worker_crs: Annotated[
        str, typer.Option("--worker-crs", help="CRS of --worker positions.")
    ] = "wgs84",
    workers_file: Annotated[
        Path | None, typer.Option("--workers", help="JSON file: the API's workers list.")
    ] = None,
    shift_hours: Annotated[float | None, typer.Option("--shift-hours")] = None,
    frequency_min: Annotated[
        float, typer.Option("--frequency-min", help="Default visit frequency (minutes).")
    ] = 60.0,
    dwell_min: Annotated[float | None, typer.Option("--dwell-min")] = None,
    road_class: Annotated[
        list[str] | None, typer.Option("--road-class", help="Main street class (repeat).")
    ] = None,
    hotspots: Annotated[
        bool,
        typer.Option("--hotspots", help="First turn --area's hot spots into key areas."),
    ] = False,
    time_limit: Annotated[float, typer.Option("--time-limit", help="Solver seconds.")] = 5.0,
    name: Annotated[str | None, typer.Option("--name")] = None,
    save: Annotated[bool, typer.Option("--save/--no-save")] = True,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Folder for GPX and KML per worker.")
    ] = None,
    crs: Annotated[str, typer.Option("--crs", help="Exports in wgs84 or gcj02.")] = "wgs84",
    pdf: Annotated[
        Path | None,
        typer.Option("--pdf", help="Write the printable plan (A4 PDF: map and timetable)."),
    ] = None,
    database_url: DbOpt = None,
) -> None:
    """Plan a major-event security patrol (重大活动安保): shift routes, key areas, main streets."""
    import json as _json

    from gridmap.common.errors import BadInput
    from gridmap.patrol import plans

    with errors():
        area_json = _plan_area(area, grids, polygon, polygon_crs)
        crew = [plans.worker_spec(w, crs=worker_crs) for w in worker or []]
        if workers_file is not None:
            crew += _json.loads(workers_file.read_text(encoding="utf-8"))
        body: dict[str, object] = {
            "area": area_json,
            "start": start,
            "end": end,
            "workers": crew,
            "frequency_min": frequency_min,
            "time_limit_s": time_limit,
            "save": save,
        }
        for key, value in (
            ("name", name),
            ("shift_hours", shift_hours),
            ("dwell_min", dwell_min),
            ("road_classes", road_class),
        ):
            if value is not None:
                body[key] = value
        req = plans.PlanRequest.from_json(body, max_time_limit_s=600)
        if pdf is not None and not save:
            raise BadInput("--pdf prints a saved plan: drop --no-save", field="pdf")
        with open_store(database_url) as store:
            if hotspots:
                if area is None:
                    raise BadInput("--hotspots needs --area", field="area")
                made = plans.hotspot_key_areas(store, area=area, start=req.start, end=req.end)
                console.print(f"hot spots → temporary key areas: {len(made)}")
            answer = plans.make_plan(store, req)
            stored = None if pdf is None else plans.read_plan(store, int(answer["id"]))
        _print_plan(answer)
        if out_dir is not None:
            for path in plans.write_route_files(answer, out_dir, crs=crs):
                console.print(f"wrote {path}")
        if stored is not None and pdf is not None:
            from gridmap.patrol.printout import render_plan_pdf

            pdf.write_bytes(render_plan_pdf(stored))
            console.print(f"wrote {pdf}")


def _plan_area(
    area: str | None, grids: str | None, polygon: Path | None, polygon_crs: str
) -> dict[str, object]:
    """The plan request's ``area`` from exactly one of --area, --grids, --polygon."""
    import json as _json

    from gridmap.common.errors import BadInput

    if sum(x is not None for x in (area, grids, polygon)) != 1:
        raise BadInput("give exactly one of --area, --grids, --polygon", field="area")
    if polygon is not None:
        geo = _json.loads(polygon.read_text(encoding="utf-8"))
        geo = geo.get("geometry", geo) if geo.get("type") == "Feature" else geo
        return {"polygon": geo, "crs": polygon_crs}
    if grids is not None:
        return {"grids": [g.strip() for g in grids.split(",") if g.strip()]}
    return {"code": area}


def _print_plan(answer: dict[str, Any]) -> None:
    """Print a plan's summary, its routes and what it could not meet."""
    s = answer["summary"]
    out.print(
        f"plan {answer['id'] or '(not saved)'} area {answer['area_code']}: "
        f"{s['visits_planned']}/{s['visits_required']} visits, "
        f"{s['street_pieces_unmet']} street pieces unmet, travel {s['travel_m']:.0f} m, "
        f"balance {s['balance']}, complete {s['complete']}"
    )
    for f in answer["routes"]["features"]:
        p = f["properties"]
        out.print(
            f"  {escape(str(p['worker']))} shift {p['shift']}: {p['visits']} visits, "
            f"{p['length_m']:.0f} m, load {p['work_min']:.0f} min"
        )
    for u in answer["unmet"][:50]:
        what = u.get("name") or u.get("key_area") if u["kind"] == "visit" else u["streets"]
        when = u.get("slot_start") or u.get("shift_start")
        out.print(
            f"  [red]not met[/] {u['kind']} {escape(str(what))} {when}: "
            f"{u['reason_zh']} / {u['reason_en']}"
        )
    if not answer["summary"]["complete"]:
        out.print(f"  workers needed (estimate): {s['workers_needed']}")


@patrol_app.command("compliance")
def patrol_compliance(
    plan_id: Annotated[int, typer.Argument(help="Event plan id.")],
    database_url: DbOpt = None,
) -> None:
    """Was an event plan followed? Visits made/missed, streets covered, lateness (JSON)."""
    import json as _json

    from gridmap.patrol import plans

    with open_store(database_url) as store:
        report = plans.plan_compliance(store, plan_id)
    out.print_json(_json.dumps(report, ensure_ascii=False, default=str))
