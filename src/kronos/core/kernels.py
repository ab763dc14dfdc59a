"""numba kernels of the balancing search. Arrays in, arrays and status codes out.

Theory of operation (spread). The combined imbalance is Σ_p w_p·σ_p over the
active hosts of an aggregate. Moving VM v from a to b changes only s_a and
s_b, so each σ_p² changes by

    Δvar = ΔQ/n − (2·S·ΔS + ΔS²)/n²,  ΔQ = −2·s_a·d_a + d_a² + 2·s_b·d_b + d_b²

(S, Q the sum and sum of squares, d_x = load_v / score_capacity_x; source
terms only when a counts). That is O(P) per (VM, destination) pair, and it is
non-decreasing in s_b for fixed score capacity. So for every VM the best value
over *any* destination of score-capacity class c is bounded below by the
value at (min_b∈c s_b,p)_p, feasibility ignored: ``_vm_bound``. A round
evaluates the VMs with the lowest bounds first, then scans all VMs in index
order but only evaluates those whose bound does not exceed the best value
found so far. The result is exactly the full scan's move, including its
tie-break: lowest value, then lowest VM index, then lowest host index
(``tests/test_kernels.py`` compares against ``prune=False`` and against a
plain-Python greedy). IEEE rounding is monotone, so the bound also holds in
floating point when it is computed with the same operations as the value.

Measured on this 2-core machine, 1000 hosts × 100 000 VMs: a full scan is
~0.3 s a round; with the bound a round evaluates a few hundred VMs (~2 ms).
"""

from __future__ import annotations

import math

import numpy as np

from kronos.core.jit import njit
from kronos.core.rules import (
    ALL_GROUPS,
    BALANCING,
    EMPTYING,
    EPS,
    PASS,
    cells_for,
    source_load_ok,
    walk,
    walk_hosts,
)

#: a move may leave another aggregate this much more imbalanced (float noise), no more
OVERLAP_EPS = 1e-12
DONE, MISSED, SKIPPED = 0, 1, 2  # pack: outcomes of one attempt to empty a host


@njit(cache=True)
def stats(hosts, active, score, pw, var, tot):
    """Fill var[p] (population variance) and tot[p] (sum) over active ``hosts``.

    Returns (n_active, combined imbalance). Two-pass, sequential: the same
    numbers every time for the same scores.
    """
    P = pw.shape[0]
    n = 0
    for i in range(hosts.shape[0]):
        if active[hosts[i]]:
            n += 1
    comb = 0.0
    for p in range(P):
        s = 0.0
        for i in range(hosts.shape[0]):
            h = hosts[i]
            if active[h]:
                s += score[h, p]
        tot[p] = s
        if n == 0:
            var[p] = 0.0
            continue
        m = s / n
        q = 0.0
        for i in range(hosts.shape[0]):
            h = hosts[i]
            if active[h]:
                d = score[h, p] - m
                q += d * d
        var[p] = q / n
        comb += pw[p] * math.sqrt(var[p])
    return n, comb


@njit(cache=True, inline="always")
def _term(var_p, tot_p, n, sa, da, src_active, sb, db):
    dq = 0.0
    ds = 0.0
    if src_active:
        dq = -2.0 * sa * da + da * da
        ds = -da
    dq = dq + (2.0 * sb * db + db * db)
    ds = ds + db
    nv = var_p + dq / n - (2.0 * tot_p * ds + ds * ds) / (n * n)
    if nv < 0.0:
        nv = 0.0
    return math.sqrt(nv)


# The kernels called once per (VM, host) pair take the arrays they read, not the Arrays
# tuple: passing its three dozen arrays costs about a microsecond a call, inlined or not.


@njit(cache=True, inline="always")
def move_value(v, a, b, n, var, tot, score, load, sc, active, pw):
    """Combined imbalance after moving VM v from host a to host b (b active)."""
    val = 0.0
    for p in range(pw.shape[0]):
        da = load[v, p] / sc[a, p]
        db = load[v, p] / sc[b, p]
        val += pw[p] * _term(var[p], tot[p], n, score[a, p], da, active[a], score[b, p], db)
    return val


@njit(cache=True)
def group_extremes(g_cnt, g_max, g_nmax, g):
    mx = 0
    nmx = 0
    for h in range(g_cnt.shape[1]):
        c = g_cnt[g, h]
        if c > mx:
            mx = c
            nmx = 1
        elif c == mx and c > 0:
            nmx += 1
    g_max[g] = mx
    g_nmax[g] = nmx


