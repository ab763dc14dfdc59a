"""Evacuate (phase ``evacuate``) and drain (phase ``drain``): empty named hosts.

Both move every VM in scope off a set of hosts; they differ in why and how.
An evacuation rebuilds the instances of a failed, fenced host elsewhere
(Nova's evacuate: status ACTIVE, SHUTOFF or ERROR, task_state ignored). A
drain live-migrates the VMs of a running host being taken out for
maintenance (cold-migrates the stopped ones if asked), under the same rules
as any balancing move. Placement is the same for both:

1. Order: by ``priority`` (a number from metadata or a ``key=value`` tag,
   highest first), then largest first, as bin packing wants.
2. Targets, on a copy of the world: each VM to the feasible host that keeps
   its soft server-group rule and leaves the aggregate's combined imbalance
   lowest. If some VM finds no room, a second pass uses vector Best Fit (the
   tightest host) and re-balances afterwards, and in both a VM without room
   may send an earlier one elsewhere (:func:`placement.make_room`). The pass
   that places more (by priority level) wins; ties keep the first.
3. Steps: re-checked on the real world in that order. Destinations only
   gain, so the order cannot break capacity or scores; a step a group rule
   holds back waits for the others and, failing that, finds a host of its own.

Every VM on the hosts ends up as a step, or in ``unplaced`` with the rule
that stopped it, or (with a selector) in ``not_selected``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import attrs
import numpy as np
from attrs import frozen

from kronos.core import kernels, placement, rules
from kronos.core.arrays import GROUP_KIND_NAMES, World
from kronos.core.model import VM, Reason, Snapshot, Unplaced
from kronos.core.moves import AggregateOutcome, Move, cells_taken, describe_arrival
from kronos.core.pack import action_of, size_key, unit
from kronos.core.phases import EVACUATE
from kronos.core.reasons import render, render_all
from kronos.errors import DataError

IMPROVE_ROUNDS = 2  # passes of re-balancing after a pass that placed by fit, not balance
NODES = 20_000  # Minimum Bin Slack: evaluations per host beyond its first pass
WORK = 5_000_000  # ... and in all, per aggregate (deterministic, never read off a clock)


@frozen
class Selector:
    """Which instances an evacuation or drain takes: those matching any criterion.

    Each criterion is one way an instance can be opted in (a tag, a flavor
    extra spec, a metadata item), so one match is enough. No criterion: all.
    """

    tags: tuple[str, ...] = ()
    flavor_specs: tuple[tuple[str, str], ...] = ()
    metadata: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(
        cls, tags: Iterable[str], flavor_specs: Mapping[str, str] | None, metadata: Mapping[str, str] | None
    ) -> Selector:
        """From the keyword arguments of ``kronos.evacuate`` / ``kronos.drain``."""
        return cls(tuple(tags), tuple((flavor_specs or {}).items()), tuple((metadata or {}).items()))

    def __bool__(self) -> bool:
        return bool(self.tags or self.flavor_specs or self.metadata)

    def matches(self, vm: VM) -> bool:
        if not self:
            return True
        meta = vm.metadata or {}
        return (
            any(t in vm.tags for t in self.tags)
            or any(str(vm.flavor.extra_specs.get(k)) == v for k, v in self.flavor_specs)
            or any(meta.get(k) == v for k, v in self.metadata)
        )

    def describe(self) -> str:
        parts = [f"tag {t}" for t in self.tags]
        parts += [f"flavor extra spec {k}={v}" for k, v in self.flavor_specs]
        parts += [f"metadata {k}={v}" for k, v in self.metadata]
        return " or ".join(parts)


@frozen
class Leaving:
    """One request: empty ``hosts`` (indices) in ``phase`` ``evacuate`` or ``drain``."""

    phase: str
    hosts: tuple[int, ...]
    selector: Selector = Selector()
    priority: str | None = None
    largest_first: bool = True
    budget: int | None = None
    cold_migrate_stopped: bool = False


@frozen
class LeavingResult:
    outcomes: dict[str, AggregateOutcome]
    unplaced: tuple[Unplaced, ...]
    not_selected: tuple[Unplaced, ...]


def priority_of(vm: VM, index: int, key: str) -> float | None:
    """The VM's priority: metadata ``key``, else a tag ``key=N`` or ``key:N``; None if absent."""
    where = f"vms[{index}].metadata.{key}"
    value = (vm.metadata or {}).get(key)
    if value is None:
        for tag in vm.tags:
            if tag[: len(key) + 1] in (f"{key}=", f"{key}:"):
                value, where = tag[len(key) + 1 :], f"vms[{index}].tags"
                break
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        raise DataError(f"{where} = {value!r}: priority values must be numbers (higher goes first)") from None


