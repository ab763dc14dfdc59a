"""Affinity repair: hard violations are repaired when possible, the rest explained."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

import kronos
from tests.naive import NaiveWorld, apply_plan, replay


def hard_violations(snap: kronos.Snapshot) -> int:
    w = NaiveWorld(snap)
    return sum(w.group_measure(g) for g in snap.server_groups if not g.policy.startswith("soft"))


@given(seed=st.integers(0, 10_000), soft=st.booleans(), aggregates=st.integers(1, 2))
def test_repair_fixes_hard_violations_or_says_why(seed: int, soft: bool, aggregates: int, checker) -> None:  # type: ignore[no-untyped-def]
    snap = kronos.generate(hosts=16, vms=300, groups=24, seed=seed, broken_groups=0.5, aggregates=aggregates)
    plan = kronos.plan(snap, budget="unlimited", enforce_hard_affinity=True, enforce_soft_affinity=soft)
    assert replay(snap, plan.steps) == []
    checker(snap, plan)
    phases = [s.phase for s in plan.steps]
    assert (
        phases == sorted(phases, key=lambda p: p != "affinity")
        or len(set(s.aggregate for s in plan.steps)) > 1
    )
    after = apply_plan(snap, plan)
    left = [u for a in plan.summary.aggregates.values() for u in (a.unrepaired or ())]
    hard_left = [u for u in left if not u.startswith("soft")]
    if hard_violations(after) > 0:
        assert hard_left, "a hard violation remains without an explanation"
    assert hard_violations(after) <= hard_violations(snap)


def test_repairs_share_the_budget_and_come_first() -> None:
    snap = kronos.generate(hosts=16, vms=300, groups=30, seed=3, broken_groups=0.6)
    plan = kronos.plan(snap, budget=4, enforce_hard_affinity=True)
    assert len(plan.steps) == 4
    assert plan.steps[0].phase == "affinity"
    assert "group" in plan.steps[0].reason
    off = kronos.plan(snap, budget=4)
    assert all(s.phase == "spread" for s in off.steps)


def test_repair_reason_names_the_group_and_host() -> None:
    snap = kronos.generate(hosts=16, vms=300, groups=30, seed=3, broken_groups=0.6)
    plan = kronos.plan(snap, budget="unlimited", enforce_hard_affinity=True)
    first = plan.steps[0]
    assert first.phase == "affinity"
    assert "members on" in first.reason or "spread over" in first.reason
    moved_groups = Counter(
        s.reason.split(" group ")[1].split()[0] for s in plan.steps if s.phase == "affinity"
    )
    assert moved_groups