@njit(cache=True)
def apply_move(v, b, w):
    """Move v to b in the world's arrays: resources, NUMA cells, scores, group counts.

    A NUMA-placed VM frees its cells on the way out and takes cells on b
    (:func:`kronos.core.rules.choose_cells`; its own cells when it goes
    home, so an undone move restores the snapshot's cells exactly); on a
    host without cells, or where none fit (a VM parked by a search), it
    holds no cell until it moves again.
    """
    a = w.vm_host[v]
    for r in range(w.cap.shape[1]):
        w.used[a, r] -= w.size[v, r]
        w.used[b, r] += w.size[v, r]
    n = w.vm_n[v]
    if n > 0:
        mask = w.vm_cells[v]
        for c in range(w.cell_cap.shape[1]):
            if (mask >> c) & 1:
                w.cell_used[a, c, 0] -= w.numa_need[v, 0] / n
                w.cell_used[a, c, 1] -= w.numa_need[v, 1] / n
        mask = cells_for(v, b, -1, w) if w.n_cells[b] > 0 else 0
        for c in range(w.cell_cap.shape[1]):
            if (mask >> c) & 1:
                w.cell_used[b, c, 0] += w.numa_need[v, 0] / n
                w.cell_used[b, c, 1] += w.numa_need[v, 1] / n
        w.vm_cells[v] = mask
    for p in range(w.score.shape[1]):
        w.score[a, p] -= w.load[v, p] / w.sc[a, p]
        w.score[b, p] += w.load[v, p] / w.sc[b, p]
    w.vm_host[v] = b
    g = w.group[v]
    if g >= 0:
        w.g_cnt[g, a] -= 1
        w.g_cnt[g, b] += 1
        group_extremes(w.g_cnt, w.g_max, w.g_nmax, g)
    w.moved[v] = True


@njit(cache=True, inline="always")
def _vm_bound(v, n, var, tot, vm_host, load, sc, score, active, pw, cls_min, cls_sc):
    a = vm_host[v]
    best = np.inf
    for c in range(cls_min.shape[0]):
        val = 0.0
        for p in range(pw.shape[0]):
            da = load[v, p] / sc[a, p]
            db = load[v, p] / cls_sc[c, p]
            val += pw[p] * _term(var[p], tot[p], n, score[a, p], da, active[a], cls_min[c, p], db)
        if val < best:
            best = val
    return best


@njit(cache=True)
def _holds(x, h, ov):
    """Is host h in other aggregate x?"""
    for i in range(ov.hptr[h], ov.hptr[h + 1]):
        if ov.haggs[i] == x:
            return True
    return False


@njit(cache=True, inline="always")
def _other_value(v, a, b, x, in_a, in_b, ov, score, load, sc, active, pw):
    """Combined imbalance of other aggregate x once v moved from a to b (the ``move_value`` algebra)."""
    n = ov.n[x]
    if n == 0:
        return 0.0
    val = 0.0
    for p in range(pw.shape[0]):
        dq = 0.0
        ds = 0.0
        if in_a and active[a]:
            da = load[v, p] / sc[a, p]
            dq += -2.0 * score[a, p] * da + da * da
            ds -= da
        if in_b and active[b]:
            db = load[v, p] / sc[b, p]
            dq += 2.0 * score[b, p] * db + db * db
            ds += db
        nv = ov.var[x, p] + dq / n - (2.0 * ov.tot[x, p] * ds + ds * ds) / (n * n)
        if nv < 0.0:
            nv = 0.0
        val += pw[p] * math.sqrt(nv)
    return val


@njit(cache=True)
def others_kept(v, a, b, ov, score, load, sc, active, pw):
    """A balancing move raises no other aggregate's combined imbalance (hosts shared by aggregates)."""
    for i in range(ov.hptr[a], ov.hptr[a + 1]):
        x = ov.haggs[i]
        after = _other_value(v, a, b, x, True, _holds(x, b, ov), ov, score, load, sc, active, pw)
        if after > ov.cur[x] + OVERLAP_EPS:
            return False
    for i in range(ov.hptr[b], ov.hptr[b + 1]):
        x = ov.haggs[i]
        if _holds(x, a, ov):
            continue
        if _other_value(v, a, b, x, False, True, ov, score, load, sc, active, pw) > ov.cur[x] + OVERLAP_EPS:
            return False
    return True