def plan_leaving(
    world: World,
    snapshot: Snapshot,
    req: Leaving,
    scope: list[str],
) -> LeavingResult:
    """Empty ``req.hosts`` aggregate by aggregate; mutates ``world`` with the moves."""
    leaving = np.array(req.hosts, dtype=np.int64)
    world.leaving[leaving] = True
    on = np.flatnonzero(np.isin(world.vm_host, leaving))
    chosen = np.array([req.selector.matches(snapshot.vms[v]) for v in on], dtype=np.bool_)
    picked = Reason("vm.not_selected", detail=req.selector.describe())
    not_selected = tuple(
        Unplaced(world.vm_ids[v], render(picked), phase=req.phase, why=(picked,)) for v in on[~chosen]
    )
    todo = on[chosen].astype(np.int64)
    prio = np.full(len(world.vm_ids), -np.inf)
    if req.priority is not None:
        for v in todo:
            p = priority_of(snapshot.vms[v], int(v), req.priority)
            prio[v] = -np.inf if p is None else p
    how = rules.Movement(req.phase, cold=req.cold_migrate_stopped)
    masks = rules.vm_rule_masks(world, how)
    why: dict[int, tuple[tuple[Reason, ...], str | None]] = {}
    for v in todo:
        stop = rules.why_not_movable(world, int(v), how, masks)
        if stop:
            why[int(v)] = (stop, None)
    pending = np.array([v for v in todo if int(v) not in why], dtype=np.int64)

    outcomes: dict[str, AggregateOutcome] = {}
    counted: set[int] = set()
    for name in scope:
        hosts = world.aggregates[name]
        here = pending[np.isin(world.vm_host[pending], hosts)]
        if here.size == 0:
            continue
        # those no rule lets leave count too (in the first aggregate holding their host, as
        # overlapping ones share it): the notes' "N not" add up to the plan's unplaced
        member = np.zeros(len(world.host_names), dtype=np.bool_)
        member[hosts] = True
        held = {v for v, (_, agg) in why.items() if agg is None and member[world.vm_host[v]]} - counted
        counted |= held
        outcomes[name] = _plan_aggregate(world, req, name, hosts, here, prio, why, len(held))
        pending = pending[~world.moved[pending]]
    unplaced = []
    for v in todo:
        if world.moved[v]:
            continue
        records, agg = why.get(int(v), ((Reason("vm.out_of_scope"),), None))
        unplaced.append(
            Unplaced(world.vm_ids[v], render_all(records), aggregate=agg, phase=req.phase, why=records)
        )
    return LeavingResult(outcomes, tuple(unplaced), not_selected)


