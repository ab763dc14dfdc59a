"""Planning over time (FORMATS §5): forecasts, min_sustained, min_gain, move_cost.

Each option is tested where it changes a plan: a spike shorter than
``min_sustained`` moves nothing, a rising host is relieved under ``plan_on =
max`` before it crosses the threshold, a plan below ``min_gain`` is skipped
with the gain it would have had, and ``move_cost`` never buys a move that
gains less than it costs. The trend itself is compared with a plain-Python
Theil–Sen.
"""

from __future__ import annotations

import statistics
from itertools import combinations

import attrs
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import kronos
from kronos.core.explain import explain_vm
from kronos.core.reasons import render
from kronos.core.trend import theil_sen
from kronos.errors import UsageError
from kronos.testing import with_history
from tests.naive import NaiveWorld, naive_greedy

STEP = 60.0


def reference_theil_sen(ys: list[float | None], step: float, horizon: float) -> float:
    """Median of pairwise slopes, median of intercepts; the value at ``horizon``, clamped."""
    pts = [((i - (len(ys) - 1)) * step, y) for i, y in enumerate(ys) if y is not None]
    if len(pts) < 2:
        return min(1.0, max(0.0, pts[-1][1] if pts else 0.0))
    slope = statistics.median((y2 - y1) / (t2 - t1) for (t1, y1), (t2, y2) in combinations(pts, 2))
    intercept = statistics.median(y - slope * t for t, y in pts)
    return min(1.0, max(0.0, intercept + slope * horizon))


series = st.lists(st.one_of(st.none(), st.floats(0, 1)), min_size=1, max_size=40)


@given(rows=st.lists(series, min_size=1, max_size=6), horizon=st.sampled_from([0.0, 300.0, 900.0]))
def test_trend_is_the_reference_theil_sen(rows: list[list[float | None]], horizon: float) -> None:
    T = max(map(len, rows))
    padded = [[None] * (T - len(r)) + r for r in rows]
    samples = np.array([[np.nan if y is None else y for y in r] for r in padded])
    got = theil_sen(samples, STEP, horizon)
    want = [reference_theil_sen(r, STEP, horizon) for r in padded]
    assert got == pytest.approx(want, abs=1e-9)


def test_trend_follows_a_rise_and_ignores_a_spike_now() -> None:
    rising = np.linspace(0.2, 0.5, 31)
    spike = np.full(31, 0.3)
    spike[-4:] = 0.9  # the last four minutes
    got = theil_sen(np.stack([rising, spike]), STEP, 900.0)
    assert got[0] == pytest.approx(0.5 + 0.01 * 15)  # 0.01 a minute, 15 minutes on
    assert got[1] == pytest.approx(0.3)


def _case(seed: int = 3) -> kronos.Snapshot:
    return kronos.generate(hosts=8, vms=120, groups=0, seed=seed, skew=1.0, unmovable=0.0)


def _history(
    snap: kronos.Snapshot, calm_for: int, recent: int, at: dict[str, float] | None = None
) -> kronos.Snapshot:
    """Every host at the aggregate's mean score (or ``at``) for ``calm_for`` samples, then at
    today's score for the last ``recent`` samples: an imbalance that began ``recent - 1``
    minutes ago."""
    policies = [p.name for p in snap.policies]
    mean = {p: float(np.mean([h.scores[p] for h in snap.hosts])) for p in policies}
    hosts = []
    for h in snap.hosts:
        hist = {p: (*([(at or mean)[p]] * calm_for), *([h.scores[p]] * recent)) for p in policies}
        hosts.append(attrs.evolve(h, score_history=hist))
    return attrs.evolve(snap, hosts=tuple(hosts), history_step_seconds=STEP)


