"""Spread: greedy best single move per round, minimising the combined imbalance.

Each round asks :func:`kronos.core.kernels.best_move` for the best move of
every aggregate being balanced and applies the one that lowers its
aggregate's combined imbalance most. Aggregates that share hosts are
balanced together in one such loop (a *group*): a move never leaves any
other aggregate more imbalanced, and when one aggregate's move opens a
better move in another, the loop takes it, so the group ends where no single
move helps any of them, which is where a plan made again on the result
starts (and stops). This module also decides whether an aggregate should be
planned at all (thresholds, ``min_load``, ``min_diff_ratio``), tidies the
moves (:func:`tidy`) and explains them.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import numpy as np
from attrs import define

from kronos.core import exact_spread, kernels, pairs, rules
from kronos.core.arrays import Overlap, World, imbalance, weighted
from kronos.core.model import Reason
from kronos.core.moves import AggregateOutcome, GroupOutcome, Move, cells_taken, describe_move
from kronos.core.options import SpreadOptions
from kronos.core.outlook import planned, unsustained
from kronos.core.phases import SPREAD
from kronos.core.reasons import render

LIVE = rules.Movement(SPREAD)  # balancing live-migrates: ACTIVE VMs only
BUDGET, NO_GAIN, BALANCED = (
    Reason("spread.stop_budget"),
    Reason("spread.stop_no_gain"),
    Reason("spread.stop_balanced"),
)


def gate(world: World, hosts: np.ndarray, opts: SpreadOptions) -> Reason | None:
    """Why this aggregate should not be balanced now, or None to go ahead."""
    act = hosts[world.active[hosts]]
    if act.size < 2:
        return Reason("aggregate.too_few_hosts", count=int(act.size))
    std, _ = imbalance(world, hosts)
    over = std > world.threshold
    if not over.any():
        return Reason("aggregate.balanced")
    combined = weighted(world.score[act], world.pw)
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


def overlap(world: World, aggregate: str) -> Overlap:
    """The other aggregates that share a host with ``aggregate``, as the kernels read them."""
    mine = set(world.aggregates[aggregate].tolist())
    others = [
        hosts for name, hosts in world.aggregates.items() if name != aggregate and mine & set(hosts.tolist())
    ]
    H, P = len(world.host_names), world.pw.size
    held: list[list[int]] = [[] for _ in range(H)]
    for x, hosts in enumerate(others):
        for h in hosts.tolist():
            held[h].append(x)
    ov = Overlap(
        ptr=np.cumsum([0, *(len(h) for h in others)]).astype(np.int64),
        hosts=np.concatenate(others).astype(np.int64) if others else np.zeros(0, dtype=np.int64),
        hptr=np.cumsum([0, *(len(x) for x in held)]).astype(np.int64),
        haggs=np.array([x for xs in held for x in xs], dtype=np.int64),
        var=np.zeros((len(others), P)),
        tot=np.zeros((len(others), P)),
        n=np.zeros(len(others), dtype=np.int64),
        cur=np.zeros(len(others)),
    )
    for x, hosts in enumerate(others):
        n, comb = kernels.stats(hosts, world.active, world.score, world.pw, ov.var[x], ov.tot[x])
        ov.n[x], ov.cur[x] = n, comb
    return ov


def host_classes(world: World, hosts: np.ndarray) -> tuple[np.ndarray, int]:
    """Score-capacity class of each host (equal rows of ``sc`` share a class)."""
    if hosts.size == 0:
        return np.zeros(0, dtype=np.int64), 1
    _, inverse = np.unique(world.sc[hosts], axis=0, return_inverse=True)
    inverse = inverse.reshape(-1).astype(np.int64)
    return inverse, int(inverse.max()) + 1


@define
class _Side:
    """One aggregate of a group, as the greedy loop sees it."""

    name: str
    hosts: np.ndarray
    cands: np.ndarray
    host_cls: np.ndarray
    n_cls: int
    budget: int
    ov: Overlap
    var: np.ndarray
    tot: np.ndarray
    member: np.ndarray  # H b1: the aggregate's hosts
    #: weigh a pair of moves against every single move, not only where single moves stall
    #: (where the pair search is cheap: :func:`kronos.core.pairs.cheap`)
    weigh_pairs: bool = False
    #: rounds in a row where no pair beat the single moves (past pairs.MISSES: weighing stops),
    #: and whether a pair ever did
    misses: int = 0
    weighed: bool = False
    #: the combined imbalance before the plan: no prefix of the plan may leave it higher
    ceiling: float = np.inf
    #: the VMs single moves may move: after a pair, those on their own host (a VM away from
    #: home at a pair stays, so nothing undoes the pair); None: all of ``cands``
    singles: np.ndarray | None = None
    steps: int = 0
    stop: Reason = NO_GAIN


def _greedy(
    world: World,
    sides: list[_Side],
    opts: SpreadOptions,
    seq: list[tuple[int, int, str]],
    pen: np.ndarray,
    linked: list[tuple[tuple[int, int, str], ...]],
) -> None:
    """Best single moves, the best of all sides each round, until no side has one; then a
    pair of moves (:mod:`kronos.core.pairs`) where that is on, and single moves again.
    Where a pair search is cheap (``weigh_pairs``) a pair is also weighed against every
    single move, and made when it gains more than the single moves it would replace."""
    w = world.arrays()
    no_gain = NO_GAIN if opts.move_cost <= 0 else Reason("spread.stop_no_gain", limit=opts.move_cost)
    while True:
        best: tuple[float, int, int, _Side] | None = None
        for side in sides:
            n, cur = kernels.stats(side.hosts, world.active, world.score, world.pw, side.var, side.tot)
            if side.steps >= side.budget:
                side.stop = BUDGET
                continue
            if opts.stop_below_threshold and (np.sqrt(side.var) <= world.threshold).all():
                side.stop = BALANCED
                continue
            # a VM another aggregate of the group moved off these hosts is not this one's to move
            here = side.cands if side.singles is None else side.singles
            if len(sides) > 1:
                here = here[side.member[world.vm_host[here]]]
            v, b, val = kernels.best_move(side.hosts, here, side.host_cls, side.n_cls,
                                          cur - opts.min_improvement, opts.prune, w, True, side.var,
                                          side.tot, n, side.ov, pen)  # fmt: skip
            side.stop = no_gain
            if v >= 0 and (best is None or cur - val > best[0]):
                best = (cur - val, int(v), int(b), side)
        if best is None:
            if opts.pair_moves and _pair(world, sides, opts, seq, pen, linked):
                continue
            return
        gain, v, b, side = best
        if opts.pair_moves and side.weigh_pairs and side.misses < pairs.MISSES:
            if _pair(world, [side], opts, seq, pen, linked, (gain, _next_gain(world, side, v, b, opts, pen))):
                side.misses, side.weighed = 0, True
                continue
            side.misses += 1
        a = int(world.vm_host[v])
        kernels.apply_move(v, b, w)
        for other in sides:
            if other.ov.n.size:  # aggregates that share a host with this one
                kernels.refresh_others(a, other.ov, w)
                kernels.refresh_others(b, other.ov, w)
        side.steps += 1
        seq.append((v, b, side.name))


def _pair(
    world: World,
    sides: list[_Side],
    opts: SpreadOptions,
    seq: list[tuple[int, int, str]],
    pen: np.ndarray,
    linked: list[tuple[tuple[int, int, str], ...]],
    gains: tuple[float, float] = (0.0, 0.0),
) -> bool:
    """Make the best swap or chain (:mod:`kronos.core.pairs`) of the first side that has
    one, among sides that share no host with another aggregate and have budget for two
    steps. It must cut the combined imbalance by more than ``min_improvement`` and by more
    than the two single moves it would replace: the best one (``gains[0]``) and the best
    after it (``gains[1]``). False if there is none."""
    w = world.arrays()
    P = world.pw.size
    for side in sides:
        if side.ov.n.size or side.steps + 2 > side.budget or side.stop.rule != NO_GAIN.rule:
            continue
        _, cur = kernels.stats(side.hosts, world.active, world.score, world.pw, np.zeros(P), np.zeros(P))
        limit = cur - max(opts.min_improvement, sum(gains))
        fresh = _at_home(world, side.cands)  # a pair moves VMs that are where the plan found them
        found = pairs.best_pair(world, side.hosts, fresh, limit, side.ceiling, pen)
        if found is None:
            continue
        for v, b in found.moves:
            kernels.apply_move(v, b, w)
            seq.append((v, b, side.name))
        linked.append(tuple(seq[-2:]))
        # every VM away from home stays: the pair relies on where they are (a later move could
        # otherwise bring home a VM whose move made the room the pair took)
        side.singles = _at_home(world, side.cands)
        side.steps += 2
        return True
    return False


def _at_home(world: World, vms: np.ndarray) -> np.ndarray:
    """Those of ``vms`` on the host the snapshot has them on. A VM that went away and came
    back counts as one that never moved: :func:`tidy` drops its round trip, so freezing it
    would leave a move that a plan made again on the result finds (sweep snapshot 71254)."""
    at_home: np.ndarray = vms[world.vm_host[vms] == world.home[vms]]
    return at_home


def _next_gain(world: World, side: _Side, v: int, b: int, opts: SpreadOptions, pen: np.ndarray) -> float:
    """What the best single move after moving v to b would gain (0: none): a pair is worth
    its two steps when it gains more than these two single moves together."""
    w = world.arrays()
    a = int(world.vm_host[v])
    moved, cells, used = bool(world.moved[v]), int(world.vm_cells[v]), world.cell_used[[a, b]].copy()
    scores, taken = world.score[[a, b]].copy(), world.used[[a, b]].copy()
    kernels.apply_move(v, b, w)
    n, cur = kernels.stats(side.hosts, world.active, world.score, world.pw, side.var, side.tot)
    cands = side.cands if side.singles is None else side.singles
    nv, _, val = kernels.best_move(side.hosts, cands, side.host_cls, side.n_cls,
                                  cur - opts.min_improvement, opts.prune, w, True, side.var,
                                  side.tot, n, side.ov, pen)  # fmt: skip
    kernels.apply_move(v, a, w)
    world.moved[v], world.vm_cells[v], world.cell_used[[a, b]] = moved, cells, used
    world.score[[a, b]], world.used[[a, b]] = scores, taken  # exactly, not as the undo adds up
    return float(cur - val) if nv >= 0 else 0.0


def _side(world: World, name: str, cands: np.ndarray, budget: int) -> _Side:
    hosts = world.aggregates[name]
    host_cls, n_cls = host_classes(world, hosts)
    P = world.pw.size
    member = np.zeros(len(world.host_names), dtype=np.bool_)
    member[hosts] = True
    ov = overlap(world, name)
    side = _Side(name, hosts, cands, host_cls, n_cls, budget, ov, np.zeros(P), np.zeros(P), member)
    side.weigh_pairs = not ov.n.size and pairs.cheap(world, hosts, cands)
    return side


def _why_not(
    world: World, view: World, name: str, cands: np.ndarray, budget: int, opts: SpreadOptions
) -> Reason | None:
    """Why aggregate ``name`` is not balanced in this plan, or None: the gate on what is
    planned on (``view``), then whether its imbalance lasted (``min_sustained``)."""
    hosts = world.aggregates[name]
    why = gate(view, hosts, opts)
    if why is None and opts.min_sustained > 0 and world.history is not None:
        why = unsustained(world, world.history, hosts, opts.min_sustained)
    if why is None and not cands.size:
        why = Reason("aggregate.no_movable")
    if why is None and budget <= 0:
        why = Reason("aggregate.budget_zero")
    return why


def _search(
    view: World,
    start: World,
    sides: list[_Side],
    opts: SpreadOptions,
    pen: np.ndarray,
    linked: list[tuple[tuple[int, int, str], ...]],
) -> list[tuple[int, int, str]]:
    """Greedy rounds on ``view`` (from ``start``), tidied, until tidying frees no budget;
    ``linked``: the moves made together (:func:`_pair`), in order."""
    seq: list[tuple[int, int, str]] = []
    for side in sides:
        side.ceiling = imbalance(start, side.hosts)[1] + kernels.OVERLAP_EPS
    while True:
        found = len(seq)
        _greedy(view, sides, opts, seq, pen, linked)
        tidied = tidy(start, seq)
        shortened = len(tidied) < len(seq)
        seq = tidied
        for side in sides:
            side.steps = sum(1 for _, _, name in seq if name == side.name)
        if not shortened or len(seq) == found:
            return seq


def _better_of(
    view: World,
    start: World,
    sides: list[_Side],
    seq: list[tuple[int, int, str]],
    linked: list[tuple[tuple[int, int, str], ...]],
    opts: SpreadOptions,
    pen: np.ndarray,
) -> tuple[list[tuple[int, int, str]], list[tuple[tuple[int, int, str], ...]], list[_Side]]:
    """The search weighed pairs against single moves (``view`` is where it ended): search
    again from ``start`` with single moves first and pairs only where they stall, and keep
    the better end (on a tie, the second). That one starts as the single-move greedy and
    only improves on it, so weighing pairs never leaves an aggregate worse than single
    moves would; and either end is one where no single move and no pair helps, so a plan
    made again on the result finds nothing. ``view`` ends where the kept moves end."""
    ends = [imbalance(view, side.hosts)[1] for side in sides]
    _restore(view, start)
    plain = [_side(view, side.name, side.cands, side.budget) for side in sides]
    for side in plain:
        side.weigh_pairs = False
    plain_linked: list[tuple[tuple[int, int, str], ...]] = []
    plain_seq = _search(view, start, plain, opts, pen, plain_linked)
    lower = zip(ends, plain, strict=True)
    if not all(end < imbalance(view, side.hosts)[1] - kernels.OVERLAP_EPS for end, side in lower):
        return plain_seq, plain_linked, plain
    _restore(view, start)
    w = view.arrays()
    for v, b, _ in seq:
        kernels.apply_move(v, b, w)
    return seq, linked, sides


def _feasible_now(world: World, seq: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """The moves of ``seq`` (planned on forecast scores) that the present allows, in order:
    Nova and the checker judge a plan by the snapshot's scores, not by a forecast's."""
    now = world.copy()
    w = now.arrays()
    kept = []
    for v, b, name in seq:
        a = int(now.vm_host[v])
        if a in now.aggregates[name] and rules.feasible(v, a, b, w, True):
            kernels.apply_move(v, b, w)
            kept.append((v, b, name))
    return kept


def _restore(world: World, start: World) -> None:
    """Put ``world``'s arrays back as ``start`` has them (a search is started again)."""
    for f in attrs.fields(World):
        value = getattr(world, f.name)
        if isinstance(value, np.ndarray):
            value[...] = getattr(start, f.name)


