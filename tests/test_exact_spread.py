"""Exact spread (``solver="exact"``, ``mode="spread"``): a true bound on the combined
imbalance, never a worse plan than the greedy's, valid plans."""

from __future__ import annotations

import attrs
import numpy as np
import pytest

import kronos
from kronos.core import spread
from kronos.core.arrays import build_world, imbalance
from tests.conftest import kronos_cli
from tests.naive import replay
from tests.test_exact import ortools_or_fail, reachable, tiny  # noqa: F401  (the fixture applies here too)


def spread_tiny(seed: int, policies: int = 2) -> kronos.Snapshot:
    """:func:`tests.test_exact.tiny` balanced instead of packed: every policy in spread mode
    with threshold 0, so the aggregate is always planned."""
    snap = tiny(seed)
    cpu, mem = (attrs.evolve(p, mode="spread", threshold=0.0) for p in snap.policies)
    if policies == 1:
        cpu, mem = attrs.evolve(cpu, weight=1.0), attrs.evolve(mem, enabled=False)
    return attrs.evolve(snap, policies=(cpu, mem))


def brute_combined(snap: kronos.Snapshot, agg: str, budget: int) -> float:
    """The lowest combined imbalance any plan reaches: every placement reachable by the VMs
    spread may move. Spread's own rule that no prefix raises the imbalance is left out, so
    this is at most the best plan."""
    world = build_world(snap)
    hosts = world.aggregates[agg]
    movable = np.zeros(len(world.vm_ids), dtype=np.bool_)
    movable[spread.candidates(world, hosts)] = True
    return min(imbalance(w, hosts)[1] for w in reachable(world, hosts, movable, budget))


def exact(snap: kronos.Snapshot, budget: int, time_limit: float = 2.0) -> kronos.Plan:
    return kronos.plan(snap, mode="spread", budget=budget, solver="exact", time_limit=time_limit)


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("budget", [1, 3])
def test_bound_never_above_brute_force_and_never_worse_than_greedy(seed: int, budget: int, checker) -> None:  # type: ignore[no-untyped-def]
    snap = spread_tiny(seed)
    best = brute_combined(snap, "agg", budget)
    greedy = kronos.plan(snap, mode="spread", budget=budget)
    plan = exact(snap, budget)
    summary = plan.summary.aggregates["agg"]
    opt = summary.optimality
    assert opt is not None and opt.solver == "cp-sat" and opt.objective_kind == "combined"
    assert opt.objective == pytest.approx(summary.combined_after, abs=1e-12)
    assert opt.bound <= best + 1e-9 <= opt.objective + 1e-9
    assert opt.objective <= greedy.summary.aggregates["agg"].combined_after + 1e-12
    assert len(plan.steps) <= budget
    assert replay(snap, plan.steps) == []
    checker(snap, plan)


def test_exact_finds_better_plans_than_greedy_and_proves_one_policy_close() -> None:
    """On one policy the surrogate is the objective and the bound is the model's own
    minimum (less the square's tangents and the rounding): small instances close."""
    better = 0
    gaps = []
    for seed in range(10):
        snap = spread_tiny(seed, policies=1)
        greedy = kronos.plan(snap, mode="spread", budget=3).summary.aggregates["agg"]
        opt = exact(snap, 3).summary.aggregates["agg"].optimality
        assert opt is not None
        better += opt.objective < greedy.combined_after - 1e-9
        gaps.append(opt.gap)
    assert better >= 1, "the exact search never beat the greedy"
    assert float(np.median(gaps)) < 0.05, gaps


def test_overlapping_aggregates_keep_the_greedy_plan_and_say_why(checker) -> None:  # type: ignore[no-untyped-def]
    snap = kronos.generate(hosts=8, vms=60, groups=0, seed=2)
    hosts = tuple(h.name for h in snap.hosts)
    snap = attrs.evolve(snap, aggregates=(kronos.Aggregate("a", hosts[:5]), kronos.Aggregate("b", hosts[3:])))
    greedy = kronos.plan(snap, mode="spread", budget=4)
    plan = kronos.plan(snap, mode="spread", budget=4, solver="exact", time_limit=1)
    assert [s.instance for s in plan.steps] == [s.instance for s in greedy.steps]
    notes = [n for s in plan.summary.aggregates.values() for n in s.notes]
    assert any("exact spread not run: the aggregate shares hosts with another" in n for n in notes), notes
    checker(snap, plan)


