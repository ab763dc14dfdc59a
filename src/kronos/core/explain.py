"""``kronos explain``: why a VM moved or stayed, why a host was chosen, passed over or emptied.

Answers are records (:class:`~kronos.core.model.Reason` inside the classes
below), computed from the same rule table and the same arithmetic as the
plan, on two placements: the snapshot's (which host the VM could go to and
what each would gain) and the one the plan leaves (why the planner stopped
where it did). Text is the CLI's business (:mod:`kronos.render`).
"""

from __future__ import annotations

import numpy as np
from attrs import frozen

from kronos.core import kernels, phases, rules
from kronos.core.arrays import World, build_world, imbalance, value_arrays, weighted
from kronos.core.model import Plan, Reason, Snapshot, State, Step
from kronos.core.options import did_you_mean
from kronos.core.replay import apply_steps
from kronos.errors import UsageError


@frozen
class HostVerdict:
    """One candidate host for a VM: the first rule that rules it out, or what the move would do."""

    host: str
    why: Reason | None = None
    #: the aggregate's combined imbalance were the VM moved there now (feasible hosts only)
    combined_after: float | None = None


@frozen
class AggregateView:
    """The VM's candidates in one of its host's aggregates."""

    aggregate: str
    combined_now: float
    hosts: tuple[HostVerdict, ...]


@frozen
class VMExplanation:
    instance: str
    name: str | None
    host: str
    phase: str
    #: VM rules it breaks for ``phase`` (empty: it may move)
    not_movable: tuple[Reason, ...]
    aggregates: tuple[AggregateView, ...]
    #: what the plan did with it and why
    decision: tuple[Reason, ...]
    step: Step | None = None


@frozen
class HostExplanation:
    host: str
    enabled: bool
    up: bool
    aggregates: tuple[str, ...]
    #: host rules that stop it receiving (disabled, down, being emptied)
    closed: tuple[Reason, ...]
    #: every resource class (vcpus, memory_mb, disk_gb, PCPU, ...): used before and after, and capacity
    used_before: dict[str, float]
    used_after: dict[str, float]
    capacity: dict[str, float]
    scores_before: dict[str, float]
    scores_after: dict[str, float]
    arrivals: tuple[int, ...]  # seq of the steps landing here
    departures: tuple[int, ...]
    vms_before: int
    vms_after: int
    decision: tuple[Reason, ...]


def _world_of(snapshot: Snapshot, plan: Plan, state: State | None) -> tuple[World, World]:
    """The planner's world as the plan saw it (its state, its options, the hosts it empties),
    and that world after the plan's steps."""
    world = build_world(snapshot, state, plan.created_at)
    emptied = {*(plan.options.get("evacuate") or ()), *(plan.options.get("drain") or ())}
    world.leaving[[world.host_index[h] for h in emptied if h in world.host_index]] = True
    if plan.options.get("require_cpu_compatibility"):
        world.cpu_ok[:] = world.cpu_strict
    if plan.options.get("assumed_fenced"):
        fenced = [world.host_index[h] for h in plan.options["assumed_fenced"] if h in world.host_index]
        world.up[fenced] = world.active[fenced] = False
    after = world.copy()
    apply_steps(after, plan.steps)  # a step that does not fit the snapshot is refused up front
    return world, after


def _vm_index(world: World, snapshot: Snapshot, ref: str) -> int:
    for k, v in enumerate(snapshot.vms):
        if v.id == ref:
            return k
    named = [k for k, v in enumerate(snapshot.vms) if v.name == ref]
    if len(named) == 1:
        return named[0]
    if named:
        raise UsageError(f"vm={ref!r}: {len(named)} VMs have that name; give its id")
    names = [n for v in snapshot.vms for n in (v.id, v.name) if n]
    raise UsageError(f"vm={ref!r}: no VM with that id or name in the snapshot{did_you_mean(ref, names)}")


def _host_index(world: World, ref: str) -> int:
    if ref not in world.host_index:
        raise UsageError(f"host={ref!r}: no such host in the snapshot{did_you_mean(ref, world.host_names)}")
    return world.host_index[ref]


def _aggregates_of(world: World, h: int) -> list[str]:
    return [name for name, hosts in world.aggregates.items() if h in hosts]


