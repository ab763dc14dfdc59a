"""Spread: greedy best single move per round, minimising the combined imbalance.

The search itself is :func:`kronos.core.kernels.greedy_spread`; this module
decides whether an aggregate should be planned at all (thresholds and the
load-leveller's ``min_load`` / ``min_diff_ratio`` gates), feeds the kernel the
aggregate's arrays, and explains each resulting move.
"""

from __future__ import annotations

import numpy as np

from kronos.core import kernels, rules
from kronos.core.arrays import World, imbalance
from kronos.core.model import Reason
from kronos.core.moves import AggregateOutcome, Move, describe_move
from kronos.core.options import SpreadOptions
from kronos.core.phases import SPREAD

LIVE = rules.Movement(SPREAD)  # balancing live-migrates: ACTIVE VMs only

_STOPS = {
    kernels.STOP_BUDGET: Reason("spread.stop_budget"),
    kernels.STOP_NO_MOVE: Reason("spread.stop_no_gain"),
    kernels.STOP_BALANCED: Reason("spread.stop_balanced"),
}


def gate(world: World, hosts: np.ndarray, opts: SpreadOptions) -> Reason | None:
    """Why this aggregate should not be balanced now, or None to go ahead."""
    act = hosts[world.active[hosts]]
    if act.size < 2:
        return Reason("aggregate.too_few_hosts", count=int(act.size))
    std, _ = imbalance(world, hosts)
    over = std > world.threshold
    if not over.any():
        return Reason("aggregate.balanced")
    combined = world.score[act] @ world.pw
    busiest, idlest = float(combined.max()), float(combined.min())
    if busiest < opts.min_load:
        return Reason("aggregate.min_load", value=busiest, limit=opts.min_load)
    if idlest > 0 and busiest / idlest - 1.0 < opts.min_diff_ratio:
        return Reason("aggregate.min_diff_ratio", value=busiest / idlest - 1.0, limit=opts.min_diff_ratio)
    return None


def candidates(world: World, hosts: np.ndarray) -> np.ndarray:
    """VMs on ``hosts`` that balancing may move, in snapshot order."""
    on = np.isin(world.vm_host, hosts)
    return np.flatnonzero(on & rules.movable(world, LIVE)).astype(np.int64)


def host_classes(world: World, hosts: np.ndarray) -> tuple[np.ndarray, int]:
    """Score-capacity class of each host (equal rows of ``sc`` share a class)."""
    if hosts.size == 0:
        return np.zeros(0, dtype=np.int64), 1
    _, inverse = np.unique(world.sc[hosts], axis=0, return_inverse=True)
    inverse = inverse.reshape(-1).astype(np.int64)
    return inverse, int(inverse.max()) + 1


def run_kernel(
    world: World,
    hosts: np.ndarray,
    cands: np.ndarray,
    budget: int,
    opts: SpreadOptions,
    phase: str,
    aggregate: str,
) -> tuple[list[Move], Reason]:
    """Run the greedy kernel over ``cands`` and explain its moves."""
    host_cls, n_cls = host_classes(world, hosts)
    before = world.score.copy()
    origin = world.vm_host.copy()  # a VM moves at most once, so this is its source
    _, combined = imbalance(world, hosts)
    mv, after, code = kernels.greedy_spread(
        hosts, cands, host_cls, n_cls, min(budget, cands.size), opts.min_improvement,
        opts.stop_below_threshold, world.threshold, opts.prune, world.arrays(),
    )  # fmt: skip
    moves = []
    for k in range(mv.shape[0]):
        v, b = int(mv[k, 0]), int(mv[k, 1])
        a = int(origin[v])
        reason = describe_move(world, v, a, b, before, combined, float(after[k]))
        gain = Reason("spread.gain", before=combined, after=float(after[k]))
        moves.append(Move(v, a, b, aggregate, phase, "live-migrate", (gain,), reason, float(after[k])))
        before[a] -= world.load[v] / world.sc[a]
        before[b] += world.load[v] / world.sc[b]
        combined = float(after[k])
    stop = _STOPS[int(code)] if mv.shape[0] < budget else _STOPS[kernels.STOP_BUDGET]
    return moves, stop


def plan_spread(
    world: World, aggregate: str, hosts: np.ndarray, budget: int, opts: SpreadOptions
) -> AggregateOutcome:
    why = gate(world, hosts, opts)
    if why is not None:
        return AggregateOutcome(skipped=why)
    cands = candidates(world, hosts)
    if cands.size == 0:
        return AggregateOutcome(skipped=Reason("aggregate.no_movable"))
    if budget <= 0:
        return AggregateOutcome(skipped=Reason("aggregate.budget_zero"))
    moves, stop = run_kernel(world, hosts, cands, budget, opts, "spread", aggregate)
    return AggregateOutcome(moves=tuple(moves), notes=(stop,))
