"""Exact spread (``solver="exact"``, ``mode="spread"``): a CP-SAT model of the target
placement, searched from the greedy's, and a proven lower bound on the combined imbalance.

The combined imbalance is Σ_p w_p σ_p, a weighted sum of per-policy
standard deviations: square roots, which CP-SAT cannot minimise. So the
model keeps each host's scaled score exact and linear in ``x[v,h]`` (a
VM's load over its destination's score capacity), and bounds
``d_hp = n·S_hp − T_p`` (n active hosts, T_p their total: Σ_h d_hp² is
n³ times the variance, in the model's integer units) from below by the
square's tangents (:data:`TANGENTS`). Two uses of it:

1. **Search** (a third of ``time_limit``), warm-started from the greedy's
   end placement: minimise Σ_p w_p Var_p / (2 σ_p⁰) plus ``move_cost`` per
   GiB moved, where σ_p⁰ is the greedy plan's. That is the tangent of the
   square root at the greedy's plan: with one policy it has the combined
   imbalance's optimum exactly, with several it is a surrogate — the plan
   found is scored on the true combined imbalance and kept only if it
   beats the greedy's (it starts from the greedy's, so it rarely loses).
2. **Bound** (the rest, shared among the policies): min Var_p for each
   policy alone, under every rule and the whole budget, with CP-SAT's
   proven lower bound l_p (hinted with the greedy's placement: the search
   near it lifts the bound), and the search's own proven bound L on
   Σ_p λ_p Var_p, its objective. No plan has Σ_p w_p σ_p below the least
   of that concave function over {Var_p >= l_p, Σ_p λ_p Var_p >= L}
   (:func:`joint_minimum`: a vertex, all policies at l_p but one), so that
   value, less the model's rounding (below), is a true bound on the real
   objective (FORMATS §6, ``objective_kind: combined``). It is weak on
   large aggregates: CP-SAT's bound on a sum of squares rises slowly
   (docs/exact.md "Spread").

The constraints are those of exact pack (:func:`kronos.core.exact.solve`,
a relaxation of every plan on purpose): the rule table's static part per
(VM, host) pair, capacity of every resource class and ``max_host_score``
on the end placement, server groups as far as one-step rules imply, and
the budget. **Rounding**: scores are whole multiples of 1/Q; each host's
model score is off by at most 0.5/Q for its start and 0.5/Q per move that
touches it, so with B moves the score vector is off by at most
√(2(½+½B)² + (n−2)/4)/Q in the L2 norm, and σ (1/√n times the norm of the
centred vector, a projection) by that over √n: subtracted from each
policy's bound.

**Sequencing** (:func:`sequence`): the target's moves go in the order that
keeps the combined imbalance lowest, each valid on the real world when
taken, none leaving the aggregate more imbalanced than it started (the
rule every spread plan keeps); moves that never become valid are dropped
and said so. Only aggregates that share no host with another and plans on
current scores are searched (``plan_on`` forecast/max and overlapping
aggregates: the greedy's plan stands, and a note says why).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from attrs import frozen

from kronos.core import kernels, rules
from kronos.core.arrays import World, imbalance
from kronos.core.exact import (
    MAX_PAIRS,
    PARAMS,
    SOLVER,
    _coef,
    _fixed_affinity,
    _groups,
    _room,
    _scale,
    allowed_pairs,
    bind_when_adding,
    capacity_dims,
    load_cp_model,
    over_limits,
)
from kronos.core.model import Optimality, Reason

#: the largest |d_hp| in integer units: squares and their sums stay exact in int64 and
#: within a double's 53 bits in CP-SAT's bound
SPAN = 2**21
#: the largest integer weight of a policy in the search's objective
WEIGHT = 16
#: where the square's tangents touch: d² is modelled as their maximum (from below, so the
#: bound stays true), within 1 % of d² for |d| >= SPAN / 10⁵. CP-SAT's own product
#: (``add_multiplication_equality``) reduces a square's domain to the squares, millions
#: of intervals, and spends the time limit in presolve.
RATIO = 1.2
TANGENTS = (0, *(s * round(SPAN * RATIO**-k) for k in range(64) if SPAN * RATIO**-k >= 20 for s in (1, -1)))
#: beyond exact pack's: no probing and one round of presolve, which took most of 10 s on
#: 20 hosts × 500 VMs before the first bound (three solves each presolve the model)
SPREAD_PARAMS: dict[str, Any] = {"cp_model_probing_level": 0, "max_presolve_iterations": 1}
#: the search's share of ``time_limit``; the rest proves the bound, shared among the
#: policies. A third each for two policies: on 20 hosts × 500 VMs at 10 s the mean gap was
#: 18 % (a half for the search: 31 %; a quarter: 30 %; the joint bound needs the search)
SEARCH_SHARE = 0.34
TOL = 1e-12

Seq = list[tuple[int, int, str]]


@frozen
class Result:
    """The plan kept (the greedy's ``seq`` or the exact one), its proof, and notes."""

    seq: Seq
    exact: bool
    optimality: Optimality | None
    notes: tuple[Reason, ...]


@frozen
class _Model:
    model: Any
    x: list[Any]
    var_v: np.ndarray  # index into vms
    var_h: np.ndarray
    mov: np.ndarray  # bool over vms: may move
    sq: list[list[Any]]  # per policy, per active host: d²
    scale: list[float]  # Q per policy
    policies: list[int]
    n: int
    moves: int  # most VMs that can end away from home: min(budget, movable)


def _model(
    cp_model: Any, world: World, hosts: np.ndarray, vms: np.ndarray, mov: np.ndarray, budget: int
) -> _Model:
    """The target placement's model (module docstring): variables, rules, budget, squares."""
    H = len(world.host_names)
    origin = world.vm_host[vms]
    pv, ph = allowed_pairs(world, vms, mov, hosts)
    reach = np.zeros(vms.size, dtype=np.bool_)
    reach[pv] = True
    mov = mov & reach
    keep = mov[pv]
    pv, ph = pv[keep], ph[keep]
    mi = np.flatnonzero(mov)
    var_v = np.concatenate([mi, pv])
    var_h = np.concatenate([origin[mi], ph]).astype(np.int64)
    m = cp_model.CpModel()
    x = [m.new_bool_var("") for _ in range(var_v.size)]
    by_vm: dict[int, list[int]] = {}
    by_host: dict[int, list[int]] = {}
    for j, (v, h) in enumerate(zip(var_v.tolist(), var_h.tolist(), strict=True)):
        by_vm.setdefault(v, []).append(j)
        by_host.setdefault(h, []).append(j)
    for js in by_vm.values():
        m.add_exactly_one(x[j] for j in js)
    home = var_h == origin[var_v]
    over = over_limits(world)
    for demand, base, limit in capacity_dims(world, vms):
        rhs = limit - base
        s = _scale(demand, rhs[hosts])
        coef, room = _coef(demand, s), _room(rhs, s)
        fixed = np.zeros(H, dtype=np.int64)
        np.add.at(fixed, origin[~mov], coef[~mov])
        for h, js in by_host.items():
            comers = [x[j] for j in js if not home[j]]
            if not comers:
                continue  # only departures: it can only get emptier
            pos = [j for j in js if coef[var_v[j]] > 0]
            expr = cp_model.LinearExpr.weighted_sum([x[j] for j in pos], coef[var_v[pos]].tolist())
            left = max(int(room[h] - fixed[h]), 0)
            if over[h]:
                bind_when_adding(m, expr, left, [x[j] for j in js if not home[j] and demand[var_v[j]] > 0])
            else:
                m.add(expr <= left)
    in_agg = np.zeros(H, dtype=np.bool_)
    in_agg[hosts] = True
    _groups(m, world, hosts, vms, origin, mov, var_v, var_h, x, in_agg)
    n_mov = int(mov.sum())
    if budget < n_mov:
        m.add(cp_model.LinearExpr.sum([x[j] for j in np.flatnonzero(home).tolist()]) >= n_mov - budget)
    moves = min(budget, n_mov)
    act = hosts[world.active[hosts]]
    n = int(act.size)
    policies = [p for p in range(world.pw.size) if world.pw[p] > 0]
    sq: list[list[Any]] = []
    scale: list[float] = []
    for p in policies:
        share = world.load[vms, p][:, None] / world.sc[None, act, p]  # a VM's score on each host
        top = np.sort(share.max(axis=1)[mov])[::-1][:moves].sum() if n_mov else 0.0
        # |S_h| <= peak (arrivals and departures are each at most the budget's top shares),
        # so |d| = |n S_h - T| <= 2 n peak
        peak = float(np.abs(world.score[act, p]).max(initial=0.0)) + float(top)
        q = SPAN / (2 * n * max(peak, 1e-9))
        on = np.zeros(H, dtype=np.int64)
        on[act] = np.arange(n)
        scores = []
        for h in act.tolist():
            js = by_host.get(h, [])
            c = np.rint(q * world.load[vms[var_v[js]], p] / world.sc[h, p]).astype(np.int64)
            start = round(q * float(world.score[h, p])) - int(c[home[js]].sum())
            scores.append(cp_model.LinearExpr.weighted_sum([x[j] for j in js], c.tolist()) + start)
        total = m.new_int_var(-n * SPAN, n * SPAN, "")
        m.add(total == sum(scores))
        row = []
        for expr in scores:
            d = m.new_int_var(-SPAN, SPAN, "")
            m.add(d == n * expr - total)
            s2 = m.new_int_var(0, SPAN * SPAN, "")
            for a in TANGENTS:
                m.add(s2 >= 2 * a * d - a * a)
            row.append(s2)
        sq.append(row)
        scale.append(q)
    return _Model(m, x, var_v, var_h, mov, sq, scale, policies, n, moves)


def _solver(cp_model: Any, seconds: float) -> Any:
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(float(seconds), 0.01)
    for key, val in {**PARAMS, **SPREAD_PARAMS}.items():
        setattr(solver.parameters, key, val)
    return solver


def _rounding(mdl: _Model, k: int) -> float:
    """How far a policy's σ in the model can be from the real one (module docstring)."""
    n, b = mdl.n, mdl.moves
    return math.sqrt((2 * (0.5 + 0.5 * b) ** 2 + max(n - 2, 0) * 0.25) / n) / mdl.scale[k]


@frozen
class _Found:
    """What the search found: a host per VM of ``vms`` (None: none), CP-SAT's status
    (``optimal``/``limit``), its wall time, and a proven lower bound on Σ_k λ_k V_k, the
    policies' model variances weighted by ``weights`` (None: the objective had move costs)."""

    target: np.ndarray | None
    status: str
    seconds: float
    joint: float | None
    weights: tuple[float, ...]
    #: every model variable's value at the greedy's placement (empty: none found)
    start: tuple[int, ...] = ()


def search(
    cp_model: Any,
    world: World,
    mdl: _Model,
    vms: np.ndarray,
    hint: np.ndarray,
    sigma: np.ndarray,
    penalty: np.ndarray,
    seconds: float,
) -> _Found:
    """The surrogate's best target found in ``seconds`` (module docstring, step 1)."""
    m = mdl.model.clone()
    x = [m.get_bool_var_from_proto_index(v.index) for v in mdl.x]
    # w_p Var_p / (2 σ_p⁰), Var_p = Σ_h d² / (n³ Q_p²): integer weights in that ratio
    rel = [
        world.pw[p] / (max(float(sigma[p]), 1e-9) * q * q)
        for p, q in zip(mdl.policies, mdl.scale, strict=True)
    ]
    top = max(rel)
    weights = [max(1, round(WEIGHT * r / top)) for r in rel]
    terms: list[Any] = []
    coefs: list[int] = []
    for k, w in enumerate(weights):
        terms.extend(sq_var(m, v) for v in mdl.sq[k])
        coefs.extend([w] * len(mdl.sq[k]))
    origin = world.vm_host[vms]
    costed = False
    if penalty.any():
        # σ units per integer unit of the first policy's squares: w·Σd²/(2σ⁰ n³ Q²) = σ
        k = 0
        unit = weights[k] * 2 * max(float(sigma[mdl.policies[k]]), 1e-9) * mdl.n**3 * mdl.scale[k] ** 2
        unit /= float(world.pw[mdl.policies[k]])
        for j in np.flatnonzero(mdl.var_h != origin[mdl.var_v]).tolist():
            c = round(float(penalty[vms[mdl.var_v[j]]]) * unit)
            if c > 0:
                terms.append(x[j])
                coefs.append(c)
                costed = True
    m.minimize(cp_model.LinearExpr.weighted_sum(terms, coefs))
    # a complete hint: with x alone, CP-SAT did not complete the squares and found no
    # solution in 5 s; so the squares are solved for first, with every x fixed to the hint
    for j, on in enumerate((hint[mdl.var_v] == mdl.var_h).tolist()):
        m.add_hint(x[j], on)
    solver = _solver(cp_model, seconds)
    solver.parameters.fix_variables_to_their_hinted_value = True
    first = solver.solve(m)
    spent = float(solver.wall_time)
    values: list[int] = []
    if first in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        values = [solver.value(m.get_int_var_from_proto_index(i)) for i in range(len(m.proto.variables))]
        m.clear_hints()
        for i, val in enumerate(values):
            m.add_hint(m.get_int_var_from_proto_index(i), val)
    solver = _solver(cp_model, seconds - spent)
    status = solver.solve(m)
    done = "optimal" if status == cp_model.OPTIMAL else "limit"
    spent += float(solver.wall_time)
    lams = tuple(float(w) * mdl.n**3 * q * q for w, q in zip(weights, mdl.scale, strict=True))
    joint = None if costed or status == cp_model.INFEASIBLE else max(float(solver.best_objective_bound), 0.0)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return _Found(None, done, spent, joint, lams, tuple(values))
    target = origin.copy()
    for j in range(mdl.var_v.size):
        if solver.boolean_value(x[j]):
            target[mdl.var_v[j]] = mdl.var_h[j]
    return _Found(target, done, spent, joint, lams, tuple(values))


def sq_var(m: Any, v: Any) -> Any:
    """``v`` as a variable of ``m`` (a clone of the model ``v`` was made in)."""
    return m.get_int_var_from_proto_index(v.index)


def bound(
    cp_model: Any, world: World, mdl: _Model, found: _Found, seconds: float
) -> tuple[float, bool, float]:
    """A true bound on the combined imbalance (module docstring, step 2); whether every
    policy's minimum was proven; the wall time."""
    low: list[float] = []  # each policy's least model variance
    proven, spent = True, 0.0
    each = seconds / max(len(mdl.policies), 1)
    for k in range(len(mdl.policies)):
        m = mdl.model.clone()
        m.minimize(cp_model.LinearExpr.sum([sq_var(m, v) for v in mdl.sq[k]]))
        for i, val in enumerate(found.start):  # the greedy's placement: a search near it lifts the bound
            m.add_hint(m.get_int_var_from_proto_index(i), val)
        solver = _solver(cp_model, each)
        status = solver.solve(m)
        spent += float(solver.wall_time)
        proven &= status == cp_model.OPTIMAL
        raw = max(float(solver.best_objective_bound), 0.0) if status != cp_model.INFEASIBLE else 0.0
        low.append(raw / (mdl.n**3 * mdl.scale[k] ** 2))
    w = [float(world.pw[p]) for p in mdl.policies]
    sigma = joint_minimum(w, list(found.weights), low, found.joint if found.joint is not None else 0.0)
    slack = sum(wk * _rounding(mdl, k) for k, wk in enumerate(w))
    return max(sigma - slack, 0.0), proven, spent


def joint_minimum(w: list[float], lam: list[float], low: list[float], joint: float) -> float:
    """min Σ_k w_k √V_k over V_k >= low_k and Σ_k lam_k V_k >= joint: the least combined
    imbalance the per-policy bounds and the search's bound on the weighted variances allow
    together. The function is concave and increasing, so the minimum is at a vertex of that
    region: every V_k at its bound but one, which makes up the rest of ``joint``."""
    base = [wk * math.sqrt(v) for wk, v in zip(w, low, strict=True)]
    short = joint - sum(lk * v for lk, v in zip(lam, low, strict=True))
    if short <= 0:
        return sum(base)
    return min(
        sum(base) - base[k] + w[k] * math.sqrt(low[k] + short / lam[k]) for k in range(len(w)) if lam[k] > 0
    )


def sequence(start: World, name: str, hosts: np.ndarray, want: dict[int, int]) -> tuple[Seq, int, World]:
    """The moves of ``want`` (VM -> host), lowest combined imbalance first, each valid when
    taken and none above the start's combined imbalance; returns them, how many were
    dropped (never valid so), and the world after them."""
    world = start.copy()
    w = world.arrays()
    P = world.pw.size
    var, tot = np.zeros(P), np.zeros(P)
    ceiling = imbalance(start, hosts)[1] + kernels.OVERLAP_EPS
    pending = dict(want)
    seq: Seq = []
    while pending:
        n, _ = kernels.stats(hosts, world.active, world.score, world.pw, var, tot)
        best, best_v = math.inf, -1
        for v, b in pending.items():
            a = int(world.vm_host[v])
            if not rules.feasible(v, a, b, w, True):
                continue
            after = kernels.move_value(
                v, a, b, n, var, tot, world.score, world.load, world.sc, world.active, world.pw
            )
            if after <= ceiling and after < best:
                best, best_v = after, v
        if best_v < 0:
            break
        kernels.apply_move(best_v, pending.pop(best_v), w)
        seq.append((best_v, int(world.vm_host[best_v]), name))
    return seq, len(pending), world


def replayed(start: World, seq: Seq) -> World:
    """A copy of ``start`` with the moves of ``seq`` applied."""
    world = start.copy()
    w = world.arrays()
    for v, b, _ in seq:
        kernels.apply_move(v, b, w)
    return world


def _cost(penalty: np.ndarray, seq: Seq) -> float:
    """The ``move_cost`` of the moves of ``seq``."""
    return float(penalty[[v for v, _, _ in seq]].sum())


def improve(
    start: World,
    name: str,
    hosts: np.ndarray,
    cands: np.ndarray,
    budget: int,
    greedy: Seq,
    penalty: np.ndarray,
    time_limit: float,
) -> Result:
    """Search the aggregate's target from the greedy's plan ``greedy`` (made on ``start``),
    bound the combined imbalance, and keep the better plan (module docstring)."""
    cp_model = load_cp_model()
    vms = np.flatnonzero(np.isin(start.vm_host, hosts)).astype(np.int64)
    mov = np.isin(vms, cands) & ~_fixed_affinity(start, vms)
    end = replayed(start, greedy)
    plain = imbalance(end, hosts)[1]
    greedy_value = plain + _cost(penalty, greedy)
    notes: list[Reason] = []
    if int(mov.sum()) * hosts.size > MAX_PAIRS:
        notes.append(Reason("spread.exact_skipped", detail=f"more than {MAX_PAIRS} (VM, host) pairs"))
        return Result(greedy, False, None, tuple(notes))  # no solver ran: no optimality (FORMATS §6)
    mdl = _model(cp_model, start, hosts, vms, mov, budget)
    sigma = imbalance(end, hosts)[0]
    sigma = np.where(sigma > 0, sigma, imbalance(start, hosts)[0])
    found = search(cp_model, start, mdl, vms, end.vm_host[vms], sigma, penalty, time_limit * SEARCH_SHARE)
    target, status, spent = found.target, found.status, found.seconds
    low, proven, used = bound(cp_model, start, mdl, found, max(time_limit - spent, 0.01))
    spent += used
    seq, exact, combined = greedy, False, plain
    if target is not None:
        want = {int(v): int(b) for v, b in zip(vms, target, strict=True) if b != start.vm_host[v]}
        ordered, dropped, after = sequence(start, name, hosts, want)
        ordered_plain = imbalance(after, hosts)[1]
        ordered_value = ordered_plain + _cost(penalty, ordered)
        if dropped:
            notes.append(Reason("spread.exact_dropped", count=dropped))
        if ordered_value < greedy_value - 1e-9 or (
            abs(ordered_value - greedy_value) <= 1e-9 and len(ordered) < len(greedy)
        ):
            seq, exact, combined = ordered, True, ordered_plain
    low = min(low, combined)
    done = proven and combined - low <= 1e-9
    state = "optimal" if done else "timeout" if status == "limit" or not proven else "feasible"
    gap = 0.0 if done or combined == 0 else (combined - low) / combined
    notes.append(Reason("spread.exact", detail=f"{SOLVER} {state}", value=combined, limit=low, before=plain))
    opt = Optimality(SOLVER, state, combined, float(low), float(gap), round(spent, 3), "combined")
    return Result(seq, exact, opt, tuple(notes))
