"""The report as one self-contained HTML page: inline CSS and SVG, no script, no URL.

An operator attaches the file to a change ticket, so it must open anywhere,
offline, years later: nothing is fetched, nothing runs. Every string taken
from a document (VM, host, aggregate and policy names, reasons) goes through
:func:`_e`; VM names are user input.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from html import escape

import numpy as np

from kronos.core.convert import format_time
from kronos.core.model import AggregateSummary, Step, Unplaced
from kronos.render import budget_said
from kronos.report.figures import (
    BAND_LEGEND,
    AggregateFigures,
    NotMovable,
    PolicyChart,
    Report,
    sampled,
    score_axis,
)
from kronos.terminal import printable

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#1a202c}
h1{font-size:22px;margin:0 0 6px}
h2{font-size:18px;margin:32px 0 8px;border-bottom:1px solid #cbd5e0;padding-bottom:4px}
h3{font-size:15px;margin:16px 0 6px}
.meta{color:#4a5568;margin:2px 0}
code,.id{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}
.id{color:#718096;white-space:nowrap}
.nw{white-space:nowrap}
table{border-collapse:collapse;margin:6px 0 14px}
th,td{padding:3px 10px;border-bottom:1px solid #e2e8f0;text-align:left;vertical-align:top}
th{background:#f7fafc;font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.wave-head th{background:#ebf4ff}
.alert{background:#fff5f5;border:1px solid #feb2b2;padding:8px 12px;border-radius:4px;margin:10px 0}
.note{background:#fffff0;border:1px solid #faf089;padding:6px 12px;border-radius:4px;margin:6px 0}
dl{display:grid;grid-template-columns:max-content auto;gap:2px 14px;margin:6px 0 12px}
dt{color:#4a5568}dd{margin:0}
.charts{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
figure{margin:0;border:1px solid #e2e8f0;border-radius:4px;padding:8px;max-width:100%;box-sizing:border-box}
.scroll{overflow-x:auto}
figcaption{font-size:13px;margin-bottom:4px}
.legend{font-size:12px;color:#4a5568;margin:4px 0 8px}
.legend span{display:inline-block;margin-right:14px}
.sw{display:inline-block;width:14px;height:10px;margin-right:4px;vertical-align:middle}
svg{display:block}
svg text{font:10px system-ui,sans-serif;fill:#2d3748}
svg text.off{fill:#a0aec0;font-style:italic}
.bb{fill:#a0aec0}.ba{fill:#2b6cb0}
.cb{fill:#cbd5e0;stroke:#a0aec0}.ca{fill:none;stroke:#2b6cb0;stroke-width:2}
.band{fill:#38a169;fill-opacity:.15}.mean{stroke:#38a169;stroke-dasharray:4 3}
.max{stroke:#c53030;stroke-width:1.5}svg text.maxl{fill:#c53030}
.grid{stroke:#edf2f7}.axis{stroke:#718096}
table.stats td,table.stats th{padding:1px 8px;font-size:12px}
"""


def _e(value: object) -> str:
    """Escaped for HTML, and a name's control and bidi characters shown, as on the terminal
    (:func:`kronos.terminal.printable`): a right-to-left override in a VM's name reversed the
    figures after it on the page."""
    return escape(printable(str(value)), quote=True)


def _f(x: float | None, digits: int = 4) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def render_html(report: Report) -> str:
    """The whole page as a string (the caller writes it atomically)."""
    plan = report.plan
    parts = [
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Kronos plan report · {_e(format_time(plan.created_at))}</title>",
        f"<style>{_CSS}</style></head><body>",
        _header(report),
        _overview(report.aggregates),
        *(_aggregate(a) for a in report.aggregates),
        _vm_list("Unplaced", "unplaced", plan.summary.unplaced, report,
                 "VMs the plan had to move but found no host for."),
        _vm_list("Not selected", "not-selected", plan.summary.not_selected or (), report,
                 "VMs on the hosts being emptied that the selectors left where they are."),
        _not_movable(report.not_movable),
        _steps(plan.steps, report),  # last: the longest part
        "</body></html>\n",
    ]  # fmt: skip
    return "\n".join(p for p in parts if p)


