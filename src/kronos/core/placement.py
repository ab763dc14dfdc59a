"""numba kernels that place VMs leaving hosts (evacuate, drain) on the rest.

Unlike spread and pack, the VMs to move are given: everything on the failed
or drained hosts. The question is only where each goes. The kernels work in
target space on a copy of the world: an evacuee already given a host may be
given another while the plan is being built (its one step goes from its own
host to its final one), which is what lets :func:`make_room` fit a VM that
found no room by moving an earlier evacuee aside.

``how`` picks what "best" means among feasible hosts: ``MIN_IMBALANCE`` is
the combined imbalance of the aggregate afterwards (the issue's rule);
``BEST_FIT`` is the tightest vector fit (:func:`kernels.fit_residual`), which
wastes least room when room is short. In both, a host that keeps a soft
server-group rule beats any host that makes it worse.
"""

from __future__ import annotations

import numpy as np

from kronos.core.jit import njit
from kronos.core.kernels import apply_move, fill_fullest_first, fit_residual, move_value, stats
from kronos.core.rules import BALANCING, EMPTYING, PASS, feasible, group_worse, walk_hosts

MIN_IMBALANCE, BEST_FIT, FILL_HOSTS = 0, 1, 2


@njit(cache=True)
def best_destination(v, a, hosts, how, soft_hard, w, norm, var, tot, n):
    """The feasible host of ``hosts`` for v (now on a): (host or -1, soft rule made worse).

    Order: keeps soft rules, then the lowest value for ``how``, then the
    lowest host index.
    """
    best = -1
    bworse = True
    bval = np.inf
    out = np.empty(hosts.shape[0], dtype=np.int64)
    walk_hosts(v, a, hosts, -1, BALANCING if soft_hard else EMPTYING, False, out, w)
    score, load, sc, active, pw = w.score, w.load, w.sc, w.active, w.pw
    cap, used, size, pmax = w.cap, w.used, w.size, w.pmax
    group, g_kind, g_lim, g_cnt, g_max, g_nmax = w.group, w.g_kind, w.g_lim, w.g_cnt, w.g_max, w.g_nmax
    g = group[v]
    for i in range(hosts.shape[0]):
        b = hosts[i]
        if b == a or out[i] != PASS:
            continue
        worse = g >= 0 and g_kind[g] >= 2 and group_worse(g, a, b, g_kind, g_lim, g_cnt, g_max, g_nmax)
        if how == MIN_IMBALANCE:
            val = move_value(v, a, b, n, var, tot, score, load, sc, active, pw)
        else:
            val = fit_residual(v, b, cap, used, size, pmax, score, load, sc, norm)
        if best < 0 or (bworse and not worse) or (worse == bworse and val < bval):
            best = b
            bworse = worse
            bval = val
    return best, bworse


@njit(cache=True)
def place_all(order, hosts, how, w, norm):
    """Give each VM of ``order`` in turn its best destination; -1 where none is feasible."""
    P = w.pw.shape[0]
    var = np.zeros(P)
    tot = np.zeros(P)
    n, _ = stats(hosts, w.active, w.score, w.pw, var, tot)
    dest = np.full(order.shape[0], -1, dtype=np.int64)
    for k in range(order.shape[0]):
        v = order[k]
        b, _ = best_destination(v, w.vm_host[v], hosts, how, False, w, norm, var, tot, n)
        if b >= 0:
            apply_move(v, b, w)
            n, _ = stats(hosts, w.active, w.score, w.pw, var, tot)
            dest[k] = b
    return dest


@njit(cache=True)
def make_room(u, placed, origin, hosts, work, w, norm):
    """Fit u (waiting where it is) by pushing placed VMs along a chain of up to two:
    u takes the host of e, and e takes a free spot or the host of f, which
    takes a free spot. (Written out, not recursive: numba's on-disk cache
    does not survive recursion.)

    ``origin[e]`` is the host e is leaving (its step's source); ``work`` caps
    evaluations. Returns (placed?, work left); a failure leaves the world as it was.
    """
    P = w.pw.shape[0]
    var = np.zeros(P)
    tot = np.zeros(P)
    a_u = w.vm_host[u]
    c, _ = best_destination(u, a_u, hosts, BEST_FIT, False, w, norm, var, tot, 1)
    if c >= 0:
        apply_move(u, c, w)
        return True, work
    for i in range(placed.shape[0]):
        e = placed[i]
        b = w.vm_host[e]
        x = origin[e]
        if b == x or work <= 0:
            continue
        work -= 1
        apply_move(e, x, w)
        if feasible(u, a_u, b, w, False):
            apply_move(u, b, w)
            c, _ = best_destination(e, x, hosts, BEST_FIT, False, w, norm, var, tot, 1)
            work -= hosts.shape[0]
            if c >= 0:
                apply_move(e, c, w)
                return True, work
            for j in range(placed.shape[0]):
                f = placed[j]
                d = w.vm_host[f]
                y = origin[f]
                if f == e or d == y or work <= 0:
                    continue
                work -= 1
                apply_move(f, y, w)
                if feasible(e, x, d, w, False):
                    apply_move(e, d, w)
                    c, _ = best_destination(f, y, hosts, BEST_FIT, False, w, norm, var, tot, 1)
                    work -= hosts.shape[0]
                    if c >= 0:
                        apply_move(f, c, w)
                        return True, work
                    apply_move(e, x, w)
                apply_move(f, d, w)
            apply_move(u, a_u, w)
        apply_move(e, b, w)
    return False, work


@njit(cache=True)
def improve(placed, hosts, rounds, w):
    """Re-target placed VMs where that lowers the combined imbalance (soft rules kept).

    Used after a Best-Fit placement: everything stays placed, and the load
    then spreads as the min-imbalance rule would have spread it. Returns the
    number of re-targetings.
    """
    P = w.pw.shape[0]
    var = np.zeros(P)
    tot = np.zeros(P)
    out = np.empty(hosts.shape[0], dtype=np.int64)
    changed = 0
    for _ in range(rounds):
        before = changed
        for k in range(placed.shape[0]):
            e = placed[k]
            b = w.vm_host[e]
            n, cur = stats(hosts, w.active, w.score, w.pw, var, tot)
            best = -1
            bval = cur - 1e-12
            walk_hosts(e, b, hosts, -1, BALANCING, False, out, w)
            for i in range(hosts.shape[0]):
                c = hosts[i]
                if c == b or out[i] != PASS:
                    continue
                val = move_value(e, b, c, n, var, tot, w.score, w.load, w.sc, w.active, w.pw)
                if val < bval:
                    best = c
                    bval = val
            if best >= 0:
                apply_move(e, best, w)
                changed += 1
        if changed == before:
            break
    return changed


@njit(cache=True)
def fill_hosts(order, hosts, origin, nodes, work, w, norm):
    """Place ``order`` (biggest first) host by host, fullest first (:func:`kernels.fill_fullest_first`).

    For tight cases, where VM-by-VM rules leave room in scattered pieces: each
    host gets the set of VMs that fills it best. ``work`` caps evaluations.
    """
    taken = np.zeros(w.vm_host.shape[0], dtype=np.bool_)
    n = order.shape[0]
    usable = w.enabled & w.up & ~w.leaving
    left, _ = fill_fullest_first(hosts, usable, order, n, -1, origin, taken, nodes, work, w, norm)
    return left