def _penalty(world: World, opts: SpreadOptions) -> np.ndarray:
    """What each VM's move costs in combined imbalance: ``move_cost`` per GiB of its memory."""
    return opts.move_cost * world.size[:, 1] / 1024.0  # size column 1: memory_mb


def plan_spread(world: World, group: list[str], budgets: dict[str, int], opts: SpreadOptions) -> GroupOutcome:
    """Balance ``group`` (aggregates that share hosts, or one alone), each within its budget.

    Planned on ``world.outlook`` when the options look ahead; the moves are then
    kept where the present allows them, applied to ``world`` and described on
    present scores. ``min_gain``: an aggregate whose plan cuts the planned-on
    combined imbalance by less is left out and the rest planned again.
    """
    outcomes: dict[str, AggregateOutcome] = {}
    exact: dict[str, exact_spread.Result | Reason] = {}
    view = planned(world, world.outlook)
    cands_of = {name: candidates(world, world.aggregates[name]) for name in group}
    names = []
    for name in group:
        why = _why_not(world, view, name, cands_of[name], budgets[name], opts)
        if why is not None:
            outcomes[name] = AggregateOutcome(skipped=why)
        else:
            names.append(name)
    if not names:
        return GroupOutcome(outcomes, ())
    start = view.copy()
    now = start if view is world else world.copy()
    pen = _penalty(world, opts)
    # pairs only on present scores: the present may refuse one step of a pair made on a forecast
    # (_feasible_now) and leave the other alone
    search = opts if view is world else attrs.evolve(opts, pair_moves=False)
    figures: dict[str, tuple[float, float]] = {}
    while names:
        sides = [_side(view, name, cands_of[name], budgets[name]) for name in names]
        linked: list[tuple[tuple[int, int, str], ...]] = []
        seq = _search(view, start, sides, search, pen, linked)
        if search.pair_moves and any(side.weighed for side in sides):
            seq, linked, sides = _better_of(view, start, sides, seq, linked, search, pen)
        if opts.exact_seconds > 0:
            exact = _exact(world, view, start, sides, seq, pen, opts)
            kept = [r for r in exact.values() if isinstance(r, exact_spread.Result) and r.exact]
            if kept:
                seq, linked = kept[0].seq, []
                _restore(view, start)
                for v, b, _ in seq:
                    kernels.apply_move(v, b, view.arrays())
        if view is not world:
            seq = _feasible_now(now, seq)
        if world.outlook is None and opts.min_gain <= 0:
            break
        end = exact_spread.replayed(start, seq)
        figures = {
            n: (imbalance(start, world.aggregates[n])[1], imbalance(end, world.aggregates[n])[1])
            for n in names
        }
        low = [
            n
            for n in names
            if opts.min_gain > 0 and any(x[2] == n for x in seq) and _gain(*figures[n]) < opts.min_gain
        ]
        if not low:
            break
        for n in low:
            before, after = figures[n]
            outcomes[n] = AggregateOutcome(
                skipped=Reason(
                    "aggregate.min_gain",
                    value=_gain(before, after),
                    limit=opts.min_gain,
                    before=before,
                    after=after,
                )
            )
        names = [n for n in names if n not in low]
        _restore(view, start)
    if not names:
        return GroupOutcome(outcomes, ())
    if view is not world:
        w = world.arrays()
        for v, b, _ in seq:
            kernels.apply_move(v, b, w)
    cands = np.concatenate([side.cands for side in sides])
    world.moved[cands] = now.moved[cands]
    world.moved[[v for v, _, _ in seq]] = True
    moves = describe(now, seq, linked)
    found = {n for n, r in exact.items() if isinstance(r, exact_spread.Result) and r.exact}
    target = Reason("spread.exact_target")
    moves = [attrs.evolve(m, why=(*m.why, target)) if m.aggregate in found else m for m in moves]
    for side in sides:
        mine = tuple(m for m in moves if m.aggregate == side.name)
        result = exact.get(side.name)
        notes = [None if side.name in found else side.stop, rules.heavier_than_host(now, side.hosts)]
        if isinstance(result, Reason):
            notes.append(result)
        elif result is not None:
            notes.extend(result.notes)
        forecast = None
        if world.outlook is not None:
            forecast = figures[side.name]
            if not world.outlook.with_history[side.hosts].any():
                notes.append(Reason("spread.no_history", detail=world.outlook.plan_on))
        outcomes[side.name] = AggregateOutcome(
            moves=mine,
            notes=tuple(x for x in notes if x is not None),
            forecast=forecast,
            optimality=result.optimality if isinstance(result, exact_spread.Result) else None,
        )
    return GroupOutcome(outcomes, tuple(moves))