def _header(report: Report) -> str:
    plan = report.plan
    waves = len({s.wave for s in plan.steps})
    out = [
        "<header><h1>Kronos plan report</h1>",
        f'<p class="meta">snapshot taken at {_e(format_time(report.taken_at))} · plan created at '
        f"{_e(format_time(plan.created_at))} · snapshot digest <code>{_e(plan.snapshot_digest)}</code></p>",
        f'<p class="meta">mode <b>{_e(plan.options.get("mode", "–"))}</b> · budget '
        f"{_e(budget_said(plan.options))} per aggregate · "
        f"<b>{len(plan.steps)}</b> step(s) in <b>{waves}</b> wave(s) · "
        f"{len(report.aggregates)} aggregate(s)</p></header>",
    ]
    s = plan.summary
    if s.fence_first:
        assumed = plan.options.get("assumed_fenced")
        out.append(
            '<p class="alert fence"><b>Fence first:</b> power off '
            f"{_e(', '.join(s.fence_first))} before any step runs (an evacuated VM must never run twice)"
            + (f"; planned assuming {_e(', '.join(assumed))} already down" if assumed else "")
            + "</p>"
        )
    if s.hosts_to_enable:
        out.append(
            '<p class="alert enable"><b>Enable these hosts</b> (load came back and no enabled host can '
            f"take it): {_e(', '.join(s.hosts_to_enable))}</p>"
        )
    out += [f'<p class="note">{_e(w)}</p>' for w in s.warnings or ()]
    return "\n".join(out)


def _overview(aggregates: Sequence[AggregateFigures]) -> str:
    rows = []
    for a in aggregates:
        s = a.summary
        status = f"skipped: {s.skipped}" if s.skipped else "; ".join(s.notes or ())
        hosts = "" if s.hosts is None else s.hosts
        rows.append(
            f'<tr class="agg-row"><td>{_e(a.name)}</td><td class="num">{hosts}</td>'
            f'<td class="num">{s.migrations}</td>'
            f'<td class="num">{_f(s.combined_before)} → {_f(s.combined_after)}</td>'
            f'<td class="num">{len(s.hosts_emptied)}</td><td>{_e(status)}</td></tr>'
        )
    return (
        '<section><h2>Summary</h2><table class="overview"><thead><tr><th>aggregate</th>'
        '<th class="num">hosts</th><th class="num">moves</th><th class="num">combined imbalance</th>'
        '<th class="num">emptied</th><th>status</th></tr></thead><tbody>'
        + "".join(rows)
        + "</tbody></table></section>"
    )


def _aggregate(a: AggregateFigures) -> str:
    s = a.summary
    out = [f'<section class="aggregate" data-aggregate="{_e(a.name)}"><h2>Aggregate {_e(a.name)}</h2>']
    out.append(_policy_table(a.charts, s))
    out.append(_facts(s))
    if a.charts and a.charts[0].hosts:
        out.append(_legend(a.charts[0]))
        out.append('<div class="charts">' + "".join(_chart(c) for c in a.charts) + "</div>")
    else:
        out.append("<p>No hosts to draw.</p>")
    out.append("</section>")
    return "\n".join(out)


def _policy_table(charts: Sequence[PolicyChart], s: AggregateSummary) -> str:
    rows = []
    for c in charts:
        after = s.imbalance_after.get(c.policy)
        within = "" if after is None else ("yes" if after <= c.threshold else "no")
        rows.append(
            f'<tr><td>{_e(c.policy)}</td><td class="num">{_f(c.threshold)}</td>'
            f'<td class="num">{_f(c.max_host_score, 2)}</td>'
            f'<td class="num">{_f(s.imbalance_before.get(c.policy))}</td>'
            f'<td class="num">{_f(after)}</td><td>{within}</td></tr>'
        )
    rows.append(
        f'<tr><th>combined</th><td></td><td></td><td class="num">{_f(s.combined_before)}</td>'
        f'<td class="num">{_f(s.combined_after)}</td><td></td></tr>'
    )
    return (
        '<table class="figures"><thead><tr><th>policy</th><th class="num">threshold</th>'
        '<th class="num">max_host_score</th><th class="num">std-dev before</th>'
        '<th class="num">std-dev after</th><th>within threshold after</th></tr></thead><tbody>'
        + "".join(rows)
        + "</tbody></table>"
    )


