"""Exact pack (``solver="exact"``): a CP-SAT model of the target placement, with a proven bound.

Why OR-Tools CP-SAT (the ``exact`` extra): a pack target is a bin-packing
problem with side rules (server groups, per-policy score caps, a move
budget). CP-SAT solves such 0/1 models well on one core, accepts a
warm start (the greedy's placement, so it never starts from nothing),
and reports a proven bound on the optimum as it goes; HiGHS, the
alternative, is a MIP solver whose LP bound on bin packing is the weak
sum-of-sizes bound until branching catches up. OR-Tools is imported only
here and only when ``solver="exact"`` is asked for, so the core stays
importable without it.

Per aggregate, after the greedy pack ran (:func:`improve`):

1. **Model** (:func:`solve`): binary ``x[v,h]`` for every VM that may move
   and every host of the aggregate that the rule table lets it end on
   (:func:`kronos.core.rules.walk` on the snapshot's world with the rules
   that depend on the current placement switched off: host enabled and up,
   AZ, extra specs, traits, CPU compatibility, and NUMA's "has n cells big
   enough"), VMs that may not move fixed where they are; capacity of every
   resource class and ``max_host_score`` of every policy on every host that
   receives a VM; server groups; the budget (VMs that end away from their
   host); the objective: hosts in use, or their summed ``cost_per_hour``,
   then the fewest moves (weighted below any difference in the first).
   It is a *relaxation* of what a plan can do, on purpose, so that
   CP-SAT's bound is a true bound on every plan under the same rules and
   budget: sequencing only makes plans worse; NUMA is checked per host,
   not per cell; groups keep only what one-step-at-a-time rules imply at
   the end (anti-affinity: the violation measure does not grow; affinity:
   the largest gathering does not shrink; gathered affinity groups never
   move, since their first move always breaks them).
2. **Solve**, warm-started from the greedy's placement (``AddHint``), one
   worker and a fixed seed: a plan is the same for the same snapshot
   whenever the solver finishes within ``time_limit``. At the limit it
   stops after as much search as the machine managed, which the plan says
   (``status: timeout``). ``time_limit`` is CP-SAT's own
   ``max_time_in_seconds`` and ``seconds`` its reported wall time: the
   solver's clock, not the core's, which reads none.
3. **Sequence** (:func:`sequence`): the target becomes moves in an order
   that is valid at every step on the real world, each re-checked against
   every rule (NUMA cells included). Moves that cannot go now wait for
   others; when none can go, a VM leaving a host the target empties may go
   where it fits tightest among the hosts the target keeps; failing that,
   a VM whose host another stuck VM waits for parks on a host with room
   and moves on to its target later (the budget permitting: the second
   step carries a ``repeat_reason``); failing that, the moves off the
   stuck VMs' hosts are dropped (those hosts stay) and sequencing starts
   again, and while time is left the model is solved again with those
   hosts pinned. The plan's notes name them.
4. **Keep the better** of the greedy's plan and the sequenced one (on a
   tie the one with fewer steps, the greedy's if equal), and report FORMATS
   §6 ``optimality``: the plan's objective, recomputed from the placement it leaves, and the largest of
   two true bounds, CP-SAT's and :func:`simple_bound`.
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import numpy as np
from attrs import frozen

from kronos.core import kernels, rules
from kronos.core.arrays import World
from kronos.core.model import Neighbourhoods, Optimality, Reason
from kronos.core.moves import AggregateOutcome, Move
from kronos.core.options import PackOptions
from kronos.core.pack import _Recorder, movable_for_emptying, reserve_hosts, unit
from kronos.core.reasons import render
from kronos.errors import UnavailableError

#: FORMATS §6 ``solver``
SOLVER = "cp-sat"
#: (VM, host) pairs beyond which an aggregate is not modelled (CP-SAT would not get far in
#: seconds); the plan is the greedy's and ``optimality`` carries the simple bound
MAX_PAIRS = 400_000
#: a neighbourhood's (VM, host) pairs at most, its hosts at most, the rounds a time limit
#: is shared among, and the rounds in a row without a gain that end the search
LNS_PAIRS = 10_000
LNS_HOSTS = 40
LNS_ROUNDS = 5
LNS_MISSES = 3
#: integer units per largest host capacity when a dimension is not in whole numbers
SCALE = 1_000_000
TOL = 1e-6
#: CP-SAT parameters beyond the time limit: one thread, fixed seed, so the same snapshot
#: gives the same plan whenever the search ends before the limit
PARAMS: dict[str, Any] = {"num_workers": 1, "random_seed": 0}
SLACK = True
#: solves again, with the hosts whose moves could not be ordered pinned, while time is left
RETRIES = 3


def load_cp_model() -> Any:
    """OR-Tools' CP-SAT module, or :class:`UnavailableError` (exit 69) naming the extra.

    69 (EX_UNAVAILABLE: "a support program does not exist") as for
    ``--png`` without matplotlib: kronos.conf (78) is not at fault.
    """
    try:
        from ortools.sat.python import cp_model
    except ImportError as exc:
        raise UnavailableError(
            "solver='exact' (--solver exact) needs OR-Tools, an optional extra: "
            "pip install 'kronos-planner[exact]'"
        ) from exc
    return cp_model


@frozen
class Solution:
    """What CP-SAT found: each VM's host (None: no solution), and the proof."""

    target: np.ndarray | None
    #: ``optimal`` (proven for the model), ``limit`` (stopped by the time limit),
    #: ``skipped`` (not modelled) or ``failed`` (the model was rejected)
    status: str
    bound: float  # a true bound on the objective (-inf: none)
    seconds: float
    objective: float | None = None


