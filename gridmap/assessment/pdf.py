"""The period report as a PDF (fpdf2): the same figures as the HTML page, Chinese with English.

Highlights and problems first, then the key figures with the previous
period, the same period last year and the changes (each figure's rule on a
line under it), events by category, the charts, the rankings (names with
codes, top and bottom units, an "others" row) and the assessment rules.
Dates are in the report's time zone.

Text is set in WenQuanYi Micro Hei (Debian ``fonts-wqy-microhei``,
:data:`CJK_FONT`), or in the TrueType font (``.ttf``, or the first face of a
``.ttc``) named by the setting ``GRIDMAP_PDF_FONT`` (:data:`FONT_ENV`, the
``reports`` section of :mod:`gridmap.common.settings`, e.g. Noto Sans CJK on a
system without the Debian package), embedded as a subset so the file reads
anywhere; charts are the report's PNG images. Without the font,
:func:`render_pdf` fails with :class:`FontMissing`, naming the file and the
package that provides it.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

from gridmap.assessment._figures import RANKING_SIZE, PeriodReport, unit_label
from gridmap.assessment._report_html import CHARTS, LEVELS, fmt_num, fmt_pct, hiding_note, span_text
from gridmap.assessment.rules import INDICATORS
from gridmap.common.errors import GridmapError
from gridmap.common.settings import ReportSettings

__all__ = ["CJK_FONT", "FONT_ENV", "FontMissing", "default_font", "render_pdf"]

#: The CJK font the PDF is set in (Debian package ``fonts-wqy-microhei``).
CJK_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
#: Environment variable naming another CJK font file for PDF output.
FONT_ENV = "GRIDMAP_PDF_FONT"


class FontMissing(GridmapError):
    """The CJK font needed for PDF output is not installed."""

    code = "font_missing"


def default_font(settings: ReportSettings | None = None) -> Path:
    """The font file PDF output uses: ``GRIDMAP_PDF_FONT`` if set, else :data:`CJK_FONT`.

    Parameters
    ----------
    settings : ReportSettings, optional
        The ``reports`` settings; read from the environment when omitted.

    Examples
    --------
    >>> default_font(ReportSettings(pdf_font="/srv/fonts/NotoSansCJK-Regular.ttc"))
    PosixPath('/srv/fonts/NotoSansCJK-Regular.ttc')
    >>> default_font(ReportSettings(pdf_font=None)) == CJK_FONT
    True
    """
    font = (settings if settings is not None else ReportSettings()).pdf_font
    return font if font is not None else CJK_FONT


def pdf_font(path: Path | None) -> Path:
    font = Path(path) if path is not None else default_font()
    if not font.is_file():
        where = (
            "" if font == CJK_FONT else (f"named by {FONT_ENV}; " if path is None else "given; ")
        )
        raise FontMissing(
            f"PDF reports need the CJK font {font} ({where}it is missing): install the Debian "
            f"package fonts-wqy-microhei (apt-get install fonts-wqy-microhei) or set "
            f"{FONT_ENV} to another CJK TrueType font file"
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

    path = pdf_font(font)
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

    start, end = report.local(report.start), report.local(report.end)
    line(f"{report.area_name}（{report.area}）工作报告 Period report", size=15, h=8)
    line(
        f"统计期间 Period: {start} – {end}（不含结束日 end exclusive；时区 time zone {report.tz}）",
        size=9,
    )
    if report.generated_at is not None:
        when = report.local(report.generated_at, "%Y-%m-%d %H:%M")
        line(f"生成时间 Generated: {when}", size=8, h=5)
    previous, last_year = span_text(report, "previous"), span_text(report, "last_year")
    if previous:
        line(
            f"比较 Compared with: 上期 previous {previous}；去年同期 last year {last_year}", size=8
        )
    note = hiding_note(report)
    if note:
        line(note, size=8, h=5)
    if report.highlights.get("zh"):
        pdf.ln(2)
        line("要点与问题 Highlights and problems", size=12, h=7)
        line("".join(report.highlights["zh"]), size=9, h=5)
        line(" ".join(report.highlights.get("en", [])), size=8, h=4.5)
    pdf.ln(2)
    line("主要数据 Key figures", size=12, h=7)
    _figure_table(pdf, report)
    if report.categories:
        line("分类结案 Events by category", size=12, h=7)
        table(
            ["类别 Category", "上报 Reported", "结案 Closed", "结案率 Closure", "按期 On time"],
            [
                [
                    f"{c['name_zh']} {c['name_en']}",
                    _cell(c["reported"]),
                    _cell(c["closed"]),
                    fmt_pct(c["closure_rate"]),
                    fmt_pct(c["on_time_rate"]),
                ]
                for c in report.categories
            ],
            [3, 1, 1, 1, 1],
        )
    for name, title in CHARTS:
        png = report.charts.get(name)
        if not png:
            continue
        line(title, size=11, h=7)
        pdf.image(io.BytesIO(base64.b64decode(png)), w=min(width, 150))
        pdf.ln(2)
    for level, title in LEVELS:
        rows = report.rankings.get(level)
        if not rows:
            continue
        line(title, size=12, h=7)
        _ranking_table(pdf, report, level)
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
    line(
        "每个数字的计算方法见其下方说明；JSON 格式列出每个数字的查询。"
        " Each figure's rule is written under it; the JSON form names the query behind it.",
        size=8,
    )
    return bytes(pdf.output())


def _heading() -> Any:
    from fpdf.fonts import FontFace

    return FontFace(emphasis="", fill_color=(235, 235, 235))  # one face: no bold


def _figure_table(pdf: Any, report: PeriodReport) -> None:
    """Key figures: this period, previous, change, last year, change; rules under them."""
    from fpdf.fonts import FontFace

    note_style = FontFace(color=(90, 90, 90), size_pt=7)
    pdf.set_font("wqy", size=8)
    with pdf.table(
        col_widths=[3, 1.2, 1.2, 1.5, 1.2, 1.5],
        text_align="LEFT",
        line_height=5,
        headings_style=_heading(),
    ) as t:
        r = t.row()
        for h in (
            "指标 Figure",
            "本期 This period",
            "上期 Previous",
            "环比 Change",
            "去年同期 Last year",
            "同比 Year on year",
        ):
            r.cell(h)
        for f in report.figures:
            r = t.row()
            r.cell(f"{f.label_zh} {f.label_en}")
            r.cell(f.display())
            if f.history:
                r.cell(f.display("previous"))
                r.cell(f.display_change("previous"))
                r.cell(f.display("last_year"))
                r.cell(f.display_change("last_year"))
            else:
                r.cell("无历史数据 no history kept", colspan=4)
            if f.note_zh:
                r = t.row()
                r.cell(f"{f.note_zh} {f.note_en or ''}", colspan=6, style=note_style)
    pdf.ln(3)


def _ranking_table(pdf: Any, report: PeriodReport, level: str) -> None:
    """A ranking: top and bottom units by name and code, an "others" row between them."""
    rows = report.rankings.get(level, [])
    notes = report.ranking_notes.get(level, {})
    n = 3 + len(INDICATORS)
    pdf.set_font("wqy", size=8)
    with pdf.table(
        col_widths=[0.8, 2.8, 1, *[1.0] * len(INDICATORS)],
        text_align="LEFT",
        line_height=5,
        headings_style=_heading(),
    ) as t:
        r = t.row()
        for h in ("排名 Rank", "单位 Unit", "得分 Score", *[x[0] for x in INDICATORS.values()]):
            r.cell(h)
        for i, row in enumerate(rows, start=1):
            r = t.row()
            r.cell("—" if row["rank"] is None else str(row["rank"]))
            r.cell(unit_label(row, level))
            r.cell(fmt_num(row["score"]))
            for code in INDICATORS:
                r.cell(fmt_pct(row.get(code)))
            if i == RANKING_SIZE and notes.get("others"):
                r = t.row()
                r.cell(
                    f"… 其余 {notes['others']} 个单位（排名居中，未列出）"
                    f" {notes['others']} others in between …",
                    colspan=n,
                )
    if notes.get("idle"):
        pdf.set_font("wqy", size=8)
        pdf.multi_cell(
            0,
            4.5,
            f"另有 {notes['idle']} 个单位本期无考核数据，未列入排名。"
            f" {notes['idle']} more had nothing measured in the period and are not ranked.",
            new_x="LMARGIN",
            new_y="NEXT",
        )
    pdf.ln(3)


def _cell(v: Any) -> str:
    if isinstance(v, str):
        return v
    return "—" if v is None else f"{int(v):,}"
