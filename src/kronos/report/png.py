"""The report's charts as PNG files, for e-mail and chat (matplotlib: the ``png`` extra).

The same charts as the HTML page: per aggregate and policy, each host's score
before and after (sorted curves beyond ``LABELLED_HOSTS_MAX`` hosts), the
band mean ± threshold and the ``max_host_score`` line. matplotlib is
imported only here and only when asked for, through its object API (no
pyplot: no global figure state, no GUI backend).
"""

from __future__ import annotations

import io
import os
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from kronos.errors import UnavailableError
from kronos.files import make_folder, shortened, write_atomic
from kronos.report.figures import PolicyChart, Report, sampled, score_axis

if TYPE_CHECKING:
    from matplotlib.axes import Axes

_BEFORE, _AFTER, _BAND, _MAX = "#a0aec0", "#2b6cb0", "#38a169", "#c53030"


def render_pngs(report: Report) -> dict[str, bytes]:
    """One PNG per aggregate and policy, by file name (``AGGREGATE--POLICY.png``), in report order.

    Raises ``UnavailableError`` (exit 69) without matplotlib: sysexits'
    EX_UNAVAILABLE is "a support program or file does not exist", which is
    this case; EX_CONFIG (78) would send the operator to kronos.conf, which
    is not at fault.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise UnavailableError(
            "--png needs matplotlib, an optional extra: pip install 'kronos-planner[png]'"
        ) from exc
    out: dict[str, bytes] = {}
    for agg in report.aggregates:
        for chart in agg.charts:
            if not chart.hosts:
                continue
            n = len(chart.hosts)
            width = max(7.0, 1.2 + 0.22 * n) if chart.per_host else 9.0
            fig = Figure(figsize=(width, 4.4), dpi=100, layout="constrained")
            ax = fig.add_subplot()
            (_bars if chart.per_host else _curves)(ax, chart)
            _lines(ax, chart)
            ax.set_title(
                f"{chart.aggregate} · {chart.policy}: std-dev {chart.std_before:.4f} → "
                f"{chart.std_after:.4f} (threshold {chart.threshold:g})",
                fontsize=10,
            )
            ax.set_ylabel("score")
            fig.legend(fontsize=8, loc="outside lower center", ncols=4, frameon=False)
            buf = io.BytesIO()
            with warnings.catch_warnings():  # a name in a script the font lacks is drawn as boxes,
                warnings.filterwarnings("ignore", "Glyph .* missing from font", UserWarning)
                fig.savefig(buf, format="png")  # not worth a line per glyph with matplotlib's path
            out[_file_name(out, chart.aggregate, chart.policy)] = buf.getvalue()
    return out


def _bars(ax: Axes, chart: PolicyChart) -> None:
    x = np.arange(len(chart.hosts))
    ax.bar(x - 0.2, chart.before, 0.4, color=_BEFORE, label="score before")
    ax.bar(x + 0.2, chart.after, 0.4, color=_AFTER, label="score after")
    ax.set_xticks(x, chart.hosts, rotation=55, ha="right", fontsize=8)
    for label, counted in zip(ax.get_xticklabels(), chart.counted, strict=True):
        if not counted:
            label.set_color(_BEFORE)
            label.set_fontstyle("italic")
    ax.set_xlim(-0.7, len(x) - 0.3)


def _curves(ax: Axes, chart: PolicyChart) -> None:
    n = len(chart.hosts)
    before, after = sampled(chart.before), sampled(chart.after)
    xb, xa = np.linspace(1, n, before.size), np.linspace(1, n, after.size)
    ax.fill_between(xb, before, step="mid", color=_BEFORE, alpha=0.6, label="score before (sorted)")
    ax.step(xa, after, where="mid", color=_AFTER, lw=2, label="score after (sorted)")
    ax.set_xlim(1, n)
    ax.set_xlabel(f"host rank, highest score first ({n} hosts)")


def _lines(ax: Axes, chart: PolicyChart) -> None:
    ymax, _ = score_axis(chart)
    lo, hi = chart.mean_after - chart.threshold, chart.mean_after + chart.threshold
    ax.axhspan(lo, hi, color=_BAND, alpha=0.15, zorder=0.5, label="mean after ± threshold")
    ax.axhline(chart.mean_after, color=_BAND, ls="--", lw=1)
    ax.axhline(chart.max_host_score, color=_MAX, lw=1.5, label=f"max_host_score {chart.max_host_score:g}")
    ax.set_ylim(0, ymax)
    ax.grid(axis="y", color="#edf2f7")
    ax.set_axisbelow(True)


def _file_name(taken: dict[str, bytes], aggregate: str, policy: str) -> str:
    """A portable file name from user-chosen names; a clash gets a number."""
    stem = "--".join(_portable(s) for s in (aggregate, policy))
    name, k = f"{stem}.png", 2
    while name in taken:
        name, k = f"{stem}-{k}.png", k + 1
    return name


def _portable(name: str) -> str:
    """``name`` in letters, digits and ``._-``; a long one cut, with a hash of the whole so that
    two names alike in their first hundred characters stay two files."""
    return shortened(re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "_", name)


def chart_folder(directory: str | os.PathLike[str]) -> Path:
    """``directory``, made if missing; a file there is an error. Called before the report writes
    anything, so a bad ``--png`` leaves no HTML behind it."""
    return make_folder(directory, "--png names the folder the charts go in")


def write_pngs(files: dict[str, bytes], directory: str | os.PathLike[str]) -> list[Path]:
    """Write each file atomically into ``directory`` (made if missing); return the paths."""
    where = chart_folder(directory)
    for name, data in files.items():
        write_atomic(where / name, data)
    return [where / name for name in files]
