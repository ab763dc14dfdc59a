"""Pack (phase ``pack``): consolidate VMs so whole hosts empty and can be switched off.

Three steps per aggregate, all on the spread planner's world and kernels:

1. Relief. A host over some policy's ``max_host_score`` (load came back)
   sheds VMs to hosts with room. If no enabled host can take the excess, the
   outcome names disabled, empty hosts to re-enable (``hosts_to_enable``)
   and nothing is emptied: the aggregate is short of capacity, not long.
2. Target. :func:`kronos.core.kernels.pack_hosts` empties hosts one after
   another (most expensive, then least used, first) on a copy of the world,
   each wholly or not at all, placing every VM where it fits tightest. It
   works in target space: a VM parked on a host that is emptied later is
   placed again, yet the plan moves it once, from its host to its final one.
   Then, short of the lower bound, the same in other host orders
   (:func:`other_orders`), each on its own copy: the target that empties
   most hosts wins.
3. Steps. The emptied hosts' VMs move host by host, re-checked against every
   rule on the real world in plan order; a host whose VMs cannot all move
   stays as it is, so a plan never leaves a host half-drained for nothing.

``ha_reserve`` keeps the N emptiest enabled hosts out of all of this.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from kronos.core import kernels, rules
from kronos.core.arrays import SHUTOFF, Arrays, World, weighted
from kronos.core.model import Reason
from kronos.core.moves import AggregateOutcome, GroupOutcome, Move, cells_taken, describe_arrival
from kronos.core.options import PackOptions
from kronos.core.phases import PACK
from kronos.core.reasons import render_all

# Search limits: deterministic caps on time, counted in work, never read off a clock.
ROUNDS = 2  # passes of host-by-host emptying over the hosts still in use
#: swap searches per emptying attempt; each scans every VM, so only where
#: VMs × hosts is at most SWAP_SCALE (above, best fit alone lands within a
#: few % of the lower bound: docs/benchmarks.md)
SWAPS, SWAP_SCALE = 16, 20_000_000
REPACK_WORK = 30_000_000  # VM evaluations all MBS repacks of an aggregate may spend
NODES = 20_000  # evaluations MBS may spend per host beyond its first pass
#: repacks that fail in a row before the repacks give up; the first search's emptying
#: attempts too (the search of before: cheap, but it may stop while hosts can be emptied)
MISSES = 5
#: the other orders' searches (emptying attempts never give up on misses): the work each
#: may spend on emptying attempts (VMs and hosts looked at, as kernels.eliminate counts),
#: their swap searches per attempt and their repack work. No swaps and no repacks: they
#: take most of the time, and on 176 plans of pack snapshots (tight clouds included)
#: the other orders won as often and as much without them
ALT_TRIES, ALT_SWAPS, ALT_REPACK_WORK = 5_000_000, 0, 0
UNCAPPED = 2**62


COLD = rules.Movement(PACK, cold=True)


def movable_for_emptying(world: World) -> np.ndarray:
    """VMs pack may move: live-migratable, or SHUTOFF (cold)."""
    return rules.movable(world, COLD)


def movable_for_packing(world: World) -> np.ndarray:
    """As :func:`movable_for_emptying`, less affinity members that have company.

    Moving one member of a gathered affinity group breaks it, and plans move
    one VM per step, so such members (and their host) stay where they are.
    """
    together = np.append(np.isin(world.g_kind, (0, 2)) & (world.g_cnt.sum(axis=1) > 1), False)
    ok: np.ndarray = movable_for_emptying(world) & ~together[world.group]  # group -1: appended False
    return ok


def unit(world: World, hosts: np.ndarray) -> np.ndarray:
    """The aggregate's average host, per dimension: resources, then absolute score room."""
    cap = world.cap[hosts].mean(axis=0) if hosts.size else np.ones(world.cap.shape[1])
    room = (world.pmax * world.sc[hosts]).mean(axis=0) if hosts.size else np.ones(world.pw.size)
    norm: np.ndarray = np.maximum(np.concatenate([cap, room]), 1e-12)
    return norm


def size_key(world: World, norm: np.ndarray, vms: np.ndarray | slice = slice(None)) -> np.ndarray:
    """Each VM's size as one number: its share of the average host (``norm``), summed.

    ``vms``: only these (an evacuation sizes a hundred VMs, not the cloud's 100 000).
    """
    R = world.cap.shape[1]
    key: np.ndarray = (world.size[vms] / norm[:R]).sum(axis=1) + (world.load[vms] / norm[R:]).sum(axis=1)
    return key


def action_of(world: World, v: int) -> str:
    return "cold-migrate" if world.blocked[v] & SHUTOFF else "live-migrate"