def _movement(plan: Plan) -> rules.Movement:
    mode = str(plan.options.get("mode", phases.SPREAD))
    if mode == phases.DRAIN:
        return rules.Movement(mode, cold=bool(plan.options.get("cold_migrate_stopped")))
    return rules.Movement(mode, cold=mode == phases.PACK)


def _view(world: World, v: int, aggregate: str, balancing: bool) -> AggregateView:
    """Every other host of ``aggregate`` for v: its first failing rule, or the imbalance it would leave."""
    hosts = world.aggregates[aggregate]
    a = int(world.vm_host[v])
    P = world.pw.size
    var, tot = np.zeros(P), np.zeros(P)
    n, now = kernels.stats(hosts, world.active, world.score, world.pw, var, tot)
    first = np.empty(hosts.size, dtype=np.int64)
    rules.walk_hosts(v, a, hosts, -1, int(balancing), False, first, world.arrays())
    out = []
    for b, index in zip(hosts.tolist(), first.tolist(), strict=True):
        if b == a:
            continue
        if index != rules.PASS:
            out.append(HostVerdict(world.host_names[b], why=rules.explain_failure(world, index, v, a, b)))
        else:
            after = kernels.move_value(v, a, b, max(n, 1), var, tot, *value_arrays(world))
            out.append(HostVerdict(world.host_names[b], combined_after=float(after)))
    return AggregateView(aggregate, float(now), tuple(out))


def _best_gain(world: World, v: int, hosts: np.ndarray) -> tuple[float, int]:
    """(lowest combined imbalance v can reach by one move, host) on the world as it is; (inf, -1) if none."""
    a = int(world.vm_host[v])
    P = world.pw.size
    var, tot = np.zeros(P), np.zeros(P)
    n, _ = kernels.stats(hosts, world.active, world.score, world.pw, var, tot)
    best, where = np.inf, -1
    w = world.arrays()
    for b in hosts.tolist():
        if rules.feasible(v, a, b, w, True) and world.active[b]:
            val = kernels.move_value(v, a, b, max(n, 1), var, tot, *value_arrays(world))
            if val < best:
                best, where = val, b
    return float(best), where


def explain_vm(snapshot: Snapshot, plan: Plan, vm: str, state: State | None = None) -> VMExplanation:
    """Why ``vm`` (id or unique name) moved or stayed in ``plan``, made on ``snapshot``."""
    world, _ = _world_of(snapshot, plan, state)
    v = _vm_index(world, snapshot, vm)
    how = _movement(plan)
    a = int(world.vm_host[v])
    stop = rules.why_not_movable(world, v, how)
    views = [_view(world, v, name, balancing=how.balancing) for name in _aggregates_of(world, a)]
    moves = sorted((s for s in plan.steps if s.instance == world.vm_ids[v]), key=lambda s: s.seq)
    step = moves[0] if moves else None
    decision = _vm_decision(world, snapshot, plan, v, how, stop, moves)
    return VMExplanation(
        instance=world.vm_ids[v],
        name=world.vm_names[v],
        host=world.host_names[a],
        phase=how.phase,
        not_movable=stop,
        aggregates=tuple(views),
        decision=decision,
        step=step,
    )