@njit(cache=True)
def refresh_others(h, ov, w):
    """Recompute the statistics of every other aggregate holding host h."""
    for i in range(ov.hptr[h], ov.hptr[h + 1]):
        x = ov.haggs[i]
        members = ov.hosts[ov.ptr[x] : ov.ptr[x + 1]]
        n, comb = stats(members, w.active, w.score, w.pw, ov.var[x], ov.tot[x])
        ov.n[x] = n
        ov.cur[x] = comb


@njit(cache=True, inline="always")
def _scan_vm(v, hosts, bv, bh, bval, w, soft_hard, var, tot, n, ov, out, pv):
    a = w.vm_host[v]
    mode = EMPTYING
    if soft_hard:
        if not source_load_ok(v, a, w.up, w.score, w.load, w.sc):
            return bv, bh, bval  # no host takes a VM whose weight is more than its host's score
        mode = ALL_GROUPS
    walk_hosts(v, a, hosts, -1, mode, False, out, w)
    score, load, sc, active, pw = w.score, w.load, w.sc, w.active, w.pw
    shared = ov.hptr.shape[0] > 1 and ov.hptr[-1] > 0
    for i in range(hosts.shape[0]):
        b = hosts[i]
        if b == a or out[i] != PASS:
            continue
        if shared and not others_kept(v, a, b, ov, score, load, sc, active, pw):
            continue
        val = move_value(v, a, b, n, var, tot, score, load, sc, active, pw) + pv
        if val < bval or (val == bval and (bv < 0 or v < bv or (v == bv and b < bh))):
            bv = v
            bh = b
            bval = val
    return bv, bh, bval


@njit(cache=True)
def best_move(hosts, cands, host_cls, n_cls, limit, prune, w, soft_hard, var, tot, n, ov, pen):
    """The best single move of ``cands`` (VM indices) to ``hosts`` (destinations).

    Returns (v, b, value); v = -1 when no feasible move reaches ``limit``.
    ``host_cls[i]`` is the score-capacity class of ``hosts[i]``. A move's
    value is the combined imbalance after it plus ``pen[v]``, what moving v
    costs (``move_cost``; zeros when off): the bound of a VM rises by as much.
    """
    P = w.pw.shape[0]
    bv = -1
    bh = -1
    bval = limit
    V = cands.shape[0]
    lb = np.full(V, -np.inf)
    done = np.zeros(V, dtype=np.bool_)
    out = np.empty(hosts.shape[0], dtype=np.int64)
    # scan order: the most promising VMs first (they set a tight bound), then all
    order = np.empty(V + 8, dtype=np.int64)
    m = 0
    if prune:
        cls_min = np.full((n_cls, P), np.inf)
        cls_sc = np.ones((n_cls, P))
        enabled, up, leaving, sc, score = w.enabled, w.up, w.leaving, w.sc, w.score
        for i in range(hosts.shape[0]):
            h = hosts[i]
            if not enabled[h] or not up[h] or leaving[h]:
                continue
            c = host_cls[i]
            for p in range(P):
                cls_sc[c, p] = sc[h, p]
                if score[h, p] < cls_min[c, p]:
                    cls_min[c, p] = score[h, p]
        for k in range(V):
            if not done[k]:
                lb[k] = _vm_bound(cands[k], n, var, tot, w.vm_host, w.load, w.sc, w.score, w.active, w.pw,
                                  cls_min, cls_sc) + pen[cands[k]]  # fmt: skip
        seeded = done.copy()
        for _ in range(8):
            best_k = -1
            for j in range(V):
                if not seeded[j] and (best_k < 0 or lb[j] < lb[best_k]):
                    best_k = j
            if best_k < 0:
                break
            seeded[best_k] = True
            order[m] = best_k
            m += 1
    for k in range(V):
        order[m] = k
        m += 1
    for t in range(m):
        k = order[t]
        if done[k] or lb[k] > bval:
            continue
        done[k] = True
        v = cands[k]
        bv, bh, bval = _scan_vm(v, hosts, bv, bh, bval, w, soft_hard, var, tot, n, ov, out, pen[v])
    return bv, bh, bval


