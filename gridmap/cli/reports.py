"""``gridmap report``: the period report for leadership (工作报告)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gridmap.cli.common import DbOpt, cli_settings, errors, open_store, out

__all__ = ["report_cmd"]


def report_cmd(
    area: Annotated[str, typer.Option("--area", help="Area code (town, community or grid).")],
    start: Annotated[
        str, typer.Option("--from", help="Period start (ISO date, in the time zone).")
    ],
    end: Annotated[
        str, typer.Option("--to", help="Period end, exclusive (ISO date, in the time zone).")
    ],
    out_path: Annotated[
        Path | None, typer.Option("--out", help="HTML, .json or .pdf file to write.")
    ] = None,
    pdf_path: Annotated[
        Path | None, typer.Option("--pdf", help="Also write the report as PDF here.")
    ] = None,
    time_zone: Annotated[
        str | None,
        typer.Option(
            "--time-zone", help="IANA time zone of the dates (default GRIDMAP_TIME_ZONE)."
        ),
    ] = None,
    rules_file: Annotated[
        Path | None,
        typer.Option(
            "--rules",
            help="Assessment rules (考核细则), a TOML or JSON file (default GRIDMAP_RULES_FILE, "
            "else the rules shipped with gridmap).",
        ),
    ] = None,
    database_url: DbOpt = None,
) -> None:
    """Period report for leadership (工作报告): figures, rankings, charts, as HTML, JSON or PDF.

    Figures come with the previous period and the same period last year;
    dates are read and shown in the time zone (default Asia/Shanghai).
    """
    import json as _json

    from gridmap.assessment.pdf import render_pdf
    from gridmap.assessment.report import ReportOptions, period_report, render_html
    from gridmap.assessment.rules import load_rules
    from gridmap.common.errors import BadInput
    from gridmap.security.access import SYSTEM

    targets = [p for p in (out_path, pdf_path) if p is not None]
    with errors():
        rules = load_rules(rules_file or cli_settings().reports.rules_file)
        if not targets:
            raise BadInput("say where to write the report: --out FILE and/or --pdf FILE.pdf")
        kinds = {p: p.suffix.lower() for p in targets}
        if pdf_path is not None:
            kinds[pdf_path] = ".pdf"
        with open_store(database_url, read_only=True) as store:
            report = period_report(
                store,
                SYSTEM,
                area=area,
                start=start,
                end=end,
                options=ReportOptions(
                    charts=any(k != ".json" for k in kinds.values()),
                    tz=time_zone or cli_settings().time_zone,
                    rules=rules,
                ),
            )
        for path, kind in kinds.items():
            if kind == ".pdf":
                path.write_bytes(render_pdf(report))
            elif kind == ".json":
                text = _json.dumps(report.to_dict(), ensure_ascii=False, indent=1)
                path.write_text(text, encoding="utf-8")
            else:
                path.write_text(render_html(report), encoding="utf-8")
    written = ", ".join(str(p) for p in kinds)
    out.print(f"report of {area} ({report.area_name}) written to {written}")