def _facts(s: AggregateSummary) -> str:
    facts: list[tuple[str, str]] = [("migrations", str(s.migrations))]
    if s.skipped:
        facts.append(("skipped", _e(s.skipped)))
    facts += [("note", _e(n)) for n in s.notes or ()]
    facts += [("not repaired", _e(n)) for n in s.unrepaired or ()]
    facts.append(("hosts emptied", _e(", ".join(s.hosts_emptied)) if s.hosts_emptied else "none"))
    for act in sorted({x for x in (s.post_drain or {}).values() if x != "none"}):
        hosts = [h for h, x in (s.post_drain or {}).items() if x == act]
        facts.append((f"then {_e(act)}", _e(", ".join(hosts))))
    if s.hosts_used_before is not None:
        used = f"{s.hosts_used_before} → {s.hosts_used_after}"
        if s.hosts_lower_bound is not None:
            used += f" (at least {s.hosts_lower_bound} needed)"
        facts.append(("hosts in use", used))
    if s.hosts_to_enable:
        facts.append(("hosts to enable", _e(", ".join(s.hosts_to_enable))))
    return '<dl class="facts">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts) + "</dl>"


def _legend(chart: PolicyChart) -> str:
    bars = chart.per_host
    return (
        '<div class="legend">'
        f'<span><i class="sw" style="background:{"#a0aec0" if bars else "#cbd5e0"}"></i>score before</span>'
        '<span><i class="sw" style="background:#2b6cb0"></i>score after</span>'
        f'<span><i class="sw" style="background:rgba(56,161,105,.3)"></i>{_e(BAND_LEGEND)}</span>'
        '<span><i class="sw" style="background:#c53030;height:2px"></i>max_host_score</span>'
        + ("<span><i>italic</i> host: disabled or down, not in the std-dev</span>" if bars else "")
        + "</div>"
    )


class _Scale:
    """Score → SVG y over a plot area (the axis of :func:`score_axis`)."""

    def __init__(self, chart: PolicyChart, top: float, height: float) -> None:
        self.ymax, self.step = score_axis(chart)
        self.top, self.height = top, height

    def y(self, v: float) -> float:
        return self.top + self.height * (1.0 - min(max(v, 0.0), self.ymax) / self.ymax)

    def ticks(self) -> list[float]:
        return [i * self.step for i in range(math.floor(self.ymax / self.step + 1e-9) + 1)]


def _lines(chart: PolicyChart, sc: _Scale, left: float, right: float) -> list[str]:
    """Grid, the threshold band around the mean after, the mean, and max_host_score."""
    out = []
    for t in sc.ticks():
        y = sc.y(t)
        out.append(f'<line class="grid" x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}"/>')
        out.append(f'<text x="{left - 4}" y="{y + 3:.1f}" text-anchor="end">{t:g}</text>')
    hi, lo = sc.y(chart.mean_after + chart.threshold), sc.y(chart.mean_after - chart.threshold)
    out.append(
        f'<rect class="band" x="{left}" y="{hi:.1f}" width="{right - left}" height="{max(lo - hi, 0.5):.1f}">'
        f"<title>mean after {chart.mean_after:.4f} ± threshold {chart.threshold:.4f}</title></rect>"
    )
    ym = sc.y(chart.mean_after)
    out.append(f'<line class="mean" x1="{left}" x2="{right}" y1="{ym:.1f}" y2="{ym:.1f}"/>')
    if chart.max_host_score <= sc.ymax:
        yx = sc.y(chart.max_host_score)
        out.append(f'<line class="max" x1="{left}" x2="{right}" y1="{yx:.1f}" y2="{yx:.1f}"/>')
        out.append(
            f'<text class="maxl" x="{right}" y="{yx - 3:.1f}" text-anchor="end">'
            f"max_host_score {chart.max_host_score:g}</text>"
        )
    return out


def _chart(chart: PolicyChart) -> str:
    svg = _bars(chart) if chart.per_host else _curves(chart)
    caption = (
        f"<figcaption><b>{_e(chart.policy)}</b> · std-dev {chart.std_before:.4f} → "
        f"{chart.std_after:.4f} (threshold {chart.threshold:g}) · {len(chart.hosts)} hosts"
        + ("" if chart.per_host else ", sorted highest first, each curve on its own")
        + "</figcaption>"
    )
    stats = "" if chart.per_host else _stats(chart)
    return (
        f'<figure class="chart" data-policy="{_e(chart.policy)}" data-hosts="{len(chart.hosts)}">'
        f'{caption}<div class="scroll">{svg}</div>{stats}</figure>'
    )


