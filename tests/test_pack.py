"""Pack mode: whole hosts emptied within every rule, near the optimum, never half-drained."""

from __future__ import annotations

import math
from collections import Counter

import attrs
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import kronos
from kronos.core import rules
from kronos.core.arrays import build_world
from kronos.testing import DEFAULT_TAKEN_AT, generate_bytedance_like
from tests.naive import NaiveWorld, apply_plan, ffd_empty, ffd_hosts, replay


def used_hosts(snap: kronos.Snapshot, agg: str) -> int:
    w = NaiveWorld(snap)
    return len({w.host[v.id] for v in snap.vms if w.host[v.id] in w.aggs[agg] and w.active(w.host[v.id])})


@pytest.mark.parametrize("k", [10, 20, 40])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_known_optimum_within_five_percent(k: int, seed: int, checker) -> None:  # type: ignore[no-untyped-def]
    snap = kronos.generate_packable(k, seed)
    plan = kronos.plan(snap, budget="unlimited")
    summary = plan.summary.aggregates["agg-pack"]
    assert summary.hosts_lower_bound == k  # the VMs are cut from exactly k hosts
    after = apply_plan(snap, plan)
    assert used_hosts(after, "agg-pack") == summary.hosts_used_after <= math.ceil(1.05 * k)
    assert replay(snap, plan.steps) == []
    checker(snap, plan)


#: hosts over the optimum of generate_packable(k, seed) for seeds 0, 1, 2 before the
#: other orders of issue 19 (the same now; 120 instances, k in 10-80: +5.0 % on average)
PACKABLE_BEFORE = {10: (1, 1, 1), 20: (1, 1, 1), 40: (1, 1, 1), 80: (2, 1, 1)}


def test_known_optimum_on_average_and_never_worse_than_before() -> None:
    over = []
    for k, before in PACKABLE_BEFORE.items():
        for seed, extra in enumerate(before):
            plan = kronos.plan(kronos.generate_packable(k, seed), budget="unlimited")
            used = plan.summary.aggregates["agg-pack"].hosts_used_after
            assert used is not None and k <= used <= k + extra, (k, seed)
            over.append((used - k) / k)
    assert sum(over) / len(over) <= 0.05


@settings(max_examples=8)
@given(seed=st.integers(0, 10_000), fill=st.floats(0.15, 0.4), hetero=st.booleans())
def test_empties_at_least_as_many_hosts_as_ffd(seed: int, fill: float, hetero: bool) -> None:
    snap = kronos.generate(
        hosts=24, vms=400, groups=0, seed=seed, mode="pack", fill=fill, unmovable=0.0,
        skew=0.3, heterogeneous=hetero,
    )  # fmt: skip
    plan = kronos.plan(snap, budget="unlimited")
    after = used_hosts(apply_plan(snap, plan), "agg-01")
    assert after <= ffd_hosts(snap, "agg-01")
    assert plan.summary.aggregates["agg-01"].hosts_lower_bound <= after


def tight(seed: int, hosts: int, per_host: float, groups: int) -> kronos.Snapshot:
    """A full cloud (about 90 % of vCPUs allocated, big VMs on NUMA cells) to pack.

    No host is over ``max_host_score``, so that pack goes straight to emptying
    hosts (no relief moves first) and compares with :func:`ffd_empty`.
    """
    snap = generate_bytedance_like(seed, hosts=hosts, vms=round(hosts * per_host), groups=groups)
    return attrs.evolve(snap, policies=tuple(attrs.evolve(p, max_host_score=1.0) for p in snap.policies))


@settings(max_examples=12)
@given(
    seed=st.integers(0, 10_000),
    hosts=st.integers(20, 100),
    per_host=st.floats(7.5, 8.5),
    groups=st.sampled_from([0, 0, 4]),
    budget=st.sampled_from([10, 20, None]),
)
# found by the scan this test was written from: the search of before emptied no host
# (the first two, at every budget) or one where FFD empties two
@example(seed=2, hosts=30, per_host=8.0, groups=0, budget=None)
@example(seed=3, hosts=30, per_host=7.5, groups=0, budget=10)
@example(seed=2, hosts=100, per_host=7.5, groups=0, budget=20)
def test_tight_clouds_empty_at_least_as_many_hosts_as_naive_ffd(  # type: ignore[no-untyped-def]
    seed: int, hosts: int, per_host: float, groups: int, budget: int | None, checker
) -> None:
    """Issue 19: in a full cloud pack gave up after five failed hosts, often with nothing planned."""
    snap = tight(seed, hosts, per_host, groups)
    start = {v.id: v.host for v in snap.vms}
    naive = len({start[vid] for vid, _ in ffd_empty(snap, "agg-01", budget)})
    plan = kronos.plan(snap, mode="pack", budget="unlimited" if budget is None else budget)
    agg = plan.summary.aggregates["agg-01"]
    assert len(agg.hosts_emptied or ()) >= naive
    assert agg.migrations <= (budget or agg.migrations)
    assert replay(snap, plan.steps) == []
    checker(snap, plan)