def _plan_aggregate(
    world: World,
    req: Leaving,
    name: str,
    hosts: np.ndarray,
    vms: np.ndarray,
    prio: np.ndarray,
    why: dict[int, tuple[tuple[Reason, ...], str | None]],
    unmovable: int = 0,
) -> AggregateOutcome:
    dest_hosts = hosts[rules.receivers(world)[hosts]]
    norm = unit(world, dest_hosts if dest_hosts.size else hosts)
    size = size_key(world, norm, vms)
    order = vms[np.lexsort((vms, -size if req.largest_first else size, -prio[vms]))]
    target = _targets(world, order, hosts, prio[order], norm)

    w = world.arrays()
    P = world.pw.size
    var, tot = np.zeros(P), np.zeros(P)
    moves: list[Move] = []
    budget = len(order) if req.budget is None else req.budget

    def move(v: int, b: int) -> None:
        a = int(world.vm_host[v])
        worse = rules.soft_worse(v, a, b, w)
        kernels.apply_move(v, b, w)
        _, combined = kernels.stats(hosts, world.active, world.score, world.pw, var, tot)
        purpose = Reason(
            "evacuate.failed" if req.phase == EVACUATE else "drain.maintenance", host=world.host_names[a]
        )
        records: tuple[Reason, ...] = (purpose,)
        reason = describe_arrival(world, v, a, b, render(purpose))
        if worse:
            g = int(world.group[v])
            soft = Reason(
                "leaving.soft_worse", group=world.g_names[g], detail=GROUP_KIND_NAMES[world.g_kind[g]]
            )
            records += (soft,)
            reason += "; " + render(soft)
        action = "evacuate" if req.phase == EVACUATE else action_of(world, v)
        moves.append(
            Move(
                v, a, b, name, req.phase, action, records, reason, combined, numa_cells=cells_taken(world, v)
            )
        )

    goal = {int(v): int(b) for v, b in zip(order, target, strict=True) if b >= 0}
    queue = list(goal)
    while queue and len(moves) < budget:
        held = []
        for v in queue:
            if len(moves) >= budget:
                held.append(v)
            elif rules.feasible(v, int(world.vm_host[v]), goal[v], w, False):
                move(v, goal[v])
            else:
                held.append(v)
        if len(held) == len(queue):
            break
        queue = held
    n, _ = kernels.stats(hosts, world.active, world.score, world.pw, var, tot)
    for v in order:
        v = int(v)
        if world.moved[v]:
            continue
        if len(moves) >= budget:
            why[v] = ((Reason("leaving.budget", detail=req.phase, limit=budget),), name)
            continue
        a = int(world.vm_host[v])
        b, _ = placement.best_destination(v, a, hosts, placement.MIN_IMBALANCE, False, w, norm, var, tot, n)
        if b >= 0:
            move(v, int(b))
            n, _ = kernels.stats(hosts, world.active, world.score, world.pw, var, tot)
        elif v not in why:
            why[v] = (why_unplaced(world, v, hosts, name), name)

    note = Reason("leaving.placed", detail=req.phase, count=len(moves), need=int(vms.size) + unmovable)
    return AggregateOutcome(moves=tuple(moves), notes=(note,))


def _targets(
    world: World, order: np.ndarray, hosts: np.ndarray, prio: np.ndarray, norm: np.ndarray
) -> np.ndarray:
    """Each VM's destination in target space (-1: none), by the best of the passes in the module doc."""
    origin = world.vm_host.copy()
    best: np.ndarray | None = None
    best_key: tuple[int, ...] = ()
    levels = np.unique(prio)[::-1]
    for how in (placement.MIN_IMBALANCE, placement.BEST_FIT, placement.FILL_HOSTS):
        trial = world.copy()
        w = trial.arrays()
        if how == placement.FILL_HOSTS:
            placement.fill_hosts(order, hosts, origin, NODES, WORK, w, norm)
            placement.place_all(
                order[trial.vm_host[order] == origin[order]], hosts, placement.BEST_FIT, w, norm
            )
        else:
            placement.place_all(order, hosts, how, w, norm)
        work = WORK
        for v in order:
            if trial.vm_host[v] == origin[v] and work > 0:
                # a copy: the reversed view is another array layout, a second compile of make_room
                placed = order[trial.vm_host[order] != origin[order]][::-1].copy()
                _, work = placement.make_room(v, placed, origin, hosts, work, w, norm)
        done = trial.vm_host[order] != origin[order]
        if how != placement.MIN_IMBALANCE:
            placement.improve(order[done], hosts, IMPROVE_ROUNDS, w)
        key = tuple(int(done[prio == p].sum()) for p in levels)
        if best is None or key > best_key:
            best, best_key = np.where(done, trial.vm_host[order], -1), key
        if done.all():
            break
    assert best is not None
    return best


def why_unplaced(world: World, v: int, hosts: np.ndarray, aggregate: str) -> tuple[Reason, ...]:
    """Why no host of ``hosts`` takes v: each rule that rules hosts out, with its numbers."""
    a = int(world.vm_host[v])
    if not (hosts != a).any():
        return (Reason("aggregate.no_other_host", aggregate=aggregate),)
    return rules.ruled_out(world, v, a, hosts, balancing=False) or (Reason("leaving.no_host"),)


def fence(snapshot: Snapshot, names: Iterable[str]) -> Snapshot:
    """The snapshot with ``names`` marked down (``up: false``): the ``--assume-fenced`` copy."""
    down = set(names)
    hosts = tuple(attrs.evolve(h, up=False) if h.name in down else h for h in snapshot.hosts)
    return attrs.evolve(snapshot, hosts=hosts)