def test_a_larger_cloud_gets_a_bound_and_a_valid_plan(checker) -> None:  # type: ignore[no-untyped-def]
    snap = kronos.generate(hosts=10, vms=120, groups=10, seed=4)
    greedy = kronos.plan(snap, mode="spread", budget=8)
    plan = kronos.plan(snap, mode="spread", budget=8, solver="exact", time_limit=3)
    assert plan.options["solver"] == "exact" and plan.options["time_limit"] == 3
    for name, summary in plan.summary.aggregates.items():
        if summary.skipped:
            continue
        opt = summary.optimality
        assert opt is not None and 0 <= opt.bound <= opt.objective
        assert opt.objective <= greedy.summary.aggregates[name].combined_after + 1e-12
        assert opt.gap == pytest.approx((opt.objective - opt.bound) / opt.objective)
    assert replay(snap, plan.steps) == []
    checker(snap, plan)


def test_cli_plans_spread_exactly(tmp_path, checker) -> None:  # type: ignore[no-untyped-def]
    snap = spread_tiny(7)
    path, out = tmp_path / "s.json", tmp_path / "p.json"
    kronos.dump(snap, path)
    proc = kronos_cli(
        "plan", str(path), "--mode", "spread", "--budget", "3", "--solver", "exact", "--time-limit", "1",
        "-o", str(out),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    plan = kronos.load_plan(out)
    assert plan.options["solver"] == "exact"
    opt = plan.summary.aggregates["agg"].optimality
    assert opt is not None and opt.objective_kind == "combined" and opt.bound <= opt.objective
    checker(snap, plan)


def test_a_vm_without_load_may_still_join_a_host_over_its_cap(checker) -> None:  # type: ignore[no-untyped-def]
    """max_host_score binds only an arrival with load in that policy: h1 is under the cpu
    cap and h0 over it, yet z (no cpu load) may go to h0. The model once forbade every
    arrival on a host over a cap, so its bound (0.3999) was above this plan (0.2)."""
    from kronos.core.model import VM, Aggregate, Capacity, Flavor, Host, Policy
    from kronos.testing import DEFAULT_TAKEN_AT

    flavor = Flavor("f", 2, 2048, 10)
    snap = kronos.Snapshot(
        taken_at=DEFAULT_TAKEN_AT,
        policies=(
            Policy("cpu", mode="spread", weight=0.5, max_host_score=0.5, threshold=0.0),
            Policy("mem", mode="spread", weight=0.5, threshold=0.0),
        ),
        aggregates=(Aggregate("agg", ("h0", "h1")),),
        hosts=(
            Host("h0", Capacity(16, 32768, 400), scores={"cpu": 0.9, "mem": 0.0}),
            Host("h1", Capacity(16, 32768, 400), scores={"cpu": 0.1, "mem": 0.8}),
        ),
        vms=(
            VM(id="y", host="h0", flavor=flavor, weights={"cpu": 0.9, "mem": 0.0}, status="ACTIVE"),
            VM(id="z", host="h1", flavor=flavor, weights={"cpu": 0.0, "mem": 0.4}, status="ACTIVE"),
            VM(id="u", host="h1", flavor=flavor, weights={"cpu": 0.1, "mem": 0.4}, status="ACTIVE"),
        ),
    )
    best = brute_combined(snap, "agg", 1)
    plan = exact(snap, 1, time_limit=1)
    opt = plan.summary.aggregates["agg"].optimality
    assert opt is not None
    assert best == pytest.approx(0.2)
    assert opt.bound <= best + 1e-9 <= opt.objective + 1e-9
    assert [(s.instance, s.destination) for s in plan.steps] == [("z", "h0")]
    checker(snap, plan)


def test_too_large_to_model_keeps_the_greedy_plan_and_claims_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    from kronos.core import exact_spread

    monkeypatch.setattr(exact_spread, "MAX_PAIRS", 10)
    snap = spread_tiny(4)
    greedy = kronos.plan(snap, mode="spread", budget=3)
    plan = exact(snap, 3)
    summary = plan.summary.aggregates["agg"]
    assert summary.optimality is None
    assert any("exact spread not run: more than 10 (VM, host) pairs" in n for n in summary.notes), (
        summary.notes
    )
    assert [s.instance for s in plan.steps] == [s.instance for s in greedy.steps]
