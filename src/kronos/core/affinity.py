"""Affinity repair (phase ``affinity``): fix server-group violations Nova let through.

Runs before balancing and shares its budget. Anti-affinity kinds: members
beyond the per-host limit move, each to the feasible host (below the limit)
that leaves the lowest combined imbalance. Affinity kinds: members gather on
the host that already holds most of them (fewest moves), lowest index on ties.
Every repair strictly lowers the group's violation measure and keeps every
other rule. What cannot be repaired is reported, with the reason.
"""

from __future__ import annotations

import attrs
import numpy as np

from kronos.core import kernels, rules
from kronos.core.arrays import GROUP_KIND_NAMES, World, imbalance, value_arrays
from kronos.core.model import Reason
from kronos.core.moves import AggregateOutcome, Move, cells_taken, describe_move
from kronos.core.options import AffinityOptions
from kronos.core.phases import AFFINITY
from kronos.core.reasons import render

LIVE = rules.Movement(AFFINITY)


def repair(
    world: World, aggregate: str, hosts: np.ndarray, budget: int, opts: AffinityOptions
) -> AggregateOutcome:
    """Repair moves (at most ``budget``) and the violations left (``unrepaired``)."""
    kinds = {
        k
        for k, on in (
            (0, opts.enforce_hard_affinity),
            (1, opts.enforce_hard_affinity),
            (2, opts.enforce_soft_affinity),
            (3, opts.enforce_soft_affinity),
        )
        if on
    }
    if not kinds:
        return AggregateOutcome()
    in_agg = np.zeros(len(world.host_names), dtype=np.bool_)
    in_agg[hosts] = True
    moves: list[Move] = []
    left: list[Reason] = []
    may_move = rules.movable(world, LIVE)
    for g in range(world.g_kind.size):
        kind = int(world.g_kind[g])
        if kind not in kinds:
            continue
        members = [int(v) for v in np.flatnonzero(world.group == g) if in_agg[world.vm_host[v]]]
        if not members:
            continue
        rule = f"repair.{GROUP_KIND_NAMES[kind]}"
        label = world.g_names[g]
        if kind in (1, 3):
            lim = int(world.g_lim[g])
            for h in hosts:
                excess = int(world.g_cnt[g, h]) - lim
                if excess <= 0:
                    continue
                why = Reason(
                    rule, group=label, host=world.host_names[h], count=int(world.g_cnt[g, h]), limit=lim
                )
                on_h = [v for v in members if world.vm_host[v] == h]
                for v in on_h:
                    if excess == 0:
                        break
                    if len(moves) >= budget:
                        left.append(attrs.evolve(why, detail="budget"))
                        excess = 0
                        break
                    if not may_move[v] or world.moved[v]:
                        continue
                    dests = hosts[world.g_cnt[g, hosts] < lim]
                    move = _best(world, v, dests, hosts, aggregate, why)
                    if move is not None:
                        moves.append(move)
                        excess -= 1
                if excess > 0:
                    left.append(attrs.evolve(why, detail="no_host"))
        else:
            counts = world.g_cnt[g, hosts]
            if (world.g_cnt[g] > 0).sum() > (counts > 0).sum():
                left.append(
                    Reason("repair.outside", group=label, aggregate=aggregate, detail=GROUP_KIND_NAMES[kind])
                )
            if (counts > 0).sum() <= 1:
                continue
            # members that cannot move pin the target; otherwise the fullest host
            pinned = {int(world.vm_host[v]) for v in members if not may_move[v] or world.moved[v]}
            target = pinned.pop() if len(pinned) == 1 else int(hosts[int(np.argmax(counts))])
            why = Reason(rule, group=label, host=world.host_names[target], count=int((counts > 0).sum()))
            stuck = 0
            for v in members:
                if world.vm_host[v] == target:
                    continue
                if len(moves) >= budget:
                    left.append(attrs.evolve(why, detail="budget"))
                    stuck = 0
                    break
                move = None
                if may_move[v] and not world.moved[v]:
                    move = _best(world, v, np.array([target]), hosts, aggregate, why)
                if move is None:
                    stuck += 1
                else:
                    moves.append(move)
            if stuck:
                left.append(attrs.evolve(why, detail="stuck", value=stuck))
    return AggregateOutcome(moves=tuple(moves), unrepaired=tuple(left))


def _best(
    world: World, v: int, dests: np.ndarray, hosts: np.ndarray, aggregate: str, why: Reason
) -> Move | None:
    """Apply and return the lowest-imbalance feasible move of v to one of ``dests``."""
    P = world.pw.size
    var, tot = np.zeros(P), np.zeros(P)
    n, before = kernels.stats(hosts, world.active, world.score, world.pw, var, tot)
    a = int(world.vm_host[v])
    w = world.arrays()
    best, best_val = -1, np.inf
    for b in dests:
        if not rules.feasible(v, a, int(b), w, True):
            continue
        val = kernels.move_value(v, a, int(b), max(n, 1), var, tot, *value_arrays(world))
        if val < best_val:
            best, best_val = int(b), val
    if best < 0:
        return None
    score_before = world.score.copy()
    kernels.apply_move(v, best, w)
    _, after = imbalance(world, hosts)
    reason = f"{render(why)}; " + describe_move(world, v, a, best, score_before, before, after)
    return Move(
        v,
        a,
        best,
        aggregate,
        AFFINITY,
        "live-migrate",
        (why,),
        reason,
        after,
        numa_cells=cells_taken(world, v),
    )