def _bars(chart: PolicyChart) -> str:
    """One pair of bars per host (before grey, after blue), labelled, highest before first."""
    slot, bar, left, top, plot_h = 22, 9, 44.0, 16.0, 200.0
    labels = [h if len(h) <= 20 else h[:19] + "…" for h in chart.hosts]
    label_h = 16 + 4.8 * max(len(x) for x in labels)  # 10px text turned 55°
    n = len(chart.hosts)
    width = max(360.0, left + n * slot + 12)
    right = left + n * slot
    sc = _Scale(chart, top, plot_h)
    base = sc.y(0.0)
    out = [
        f'<svg class="bars" width="{width:.0f}" '
        f'height="{top + plot_h + label_h:.0f}" role="img" '
        f'aria-label="{_e(chart.policy)} per host before and after">'
    ]
    out += _lines(chart, sc, left, right)
    for i, (host, label, b, a, counted) in enumerate(
        zip(chart.hosts, labels, chart.before, chart.after, chart.counted, strict=True)
    ):
        x = left + i * slot + 2
        tip = f"{_e(host)}: {b:.4f} → {a:.4f}"
        yb, ya = sc.y(b), sc.y(a)
        out.append(
            f'<rect class="bb" x="{x}" y="{yb:.1f}" width="{bar}" height="{base - yb:.1f}">'
            f"<title>{tip}</title></rect>"
        )
        out.append(
            f'<rect class="ba" x="{x + bar}" y="{ya:.1f}" width="{bar}" height="{base - ya:.1f}">'
            f"<title>{tip}</title></rect>"
        )
        cls = "" if counted else ' class="off"'
        lx, ly = x + bar, base + 8
        out.append(
            f'<text{cls} x="{lx}" y="{ly:.1f}" text-anchor="end" '
            f'transform="rotate(-55 {lx} {ly:.1f})">{_e(label)}</text>'
        )
    out.append(f'<line class="axis" x1="{left}" x2="{right}" y1="{base:.1f}" y2="{base:.1f}"/>')
    out.append("</svg>")
    return "".join(out)


def _curves(chart: PolicyChart) -> str:
    """Sorted scores of a large aggregate as two curves: no per-host label, bounded size."""
    left, top, plot_w, plot_h = 44.0, 16.0, 700.0, 200.0
    n = len(chart.hosts)
    sc = _Scale(chart, top, plot_h)
    base = sc.y(0.0)
    right = left + plot_w

    def path(values: Sequence[float], closed: bool) -> str:
        v = sampled(values)
        xs = left + plot_w * np.arange(v.size + 1) / v.size
        d = [f"M{left:.1f},{base:.1f}" if closed else f"M{left:.1f},{sc.y(v[0]):.1f}"]
        for i, val in enumerate(v):
            y = sc.y(float(val))
            d.append(f"L{xs[i]:.1f},{y:.1f}L{xs[i + 1]:.1f},{y:.1f}")
        if closed:
            d.append(f"L{right:.1f},{base:.1f}Z")
        return "".join(d)

    out = [
        f'<svg class="curves" width="{right + 16:.0f}" '
        f'height="{top + plot_h + 40:.0f}" role="img" '
        f'aria-label="{_e(chart.policy)}: sorted host scores before and after">'
    ]
    out += _lines(chart, sc, left, right)
    out.append(f'<path class="cb" d="{path(chart.before, True)}"><title>before</title></path>')
    out.append(f'<path class="ca" d="{path(chart.after, False)}"><title>after</title></path>')
    out.append(f'<line class="axis" x1="{left}" x2="{right}" y1="{base:.1f}" y2="{base:.1f}"/>')
    for q in (0.0, 0.25, 0.5, 0.75, 1.0):
        rank = max(1, round(q * n))
        x = left + plot_w * (rank - 0.5) / n
        out.append(f'<text x="{x:.1f}" y="{base + 14:.1f}" text-anchor="middle">{rank}</text>')
    out.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{base + 30:.1f}" text-anchor="middle">'
        "host rank (highest score first)</text></svg>"
    )
    return "".join(out)