def _vm_decision(
    world: World,
    snapshot: Snapshot,
    plan: Plan,
    v: int,
    how: rules.Movement,
    stop: tuple[Reason, ...],
    moves: list[Step],
) -> tuple[Reason, ...]:
    """Each of the VM's moves (a VM may move twice, the second with a ``repeat_reason``), with
    its reasons; or why it stayed."""
    vid = world.vm_ids[v]
    if moves:
        return tuple(
            reason
            for step in moves
            for reason in (
                Reason(
                    "explain.moved",
                    host=step.destination,
                    aggregate=step.aggregate,
                    count=step.seq,
                    detail=step.phase,
                ),
                *(step.why or ()),
            )
        )
    for u in (*plan.summary.unplaced, *(plan.summary.not_selected or ())):
        if u.instance == vid:
            return u.why or (Reason("explain.unplaced", detail=u.reason),)
    if stop:
        return (Reason("explain.not_movable"), *stop)
    a = int(world.vm_host[v])
    mine = [n for n in _aggregates_of(world, a) if n in plan.summary.aggregates]
    if not mine:
        return (Reason("explain.out_of_scope"),)
    after = world.copy()
    apply_steps(after, plan.steps)
    out: list[Reason] = []
    for name in mine:
        summary = plan.summary.aggregates[name]
        why = summary.why
        if summary.skipped is not None:
            skip = why.skipped if why is not None and why.skipped is not None else None
            out.append(Reason("explain.skipped", aggregate=name))
            if skip is not None:
                out.append(skip)
            continue
        if how.phase == phases.PACK:
            out.append(Reason("explain.host_kept", host=world.host_names[a], aggregate=name))
            continue
        hosts = after.aggregates[name]
        best, where = _best_gain(after, v, hosts)
        _, current = imbalance(after, hosts)
        limit = float(plan.options.get("min_improvement") or 0.0)
        if where < 0:
            out.append(Reason("explain.no_host", aggregate=name))
            out.extend(rules.ruled_out(after, v, int(after.vm_host[v]), hosts, balancing=True))
        elif current - best <= 0:
            out.append(
                Reason("explain.no_gain", aggregate=name, host=after.host_names[where], value=best - current)
            )
        elif current - best < limit:
            out.append(
                Reason("explain.small_gain", aggregate=name, host=after.host_names[where],
                       value=current - best, limit=limit)
            )  # fmt: skip
        else:
            notes = why.notes if why is not None else ()
            out.append(
                Reason(
                    "explain.not_chosen", aggregate=name, host=after.host_names[where], value=current - best
                )
            )
            out.extend(n for n in notes if n.rule.startswith("spread.stop"))
    return tuple(out)


def explain_host(snapshot: Snapshot, plan: Plan, host: str, state: State | None = None) -> HostExplanation:
    """Why ``host`` was or was not a destination in ``plan``, or emptied, and its load before and after."""
    world, after = _world_of(snapshot, plan, state)
    h = _host_index(world, host)
    how = _movement(plan)
    closed = tuple(
        rules.explain_failure(world, r.index, -1, h, h)
        for r in rules.RULES
        if r.scope == "host" and not r.check(-1, h, h, -1, world.arrays())
    )
    arrivals = tuple(s.seq for s in plan.steps if s.destination == host)
    departures = tuple(s.seq for s in plan.steps if s.source == host)
    count_before = int((world.vm_host == h).sum())
    count_after = int((after.vm_host == h).sum())
    decision = _host_decision(world, plan, h, how, closed, arrivals, departures, count_before, count_after)
    return HostExplanation(
        host=host,
        enabled=bool(world.enabled[h]),
        up=bool(world.up[h]),
        aggregates=tuple(_aggregates_of(world, h)),
        closed=closed,
        used_before=dict(zip(world.res_names, map(float, world.used[h]), strict=True)),
        used_after=dict(zip(world.res_names, map(float, after.used[h]), strict=True)),
        capacity=dict(zip(world.res_names, map(float, world.cap[h]), strict=True)),
        scores_before=dict(zip(world.policy_names, map(float, world.score[h]), strict=True)),
        # a host that is not up reports no scores: the plan's arithmetic on them means nothing
        scores_after=dict(
            zip(world.policy_names, map(float, (after if world.up[h] else world).score[h]), strict=True)
        ),
        arrivals=arrivals,
        departures=departures,
        vms_before=count_before,
        vms_after=count_after,
        decision=decision,
    )


def _host_decision(
    world: World,
    plan: Plan,
    h: int,
    how: rules.Movement,
    closed: tuple[Reason, ...],
    arrivals: tuple[int, ...],
    departures: tuple[int, ...],
    count_before: int,
    count_after: int,
) -> tuple[Reason, ...]:
    name = world.host_names[h]
    out: list[Reason] = []
    if count_before and not count_after and departures:
        out.append(Reason("explain.emptied", host=name, count=len(departures)))
    elif departures:
        out.append(Reason("explain.departures", host=name, count=len(departures)))
    if arrivals:
        out.append(Reason("explain.destination", host=name, count=len(arrivals)))
        return tuple(out)
    if closed:
        return (*out, *closed)
    if not any(agg in plan.summary.aggregates for agg in _aggregates_of(world, h)):
        return (*out, Reason("explain.host_out_of_scope", host=name))
    for agg in _aggregates_of(world, h):
        summary = plan.summary.aggregates.get(agg)
        if summary is None:
            continue
        if summary.skipped is not None and summary.why is not None and summary.why.skipped is not None:
            out += [Reason("explain.skipped", aggregate=agg), summary.why.skipped]
            continue
        reserve = [n for n in (summary.why.notes if summary.why else ()) if n.rule == "pack.ha_reserve"]
        if any(name in (n.hosts or ()) for n in reserve):
            out.append(Reason("explain.ha_reserve", host=name, aggregate=agg))
            continue
        if how.phase == phases.PACK and count_after:
            out.append(_kept(world, h, agg))
        out.extend(_not_a_destination(world, h, agg, how))
    return tuple(out)


