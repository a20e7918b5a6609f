"""A period report as a self-contained HTML page, and its charts (zh-CN titles and axes).

No external URL, every text escaped, charts and a map as inline PNG when
matplotlib is installed (Agg backend), drawn in the PDF's CJK font
(:data:`gridmap.assessment.pdf.CJK_FONT`).
"""

from __future__ import annotations

import base64
import io
import warnings
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from jinja2 import Environment, select_autoescape

from gridmap.assessment._figures import RANKING_SIZE, PeriodReport, is_idle, unit_label
from gridmap.assessment.disclosure import shown
from gridmap.assessment.rules import INDICATORS
from gridmap.security.access import Principal
from gridmap.storage import Prefix, Store

__all__ = ["CHARTS", "LEVELS", "hiding_note", "render_html", "span_text"]


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _chart_font() -> dict[str, Any]:
    """Matplotlib settings that draw Chinese text in the PDF's CJK font (when installed)."""
    from matplotlib import font_manager

    from gridmap.assessment.pdf import CJK_FONT

    rc: dict[str, Any] = {"axes.unicode_minus": False}
    if CJK_FONT.is_file():
        font_manager.fontManager.addfont(str(CJK_FONT))
        name = font_manager.FontProperties(fname=str(CJK_FONT)).get_name()
        rc["font.family"] = [name, "sans-serif"]
    return rc


