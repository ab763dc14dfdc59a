"""Two moves together, for spread: swaps and chains, tried where no single move helps.

Why: the greedy stops where no single move lowers the combined imbalance,
and in a tight cloud that is often early. The coldest hosts are full (a
move there breaks capacity or a server group), or the VMs are coarse, so
that any one move overshoots. Two moves made together get past both:

- a **swap**: v goes from the hot host a to the cold host b, and a smaller
  u goes from b to a; only the difference of their loads crosses over;
- a **chain**: u leaves b for a third host c, making the room (or taking
  the group member away) that v needs to come from a to b.

Each pair is two ordinary steps, each valid when it runs, in whichever of
the two orders works. (A swap between two full hosts has no such order; one
VM could *park* on a third host first, a third step. Tried on tight clouds,
parking swaps did worse than spending the steps on other pairs: 13 % against
15 % less imbalance at budget 40, so there are none.) The first may raise
the combined imbalance (that is why no single move was found), but never
above what the aggregate had before the plan, so a plan stopped half-way
still leaves nothing worse. The budget counts every step. The caller
(:func:`kronos.core.spread._pair`) passes only VMs that are on their own
host (unmoved in the plan, or moved away and back). Aggregates that share
hosts with others are not searched (their moves must keep the other
aggregates, which the single-move kernel checks and this search does not).

The search is bounded: VMs of the :data:`HOT` busiest hosts with VMs of the
:data:`COLD` least busy ones, the third host among the :data:`THIRD`
least busy and the :data:`THIRD` with the most free room. Every candidate's
combined imbalance after both moves is computed at once (numpy, the
variance update of :func:`kronos.core.kernels.move_value` for two or three
hosts); the rule table's walk screens them, best first, and the survivors
are tried for real on the world, in order, until one holds.
"""

from __future__ import annotations

import numpy as np
from attrs import frozen

from kronos.core import kernels, rules
from kronos.core.arrays import Arrays, World, weighted

#: busiest hosts whose VMs may leave, least busy hosts whose VMs may make room
HOT, COLD = 4, 8
#: third hosts a chain may send the room-making VM to: this many least busy, this many roomiest
THIRD = 8
#: candidates tried on the world, best first, before giving up
TRIES = 64
#: candidate (v, u, c) triples a search may cost for it to run before every single move
#: (:func:`cheap`); beyond, pairs are tried only where single moves stall
WEIGH_WORK = 400_000
#: rounds in a row in which no pair beats the single moves before weighing stops (pairs are
#: still tried where single moves stall): where the cloud is not tight, pairs seldom win
MISSES = 4
EPS = 1e-12


@frozen
class Pair:
    """Two moves to make in this order, each (VM, destination)."""

    moves: tuple[tuple[int, int], tuple[int, int]]
    value: float  # the combined imbalance after both, plus what moving them costs (move_cost)


def best_pair(
    world: World,
    hosts: np.ndarray,
    cands: np.ndarray,
    limit: float,
    ceiling: float,
    pen: np.ndarray,
) -> Pair | None:
    """The best swap or chain of ``cands`` within the aggregate ``hosts`` that takes its
    combined imbalance (plus both VMs' ``pen``) below ``limit`` without its first move
    taking it above ``ceiling``; None if none of the candidates holds."""
    act = hosts[world.active[hosts]]
    if act.size < 3 or cands.size < 2:
        return None
    P = world.pw.size
    var, tot = np.zeros(P), np.zeros(P)
    n, _ = kernels.stats(hosts, world.active, world.score, world.pw, var, tot)
    combined = weighted(world.score[act], world.pw)
    order = act[np.argsort(combined, kind="stable")]
    hot, cold = order[::-1][:HOT], order[:COLD]
    cold = cold[~np.isin(cold, hot)]
    # the tightest of the classes a host has (a class it lacks, PCPU or a device, is no room)
    cap, free = world.cap[act], world.cap[act] - world.used[act]
    room = np.where(cap > EPS, free / np.maximum(cap, EPS), np.inf).min(axis=1)
    third = np.unique(np.concatenate([order[:THIRD], act[np.argsort(-room, kind="stable")[:THIRD]]]))
    found: list[tuple[float, int, int, int, int, int]] = []  # value, v, a, u, b, c
    on = world.vm_host[cands]
    for a in hot.tolist():
        vs = cands[on == a]
        if not vs.size:
            continue
        for b in cold.tolist():
            us = cands[on == b]
            if us.size:
                found.extend(_candidates(world, n, var, tot, vs, a, us, b, third, limit, pen))
    found.sort()
    w = world.arrays()
    for _, v, _a, u, b, c in found[:TRIES]:
        for moves in (((u, c), (v, b)), ((v, b), (u, c))):
            after = _try(world, w, hosts, moves, ceiling)
            if after is not None and after + pen[v] + pen[u] < limit:
                return Pair(moves, float(after + pen[v] + pen[u]))
    return None


def cheap(world: World, hosts: np.ndarray, cands: np.ndarray) -> bool:
    """Is a pair search here cheap enough to weigh before every single move? It costs about
    HOT × COLD host pairs × (VMs per host)² × third hosts: fine at 25 VMs a host, ~10 ms a
    round at 100 (a 50-host, 5 000-VM aggregate), which would multiply the plan's time."""
    act = int(world.active[hosts].sum())
    if act < 3:
        return False
    per_host = cands.size / act
    return HOT * COLD * per_host * per_host * (2 * THIRD + 1) <= WEIGH_WORK