def _kept(world: World, h: int, aggregate: str) -> Reason:
    """Pack: why the host still holds VMs (one that may not move, or no room for them all)."""
    on = np.flatnonzero(world.vm_host == h)
    stuck = on[~rules.movable(world, rules.Movement(phases.PACK, cold=True))[on]]
    if stuck.size:
        return Reason("explain.pinned", host=world.host_names[h], aggregate=aggregate, count=int(stuck.size))
    return Reason("explain.not_emptied", host=world.host_names[h], aggregate=aggregate, count=int(on.size))


def _not_a_destination(world: World, h: int, aggregate: str, how: rules.Movement) -> list[Reason]:
    """For the aggregate's movable VMs: which rule rules ``h`` out for how many, and how many could come."""
    hosts = world.aggregates[aggregate]
    vms = np.flatnonzero(np.isin(world.vm_host, hosts) & (world.vm_host != h) & rules.movable(world, how))
    w = world.arrays()
    counts: dict[int, int] = {}
    for v in vms.tolist():
        index = rules.first_failing(v, int(world.vm_host[v]), h, w, how.balancing)
        counts[index] = counts.get(index, 0) + 1
    name = world.host_names[h]
    combined = float(weighted(world.score[h], world.pw))
    act = hosts[world.active[hosts]]
    mean = float(weighted(world.score[act], world.pw).mean()) if act.size else 0.0
    out = [
        Reason(
            "explain.not_chosen_host",
            host=name,
            aggregate=aggregate,
            count=counts.get(rules.PASS, 0),
            value=combined,
            limit=mean,
        )
    ]
    for index in sorted((i for i in counts if i != rules.PASS), key=rules.walk_position):
        rule = rules.rule_name(world, index)
        out.append(
            Reason("explain.ruled_out", host=name, aggregate=aggregate, count=counts[index], detail=rule)
        )
    return out


@frozen
class StaysPut:
    """A VM the plan's phase may not move, and every VM rule that holds it."""

    instance: str
    name: str | None
    host: str
    why: tuple[Reason, ...]


def not_movable(snapshot: Snapshot, plan: Plan, state: State | None = None) -> tuple[StaysPut, ...]:
    """The VMs in ``plan``'s scope that its phase may not move, with the rules that hold them.

    Scope: the hosts a drain or evacuation empties, else the aggregates the
    plan covers. VMs the plan already lists (unplaced, not selected) are
    left out. Snapshot order.
    """
    world = build_world(snapshot, state, plan.created_at)
    how = _movement(plan)
    named = [*(plan.options.get("evacuate") or ()), *(plan.options.get("drain") or ())]
    if named:
        hosts = np.array([world.host_index[n] for n in named if n in world.host_index], dtype=np.int64)
    else:
        parts = [world.aggregates[a] for a in plan.summary.aggregates if a in world.aggregates]
        hosts = np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)
    masks = rules.vm_rule_masks(world, how)
    ok = np.logical_and.reduce([m for _, m in masks]) if masks else np.ones(world.vm_host.size, bool)
    listed = {u.instance for u in (*plan.summary.unplaced, *(plan.summary.not_selected or ()))}
    held = [
        v
        for v in np.flatnonzero(np.isin(world.vm_host, hosts) & ~ok).tolist()
        if world.vm_ids[v] not in listed
    ]
    return tuple(
        StaysPut(
            world.vm_ids[v],
            world.vm_names[v],
            world.host_names[world.vm_host[v]],
            rules.why_not_movable(world, int(v), how, masks),
        )
        for v in held
    )