def render_charts(report: PeriodReport, store: Store, principal: Principal) -> dict[str, str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - matplotlib is optional
        return {}
    out: dict[str, str] = {}
    with warnings.catch_warnings(), plt.rc_context(_chart_font()):  # type: ignore[arg-type]
        warnings.simplefilter("ignore")  # a glyph missing from the font is not an error
        cat_rows = [
            r for r in report.categories if shown(r["reported"]) and shown(r["closed"])
        ]  # hidden cells are not drawn either
        if cat_rows:
            fig, ax = plt.subplots(figsize=(6, 3.2))
            cats = [str(r["name_zh"] or r["category"]) for r in cat_rows]
            ax.bar(cats, [r["reported"] for r in cat_rows], label="上报 Reported")
            ax.bar(cats, [r["closed"] for r in cat_rows], label="结案 Closed")
            ax.set_title("分类事件 Events by category")
            ax.set_xlabel("事件类别 Category")
            ax.set_ylabel("事件数 Events")
            ax.tick_params(axis="x", rotation=30)
            ax.legend()
            out["categories"] = _png(fig)
            plt.close(fig)
        rows = [r for r in report.rankings.get("grid", []) if not is_idle(r)]
        if rows:
            fig, ax = plt.subplots(figsize=(6, 3.2))
            ax.bar(
                [str(r["unit"])[-3:] for r in rows],
                [r["score"] if isinstance(r["score"], int | float) else 0 for r in rows],
            )
            ax.set_title("网格考核得分 Grid scores (0–100)")
            ax.set_xlabel("网格编号(后三位) Grid number")
            ax.set_ylabel("得分 Score")
            ax.set_ylim(0, 100)
            out["grid_scores"] = _png(fig)
            plt.close(fig)
        with store.scoped(principal.areas):
            grids = store.read("grids", where={"code": Prefix((report.area,))})
        if isinstance(grids, gpd.GeoDataFrame) and len(grids):
            if "valid_to" in grids and grids["valid_to"].isna().any():
                grids = grids[grids["valid_to"].isna()]
            score = {  # grids with nothing measured stay grey, as "no data"
                str(r["unit"]): r["score"]
                for r in report.rankings.get("grid", [])
                if isinstance(r["score"], int | float) and not is_idle(r)
            }
            grids = grids.assign(
                score=pd.to_numeric(grids["code"].map(score), errors="coerce").astype(float)
            )
            fig, ax = plt.subplots(figsize=(5, 5))
            grids.plot(
                column="score",
                ax=ax,
                cmap="RdYlGn",
                vmin=0,
                vmax=100,
                legend=True,
                legend_kwds={"label": "得分 Score"},
                edgecolor="black",
                linewidth=0.4,
                missing_kwds={"color": "lightgrey"},
            )
            ax.set_axis_off()
            ax.set_title(
                "网格考核得分地图 Assessment score by grid\n(灰色：无考核数据 grey: no data)"
            )
            out["map"] = _png(fig)
            plt.close(fig)
    return out


#: Charts of the report, in order, with their captions.
CHARTS: tuple[tuple[str, str], ...] = (
    ("categories", "分类事件 Events by category"),
    ("grid_scores", "网格考核得分 Grid scores"),
    ("map", "网格考核得分地图 Assessment score by grid"),
)


#: Ranking levels, in order, with their headings.
LEVELS: tuple[tuple[str, str], ...] = (
    ("town", "镇街排名 Ranking by town"),
    ("community", "社区排名 Ranking by community"),
    ("grid", "网格排名 Ranking by grid"),
    ("worker", "网格员排名 Ranking by worker"),
)


_TEMPLATE = """<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>{{ r.area_name }} 工作报告 Period report {{ start }} – {{ end }}</title>
<style>
body{font-family:sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px}
td.n{text-align:right;white-space:nowrap}.en{color:#666;font-size:.9em}
tr.note td{border-top:none;color:#555;font-size:.85em;background:#fafafa}
tr.others td{color:#555;font-style:italic;text-align:center}
#highlights{background:#f5f8ff;border-left:4px solid #4a74c9;padding:.5em 1em}
</style></head><body>
<h1>{{ r.area_name }}（{{ r.area }}）工作报告 <span class="en">Period report</span></h1>
<p>统计期间 Period: {{ start }} – {{ end }}（不含结束日 end exclusive；时区 time zone {{ r.tz }}）
{% if r.generated_at %}· 生成时间 Generated {{ generated }}{% endif %}</p>
{% if previous %}<p class="en">比较 Compared with: 上期 previous period {{ previous }}；
去年同期 same period last year {{ last_year }}</p>{% endif %}
{% if note %}<p class="en" id="small-counts">{{ note }}</p>{% endif %}
{% if r.highlights.get("zh") %}<div id="highlights"><h2>要点与问题 <span class="en">Highlights and
problems</span></h2><p>{% for s in r.highlights.zh %}{{ s }}{% endfor %}</p>
<p class="en">{{ r.highlights.en|join(" ") }}</p></div>{% endif %}
<h2>主要数据 <span class="en">Key figures</span></h2>
<table><tr><th>指标 Figure</th><th>本期 This period</th><th>上期 Previous</th>
<th>环比 Change</th><th>去年同期 Last year</th><th>同比 Year on year</th></tr>
{% for f in r.figures %}<tr id="fig-{{ f.key }}"><td>{{ f.label_zh }}
<span class="en">{{ f.label_en }}</span></td><td class="n">{{ f.display() }}</td>
{% if f.history %}<td class="n">{{ f.display("previous") }}</td>
<td class="n">{{ f.display_change("previous") }}</td>
<td class="n">{{ f.display("last_year") }}</td>
<td class="n">{{ f.display_change("last_year") }}</td>
{% else %}<td class="n" colspan="4">无历史数据 no history kept</td>{% endif %}</tr>
{% if f.note_zh %}<tr class="note" id="note-{{ f.key }}"><td colspan="6">{{ f.note_zh }}
<span class="en">{{ f.note_en }}</span></td></tr>{% endif %}
{% endfor %}</table>
<h2>分类结案 <span class="en">Events by category</span></h2>
<table><tr><th>类别 Category</th><th>上报 Reported</th><th>结案 Closed</th>
<th>结案率 Closure</th><th>按期结案率 On time</th></tr>
{% for c in r.categories %}<tr><td>{{ c.name_zh }} <span class="en">{{ c.name_en }}</span></td>
<td class="n">{{ c.reported }}</td><td class="n">{{ c.closed }}</td>
<td class="n">{{ pct(c.closure_rate) }}</td><td class="n">{{ pct(c.on_time_rate) }}</td></tr>
{% endfor %}</table>
{% for name, title in charts %}{% if r.charts.get(name) %}
<figure><img alt="{{ title }}" src="data:image/png;base64,{{ r.charts[name] }}">
<figcaption>{{ title }}</figcaption></figure>{% endif %}{% endfor %}
{% for level, title in levels %}{% if r.rankings.get(level) %}
{% set notes = r.ranking_notes.get(level, {}) %}
<h2>{{ title }}</h2>
<table><tr><th>排名 Rank</th><th>单位 Unit</th><th>得分 Score</th>
{% for code, names in indicators %}<th>{{ names[0] }}<br><span class="en">{{ names[1] }}</span></th>
{% endfor %}</tr>
{% for row in r.rankings[level] %}<tr>
<td class="n">{{ row.rank if row.rank is not none else "—" }}</td>
<td>{{ unit(row, level) }}</td><td class="n">{{ num(row.score) }}</td>
{% for code, names in indicators %}<td class="n">{{ pct(row[code]) }}</td>{% endfor %}</tr>
{% if loop.index == size and notes.get("others") %}<tr class="others">
<td colspan="{{ 3 + indicators|length }}">… 其余 {{ notes.others }} 个单位（排名居中，未列出）
{{ notes.others }} others in between …</td></tr>{% endif %}
{% endfor %}</table>
{% if notes.get("idle") %}<p class="en">另有 {{ notes.idle }} 个单位本期无考核数据，未列入排名。
{{ notes.idle }} more had nothing measured in the period and are not ranked.</p>{% endif %}
{% endif %}{% endfor %}
{% if r.rankings %}<p class="en">排名中的巡查覆盖率为考核口径：各巡查日覆盖率之和 ÷ 巡查日数。
In the rankings, patrol coverage is the assessment's: the daily coverage summed over the
patrol days ÷ the number of patrol days.</p>{% endif %}
<h2>考核细则 <span class="en">Assessment rules</span></h2>
<table><tr><th>指标 Indicator</th><th>权重 Weight</th><th>档次 Bands</th></tr>
{% for i in r.rules.indicators %}<tr>
<td>{{ i.name_zh }} <span class="en">{{ i.name_en }}</span></td>
<td class="n">{{ i.weight }}</td><td>{% for b in i.bands %}≥{{ b.min_percent }}%: {{
 (b.share * 100)|round(0) }}% {% endfor %}</td></tr>{% endfor %}</table>
<p class="en">每个数字的计算方法见其下方说明；JSON 格式（f=json）列出每个数字的查询。
Each figure's rule is written under it; the JSON form (f=json) names the query behind
every figure.</p>
</body></html>
"""


def fmt_pct(v: Any) -> str:
    if isinstance(v, str):  # hidden: "<k" or "*"
        return v
    return "—" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{100 * v:.1f}%"


def fmt_num(v: Any) -> str:
    if isinstance(v, str):
        return v
    return "—" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.1f}"


