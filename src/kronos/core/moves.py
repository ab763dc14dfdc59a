"""What every planning phase returns: moves with their records, and per-aggregate outcomes.

Records (:class:`~kronos.core.model.Reason`) say why; the ``reason`` of a
move is its records rendered, followed by what it does to the numbers.
"""

from __future__ import annotations

import numpy as np
from attrs import field, frozen

from kronos.core.arrays import World
from kronos.core.model import RESOURCES, Optimality, Reason, Unplaced


@frozen
class Move:
    vm: int
    source: int
    destination: int
    aggregate: str
    phase: str
    action: str
    why: tuple[Reason, ...]
    reason: str  # the records rendered, then the effect on both hosts
    combined_after: float
    #: a VM's second move in one plan says why (FORMATS.md §2)
    repeat_reason: str | None = None
    #: the destination NUMA cells the move assumes (FORMATS.md §4)
    numa_cells: tuple[int, ...] | None = None


@frozen
class AggregateOutcome:
    """A phase's result for one aggregate: its moves, or why it was skipped."""

    moves: tuple[Move, ...] = ()
    skipped: Reason | None = None
    notes: tuple[Reason, ...] = ()
    unplaced: tuple[Unplaced, ...] = ()
    unrepaired: tuple[Reason, ...] = ()
    hosts_lower_bound: int | None = None
    hosts_to_enable: tuple[str, ...] = ()
    post_drain: dict[str, str] = field(factory=dict)
    #: FORMATS §6: the exact solver's figures (pack with ``solver=exact``)
    optimality: Optimality | None = None
    #: FORMATS §5: the planned-on combined imbalance before and after, when spread planned
    #: on a forecast (``plan_on`` forecast or max)
    forecast: tuple[float, float] | None = None


def cells_taken(world: World, v: int) -> tuple[int, ...] | None:
    """The ids of the NUMA cells v holds on its host now, for the step that just put it there."""
    b = int(world.vm_host[v])
    if world.vm_n[v] == 0 or world.n_cells[b] == 0:
        return None
    mask = int(world.vm_cells[v])
    return tuple(int(world.cell_ids[b, c]) for c in range(int(world.n_cells[b])) if (mask >> c) & 1)


@frozen
class GroupOutcome:
    """A balancing phase's result for a group of aggregates: each one's outcome, and the
    moves of all of them in plan order (interleaved when the aggregates share hosts)."""

    outcomes: dict[str, AggregateOutcome]
    moves: tuple[Move, ...]


def describe_move(
    world: World,
    v: int,
    a: int,
    b: int,
    score_before: np.ndarray,
    combined_before: float,
    combined_after: float,
) -> str:
    """`vm-1 cmp-017 → cmp-042: cmp-017 cpu 0.91 → 0.84 ...; combined 0.0810 → 0.0740`.

    ``score_before`` is H×P, the scores just before this move.
    """
    parts = []
    for h, sign in ((a, -1.0), (b, 1.0)):
        cells = []
        for p, name in enumerate(world.policy_names):
            old = score_before[h, p]
            new = old + sign * world.load[v, p] / world.sc[h, p]
            cells.append(f"{name} {old:.3f} → {new:.3f}")
        parts.append(f"{world.host_names[h]} " + ", ".join(cells))
    who = world.vm_names[v] or world.vm_ids[v]
    return (
        f"{who} {world.host_names[a]} → {world.host_names[b]}: "
        + "; ".join(parts)
        + f"; combined {combined_before:.4f} → {combined_after:.4f}"
    )


def describe_arrival(world: World, v: int, a: int, b: int, why: str) -> str:
    """What a move does to its destination, after it is applied:

    `empty cmp-003 (2 VMs): vm-1 cmp-003 → cmp-007 (vcpus 40→44/64, …; cpu-pack 0.41→0.45)`.
    """
    cells = []
    for r, name in enumerate(RESOURCES):
        before = world.used[b, r] - world.size[v, r]
        cells.append(f"{name} {before:g}→{world.used[b, r]:g}/{world.cap[b, r]:g}")
    for p, name in enumerate(world.policy_names):
        new = world.score[b, p]
        cells.append(f"{name} {new - world.load[v, p] / world.sc[b, p]:.3f}→{new:.3f}")
    who = world.vm_names[v] or world.vm_ids[v]
    return f"{why}: {who} {world.host_names[a]} → {world.host_names[b]} ({', '.join(cells)})"
