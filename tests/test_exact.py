"""Exact pack (``solver="exact"``, OR-Tools CP-SAT): true bounds, never worse than greedy, valid plans.

OR-Tools comes with the ``dev`` extra, so these tests run in CI (and fail there
without it); elsewhere they skip without it, except the missing-extra tests,
which pretend it is absent anyway.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import numpy as np
import pytest

import kronos
from kronos.core import kernels, pack, rules
from kronos.core.arrays import World, build_world
from kronos.core.exact import objective_of
from kronos.errors import UnavailableError, UsageError
from tests.conftest import kronos_cli
from tests.naive import replay


@pytest.fixture(autouse=True)
def ortools_or_fail(request: pytest.FixtureRequest) -> None:
    if "missing_ortools" in request.node.name:
        return
    try:
        import ortools  # noqa: F401
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("OR-Tools (the exact extra, in dev) required under CI=true", pytrace=False)
        pytest.skip("OR-Tools not installed (pip install -e '.[exact]')")


def reachable(world: World, hosts: np.ndarray, movable: np.ndarray, budget: int | None) -> Iterator[World]:
    """Every placement reachable by valid single moves of the ``movable`` VMs on ``hosts``
    (each VM at most once, at most ``budget`` of them), each step checked with the rule
    walk as the planner checks its steps; ``world`` first."""
    vms = np.flatnonzero(np.isin(world.vm_host, hosts) & movable)
    origin = world.vm_host.copy()
    seen = {tuple(world.vm_host.tolist())}
    frontier: list[World] = [world]
    yield world
    while frontier:
        nxt = []
        for w in frontier:
            moved = int((w.vm_host[vms] != origin[vms]).sum())
            if budget is not None and moved >= budget:
                continue
            for v in vms:
                if w.vm_host[v] != origin[v]:
                    continue
                for b in hosts:
                    if not rules.feasible(int(v), int(w.vm_host[v]), int(b), w.arrays(), True):
                        continue
                    new = w.copy()
                    kernels.apply_move(int(v), int(b), new.arrays())
                    key = tuple(new.vm_host.tolist())
                    if key in seen:
                        continue
                    seen.add(key)
                    yield new
                    nxt.append(new)
        frontier = nxt


def brute_optimum(snap: kronos.Snapshot, agg: str, budget: int | None, kind: str = "hosts") -> float:
    """The best value any plan reaches: every placement :func:`reachable` by the VMs pack
    may move."""
    world = build_world(snap)
    hosts = world.aggregates[agg]
    worlds = reachable(world, hosts, pack.movable_for_emptying(world), budget)
    return min(objective_of(w, hosts, kind) for w in worlds)


def exact(snap: kronos.Snapshot, **kw: object) -> kronos.Plan:
    return kronos.plan(snap, mode="pack", solver="exact", time_limit=kw.pop("time_limit", 2.0), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("budget", [None, 2])
def test_bound_never_above_brute_force(seed: int, budget: int | None, checker) -> None:  # type: ignore[no-untyped-def]
    snap = kronos.generate(
        hosts=3,
        vms=6,
        groups=2,
        seed=seed,
        mode="pack",
        fill=0.35,
        unmovable=0.1,
        heterogeneous=seed % 2 == 1,
    )
    agg = snap.aggregates[0].name
    best = brute_optimum(snap, agg, budget)
    plan = exact(snap, budget="unlimited" if budget is None else budget)
    opt = plan.summary.aggregates[agg].optimality
    assert opt is not None and opt.solver == "cp-sat" and opt.objective_kind == "hosts"
    assert opt.bound <= best + 1e-9 <= opt.objective + 1e-9
    if opt.status == "optimal":
        assert opt.objective == opt.bound == best
    assert replay(snap, plan.steps) == []
    checker(snap, plan)


def tiny(seed: int) -> kronos.Snapshot:
    """4 hosts, 6 VMs placed at random where they fit, an anti-affinity group (maybe with
    max_server_per_host 2), sometimes an affinity pair, a score cap, prices: small enough
    to try every plan, tight enough that the best needs thought."""
    from kronos.core.model import VM, Aggregate, Capacity, Flavor, Host, Policy, ServerGroup
    from kronos.testing import DEFAULT_TAKEN_AT

    rng = np.random.default_rng(seed)
    cap = np.array([16.0, 32768.0, 400.0])
    hosts = [f"h{i}" for i in range(4)]
    used = {h: np.zeros(3) for h in hosts}
    on: dict[str, list[str]] = {h: [] for h in hosts}
    vms = []
    for i in range(6):
        size = np.array([rng.integers(2, 9), 1024.0 * rng.integers(2, 13), 10.0 * rng.integers(1, 12)])
        fits = [h for h in hosts if (used[h] + size <= cap).all()]
        h = fits[int(rng.integers(len(fits)))]
        used[h] += size
        on[h].append(f"vm{i}")
        w = {"cpu": round(float(size[0] / cap[0]) * 0.9, 6), "mem": round(float(size[1] / cap[1]) * 0.9, 6)}
        vms.append(VM(id=f"vm{i}", host=h, flavor=Flavor(f"f{i}", *size), weights=w, status="ACTIVE"))
    score = {
        h: {p: round(sum(v.weights[p] for v in vms if v.host == h), 6) for p in ("cpu", "mem")} for h in hosts
    }
    groups = []
    spread: list[str] = []
    for h in hosts:  # an anti-affinity group that holds now: one member per host
        if on[h] and len(spread) < 3:
            spread.append(on[h][0])
    lim = int(rng.integers(1, 3))
    groups.append(ServerGroup("aa", "anti-affinity", tuple(spread), rules={"max_server_per_host": lim}))
    pair = [h for h in hosts if len(on[h]) >= 3]
    if seed % 3 == 0 and pair:
        groups.append(ServerGroup("af", "affinity", tuple(on[pair[0]][1:3])))
    return kronos.Snapshot(
        taken_at=DEFAULT_TAKEN_AT,
        policies=(
            Policy("cpu", mode="pack", weight=0.5, max_host_score=0.8 if seed % 2 else 1.0),
            Policy("mem", mode="pack", weight=0.5),
        ),
        aggregates=(Aggregate("agg", tuple(hosts)),),
        hosts=tuple(
            Host(h, Capacity(*cap), scores=score[h], cost_per_hour=float(1 + i % 3))
            for i, h in enumerate(hosts)
        ),
        vms=tuple(vms),
        server_groups=tuple(groups),
    )


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("budget", [None, 1, 3])
def test_bound_never_above_brute_force_tiny(seed: int, budget: int | None, checker) -> None:  # type: ignore[no-untyped-def]
    snap = tiny(seed)
    best = brute_optimum(snap, "agg", budget)
    greedy = kronos.plan(snap, mode="pack", budget="unlimited" if budget is None else budget)
    plan = exact(snap, budget="unlimited" if budget is None else budget)
    opt = plan.summary.aggregates["agg"].optimality
    assert opt is not None
    assert opt.bound <= best + 1e-9 <= opt.objective + 1e-9
    assert opt.objective <= objective_hosts(greedy, "agg")
    assert opt.status != "optimal" or opt.objective == best
    assert replay(snap, plan.steps) == []
    checker(snap, plan)


@pytest.mark.parametrize("seed", range(6))
def test_cost_bound_never_above_brute_force_tiny(seed: int, checker) -> None:  # type: ignore[no-untyped-def]
    snap = tiny(seed)
    best = brute_optimum(snap, "agg", None, "cost")
    plan = exact(snap, budget="unlimited", objective_kind="cost")
    opt = plan.summary.aggregates["agg"].optimality
    assert opt is not None and opt.objective_kind == "cost"
    assert opt.bound <= best + 1e-6 and best <= opt.objective + 1e-6
    checker(snap, plan)


@pytest.mark.parametrize("seed", range(4))
def test_cost_bound_never_above_brute_force(seed: int, checker) -> None:  # type: ignore[no-untyped-def]
    snap = kronos.generate(hosts=3, vms=6, groups=1, seed=seed, mode="pack", fill=0.3, heterogeneous=True)
    agg = snap.aggregates[0].name
    best = brute_optimum(snap, agg, None, "cost")
    plan = exact(snap, budget="unlimited", objective_kind="cost")
    opt = plan.summary.aggregates[agg].optimality
    assert opt is not None and opt.objective_kind == "cost"
    assert opt.bound <= best + 1e-6 and best <= opt.objective + 1e-6
    checker(snap, plan)


@pytest.mark.parametrize(("k", "seed"), [(3, 0), (4, 1), (6, 2), (10, 3)])
def test_bound_never_above_known_optimum_and_never_worse_than_greedy(k: int, seed: int, checker) -> None:  # type: ignore[no-untyped-def]
    snap = kronos.generate_packable(k, seed)
    greedy = kronos.plan(snap, budget="unlimited")
    plan = exact(snap, budget="unlimited", time_limit=1.0)
    g = greedy.summary.aggregates["agg-pack"]
    s = plan.summary.aggregates["agg-pack"]
    opt = s.optimality
    assert opt is not None
    assert opt.bound <= k <= opt.objective <= (g.hosts_used_after or 0)
    assert s.hosts_used_after == opt.objective
    assert opt.status != "optimal" or opt.objective == k
    assert plan.options["solver"] == "exact" and plan.options["time_limit"] == 1.0
    assert replay(snap, plan.steps) == []
    checker(snap, plan)


def test_budget_and_groups_hold(checker) -> None:  # type: ignore[no-untyped-def]
    """A cloud with server groups and a tight budget: the plan keeps both; exact never loses."""
    snap = kronos.generate(hosts=10, vms=120, groups=10, seed=7, mode="pack", fill=0.3)
    greedy = kronos.plan(snap, budget=15)
    plan = exact(snap, budget=15, time_limit=1.0)
    for name, s in plan.summary.aggregates.items():
        assert s.migrations <= 15
        opt = s.optimality
        assert opt is not None and opt.bound <= opt.objective
        assert opt.objective <= objective_hosts(greedy, name)
    assert replay(snap, plan.steps) == []
    checker(snap, plan)


def objective_hosts(plan: kronos.Plan, agg: str) -> float:
    s = plan.summary.aggregates[agg]
    assert s.hosts_used_after is not None
    return float(s.hosts_used_after)


def test_numa_and_traits_plans_stay_valid(checker) -> None:  # type: ignore[no-untyped-def]
    snap = kronos.generate(
        hosts=8, vms=60, groups=4, seed=11, mode="pack", fill=0.3, pinned=0.2, numa=2, traits=0.3
    )
    plan = exact(snap, budget="unlimited", time_limit=1.0, require_cpu_compatibility=True)
    assert replay(snap, plan.steps) == []
    checker(snap, plan, "--require-cpu-compatibility")


def test_missing_ortools_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ortools.sat.python", None)
    snap = kronos.generate_packable(3, 0)
    with pytest.raises(UnavailableError, match=r"solver='exact'.*pip install 'kronos-planner\[exact\]'"):
        exact(snap)
    # the greedy needs nothing of it
    assert kronos.plan(snap, mode="pack").steps


def test_missing_ortools_cli_exit_69(tmp_path) -> None:  # type: ignore[no-untyped-def]
    snap = tmp_path / "s.json"
    kronos.dump(kronos.generate_packable(3, 0), snap)
    code = "import sys; sys.modules['ortools.sat.python'] = None; from kronos.cli import main; main()"
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-c", code, "plan", str(snap), "--mode", "pack", "--solver", "exact"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 69, proc.stderr
    assert "--solver exact" in proc.stderr and "kronos-planner[exact]" in proc.stderr


def test_cli_solver_flags(tmp_path) -> None:  # type: ignore[no-untyped-def]
    snap = tmp_path / "s.json"
    out = tmp_path / "p.json"
    kronos.dump(kronos.generate_packable(3, 0), snap)
    proc = kronos_cli(
        "plan", str(snap), "--mode", "pack", "--budget", "unlimited", "--solver", "exact",
        "--time-limit", "1", "-o", str(out),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    plan = kronos.load_plan(out)
    assert plan.options["solver"] == "exact"
    opt = plan.summary.aggregates["agg-pack"].optimality
    assert opt is not None and opt.bound <= 3 <= opt.objective


def test_exact_needs_a_positive_time_limit() -> None:
    snap = kronos.generate(hosts=4, vms=20, groups=0, seed=1)
    with pytest.raises(UsageError, match="time_limit"):
        kronos.plan(snap, mode="pack", solver="exact", time_limit=0)


def chain_snapshot() -> kronos.Snapshot:
    """h0 holds a, h1 holds b (10 of 16 vCPUs each), h2 is empty."""
    from kronos.core.model import VM, Aggregate, Capacity, Flavor, Host, Policy
    from kronos.testing import DEFAULT_TAKEN_AT

    cap = Capacity(16.0, 65536.0, 1000.0)
    vm = [
        VM(id=n, host=h, flavor=Flavor("big", 10, 4096, 10), weights={"cpu": 0.5})
        for n, h in (("a", "h0"), ("b", "h1"))
    ]
    hosts = tuple(Host(h, cap, scores={"cpu": 0.5 if h != "h2" else 0.0}) for h in ("h0", "h1", "h2"))
    return kronos.Snapshot(
        taken_at=DEFAULT_TAKEN_AT,
        policies=(Policy("cpu", mode="pack"),),
        aggregates=(Aggregate("agg", ("h0", "h1", "h2")),),
        hosts=hosts,
        vms=tuple(vm),
    )


def test_sequence_orders_a_chain_and_drops_a_swap() -> None:
    from kronos.core.exact import sequence

    world = build_world(chain_snapshot())
    hosts = world.aggregates["agg"]
    vms = np.array([0, 1])
    # a -> h1 needs b gone first: taken in the order that works
    _, moves, dropped = sequence(world, "agg", hosts, vms, np.array([1, 2]))
    assert [(m.vm, m.destination) for m in moves] == [(1, 2), (0, 1)] and dropped == []
    assert [w.rule for m in moves for w in m.why] == ["pack.make_room", "pack.empty"]  # h1 keeps a VM
    # a and b trading hosts: neither can go first; with no step to spare, both are dropped
    _, moves, dropped = sequence(world, "agg", hosts, vms, np.array([1, 0]), budget=2)
    assert moves == [] and dropped == [0, 1]
    # with one to spare, one parks on h2 (the only host with room) and moves on last
    after, moves, dropped = sequence(world, "agg", hosts, vms, np.array([1, 0]), budget=3)
    assert dropped == [] and after.vm_host[:2].tolist() == [1, 0]
    parked = moves[0].vm
    assert [(m.vm, m.destination) for m in moves] == [(parked, 2), (1 - parked, parked), (parked, 1 - parked)]
    assert [m.repeat_reason is not None for m in moves] == [False, False, True]
    assert [[w.rule for w in m.why] for m in moves[::2]] == [["pack.make_room", "pack.park"], ["pack.unpark"]]


def ring_snapshot(spare: int = 0) -> kronos.Snapshot:
    """Two hosts hold 20 vCPUs in a 10 + 10 split only if h0 and h1 trade VMs.

    h0 (10 vCPUs): A 5 + a 3; h1 (10): B 4 + b 5; h2 (8): C 3. The only
    two-host placements put {A, b} on one of h0 and h1 and {a, B, C} on
    the other (h2 holds neither set), and every first move of either
    is blocked: one VM must park on h2 and move again. ``spare``: the
    vCPUs of an empty fourth host, h3.
    """
    from kronos.core.model import VM, Aggregate, Capacity, Flavor, Host, Policy
    from kronos.testing import DEFAULT_TAKEN_AT

    vms = (("A", "h0", 5), ("a", "h0", 3), ("B", "h1", 4), ("b", "h1", 5), ("C", "h2", 3))
    caps = (("h0", 10), ("h1", 10), ("h2", 8), *((("h3", spare),) if spare else ()))
    return kronos.Snapshot(
        taken_at=DEFAULT_TAKEN_AT,
        policies=(Policy("cpu", mode="pack"),),
        aggregates=(Aggregate("agg", tuple(h for h, _ in caps)),),
        hosts=tuple(Host(h, Capacity(float(c), 65536.0, 1000.0), scores={"cpu": 0.5}) for h, c in caps),
        vms=tuple(
            VM(id=n, host=h, flavor=Flavor(f"f{c}", c, 512, 1), weights={"cpu": c / 20}) for n, h, c in vms
        ),
    )


@pytest.mark.parametrize("budget", [None, 3])
def test_exact_parks_a_vm_to_trade_hosts(budget: int | None, checker) -> None:  # type: ignore[no-untyped-def]
    snap = ring_snapshot()
    plan = exact(snap, budget="unlimited" if budget is None else budget, time_limit=5.0)
    checker(snap, plan)
    opt = plan.summary.aggregates["agg"].optimality
    assert opt is not None and opt.bound == 2
    if budget is None:
        # 2 hosts (proven) in 4 steps: one VM parks on h2, which ends empty
        assert opt.objective == 2 and opt.status == "optimal"
        assert len(plan.steps) == 4
        again = [s for s in plan.steps if s.repeat_reason]
        assert len(again) == 1 and again[0].source == "h2"
        first = next(s for s in plan.steps if s.instance == again[0].instance)
        assert first.destination == "h2" and "pack.park" in [w.rule for w in first.why]
        assert [w.rule for w in again[0].why] == ["pack.unpark"]
    else:
        # the three moves of the target fit the budget, the parking move does not
        assert opt.objective == 3 and not any(s.repeat_reason for s in plan.steps)
        notes = plan.summary.aggregates["agg"].why.notes  # type: ignore[union-attr]
        dropped = [r for r in notes if r.rule == "pack.exact_dropped"]
        assert dropped
        # the note tells what the plan did: the named hosts keep VMs, or the greedy's plan stood
        emptied = set(plan.summary.aggregates["agg"].hosts_emptied)
        for r in dropped:
            assert (r.detail == "greedy") or not emptied & set(r.hosts or ())


def test_a_parking_host_that_was_empty_is_not_emptied(checker) -> None:  # type: ignore[no-untyped-def]
    """post_drain names hosts the plan emptied, not an empty host a VM parked on for a while."""
    snap = ring_snapshot(spare=5)
    plan = exact(snap, budget="unlimited", time_limit=5.0, post_drain_action="disable")
    checker(snap, plan)
    summary = plan.summary.aggregates["agg"]
    assert any(s.destination == "h3" for s in plan.steps)  # h3 (the roomiest) took the parked VM
    assert summary.hosts_emptied == ("h2",) and set(summary.post_drain or {}) == {"h2"}


def test_ha_reserve_hosts_stay_untouched(checker) -> None:  # type: ignore[no-untyped-def]
    snap = kronos.generate(hosts=8, vms=60, groups=4, seed=3, mode="pack", fill=0.3)
    plan = exact(snap, budget="unlimited", time_limit=1.0, ha_reserve=1)
    for s in plan.summary.aggregates.values():
        assert s.why is not None
        kept = {h for r in s.why.notes if r.rule == "pack.ha_reserve" for h in r.hosts or ()}
        assert kept and not kept & {h for st in plan.steps for h in (st.source, st.destination)}
    checker(snap, plan)


def test_same_snapshot_same_plan_when_solved_within_the_limit() -> None:
    """One worker, a fixed seed: a search that ends before the limit is reproducible."""
    snap = kronos.generate_packable(4, 1)
    one, two = (exact(snap, budget="unlimited", time_limit=30.0) for _ in range(2))
    assert one.summary.aggregates["agg-pack"].optimality.status == "optimal"  # type: ignore[union-attr]
    assert [(s.instance, s.destination) for s in one.steps] == [
        (s.instance, s.destination) for s in two.steps
    ]


@pytest.mark.parametrize("budget", ["unlimited", 20])
def test_neighbourhoods_when_too_large_to_model_whole(
    budget: str | int, monkeypatch: pytest.MonkeyPatch, tmp_path, checker
) -> None:  # type: ignore[no-untyped-def]
    """Past MAX_PAIRS the search goes by neighbourhoods of the greedy's plan: on the cloud where
    the whole model empties one host more than the greedy (docs/exact.md), so do they."""
    from kronos.core import exact as exact_module

    monkeypatch.setattr(exact_module, "MAX_PAIRS", 2_000)  # the whole model: 240 x 20 pairs
    monkeypatch.setattr(exact_module, "LNS_PAIRS", 2_000)  # neighbourhoods of 8 of the 9 hosts left
    snap = kronos.generate(hosts=20, vms=240, groups=12, seed=1, mode="pack", fill=0.3, heterogeneous=True)
    greedy = kronos.plan(snap, mode="pack", budget=budget)
    with monkeypatch.context() as m:
        m.setattr(exact_module, "LNS_MISSES", 0)  # no round: the bound without any search
        unsearched = next(iter(exact(snap, budget=budget, time_limit=10.0).summary.aggregates.values()))
    plan = exact(snap, budget=budget, time_limit=10.0)
    checker(snap, plan)
    summary = next(iter(plan.summary.aggregates.values()))
    opt = summary.optimality
    assert opt is not None and opt.neighbourhoods is not None
    hoods = opt.neighbourhoods
    assert 1 <= hoods.optimal <= hoods.searched and 2 <= hoods.hosts <= 20
    assert opt.objective <= objective_hosts(greedy, next(iter(greedy.summary.aggregates)))
    # a neighbourhood's proof is no bound on the aggregate: the bound is the one without search
    assert unsearched.optimality is not None and opt.bound == unsearched.optimality.bound
    assert opt.bound <= opt.objective and opt.status == "feasible"
    if budget == "unlimited":
        assert hoods.improved >= 1 and opt.objective == 8  # the greedy keeps 9 hosts
    assert len(plan.steps) <= (240 if budget == "unlimited" else 20)
    assert any(r.rule == "pack.exact_neighbourhoods" for r in summary.why.notes)  # type: ignore[union-attr]
    kronos.dump(plan, tmp_path / "plan.json")
    assert kronos.load_plan(tmp_path / "plan.json") == plan


def test_the_dropped_moves_note_says_which_plan_stood() -> None:
    """The note named hosts that 'keep their VMs' even where the greedy's plan, kept instead,
    emptied them: with ``detail: greedy`` it says the greedy's plan stands."""
    from kronos.core.model import Reason
    from kronos.core.reasons import render

    taken = render(Reason("pack.exact_dropped", hosts=("h1", "h2")))
    stood = render(Reason("pack.exact_dropped", hosts=("h1", "h2"), detail="greedy"))
    assert taken.endswith("those hosts keep their VMs") and "h1, h2" in taken
    assert stood.endswith("the greedy's plan stands") and "keep their VMs" not in stood
