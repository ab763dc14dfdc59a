"""The numba kernels against plain-Python references (tests/naive.py)."""

from __future__ import annotations

import attrs
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import kronos
from kronos.core import kernels, rules
from kronos.core.arrays import build_world, value_arrays
from tests.naive import NaiveWorld, naive_greedy, pstdev

gen_args = st.fixed_dictionaries(
    {
        "hosts": st.integers(3, 12),
        "vms": st.integers(10, 160),
        "groups": st.integers(0, 10),
        "seed": st.integers(0, 10_000),
        "heterogeneous": st.booleans(),
        "skew": st.floats(0.0, 1.2),
        "broken_groups": st.floats(0.0, 0.5),
        "missing_weights": st.sampled_from([0.0, 0.1]),
    }
)


def zero_thresholds(snap: kronos.Snapshot) -> kronos.Snapshot:
    return attrs.evolve(snap, policies=tuple(attrs.evolve(p, threshold=0.0) for p in snap.policies))


@given(args=gen_args, budget=st.integers(1, 12))
def test_pruned_search_returns_the_full_scan_moves(args: dict, budget: int) -> None:  # type: ignore[type-arg]
    snap = zero_thresholds(kronos.generate(**args))
    fast = kronos.plan(snap, budget=budget)
    full = kronos.plan(snap, budget=budget, prune=False)
    assert [(s.instance, s.destination) for s in fast.steps] == [
        (s.instance, s.destination) for s in full.steps
    ]


@given(args=gen_args, budget=st.integers(1, 8))
def test_greedy_reaches_the_naive_exhaustive_greedy(args: dict, budget: int) -> None:  # type: ignore[type-arg]
    snap = zero_thresholds(kronos.generate(**{**args, "vms": min(args["vms"], 80)}))
    plan = kronos.plan(snap, budget=budget, min_improvement=1e-9, pair_moves=False)
    ref = naive_greedy(snap, "agg-01", budget, 1e-9)
    got = plan.summary.aggregates["agg-01"].combined_after
    want = ref[-1][2] if ref else plan.summary.aggregates["agg-01"].combined_before
    if len({vid for vid, _, _ in ref}) == len(ref):  # no VM moved twice: as many moves, as good
        assert len(plan.steps) == len(ref)
        assert got == pytest.approx(want, abs=1e-9)
    else:  # tidying a VM's two moves into one frees budget for more
        assert len(plan.steps) <= len(ref) and got <= want + 1e-9


@given(args=gen_args, data=st.data())
def test_move_value_is_the_recomputed_imbalance(args: dict, data: st.DataObject) -> None:  # type: ignore[type-arg]
    snap = kronos.generate(**args)
    world = build_world(snap)
    hosts = world.aggregates["agg-01"]
    P = world.pw.size
    var, tot = np.zeros(P), np.zeros(P)
    n, comb = kernels.stats(hosts, world.active, world.score, world.pw, var, tot)
    naive = NaiveWorld(snap)
    assert comb == pytest.approx(naive.imbalance("agg-01")[1], abs=1e-12)
    v = data.draw(st.integers(0, len(snap.vms) - 1))
    b = int(data.draw(st.sampled_from(list(hosts))))
    a = int(world.vm_host[v])
    if b == a or not world.active[b]:
        return
    got = kernels.move_value(v, a, b, n, var, tot, *value_arrays(world))
    vid = snap.vms[v].id
    naive.apply(vid, world.host_names[b])
    assert got == pytest.approx(naive.imbalance("agg-01")[1], abs=1e-10)


@given(args=gen_args, data=st.data())
def test_feasibility_kernel_matches_reference(args: dict, data: st.DataObject) -> None:  # type: ignore[type-arg]
    snap = kronos.generate(**{**args, "groups": max(args["groups"], 4)})
    world = build_world(snap)
    naive = NaiveWorld(snap)
    for _ in range(30):
        v = data.draw(st.integers(0, len(snap.vms) - 1))
        b = data.draw(st.integers(0, len(snap.hosts) - 1))
        a = int(world.vm_host[v])
        got = rules.feasible(v, a, b, world.arrays(), True)
        assert got == (naive.why_not(snap.vms[v].id, world.host_names[b], "agg-01") is None)


# (kind, limit, counts per host before, a, b) -> worse?
GROUP_CASES = [
    ("anti-affinity", 1, [1, 0, 0], 0, 1, False),
    ("anti-affinity", 1, [1, 1, 0], 0, 1, True),
    ("anti-affinity", 1, [2, 1, 0], 0, 1, False),  # one violation moved, not made worse
    ("anti-affinity", 2, [1, 1, 0], 0, 1, False),
    ("anti-affinity", 2, [1, 2, 0], 0, 1, True),
    ("affinity", 1, [3, 0, 0], 0, 1, True),
    ("affinity", 1, [2, 1, 0], 1, 0, False),  # repairs
    ("affinity", 1, [2, 2, 0], 0, 1, False),  # 4-2 → max 3: better
    ("affinity", 1, [2, 2, 0], 0, 2, False),  # ties: still max 2
    ("affinity", 1, [2, 1, 1], 0, 1, False),  # max stays 2
    ("affinity", 1, [3, 1, 0], 0, 1, True),
    ("soft-anti-affinity", 1, [1, 1, 0], 0, 1, True),
    ("soft-affinity", 1, [1, 1, 0], 0, 2, False),
]


@pytest.mark.parametrize(("kind", "lim", "counts", "a", "b", "worse"), GROUP_CASES)
def test_group_rule_table(kind: str, lim: int, counts: list[int], a: int, b: int, worse: bool) -> None:
    from kronos.core.arrays import GROUP_KINDS

    g_cnt = np.array([counts], dtype=np.int32)
    g_max, g_nmax = np.zeros(1, np.int32), np.zeros(1, np.int32)
    kernels.group_extremes(g_cnt, g_max, g_nmax, 0)
    got = rules.group_worse(
        0, a, b, np.array([GROUP_KINDS[kind]], np.int8), np.array([lim], np.int32), g_cnt, g_max, g_nmax
    )
    assert got == worse


def test_pstdev_reference_is_population_std() -> None:
    assert pstdev([1.0, 3.0]) == 1.0