@njit(cache=True, inline="always")
def fit_residual(v, b, cap, used, size, pmax, score, load, sc, norm):
    """Squared L2 norm of b's free room once v is on it: lower = tighter.

    Every dimension a move must respect counts: the three resources against
    capacity and each policy's score against its ``max_host_score``, each in
    units of ``norm`` (the aggregate's average host), so that room means the
    same on a big host as on a small one. Placing each VM where the least
    room is left over is the vector form of Best Fit.
    """
    s = 0.0
    R = cap.shape[1]
    for r in range(R):
        x = (cap[b, r] - used[b, r] - size[v, r]) / norm[r]
        s += x * x
    for p in range(pmax.shape[0]):
        x = (pmax[p] - score[b, p] - load[v, p] / sc[b, p]) * sc[b, p] / norm[R + p]
        s += x * x
    return s


@njit(cache=True)
def best_fit(v, a, hosts, open_, w, norm):
    """The open host of ``hosts`` that v (now on a) fits tightest; -1 if none is feasible."""
    best = -1
    bval = np.inf
    out = np.empty(hosts.shape[0], dtype=np.int64)
    walk_hosts(v, a, hosts, -1, BALANCING, False, out, w)
    cap, used, size, pmax, score, load, sc = w.cap, w.used, w.size, w.pmax, w.score, w.load, w.sc
    for i in range(hosts.shape[0]):
        b = hosts[i]
        if not open_[b] or b == a or out[i] != PASS:
            continue
        val = fit_residual(v, b, cap, used, size, pmax, score, load, sc, norm)
        if val < bval:
            best = b
            bval = val
    return best


@njit(cache=True)
def room_for(items, h, hosts, open_, w):
    """Do the open hosts other than h have, in total, room for ``items`` in every dimension?"""
    P = w.pmax.shape[0]
    R = w.cap.shape[1]
    need = np.zeros(R + P)
    for i in range(items.shape[0]):
        v = items[i]
        for r in range(R):
            need[r] += w.size[v, r]
        for p in range(P):
            need[R + p] += w.load[v, p]
    for i in range(hosts.shape[0]):
        b = hosts[i]
        if b == h or not open_[b]:
            continue
        for r in range(R):
            need[r] -= w.cap[b, r] - w.used[b, r]
        for p in range(P):
            need[R + p] -= (w.pmax[p] - w.score[b, p]) * w.sc[b, p]
    return bool((need <= EPS).all())


@njit(cache=True, inline="always")
def _residual_swap(v, u, b, cap, used, size, pmax, score, load, sc, norm):
    """fit_residual of b once u has left it and v has arrived."""
    s = 0.0
    R = cap.shape[1]
    for r in range(R):
        x = (cap[b, r] - used[b, r] + size[u, r] - size[v, r]) / norm[r]
        s += x * x
    for p in range(pmax.shape[0]):
        x = ((pmax[p] - score[b, p]) * sc[b, p] + load[u, p] - load[v, p]) / norm[R + p]
        s += x * x
    return s


@njit(cache=True)
def _undo(log_v, log_h, n, w):
    for i in range(n - 1, -1, -1):
        apply_move(log_v[i], log_h[i], w)


