"""The period report as a PDF (fpdf2): the same figures as the HTML page, Chinese with English.

Text is set in WenQuanYi Micro Hei (Debian ``fonts-wqy-microhei``,
:data:`CJK_FONT`), embedded as a subset so the file reads anywhere; charts are
the report's PNG images. Without the font, :func:`render_pdf` fails with
:class:`FontMissing`, naming the file and the package that provides it.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

from gridmap.assessment.report import PeriodReport, _num, _pct, hiding_note
from gridmap.assessment.rules import INDICATORS
from gridmap.errors import GridmapError

__all__ = ["CJK_FONT", "FontMissing", "render_pdf"]

#: The CJK font the PDF is set in (Debian package ``fonts-wqy-microhei``).
CJK_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")

_CHARTS = (
    ("categories", "分类事件 Events by category"),
    ("grid_scores", "网格得分 Grid scores"),
    ("map", "网格考核地图 Assessment map by grid"),
)
_LEVELS = (
    ("town", "镇街排名 Ranking by town"),
    ("community", "社区排名 Ranking by community"),
    ("grid", "网格排名 Ranking by grid"),
    ("worker", "网格员排名 Ranking by worker"),
)


class FontMissing(GridmapError):
    """The CJK font needed for PDF output is not installed."""

    code = "font_missing"


def _font(path: Path | None) -> Path:
    font = Path(path) if path is not None else CJK_FONT
    if not font.is_file():
        raise FontMissing(
            f"PDF reports need the CJK font {font} (Debian package fonts-wqy-microhei: "
            "apt-get install fonts-wqy-microhei); it is missing"
        )
    return font


def render_pdf(report: PeriodReport, *, font: Path | None = None) -> bytes:
    """The report as PDF bytes: title, key figures, categories, charts, rankings, rules.

    Parameters
    ----------
    report : PeriodReport
        From :func:`gridmap.assessment.report.period_report` (hidden cells stay hidden).
    font : Path, optional
        A TrueType/TrueType-collection font with CJK glyphs (default :data:`CJK_FONT`).

    Returns
    -------
    bytes
        A PDF document.

    Raises
    ------
    FontMissing
        When the font file does not exist.

    Examples
    --------
    >>> import pandas as pd
    >>> from gridmap.assessment.rules import default_rules
    >>> r = PeriodReport("990100001", "第一街道", pd.Timestamp("2026-11-01", tz="UTC"),
    ...                  pd.Timestamp("2026-12-01", tz="UTC"), [], [], {}, default_rules())
    >>> render_pdf(r)[:5]
    b'%PDF-'
    >>> render_pdf(r, font=Path("/nonexistent/font.ttc"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    gridmap.assessment.pdf.FontMissing: PDF reports need the CJK font /nonexistent/font.ttc ...
    """
    from fpdf import FPDF
    from fpdf.enums import XPos, YPos
    from fpdf.fonts import FontFace

    path = _font(font)
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_font("wqy", "", str(path), collection_font_number=0)
    pdf.set_title(f"{report.area_name} 工作报告 Period report")
    pdf.set_creator("gridmap")
    pdf.add_page()
    width = pdf.w - pdf.l_margin - pdf.r_margin

    def line(text: str, size: float = 10, h: float = 6) -> None:
        pdf.set_font("wqy", size=size)
        pdf.multi_cell(width, h, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def table(head: list[str], rows: list[list[str]], widths: list[float]) -> None:
        pdf.set_font("wqy", size=8)
        heading = FontFace(emphasis="", fill_color=(235, 235, 235))  # one face: no bold
        with pdf.table(
            col_widths=widths, text_align="LEFT", line_height=5, headings_style=heading
        ) as t:
            r = t.row()
            for h in head:
                r.cell(h)
            for row in rows:
                r = t.row()
                for cell in row:
                    r.cell(cell)
        pdf.ln(3)

    start, end = report.start.strftime("%Y-%m-%d"), report.end.strftime("%Y-%m-%d")
    line(f"{report.area_name}（{report.area}）工作报告 Period report", size=15, h=8)
    line(f"统计期间 Period: {start} – {end}（不含结束日 end exclusive）", size=9)
    note = hiding_note(report)
    if note:
        line(note, size=8, h=5)
    pdf.ln(2)
    line("主要数据 Key figures", size=12, h=7)
    table(
        ["指标 Figure", "数值 Value", "来源 Query"],
        [
            [
                f"{f.label_zh} {f.label_en}",
                f.display(),
                f"{f.query.get('layer', '')} · {f.query.get('op', '')}",
            ]
            for f in report.figures
        ],
        [3, 1.2, 2.2],
    )
    if report.categories:
        line("分类结案 Events by category", size=12, h=7)
        table(
            ["类别 Category", "上报 Reported", "结案 Closed", "结案率 Closure", "按期 On time"],
            [
                [
                    f"{c['name_zh']} {c['name_en']}",
                    _cell(c["reported"]),
                    _cell(c["closed"]),
                    _pct(c["closure_rate"]),
                    _pct(c["on_time_rate"]),
                ]
                for c in report.categories
            ],
            [3, 1, 1, 1, 1],
        )
    for name, title in _CHARTS:
        png = report.charts.get(name)
        if not png:
            continue
        line(title, size=11, h=7)
        pdf.image(io.BytesIO(base64.b64decode(png)), w=min(width, 150))
        pdf.ln(2)
    for level, title in _LEVELS:
        rows = report.rankings.get(level)
        if not rows:
            continue
        line(title, size=12, h=7)
        table(
            ["排名 Rank", "单位 Unit", "得分 Score", *[n[0] for n in INDICATORS.values()]],
            [
                [
                    "—" if r["rank"] is None else str(r["rank"]),
                    str(r["unit"]),
                    _num(r["score"]),
                    *[_pct(r.get(code)) for code in INDICATORS],
                ]
                for r in rows
            ],
            [0.8, 2.4, 1, *[1.0] * len(INDICATORS)],
        )
    line("考核细则 Assessment rules", size=12, h=7)
    table(
        ["指标 Indicator", "权重 Weight", "档次 Bands"],
        [
            [
                f"{i.name_zh} {i.name_en}",
                f"{i.weight:g}",
                " ".join(f"≥{b.min_percent:g}%: {b.share * 100:.0f}%" for b in i.bands),
            ]
            for i in report.rules.indicators
        ],
        [3, 1, 3],
    )
    line("每个数字均可追溯到其查询 Every figure names the query that produced it.", size=8)
    return bytes(pdf.output())


def _cell(v: Any) -> str:
    if isinstance(v, str):
        return v
    return "—" if v is None else f"{int(v):,}"