def _candidates(
    world: World,
    n: int,
    var: np.ndarray,
    tot: np.ndarray,
    vs: np.ndarray,
    a: int,
    us: np.ndarray,
    b: int,
    third: np.ndarray,
    limit: float,
    pen: np.ndarray,
) -> list[tuple[float, int, int, int, int, int]]:
    """Every (v, u, c) of v: a -> b and u: b -> c (c = a: a swap) whose combined imbalance
    after both is below ``limit`` and whose end state the rule walk lets in, in one of
    the two orders."""
    cs = third[(third != a) & (third != b)]
    dests = np.concatenate([[a], cs]).astype(np.int64)  # column 0: the swap
    S, sc, load, pw = world.score, world.sc, world.load, world.pw
    swap = (dests == a)[None, None, :]
    value = np.zeros((vs.size, us.size, dests.size))
    for p in range(pw.size):
        lv = load[vs, p][:, None, None]
        lu = load[us, p][None, :, None]
        da = -lv / sc[a, p] + np.where(swap, lu / sc[a, p], 0.0)
        db = (lv - lu) / sc[b, p]
        dc = np.where(swap, 0.0, lu / sc[dests, p])
        dq = 2 * S[a, p] * da + da * da + 2 * S[b, p] * db + db * db + 2 * S[dests, p] * dc + dc * dc
        dt = da + db + dc
        nv = var[p] + dq / n - (2 * tot[p] * dt + dt * dt) / (n * n)
        value += pw[p] * np.sqrt(np.maximum(nv, 0.0))
    value += pen[vs][:, None, None] + pen[us][None, :, None]
    good = value < limit
    if not good.any():
        return []
    iv, iu, ic = np.nonzero(good & _screen(world, vs, a, us, b, dests))
    return [
        (float(value[i, j, k]), int(vs[i]), a, int(us[j]), b, int(dests[k]))
        for i, j, k in zip(iv.tolist(), iu.tolist(), ic.tolist(), strict=True)
    ]


def _walk(w: Arrays, vs: np.ndarray, a: int, dsts: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """PASS mask of the rule walk for the flat pairs (vs[i] on a -> dsts[i], xs[i] leaving first)."""
    out = np.empty(max(vs.size, dsts.size, xs.size), dtype=np.int64)
    src = np.array([a], dtype=np.int64)
    rules.walk(vs, src, dsts, xs, rules.BALANCING, False, -1, np.zeros(0, dtype=np.bool_), False, out, w)
    passed: np.ndarray = out == rules.PASS
    return passed


def _screen(world: World, vs: np.ndarray, a: int, us: np.ndarray, b: int, dests: np.ndarray) -> np.ndarray:
    """Which (v, u, c) may go in one of the two orders, as the walk sees them from here:
    u first (u -> c now, then v -> b with u gone) or v first (v -> b now, then u -> c,
    v gone from a when c is a). The walk ignores a leaving group member, so this may turn
    down a pair that would hold, never let in one that does not (:func:`_try` decides)."""
    w = world.arrays()
    V, U, C = vs.size, us.size, dests.size
    none = np.array([-1], dtype=np.int64)
    v_now = _walk(w, vs, a, np.array([b], dtype=np.int64), none)  # V
    v_after = _walk(w, np.repeat(vs, U), a, np.array([b], dtype=np.int64), np.tile(us, V)).reshape(V, U)
    u_now = _walk(w, np.repeat(us, C), b, np.tile(dests, U), none).reshape(U, C)
    u_after = _walk(w, np.tile(us, V), b, np.array([a], dtype=np.int64), np.repeat(vs, U)).reshape(V, U)
    u_first = u_now[None, :, :] & v_after[:, :, None]
    later = np.concatenate([u_after[:, :, None], np.broadcast_to(u_now[None, :, 1:], (V, U, C - 1))], axis=2)
    ok: np.ndarray = u_first | (v_now[:, None, None] & later)
    return ok


def _try(
    world: World,
    w: Arrays,
    hosts: np.ndarray,
    moves: tuple[tuple[int, int], ...],
    ceiling: float,
) -> float | None:
    """Make ``moves`` on the world in order, each checked by the whole rule table, then undo
    them; the combined imbalance they end at if every move held and no prefix went above
    ``ceiling``, else None."""
    P = world.pw.size
    var, tot = np.zeros(P), np.zeros(P)
    vms = [x for x, _ in moves]
    srcs = [int(world.vm_host[x]) for x in vms]
    moved = world.moved[vms].copy()
    # a VM that is not going home takes cells anew: put back the ones it and its hosts had
    touched = sorted({*srcs, *(d for _, d in moves)})
    cells, used = world.vm_cells[vms].copy(), world.cell_used[touched].copy()
    # and the hosts' scores and use as they were, not as the undo's arithmetic leaves them
    scores, taken = world.score[touched].copy(), world.used[touched].copy()
    done: list[tuple[int, int]] = []
    after: float | None = None
    for x, dest in moves:
        src = int(world.vm_host[x])
        if not rules.feasible(x, src, dest, w, True):
            after = None
            break
        kernels.apply_move(x, dest, w)
        done.append((x, src))
        _, after = kernels.stats(hosts, world.active, world.score, world.pw, var, tot)
        if len(done) < len(moves) and after > ceiling:
            after = None
            break
    for x, src in reversed(done):
        kernels.apply_move(x, src, w)
    world.moved[vms], world.vm_cells[vms], world.cell_used[touched] = moved, cells, used
    world.score[touched], world.used[touched] = scores, taken
    return after