@njit(cache=True)
def eliminate(h, hosts, vms, movable, origin, key, open_, limit, swaps, w, norm):
    """Empty host h in target space, all or nothing; returns (status, moves delta, work).

    status: DONE; MISSED when the search failed; SKIPPED when a cheap test
    ruled h out first (a VM that may not move, the budget, too little room in
    total), which costs next to nothing and so does not count as a miss.

    The VMs on h form a pool. The biggest goes where it fits tightest; if it
    fits nowhere, it swaps with a strictly smaller VM that is parked away from
    its own host (never a VM still on its starting host: those stay put, so a
    kept host only ever gains), and that one joins the pool. The pool's total
    size falls with every step, so this ends. A swap search scans every VM;
    ``swaps`` caps them per attempt. On failure, or when more than ``limit`` more VMs
    would end away from their starting host, everything is put back.

    work: what the attempt cost, counted in VMs and hosts looked at (one scan
    of ``vms`` for the pool, one of ``hosts`` per VM placed, one of ``vms``
    per swap search), so that callers can cap their search without a clock.
    """
    pool = np.empty(vms.shape[0] + 1, dtype=np.int64)
    m = 0
    home = 0
    for j in range(vms.shape[0]):
        v = vms[j]
        if w.vm_host[v] == h:
            if not movable[v]:
                return SKIPPED, 0, vms.shape[0]
            pool[m] = v
            m += 1
            if origin[v] == h:
                home += 1
    spent = vms.shape[0] + hosts.shape[0]
    if m == 0 or home > limit or not room_for(pool[:m], h, hosts, open_, w):
        return SKIPPED, 0, spent
    swaps_left = swaps
    out = np.empty(hosts.shape[0], dtype=np.int64)
    cap_log = 4 * m + 64
    log_v = np.empty(cap_log, dtype=np.int64)
    log_h = np.empty(cap_log, dtype=np.int64)
    n_log = 0
    delta = 0
    open_[h] = False
    ok = True
    while m > 0:
        k = 0
        for i in range(1, m):
            if key[pool[i]] > key[pool[k]] or (key[pool[i]] == key[pool[k]] and pool[i] < pool[k]):
                k = i
        v = pool[k]
        o = origin[v]
        best = -1
        bval = np.inf
        walk_hosts(v, o, hosts, -1, BALANCING, True, out, w)
        spent += hosts.shape[0]
        for i in range(hosts.shape[0]):
            b = hosts[i]
            if open_[b] and out[i] == PASS:
                val = fit_residual(v, b, w.cap, w.used, w.size, w.pmax, w.score, w.load, w.sc, norm)
                if val < bval:
                    best = b
                    bval = val
        victim = -1
        if best < 0 and swaps_left > 0:
            swaps_left -= 1
            spent += vms.shape[0]
            # v takes the place of a smaller VM u parked on an open host, which then goes to h
            us = np.empty(vms.shape[0], dtype=np.int64)
            n_us = 0
            for j in range(vms.shape[0]):
                u = vms[j]
                b = w.vm_host[u]
                if open_[b] and b != origin[u] and movable[u] and key[u] < key[v]:
                    us[n_us] = u
                    n_us += 1
            us = us[:n_us]
            at = w.vm_host[us]
            broken = np.empty(n_us, dtype=np.int64)
            no_skip = np.zeros(0, dtype=np.bool_)
            mine = pool[k : k + 1]
            walk(mine, origin[mine], at, us, BALANCING, True, -1, no_skip, False, broken, w)
            for j in range(n_us):
                if broken[j] == PASS:
                    u, b = us[j], at[j]
                    val = _residual_swap(v, u, b, w.cap, w.used, w.size, w.pmax, w.score, w.load, w.sc, norm)
                    if val < bval:
                        best = b
                        bval = val
                        victim = u
        if best < 0 or n_log + 2 > cap_log:
            ok = False
            break
        if victim >= 0:
            log_v[n_log] = victim
            log_h[n_log] = best
            n_log += 1
            delta += (1 if h != origin[victim] else 0) - 1
            apply_move(victim, h, w)
            pool[m] = victim
            m += 1
        log_v[n_log] = v
        log_h[n_log] = h
        n_log += 1
        delta += (1 if best != o else 0) - (1 if h != o else 0)
        apply_move(v, best, w)
        pool[k] = pool[m - 1]
        m -= 1
    if not ok or delta > limit:
        _undo(log_v, log_h, n_log, w)
        open_[h] = True
        return MISSED, 0, spent
    return DONE, delta, spent


@njit(cache=True, inline="always")
def slack(b, cap, used, pmax, score, sc, norm):
    """Free room of b summed over every dimension in ``norm`` units (MBS's slack)."""
    s = 0.0
    R = cap.shape[1]
    for r in range(R):
        s += (cap[b, r] - used[b, r]) / norm[r]
    for p in range(pmax.shape[0]):
        s += (pmax[p] - score[b, p]) * sc[b, p] / norm[R + p]
    return s


