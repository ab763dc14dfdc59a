"""Histories over the window that ends at the snapshot's time (FORMATS §5), from range queries.

Why range queries of the policy's own PromQL: ``imbalance_query`` (or
``vm_profile_query``) evaluated at every step of the window means exactly
what the instant score means, and one request answers for every host (or
VM) of the cloud: the cost is one query per policy and kind, never one per
host or VM. Prometheus evaluates a range query at ``start``, ``start +
step``, ... ``end`` without aligning ``start`` to the step, so with ``start
= end - window`` the samples fall on the snapshot's grid and the last one on
its ``taken_at``.

Every sample is checked as an instant score is (missing, NaN, ±Inf, outside
[0, 1], two series for one host at one time): a bad one becomes a gap
(``None``) and is counted by kind, never repaired or interpolated. The last
sample is the instant value itself, which the snapshot's ``scores`` (or
``weights``) hold, so a point the range lost at the very end cannot break
FORMATS §5's "the last sample equals the score".

Nothing here talks to Prometheus; :mod:`kronos.adapters.scores` runs the
queries and hands the series in.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
from attrs import frozen

from kronos.core.trend import theil_sen

if TYPE_CHECKING:
    from kronos.adapters.config import EngineConfig
    from kronos.adapters.prometheus import Series

#: why a sample is a gap, in the order messages list them
KINDS = ("missing", "nan", "inf", "range", "duplicate")
_SHOWN = {
    "missing": "missing",
    "nan": "NaN",
    "inf": "±Inf",
    "range": "outside [0, 1]",
    "duplicate": "duplicated",
}


@frozen
class Window:
    """The range a cycle reads: ``samples`` points ``step`` seconds apart, the last at ``end``."""

    end: datetime
    seconds: float
    step: float

    @classmethod
    def of(cls, engine: EngineConfig, end: datetime) -> Window | None:
        """``[engine] history_window`` / ``history_step`` ending at ``end``; None when the window is 0."""
        if engine.history_window <= 0:
            return None
        return cls(end, engine.history_window, engine.history_step)

    @property
    def samples(self) -> int:
        return round(self.seconds / self.step) + 1

    @property
    def start(self) -> datetime:
        return self.end - timedelta(seconds=(self.samples - 1) * self.step)

    def __str__(self) -> str:
        return f"{self.seconds:g}s at {self.step:g}s steps"


@frozen
class History:
    """One host's (or VM's) samples on the window's grid, oldest first, and why each gap is one."""

    samples: tuple[float | None, ...]
    gaps: dict[str, int]  # kind (of KINDS) → how many samples; empty when every sample is good

    @property
    def nulls(self) -> int:
        return sum(self.gaps.values())

    @property
    def mostly_missing(self) -> bool:
        """More than half the window is gaps: too little to say how the load moved."""
        return 2 * self.nulls > len(self.samples)

    def describe(self) -> str:
        """``17 of 31 samples null (12 missing, 5 NaN)``."""
        return f"{self.nulls} of {len(self.samples)} samples null ({why(self.gaps)})"


def why(gaps: Mapping[str, int]) -> str:
    """Gap counts as words, in the order of :data:`KINDS`: ``12 missing, 5 NaN``."""
    return ", ".join(f"{gaps[k]} {_SHOWN[k]}" for k in KINDS if gaps.get(k))


def group(series: Iterable[Series], key: Callable[[dict[str, str]], str | None]) -> dict[str, list[Series]]:
    """Series by the key their labels give (a host name, a VM's UUID); keyless series are left out."""
    out: dict[str, list[Series]] = {}
    for s in series:
        k = key(s.labels)
        if k is not None:
            out.setdefault(k, []).append(s)
    return out


def align(series: Sequence[Series], window: Window, last: float | None) -> History:
    """The series of one host (or VM) on ``window``'s grid; ``last``: the instant value, if usable.

    A grid time no series has a point for is ``missing``; one that two
    series have a point for is a ``duplicate`` (which one is right cannot
    be known); a point off the grid or outside the window is ignored
    (Prometheus does not send one).
    """
    n = window.samples
    start, step = window.start.timestamp(), window.step
    values: list[float | None] = [None] * n
    kinds = ["missing"] * n
    seen = [False] * n
    for s in series:
        for t, v in s.points:
            k = round((t - start) / step)
            if not 0 <= k < n or abs(t - (start + k * step)) > 1e-3:
                continue
            if seen[k]:
                values[k], kinds[k] = None, "duplicate"
                continue
            seen[k] = True
            kinds[k] = _kind(v)
            if not kinds[k]:
                values[k] = v
    if last is not None:
        values[-1], kinds[-1] = last, ""
    return History(tuple(values), dict(Counter(k for k in kinds if k)))


def _kind(v: float) -> str:
    """What is wrong with one sample ("" for nothing), in the instant check's words."""
    if v != v:
        return "nan"
    if v in (float("inf"), float("-inf")):
        return "inf"
    return "" if 0.0 <= v <= 1.0 else "range"


def forecast(histories: Sequence[History], step: float, horizon: float) -> np.ndarray:
    """Each history's value ``horizon`` seconds after its last sample (Theil–Sen, clamped to [0, 1]).

    One definition of the trend, the planner's (:func:`kronos.core.trend.theil_sen`).
    A history that is mostly gaps keeps its last value: a trend through a
    few samples (a VM that booted minutes ago) would be its boot, not its load.
    Rows go through in blocks: the estimator holds every pair of samples of
    every row at once (465 per row at 31 samples; 100 000 VMs at once would
    take over a gigabyte).
    """
    out = np.array([h.samples[-1] if h.samples[-1] is not None else np.nan for h in histories], dtype=float)
    rows = [i for i, h in enumerate(histories) if not h.mostly_missing]
    if not rows:
        kept: np.ndarray = np.nan_to_num(out, nan=0.0)
        return kept
    t = len(histories[rows[0]].samples)
    block = max(1, (1 << 21) // max(1, t * (t - 1) // 2))  # ~16 MB of pair slopes per block
    for lo in range(0, len(rows), block):
        chosen = rows[lo : lo + block]
        matrix = np.array(
            [[np.nan if x is None else x for x in histories[i].samples] for i in chosen], dtype=float
        )
        out[chosen] = theil_sen(matrix, step, horizon)
    clamped: np.ndarray = np.clip(np.nan_to_num(out, nan=0.0), 0.0, 1.0)
    return clamped