def reserve_hosts(world: World, act: np.ndarray, count: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` emptiest enabled hosts (fewest VMs, then lowest combined score)."""
    if n <= 0 or act.size == 0:
        return np.zeros(0, dtype=np.int64)
    combined = weighted(world.score[act], world.pw)
    order = np.lexsort((act, combined, count[act]))
    return act[order[:n]]


def emptying_order(world: World, cands: np.ndarray) -> np.ndarray:
    """Dearest per unit of capacity first, then smallest, then least to move.

    ``cost_per_hour`` counts per unit of vCPU and RAM capacity (what compute
    hosts are bought for: a host twice the size may cost twice as much and be
    no worse a deal), to two significant digits so that proportional prices
    tie. Among equals, small hosts go first: a cluster packed onto its big
    hosts needs fewest. What there is to move is measured in shares of the
    average host, not of each host.
    """
    if cands.size == 0:
        return cands
    mean_cap = np.maximum(world.cap[cands].mean(axis=0), 1e-12)
    load = (world.used[cands] / mean_cap).sum(axis=1)
    size = (world.cap[cands] / mean_cap).sum(axis=1)
    compute = (world.cap[cands, :2] / mean_cap[:2]).mean(axis=1)
    dear = np.array([float(f"{c:.2g}") for c in world.cost[cands] / np.maximum(compute, 1e-12)])
    return cands[np.lexsort((cands, load, size, -dear))]


def lower_bound(world: World, act: np.ndarray, vms: np.ndarray, movable: np.ndarray) -> int:
    """Fewest hosts that could hold these VMs: sum of sizes per dimension, and pinned hosts.

    Per dimension, the smallest m such that the m largest capacities hold the
    total demand; scores count against ``max_host_score`` less each host's own
    base load. Hosts holding a VM that cannot move stay in use regardless.
    """
    on = vms[np.isin(world.vm_host[vms], act)]
    if on.size == 0:
        return 0
    pinned = np.unique(world.vm_host[on[~movable[on]]]).size
    demand = [world.size[on, r].sum() for r in range(world.cap.shape[1])]
    room = [world.cap[act, r] for r in range(world.cap.shape[1])]
    vm_part = np.zeros((world.score.shape[0], world.pw.size))
    np.add.at(vm_part, world.vm_host[on], world.load[on])
    for p in range(world.pw.size):
        base = world.score[act, p] - vm_part[act, p] / world.sc[act, p]
        demand.append(world.load[on, p].sum())
        room.append(np.maximum(world.pmax[p] - base, 0.0) * world.sc[act, p])
    bound = pinned
    for need, have in zip(demand, room, strict=True):
        cum = np.cumsum(np.sort(have)[::-1])
        m = int(np.searchsorted(cum, need * (1 - 1e-12))) + 1
        bound = max(bound, min(m, act.size))
    return bound


def other_orders(world: World, cands: np.ndarray, count: np.ndarray) -> list[np.ndarray]:
    """Host orders the search tries after :func:`emptying_order`, best target kept.

    Fewest VMs first, then least used (a budget counts VMs: most hosts for
    it; and in a full cloud, hosts with few VMs are the ones whose VMs fit
    the scattered free room); :func:`emptying_order` again, without giving
    up after a run of misses (the hosts that can be emptied may come after
    many that cannot); smallest biggest VM first.
    """
    if cands.size == 0:
        return []
    mean_cap = np.maximum(world.cap[cands].mean(axis=0), 1e-12)
    load = (world.used[cands] / mean_cap).sum(axis=1)
    share = (world.size / mean_cap).sum(axis=1)
    biggest = np.zeros(world.cap.shape[0])
    np.maximum.at(biggest, world.vm_host, share)
    return [
        cands[np.lexsort((cands, load, count[cands]))],
        emptying_order(world, cands),
        cands[np.lexsort((cands, load, biggest[cands]))],
    ]


class _Search(NamedTuple):
    emptied: np.ndarray  # hosts, in the order they were emptied
    moves: int  # VMs that end away from their host
    world: Arrays  # the target
    kept: np.ndarray  # hosts still open


def _copy(w: Arrays) -> Arrays:
    return Arrays(*(a.copy() for a in w))


class _Recorder:
    """Applies moves to the real world, one host's at a time, and can take them back."""

    def __init__(self, world: World, hosts: np.ndarray, aggregate: str) -> None:
        self.world = world
        self.hosts = hosts
        self.aggregate = aggregate
        self.w = world.arrays()
        self.var = np.zeros(world.pw.size)
        self.tot = np.zeros(world.pw.size)
        self.moves: list[Move] = []

    def move(self, v: int, b: int, why: tuple[Reason, ...], again: str | None = None) -> None:
        """``again``: the step's ``repeat_reason`` when v moved earlier in this plan."""
        world = self.world
        a = int(world.vm_host[v])
        kernels.apply_move(v, b, self.w)
        _, combined = kernels.stats(self.hosts, world.active, world.score, world.pw, self.var, self.tot)
        reason = describe_arrival(world, v, a, b, render_all(why))
        cells = cells_taken(world, v)
        act = action_of(world, v)
        self.moves.append(
            Move(
                v,
                a,
                b,
                self.aggregate,
                PACK,
                act,
                why,
                reason,
                combined,
                repeat_reason=again,
                numa_cells=cells,
            )
        )

    def undo_to(self, k: int) -> None:
        while len(self.moves) > k:
            m = self.moves.pop()
            kernels.apply_move(m.vm, m.source, self.w)
            self.world.moved[m.vm] = False


def relieve(
    rec: _Recorder, act: np.ndarray, vms: np.ndarray, open_: np.ndarray, budget: int
) -> tuple[list[int], bool]:
    """Shed load from hosts over ``max_host_score``; returns the hosts still over, and
    whether that is for want of budget rather than of room."""
    world = rec.world
    norm = unit(world, act)
    still = []
    for h in act:
        over = world.score[h] > world.pmax + rules.EPS
        while over.any() and len(rec.moves) < budget:
            on = vms[(world.vm_host[vms] == h) & movable_for_emptying(world)[vms]]
            # prefer the VM that leaves the least excess, then the lightest
            left = np.maximum(world.score[h] - world.load[on] / world.sc[h] - world.pmax, 0.0).sum(axis=1)
            chosen = None
            for v in on[np.lexsort((on, world.load[on].sum(axis=1), left))]:
                b = kernels.best_fit(int(v), int(h), act, open_, rec.w, norm)
                if b >= 0:
                    chosen = (int(v), int(b))
                    break
            if chosen is None:
                break
            why = tuple(
                Reason(
                    "pack.relieve",
                    host=world.host_names[h],
                    policy=world.policy_names[p],
                    value=float(world.score[h, p]),
                    limit=float(world.pmax[p]),
                )
                for p in np.flatnonzero(over)
            )
            rec.move(*chosen, why)
            over = world.score[h] > world.pmax + rules.EPS
        if over.any():
            still.append(int(h))
    return still, len(rec.moves) >= budget


def hosts_to_enable(world: World, hosts: np.ndarray, over: list[int], count: np.ndarray) -> list[int]:
    """Disabled, up, empty hosts whose room covers the excess of ``over``, cheapest first."""
    excess = sum(np.maximum(world.score[h] - world.pmax, 0.0) * world.sc[h] for h in over)
    idle = hosts[world.up[hosts] & ~world.active[hosts] & (count[hosts] == 0)]
    idle = idle[np.lexsort((idle, world.cost[idle]))]
    chosen: list[int] = []
    room = np.zeros(world.pw.size)
    for b in idle:
        if (room >= excess).all():
            break
        chosen.append(int(b))
        room += np.maximum(world.pmax - world.score[b], 0.0) * world.sc[b]
    return chosen


def plan_pack(world: World, group: list[str], budgets: dict[str, int], opts: PackOptions) -> GroupOutcome:
    """Pack each aggregate of ``group`` in turn (packing raises imbalance by design: no joint search).

    ``solver="exact"``: then :func:`kronos.core.exact.improve` models the aggregate with
    CP-SAT from the world as it was before the greedy, and keeps the better plan.
    """
    outcomes = {}
    for name in group:
        hosts = world.aggregates[name]
        start = world.copy() if opts.solver == "exact" else None
        out = pack_aggregate(world, name, hosts, budgets[name], opts)
        if start is not None and not (out.skipped and out.skipped.rule == "aggregate.too_few_hosts"):
            from kronos.core.exact import improve  # it imports this module (and OR-Tools, lazily)

            out = improve(start, world, name, hosts, budgets[name], opts, out)
        outcomes[name] = out
    return GroupOutcome(outcomes, tuple(m for out in outcomes.values() for m in out.moves))


def pack_aggregate(
    world: World, aggregate: str, hosts: np.ndarray, budget: int, opts: PackOptions
) -> AggregateOutcome:
    act = hosts[world.active[hosts]]
    if act.size < 2:
        return AggregateOutcome(skipped=Reason("aggregate.too_few_hosts", count=int(act.size)))
    vms = np.flatnonzero(np.isin(world.vm_host, hosts)).astype(np.int64)
    data = rules.heavier_than_host(world, hosts)
    count = np.bincount(world.vm_host, minlength=len(world.host_names))
    used_before = int((count[act] > 0).sum())
    bound = lower_bound(world, act, vms, movable_for_packing(world))
    reserve = reserve_hosts(world, act, count, opts.ha_reserve)
    notes: list[Reason] = []
    if reserve.size:
        names = tuple(world.host_names[h] for h in reserve)
        notes.append(Reason("pack.ha_reserve", count=opts.ha_reserve, hosts=names))

    open_ = np.zeros(len(world.host_names), dtype=np.bool_)
    open_[act] = True
    open_[reserve] = False
    rec = _Recorder(world, hosts, aggregate)
    over, out_of_budget = relieve(rec, act, vms, open_, budget)
    enable: list[int] = []
    over_names = tuple(world.host_names[h] for h in over)
    if over and out_of_budget:
        notes.append(Reason("pack.relief_budget", hosts=over_names))
    elif over:
        enable = hosts_to_enable(world, hosts, over, count)
        enable_names = ", ".join(world.host_names[h] for h in enable)
        notes.append(Reason("pack.over", hosts=over_names, detail=enable_names or None))
        notes.append(Reason("pack.short"))
    else:
        notes.extend(_consolidate(rec, act, vms, open_, budget, bound))
    now = np.bincount(world.vm_host, minlength=len(world.host_names))
    emptied = sorted({m.source for m in rec.moves if now[m.source] == 0})
    used_after = int((now[act] > 0).sum())
    notes.append(Reason("pack.hosts_in_use", before=used_before, after=used_after, limit=bound))
    if data is not None:
        notes.append(data)
    return AggregateOutcome(
        moves=tuple(rec.moves),
        notes=tuple(notes),
        hosts_lower_bound=bound,
        hosts_to_enable=tuple(world.host_names[h] for h in enable),
        post_drain={world.host_names[h]: opts.post_drain_action for h in emptied},
        skipped=None if rec.moves or enable else Reason("aggregate.nothing_to_empty"),
    )


def _consolidate(
    rec: _Recorder, act: np.ndarray, vms: np.ndarray, open_: np.ndarray, budget: int, bound: int
) -> list[Reason]:
    """Steps 2 and 3 of the module docstring; returns notes on what held it back."""
    world = rec.world
    left = budget - len(rec.moves)
    if left <= 0:
        return [Reason("pack.budget_used")]
    now = np.bincount(world.vm_host, minlength=len(world.host_names))
    open_ = open_ & (now > 0)
    cands = act[open_[act]]
    movable = movable_for_packing(world)
    norm = unit(world, act)
    key = size_key(world, norm)
    swaps = SWAPS if vms.size * act.size <= SWAP_SCALE else 0
    home = rec.w.vm_host[vms]
    in_use = int((now[act] > 0).sum())

    def search(order: np.ndarray, swaps: int, misses: int, tries: int, work: int) -> _Search:
        tw, kept = _copy(rec.w), open_.copy()
        done = kernels.pack_hosts(
            act, order, vms, movable, key, kept, left, ROUNDS, swaps, tries, misses, work, NODES, MISSES,
            tw, norm,
        )  # fmt: skip
        return _Search(done, int((tw.vm_host[vms] != home).sum()), tw, kept)

    # the search of before first: its plan stands unless another order empties more hosts
    # (or as many with fewer moves)
    best = search(emptying_order(world, cands), swaps, MISSES, UNCAPPED, REPACK_WORK)
    for order in other_orders(world, cands, now):
        if in_use - best.emptied.size <= bound:
            break  # at the lower bound: no order can empty more
        found = search(order, ALT_SWAPS, 0, ALT_TRIES, ALT_REPACK_WORK)
        if (found.emptied.size, -found.moves) > (best.emptied.size, -best.moves):
            best = found
    emptied, target_world, kept = best.emptied, best.world, best.kept
    target = target_world.vm_host
    for h in emptied:
        start = len(rec.moves)
        mine = vms[world.vm_host[vms] == h]
        share = (world.size[mine] / np.maximum(world.cap[h], 1e-12)).sum(axis=1)
        mine = mine[np.argsort(-share, kind="stable")]
        why = (Reason("pack.empty", host=world.host_names[h], count=int(mine.size)),)
        for v in mine:
            b = int(target[v])
            if not rules.feasible(int(v), int(h), b, rec.w, True):
                b = kernels.best_fit(int(v), int(h), act, kept, rec.w, norm)
            if b < 0 or len(rec.moves) >= budget:
                rec.undo_to(start)
                break
            rec.move(int(v), b, why)
    notes = []
    movable_here = np.bincount(world.vm_host[vms[movable[vms]]], minlength=len(world.host_names))
    fewest = min((int(now[h]) for h in cands if movable_here[h] == now[h]), default=None)
    if fewest is not None and fewest > left:
        spent = budget - left  # moves that relieved overloaded hosts first
        notes.append(Reason("pack.budget_below", limit=left, need=fewest, count=spent or None))
    return notes