def objective_of(world: World, hosts: np.ndarray, kind: str) -> float:
    """FORMATS §6: the aggregate's hosts holding a VM (every host, as check.py counts), or
    their summed ``cost_per_hour``."""
    count = np.bincount(world.vm_host, minlength=len(world.host_names))
    used = hosts[count[hosts] > 0]
    return float(used.size) if kind == "hosts" else float(world.cost[used].sum())


def _fixed_affinity(world: World, vms: np.ndarray) -> np.ndarray:
    """Members of hard or soft affinity groups gathered on one host (two or more): the first
    move of any of them always makes the group worse, so none ever moves (bool over ``vms``)."""
    g = world.group[vms]
    has = g >= 0
    gathered = np.zeros(world.g_kind.size + 1, dtype=np.bool_)
    total = world.g_cnt.sum(axis=1)
    gathered[:-1] = np.isin(world.g_kind, (0, 2)) & (total >= 2) & (world.g_cnt.max(axis=1) == total)
    out: np.ndarray = has & gathered[g]
    return out


def allowed_pairs(world: World, vms: np.ndarray, mov: np.ndarray, dest: np.ndarray) -> tuple[np.ndarray, ...]:
    """(VM index into ``vms``, host) pairs the placement-independent rules allow, a VM's own
    host excluded: the walk with capacity, scores, groups and NUMA cell use switched off,
    plus NUMA's static part (n cells of the host, each big enough for a share)."""
    idx = np.flatnonzero(mov)
    if idx.size == 0 or dest.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    w = world.arrays()._replace(
        cap=np.full_like(world.cap, np.inf),
        pmax=np.full_like(world.pmax, np.inf),
        group=np.full_like(world.group, -1),
        vm_n=np.zeros_like(world.vm_n),
    )
    ii = np.repeat(idx, dest.size)
    vs = vms[ii].astype(np.int64)
    srcs = world.vm_host[vs].astype(np.int64)
    dsts = np.tile(dest, idx.size).astype(np.int64)
    out = np.empty(vs.size, dtype=np.int64)
    none = np.full(1, -1, dtype=np.int64)
    rules.walk(vs, srcs, dsts, none, rules.ALL_GROUPS, False, -1, np.zeros(0, dtype=np.bool_), False, out, w)
    ok = (out == rules.PASS) & (dsts != srcs)
    n = world.vm_n[vs]
    numa = ok & (n > 0) & (world.n_cells[dsts] > 0)
    if numa.any():
        k = np.flatnonzero(numa)
        share = world.numa_need[vs[k]] / n[k, None]
        cap = world.cell_cap[dsts[k]]  # pairs x cells x 2
        real = np.arange(cap.shape[1])[None, :] < world.n_cells[dsts[k], None]
        big = (
            real
            & (cap[:, :, 0] >= share[:, None, 0] - rules.EPS)
            & (cap[:, :, 1] >= share[:, None, 1] - rules.EPS)
        )
        ok[k] = big.sum(axis=1) >= n[k]
    return ii[ok], dsts[ok]


def _scale(values: np.ndarray, rhs: np.ndarray) -> float:
    """1 when a dimension is in whole numbers small enough, else SCALE per largest value."""
    both = np.concatenate([values.ravel(), rhs.ravel()])
    both = both[np.isfinite(both)]
    top = float(np.abs(both).max()) if both.size else 1.0
    if np.all(both == np.round(both)) and top < 2**40:
        return 1.0
    return SCALE / max(top, 1e-12)


def _coef(values: np.ndarray, s: float) -> np.ndarray:
    """Demands rounded down, so the model stays a relaxation (its bound a true bound)."""
    return np.floor(values * s + 1e-9 * (s == 1.0)).astype(np.int64)


def _room(rhs: np.ndarray, s: float) -> np.ndarray:
    """Room rounded up (by the rules' EPS), so the model stays a relaxation."""
    return np.floor((rhs + rules.EPS) * s * (1 + 1e-12) + 1e-6).astype(np.int64)


