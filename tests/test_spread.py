"""Properties of spread plans: feasible, improving, deterministic, stable, explained."""

from __future__ import annotations

from datetime import timedelta

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import kronos
from kronos.core.model import UNASSIGNED
from tests.naive import NaiveWorld, apply_plan, replay

kinds = st.fixed_dictionaries(
    {
        "hosts": st.integers(4, 24),
        "vms": st.integers(20, 400),
        "groups": st.integers(0, 16),
        "seed": st.integers(0, 100_000),
        "aggregates": st.integers(1, 3),
        "heterogeneous": st.booleans(),
        "overlapping": st.booleans(),
        "unassigned": st.integers(0, 3),
        "missing_weights": st.sampled_from([0.0, 0.05]),
        "broken_groups": st.sampled_from([0.0, 0.3]),
        "unmovable": st.sampled_from([0.0, 0.1]),
        "disabled": st.integers(0, 2),
        "down": st.integers(0, 1),
    }
)


@given(args=kinds, budget=st.sampled_from([3, 10, "unlimited"]))
def test_every_plan_is_feasible_and_never_raises_imbalance(args: dict, budget: object, checker) -> None:  # type: ignore[no-untyped-def,type-arg]
    snap = kronos.generate(**args)
    plan = kronos.plan(snap, budget=budget)  # type: ignore[arg-type]
    assert replay(snap, plan.steps) == []
    world = NaiveWorld(snap)  # overlapping aggregates see each other's moves
    for s in plan.steps:
        _, before = world.imbalance(s.aggregate)
        world.apply(s.instance, s.destination)
        assert s.combined_after <= before + 1e-12
    assert len({s.instance for s in plan.steps}) == len(plan.steps)
    per_agg = {n: a.migrations for n, a in plan.summary.aggregates.items()}
    if isinstance(budget, int):
        assert max(per_agg.values(), default=0) <= budget
    checker(snap, plan)


@given(args=kinds)
def test_same_input_same_plan(args: dict) -> None:  # type: ignore[type-arg]
    snap = kronos.generate(**args)
    assert kronos.plan(snap, budget=8) == kronos.plan(snap, budget=8)


@given(args=kinds)
def test_planning_again_on_the_result_changes_little(args: dict) -> None:  # type: ignore[type-arg]
    snap = kronos.generate(**{**args, "down": 0, "missing_weights": 0.0})
    first = kronos.plan(snap, budget="unlimited", min_improvement=1e-4)
    again = kronos.plan(apply_plan(snap, first), budget="unlimited", min_improvement=1e-4)

    # a second pass may move VMs the first had already moved once, but it finds
    # little left to gain compared with what the first pass achieved. Aggregates
    # sharing hosts are judged together: a later aggregate's moves onto shared
    # hosts can push an earlier one back over its threshold, which the second
    # pass then repairs at the other's expense (hypothesis found such a case).
    def gain(plan: kronos.Plan, names: list[str]) -> float:
        return sum(
            plan.summary.aggregates[n].combined_before - plan.summary.aggregates[n].combined_after
            for n in names
        )

    names = list(again.summary.aggregates)
    groups = [names] if args["overlapping"] else [[n] for n in names]
    for group in groups:
        assert gain(again, group) <= 0.2 * max(0.0, gain(first, group)) + 2e-3 * len(group), group


def test_waves_never_reuse_a_host_or_group_and_respect_max_parallel(small: kronos.Snapshot) -> None:
    plan = kronos.plan(small, budget="unlimited", max_parallel=2)
    world = NaiveWorld(small)
    waves: dict[int, list[kronos.Step]] = {}
    for s in plan.steps:
        waves.setdefault(s.wave, []).append(s)
    assert len(waves) > 1 and max(len(w) for w in waves.values()) <= 2
    assert [s.wave for s in plan.steps] == sorted(s.wave for s in plan.steps)
    for steps in waves.values():
        hosts = [h for s in steps for h in (s.source, s.destination)]
        assert len(hosts) == len(set(hosts))
        groups = [world.group_of[s.instance].id for s in steps if s.instance in world.group_of]
        assert len(groups) == len(set(groups))


def test_steps_explain_themselves(small: kronos.Snapshot) -> None:
    plan = kronos.plan(small, budget=3)
    s = plan.steps[0]
    assert s.phase == "spread" and s.action == "live-migrate"
    assert f"{s.source} → {s.destination}" in s.reason
    assert "cpu-spread" in s.reason and "combined" in s.reason
    summary = plan.summary.aggregates["agg-01"]
    assert summary.combined_after < summary.combined_before
    assert summary.migrations == 3 and summary.skipped is None


