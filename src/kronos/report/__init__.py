"""``kronos report``: a plan drawn for people, as one HTML file and optional PNG charts.

    report = build_report(snapshot, plan, state)   # figures.py: replay, numbers
    text = render_html(report)                                 # html.py: inline CSS + SVG
    files = render_pngs(report)                                # png.py: matplotlib (extra "png")

Rendering is pure (documents in, text or bytes out); the CLI writes the files.
"""

from __future__ import annotations

from kronos.report.figures import NotMovable, PolicyChart, Report, build_report
from kronos.report.html import render_html
from kronos.report.png import chart_folder, render_pngs, write_pngs

__all__ = [
    "NotMovable",
    "PolicyChart",
    "Report",
    "build_report",
    "chart_folder",
    "render_html",
    "render_pngs",
    "write_pngs",
]