@njit(cache=True)
def fill_bin(b, cand, n, park, origin, taken, nodes, w, norm):
    """Move to b the subset of ``cand[:n]`` (biggest first) that leaves it least slack.

    Minimum Bin Slack (Gupta & Ho): a depth-first search over subsets in
    order; its first path is First Fit Decreasing into this one host, and
    backtracking stops after ``n + nodes`` evaluations. The chosen VMs leave
    ``park`` and are marked ``taken``. Returns (evaluations spent, VMs placed).

    ``park`` < 0: each VM waits on its ``origin`` (the host its step leaves),
    and is judged by the full single-move rules from there, soft groups kept
    (evacuate and drain, whose steps run in this order). Otherwise the pool
    is parked on ``park`` and judged in target space (:func:`fits`, pack).
    """
    chosen = np.empty(n, dtype=np.int64)
    best = np.empty(n, dtype=np.int64)
    n_best = 0
    best_slack = slack(b, w.cap, w.used, w.pmax, w.score, w.sc, norm)
    # one walk finds the next candidate b takes (one call per candidate costs more than its rules)
    first = np.empty(n, dtype=np.int64)
    srcs = origin[cand[:n]]
    to_b = np.full(1, b, dtype=np.int64)
    no_x = np.full(1, -1, dtype=np.int64)
    mode = ALL_GROUPS if park < 0 else BALANCING
    d = 0
    j = 0
    spent = 0
    while True:
        found = False
        while j < n:
            i = j + walk(cand[j:n], srcs[j:n], to_b, no_x, mode, park >= 0, -1, taken, True, first[j:n], w)
            spent += min(i + 1, n) - j
            if i >= n:
                j = n
                break
            v = cand[i]
            j = i + 1
            if park < 0 and origin[v] == b:
                continue  # not a move
            apply_move(v, b, w)
            chosen[d] = i
            d += 1
            found = True
            s = slack(b, w.cap, w.used, w.pmax, w.score, w.sc, norm)
            if s < best_slack - EPS:
                best_slack = s
                n_best = d
                best[:d] = chosen[:d]
            break
        if best_slack <= EPS or spent >= n + nodes:
            break
        if not found:
            if d == 0:
                break
            d -= 1
            v = cand[chosen[d]]
            apply_move(v, origin[v] if park < 0 else park, w)
            j = chosen[d] + 1
    for i in range(d - 1, -1, -1):
        v = cand[chosen[i]]
        apply_move(v, origin[v] if park < 0 else park, w)
    for i in range(n_best):
        v = cand[best[i]]
        apply_move(v, b, w)
        taken[v] = True
    return spent, n_best


@njit(cache=True)
def fill_fullest_first(hosts, usable, cand, n, park, origin, taken, nodes, work, w, norm):
    """:func:`fill_bin` each ``usable`` host of ``hosts``, fullest (least slack) first.

    Stops when ``cand[:n]`` is all placed or ``work`` is spent; returns
    (candidates left, work left).
    """
    m = 0
    bins = np.empty(hosts.shape[0], dtype=np.int64)
    room = np.empty(hosts.shape[0])
    for i in range(hosts.shape[0]):
        b = hosts[i]
        if usable[b]:
            bins[m] = b
            room[m] = slack(b, w.cap, w.used, w.pmax, w.score, w.sc, norm)
            m += 1
    ranked = np.argsort(room[:m], kind="mergesort")
    left = n
    for t in range(m):
        if left == 0 or work <= 0:
            break
        spent, placed = fill_bin(bins[ranked[t]], cand, n, park, origin, taken, nodes, w, norm)
        work -= spent
        left -= placed
    return left, work


@njit(cache=True)
def repack(h, hosts, vms, movable, origin, key, open_, limit, nodes, work, w, norm):
    """Empty h by packing every parked VM again, host by host (fullest first), with MBS.

    The pool is h's VMs plus every VM already away from its starting host;
    kept hosts keep their own VMs and are refilled from the pool with
    :func:`fill_bin`. Success when the pool empties and no more than
    ``limit`` VMs end away from home; otherwise everything is put back.
    Returns (status as :func:`eliminate`, moves after, work left); SKIPPED
    also when one attempt could cost more than the ``work`` left.
    """
    away = 0
    m = 0
    for j in range(vms.shape[0]):
        v = vms[j]
        if w.vm_host[v] == h and not movable[v]:
            return SKIPPED, 0, work
        if w.vm_host[v] != origin[v] or origin[v] == h:
            away += 1
        if w.vm_host[v] == h or (w.vm_host[v] != origin[v] and movable[v]):
            m += 1
    n_open = 0
    for i in range(hosts.shape[0]):
        if open_[hosts[i]] and hosts[i] != h:
            n_open += 1
    if away > limit or n_open * (m + nodes) > work:
        return SKIPPED, 0, work
    saved = w.vm_host.copy()
    open_[h] = False
    # park the pool on h: it is closed, so nothing is placed there
    cand = np.empty(m, dtype=np.int64)
    k = 0
    for j in range(vms.shape[0]):
        v = vms[j]
        if w.vm_host[v] == h or (w.vm_host[v] != origin[v] and movable[v]):
            if w.vm_host[v] != h:
                apply_move(v, h, w)
            cand[k] = v
            k += 1
    cand = cand[np.argsort(-key[cand], kind="mergesort")]
    taken = np.zeros(w.vm_host.shape[0], dtype=np.bool_)
    left, work = fill_fullest_first(hosts, open_, cand, m, h, origin, taken, nodes, work, w, norm)
    moves = 0
    for j in range(vms.shape[0]):
        v = vms[j]
        if w.vm_host[v] != origin[v]:
            moves += 1
    if left > 0 or moves > limit:
        for j in range(vms.shape[0]):
            v = vms[j]
            if w.vm_host[v] != saved[v]:
                apply_move(v, saved[v], w)
        open_[h] = True
        return MISSED, 0, work
    return DONE, moves, work