def capacity_dims(world: World, vms: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Each limit a host's VMs must fit: (demand per VM of ``vms``, what the other VMs use
    per host, the limit per host), for every resource class and every policy with a
    ``max_host_score`` (its score in load units)."""
    H = len(world.host_names)
    origin = world.vm_host[vms]
    dims: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for r in range(world.cap.shape[1]):
        base = world.used[:, r].copy()
        np.subtract.at(base, origin, world.size[vms, r])
        dims.append((world.size[vms, r], base, world.cap[:, r]))
    for p in range(world.pw.size):
        if not math.isfinite(float(world.pmax[p])) or not (world.load[vms, p] > 0).any():
            continue
        part = np.zeros(H)
        np.add.at(part, origin, world.load[vms, p])
        base = (world.score[:, p] - part / world.sc[:, p]) * world.sc[:, p]
        dims.append((world.load[vms, p], base, world.pmax[p] * world.sc[:, p]))
    return dims


def over_limits(world: World) -> np.ndarray:
    """Hosts over a limit now (bad data, or load that came back): each of their limits
    binds only if a VM that adds to it arrives (bool[H])."""
    over: np.ndarray = np.any(world.used > world.cap + rules.EPS, axis=1)
    over |= np.any(world.score > world.pmax + rules.EPS, axis=1)
    return over


def bind_when_adding(m: Any, expr: Any, left: int, adding: list[Any]) -> None:
    """A limit of a host already over it: ``expr <= left`` once one of ``adding`` (arrivals
    that add to that limit) is taken. The rule checks a limit only for such an arrival (a
    policy's max_host_score: a VM with load in that policy), so any other may still come."""
    if adding:
        comes = m.new_bool_var("")
        m.add_max_equality(comes, adding)
        m.add(expr <= left).only_enforce_if(comes)


def solve(
    world: World,
    hosts: np.ndarray,
    vms: np.ndarray,
    movable: np.ndarray,
    closed: np.ndarray,
    budget: int,
    kind: str,
    hint: np.ndarray | None,
    time_limit: float,
) -> Solution:
    """Model the aggregate's target placement (module docstring, step 1) and solve it.

    ``movable``: bool[V], the VM rules; ``closed``: bool[H], hosts that are
    neither source nor destination (``ha_reserve``); ``hint``: each VM's
    host in the greedy's plan.
    """
    cp_model = load_cp_model()
    H = len(world.host_names)
    origin = world.vm_host[vms]
    mov = movable[vms] & ~closed[origin] & ~_fixed_affinity(world, vms)
    dest = hosts[~closed[hosts]]
    if int(mov.sum()) * dest.size > MAX_PAIRS:
        return Solution(None, "skipped", -math.inf, 0.0)
    pv, ph = allowed_pairs(world, vms, mov, dest)
    has_dest = np.zeros(vms.size, dtype=np.bool_)
    has_dest[pv] = True
    mov &= has_dest  # nowhere else to go: stays
    keep = mov[pv]
    pv, ph = pv[keep], ph[keep]
    mi = np.flatnonzero(mov)
    # every variable: (VM index into vms, host); staying home is one of them
    var_v = np.concatenate([mi, pv])
    var_h = np.concatenate([origin[mi], ph]).astype(np.int64)
    dims = capacity_dims(world, vms)
    fixed_on = np.zeros(H, dtype=np.bool_)
    fixed_on[origin[~mov]] = True
    over = over_limits(world)
    relabel = None
    if budget >= int(mov.sum()):
        keep_var, relabel = _break_symmetry(world, dest, vms, var_v, var_h, dims, fixed_on, over)
        var_v, var_h = var_v[keep_var], var_h[keep_var]
    m = cp_model.CpModel()
    x = [m.new_bool_var("") for _ in range(var_v.size)]
    by_vm: dict[int, list[int]] = {}
    by_host: dict[int, list[int]] = {}
    for keys, into in ((var_v, by_vm), (var_h, by_host)):
        perm = np.argsort(keys, kind="stable")
        cuts = np.flatnonzero(np.diff(keys[perm])) + 1
        for grp in np.split(perm, cuts) if perm.size else []:
            into[int(keys[grp[0]])] = [int(j) for j in grp]
    for js in by_vm.values():
        m.add_exactly_one(x[j] for j in js)
    in_agg = np.zeros(H, dtype=np.bool_)
    in_agg[hosts] = True
    # u[h]: host h holds a VM at the end (constant 1 when a VM that stays is on it)
    u: dict[int, Any] = {}
    for h in by_host:
        if not fixed_on[h]:
            u[h] = m.new_bool_var("")
            for j in by_host[h]:
                m.add_implication(x[j], u[h])
    # the variables that put a VM on a host it is not on now
    arrivals = {h: [j for j in js if origin[var_v[j]] != h] for h, js in by_host.items()}
    fixed_v = ~mov
    # with no host over a limit, each host's room is split exactly into load and slack, and
    # the slacks sum to the rooms of the hosts in use less the demand: redundant, but a
    # bound of k hosts then leaves k hosts' worth of slack, which prunes near-perfect packings
    exact_sum = SLACK and not any(over[h] for h in by_host)
    for demand, base, limit in dims:
        rhs = limit - base
        s = _scale(demand, rhs[hosts])
        coef = _coef(demand, s)
        room = _room(rhs, s)
        fixed_load = np.zeros(H, dtype=np.int64)
        np.add.at(fixed_load, origin[fixed_v], coef[fixed_v])
        slacks: list[Any] = []
        rooms: list[Any] = []
        for h, js in by_host.items():
            cs = coef[var_v[js]]
            pos = np.flatnonzero(cs > 0)
            terms = pos.size > 0
            left = max(int(room[h] - fixed_load[h]), 0)
            expr = cp_model.LinearExpr.weighted_sum([x[js[k]] for k in pos.tolist()], cs[pos].tolist())
            if exact_sum:
                slack = m.new_int_var(0, left, "")
                m.add(expr + slack == left * u.get(h, 1))
                slacks.append(slack)
                rooms.append(left * u.get(h, 1))
            elif not arrivals[h] or not terms:
                continue  # only departures: it can only get emptier
            elif over[h]:
                bind_when_adding(m, expr, left, [x[j] for j in arrivals[h] if demand[var_v[j]] > 0])
            elif h in u:
                m.add(expr <= left * u[h])
            else:
                m.add(expr <= left)
        if exact_sum:
            m.add(cp_model.LinearExpr.sum(slacks) == sum(rooms) - int(coef[mov].sum()))
    _groups(m, world, hosts, vms, origin, mov, var_v, var_h, x, in_agg)
    n_mov = int(mov.sum())
    home = var_h == origin[var_v]
    stay = [x[j] for j in np.flatnonzero(home).tolist()]  # one per VM whose own host kept its variable
    if budget < n_mov:  # (then no symmetry was broken: every VM has its own host's variable)
        m.add(cp_model.LinearExpr.sum(stay) >= n_mov - budget)
    used_fixed = [int(h) for h in hosts if fixed_on[h]]
    if kind == "hosts":
        weight = {int(h): 1 for h in hosts}
        unit = 1.0
    else:
        unit = _cost_unit(world.cost[hosts])
        weight = {int(h): math.floor(float(world.cost[h]) * unit + 1e-6) for h in hosts}
    const = sum(weight[h] for h in used_fixed)
    # hosts (or cost) first, then fewest moves: weight M > any number of moves, so the
    # objective's value v and bound b give primary = v // M and a true bound b // M
    big = n_mov + 1
    goal = [*u.values(), *stay]
    coefs = [big * weight[h] for h in u] + [-1] * len(stay)
    m.minimize(cp_model.LinearExpr.weighted_sum(goal, coefs) + big * const + n_mov)
    if hint is not None:
        hint = relabel(hint) if relabel is not None else hint
        # the variables the hint sets; the others follow from "each VM on exactly one host"
        for j in np.flatnonzero(hint[var_v] == var_h).tolist():
            m.add_hint(x[j], True)
        hinted = set(hint[mi].tolist())
        for h, uh in u.items():
            m.add_hint(uh, h in hinted)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = float(time_limit)
    for key, val in PARAMS.items():
        setattr(solver.parameters, key, val)
    status = solver.solve(m)
    seconds = float(solver.wall_time)
    if status in (cp_model.MODEL_INVALID, cp_model.INFEASIBLE):  # pragma: no cover - the start is feasible
        return Solution(None, "failed", -math.inf, seconds)
    raw = math.floor(float(solver.best_objective_bound) + TOL) // big  # in the primary's integer units
    bound = raw if kind == "hosts" else raw / unit
    done = "optimal" if status == cp_model.OPTIMAL else "limit"
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return Solution(None, done, bound if math.isfinite(bound) else -math.inf, seconds)
    target = origin.copy()
    for j in range(var_v.size):
        if solver.boolean_value(x[j]):
            target[var_v[j]] = var_h[j]
    primary = (round(solver.objective_value) // big) / unit
    return Solution(target, done, bound, seconds, primary)


def _cost_unit(costs: np.ndarray) -> float:
    """Integer units per cost unit: exact when prices have at most 6 decimals (then the
    bound is exact too), else SCALE per the highest price, rounded down (a true bound)."""
    for d in range(7):
        scaled = costs * 10.0**d
        if np.all(np.abs(scaled - np.round(scaled)) < 1e-6) and float(np.abs(scaled).max(initial=0)) < 2**40:
            return float(10**d)
    return SCALE / max(float(costs.max(initial=0)), 1e-12)


def _break_symmetry(
    world: World,
    dest: np.ndarray,
    vms: np.ndarray,
    var_v: np.ndarray,
    var_h: np.ndarray,
    dims: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    fixed_on: np.ndarray,
    over: np.ndarray,
) -> tuple[np.ndarray, Any]:
    """Hosts alike in every respect the model sees are interchangeable: keep one labelling.

    Only when the budget does not bind (then where a VM started does not
    matter to the model). Alike: no VM that stays, the same room in every
    dimension, the same cost, the same VMs allowed, none over a limit now.
    Within such a class (h_0, h_1, ...), the class's VMs in a fixed order
    (largest first): the i-th may end on h_0..h_i only. Any solution can be
    relabelled to obey this (name the class's used hosts in the order of
    the first VM each holds), so the optimum and the bound are unchanged;
    ``relabel`` does that to the greedy's placement for the hint.
    """
    keep = np.ones(var_v.size, dtype=np.bool_)
    rooms = np.stack([limit - base for _, base, limit in dims], axis=1)
    col: dict[int, np.ndarray] = {}
    for h in dest.tolist():
        col[h] = np.sort(var_v[var_h == h])
    classes: dict[bytes, list[int]] = {}
    for h in dest.tolist():
        if fixed_on[h] or over[h] or col[h].size == 0:
            continue
        key = rooms[h].tobytes() + np.float64(world.cost[h]).tobytes() + col[h].tobytes()
        classes.setdefault(key, []).append(h)
    demand = np.stack([d for d, _, _ in dims], axis=1)
    norm = np.maximum(np.abs(demand).max(axis=0), 1e-12)
    size = (demand / norm).sum(axis=1)
    rank: dict[int, dict[int, int]] = {}  # class head -> position of each of its VMs
    pos_of_host: dict[int, tuple[int, int]] = {}  # host -> (class head, index in class)
    for members in classes.values():
        if len(members) < 2:
            continue
        vs = col[members[0]]
        order = vs[np.lexsort((vs, -size[vs]))]
        rank[members[0]] = {int(v): i for i, v in enumerate(order.tolist())}
        for j, h in enumerate(members):
            pos_of_host[h] = (members[0], j)
    for k, (i, h) in enumerate(zip(var_v.tolist(), var_h.tolist(), strict=True)):
        if h in pos_of_host:
            head, j = pos_of_host[h]
            keep[k] = j <= rank[head][i]
    heads = {head: [h for h in pos_of_host if pos_of_host[h][0] == head] for head in rank}

    def relabel(target: np.ndarray) -> np.ndarray:
        out = target.copy()
        for head, members in heads.items():
            order = rank[head]
            first: dict[int, int] = {}
            for i, h in enumerate(target.tolist()):
                if h in pos_of_host and pos_of_host[h][0] == head:
                    first[h] = min(first.get(h, len(order)), order.get(i, len(order)))
            used = sorted(first, key=lambda h: (first[h], h))
            mapping = dict(zip(used, members, strict=False))
            for i, h in enumerate(target.tolist()):
                if h in mapping:
                    out[i] = mapping[h]
        return out

    return keep, relabel


def _groups(
    m: Any,
    world: World,
    hosts: np.ndarray,
    vms: np.ndarray,
    origin: np.ndarray,
    mov: np.ndarray,
    var_v: np.ndarray,
    var_h: np.ndarray,
    x: list[Any],
    in_agg: np.ndarray,
) -> None:
    """Server groups, as far as rules kept at every step imply about the end.

    Each step may not raise a group's violation measure (FORMATS: anti-affinity
    kinds Σ_h max(0, count − limit); affinity kinds n − max_h count), so the
    end's measure is at most the start's. Members outside the aggregate never
    move: their hosts' counts are constants.
    """
    g_of = world.group[vms[var_v]]
    for g in np.unique(g_of[(g_of >= 0) & mov[var_v]]).tolist():
        sel = np.flatnonzero((g_of == g) & mov[var_v])
        moving_here = np.zeros(world.g_cnt.shape[1], dtype=np.int64)
        members = vms[(world.group[vms] == g) & mov]
        np.add.at(moving_here, world.vm_host[members], 1)
        const = world.g_cnt[g] - moving_here  # members that stay put, per host
        terms: dict[int, list[Any]] = {}
        for j in sel.tolist():
            terms.setdefault(int(var_h[j]), []).append(x[j])
        kind = int(world.g_kind[g])
        cnt0 = world.g_cnt[g]
        if kind in (1, 3):
            lim = int(world.g_lim[g])
            inside = int(np.maximum(cnt0[hosts] - lim, 0).sum())
            if inside == 0:
                for h, xs in terms.items():
                    m.add(int(const[h]) + sum(xs) <= lim)
            else:
                excess: list[Any] = []
                for h in hosts.tolist():
                    xs = terms.get(h, [])
                    if not xs:
                        excess.append(max(0, int(const[h]) - lim))
                        continue
                    e = m.new_int_var(0, len(members) + int(const[h]), "")
                    m.add(e >= int(const[h]) + sum(xs) - lim)
                    excess.append(e)
                m.add(sum(excess) <= inside)
        else:
            top = int(cnt0.max())
            if top <= 1 or (cnt0[~in_agg] >= top).any():
                continue
            ys: list[Any] = []
            for h in hosts.tolist():
                if int(const[h]) >= top:
                    ys = []
                    break
                xs = terms.get(h, [])
                if int(const[h]) + len(xs) < top:
                    continue
                y = m.new_bool_var("")
                m.add(int(const[h]) + sum(xs) >= top).only_enforce_if(y)
                ys.append(y)
            else:
                m.add_bool_or(ys)


def simple_bound(
    world: World, hosts: np.ndarray, vms: np.ndarray, fixed: np.ndarray, receive: np.ndarray, kind: str
) -> float:
    """A true bound without a solver: hosts that keep a VM which may not move, plus the
    fewest further hosts (or the cheapest, fractionally) whose room covers what is left,
    per resource class and policy.

    A host's room is what it may hold at the end: up to its capacity (or
    ``max_host_score``) if it may receive, and never less than what it holds
    now (a host may keep VMs that already overfill it). ``fixed``: bool over
    ``vms``; ``receive``: bool[H], hosts that may receive.
    """
    H = len(world.host_names)
    origin = world.vm_host[vms]
    pinned = np.zeros(H, dtype=np.bool_)
    pinned[origin[fixed]] = True
    pinned_hosts = hosts[pinned[hosts]]
    others = hosts[~pinned[hosts]]
    costs = world.cost
    base_value = float(pinned_hosts.size) if kind == "hosts" else float(costs[pinned_hosts].sum())
    best = base_value
    dims: list[tuple[np.ndarray, np.ndarray]] = []
    for r in range(world.cap.shape[1]):
        dims.append(
            (world.size[vms, r], world.cap[:, r] - (world.used[:, r] - _on(world, vms, world.size[:, r])))
        )
    for p in range(world.pw.size):
        if not math.isfinite(float(world.pmax[p])):
            continue
        part = _on(world, vms, world.load[:, p])
        base = world.score[:, p] * world.sc[:, p] - part
        dims.append((world.load[vms, p], world.pmax[p] * world.sc[:, p] - base))
    for demand, limit in dims:
        now = np.zeros(H)
        np.add.at(now, origin, demand)
        room = np.where(receive, np.maximum(limit + rules.EPS, now), now)
        left = float(demand.sum()) - float(room[pinned_hosts].sum())
        if left <= TOL * max(float(demand.sum()), 1.0):
            continue
        have = room[others]
        if kind == "hosts":
            cum = np.cumsum(np.sort(have)[::-1])
            k = int(np.searchsorted(cum, left * (1 - 1e-9))) + 1
            best = max(best, base_value + min(k, others.size))
        else:  # the cheapest cover, fractionally: the LP bound of choosing hosts
            ok = have > 0
            per = costs[others][ok] / have[ok]
            order = np.argsort(per, kind="stable")
            need, extra = left * (1 - 1e-9), 0.0
            for c, hv in zip(costs[others][ok][order], have[ok][order], strict=True):
                take = min(hv, need)
                extra += c * take / hv
                need -= take
                if need <= 0:
                    break
            best = max(best, base_value + extra)
    return best


def _on(world: World, vms: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per host, the sum of ``values`` over the VMs of ``vms`` on it."""
    out = np.zeros(len(world.host_names))
    np.add.at(out, world.vm_host[vms], values[vms])
    return out


def sequence(
    start: World,
    aggregate: str,
    hosts: np.ndarray,
    vms: np.ndarray,
    target: np.ndarray,
    closed: np.ndarray | None = None,
    budget: int | None = None,
) -> tuple[World, list[Move], list[int]]:
    """Moves to ``target`` (a host per VM of ``vms``), each valid on the real world when taken.

    Returns the world after them, the moves, and the hosts whose moves
    were dropped because some of them could not be sequenced. ``closed``:
    hosts no VM may go to (``ha_reserve``); ``budget``: steps the plan may
    take (None: any), so parking moves use only what the target's own moves
    leave of it.
    """
    origin = start.vm_host[vms]
    want = {int(v): int(b) for v, b, a in zip(vms, target, origin, strict=True) if b != a}
    shut = closed if closed is not None else np.zeros(len(start.host_names), dtype=np.bool_)
    dropped: list[int] = []
    while True:
        spare = len(vms) if budget is None else max(budget - len(want), 0)
        world, moves, stuck = _try(start, aggregate, hosts, want, shut, spare)
        if not stuck:
            return world, moves, sorted(dropped)
        sources = {int(start.vm_host[v]) for v in stuck}
        dropped.extend(sources)
        want = {v: b for v, b in want.items() if int(start.vm_host[v]) not in sources}


def _try(
    start: World, aggregate: str, hosts: np.ndarray, want: dict[int, int], closed: np.ndarray, spare: int
) -> tuple[World, list[Move], list[int]]:
    """Take the moves of ``want`` whenever they are valid, pass after pass; returns what is stuck.

    Moves off hosts that keep VMs (they make room) go first, then hosts are
    emptied, smallest first, each VM biggest first. When no move can go, a
    VM leaving a host the target empties may go where it fits tightest
    among the hosts the target keeps (as the greedy's steps do); failing
    that, and while ``spare`` steps are left, a VM whose host another VM
    waits for is parked on a host with room (:func:`_park`), and the
    passes go on.
    """
    world = start.copy()
    rec = _Recorder(world, hosts, aggregate)
    H = len(start.host_names)
    count = np.bincount(start.vm_host, minlength=H)
    final = count.copy()
    for v, b in want.items():
        final[start.vm_host[v]] -= 1
        final[b] += 1
    emptied = (count > 0) & (final == 0)
    keep = rules.receivers(start) & (final > 0) & ~closed
    act = hosts[start.active[hosts]]
    norm = unit(start, act)
    share = {v: float((start.size[v] / np.maximum(start.cap[start.vm_host[v]], 1e-12)).sum()) for v in want}
    pending = sorted(
        want,
        key=lambda v: (
            bool(emptied[start.vm_host[v]]),
            int(count[start.vm_host[v]]),
            int(start.vm_host[v]),
            -share[v],
            v,
        ),
    )
    why: dict[int, tuple[Reason, ...]] = {}
    for v in pending:
        a = int(start.vm_host[v])
        name = start.host_names[a]
        rule = (
            Reason("pack.empty", host=name, count=int(count[a]))
            if emptied[a]
            else Reason("pack.make_room", host=name)
        )
        why[v] = (rule,)
    parked: dict[int, str] = {}  # VM -> its second move's repeat_reason
    room = np.zeros(H, dtype=np.bool_)
    room[hosts] = rules.receivers(start)[hosts] & ~closed[hosts]
    while pending:
        rest = [v for v in pending if not _take(rec, v, want[v], why[v], parked.get(v))]
        if len(rest) < len(pending):
            pending = rest
            continue
        for v in rest:
            a = int(world.vm_host[v])
            if emptied[a]:
                b = int(kernels.best_fit(v, a, act, keep, rec.w, norm))
                if b >= 0 and _take(rec, v, b, why[v], parked.get(v)):
                    pending = [u for u in pending if u != v]
                    break
        else:
            if len(parked) >= spare or not _park(rec, rest, want, why, parked, np.flatnonzero(room), final):
                break
    return world, rec.moves, pending


def _take(rec: _Recorder, v: int, b: int, why: tuple[Reason, ...], again: str | None = None) -> bool:
    """Move v to b on the recorder's world if every rule allows it now."""
    if not rules.feasible(v, int(rec.world.vm_host[v]), b, rec.w, True):
        return False
    rec.move(v, b, why, again)
    return True


def _park(
    rec: _Recorder,
    stuck: list[int],
    want: dict[int, int],
    why: dict[int, tuple[Reason, ...]],
    parked: dict[int, str],
    room: np.ndarray,
    final: np.ndarray,
) -> bool:
    """Move one stuck VM out of the way, to a host with room, if that lets another stuck VM in.

    The cycle it breaks: VMs that must trade hosts (or go round a ring of
    full hosts), none of which can go first. The parked VM stays pending
    and moves again to its target later; that step carries a
    ``repeat_reason`` (FORMATS §2 allows a parking move so). Hosts the
    target empties are tried first, then those with the most room, so
    parking takes no room the target needs for good. Each VM parks once.
    The parking step carries the VM's own rule (it is the step that leaves
    its host) and ``pack.park``; the later one ``pack.unpark`` (``why``
    is updated).
    """
    world = rec.world
    free = ((world.cap[room] - world.used[room]) / np.maximum(world.cap[room], 1e-12)).min(axis=1)
    order = room[np.lexsort((room, -free, final[room] > 0))]
    for u in stuck:
        a = int(world.vm_host[u])
        waiting = [v for v in stuck if v != u and want[v] == a]
        if u in parked or not waiting:
            continue
        for p in order.tolist():
            if p == want[u] or not rules.feasible(u, a, p, rec.w, True):
                continue
            k = len(rec.moves)
            name = world.host_names[p]
            park = Reason("pack.park", host=world.host_names[a], detail=world.host_names[want[u]])
            rec.move(u, p, (*why[u], park))
            if any(rules.feasible(v, int(world.vm_host[v]), a, rec.w, True) for v in waiting):
                unpark = Reason("pack.unpark", host=name)
                parked[u] = render(unpark)
                why[u] = (unpark,)
                return True
            rec.undo_to(k)
    return False


def search_neighbourhoods(
    base: World,
    after: World,
    hosts: np.ndarray,
    vms: np.ndarray,
    closed: np.ndarray,
    budget: int,
    kind: str,
    time_limit: float,
) -> tuple[Solution, Neighbourhoods]:
    """Large-neighbourhood search for an aggregate too large to model whole.

    It improves a *target* (a host per VM of ``vms``), starting from the
    greedy's end placement ``after``; the plan is then sequenced from
    ``base`` like a whole model's target, so each VM still moves once.
    Each round models a few hosts of the target with every VM on them
    (:func:`_neighbourhood`), solves that exactly, and takes the solution
    if it empties a host or cuts cost. The least full hosts are always in;
    the rest rotates through the next least full, so a round that finds
    nothing looks elsewhere. A VM whose target the round changes counts
    as a move against the budget, even one going home (safe, not tight).
    Stops when the time limit (CP-SAT's own clock, summed), the budget or
    :data:`LNS_MISSES` rounds in a row without a gain say so.
    """
    target = after.copy()
    target.moved[:] = False  # a target, not a plan: every VM may change its end host
    origin = base.vm_host[vms]
    movable = movable_for_emptying(base)
    searched = optimal = improved = largest = misses = 0
    spent = 0.0
    per = max(time_limit / LNS_ROUNDS, 0.2)
    while misses < LNS_MISSES and time_limit - spent >= 0.05:
        left = budget - int((target.vm_host[vms] != origin).sum())
        hood = _neighbourhood(target, hosts, closed, searched)
        if hood.size < 2 or left <= 0:
            break
        sub = vms[np.isin(target.vm_host[vms], hood)]
        limit = min(per, time_limit - spent)
        sol = solve(target, hood, sub, movable, closed, left, kind, target.vm_host[sub], limit)
        if sol.status == "skipped":  # a few hosts holding thousands of VMs each: too large too
            break
        spent += sol.seconds
        searched += 1
        optimal += sol.status == "optimal"
        largest = max(largest, int(hood.size))
        if (
            sol.target is not None
            and sol.objective is not None
            and sol.objective < objective_of(target, hood, kind) - TOL
        ):
            w = target.arrays()
            for v, b in zip(sub.tolist(), sol.target.tolist(), strict=True):
                if b != target.vm_host[v]:
                    kernels.apply_move(v, b, w)
            target.moved[:] = False
            improved += 1
            misses = 0
            continue
        misses += 1
    value = objective_of(target, hosts, kind)
    # none kept: the target is the greedy's own placement, not worth sequencing again
    found = Solution(target.vm_host[vms].copy() if improved else None, "skipped", -math.inf, spent, value)
    return found, Neighbourhoods(searched, optimal, largest, improved)


def _neighbourhood(world: World, hosts: np.ndarray, closed: np.ndarray, round_: int) -> np.ndarray:
    """Round ``round_``'s hosts: the least full of those holding VMs (the ones a plan can
    still empty), half of them always, the other half rotating through the next least
    full; as many as keep (VMs on them) x (hosts) within :data:`LNS_PAIRS`."""
    count = np.bincount(world.vm_host, minlength=len(world.host_names))
    ok = hosts[rules.receivers(world)[hosts] & ~closed[hosts] & world.active[hosts] & (count[hosts] > 0)]
    if ok.size < 2:
        return np.asarray(ok, dtype=np.int64)
    fill = (world.used[ok] / np.maximum(world.cap[ok], 1e-12)).max(axis=1)
    order = ok[np.lexsort((ok, fill))]
    vms_per = max(float(count[order].mean()), 1.0)
    size = int(np.clip(math.isqrt(int(LNS_PAIRS / vms_per)), 2, min(LNS_HOSTS, order.size)))
    half = size // 2
    rest = order[half:]
    start = (round_ * (size - half)) % rest.size
    hood = np.concatenate([order[:half], np.roll(rest, -start)[: size - half]])
    # the host count came from an average: trim until the pairs fit
    while hood.size > 2 and int(count[hood].sum()) * hood.size > LNS_PAIRS:
        hood = hood[:-1]
    return np.sort(hood)


def _assign(world: World, other: World) -> None:
    """``world`` takes ``other``'s placement (every array, in place: callers hold it)."""
    for f in attrs.fields(World):
        if isinstance(getattr(world, f.name), np.ndarray):
            getattr(world, f.name)[...] = getattr(other, f.name)


def _with_moves(
    greedy: AggregateOutcome, start: World, world: World, moves: list[Move], opts: PackOptions
) -> AggregateOutcome:
    """The greedy's outcome with another plan's steps (``world`` is after them). A host the
    plan emptied held VMs at ``start``: a parking host may have been empty before."""
    before = np.bincount(start.vm_host, minlength=len(start.host_names))
    now = np.bincount(world.vm_host, minlength=len(world.host_names))
    emptied = sorted({mv.source for mv in moves if now[mv.source] == 0 and before[mv.source] > 0})
    return attrs.evolve(
        greedy,
        moves=tuple(moves),
        post_drain={world.host_names[h]: opts.post_drain_action for h in emptied},
        skipped=None if moves else greedy.skipped,
    )


def improve(
    start: World,
    world: World,
    aggregate: str,
    hosts: np.ndarray,
    budget: int,
    opts: PackOptions,
    greedy: AggregateOutcome,
) -> AggregateOutcome:
    """Steps 1-4 of the module docstring for one aggregate the greedy has just packed.

    ``start``: the world before the greedy ran (a copy); ``world``: after it,
    changed in place to the exact plan's placement when that one is better.
    """
    kind = opts.objective_kind
    act = hosts[start.active[hosts]]
    count = np.bincount(start.vm_host, minlength=len(start.host_names))
    vms = np.flatnonzero(np.isin(start.vm_host, hosts)).astype(np.int64)
    closed = np.zeros(len(start.host_names), dtype=np.bool_)
    closed[reserve_hosts(start, act, count, opts.ha_reserve)] = True
    movable = movable_for_emptying(start)
    origin = start.vm_host[vms]
    fixed = ~(movable[vms] & ~closed[origin] & ~_fixed_affinity(start, vms))
    receive = rules.receivers(start) & ~closed
    bound = simple_bound(start, hosts, vms, fixed, receive, kind)
    greedy_value = objective_of(world, hosts, kind)
    short = any(r.rule in ("pack.over", "pack.relief_budget") for r in greedy.notes)
    relief = [mv for mv in greedy.moves if any(w.rule == "pack.relieve" for w in mv.why)]
    notes: list[Reason] = []
    sol = Solution(None, "skipped", -math.inf, 0.0)
    hoods = None
    base = start
    if relief:
        # relief comes first, as in the greedy; the exact search packs what it leaves, so
        # its bound holds for plans that start so, not for every plan: the simple bound stands
        base = start.copy()
        for mv in relief:
            kernels.apply_move(mv.vm, mv.destination, base.arrays())
    left = budget - len(relief)
    if short:
        notes.append(Reason("pack.exact_skipped", detail="hosts over max_host_score, none emptied"))
    elif vms.size:
        hint = world.vm_host[vms]
        sol = solve(base, hosts, vms, movable_for_emptying(base), closed, left, kind, hint, opts.time_limit)
        if sol.status == "skipped" and greedy_value > bound + TOL:
            # too large to model whole: neighbourhoods of the greedy's end placement
            sol, hoods = search_neighbourhoods(base, world, hosts, vms, closed, left, kind, opts.time_limit)
            notes.append(
                Reason(
                    "pack.exact_neighbourhoods",
                    count=hoods.searched,
                    value=hoods.optimal,
                    after=hoods.improved,
                    need=hoods.hosts,
                    limit=MAX_PAIRS,
                )
            )
        if relief:
            sol = attrs.evolve(sol, bound=-math.inf)
    out = greedy
    value = greedy_value
    if sol.target is not None and sol.objective is not None and sol.objective < greedy_value + TOL:
        after, moves, dropped = sequence(base, aggregate, hosts, vms, sol.target, closed, left)
        exact_value = objective_of(after, hosts, kind)
        spent, pinned = sol.seconds, np.zeros(len(start.host_names), dtype=np.bool_)
        for _ in range(RETRIES):
            if not dropped or opts.time_limit - spent < 0.05:
                break
            # the hosts whose moves could not be ordered keep their VMs: solve again from
            # what was sequenced (a restricted model: its bound is not used)
            pinned[dropped] = True
            fix = movable_for_emptying(base) & ~pinned[base.vm_host]
            hint = after.vm_host[vms]
            again = solve(base, hosts, vms, fix, closed, left, kind, hint, opts.time_limit - spent)
            spent += again.seconds
            if again.target is None:
                break
            after2, moves2, dropped2 = sequence(base, aggregate, hosts, vms, again.target, closed, left)
            value2 = objective_of(after2, hosts, kind)
            if value2 > exact_value - TOL and len(moves2) >= len(moves):
                break
            after, moves, dropped, exact_value = after2, moves2, dropped2, value2
        sol = attrs.evolve(sol, seconds=spent)
        moves = [*relief, *moves]
        lost = sorted(set(np.flatnonzero(pinned).tolist()) | set(dropped))
        tie = abs(exact_value - greedy_value) <= TOL
        taken = exact_value < greedy_value - TOL or (tie and len(moves) < len(greedy.moves))
        if lost:  # the greedy's plan, when it stands, may empty those very hosts
            lost_names = tuple(start.host_names[h] for h in lost)
            notes.append(Reason("pack.exact_dropped", hosts=lost_names, detail=None if taken else "greedy"))
        if taken:
            _assign(world, after)
            value = exact_value
            out = _with_moves(greedy, start, world, moves, opts)
    bound = min(max(bound, sol.bound), value)  # a true bound never exceeds a plan's value
    if out is not greedy:
        # pack's hosts_lower_bound takes split affinity groups as staying, which the exact
        # search may gather: never let it claim more than what is proven here
        inactive = int(((count[hosts] > 0) & ~start.active[hosts]).sum())
        proven_hosts = simple_bound(start, hosts, vms, fixed, receive, "hosts")
        if kind == "hosts":
            proven_hosts = max(proven_hosts, bound)
        lb = math.ceil(proven_hosts - TOL) - inactive
        if greedy.hosts_lower_bound is not None:
            lb = min(lb, greedy.hosts_lower_bound)
        now = np.bincount(world.vm_host, minlength=len(world.host_names))
        kept = [r for r in greedy.notes if r.rule not in ("pack.hosts_in_use", "pack.budget_below")]
        before, after_act = int((count[act] > 0).sum()), int((now[act] > 0).sum())
        in_use = Reason("pack.hosts_in_use", before=before, after=after_act, limit=max(lb, 0))
        out = attrs.evolve(out, notes=(*kept, in_use), hosts_lower_bound=max(lb, 0))
    proven = value - bound <= 1e-9 * max(1.0, abs(value))  # what is left is float rounding
    if proven:
        bound = value
    status = "optimal" if proven else "timeout" if sol.status == "limit" else "feasible"
    gap = 0.0 if proven or value == 0 else (value - bound) / value
    notes.append(
        Reason(
            "pack.exact",
            detail=f"{SOLVER} {status}",
            value=value,
            limit=bound,
            before=greedy_value,
        )
    )
    opt = Optimality(SOLVER, status, value, float(bound), float(gap), round(sol.seconds, 3), kind, hoods)
    return attrs.evolve(out, notes=(*out.notes, *notes), optimality=opt)