pack_args = st.fixed_dictionaries(
    {
        "hosts": st.integers(4, 24),
        "vms": st.integers(20, 300),
        "groups": st.integers(0, 12),
        "seed": st.integers(0, 10_000),
        "aggregates": st.integers(1, 3),
        "heterogeneous": st.booleans(),
        "fill": st.floats(0.15, 0.7),
        "broken_groups": st.floats(0.0, 0.4),
        "unmovable": st.sampled_from([0.0, 0.05]),
        "down": st.integers(0, 1),
        "disabled": st.integers(0, 2),
        "overlapping": st.booleans(),
    }
)


@given(args=pack_args, budget=st.sampled_from([None, 3, 15, "unlimited"]), reserve=st.integers(0, 2))
def test_pack_plans_are_valid_and_never_half_drain(args: dict, budget, reserve: int, checker) -> None:  # type: ignore[no-untyped-def,type-arg]
    snap = kronos.generate(mode="pack", **args)
    plan = kronos.plan(snap, budget=budget, ha_reserve=reserve, post_drain_action="disable")
    assert replay(snap, plan.steps) == []
    checker(snap, plan)
    after = NaiveWorld(apply_plan(snap, plan))
    left = Counter(after.host.values())
    emptying = {s.source for s in plan.steps if s.reason.startswith("empty ")}
    assert all(left[h] == 0 for h in emptying), "a host was left half-drained"
    for name, agg in plan.summary.aggregates.items():
        mine = [h for h in agg.hosts_emptied]
        assert set(agg.post_drain or {}) <= set(mine)
        assert all(v == "disable" for v in (agg.post_drain or {}).values())
        if agg.hosts_used_after is not None:
            assert agg.hosts_lower_bound is not None and agg.hosts_lower_bound <= agg.hosts_used_after
        cap = kronos.core.planner.effective_budget(snap, budget)  # type: ignore[attr-defined]
        if cap is not None:
            assert agg.migrations <= cap, name


def test_ha_reserve_keeps_the_emptiest_hosts_untouched() -> None:
    snap = kronos.generate(hosts=16, vms=200, groups=0, seed=4, mode="pack", fill=0.3, unmovable=0.0)
    world = build_world(snap)
    count = np.bincount(world.vm_host, minlength=len(snap.hosts))
    combined = world.score @ world.pw
    emptiest = sorted(range(len(snap.hosts)), key=lambda h: (count[h], combined[h], h))[:2]
    names = {snap.hosts[h].name for h in emptiest}
    plan = kronos.plan(snap, budget="unlimited", ha_reserve=2)
    assert plan.steps
    touched = {s.source for s in plan.steps} | {s.destination for s in plan.steps}
    assert not names & touched
    free = kronos.plan(snap, budget="unlimited")
    assert names & {s.source for s in free.steps}, "without the reserve they are the first to go"


def _two_host_choice(costs: tuple[float, float]) -> kronos.Snapshot:
    """Three hosts; the first two each hold one small VM, the third has room for one of them."""
    pol = kronos.Policy(name="cpu-pack", mode="pack", weight=1.0, max_migrations_per_cycle=1)
    hosts = tuple(
        kronos.Host(
            name=f"h{i}",
            capacity=kronos.Capacity(8, 8192, 100),
            scores={"cpu-pack": 0.2 if i < 2 else 0.6},
            cost_per_hour=cost,
        )
        for i, cost in enumerate((*costs, 1.0))
    )
    small = kronos.Flavor("f", 2, 2048, 20)
    vms = (
        *(kronos.VM(id=f"vm-{i}", host=f"h{i}", flavor=small, weights={"cpu-pack": 0.15}) for i in range(2)),
        kronos.VM(id="big", host="h2", flavor=kronos.Flavor("g", 5, 5120, 60), weights={"cpu-pack": 0.5}),
    )
    return kronos.Snapshot(taken_at=DEFAULT_TAKEN_AT, policies=(pol,), hosts=hosts, vms=vms)


@pytest.mark.parametrize(("costs", "emptied"), [((1.0, 3.0), "h1"), ((3.0, 1.0), "h0")])
def test_expensive_hosts_are_emptied_first(costs: tuple[float, float], emptied: str) -> None:
    plan = kronos.plan(_two_host_choice(costs))
    assert [s.source for s in plan.steps] == [emptied]
    assert plan.summary.aggregates["_unassigned_"].hosts_emptied == (emptied,)


