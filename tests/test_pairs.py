"""Swaps and chains in spread (kronos.core.pairs): valid, never worse than single moves, explained."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kronos
from kronos.core import kernels, pairs
from kronos.core.arrays import build_world
from kronos.testing import generate_evacuable, generate_tight, with_history
from tests.conftest import kronos_cli
from tests.naive import NaiveWorld, apply_plan, replay

tight = st.fixed_dictionaries(
    {
        "hosts": st.integers(4, 12),
        "vms": st.integers(30, 160),
        "seed": st.integers(0, 10_000),
        "groups": st.integers(0, 30),
        "room": st.sampled_from([0.5, 1.0, 2.0]),
    }
)


def combined(plan: kronos.Plan) -> float:
    return plan.summary.aggregates["agg-01"].combined_after


@settings(max_examples=40, deadline=None)
@given(args=tight, budget=st.integers(2, 16))
def test_pairs_stay_valid_and_never_do_worse_than_single_moves(args: dict, budget: int, checker) -> None:  # type: ignore[no-untyped-def,type-arg]
    snap = generate_tight(**args)
    with_pairs = kronos.plan(snap, budget=budget)
    single = kronos.plan(snap, budget=budget, pair_moves=False)
    for plan in (with_pairs, single):
        assert replay(snap, plan.steps) == []
        assert len(plan.steps) <= budget
        checker(snap, plan, "--strict-waves", "--strict-claims")
    assert combined(with_pairs) <= combined(single) + 1e-12
    # no prefix of the plan leaves the aggregate more imbalanced than it was
    world = NaiveWorld(snap)
    _, start = world.imbalance("agg-01")
    for step in with_pairs.steps:
        world.apply(step.instance, step.destination, step.numa_cells)
        assert world.imbalance("agg-01")[1] <= start + 1e-9
    # no VM is brought back to the host it left; what a pair claims it did, it did
    origin = {v.id: v.host for v in snap.vms}
    assert all(s.destination != origin[s.instance] for s in with_pairs.steps)
    for s in with_pairs.steps:
        for r in s.why or ():
            if r.rule == "spread.together" and r.after is not None:
                assert r.before is not None and r.after < r.before and r.after == s.combined_after


def together(plan: kronos.Plan) -> list[int]:
    return [i for i, s in enumerate(plan.steps) if any(r.rule == "spread.together" for r in s.why or ())]


def test_tight_clouds_get_pairs_that_beat_single_moves() -> None:
    """On tight clouds where single moves stall, pairs are made, say so, and do better."""
    better = 0
    for seed in range(4):
        snap = generate_tight(hosts=20, vms=500, seed=seed, groups=60)
        single = kronos.plan(snap, budget=20, pair_moves=False)
        plan = kronos.plan(snap, budget=20)
        assert len(single.steps) < 20  # single moves stall here
        marked = together(plan)
        assert marked and len(marked) % 2 == 0
        for i in marked[::2]:
            first, second = plan.steps[i], plan.steps[i + 1]
            (a,) = [r for r in first.why or () if r.rule == "spread.together"]
            (b,) = [r for r in second.why or () if r.rule == "spread.together"]
            assert a.detail == second.instance and b.detail == first.instance and a.count == b.count == 2
            assert b.before is not None and b.after == pytest.approx(second.combined_after)
            assert b.after < b.before
            assert first.wave < second.wave  # the second needs what the first did
        assert replay(snap, plan.steps) == []
        better += combined(plan) < combined(single) - 1e-9
    assert better >= 3


def test_a_plan_on_a_forecast_makes_no_pairs() -> None:
    """The present could refuse one step of a pair planned on a forecast and keep the other."""
    snap = with_history(generate_tight(hosts=13, vms=178, seed=7, groups=20), 31, seed=7)
    for budget in (4, "unlimited"):
        options = {"forecast_horizon": 900, "plan_on": "forecast", "budget": budget}
        on, off = kronos.plan(snap, **options), kronos.plan(snap, **options, pair_moves=False)
        assert [(s.instance, s.destination) for s in on.steps] == [
            (s.instance, s.destination) for s in off.steps
        ]
        assert not together(on)


def test_pair_moves_off_is_the_single_move_greedy() -> None:
    snap = generate_tight(hosts=12, vms=300, seed=3, groups=30)
    plan = kronos.plan(snap, budget=20, pair_moves=False)
    assert not together(plan)
    assert plan.options["pair_moves"] is False


@settings(max_examples=30, deadline=None)
@given(args=tight, data=st.data())
def test_a_candidates_value_is_the_recomputed_imbalance(args: dict, data: st.DataObject) -> None:  # type: ignore[type-arg]
    """The vectorised value of (v, u, c) equals the naive imbalance after both moves."""
    snap = generate_tight(**args)
    world = build_world(snap)
    hosts = world.aggregates["agg-01"]
    P = world.pw.size
    var, tot = np.zeros(P), np.zeros(P)
    n, _ = kernels.stats(hosts, world.active, world.score, world.pw, var, tot)
    a, b = (int(h) for h in data.draw(st.permutations(hosts.tolist()))[:2])
    vs = np.flatnonzero(world.vm_host == a).astype(np.int64)
    us = np.flatnonzero(world.vm_host == b).astype(np.int64)
    if not vs.size or not us.size:
        return
    pen = np.zeros(world.vm_host.size)
    found = pairs._candidates(world, n, var, tot, vs, a, us, b, hosts.astype(np.int64), np.inf, pen)
    for value, v, _, u, _, c in data.draw(st.lists(st.sampled_from(found), max_size=5)) if found else []:
        naive = NaiveWorld(snap)
        naive.apply(snap.vms[u].id, world.host_names[c])
        naive.apply(snap.vms[v].id, world.host_names[b])
        assert value == pytest.approx(naive.imbalance("agg-01")[1], abs=1e-9)


@settings(max_examples=25, deadline=None)
@given(args=tight)
def test_planning_again_on_the_result_finds_nothing(args: dict) -> None:  # type: ignore[type-arg]
    """An unlimited plan ends where no single move and no pair helps, whichever search won:
    planned again with its VMs resting (the engine's instance cooldowns), nothing is left."""
    snap = generate_tight(**{**args, "vms": min(args["vms"], 100)})
    first = kronos.plan(snap, budget="unlimited")
    state = kronos.next_state(None, first, now=snap.taken_at, cooldown=0)
    again = kronos.plan(apply_plan(snap, first), budget="unlimited", state=state)
    assert again.steps == (), [(s.instance, s.source, s.destination, s.reason) for s in again.steps[:3]]


def test_a_vm_back_home_before_a_pair_may_still_move_after_it() -> None:
    """Sweep snapshot 71254: a VM the greedy moved away and back (a round trip tidy drops)
    was frozen as moved at the plan's first pair, so the end was not where no move helps: a
    plan made again on the result moved it. At home it counts as never moved."""
    snap = generate_evacuable(hosts=16, vms=154, failed=2, seed=151060, groups=5, slack=0.1)
    snap = attrs.evolve(snap, policies=tuple(attrs.evolve(p, threshold=0.0) for p in snap.policies))
    first = kronos.plan(snap, budget="unlimited")
    assert together(first)  # the plan makes pairs
    state = kronos.next_state(None, first, now=snap.taken_at, cooldown=0)
    again = kronos.plan(apply_plan(snap, first), budget="unlimited", state=state)
    assert again.steps == (), [(s.instance, s.source, s.destination) for s in again.steps]


@pytest.mark.parametrize("args", [(16, 300, 7, 20, 1.0), (11, 168, 26, 14, 1.0), (10, 146, 32, 10, 2.0)])
def test_no_move_undoes_a_pair(args: tuple[int, int, int, int, float]) -> None:
    """The VMs a pair moves have not moved before, and neither they nor any VM moved before
    the pair moves after it (a single move had brought home a VM whose move made the room)."""
    hosts, vms, seed, groups, room = args
    snap = generate_tight(hosts=hosts, vms=vms, seed=seed, groups=groups, room=room)
    plan = kronos.plan(snap, budget="unlimited")
    marked = together(plan)
    assert marked
    moved = [s.instance for s in plan.steps]
    for i in marked:
        assert moved.count(plan.steps[i].instance) == 1
        assert not set(moved[:i]) & set(moved[i + 1 :])  # nothing moved before moves again after
    start = {v.id: v.host for v in snap.vms}
    assert all(s.destination != start[s.instance] for s in plan.steps)  # nothing brought back


def test_generate_tight_on_the_command_line_plans_pairs(tmp_path: Path) -> None:
    snap, plan = tmp_path / "tight.json", tmp_path / "plan.json"
    made = kronos_cli("generate", "--tight", "--hosts", "20", "--vms", "500", "--groups", "60", "--seed", "1",
                      "-o", str(snap))  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert kronos.load_snapshot(snap) == generate_tight(20, 500, 1, groups=60)
    planned = kronos_cli("plan", str(snap), "--budget", "20", "-o", str(plan))
    assert planned.returncode == 0, planned.stderr
    steps = json.loads(plan.read_text())["steps"]
    assert any(w["rule"] == "spread.together" for s in steps for w in s.get("why", []))
