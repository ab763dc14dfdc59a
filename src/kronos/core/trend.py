"""A robust trend over equally spaced samples: Theil–Sen, extrapolated to a horizon.

Why Theil–Sen and not least squares: the noise a balancer must not chase is
spikes (a VM busy for five minutes) and gaps (a scrape that failed). Least
squares lets one spike tilt the whole line, and its intercept follows a
spike that is happening now. Theil–Sen takes the median of the slopes of
all sample pairs and the median of the residual intercepts: up to ~29 % of
the samples can be anything without moving the line, so a 5-minute spike in
a 30-minute window barely changes the forecast, while a load that really
rises over the window moves it. ``NaN`` (a ``null`` sample) is left out.

Used by the planner (host scores from ``score_history``) and by the
Prometheus adapter (VM weights from ``vm_profile_query`` over a window),
so both forecast the same way.
"""

from __future__ import annotations

import numpy as np


def theil_sen(samples: np.ndarray, step: float, horizon: float) -> np.ndarray:
    """Each row's value ``horizon`` seconds after its last sample, clamped to [0, 1].

    ``samples`` is N×T, oldest first, ``step`` seconds apart, ``NaN`` for a
    gap. A row with fewer than two samples keeps its last known value (0 if
    it has none): there is no trend to extrapolate.
    """
    y = np.asarray(samples, dtype=np.float64)
    if y.ndim != 2:
        raise ValueError("samples must be N x T")
    n, t = y.shape
    out = np.zeros(n)
    if n == 0 or t == 0:
        return out
    known = np.isfinite(y)
    times = (np.arange(t, dtype=np.float64) - (t - 1)) * step  # the last sample at 0
    last = np.where(known.any(axis=1), y[np.arange(n), _last_known(known)], 0.0)
    enough = known.sum(axis=1) >= 2
    out[:] = last
    if t >= 2 and enough.any():
        i, j = np.triu_indices(t, 1)
        rows = y[enough]
        slopes = (rows[:, j] - rows[:, i]) / (times[j] - times[i])
        slope = _nanmedian(slopes)
        intercept = _nanmedian(rows - slope[:, None] * times[None, :])
        out[enough] = intercept + slope * horizon
    return np.clip(out, 0.0, 1.0)


def _last_known(known: np.ndarray) -> np.ndarray:
    """Index of each row's last finite sample (0 for a row with none)."""
    t = known.shape[1]
    index: np.ndarray = (t - 1 - np.argmax(known[:, ::-1], axis=1)).astype(np.int64)
    return index


def _nanmedian(x: np.ndarray) -> np.ndarray:
    """Row medians ignoring NaN; every row here has at least one finite value."""
    srt = np.sort(x, axis=1)  # NaN sorts last
    count = np.isfinite(x).sum(axis=1)
    rows = np.arange(x.shape[0])
    lo = srt[rows, (count - 1) // 2]
    hi = srt[rows, count // 2]
    median: np.ndarray = (lo + hi) / 2.0
    return median
