"""``kronos.plan``, ``kronos.evacuate``, ``kronos.drain``: the pure entry points of the core.

One literal registry, :data:`PHASES`, holds the five phases a plan's steps
can come from, each with its options class and its planner. Every planner
works on the same :class:`~kronos.core.arrays.World` and returns an
:class:`~kronos.core.moves.AggregateOutcome` per aggregate. Aggregates are
planned one after another, each on the placement the previous ones left.
The records the phases return (:class:`~kronos.core.model.Reason`) become
the plan's strings here, through :func:`kronos.core.reasons.render`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs
import numpy as np
from attrs import frozen

from kronos.core import phases
from kronos.core.affinity import repair
from kronos.core.arrays import World, build_world, imbalance
from kronos.core.convert import snapshot_digest
from kronos.core.evacuate import Leaving, LeavingResult, Selector, fence, plan_leaving
from kronos.core.facts import capacity_or_none
from kronos.core.model import (
    AggregateSummary,
    AggregateWhy,
    Plan,
    PlanSummary,
    Reason,
    Snapshot,
    State,
    Step,
)
from kronos.core.moves import AggregateOutcome, GroupOutcome, Move
from kronos.core.options import (
    INT64,
    AffinityOptions,
    PackOptions,
    PlannerOptions,
    SpreadOptions,
    make_options,
)
from kronos.core.outlook import History, outlook
from kronos.core.pack import plan_pack
from kronos.core.reasons import render
from kronos.core.spread import plan_spread
from kronos.core.validate import errors_only, validate_snapshot
from kronos.core.waves import assign_waves
from kronos.errors import DataError, UnknownAggregate, UsageError, ValidationError

UNLIMITED = "unlimited"


@frozen
class Phase:
    """One entry of the registry: a phase's name, its options class and its planner.

    The modes (spread, pack) take (world, group of aggregates, budget per
    aggregate, options) and return a :class:`GroupOutcome`; affinity repair
    takes one aggregate (world, name, hosts, budget, options) and returns an
    :class:`AggregateOutcome`; evacuate and drain share
    :func:`~kronos.core.evacuate.plan_leaving`, whose options are the
    keyword arguments of :func:`evacuate` and :func:`drain`, gathered in a
    :class:`~kronos.core.evacuate.Leaving` request.
    """

    name: str
    options: type
    planner: Callable[..., Any]


PHASES: dict[str, Phase] = {
    phases.DRAIN: Phase(phases.DRAIN, Leaving, plan_leaving),
    phases.AFFINITY: Phase(phases.AFFINITY, AffinityOptions, repair),
    phases.SPREAD: Phase(phases.SPREAD, SpreadOptions, plan_spread),
    phases.PACK: Phase(phases.PACK, PackOptions, plan_pack),
    phases.EVACUATE: Phase(phases.EVACUATE, Leaving, plan_leaving),
}


def effective_budget(snapshot: Snapshot, budget: int | str | None) -> int | None:
    """Steps allowed per aggregate: ``budget`` if given, else the policies' smallest cap.

    ``None`` in the result means no cap; ask for that with ``budget="unlimited"``.
    """
    if budget is None:
        caps = [p.max_migrations_per_cycle for p in snapshot.enabled_policies]
        known = [c for c in caps if c is not None]
        return min(known) if known else None
    if isinstance(budget, str):
        if budget.strip().lower() in (UNLIMITED, "null", "none"):
            return None
        try:
            budget = int(budget)
        except ValueError:
            raise UsageError(f"budget={budget!r}: expected a whole number or 'unlimited'") from None
    if isinstance(budget, bool) or budget < 0:
        raise UsageError(f"budget={budget!r}: must be >= 0 or 'unlimited'")
    if budget >= INT64:  # the plan records it; FORMATS' integers fit 64 bits
        raise UsageError(f"budget={budget!r}: must be below 2**63 (or 'unlimited')")
    return int(budget)


@frozen
class Prepared:
    """A validated snapshot with its arrays built, for callers that plan on it repeatedly.

    An HA daemon keeps one per aggregate set and plans an evacuation the
    moment a host fails, without re-reading 100 000 VMs. Each planning call
    works on its own copy of the world; this one is never changed.
    """

    snapshot: Snapshot
    world: World
    state: State | None
    now: datetime
    digest: str  # the snapshot's: hashing 100 000 VMs costs more than planning for them


def prepare(
    snapshot: Snapshot, state: State | None = None, now: datetime | None = None, validate_input: bool = True
) -> Prepared:
    """Validate ``snapshot`` and build its arrays once (``now`` defaults to ``taken_at``)."""
    sizes = None
    if validate_input:
        sizes = capacity_or_none(snapshot)  # validation and the world share it
        problems = errors_only(validate_snapshot(snapshot, sizes))
        if problems:
            raise ValidationError("snapshot", problems)
    if not snapshot.enabled_policies:
        raise DataError("snapshot: no enabled policy, nothing to plan against")
    now = now or snapshot.taken_at
    world = build_world(snapshot, state, now, sizes)
    return Prepared(snapshot, world, state, now, snapshot_digest(snapshot))


def _prepared(
    source: Snapshot | Prepared, state: State | None, now: datetime | None, validate_input: bool
) -> tuple[Prepared, World]:
    ready = source if isinstance(source, Prepared) else prepare(source, state, now, validate_input)
    return ready, ready.world.copy()


def plan(
    snapshot: Snapshot | Prepared,
    *,
    mode: str | None = None,
    budget: int | str | None = None,
    state: State | None = None,
    now: datetime | None = None,
    validate_input: bool = True,
    drain: Sequence[str] = (),
    cold_migrate_stopped: bool = False,
    prune: bool = True,
    **options: Any,
) -> Plan:
    """Plan migrations for every aggregate in scope; raises on invalid input only.

    ``now`` (default: the snapshot's ``taken_at``) decides which cooldowns have
    expired; nothing here reads a clock. ``validate_input=False`` skips
    validation for callers that just ran :func:`kronos.validate` themselves.
    ``drain``: hosts to empty first (phase ``drain``, no budget), after which
    their aggregates are balanced as usual under ``budget``. ``prune=False``
    makes spread scan every move instead of bounding (for tests).
    """
    opts = make_options(options)
    opts = attrs.evolve(opts, spread=attrs.evolve(opts.spread, prune=prune))
    ready, world = _prepared(snapshot, state, now, validate_input)
    _enforce(world, opts)
    snap, state, now = ready.snapshot, ready.state, ready.now
    mode = mode or snap.enabled_policies[0].mode
    if mode not in phases.MODES:
        raise UsageError(f"mode={mode!r}: must be one of {', '.join(phases.MODES)}")
    if mode == phases.SPREAD and (opts.spread.plan_on != "current" or opts.spread.min_sustained > 0):
        world.history = History.of(snap, world)
        world.outlook = outlook(snap, world, world.history, opts.spread)
    if opts.pack.solver == "exact":
        from kronos.core.exact import load_cp_model

        load_cp_model()  # fail before any work when the extra is missing
        exact = attrs.evolve(opts.spread, exact_seconds=opts.pack.time_limit)
        opts = attrs.evolve(opts, spread=exact)
    cap = effective_budget(snap, budget)
    scope = _scope(world, opts)
    skips = _source_skips(snap)
    cycle = _Cycle(world, scope)

    leaving = None
    if drain:
        emptied = _in_scope(world, _drain_hosts(world, drain), scope, "drain")
        req = Leaving(phases.DRAIN, emptied, cold_migrate_stopped=cold_migrate_stopped)
        leaving = PHASES[phases.DRAIN].planner(world, snap, req, scope)
        for name, out in leaving.outcomes.items():
            cycle.add(name, out)
    balance = PHASES[mode]
    for group in _groups(world, scope):
        budgets: dict[str, int] = {}
        for name in group:
            hosts = world.aggregates[name]
            until = state.aggregate_cooldown_until.get(name) if state else None
            if until is not None and until > now:
                rest = Reason("aggregate.cooldown", aggregate=name, until=until)
                cycle.add(name, AggregateOutcome(skipped=rest))
            elif name in skips:
                bad = Reason("aggregate.bad_data", aggregate=name, detail=skips[name])
                cycle.add(name, AggregateOutcome(skipped=bad))
            else:
                budget_here = cap if cap is not None else len(world.vm_ids)
                repaired = PHASES[phases.AFFINITY].planner(world, name, hosts, budget_here, opts.affinity)
                cycle.add(name, repaired)
                budgets[name] = budget_here - len(repaired.moves)
        if budgets:
            cycle.add_group(balance.planner(world, list(budgets), budgets, opts.section(mode)))
    # the drain has no cap, so neither has the plan; the balancing cap is recorded apart
    caps = {"budget": None, "drain": list(drain), "balance_budget": cap} if drain else {"budget": cap}
    recorded = {"mode": mode, **caps, **opts.for_plan(phases.AFFINITY, mode)}
    if mode == phases.SPREAD and opts.pack.solver == "exact":
        recorded.update(solver=opts.pack.solver, time_limit=opts.pack.time_limit)
    return cycle.finish(ready.digest, now, recorded, opts, leaving)


def evacuate(
    snapshot: Snapshot | Prepared,
    hosts: Sequence[str],
    *,
    assume_fenced: bool = False,
    tags: Sequence[str] = (),
    flavor_specs: Mapping[str, str] | None = None,
    metadata: Mapping[str, str] | None = None,
    priority: str | None = None,
    largest_first: bool = True,
    state: State | None = None,
    now: datetime | None = None,
    validate_input: bool = True,
    **options: Any,
) -> Plan:
    """Plan the evacuation of failed ``hosts`` (phase and action ``evacuate``).

    A host that is still ``up`` is refused (:class:`DataError`): rebuilding
    its VMs elsewhere while it runs could start each twice on shared
    storage. ``assume_fenced=True`` plans against a copy of the snapshot in
    which they are down instead, and the plan records that assumption; its
    ``snapshot_digest`` is the copy's (:func:`kronos.core.evacuate.fence`).
    """
    opts = make_options(options)
    names = list(dict.fromkeys(hosts))
    ready = snapshot if isinstance(snapshot, Prepared) else prepare(snapshot, state, now, validate_input)
    up = [n for n in names if ready.world.up[_host(ready.world, n)]]
    if up and not assume_fenced:
        raise DataError(
            f"host {', '.join(up)} is up: evacuating from a running host can start its VMs twice. "
            "Fence it (power it off) and mark it down in Nova, or pass assume_fenced=True if it already is"
        )
    if up:
        fenced = fence(ready.snapshot, up)
        world = ready.world.copy()
        idx = [_host(world, n) for n in up]
        world.up[idx] = world.active[idx] = False
        ready = Prepared(fenced, world, ready.state, ready.now, snapshot_digest(fenced))
    world = ready.world.copy()
    selector = Selector.of(tags, flavor_specs, metadata)
    req = Leaving("evacuate", tuple(_host(world, n) for n in names), selector, priority, largest_first)
    return _leave(ready, world, req, opts, {"evacuate": names, "assumed_fenced": up or None})


def drain(
    snapshot: Snapshot | Prepared,
    hosts: Sequence[str],
    *,
    budget: int | str | None = UNLIMITED,
    cold_migrate_stopped: bool = False,
    tags: Sequence[str] = (),
    flavor_specs: Mapping[str, str] | None = None,
    metadata: Mapping[str, str] | None = None,
    priority: str | None = None,
    largest_first: bool = True,
    state: State | None = None,
    now: datetime | None = None,
    validate_input: bool = True,
    **options: Any,
) -> Plan:
    """Plan moving every movable VM off running ``hosts`` for maintenance (phase ``drain``).

    ``budget`` caps the drain's steps per aggregate (default: unlimited).
    """
    opts = make_options(options)
    ready, world = _prepared(snapshot, state, now, validate_input)
    cap = effective_budget(ready.snapshot, budget)
    selector = Selector.of(tags, flavor_specs, metadata)
    req = Leaving(
        "drain", _drain_hosts(world, hosts), selector, priority, largest_first, cap, cold_migrate_stopped
    )
    return _leave(ready, world, req, opts, {"drain": list(dict.fromkeys(hosts)), "budget": cap})


def _leave(ready: Prepared, world: World, req: Leaving, opts: PlannerOptions, extra: dict[str, Any]) -> Plan:
    """Run an evacuation or drain over the aggregates that hold its hosts."""
    _enforce(world, opts)
    held = set(_in_scope(world, req.hosts, _scope(world, opts), req.phase))
    scope = [n for n in _scope(world, opts) if held & set(world.aggregates[n].tolist())]
    cycle = _Cycle(world, scope)
    result = PHASES[req.phase].planner(world, ready.snapshot, req, scope)
    for name in scope:
        nothing = AggregateOutcome(skipped=Reason("aggregate.nothing_to_move", aggregate=name))
        cycle.add(name, result.outcomes.get(name, nothing))
    options = {"mode": req.phase, **extra, **opts.for_plan()}
    fence_first = [world.host_names[h] for h in req.hosts] if req.phase == phases.EVACUATE else None
    return cycle.finish(ready.digest, ready.now, options, opts, result, fence_first)


def _enforce(world: World, opts: PlannerOptions) -> None:
    """Rules the options switch on: CPU compatibility of live migrations."""
    if opts.common.require_cpu_compatibility:
        world.cpu_ok[:] = world.cpu_strict


def _host(world: World, name: str) -> int:
    if name not in world.host_index:
        raise UsageError(f"no host {name!r} in the snapshot ({len(world.host_names)} hosts)")
    return world.host_index[name]


def _in_scope(world: World, hosts: tuple[int, ...], scope: list[str], what: str) -> tuple[int, ...]:
    """``hosts``, each in an aggregate being planned: a host to empty outside them all would
    be left as it is while the plan's options said to empty it (``aggregates``)."""
    for h in hosts:
        if not any(h in world.aggregates[n] for n in scope):
            mine = [n for n, members in world.aggregates.items() if h in members]
            raise UsageError(
                f"{what} host {world.host_names[h]} is in {', '.join(mine) or 'no aggregate'}, "
                f"none of the aggregates planned ({', '.join(scope) or 'none'})"
            )
    return hosts


def _drain_hosts(world: World, names: Sequence[str]) -> tuple[int, ...]:
    idx = tuple(_host(world, n) for n in dict.fromkeys(names))
    down = [world.host_names[h] for h in idx if not world.up[h]]
    if down:
        raise DataError(
            f"host {', '.join(down)} is down: a drain live-migrates from a running host; "
            "use kronos evacuate for a failed one"
        )
    return idx


class _Cycle:
    """Collects each aggregate's outcome in plan order and turns them into a Plan."""

    def __init__(self, world: World, scope: list[str]) -> None:
        self.world = world
        self.scope = scope
        self.before = {name: imbalance(world, world.aggregates[name]) for name in scope}
        self.count_before = np.bincount(world.vm_host, minlength=len(world.host_names))
        self.outcomes: dict[str, AggregateOutcome] = {}
        self.moves: list[Move] = []

    def add(self, name: str, out: AggregateOutcome, ordered: bool = True) -> None:
        """Record ``out``; a later outcome for the same aggregate (drain or repair, then
        balance) merges. ``ordered``: its moves come next in the plan (else the caller
        places them, :meth:`add_group`)."""
        if ordered:
            self.moves.extend(out.moves)
        prev = self.outcomes.get(name)
        if prev is not None:
            out = attrs.evolve(
                out,
                moves=(*prev.moves, *out.moves),
                notes=(*prev.notes, *out.notes),
                skipped=out.skipped if not prev.moves else None,
                unplaced=(*prev.unplaced, *out.unplaced),
                unrepaired=(*prev.unrepaired, *out.unrepaired),
            )
        self.outcomes[name] = out

    def add_group(self, group: GroupOutcome) -> None:
        """Record a balancing phase's outcomes and its moves in the order it made them."""
        for name, out in group.outcomes.items():
            self.add(name, out, ordered=False)
        self.moves.extend(group.moves)

    def finish(
        self,
        digest: str,
        now: datetime,
        options: dict[str, Any],
        opts: PlannerOptions,
        leaving: LeavingResult | None = None,
        fence_first: list[str] | None = None,
    ) -> Plan:
        world, moves = self.world, self.moves
        waves = assign_waves(
            [(m.source, m.destination, int(world.group[m.vm]), m.phase in phases.ONE_WAY) for m in moves],
            opts.common.max_parallel,
        )
        steps = tuple(
            Step(
                seq=i + 1,
                wave=waves[i],
                phase=m.phase,
                action=m.action,
                instance=world.vm_ids[m.vm],
                name=world.vm_names[m.vm],
                source=world.host_names[m.source],
                destination=world.host_names[m.destination],
                aggregate=m.aggregate,
                reason=m.reason,
                combined_after=m.combined_after,
                why=m.why,
                repeat_reason=m.repeat_reason,
                numa_cells=m.numa_cells,
            )
            for i, m in enumerate(moves)
        )
        count_after = np.bincount(world.vm_host, minlength=len(world.host_names))
        summaries = {name: self._summary(name, count_after) for name in self.scope}
        unplaced = tuple(u for o in self.outcomes.values() for u in o.unplaced)
        if leaving is not None:
            unplaced += leaving.unplaced
        return Plan(
            created_at=now,
            snapshot_digest=digest,
            options=options,
            steps=steps,
            summary=PlanSummary(
                aggregates=summaries,
                unplaced=unplaced,
                hosts_to_enable=tuple(h for o in self.outcomes.values() for h in o.hosts_to_enable) or None,
                not_selected=leaving.not_selected or None if leaving is not None else None,
                fence_first=tuple(fence_first) if fence_first else None,
            ),
        )

    def _summary(self, name: str, count_after: np.ndarray) -> AggregateSummary:
        world = self.world
        hosts = world.aggregates[name]
        std_b, comb_b = self.before[name]
        std_a, comb_a = imbalance(world, hosts)
        emptied = [world.host_names[h] for h in hosts if self.count_before[h] > 0 and count_after[h] == 0]
        out = self.outcomes.get(name, AggregateOutcome())
        packing = out.hosts_lower_bound is not None
        active = hosts[world.active[hosts]]
        return AggregateSummary(
            imbalance_before=dict(zip(world.policy_names, map(float, std_b), strict=True)),
            imbalance_after=dict(zip(world.policy_names, map(float, std_a), strict=True)),
            combined_before=comb_b,
            combined_after=comb_a,
            migrations=sum(1 for m in self.moves if m.aggregate == name),
            hosts_emptied=tuple(emptied),
            skipped=render(out.skipped) if out.skipped else None,
            hosts=int(world.active[hosts].sum()),
            notes=tuple(map(render, out.notes)) or None,
            unrepaired=tuple(map(render, out.unrepaired)) or None,
            hosts_used_before=int((self.count_before[active] > 0).sum()) if packing else None,
            hosts_used_after=int((count_after[active] > 0).sum()) if packing else None,
            hosts_lower_bound=out.hosts_lower_bound,
            post_drain=out.post_drain or None,
            hosts_to_enable=out.hosts_to_enable or None,
            optimality=out.optimality,
            moved_memory_mb=float(sum(world.size[m.vm, 1] for m in self.moves if m.aggregate == name)),
            combined_forecast_before=out.forecast[0] if out.forecast else None,
            combined_forecast_after=out.forecast[1] if out.forecast else None,
            why=AggregateWhy(out.skipped, out.unrepaired, out.notes)
            if out.skipped or out.unrepaired or out.notes
            else None,
        )


def _scope(world: World, opts: PlannerOptions) -> list[str]:
    chosen = opts.common.aggregates
    if chosen is None:
        return list(world.aggregates)
    unknown = [a for a in chosen if a not in world.aggregates]
    if unknown:
        raise UnknownAggregate(
            f"aggregate {unknown[0]!r} is not in the snapshot (known: {', '.join(world.aggregates)})"
        )
    return list(dict.fromkeys(chosen))


def _groups(world: World, scope: list[str]) -> list[list[str]]:
    """The aggregates of ``scope`` that share hosts, together (in scope order, each group
    where its first member is): spread balances a group in one search."""
    member = np.zeros((len(scope), len(world.host_names)), dtype=np.bool_)
    for i, name in enumerate(scope):
        member[i, world.aggregates[name]] = True
    shared = (member.astype(np.int64) @ member.T.astype(np.int64)) > 0
    group_of = list(range(len(scope)))

    def root(i: int) -> int:
        while group_of[i] != i:
            i = group_of[i]
        return i

    for i, j in zip(*np.nonzero(np.triu(shared, 1)), strict=True):
        group_of[root(int(j))] = root(int(i))
    groups: dict[int, list[str]] = {}
    for i, name in enumerate(scope):
        groups.setdefault(root(i), []).append(name)
    return list(groups.values())


def _source_skips(snapshot: Snapshot) -> dict[str, str]:
    """Aggregates the recorder marked untrustworthy: ``source.skip_aggregates``."""
    src = snapshot.source or {}
    skips = src.get("skip_aggregates") or {}
    return {str(k): str(v) for k, v in skips.items()} if isinstance(skips, dict) else {}