def test_a_spike_shorter_than_min_sustained_moves_nothing() -> None:
    snap = _history(_case(), calm_for=26, recent=5)  # imbalanced for the last 4 minutes
    assert kronos.plan(snap).steps  # an instant planner chases it
    plan = kronos.plan(snap, min_sustained=600)
    assert not plan.steps
    skipped = plan.summary.aggregates["agg-01"].skipped
    assert skipped is not None and skipped.startswith("not sustained: 300 s ago every policy was within")
    lasted = kronos.plan(snap, min_sustained=240)  # the window the imbalance does cover
    assert [s.instance for s in lasted.steps] == [s.instance for s in kronos.plan(snap).steps]


def test_min_sustained_asks_history_enough_and_leaves_gaps_out() -> None:
    snap = _case()
    nothing = kronos.plan(snap, min_sustained=600)
    assert nothing.summary.aggregates["agg-01"].skipped == (
        "not sustained: no score_history to show the imbalance lasted min_sustained 600 s"
    )
    short = kronos.plan(_history(snap, calm_for=0, recent=5), min_sustained=600)
    assert short.summary.aggregates["agg-01"].skipped == (
        "not sustained: the score_history covers 240 s of min_sustained 600 s"
    )
    # the calm samples have a gap on one host: they tell nothing, so the imbalance counts as lasting
    gappy = _history(snap, calm_for=26, recent=5)
    first = gappy.hosts[0]
    holes = {p: (None,) * 26 + xs[26:] for p, xs in (first.score_history or {}).items()}
    gappy = attrs.evolve(gappy, hosts=(attrs.evolve(first, score_history=holes), *gappy.hosts[1:]))
    assert kronos.plan(gappy, min_sustained=600).steps


def test_explain_says_not_sustained() -> None:
    snap = _history(_case(), calm_for=26, recent=5)
    plan = kronos.plan(snap, min_sustained=600)
    vm = next(v for v in snap.vms if v.host == snap.hosts[0].name).id
    texts = [render(r) for r in explain_vm(snap, plan, vm).decision]
    assert any(t.startswith("not sustained") for t in texts), texts


def _rising(seed: int = 5) -> tuple[kronos.Snapshot, str]:
    """A balanced aggregate (every policy just within its threshold) with one host that has
    climbed steadily for 30 minutes and will be the busiest within the horizon."""
    snap = _case(seed)
    world_std = NaiveWorld(snap).imbalance("agg-01")[0]
    policies = tuple(attrs.evolve(p, threshold=world_std[p.name] * 1.05) for p in snap.policies)
    snap = attrs.evolve(snap, policies=policies)
    hot = max(snap.hosts, key=lambda h: sum(h.scores.values()))
    hosts = []
    for h in snap.hosts:
        if h.name == hot.name:
            hist = {p: tuple(max(0.0, s - 0.01 * (30 - i)) for i in range(31)) for p, s in h.scores.items()}
        else:
            hist = {p: (s,) * 31 for p, s in h.scores.items()}
        hosts.append(attrs.evolve(h, score_history=hist))
    return attrs.evolve(snap, policies=policies, hosts=tuple(hosts), history_step_seconds=STEP), hot.name


def test_a_rising_host_is_relieved_under_plan_on_max_before_it_crosses() -> None:
    snap, hot = _rising()
    now = kronos.plan(snap)
    assert not now.steps and now.summary.aggregates["agg-01"].skipped is not None  # balanced today
    ahead = kronos.plan(snap, forecast_horizon=900, plan_on="max")
    assert ahead.steps and ahead.steps[0].source == hot
    agg = ahead.summary.aggregates["agg-01"]
    assert agg.combined_forecast_before is not None and agg.combined_forecast_after is not None
    assert agg.combined_forecast_after < agg.combined_forecast_before
    assert agg.combined_before == now.summary.aggregates["agg-01"].combined_before  # figures stay current
    assert ahead.options["plan_on"] == "max"