def _stats(chart: PolicyChart) -> str:
    """Percentiles of a large aggregate: the numbers behind the curves."""
    cols = (("max", 100), ("p95", 95), ("p75", 75), ("median", 50), ("p25", 25), ("p5", 5), ("min", 0))
    rows = []
    for label, values in (("before", chart.before), ("after", chart.after)):
        v = np.asarray(values)
        over = int((v > chart.max_host_score).sum())
        cells = "".join(f'<td class="num">{np.percentile(v, q):.3f}</td>' for _, q in cols)
        rows.append(f'<tr><th>{label}</th>{cells}<td class="num">{over}</td></tr>')
    head = "".join(f'<th class="num">{c}</th>' for c, _ in cols)
    return (
        f'<table class="stats"><thead><tr><th></th>{head}<th class="num">&gt; max_host_score</th>'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _instance(instance: str, name: str | None) -> str:
    if name:
        return f'{_e(name)}<br><span class="id">{_e(instance)}</span>'
    return f'<span class="id">{_e(instance)}</span>'


def _steps(steps: Sequence[Step], report: Report) -> str:
    if not steps:
        return "<section><h2>Steps</h2><p>The plan has no steps.</p></section>"
    waves: dict[int, list[Step]] = {}
    for s in steps:
        waves.setdefault(s.wave, []).append(s)
    body = []
    for wave in sorted(waves):
        group = waves[wave]
        body.append(
            f'<tbody class="wave" data-wave="{wave}"><tr class="wave-head"><th colspan="8">wave {wave} · '
            f"{len(group)} step(s){', may run concurrently' if len(group) > 1 else ''}</th></tr>"
        )
        for s in group:
            name = s.name or (report.vms[s.instance].name if s.instance in report.vms else None)
            body.append(
                f'<tr class="step" data-seq="{s.seq}"><td class="num">{s.seq}</td><td>{_e(s.phase)}</td>'
                f'<td class="nw">{_e(s.action)}</td><td>{_instance(s.instance, name)}</td>'
                f'<td class="nw">{_e(s.source)} → {_e(s.destination)}</td><td>{_e(s.aggregate)}</td>'
                f'<td class="num">{s.combined_after:.4f}</td><td>{_e(s.reason)}</td></tr>'
            )
        body.append("</tbody>")
    return (
        f"<section><h2>Steps ({len(steps)} in {len(waves)} wave(s))</h2>"
        '<table class="steps"><thead><tr><th class="num">seq</th><th>phase</th><th>action</th>'
        "<th>instance</th><th>source → destination</th><th>aggregate</th>"
        '<th class="num">combined after</th><th>reason</th></tr></thead>'
        + "".join(body)
        + "</table></section>"
    )


def _vm_list(title: str, cls: str, items: Iterable[Unplaced], report: Report, what: str) -> str:
    items = list(items)
    if not items:
        return ""
    rows = []
    for u in items:
        vm = report.vms.get(u.instance)
        rows.append(
            f'<tr class="vm"><td>{_instance(u.instance, vm.name if vm else None)}</td>'
            f"<td>{_e(vm.host if vm else '')}</td><td>{_e(u.aggregate or '')}</td>"
            f"<td>{_e(u.phase or '')}</td><td>{_e(u.reason)}</td></tr>"
        )
    return (
        f'<section class="{cls}"><h2>{title} ({len(items)})</h2><p>{what}</p><table><thead><tr>'
        "<th>instance</th><th>host</th><th>aggregate</th><th>phase</th><th>reason</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></section>"
    )


def _not_movable(items: Sequence[NotMovable] | None) -> str:
    if items is None:
        return ""
    if not items:
        return '<section class="not-movable"><h2>Not movable (0)</h2><p>Every VM may move.</p></section>'
    rows = "".join(
        f'<tr class="vm"><td>{_instance(m.instance, m.name)}</td>'
        f"<td>{_e(m.host)}</td><td>{_e(m.reason)}</td></tr>"
        for m in items
    )
    return (
        f'<section class="not-movable"><h2>Not movable ({len(items)})</h2>'
        "<p>VMs no step may move, and the rule that holds each.</p><table><thead><tr><th>instance</th>"
        f"<th>host</th><th>reason</th></tr></thead><tbody>{rows}</tbody></table></section>"
    )