def hiding_note(report: PeriodReport) -> str | None:
    """The explanation of hidden cells (zh-CN and English), when small counts are hidden.

    Examples
    --------
    >>> from gridmap.assessment.rules import default_rules
    >>> r = PeriodReport("990100001", "街道", pd.Timestamp("2026-11-01", tz="UTC"),
    ...                  pd.Timestamp("2026-12-01", tz="UTC"), [], [], {}, default_rules(),
    ...                  min_count=3)
    >>> hiding_note(r)[:12]
    '小于 3 的数字显示为 '
    """
    if report.min_count is None:
        return None
    k = report.min_count
    return (
        f"小于 {k} 的数字显示为 <{k}；可据以推算的数字与比率显示为 *。"
        f" Counts from 1 to {k - 1} show as <{k}; figures and rates from which they"
        " could be derived show as *."
    )


def span_text(report: PeriodReport, which: str) -> str | None:
    """``YYYY-MM-DD – YYYY-MM-DD`` of the previous period or the same period last year."""
    p = report.previous if which == "previous" else report.last_year
    if p is None:
        return None
    return f"{report.local(p[0])} – {report.local(p[1])}"


def render_html(report: PeriodReport) -> str:
    """The report as one self-contained HTML page (escaped text, inline PNG, no URL).

    Examples
    --------
    >>> from gridmap.assessment.rules import default_rules
    >>> r = PeriodReport("990100001", "<b>街道</b>", pd.Timestamp("2026-11-01", tz="UTC"),
    ...                  pd.Timestamp("2026-12-01", tz="UTC"), [], [], {}, default_rules())
    >>> "&lt;b&gt;街道" in render_html(r)
    True
    """
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    template = env.from_string(_TEMPLATE)
    return template.render(
        r=report,
        start=report.local(report.start),
        end=report.local(report.end),
        generated=report.local(report.generated_at, "%Y-%m-%d %H:%M"),
        previous=span_text(report, "previous"),
        last_year=span_text(report, "last_year"),
        note=hiding_note(report),
        pct=fmt_pct,
        num=fmt_num,
        unit=unit_label,
        size=RANKING_SIZE,
        indicators=list(INDICATORS.items()),
        charts=CHARTS,
        levels=LEVELS,
    )
