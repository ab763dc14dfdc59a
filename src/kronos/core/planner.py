"""``kronos.plan`` and ``kronos.next_state``: the pure entry points of the core.

One literal registry maps mode names to planners; every planner works on the
same :class:`~kronos.core.arrays.World` and returns an
:class:`~kronos.core.moves.AggregateOutcome` per aggregate. Aggregates are
planned one after another, each on the placement the previous ones left.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import attrs
import numpy as np

from kronos.core.affinity import repair
from kronos.core.arrays import World, build_world, imbalance
from kronos.core.convert import snapshot_digest
from kronos.core.model import (
    AggregateSummary,
    Plan,
    PlanSummary,
    Snapshot,
    State,
    Step,
)
from kronos.core.moves import AggregateOutcome, Move
from kronos.core.options import PlannerOptions, make_options
from kronos.core.pack import plan_pack
from kronos.core.spread import plan_spread
from kronos.core.validate import errors_only, validate
from kronos.core.waves import assign_waves
from kronos.errors import DataError, UsageError, ValidationError

UNLIMITED = "unlimited"
Planner = Callable[[World, str, np.ndarray, int, PlannerOptions], AggregateOutcome]
MODES: dict[str, Planner] = {
    "spread": plan_spread,
    "pack": plan_pack,
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
            raise UsageError(f"budget = {budget!r}: expected a whole number or 'unlimited'") from None
    if isinstance(budget, bool) or budget < 0:
        raise UsageError(f"budget = {budget!r}: must be >= 0 or 'unlimited'")
    return int(budget)


def plan(
    snapshot: Snapshot,
    *,
    mode: str | None = None,
    budget: int | str | None = None,
    state: State | None = None,
    now: datetime | None = None,
    validate_input: bool = True,
    **options: Any,
) -> Plan:
    """Plan migrations for every aggregate in scope; raises on invalid input only.

    ``now`` (default: the snapshot's ``taken_at``) decides which cooldowns have
    expired; nothing here reads a clock. ``validate_input=False`` skips
    validation for callers that just ran :func:`kronos.validate` themselves.
    """
    if validate_input:
        problems = errors_only(validate(snapshot))
        if problems:
            raise ValidationError("snapshot", problems)
    opts = make_options(options)
    enabled = snapshot.enabled_policies
    if not enabled:
        raise DataError("snapshot: no enabled policy, nothing to plan against")
    mode = mode or enabled[0].mode
    if mode not in MODES:
        raise UsageError(f"mode = {mode!r}: must be one of {', '.join(MODES)}")
    cap = effective_budget(snapshot, budget)
    now = now or snapshot.taken_at
    world = build_world(snapshot, state, now)
    scope = _scope(world, opts)
    skips = _source_skips(snapshot)

    before = {name: imbalance(world, world.aggregates[name]) for name in scope}
    count_before = np.bincount(world.vm_host, minlength=len(world.host_names))
    outcomes: dict[str, AggregateOutcome] = {}
    moves: list[Move] = []
    for name in scope:
        hosts = world.aggregates[name]
        until = state.aggregate_cooldown_until.get(name) if state else None
        if until is not None and until > now:
            outcomes[name] = AggregateOutcome(skipped=f"in cooldown until {_iso(until)}")
        elif name in skips:
            outcomes[name] = AggregateOutcome(skipped=f"bad data: {skips[name]}")
        else:
            budget_here = cap if cap is not None else len(world.vm_ids)
            repairs, left = repair(world, name, hosts, budget_here, opts)
            out = MODES[mode](world, name, hosts, budget_here - len(repairs), opts)
            outcomes[name] = attrs.evolve(
                out,
                moves=(*repairs, *out.moves),
                skipped=None if repairs else out.skipped,
                unrepaired=tuple(left),
            )
        moves.extend(outcomes[name].moves)

    waves = assign_waves(
        [(m.source, m.destination, int(world.group[m.vm])) for m in moves], opts.max_parallel
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
        )
        for i, m in enumerate(moves)
    )
    count_after = np.bincount(world.vm_host, minlength=len(world.host_names))
    summaries = {}
    for name in scope:
        hosts = world.aggregates[name]
        std_b, comb_b = before[name]
        std_a, comb_a = imbalance(world, hosts)
        emptied = [world.host_names[h] for h in hosts if count_before[h] > 0 and count_after[h] == 0]
        out = outcomes[name]
        packing = out.hosts_lower_bound is not None
        active = hosts[world.active[hosts]]
        summaries[name] = AggregateSummary(
            imbalance_before=dict(zip(world.policy_names, map(float, std_b), strict=True)),
            imbalance_after=dict(zip(world.policy_names, map(float, std_a), strict=True)),
            combined_before=comb_b,
            combined_after=comb_a,
            migrations=sum(1 for m in moves if m.aggregate == name),
            hosts_emptied=tuple(emptied),
            skipped=out.skipped,
            hosts=int(world.active[hosts].sum()),
            notes=out.notes or None,
            unrepaired=out.unrepaired or None,
            hosts_used_before=int((count_before[active] > 0).sum()) if packing else None,
            hosts_used_after=int((count_after[active] > 0).sum()) if packing else None,
            hosts_lower_bound=out.hosts_lower_bound,
            post_drain=out.post_drain or None,
            hosts_to_enable=out.hosts_to_enable or None,
        )
    unplaced = tuple(u for o in outcomes.values() for u in o.unplaced)
    return Plan(
        created_at=now,
        snapshot_digest=snapshot_digest(snapshot),
        options={"mode": mode, "budget": cap, **opts.as_dict()},
        steps=steps,
        summary=PlanSummary(
            aggregates=summaries,
            unplaced=unplaced,
            hosts_to_enable=tuple(h for o in outcomes.values() for h in o.hosts_to_enable) or None,
        ),
    )


def _scope(world: World, opts: PlannerOptions) -> list[str]:
    if opts.aggregates is None:
        return list(world.aggregates)
    unknown = [a for a in opts.aggregates if a not in world.aggregates]
    if unknown:
        raise UsageError(
            f"aggregate {unknown[0]!r} is not in the snapshot (known: {', '.join(world.aggregates)})"
        )
    return list(dict.fromkeys(opts.aggregates))


def _source_skips(snapshot: Snapshot) -> dict[str, str]:
    """Aggregates the recorder marked untrustworthy: ``source.skip_aggregates``."""
    src = snapshot.source or {}
    skips = src.get("skip_aggregates") or {}
    return {str(k): str(v) for k, v in skips.items()} if isinstance(skips, dict) else {}


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")