def _exact(
    world: World,
    view: World,
    start: World,
    sides: list[_Side],
    seq: list[tuple[int, int, str]],
    pen: np.ndarray,
    opts: SpreadOptions,
) -> dict[str, exact_spread.Result | Reason]:
    """``solver=exact``: the exact search's result for an aggregate planned alone on current
    scores, or why it did not run (the greedy's plan stands)."""
    if view is not world:
        why = Reason(
            "spread.exact_skipped", detail="plan_on is not current (the model plans on present scores)"
        )
        return {side.name: why for side in sides}
    if len(sides) > 1 or sides[0].ov.n.size:
        why = Reason("spread.exact_skipped", detail="the aggregate shares hosts with another")
        return {side.name: why for side in sides}
    side = sides[0]
    return {
        side.name: exact_spread.improve(
            start, side.name, side.hosts, side.cands, side.budget, seq, pen, opts.exact_seconds
        )
    }


def _gain(before: float, after: float) -> float:
    """The relative cut of a combined imbalance (0 when there was none to cut)."""
    return (before - after) / before if before > 0 else 0.0


def _valid(start: World, seq: list[tuple[int, int, str]]) -> bool:
    """Is ``seq`` valid from ``start`` step by step: every rule kept, and no prefix of it
    leaving any aggregate more imbalanced than ``start`` had it (a plan stopped half-way
    must not have made things worse)?"""
    world = start.copy()
    w = world.arrays()
    touched = {h for v, b, _ in seq for h in (int(start.vm_host[v]), b)}
    watch = {n: hosts for n, hosts in world.aggregates.items() if touched & set(hosts.tolist())}
    limit = {n: imbalance(world, hosts)[1] + kernels.OVERLAP_EPS for n, hosts in watch.items()}
    for v, b, name in seq:
        a = int(world.vm_host[v])
        if not (np.isin([a, b], world.aggregates[name]).all() and rules.feasible(v, a, b, w, True)):
            return False
        kernels.apply_move(v, b, w)
        for n, hosts in watch.items():
            if (a in hosts or b in hosts) and imbalance(world, hosts)[1] > limit[n]:
                return False
    return True


