"""Time in the planner (FORMATS §5): what spread plans on, and whether an imbalance lasted.

Kronos plans on one instant unless told otherwise; then it must not chase
noise. Two questions are answered here from what the snapshot brings (the
core reads no clock and no Prometheus):

- What to plan on: the host scores a robust trend (:mod:`kronos.core.trend`)
  puts at ``forecast_horizon``, the VMs' ``weights_forecast``, or per host
  and policy the larger of those and today's (``plan_on = max``: a host on
  its way up counts as loaded now). :class:`Outlook` holds them for the
  snapshot's placement and gives a world with them for any later placement
  (:meth:`Outlook.view`), so moves planned before spread (drain, affinity
  repair) count.
- Did the imbalance last: :func:`unsustained` tests every history sample of
  the ``min_sustained`` window the way :func:`kronos.core.arrays.imbalance`
  tests the present.
"""

from __future__ import annotations

import numpy as np
from attrs import frozen

from kronos.core.arrays import World
from kronos.core.facts import host_sums
from kronos.core.model import Reason, Snapshot
from kronos.core.options import SpreadOptions
from kronos.core.trend import theil_sen


@frozen
class History:
    """Every host's ``score_history`` for the world's policies: H×P×T, NaN for a gap or
    for a host without one; T = 0 when the snapshot carries none."""

    samples: np.ndarray
    step: float

    @classmethod
    def of(cls, snapshot: Snapshot, world: World) -> History:
        given = [h.score_history or {} for h in snapshot.hosts]
        T = max((len(xs) for hist in given for xs in hist.values()), default=0)
        out = np.full((len(given), len(world.policy_names), T), np.nan)
        for i, hist in enumerate(given):
            for j, p in enumerate(world.policy_names):
                xs = hist.get(p)
                if xs:  # right-aligned: the last sample of every history is at taken_at
                    out[i, j, T - len(xs) :] = [np.nan if x is None else x for x in xs]
        return cls(out, float(snapshot.history_step_seconds or 0.0))


@frozen
class Outlook:
    """What spread plans on instead of the present, for the snapshot's placement."""

    plan_on: str
    score0: np.ndarray  # H×P planned-on host scores
    load: np.ndarray  # V×P planned-on VM loads (absolute, as World.load)
    vm_host0: np.ndarray  # V: where each VM was in the snapshot
    with_history: np.ndarray  # H b1: hosts whose scores came from a trend

    def view(self, world: World) -> World:
        """A copy of ``world`` with planned-on scores and loads, VMs where ``world`` has them."""
        out = world.copy()
        moved = np.flatnonzero(world.vm_host != self.vm_host0)
        H = len(world.host_names)
        score = self.score0.copy()
        if moved.size:
            load = self.load[moved]
            score -= host_sums(self.vm_host0[moved], load, H) / world.sc
            score += host_sums(world.vm_host[moved], load, H) / world.sc
        out.score[:] = score
        out.load[:] = self.load
        return out


def outlook(snapshot: Snapshot, world: World, history: History, opts: SpreadOptions) -> Outlook | None:
    """The planned-on scores and loads of ``opts.plan_on`` (None for ``current``)."""
    if opts.plan_on == "current":
        return None
    H, P, T = history.samples.shape
    score = world.score.copy()
    trend: np.ndarray = np.isfinite(history.samples).sum(axis=2) >= 2
    if trend.any():
        flat = history.samples.reshape(H * P, T)
        rows = np.flatnonzero(trend.reshape(-1))
        forecast = theil_sen(flat[rows], history.step, opts.forecast_horizon)
        score.reshape(-1)[rows] = forecast
    load = world.load.copy()
    for k, vm in enumerate(snapshot.vms):
        if vm.weights_forecast:
            for j, p in enumerate(world.policy_names):
                if p in vm.weights_forecast:
                    load[k, j] = vm.weights_forecast[p] * world.sc[world.vm_host[k], j]
    if opts.plan_on == "max":
        score = np.maximum(score, world.score)
        load = np.maximum(load, world.load)
    return Outlook(opts.plan_on, score, load, world.vm_host.copy(), np.asarray(trend.any(axis=1)))


def unsustained(world: World, history: History, hosts: np.ndarray, window: float) -> Reason | None:
    """Why the imbalance of ``hosts`` did not last ``window`` seconds, or None if it did.

    It lasted if at every history sample of the window some policy's imbalance
    over the aggregate's active hosts was above that policy's threshold; a
    sample at which a host's value is missing tells nothing for that policy
    and is left out; a window the history does not cover is not proof.
    """
    act = hosts[world.active[hosts]]
    samples, step = history.samples, history.step
    T = samples.shape[2]
    if T == 0 or step <= 0:
        return Reason("aggregate.not_sustained", limit=window, detail="no score_history")
    k = int(window // step)  # samples before the present that fall in the window
    if k >= T:
        return Reason("aggregate.not_sustained", limit=window, value=(T - 1) * step, detail="short")
    tested = 0
    for back in range(k + 1):  # newest first: the latest calm sample is the one reported
        at = samples[act, :, T - 1 - back]  # hosts × policies
        known = np.isfinite(at).all(axis=0)
        if not known.any():
            continue
        tested += 1
        std = at[:, known].std(axis=0)
        limit = world.threshold[known]
        if (std > limit).any():
            continue
        ratio = std / np.where(limit > 0, limit, 1.0)
        p = int(np.flatnonzero(known)[int(np.argmax(ratio))])
        return Reason(
            "aggregate.not_sustained",
            limit=window,
            value=back * step,
            policy=world.policy_names[p],
            before=float(std[int(np.argmax(ratio))]),
            need=float(world.threshold[p]),
        )
    if tested == 0:
        return Reason("aggregate.not_sustained", limit=window, detail="gaps")
    return None


def planned(world: World, outlook: Outlook | None) -> World:
    """The world spread plans on: ``world`` itself, or its view through ``outlook``."""
    return world if outlook is None else outlook.view(world)