def _overloaded(spare_enabled: bool) -> kronos.Snapshot:
    """h0 is over max_host_score; h1 is full; h2 is a disabled (or enabled) empty host."""
    pol = kronos.Policy(name="cpu-pack", mode="pack", weight=1.0, max_host_score=0.8)
    cap = kronos.Capacity(16, 16384, 200)
    hosts = (
        kronos.Host(name="h0", capacity=cap, scores={"cpu-pack": 0.95}),
        kronos.Host(name="h1", capacity=cap, scores={"cpu-pack": 0.78}),
        kronos.Host(name="h2", capacity=cap, scores={"cpu-pack": 0.02}, enabled=spare_enabled),
    )
    vms = tuple(
        kronos.VM(id=f"a{i}", host="h0", flavor=kronos.Flavor("f", 2, 2048, 20), weights={"cpu-pack": 0.19})
        for i in range(5)
    ) + tuple(
        kronos.VM(id=f"b{i}", host="h1", flavor=kronos.Flavor("f", 2, 2048, 20), weights={"cpu-pack": 0.19})
        for i in range(4)
    )
    return kronos.Snapshot(taken_at=DEFAULT_TAKEN_AT, policies=(pol,), hosts=hosts, vms=vms)


def test_reverse_path_names_a_disabled_host_then_uses_it_once_enabled(checker) -> None:  # type: ignore[no-untyped-def]
    short = _overloaded(spare_enabled=False)
    plan = kronos.plan(short, budget="unlimited")
    assert plan.steps == ()
    assert plan.summary.hosts_to_enable == ("h2",)
    assert plan.summary.aggregates["_unassigned_"].hosts_to_enable == ("h2",)
    enabled = _overloaded(spare_enabled=True)
    again = kronos.plan(enabled, budget="unlimited")
    assert again.summary.hosts_to_enable is None
    assert again.steps and all(s.destination == "h2" and s.source == "h0" for s in again.steps)
    assert all(s.reason.startswith("relieve h0") for s in again.steps)
    assert NaiveWorld(apply_plan(enabled, again)).score["h0"]["cpu-pack"] <= 0.8 + 1e-9
    checker(enabled, again)


def test_shutoff_vms_are_cold_migrated_when_their_host_empties(checker) -> None:  # type: ignore[no-untyped-def]
    snap = kronos.generate_packable(4, 1)
    vms = tuple(attrs.evolve(v, status="SHUTOFF") if i % 3 == 0 else v for i, v in enumerate(snap.vms))
    snap = attrs.evolve(snap, vms=vms)
    plan = kronos.plan(snap, budget="unlimited")
    shutoff = {v.id for v in vms if v.status == "SHUTOFF"}
    actions = {s.instance: s.action for s in plan.steps}
    assert any(a == "cold-migrate" for a in actions.values())
    assert all((a == "cold-migrate") == (i in shutoff) for i, a in actions.items())
    assert replay(snap, plan.steps) == []
    checker(snap, plan)


@given(args=pack_args, data=st.data())
def test_target_fit_kernel_matches_reference(args: dict, data: st.DataObject) -> None:  # type: ignore[type-arg]
    """rules.fits (pack's target-space rule) against the move rules of tests/naive.py.

    With no other VM leaving, a target fit is a feasible move, except that an
    anti-affinity member may only join a host below its limit.
    """
    snap = kronos.generate(mode="pack", **{**args, "groups": max(args["groups"], 4)})
    world = build_world(snap)
    naive = NaiveWorld(snap)
    agg = "agg-01"
    for _ in range(30):
        v = data.draw(st.integers(0, len(snap.vms) - 1))
        b = data.draw(st.sampled_from(list(world.aggregates[agg])))
        a = int(world.vm_host[v])
        if b == a or a not in world.aggregates[agg]:
            continue
        vid = snap.vms[v].id
        # placing: target space judges where a VM ends, not what it leaves (source.load)
        why = naive.why_not(vid, world.host_names[int(b)], agg, placing=True)
        g = naive.group_of.get(vid)
        if why is None and g is not None and g.policy.endswith("anti-affinity"):
            lim = g.max_server_per_host if g.policy == "anti-affinity" else 1
            here = sum(1 for m in g.members if naive.host[m] == world.host_names[int(b)])
            why = None if here + 1 <= lim else g.policy
        if g is not None and not g.policy.endswith("anti-affinity") and (why is None or "affinity" in why):
            continue  # pack never asks about affinity members that have company
        assert rules.fits(v, a, int(b), -1, world.arrays()) == (why is None), why