def tidy(start: World, seq: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Fewer migrations to the same end: a VM that came back loses its moves, one that moved
    twice moves once, straight to where it ended (in place of its first or its last move,
    within an aggregate holding both hosts), each only where :func:`_valid` still holds."""
    while True:
        runs: dict[int, list[int]] = {}
        for i, (v, _, _) in enumerate(seq):
            runs.setdefault(v, []).append(i)
        shorter = None
        for v, idx in runs.items():
            if len(idx) < 2:
                continue
            rest = [m for i, m in enumerate(seq) if i not in idx]
            origin, end = int(start.vm_host[v]), seq[idx[-1]][1]
            trials = [rest] if end == origin else []
            for k, i in ((0, idx[0]), (len(idx) - 1, idx[-1])):
                name = seq[i][2]
                if end != origin and np.isin([origin, end], start.aggregates[name]).all():
                    trials.append([*rest[: i - k], (v, end, name), *rest[i - k :]])
            shorter = next((t for t in trials if _valid(start, t)), None)
            if shorter is not None:
                break
        if shorter is None:
            return seq
        seq = shorter


def describe(
    start: World,
    seq: list[tuple[int, int, str]],
    linked: Sequence[tuple[tuple[int, int, str], ...]] = (),
) -> list[Move]:
    """Each step of ``seq`` as a Move, with what it does to both hosts, replayed from ``start``;
    moves made together (``linked``, where still side by side and still a gain together) say
    so, the last with what they did together."""
    world = start.copy()
    w = world.arrays()
    P = world.pw.size
    var, tot = np.zeros(P), np.zeros(P)
    seen: set[int] = set()
    moves = []
    before_at: list[float] = []
    for v, b, aggregate in seq:
        hosts = world.aggregates[aggregate]
        _, combined = kernels.stats(hosts, world.active, world.score, world.pw, var, tot)
        before_at.append(combined)
        a = int(world.vm_host[v])
        before = world.score.copy()
        kernels.apply_move(v, b, w)
        _, after = kernels.stats(hosts, world.active, world.score, world.pw, var, tot)
        reason = describe_move(world, v, a, b, before, combined, after)
        gain = Reason("spread.gain", before=combined, after=after)
        again = render(Reason("spread.again")) if v in seen else None
        seen.add(v)
        moves.append(
            Move(
                v,
                a,
                b,
                aggregate,
                SPREAD,
                "live-migrate",
                (gain,),
                reason,
                after,
                again,
                cells_taken(world, v),
            )
        )
    for i, k in _together(seq, linked):
        last = moves[i + k - 1]
        if last.combined_after >= before_at[i]:
            continue  # no longer a gain together where it now runs: not claimed
        for j in range(i, i + k):
            others = dict.fromkeys(world.vm_ids[x] for x, _, _ in seq[i : i + k] if x != seq[j][0])
            done = j == i + k - 1
            record = Reason(
                "spread.together",
                detail=", ".join(others),
                count=k,
                before=before_at[i] if done else None,
                after=last.combined_after if done else None,
            )
            moves[j] = attrs.evolve(moves[j], why=(*moves[j].why, record))
    return moves


def _together(
    seq: list[tuple[int, int, str]], linked: Sequence[tuple[tuple[int, int, str], ...]]
) -> list[tuple[int, int]]:
    """Where each group of ``linked`` still stands side by side in ``seq``: (first index, size)."""
    found: list[tuple[int, int]] = []
    taken: set[int] = set()
    for group in linked:
        k = len(group)
        for i in range(len(seq) - k + 1):
            if tuple(seq[i : i + k]) == group and not taken & set(range(i, i + k)):
                taken.update(range(i, i + k))
                found.append((i, k))
                break
    return found
