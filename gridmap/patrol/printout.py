"""The printable event plan (A4 PDF, fpdf2): one page per worker and shift.

Each page holds the worker's shift route drawn on a map from the stored
geometries (the route, the key areas with their windows, the other workers'
routes in grey, the visit order, a scale bar and north), and the timetable of
the shift: key-area visits (planned arrival, dwell, departure, the slot they
serve) and the main streets to walk. A last page lists what the plan could
not meet. Key areas that came from synthetic events are marked 合成数据.

Text is set in WenQuanYi Micro Hei (Debian ``fonts-wqy-microhei``), as the
assessment reports are (:data:`gridmap.assessment.pdf.CJK_FONT`); the input is
the answer of :func:`gridmap.patrol.plans.read_plan`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely

from gridmap.assessment.pdf import pdf_font

__all__ = ["WORKER_COLOURS", "render_plan_pdf"]

#: Route colours by worker (the console map uses the same order).
WORKER_COLOURS: tuple[str, ...] = (
    "#d81b60",
    "#1e88e5",
    "#43a047",
    "#fb8c00",
    "#8e24aa",
    "#00897b",
    "#6d4c41",
    "#3949ab",
    "#c0ca33",
    "#546e7a",
)

_MAP_H = 100.0  # mm
_KEY_FILL = (206, 147, 216)
_KEY_LINE = (106, 27, 154)


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    h = hex_colour.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def _local(ts: str | None, tz: str, fmt: str = "%H:%M") -> str:
    if not ts:
        return "—"
    return pd.Timestamp(ts).tz_convert(tz).strftime(fmt)


class _Frame:
    """WGS84 → page millimetres inside a box, same scale in x and y (local metres)."""

    def __init__(self, bounds: tuple[float, float, float, float], box: tuple[float, ...]) -> None:
        minx, miny, maxx, maxy = bounds
        self.lat0 = (miny + maxy) / 2
        self.kx = 111_320.0 * math.cos(math.radians(self.lat0))
        self.ky = 110_540.0
        wm = max((maxx - minx) * self.kx, 50.0)
        hm = max((maxy - miny) * self.ky, 50.0)
        x0, y0, w, h = box
        self.scale = min(w / wm, h / hm) * 0.92  # mm per metre
        self.cx, self.cy = (minx + maxx) / 2, (miny + maxy) / 2
        self.mx, self.my = x0 + w / 2, y0 + h / 2

    def __call__(self, lon: float, lat: float) -> tuple[float, float]:
        return (
            self.mx + (lon - self.cx) * self.kx * self.scale,
            self.my - (lat - self.cy) * self.ky * self.scale,
        )

    def points(self, coords: Any) -> list[tuple[float, float]]:
        return [self(float(x), float(y)) for x, y in np.asarray(coords)[:, :2]]


def _shapes(feature: dict[str, Any]) -> shapely.Geometry:
    return shapely.from_geojson(json.dumps(feature["geometry"]))


def _draw_map(
    pdf: Any,
    box: tuple[float, float, float, float],
    route: dict[str, Any],
    others: list[dict[str, Any]],
    key_areas: list[dict[str, Any]],
    colour: str,
    tz: str,
) -> None:
    """The route, the other routes (grey), the key areas and the visit order inside *box*."""
    x0, y0, w, h = box
    line = _shapes(route)
    visited = {t["key_area"] for t in route["properties"]["timetable"] if t.get("type") == "visit"}
    mine = [k for k in key_areas if k["id"] in visited]
    geoms = [line, *(_shapes(k) for k in mine)]
    frame = _Frame(tuple(shapely.total_bounds(geoms)), box)
    pdf.set_draw_color(120, 120, 120)
    pdf.set_line_width(0.3)
    pdf.rect(x0, y0, w, h)
    with pdf.rect_clip(x0, y0, w, h):
        pdf.set_line_width(0.5)
        pdf.set_draw_color(200, 200, 200)
        for o in others:
            xy = shapely.get_coordinates(_shapes(o))
            if len(xy) >= 2:
                pdf.polyline(frame.points(xy))
        for k in key_areas:
            g = _shapes(k)
            on_route = k["id"] in visited
            pdf.set_draw_color(*(_KEY_LINE if on_route else (170, 170, 170)))
            pdf.set_fill_color(*(_KEY_FILL if on_route else (230, 230, 230)))
            pdf.set_line_width(0.4)
            for part in shapely.get_parts(g):
                if part.geom_type == "Polygon":
                    pdf.polygon(frame.points(part.exterior.coords), style="DF")
                else:
                    c = part.centroid
                    px, py = frame(c.x, c.y)
                    pdf.rect(px - 1.6, py - 1.6, 3.2, 3.2, style="DF")
        pdf.set_draw_color(*_rgb(colour))
        pdf.set_line_width(0.9)
        xy = shapely.get_coordinates(line)
        if len(xy) >= 2:
            pdf.polyline(frame.points(xy))
        # the start (a filled square) and the visits in order (numbered discs)
        sx, sy = frame(float(xy[0, 0]), float(xy[0, 1]))
        pdf.set_fill_color(*_rgb(colour))
        pdf.rect(sx - 1.8, sy - 1.8, 3.6, 3.6, style="F")
        pdf.set_font("wqy", size=6)
        pdf.set_text_color(255, 255, 255)
        stops: dict[tuple[float, float], list[int]] = {}
        n = 0
        for t in route["properties"]["timetable"]:
            if t.get("type") == "visit":
                n += 1
                stops.setdefault((float(t["lon"]), float(t["lat"])), []).append(n)
        for (lon, lat), order in stops.items():
            px, py = frame(lon, lat)
            mark = "·".join(map(str, order)) if len(order) <= 3 else f"{order[0]}…{order[-1]}"
            half = max(2.2, pdf.get_string_width(mark) / 2 + 0.8)
            pdf.set_fill_color(*_rgb(colour))
            pdf.ellipse(px - half, py - 2.2, 2 * half, 4.4, style="F")
            pdf.set_xy(px - half, py - 1.6)
            pdf.cell(2 * half, 3.2, mark, align="C")
        pdf.set_text_color(0, 0, 0)
        # key-area labels: name and window
        pdf.set_font("wqy", size=6)
        for k in mine:
            c = shapely.point_on_surface(_shapes(k))
            px, py = frame(c.x, c.y)
            p = k["properties"]
            text = str(p.get("name") or f"#{k['id']}")[:24]
            if p.get("synthetic"):
                text += "（合成数据）"
            pdf.set_fill_color(255, 255, 255)
            for dy, s in ((-4.5, text), (-1.7, _window(p, tz))):
                pdf.set_xy(px + 2.6, py + dy)
                pdf.cell(pdf.get_string_width(s) + 1, 2.8, s, fill=True)
    # scale bar and north arrow, outside the clip
    metres = _nice(w * 0.25 / frame.scale)
    bar = metres * frame.scale
    bx, by = x0 + 4, y0 + h - 5
    pdf.set_draw_color(0, 0, 0)
    pdf.set_fill_color(0, 0, 0)
    pdf.set_line_width(0.4)
    pdf.line(bx, by, bx + bar, by)
    pdf.line(bx, by - 1.2, bx, by + 0.3)
    pdf.line(bx + bar, by - 1.2, bx + bar, by + 0.3)
    pdf.set_font("wqy", size=7)
    pdf.set_xy(bx, by - 4.6)
    label = f"{metres / 1000:g} km" if metres >= 1000 else f"{metres:g} 米 m"
    pdf.cell(bar, 3.5, label, align="C")
    nx, ny = x0 + w - 8, y0 + 4
    pdf.polygon([(nx, ny), (nx - 2, ny + 6), (nx + 2, ny + 6)], style="F")
    pdf.set_xy(nx - 4, ny + 6.3)
    pdf.cell(8, 3.5, "北 N", align="C")


def _nice(metres: float) -> float:
    """A round length (1, 2 or 5 × 10^k metres) not above *metres*."""
    if metres <= 1:
        return 1.0
    k = 10 ** math.floor(math.log10(metres))
    return float(max(m for m in (1, 2, 5, 10) if m * k <= metres) * k)


def _window(p: dict[str, Any], tz: str) -> str:
    a, b = p.get("valid_from"), p.get("valid_to")
    if not a and not b:
        return "长期 permanent"
    return f"{_local(a, tz, '%m-%d %H:%M')}–{_local(b, tz, '%m-%d %H:%M')}"


def render_plan_pdf(
    plan: dict[str, Any], *, tz: str = "Asia/Shanghai", font: Path | None = None
) -> bytes:
    """The plan as an A4 PDF: a page per worker and shift (map and timetable), then what is unmet.

    Parameters
    ----------
    plan : dict
        :func:`gridmap.patrol.plans.read_plan` (routes, key areas, unmet).
    tz : str
        The time zone of the printed times.
    font : Path, optional
        A font with CJK glyphs (default: WenQuanYi Micro Hei).

    Returns
    -------
    bytes
        The PDF document.

    Raises
    ------
    gridmap.assessment.pdf.FontMissing
        When the font is not installed.
    """
    from fpdf import FPDF
    from fpdf.enums import XPos, YPos
    from fpdf.fonts import FontFace

    path = pdf_font(font)
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_auto_page_break(auto=True, margin=12)
    pdf.set_margins(12, 12, 12)
    pdf.add_font("wqy", "", str(path), collection_font_number=0)
    title = plan.get("name") or f"#{plan['id']}"
    pdf.set_title(f"安保巡逻方案 Event patrol plan {title}")
    pdf.set_creator("gridmap")
    width = pdf.w - pdf.l_margin - pdf.r_margin
    key_areas = list(plan.get("key_areas", {}).get("features", []))
    names = {k["id"]: k["properties"] for k in key_areas}
    routes = plan["routes"]["features"]
    workers = list(dict.fromkeys(f["properties"]["worker"] for f in routes))
    heading = FontFace(emphasis="", fill_color=(235, 235, 235))
    synthetic_note = (
        "合成数据 Synthetic data: 标注“合成数据”的重点区域来自演示环境合成事件的热点。"
        " Key areas marked 合成数据 come from hot spots of synthetic (demo) events."
    )

    def text(s: str, size: float = 9, h: float = 5) -> None:
        pdf.set_font("wqy", size=size)
        pdf.multi_cell(width, h, s, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    window = f"{_local(plan['start'], tz, '%Y-%m-%d %H:%M')} – {_local(plan['end'], tz, '%H:%M')}"
    for route in routes:
        p = route["properties"]
        colour = WORKER_COLOURS[workers.index(p["worker"]) % len(WORKER_COLOURS)]
        pdf.add_page()
        text(f"重大活动安保巡逻方案 Event security patrol plan：{title}", size=13, h=7)
        text(
            f"方案 Plan #{plan['id']} · 区域 Area {plan['area_code']} · "
            f"时段 Window {window}（{tz}）",
            size=8,
            h=4.5,
        )
        text(
            f"巡逻员 Worker：{p['worker']} · 第{p['shift']}班 Shift {p['shift']} "
            f"{_local(p['valid_from'], tz)}–{_local(p['valid_to'], tz)} · "
            f"路程 Distance {p['length_m'] / 1000:.2f} km · 工作 Work {p['work_min']:.0f} min · "
            f"到访 Visits {p['visits']}",
            size=10,
            h=6,
        )
        top = pdf.get_y() + 1
        _draw_map(
            pdf,
            (pdf.l_margin, top, width, _MAP_H),
            route,
            [o for o in routes if o is not route],
            key_areas,
            colour,
            tz,
        )
        pdf.set_xy(pdf.l_margin, top + _MAP_H + 1)
        text(
            "图例 Legend：彩色线 本人路线 own route · ■ 起点 start · 1·2 到访顺序 visit order · "
            "紫色 本班重点区域 key areas of this shift · 灰色 其他路线/区域 other routes and areas"
            " · 坐标 WGS84，无底图 no basemap",
            size=7,
            h=4,
        )
        rows = []
        for t in p["timetable"]:
            if t.get("type") == "visit":
                ka = names.get(t["key_area"], {})
                name = str(t.get("name") or f"#{t['key_area']}")
                if ka.get("synthetic"):
                    name += "（合成数据 synthetic）"
                every = ka.get("frequency_min")
                rows.append(
                    [
                        str(t.get("order", "")),
                        f"重点区域 Key area：{name}"
                        + (f"（每 {every:g} 分钟 every {every:g} min）" if every else ""),
                        _local(t["arrive"], tz),
                        f"{float(t['dwell_min']):g}",
                        _local(t["depart"], tz),
                        f"{_local(t['slot_start'], tz)}–{_local(t['slot_end'], tz)}",
                    ]
                )
            else:
                streets = "、".join(str(s) for s in (t.get("streets") or [])) or "—"
                rows.append(
                    [
                        str(t.get("order", "")),
                        f"街道 Streets：{streets}（{float(t['length_m']):.0f} 米 m）",
                        _local(t["start"], tz),
                        "—",
                        _local(t["end"], tz),
                        "本班一次 once per shift",
                    ]
                )
        text("巡逻时刻表 Timetable", size=10, h=6)
        pdf.set_font("wqy", size=7)
        with pdf.table(
            col_widths=[0.6, 5.6, 1.1, 1.1, 1.1, 2.0],
            text_align="LEFT",
            line_height=4,
            headings_style=heading,
        ) as table:
            r = table.row()
            for h in (
                "序 No.",
                "重点区域 / 街道 Key area / streets",
                "到达 Arrive",
                "停留 Dwell (min)",
                "离开 Depart",
                "时段要求 Slot",
            ):
                r.cell(h)
            for row in rows or [["—", "本班无任务 nothing to do this shift", "", "", "", ""]]:
                r = table.row()
                for c in row:
                    r.cell(c)
        if any(k["properties"].get("synthetic") for k in key_areas):
            text(synthetic_note, size=7, h=4)
    unmet = plan.get("unmet") or []
    if unmet:
        pdf.add_page()
        text(f"未能安排 Not planned：{title}", size=13, h=7)
        text(
            f"{len(unmet)} 项无法满足（人员不足或距离过远）。"
            f" {len(unmet)} items cannot be met (not enough people or too far).",
            size=9,
        )
        pdf.set_font("wqy", size=7)
        with pdf.table(
            col_widths=[3.5, 2.2, 4.5], text_align="LEFT", line_height=4, headings_style=heading
        ) as table:
            r = table.row()
            for h in ("任务 Task", "时段 Slot", "原因 Why"):
                r.cell(h)
            for u in unmet:
                r = table.row()
                if u.get("kind") == "visit":
                    r.cell(f"重点区域 Key area：{u.get('name') or u.get('key_area')}")
                    r.cell(f"{_local(u.get('slot_start'), tz)}–{_local(u.get('slot_end'), tz)}")
                else:
                    streets = "、".join(str(s) for s in (u.get("streets") or [])) or "—"
                    r.cell(f"街道 Streets：{streets}")
                    r.cell("—")
                r.cell(f"{u.get('reason_zh', '')} {u.get('reason_en', '')}".strip())
    if not routes and not unmet:
        pdf.add_page()
        text(f"安保巡逻方案 Event patrol plan {title}：无路线 no routes", size=13, h=7)
    return bytes(pdf.output())
