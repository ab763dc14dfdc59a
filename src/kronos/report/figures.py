"""What a report shows, computed once for the HTML and the PNG renderers.

Scores after the plan come from replaying its steps on the world the planner
builds (:func:`kronos.core.arrays.build_world`) with
:func:`kronos.core.replay.apply_steps`: one definition of how a VM's load
moves between hosts of different ``score_capacity`` and of the
``vm_profile_fallback``, so the bars agree with the plan's imbalance figures.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

import numpy as np
from attrs import frozen

from kronos.core.arrays import World, imbalance
from kronos.core.model import AggregateSummary, Plan, Snapshot, State
from kronos.errors import DataError

#: Up to this many hosts a chart draws one labelled pair of bars per host;
#: beyond it, the sorted scores as two curves (a 1 000-label axis reads as noise).
LABELLED_HOSTS_MAX = 60
#: most points drawn per curve of a large aggregate (sampled at evenly spaced ranks)
CURVE_POINTS = 300
BAND_LEGEND = "mean after ± threshold (the policy's bound on the std-dev of host scores)"


@frozen
class NotMovable:
    """A VM the plan's phase may not move, and why (:func:`kronos.core.explain.not_movable`)."""

    instance: str
    host: str
    reason: str
    name: str | None = None


@frozen
class PolicyChart:
    """One policy over one aggregate: each host's score before and after the plan.

    Hosts are ordered highest score before first. ``counted`` marks the hosts
    in the imbalance (enabled and up); means and standard deviations are
    over those, as the plan's ``imbalance_*`` figures are.
    """

    aggregate: str
    policy: str
    hosts: tuple[str, ...]
    before: tuple[float, ...]
    after: tuple[float, ...]
    counted: tuple[bool, ...]
    threshold: float
    max_host_score: float
    mean_before: float
    mean_after: float
    std_before: float
    std_after: float

    @property
    def per_host(self) -> bool:
        """One labelled pair of bars per host (else: sorted curves)."""
        return len(self.hosts) <= LABELLED_HOSTS_MAX


@frozen
class AggregateFigures:
    name: str
    summary: AggregateSummary
    charts: tuple[PolicyChart, ...]


@frozen
class VMInfo:
    name: str | None
    host: str


@frozen
class Report:
    plan: Plan
    taken_at: datetime
    snapshot_digest: str
    aggregates: tuple[AggregateFigures, ...]
    #: every VM of the snapshot by id: names and hosts for the lists of unplaced VMs
    vms: dict[str, VMInfo]
    #: None: not computed (the section is left out); () : none may stay put
    not_movable: tuple[NotMovable, ...] | None = None


def build_report(snapshot: Snapshot, plan: Plan, state: State | None = None) -> Report:
    """Replay ``plan`` on ``snapshot`` and gather what the report draws.

    A plan made for another snapshot is refused (``DataError``, naming both
    digests): its steps would be drawn on hosts and VMs they never saw.
    """
    from kronos.core.arrays import build_world
    from kronos.core.convert import snapshot_digest
    from kronos.core.explain import not_movable
    from kronos.core.reasons import render_all
    from kronos.core.replay import apply_steps, check_digest

    digest = snapshot_digest(snapshot)
    check_digest(digest, plan)
    world = build_world(snapshot)
    before = world.score.copy()
    measured_before = {name: imbalance(world, hosts) for name, hosts in world.aggregates.items()}
    apply_steps(world, plan.steps)  # (a step naming what the snapshot lacks is said first, by step)
    _check_claims(world, plan, measured_before)

    figures = []
    for name, summary in plan.summary.aggregates.items():
        hosts = world.aggregates[name]  # (_check_claims: every one is the snapshot's)
        charts = []
        for p, policy in enumerate(world.policy_names):
            b, a = before[hosts, p], world.score[hosts, p]
            order = np.argsort(-b, kind="stable")
            counted = world.active[hosts]
            charts.append(
                PolicyChart(
                    aggregate=name,
                    policy=policy,
                    hosts=tuple(world.host_names[i] for i in hosts[order]),
                    before=tuple(float(x) for x in b[order]),
                    after=tuple(float(x) for x in a[order]),
                    counted=tuple(bool(x) for x in counted[order]),
                    threshold=float(world.threshold[p]),
                    max_host_score=float(world.pmax[p]),
                    mean_before=_mean(b[counted]),
                    mean_after=_mean(a[counted]),
                    std_before=_std(b[counted]),
                    std_after=_std(a[counted]),
                )
            )
        figures.append(AggregateFigures(name, summary, tuple(charts)))
    return Report(
        plan=plan,
        taken_at=snapshot.taken_at,
        snapshot_digest=digest,
        aggregates=tuple(figures),
        vms={v.id: VMInfo(v.name, v.host) for v in snapshot.vms},
        not_movable=tuple(
            NotMovable(x.instance, x.host, render_all(x.why), x.name)
            for x in not_movable(snapshot, plan, state)
        ),
    )


def _check_claims(world: World, plan: Plan, before: dict[str, tuple[np.ndarray, float]]) -> None:
    """The summary's figures as the steps, replayed, give them (FORMATS §2; check.py's claims):
    a page whose table said one imbalance and its charts another was drawn for a plan edited
    by hand (``steps: []`` under the old figures). The loader counts the migrations."""
    for name, summary in plan.summary.aggregates.items():
        at = f"summary.aggregates.{name}"
        if name not in world.aggregates:
            raise DataError(f"{at}: no such aggregate in the snapshot")
        after = imbalance(world, world.aggregates[name])
        for when, (stds, combined) in (("before", before[name]), ("after", after)):
            claimed = getattr(summary, f"imbalance_{when}")
            for policy, value in claimed.items():
                if policy not in world.policy_names:
                    raise DataError(f"{at}.imbalance_{when}.{policy}: no enabled policy of the snapshot")
                _same(f"{at}.imbalance_{when}.{policy}", value, float(stds[world.policy_names.index(policy)]))
            _same(f"{at}.combined_{when}", getattr(summary, f"combined_{when}"), combined)


def _same(at: str, claimed: float, replayed: float) -> None:
    if not math.isclose(claimed, replayed, rel_tol=1e-6, abs_tol=1e-9):
        raise DataError(
            f"{at} = {claimed:.6g}: the plan's steps, replayed on the snapshot, give {replayed:.6g} "
            "(a plan edited by hand?)"
        )


def score_axis(chart: PolicyChart) -> tuple[float, float]:
    """(top of the score axis, tick step): room for every bar, the band and max_host_score.

    The top sits a little above the highest of them, so a ``max_host_score``
    line never hides in the frame.
    """
    peak = max(
        max(chart.before, default=0.0),
        max(chart.after, default=0.0),
        chart.max_host_score,
        chart.mean_after + chart.threshold,
    )
    step = 10.0 ** math.ceil(math.log10(max(peak, 1e-9)))
    for candidate in (0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0):
        if peak / candidate <= 6:
            step = candidate
            break
    return max(peak, step) * 1.06, step


def sampled(values: Sequence[float], points: int = CURVE_POINTS) -> np.ndarray:
    """Scores sorted highest first, sampled at ``points`` evenly spaced ranks when there are more."""
    v: np.ndarray = np.sort(np.asarray(values, dtype=float))[::-1]
    if v.size <= points:
        return v
    picked: np.ndarray = v[np.linspace(0, v.size - 1, points).round().astype(int)]
    return picked


def _mean(x: np.ndarray) -> float:
    return float(x.mean()) if x.size else 0.0


def _std(x: np.ndarray) -> float:
    return float(x.std()) if x.size else 0.0