def test_balanced_aggregate_is_skipped_with_reason(small: kronos.Snapshot) -> None:
    lax = attrs.evolve(small, policies=tuple(attrs.evolve(p, threshold=0.9) for p in small.policies))
    plan = kronos.plan(lax)
    assert plan.steps == ()
    assert "balanced" in (plan.summary.aggregates["agg-01"].skipped or "")


def test_min_load_and_min_diff_ratio_gates(small: kronos.Snapshot) -> None:
    plan = kronos.plan(small, min_load=0.99)
    assert plan.steps == () and "min_load" in (plan.summary.aggregates["agg-01"].skipped or "")
    plan = kronos.plan(small, min_diff_ratio=1000)
    assert plan.steps == () and "min_diff_ratio" in (plan.summary.aggregates["agg-01"].skipped or "")
    assert kronos.plan(small, min_load=0.1, min_diff_ratio=0.1).steps


def test_stop_below_threshold_option(small: kronos.Snapshot) -> None:
    mid = attrs.evolve(small, policies=tuple(attrs.evolve(p, threshold=0.12) for p in small.policies))
    stopping = kronos.plan(mid, budget="unlimited")
    going = kronos.plan(mid, budget="unlimited", stop_below_threshold=False)
    assert 0 < len(stopping.steps) < len(going.steps)
    after = stopping.summary.aggregates["agg-01"].imbalance_after
    assert all(v <= 0.12 for v in after.values())


def test_cooldowns_from_state_are_honoured(small: kronos.Snapshot) -> None:
    first = kronos.plan(small, budget=4)
    now = small.taken_at
    state = kronos.next_state(None, first, now=now)
    assert set(state.instance_cooldown_until) == {s.instance for s in first.steps}
    assert state.aggregate_cooldown_until["agg-01"] == now + timedelta(seconds=600)
    skipped = kronos.plan(small, budget=4, state=state)
    assert skipped.steps == () and "cooldown" in (skipped.summary.aggregates["agg-01"].skipped or "")
    only_vms = attrs.evolve(state, aggregate_cooldown_until={})
    second = kronos.plan(small, budget=4, state=only_vms)
    assert not {s.instance for s in second.steps} & set(state.instance_cooldown_until)
    later = now + timedelta(seconds=901)
    assert kronos.plan(small, budget=4, state=state, now=later).steps == first.steps
    assert kronos.next_state(state, kronos.plan(small, budget=0), now=later).instance_cooldown_until == {}


def test_quarantined_vm_is_not_moved(small: kronos.Snapshot) -> None:
    first = kronos.plan(small, budget=1)
    vid = first.steps[0].instance
    state = kronos.State(quarantined_until={vid: None})
    far = small.taken_at + timedelta(days=400)
    assert all(s.instance != vid for s in kronos.plan(small, budget=5, state=state, now=far).steps)


def test_aggregate_scope_and_unassigned_pool() -> None:
    snap = kronos.generate(hosts=20, vms=400, groups=4, seed=9, aggregates=2, unassigned=4)
    plan = kronos.plan(snap, aggregates=("agg-02",))
    assert set(plan.summary.aggregates) == {"agg-02"}
    assert {s.aggregate for s in plan.steps} <= {"agg-02"}
    everything = kronos.plan(snap)
    assert UNASSIGNED in everything.summary.aggregates
    with pytest.raises(kronos.errors.UsageError, match="agg-9"):
        kronos.plan(snap, aggregates=("agg-9",))


def test_unknown_option_names_the_nearest() -> None:
    snap = kronos.generate(hosts=4, vms=20, groups=0, seed=1)
    with pytest.raises(kronos.errors.UsageError, match="did you mean min_load"):
        kronos.plan(snap, min_lod=0.3)


def test_skip_fallback_vms_stay_put() -> None:
    snap = kronos.generate(hosts=10, vms=300, groups=0, seed=4, missing_weights=0.3)
    snap = attrs.evolve(
        snap, policies=tuple(attrs.evolve(p, vm_profile_fallback="skip") for p in snap.policies)
    )
    plan = kronos.plan(snap, budget="unlimited")
    missing = {v.id for v in snap.vms if len(v.weights) < 2}
    assert plan.steps and not {s.instance for s in plan.steps} & missing