def test_plan_on_without_a_horizon_is_refused() -> None:
    with pytest.raises(UsageError, match="plan_on = 'forecast' needs a forecast"):
        kronos.plan(_case(), plan_on="forecast")
    with pytest.raises(UsageError, match=r"min_gain = 1\.5: a relative gain"):
        kronos.plan(_case(), min_gain=1.5)
    # a dearer cost says what 1000 says, no move; 1e308 × a VM's GiB overflowed to inf
    with pytest.raises(UsageError, match=r"move_cost = 1e\+308: at most 1000 per GiB"):
        kronos.plan(_case(), move_cost=1e308)
    assert not kronos.plan(_case(), move_cost=1000).steps


def test_a_plan_below_min_gain_is_skipped_with_its_gain() -> None:
    snap = _case()
    full = kronos.plan(snap).summary.aggregates["agg-01"]
    gain = (full.combined_before - full.combined_after) / full.combined_before
    below = kronos.plan(snap, min_gain=min(1.0, gain * 1.01))
    assert not below.steps
    skipped = below.summary.aggregates["agg-01"].skipped
    assert skipped == (
        f"gain below min_gain: the plan would cut the combined imbalance {full.combined_before:.4f} → "
        f"{full.combined_after:.4f}, by {100 * gain:.3g} % < {100 * min(1.0, gain * 1.01):.3g} %"
    )
    above = kronos.plan(snap, min_gain=gain * 0.99)
    assert [s.instance for s in above.steps] == [s.instance for s in kronos.plan(snap).steps]


def _gib(snap: kronos.Snapshot, vid: str) -> float:
    vm = next(v for v in snap.vms if v.id == vid)
    return vm.flavor.memory_mb / 1024


@given(seed=st.integers(0, 500), cost=st.sampled_from([1e-4, 5e-4, 2e-3]))
def test_move_cost_buys_only_moves_worth_it(seed: int, cost: float) -> None:
    snap = kronos.generate(hosts=8, vms=100, groups=3, seed=seed)
    plan = kronos.plan(snap, budget=6, move_cost=cost)
    full = kronos.plan(snap, budget=6, move_cost=cost, prune=False)
    assert [(s.instance, s.destination) for s in plan.steps] == [
        (s.instance, s.destination) for s in full.steps
    ]
    before = plan.summary.aggregates["agg-01"].combined_before
    for s in plan.steps:
        assert before - s.combined_after > cost * _gib(snap, s.instance)
        before = s.combined_after
    assert plan.summary.aggregates["agg-01"].moved_memory_mb == sum(
        _gib(snap, s.instance) * 1024 for s in plan.steps
    )


@given(seed=st.integers(0, 500), budget=st.integers(1, 6), cost=st.sampled_from([1e-4, 1e-3]))
def test_move_cost_greedy_reaches_the_naive_greedy(seed: int, budget: int, cost: float) -> None:
    snap = kronos.generate(hosts=6, vms=60, groups=2, seed=seed)
    snap = attrs.evolve(snap, policies=tuple(attrs.evolve(p, threshold=0.0) for p in snap.policies))
    plan = kronos.plan(snap, budget=budget, min_improvement=1e-9, move_cost=cost, pair_moves=False)
    ref = naive_greedy(snap, "agg-01", budget, 1e-9, move_cost=cost)
    if len({vid for vid, _, _ in ref}) == len(ref):  # no VM moved twice: as many moves, as good
        assert len(plan.steps) == len(ref)
        want = ref[-1][2] if ref else plan.summary.aggregates["agg-01"].combined_before
        assert plan.summary.aggregates["agg-01"].combined_after == pytest.approx(want, abs=1e-9)


def test_generated_history_plans_pass_in_every_time_mode() -> None:
    snap = with_history(kronos.generate(hosts=12, vms=300, groups=6, seed=2), 31, seed=2)
    assert not kronos.validate(snap)
    for options in (
        {"forecast_horizon": 900, "plan_on": "forecast"},
        {"forecast_horizon": 900, "plan_on": "max", "min_sustained": 300, "move_cost": 1e-4},
    ):
        plan = kronos.plan(snap, **options)
        for key, value in options.items():
            assert plan.options[key] == value
