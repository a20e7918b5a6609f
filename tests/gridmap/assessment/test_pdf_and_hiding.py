"""Small-count hiding (rule by rule, then on the scripted month) and the PDF report."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest
from pypdf import PdfReader

from gridmap.assessment.disclosure import protect_table
from gridmap.assessment.pdf import CJK_FONT, FontMissing, render_pdf
from gridmap.assessment.report import PeriodReport, ReportOptions, period_report, render_html
from gridmap.assessment.rules import default_rules
from gridmap.security.access import SYSTEM, Principal
from tests.gridmap.assessment.month import END, NOW, START, TOWN_A, Month

pytest_plugins = ["tests.gridmap.assessment.shared"]

VIEWER = Principal("v", "viewer")


def test_primary_and_zero() -> None:
    t = pd.DataFrame({"n": [0, 1, 2, 3]}, index=list("abcd"))
    assert protect_table(t, counts=["n"])["n"].tolist() == [0, "<3", "<3", 3]
    assert protect_table(t, counts=["n"], k=5)["n"].tolist() == [0, "<5", "<5", "<5"]


def test_difference_hides_the_part() -> None:
    t = pd.DataFrame({"total": [10, 10, 2], "part": [9, 5, 2]}, index=list("abc"))
    out = protect_table(t, counts=["total", "part"], pairs=[("total", "part")])
    # a: 10 - 9 = 1 would be derivable; c: the total itself is small.
    assert out["part"].tolist() == ["*", 5, "<3"]
    assert out["total"].tolist() == [10, 10, "<3"]


def test_complementary_cell_among_siblings() -> None:
    t = pd.DataFrame(
        {"n": [1, 7, 4, 0, 2, 9]},
        index=["g1", "g2", "g3", "g4", "h1", "h2"],
    )
    groups = pd.Series(["G", "G", "G", "G", "H", "H"], index=t.index)
    out = protect_table(t, counts=["n"], groups=groups)["n"]
    # G: g1 hidden; its parent total minus g2, g3 (and the zero) would give it: g3 (the
    # smallest non-zero sibling) goes too. H: h1 hidden, h2 is the only sibling left.
    assert out.tolist() == ["<3", 7, "*", 0, "<3", "*"]
    # Nothing hidden stays recoverable: each group has 0 or at least 2 hidden cells.
    for g in ("G", "H"):
        cells = out[groups == g]
        assert sum(isinstance(v, str) for v in cells) != 1


def test_rates_follow_their_counts() -> None:
    t = pd.DataFrame({"num": [1, 5], "den": [10, 10], "rate": [0.1, 0.5]}, index=["a", "b"])
    out = protect_table(t, counts=["num", "den"], rates={"rate": ("num", "den")})
    assert out["rate"].tolist() == [None, 0.5]


@pytest.fixture(params=["duckdb", pytest.param("postgis", marks=pytest.mark.postgis)])
def month(request: pytest.FixtureRequest) -> Month:
    built: tuple[Month, str] = request.getfixturevalue(f"month_{request.param}")
    return built[0]


def test_viewer_report_hides_small_counts(month: Month) -> None:
    kw = {
        "area": TOWN_A,
        "start": START,
        "end": END,
        "now": NOW,
        "options": ReportOptions(charts=False),
    }
    r = period_report(month.store, VIEWER, **kw)
    staff = period_report(month.store, SYSTEM, **kw)
    shown = {f.key: f.display() for f in r.figures}
    full = {f.key: f for f in staff.figures}
    assert r.min_count == 3 and staff.min_count is None
    assert shown["events_reported"] == "6"
    assert shown["opinions"] == shown["help_requests"] == shown["problems_solved"] == "<3"
    assert shown["events_closed"] == "*" and shown["closure_rate"] == "*"
    assert shown["on_time_rate"] == "*"
    assert shown["households_registered"] == "4" and shown["residents_registered"] == "0"
    assert shown["doorknock_visited"] == "3"
    assert full["events_closed"].display() == "4" and full["opinions"].display() == "1"
    # Every category has fewer than 3 reports: nothing of them is shown.
    assert r.categories and all(c["reported"] == "<3" for c in r.categories)
    assert all(c["closure_rate"] in ("*", None) for c in r.categories)
    assert "worker" not in r.rankings and "worker" in staff.rankings
    assert all("evidence" not in row for rows in r.rankings.values() for row in rows)
    # Town A's closure rate rests on 4 closed of 6: hidden with the score it feeds.
    town = r.rankings["town"][0]
    assert town["closure_rate"] == "*" and town["score"] == "*"
    assert "tracks" not in r.figure("patrol_coverage").query
    page = render_html(r)
    assert 'id="small-counts"' in page and "&lt;3" in page
    k5 = period_report(
        month.store,
        VIEWER,
        area=TOWN_A,
        start=START,
        end=END,
        now=NOW,
        options=ReportOptions(min_count=7),
    )
    assert k5.figure("events_reported").display() == "<7"
    assert k5.figure("households_registered").display() == "<7"


def _text(pdf: bytes) -> tuple[str, PdfReader]:
    reader = PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() or "" for page in reader.pages), reader


def test_pdf_has_the_figures(month_duckdb: tuple[Month, str]) -> None:
    m, _ = month_duckdb
    r = period_report(m.store, SYSTEM, area=TOWN_A, start=START, end=END, now=NOW)
    pdf = render_pdf(r)
    text, reader = _text(pdf)
    flat = "".join(text.split())
    assert pdf.startswith(b"%PDF-") and len(reader.pages) >= 2
    for label in (
        "工作报告",
        "Periodreport",
        "结案率",
        "Closurerate",
        "上报事件",
        "Eventsreported",
    ):
        assert label in flat, label
    assert r.area_name.replace(" ", "") in flat
    for key in ("events_reported", "events_closed", "closure_rate", "doorknock_visited"):
        assert r.figure(key).display().replace(" ", "") in flat, key
    assert "66.7%" in flat and "2026-11-01" in flat
    images = sum(len(page.images) for page in reader.pages)
    assert images == len(r.charts) >= 2
    fonts = reader.pages[0]["/Resources"]["/Font"]
    names = [str(f.get_object()["/BaseFont"]) for f in fonts.values()]
    assert any("WenQuanYi" in n for n in names), names  # the CJK font, embedded


def test_viewer_pdf_keeps_hiding(month_duckdb: tuple[Month, str]) -> None:
    m, _ = month_duckdb
    r = period_report(
        m.store,
        VIEWER,
        area=TOWN_A,
        start=START,
        end=END,
        now=NOW,
        options=ReportOptions(charts=False),
    )
    flat = "".join(_text(render_pdf(r))[0].split())
    assert "<3" in flat and "小于3的数字显示为<3" in flat
    assert "66.7%" not in flat  # the closure rate stays hidden


def test_missing_font_is_named(tmp_path: Path) -> None:
    report = PeriodReport(
        TOWN_A,
        "街道",
        pd.Timestamp(START, tz="UTC"),
        pd.Timestamp(END, tz="UTC"),
        [],
        [],
        {},
        default_rules(),
    )
    missing = tmp_path / "wqy-microhei.ttc"
    with pytest.raises(FontMissing, match=r"wqy-microhei.ttc.*fonts-wqy-microhei"):
        render_pdf(report, font=missing)
    assert CJK_FONT.is_file()  # the Debian font the tests run with