@njit(cache=True)
def pack_hosts(
    hosts, order, vms, movable, key, open_, budget, rounds, swaps, tries, misses_max, work, nodes,
    repack_misses, w, norm,
):  # fmt: skip
    """Empty hosts of ``order`` one after another with :func:`eliminate`, then retry the rest.

    Works in *target space*: a VM parked on a host that is emptied later is
    placed again, and the plan moves it once, from where it started to where
    it ends. ``open_`` marks the hosts that may receive (cleared as hosts
    empty). ``budget`` caps the VMs that end away from their starting host;
    ``rounds`` passes of :func:`eliminate` (``swaps`` swap searches per
    attempt, ``tries`` work in all, counted as :func:`eliminate` counts it),
    then :func:`repack` (``nodes`` per host, ``work`` evaluations in all).
    ``misses_max`` > 0: the emptying attempts also stop after that many
    misses in a row (the search of before: cheap, but it may stop short while
    hosts can still be emptied); 0: only ``tries`` stops them. Likewise
    ``repack_misses`` for the repacks.
    Returns the emptied hosts in order.
    """
    origin = w.vm_host.copy()
    emptied = np.empty(order.shape[0], dtype=np.int64)
    n_emptied = 0
    moves = 0
    for rnd in range(rounds):
        if rnd > 0:
            # later rounds: whatever is still open, emptiest first
            fill = np.full(order.shape[0], np.inf)
            for t in range(order.shape[0]):
                h = order[t]
                if open_[h]:
                    fill[t] = 0.0
                    for r in range(3):
                        if w.cap[h, r] > 0.0:
                            fill[t] += w.used[h, r] / w.cap[h, r]
            order = order[np.argsort(fill, kind="mergesort")]
        progress = False
        misses = 0
        for t in range(order.shape[0]):
            h = order[t]
            if not open_[h]:
                continue
            if tries <= 0:
                break
            left = budget - moves
            status, delta, spent = eliminate(h, hosts, vms, movable, origin, key, open_, left, swaps, w, norm)
            tries -= spent
            if status == DONE:
                moves += delta
                emptied[n_emptied] = h
                n_emptied += 1
                progress = True
                misses = 0
            elif status == MISSED:
                # hosts come emptiest first: after a run of misses the rest are fuller
                misses += 1
                if misses_max > 0 and misses >= misses_max:
                    break
        if not progress or tries <= 0:
            break
    # then MBS repacks, emptiest open host first, until ``work`` is spent or ``repack_misses`` fail in a row
    fill = np.full(order.shape[0], np.inf)
    for t in range(order.shape[0]):
        if open_[order[t]]:
            fill[t] = -slack(order[t], w.cap, w.used, w.pmax, w.score, w.sc, norm)
    order = order[np.argsort(fill, kind="mergesort")]
    misses = 0
    for t in range(order.shape[0]):
        h = order[t]
        if not open_[h] or work <= 0:
            continue
        status, total, work = repack(h, hosts, vms, movable, origin, key, open_, budget, nodes, work, w, norm)
        if status == SKIPPED:
            continue
        if status == MISSED:
            misses += 1
            if repack_misses > 0 and misses >= repack_misses:
                break
            continue
        misses = 0
        moves = total
        emptied[n_emptied] = h
        n_emptied += 1
    return emptied[:n_emptied]
