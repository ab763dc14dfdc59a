"""Pack planner speed and quality (pytest-benchmark; results in docs/benchmarks.md).

Quality is printed next to the time: hosts in use before → after and the
sum-of-sizes lower bound, so a faster search that packs worse shows up.
"""

from __future__ import annotations

import math

import pytest

import kronos
from kronos.core.warm import warm

CASES = [("pack-50x5000", 50), ("pack-50x5000", None), ("pack-1000x100000", 200)]


def _report(plan: kronos.Plan, label: str) -> None:
    for name, a in plan.summary.aggregates.items():
        print(
            f"\n{label} {name}: hosts {a.hosts_used_before} → {a.hosts_used_after} "
            f"(lower bound {a.hosts_lower_bound}), {a.migrations} moves"
        )


@pytest.mark.parametrize(("case", "budget"), CASES)
def test_pack(benchmark, snapshot_file, case: str, budget: int | None) -> None:  # type: ignore[no-untyped-def]
    snap = kronos.load_snapshot(snapshot_file(case))
    warm()
    cap = "unlimited" if budget is None else budget
    plan = benchmark(kronos.plan, snap, budget=cap)
    _report(plan, f"{case} budget {cap}")
    assert plan.summary.aggregates["agg-01"].hosts_emptied


def test_pack_1000x100000_unlimited(benchmark, snapshot_file) -> None:  # type: ignore[no-untyped-def]
    """Consolidating a whole 1000-host cloud in one plan (tens of thousands of moves)."""
    snap = kronos.load_snapshot(snapshot_file("pack-1000x100000"))
    warm()
    plan = benchmark.pedantic(kronos.plan, args=(snap,), kwargs={"budget": "unlimited"}, rounds=1)
    _report(plan, "pack-1000x100000 unlimited")


@pytest.mark.parametrize("k", [20, 40, 80])
def test_known_optimum(benchmark, k: int) -> None:  # type: ignore[no-untyped-def]
    snap = kronos.generate_packable(k, 7)
    warm()
    plan = benchmark.pedantic(kronos.plan, args=(snap,), kwargs={"budget": "unlimited"}, rounds=3)
    used = plan.summary.aggregates["agg-pack"].hosts_used_after
    print(f"\npackable k={k}: {len(snap.hosts)} hosts → {used} (optimum {k})")
    assert used is not None and used <= math.ceil(1.05 * k)
