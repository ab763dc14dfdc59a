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
        # FORMATS §4: the checker's [resource], [trait], [numa] and [device] rules
        "pinned": st.sampled_from([0.0, 0.0, 0.2]),
        "numa": st.sampled_from([0, 0, 2]),
        "traits": st.sampled_from([0.0, 0.0, 0.3]),
        "devices": st.sampled_from([0.0, 0.0, 0.1]),
    }
)


@given(args=kinds, budget=st.sampled_from([3, 10, "unlimited"]))
def test_every_plan_is_feasible_and_never_raises_imbalance(args: dict, budget: object, checker) -> None:  # type: ignore[no-untyped-def,type-arg]
    snap = kronos.generate(**args)
    plan = kronos.plan(snap, budget=budget)  # type: ignore[arg-type]
    assert replay(snap, plan.steps) == []
    world = NaiveWorld(snap)  # overlapping aggregates see each other's moves
    start = {a: world.imbalance(a)[1] for a in world.aggs}
    for s in plan.steps:
        world.apply(s.instance, s.destination)
        # a plan stopped after any step has made no aggregate more imbalanced, those
        # sharing hosts with the planned ones included
        assert all(world.imbalance(a)[1] <= start[a] + 1e-9 for a in world.aggs), s
    # a VM moves twice only with a reason, never out and back
    seen: dict[str, str] = {}
    for s in plan.steps:
        assert (s.instance in seen) == bool(s.repeat_reason), s
        seen.setdefault(s.instance, s.source)
    origin = {v.id: v.host for v in snap.vms}
    ends = {s.instance: s.destination for s in plan.steps}
    assert all(ends[v] != origin[v] for v in ends)
    per_agg = {n: a.migrations for n, a in plan.summary.aggregates.items()}
    if isinstance(budget, int):
        assert max(per_agg.values(), default=0) <= budget
    checker(snap, plan)


@given(args=kinds)
def test_same_input_same_plan(args: dict) -> None:  # type: ignore[type-arg]
    snap = kronos.generate(**args)
    assert kronos.plan(snap, budget=8) == kronos.plan(snap, budget=8)


@given(args=kinds, min_improvement=st.sampled_from([1e-6, 1e-4]), zero=st.booleans(), pairs=st.booleans())
def test_planning_again_on_the_result_finds_nothing(
    args: dict, min_improvement: float, zero: bool, pairs: bool
) -> None:  # type: ignore[type-arg]
    """Plan, apply, plan again with the same options: nothing to do, no VM moved back.

    The result carries, as every VM's weight, the load the plan assumed it
    has (``apply_plan``): a VM without a profile is planned on its host's
    average at the snapshot, and a later snapshot that averages anew may
    differ (docs/spread.md). With pair moves the second plan runs as the
    engine runs it, with the VMs the first moved resting (``instance_cooldown``):
    a pair moves VMs that have not moved, and nothing moves them again in that
    plan, so a second plan without the cooldowns may move them on.
    """
    snap = kronos.generate(**{**args, "missing_weights": 0.0})
    if zero:
        snap = attrs.evolve(snap, policies=tuple(attrs.evolve(p, threshold=0.0) for p in snap.policies))
    options = {"budget": "unlimited", "min_improvement": min_improvement, "pair_moves": pairs}
    first = kronos.plan(snap, **options)
    after = apply_plan(snap, first)
    assert all(x >= 0.0 for h in after.hosts for x in h.scores.values())  # nothing driven below 0
    state = kronos.next_state(None, first, now=snap.taken_at, cooldown=0) if pairs else None
    again = kronos.plan(after, state=state, **options)
    assert again.steps == (), [(s.instance, s.source, s.destination, s.reason) for s in again.steps[:3]]


def test_a_down_hosts_vms_stay_for_an_evacuation() -> None:
    snap = kronos.generate(hosts=12, vms=300, groups=6, seed=11, down=2, skew=1.0)
    down = {h.name for h in snap.hosts if not h.up}
    for kw in ({}, {"mode": "pack"}, {"enforce_hard_affinity": True, "enforce_soft_affinity": True}):
        plan = kronos.plan(snap, budget="unlimited", **kw)  # type: ignore[arg-type]
        assert plan.steps and not [s for s in plan.steps if s.source in down], kw
    vm = next(v for v in snap.vms if v.host in down)
    from kronos.core.explain import explain_vm

    x = explain_vm(snap, kronos.plan(snap), vm.id)
    assert [r.rule for r in x.not_movable] == ["source.up"] and x.not_movable[0].host == vm.host


def test_a_vm_heavier_than_its_host_is_left_and_reported() -> None:
    snap = kronos.generate(hosts=6, vms=60, groups=0, seed=2, skew=1.2)
    hot = max((h for h in snap.hosts if h.scores["cpu-spread"] < 0.9), key=lambda h: h.scores["cpu-spread"])
    vm = next(v for v in snap.vms if v.host == hot.name)
    heavy = attrs.evolve(vm, weights={**vm.weights, "cpu-spread": hot.scores["cpu-spread"] + 0.05})
    snap = attrs.evolve(snap, vms=tuple(heavy if v.id == vm.id else v for v in snap.vms))
    plan = kronos.plan(snap, budget="unlimited")
    assert vm.id not in {s.instance for s in plan.steps}
    notes = plan.summary.aggregates["agg-01"].why.notes  # type: ignore[union-attr]
    (data,) = [n for n in notes if n.rule == "data.weight_over_score"]
    assert data.count == 1 and data.detail == vm.id and data.hosts == (hot.name,)
    assert all(x >= 0.0 for h in apply_plan(snap, plan).hosts for x in h.scores.values())


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
