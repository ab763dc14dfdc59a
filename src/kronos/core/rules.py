"""The placement rules: one table, each rule with one name, one predicate and one explanation.

Every search (spread, pack, affinity repair, evacuate, drain) asks the same
question, "may VM v go from host a to host b?", and every explanation
answers "why not?". Both answers come from here. A rule has

- a stable ``name`` (``capacity.vcpus``, ``group.anti-affinity``): what
  plans, ``kronos explain`` and reports call it;
- one predicate: for the VM rules (may this VM move at all) a vectorised
  mask over the world's arrays; for the host and move rules a numba
  predicate ``(v, a, b, x, w) -> bool`` (x: a VM leaving b first, -1 for
  none; target-space searches swap);
- one ``explain``: the :class:`~kronos.core.model.Reason` of a failure,
  with the numbers (``needs 16 vCPUs, cmp-7 has 15 free``), and one ``text``
  that renders it.

:func:`walk` is where the host and move rules are written: it walks them
in table order for many (VM, source, destination) pairs at once, and is the
only feasibility test the kernels use (:func:`first_failing`, ``feasible``,
``fits`` and each rule's predicate are that walk for one pair).
``tests/test_rules.py`` walks the table and holds each predicate to the
plain-Python reference of the same name in ``tests/naive.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import numpy as np
from attrs import frozen

from kronos.core import phases
from kronos.core.arrays import (
    BUSY,
    COOLDOWN,
    DEVICES,
    ERROR,
    GROUP_KIND_NAMES,
    NO_PROFILE,
    NOT_ACTIVE,
    NOT_MIGRATABLE,
    QUARANTINE,
    SHUTOFF,
    Arrays,
    World,
)
from kronos.core.jit import njit
from kronos.core.model import Reason

EPS = 1e-9

# ---------------------------------------------------------------------------
# host and move predicates: True when the rule holds for v going a -> b


# The rules are written once, in :func:`walk` (why it is one flat loop: its docstring).
# ``only`` (a rule's index) makes the same loop test that rule alone: the table's
# per-rule predicates, which tests/test_rules.py holds against tests/naive.py.


@njit(cache=True)
def source_load_ok(v, a, up, score, load, sc):
    """Taking v off a leaves a's scores at 0 or more: a weight above its host's score is bad
    data. A down host reports no scores: there is nothing to judge (source.up holds its VMs)."""
    if not up[a]:
        return True
    for p in range(score.shape[1]):
        if score[a, p] - load[v, p] / sc[a, p] < -EPS:
            return False
    return True


@njit(cache=True, inline="always")
def _cell_free(b, c, d, x, cell_cap, cell_used, vm_host, vm_n, vm_cells, numa_need):
    """Free vCPUs (d=0) or MiB (d=1) in cell c of b, counting x's share there as free (x >= 0)."""
    f = cell_cap[b, c, d] - cell_used[b, c, d]
    if x >= 0 and vm_host[x] == b and vm_n[x] > 0 and (vm_cells[x] >> c) & 1:
        f += numa_need[x, d] / vm_n[x]
    return f


@njit(cache=True, inline="always")
def cells_fit(v, b, x, n_cells, cell_cap, cell_used, vm_host, vm_n, vm_cells, numa_need):
    """Whether :func:`choose_cells` finds cells (n of b's cells each with room for a
    share): the walk asks this of every pair, and needs no choice, only a count."""
    n = vm_n[v]
    if n > n_cells[b]:
        return False
    sv = numa_need[v, 0] / n
    sm = numa_need[v, 1] / n
    room = 0
    for c in range(n_cells[b]):
        if (
            sv <= _cell_free(b, c, 0, x, cell_cap, cell_used, vm_host, vm_n, vm_cells, numa_need) + EPS
            and sm <= _cell_free(b, c, 1, x, cell_cap, cell_used, vm_host, vm_n, vm_cells, numa_need) + EPS
        ):
            room += 1
            if room >= n:
                return True
    return False


@njit(cache=True)
def choose_cells(v, b, x, n_cells, cell_cap, cell_used, vm_host, vm_n, vm_cells, vm_cells0, home, numa_need):
    """The NUMA cells of b that v would take (a bitmask; 0 when none fit or v needs none).

    Nova's fitting: n distinct cells (n = the cells v spans now), each with
    room for an even share of v's vCPUs and memory. Going home, v takes its
    own cells back when they are free; elsewhere the tightest cells that fit,
    so the largest free cells stay whole for the guests that need them.
    """
    n = vm_n[v]
    K = n_cells[b]
    if n == 0 or n > K:
        return 0
    sv = numa_need[v, 0] / n
    sm = numa_need[v, 1] / n
    if b == home[v] and vm_cells0[v] != 0:
        ok = True
        for c in range(K):
            if (vm_cells0[v] >> c) & 1 and (
                sv > _cell_free(b, c, 0, x, cell_cap, cell_used, vm_host, vm_n, vm_cells, numa_need) + EPS
                or sm > _cell_free(b, c, 1, x, cell_cap, cell_used, vm_host, vm_n, vm_cells, numa_need) + EPS
            ):
                ok = False
        if ok:
            return vm_cells0[v]
    mask = 0
    for _ in range(n):
        best = -1
        left_best = np.inf
        for c in range(K):
            if (mask >> c) & 1:
                continue
            fv = _cell_free(b, c, 0, x, cell_cap, cell_used, vm_host, vm_n, vm_cells, numa_need)
            fm = _cell_free(b, c, 1, x, cell_cap, cell_used, vm_host, vm_n, vm_cells, numa_need)
            if sv > fv + EPS or sm > fm + EPS:
                continue
            left = (fv - sv) / max(cell_cap[b, c, 0], EPS) + (fm - sm) / max(cell_cap[b, c, 1], EPS)
            if left < left_best:
                best = c
                left_best = left
        if best < 0:
            return 0
        mask |= 1 << best
    return mask


@njit(cache=True)
def cells_for(v, b, x, w):
    """:func:`choose_cells` with the world's arrays (one-off callers)."""
    return choose_cells(v, b, x, w.n_cells, w.cell_cap, w.cell_used, w.vm_host, w.vm_n, w.vm_cells,
                        w.vm_cells0, w.home, w.numa_need)  # fmt: skip


@njit(cache=True)
def group_worse(g, a, b, g_kind, g_lim, g_cnt, g_max, g_nmax):
    """Would moving one member of group g from a to b raise its violation measure?

    Measures (as FORMATS.md / check.py): affinity kinds n − max_h count;
    anti-affinity kinds Σ_h max(0, count − limit).
    """
    ca = g_cnt[g, a]
    cb = g_cnt[g, b]
    k = g_kind[g]
    if k == 1 or k == 3:
        lim = g_lim[g]
        change = max(0, ca - 1 - lim) - max(0, ca - lim) + max(0, cb + 1 - lim) - max(0, cb - lim)
        return change > 0
    mx = g_max[g]
    after = mx if (ca < mx or g_nmax[g] >= 2) else mx - 1
    if cb + 1 > after:
        after = cb + 1
    return after < mx


# indices of the host and move rules, in table order (the order of the walk)
(HOST_ENABLED, HOST_UP, HOST_LEAVING, SOURCE_LOAD, AZ, EXTRA_SPECS, TRAITS_REQUIRED, TRAITS_FORBIDDEN,
 CPU_COMPAT, NUMA, MAX_HOST_SCORE, GROUP_AFFINITY, GROUP_ANTI, GROUP_SOFT_AFFINITY, GROUP_SOFT_ANTI,
 CAPACITY) = range(16)  # fmt: skip
#: capacity comes between cpu_compat and numa in the walk; its index is CAPACITY + the class's column
PASS = -1
#: the walk's modes: emptying hosts (evacuate, drain: hard server-group rules only),
#: balancing (every group rule, and source.load), every group rule without source.load
#: (the caller tested it already, or an emptying that keeps soft rules too)
EMPTYING, BALANCING, ALL_GROUPS = 0, 1, 2
#: walk's entry for a pair it was told to skip
SKIPPED = -2


@njit(cache=True)
def walk(vs, srcs, dsts, xs, mode, target, only, skip, stop, out, w):
    """``out[i]``: the first rule ``vs[i]`` (on ``srcs[i]``) breaks going to ``dsts[i]``
    (PASS: none), ``xs[i]`` leaving that host first (-1: none).

    Any of the four may hold one entry, used for every pair: one VM over many
    hosts, many VMs to one host. ``mode``: EMPTYING, BALANCING or ALL_GROUPS
    (above). ``target``: target space (pack): v started on a and may end on
    b; anti-affinity members join b only below their limit. ``only`` >= 0:
    that rule alone. ``skip[v]`` (when ``skip`` is not empty): SKIPPED, no
    rule tested. ``stop``: return at the first pair that passes. Returns the
    index of the first pair that passes (the number of pairs if none).

    Every host and move rule is written here, once, in table order (cheapest
    first), in one flat loop with every array taken out of ``w`` once per
    call: numba increfs an array each time code takes it out of the Arrays
    tuple or passes it to a function, and a walk of one small function per
    rule spent nearly all its time doing so (measured: all pairs of 3 000 VMs
    x 1 000 hosts, 0.56 s as functions, 0.03 s flat). Taking the arrays out
    costs ~0.6 µs a call, so loops of checks call this once for many pairs.
    """
    enabled, up, leaving, score, load, sc, az = w.enabled, w.up, w.leaving, w.score, w.load, w.sc, w.az
    spec, spec_ok, tr_cls, treq_ok, tforb_ok = w.spec, w.spec_ok, w.tr_cls, w.treq_ok, w.tforb_ok
    shutoff, cpu_cls, cpu_ok = w.shutoff, w.cpu_cls, w.cpu_ok
    used, size, cap, pmax = w.used, w.size, w.cap, w.pmax
    group, g_kind, g_lim, g_cnt, g_max, g_nmax = w.group, w.g_kind, w.g_lim, w.g_cnt, w.g_max, w.g_nmax
    n_cells, cell_cap, cell_used, vm_host, vm_n = w.n_cells, w.cell_cap, w.cell_used, w.vm_host, w.vm_n
    vm_cells, numa_need = w.vm_cells, w.numa_need
    R, P = cap.shape[1], pmax.shape[0]
    n = max(vs.shape[0], srcs.shape[0], dsts.shape[0], xs.shape[0])
    if min(vs.shape[0], srcs.shape[0], dsts.shape[0], xs.shape[0]) == 0:
        n = 0  # no pairs
    many_v, many_a, many_b, many_x = vs.shape[0] > 1, srcs.shape[0] > 1, dsts.shape[0] > 1, xs.shape[0] > 1
    any_rule = only < 0
    skipping = skip.shape[0] > 0
    load_rule = mode == BALANCING and not target and (any_rule or only == SOURCE_LOAD)
    last_v, last_a, src_ok = -1, -1, True
    for i in range(n):
        v = vs[i if many_v else 0]
        a = srcs[i if many_a else 0]
        b = dsts[i if many_b else 0]
        x = xs[i if many_x else 0]
        if skipping and skip[v]:
            out[i] = SKIPPED
            continue
        if load_rule and (v != last_v or a != last_a):  # it depends on v and a alone
            last_v, last_a = v, a
            src_ok = source_load_ok(v, a, up, score, load, sc)
        r = PASS
        if (any_rule or only == HOST_ENABLED) and not enabled[b]:
            r = HOST_ENABLED
        elif (any_rule or only == HOST_UP) and not up[b]:
            r = HOST_UP
        elif (any_rule or only == HOST_LEAVING) and leaving[b]:
            r = HOST_LEAVING
        elif load_rule and not src_ok:
            r = SOURCE_LOAD
        elif (any_rule or only == AZ) and az[b] != az[a]:
            r = AZ
        elif (any_rule or only == EXTRA_SPECS) and not spec_ok[spec[v], b]:
            r = EXTRA_SPECS
        elif (any_rule or only == TRAITS_REQUIRED) and not treq_ok[tr_cls[v], b]:
            r = TRAITS_REQUIRED
        elif (any_rule or only == TRAITS_FORBIDDEN) and not tforb_ok[tr_cls[v], b]:
            r = TRAITS_FORBIDDEN
        elif (
            (any_rule or only == CPU_COMPAT)
            and up[a]
            and not shutoff[v]  # a cold move or an evacuation boots anew: the CPU model does not matter
            and not cpu_ok[cpu_cls[a], cpu_cls[b]]
        ):
            r = CPU_COMPAT
        if r == PASS and (any_rule or only == CAPACITY):
            for c in range(R):
                if x >= 0:
                    short = size[v, c] > cap[b, c] - used[b, c] + size[x, c] + EPS
                else:
                    short = used[b, c] + size[v, c] > cap[b, c] + EPS
                if short:
                    r = CAPACITY + c
                    break
        if (
            r == PASS
            and (any_rule or only == NUMA)  # first: a host rule's check passes v = -1 (no VM)
            and vm_n[v] > 0
            and n_cells[b] > 0
            and not cells_fit(v, b, x, n_cells, cell_cap, cell_used, vm_host, vm_n, vm_cells, numa_need)
        ):
            r = NUMA
        if r == PASS and (any_rule or only == MAX_HOST_SCORE):
            for p in range(P):
                d = load[v, p] / sc[b, p]
                if d > 0.0:
                    t = score[b, p] + d
                    if x >= 0:
                        t -= load[x, p] / sc[b, p]
                    if t > pmax[p] + EPS:
                        r = MAX_HOST_SCORE
                        break
        g = group[v] if r == PASS and (any_rule or GROUP_AFFINITY <= only < CAPACITY) else -1
        k = g_kind[g] if g >= 0 else -1
        if k >= 0 and (any_rule or only == GROUP_AFFINITY + k):
            if target:  # a member of an anti-affinity kind joins b only below the limit
                if k == 1 or k == 3:
                    cnt = g_cnt[g, b] - (1 if x >= 0 and group[x] == g else 0)
                    if cnt + 1 > g_lim[g]:
                        r = GROUP_AFFINITY + k
            elif mode != EMPTYING or k <= 1:
                ca, cb = g_cnt[g, a], g_cnt[g, b]
                if k == 1 or k == 3:
                    lim = g_lim[g]
                    change = max(0, ca - 1 - lim) - max(0, ca - lim) + max(0, cb + 1 - lim) - max(0, cb - lim)
                    worse = change > 0
                else:
                    mx = g_max[g]
                    after = mx if (ca < mx or g_nmax[g] >= 2) else mx - 1
                    if cb + 1 > after:
                        after = cb + 1
                    worse = after < mx
                if worse:
                    r = GROUP_AFFINITY + k
        out[i] = r
        if stop and r == PASS:
            return i
    return n


@njit(cache=True)
def walk_hosts(v, a, hosts, x, mode, target, out, w):
    """:func:`walk` for one VM (on a) over ``hosts``, x leaving each first (-1: none)."""
    one = np.empty(3, dtype=np.int64)
    one[0], one[1], one[2] = v, a, x
    walk(one[0:1], one[1:2], hosts, one[2:3], mode, target, -1, np.zeros(0, dtype=np.bool_), False, out, w)


@njit(cache=True)
def _one(v, a, b, x, mode, target, only, w):
    """:func:`walk` for one pair (one-off callers: a loop of checks should call walk once)."""
    one = np.empty(5, dtype=np.int64)
    one[0], one[1], one[2], one[3] = v, a, b, x
    walk(one[0:1], one[1:2], one[2:3], one[3:4], mode, target, only, np.zeros(0, dtype=np.bool_), False,
         one[4:5], w)  # fmt: skip
    return one[4]


@njit(cache=True)
def first_failing(v, a, b, w, balancing):
    """The first host or move rule v going a -> b breaks (PASS if none); ``balancing`` as ``mode``.

    One pair: a loop of checks calls :func:`walk` once.
    """
    return _one(v, a, b, -1, BALANCING if balancing else EMPTYING, False, -1, w)


@njit(cache=True)
def feasible(v, a, b, w, balancing):
    """May v move from a to b now: a real move that breaks no rule of the table."""
    return b != a and first_failing(v, a, b, w, balancing) == PASS


@njit(cache=True)
def first_failing_target(v, o, b, x, w):
    """Target space: the first rule that stops v (which started on o) ending on b, x leaving b first."""
    return _one(v, o, b, x, BALANCING, True, -1, w)


@njit(cache=True)
def fits(v, o, b, x, w):
    """May v, which started on o, end on b (x leaving b first, or -1)?"""
    return first_failing_target(v, o, b, x, w) == PASS


@njit(cache=True)
def soft_worse(v, a, b, w):
    """Would moving v from a to b make its soft server-group rule worse?"""
    g = w.group[v]
    return g >= 0 and w.g_kind[g] >= 2 and group_worse(g, a, b, w.g_kind, w.g_lim, w.g_cnt, w.g_max, w.g_nmax)


@njit(cache=True)
def holds(v, a, b, x, w, only):
    """Does v (on a) going to b, x leaving b first (-1: none), keep rule ``only`` (an index of
    :func:`first_failing`)? The walk with that rule alone: the table's view of each host and
    move rule. One kernel for all of them, ``only`` a run-time number: one predicate per rule,
    each calling the walk with its index as a constant, compiled the walk once per rule (~6 s
    each on a first run of ``explain``)."""
    return _one(v, a, b, x, BALANCING, False, only, w) == PASS


# ---------------------------------------------------------------------------
# VM rules: may this VM move at all, in this phase (vectorised over the world)


@frozen
class Movement:
    """What kind of move a phase makes, which decides the VM rules that apply."""

    phase: str
    #: SHUTOFF VMs may be cold-migrated (pack; drain when asked)
    cold: bool = False

    @property
    def evacuating(self) -> bool:
        return self.phase == phases.EVACUATE

    @property
    def balancing(self) -> bool:
        return self.phase in phases.BALANCING

    def statuses(self) -> tuple[str, ...]:
        if self.evacuating:
            return ("ACTIVE", "SHUTOFF", "ERROR")
        return ("ACTIVE", "SHUTOFF") if self.cold else ("ACTIVE",)


def _status_ok(world: World, how: Movement) -> np.ndarray:
    b = world.blocked
    if how.evacuating:
        evacuable: np.ndarray = ((b & NOT_ACTIVE) == 0) | ((b & ERROR) != 0)
        return evacuable
    bad = NOT_ACTIVE if how.cold else NOT_ACTIVE | SHUTOFF
    ok: np.ndarray = (b & bad) == 0
    return ok


def _flag_clear(flag: int, applies: Callable[[Movement], bool]) -> Callable[[World, Movement], np.ndarray]:
    def mask(world: World, how: Movement) -> np.ndarray:
        ok: np.ndarray = (
            (world.blocked & flag) == 0 if applies(how) else np.ones(world.blocked.size, np.bool_)
        )
        return ok

    return mask


def _devices_ok(world: World, how: Movement) -> np.ndarray:
    """Passthrough devices hold a VM against live migration (cold moves and evacuations take it)."""
    held = (world.blocked & DEVICES) != 0
    if how.evacuating:
        held[:] = False
    elif how.cold:
        held &= ~world.shutoff
    ok: np.ndarray = ~held
    return ok


def _source_state(world: World, how: Movement) -> np.ndarray:
    up: np.ndarray = world.up[world.vm_host]
    return ~up if how.evacuating else up


def _not_moved(world: World, how: Movement) -> np.ndarray:
    ok: np.ndarray = ~world.moved
    return ok


# ---------------------------------------------------------------------------
# explanations: the Reason of a failure, with its numbers


def _explain_vm(rule: str) -> Callable[[World, int, Movement], Reason]:
    def explain(world: World, v: int, how: Movement) -> Reason:
        if rule == "vm.task_state":
            return Reason(rule, detail=world.vm_task[v])
        if rule == "vm.cooldown":
            return Reason(rule, until=world.cooldown_until.get(v))
        if rule == "vm.quarantine":
            return Reason(rule, until=world.quarantine_until.get(v))
        if rule == "vm.devices":
            return Reason(rule, detail=", ".join(world.devices.get(v, ())))
        if rule == "source.up":
            host = world.host_names[int(world.vm_host[v])]
            return Reason(rule, host=host, detail="up" if how.evacuating else "down")
        return Reason(rule)

    return explain


def _status_reason(world: World, v: int, how: Movement) -> Reason:
    return Reason("vm.status", detail=world.vm_status[v], allowed=how.statuses())


def _host_reason(rule: str) -> Callable[[World, int, int, int], Reason]:
    def explain(world: World, v: int, a: int, b: int) -> Reason:
        return Reason(rule, host=world.host_names[b])

    return explain


def _source_load_reason(world: World, v: int, a: int, b: int) -> Reason:
    left = world.score[a] - world.load[v] / world.sc[a]
    p = int(np.argmin(left))
    return Reason(
        "source.load",
        host=world.host_names[a],
        policy=world.policy_names[p],
        before=float(world.score[a, p]),
        value=float(left[p]),
    )


def _az_reason(world: World, v: int, a: int, b: int) -> Reason:
    zone = int(world.az[a])
    return Reason("az", host=world.host_names[b], detail=world.az_names[zone] if zone >= 0 else "(none)")


def _spec_reason(world: World, v: int, a: int, b: int) -> Reason:
    return Reason("extra_specs", host=world.host_names[b], detail=world.spec_names[int(world.spec[v])])


def _capacity_reason(world: World, v: int, a: int, b: int, r: int) -> Reason:
    free = float(world.cap[b, r] - world.used[b, r])
    name = f"capacity.{world.res_names[r]}"
    return Reason(name, host=world.host_names[b], need=float(world.size[v, r]), free=free)


def _capacity_any(world: World, v: int, a: int, b: int) -> Reason:
    short = np.flatnonzero(world.used[b] + world.size[v] > world.cap[b] + EPS)
    return _capacity_reason(world, v, a, b, int(short[0]) if short.size else 0)


def _traits_reason(world: World, v: int, a: int, b: int, required: bool) -> Reason:
    req, forb = world.tr_classes[int(world.tr_cls[v])]
    have = world.host_traits[b]
    if required:
        return Reason(
            "traits.required", host=world.host_names[b], detail=", ".join(t for t in req if t not in have)
        )
    return Reason(
        "traits.forbidden", host=world.host_names[b], detail=", ".join(t for t in forb if t in have)
    )


def _cpu_reason(world: World, v: int, a: int, b: int) -> Reason:
    missing = world.cpu_sets[int(world.cpu_cls[a])] - world.cpu_sets[int(world.cpu_cls[b])]
    features = ", ".join(sorted(missing))
    return Reason("cpu_compat", host=world.host_names[b], detail=f"{features} of {world.host_names[a]}")


def _numa_reason(world: World, v: int, a: int, b: int) -> Reason:
    n = int(world.vm_n[v])
    free = [
        f"cell {int(world.cell_ids[b, c])} {_n(world.cell_cap[b, c, 0] - world.cell_used[b, c, 0])} vCPUs/"
        f"{_n(world.cell_cap[b, c, 1] - world.cell_used[b, c, 1])} MiB"
        for c in range(int(world.n_cells[b]))
    ]
    return Reason(
        "numa",
        host=world.host_names[b],
        need=float(world.numa_need[v, 0] / n),
        value=float(world.numa_need[v, 1] / n),
        count=n,
        detail=", ".join(free),
    )


def _score_reason(world: World, v: int, a: int, b: int) -> Reason:
    for p in range(world.pw.size):
        d = world.load[v, p] / world.sc[b, p]
        if d > 0.0 and world.score[b, p] + d > world.pmax[p] + EPS:
            return Reason(
                "max_host_score",
                host=world.host_names[b],
                policy=world.policy_names[p],
                before=float(world.score[b, p]),
                value=float(world.score[b, p] + d),
                limit=float(world.pmax[p]),
            )
    return Reason("max_host_score", host=world.host_names[b])  # pragma: no cover - only called on failure


def _group_reason(kind: int) -> Callable[[World, int, int, int], Reason]:
    def explain(world: World, v: int, a: int, b: int) -> Reason:
        g = int(world.group[v])
        name = f"group.{GROUP_KIND_NAMES[kind]}"
        if kind in (1, 3):
            return Reason(
                name,
                host=world.host_names[b],
                group=world.g_names[g],
                count=int(world.g_cnt[g, b]),
                limit=float(world.g_lim[g]),
            )
        at = ", ".join(world.host_names[h] for h in np.flatnonzero(world.g_cnt[g] > 0))
        return Reason(name, host=world.host_names[b], group=world.g_names[g], detail=at)

    return explain


# ---------------------------------------------------------------------------
# texts: one sentence per rule, from the record's numbers


def _n(x: float | None) -> str:
    return "?" if x is None else f"{x:g}"


_UNITS = {"vcpus": "vCPUs", "memory_mb": "MiB of RAM", "disk_gb": "GiB of disk"}


def _capacity_text(x: Reason) -> str:
    name = x.rule.removeprefix("capacity.")
    unit = "vCPU" if name == "vcpus" and x.need == 1 else _UNITS.get(name, name)
    return f"needs {_n(x.need)} {unit}, {x.host} has {_n(x.free)} free"


def _numa_text(x: Reason) -> str:
    cells = "one NUMA cell" if x.count == 1 else f"each of {x.count} NUMA cells"
    unit = "vCPU" if x.need == 1 else "vCPUs"
    return f"needs {_n(x.need)} {unit} and {_n(x.value)} MiB on {cells} of {x.host}; free: {x.detail}"


def _group_text(kind: int) -> Callable[[Reason], str]:
    label = GROUP_KIND_NAMES[kind]

    def text(x: Reason) -> str:
        if kind in (1, 3):
            lim = int(x.limit or 1)
            members = f"{x.count} member{'s' if x.count != 1 else ''}"
            return f"{label} group {x.group} has {members} on {x.host} (max {lim})"
        return f"{label} group {x.group} has its members on {x.detail}: {x.host} splits it"

    return text


def _status_text(x: Reason) -> str:
    allowed = " or ".join(x.allowed or ())
    hint = ""
    if x.detail == "SHUTOFF" and x.allowed == ("ACTIVE",):
        hint = " (a cold migration could move it: cold_migrate_stopped)"
    return f"status {x.detail}: only {allowed} instances can move this way{hint}"


def _until(x: Reason) -> str:
    from kronos.core.convert import format_time

    return "released by hand" if x.until is None else format_time(x.until)


# ---------------------------------------------------------------------------
# the table


@frozen
class Rule:
    name: str
    #: "vm": may the VM move at all; "host": may the host receive; "move": this VM on this host
    scope: str
    #: vm rules: (world, Movement) -> bool[V]; host and move rules: (v, a, b, x, arrays) -> bool
    check: Any
    #: vm rules: (world, v, Movement) -> Reason; others: (world, v, a, b) -> Reason
    explain: Callable[..., Reason]
    text: Callable[[Reason], str]
    #: host and move rules: the index first_failing returns (-1 for vm rules)
    index: int = -1


def _vm(name: str, check: Callable[[World, Movement], np.ndarray], text: Callable[[Reason], str]) -> Rule:
    return Rule(name, "vm", check, _status_reason if name == "vm.status" else _explain_vm(name), text)


def _always(how: Movement) -> bool:
    return True


def _not_evacuating(how: Movement) -> bool:
    return not how.evacuating


def _balancing(how: Movement) -> bool:
    return how.balancing


def _source_text(x: Reason) -> str:
    if x.detail == "down":
        return f"its host {x.host} is down: only an evacuation moves VMs off a down host"
    return f"its host {x.host} is up: an evacuation needs it down (fenced)"


def _score_text(x: Reason) -> str:
    return f"{x.policy} on {x.host} would reach {_n3(x.value)} > max_host_score {_n(x.limit)}"


def _holds(index: int) -> Callable[..., bool]:
    """Rule ``index``'s check: (v, a, b, x, arrays) -> whether the move keeps it (:func:`holds`)."""

    def check(v: int, a: int, b: int, x: int, w: Arrays) -> bool:
        return bool(holds(v, a, b, x, w, index))

    return check


def _host(name: str, index: int, text: Callable[[Reason], str]) -> Rule:
    return Rule(name, "host", _holds(index), _host_reason(name), text, index)


def _move(name: str, index: int, explain: Callable[..., Reason], text: Callable[[Reason], str]) -> Rule:
    return Rule(name, "move", _holds(index), explain, text, index)


RULES: tuple[Rule, ...] = (
    _vm("vm.status", _status_ok, _status_text),
    _vm("vm.task_state", _flag_clear(BUSY, _not_evacuating), lambda x: f"task_state {x.detail}: busy"),
    _vm("vm.migratable", _flag_clear(NOT_MIGRATABLE, _always), lambda x: "migratable: false"),
    _vm(
        "vm.devices",
        _devices_ok,
        lambda x: (
            f"passthrough device(s) {x.detail}: not live-migratable "
            "(the snapshot does not mark live_migratable_devices)"
        ),
    ),
    _vm("vm.cooldown", _flag_clear(COOLDOWN, _not_evacuating), lambda x: f"in cooldown until {_until(x)}"),
    _vm("vm.quarantine", _flag_clear(QUARANTINE, _always), lambda x: f"quarantined until {_until(x)}"),
    _vm(
        "vm.profile",
        _flag_clear(NO_PROFILE, _balancing),
        lambda x: "no VM profile (weight) and vm_profile_fallback is skip",
    ),
    _vm("vm.moved", _not_moved, lambda x: "already moved by this plan"),
    _vm("source.up", _source_state, _source_text),
    _host("host.enabled", HOST_ENABLED, lambda x: f"{x.host} is disabled"),
    _host("host.up", HOST_UP, lambda x: f"{x.host} is down"),
    _host("host.leaving", HOST_LEAVING, lambda x: f"{x.host} is being emptied by this plan"),
    _move(
        "source.load",
        SOURCE_LOAD,
        _source_load_reason,
        lambda x: (
            f"taking it off {x.host} leaves {x.policy} there at {_n3(x.value)} < 0: "
            "its weight is more than its host's score (bad data)"
        ),
    ),
    _move("az", AZ, _az_reason, lambda x: f"{x.host} is not in availability zone {x.detail}"),
    _move("extra_specs", EXTRA_SPECS, _spec_reason, lambda x: f"{x.host} is in no aggregate with {x.detail}"),
    _move(
        "traits.required",
        TRAITS_REQUIRED,
        lambda world, v, a, b: _traits_reason(world, v, a, b, True),
        lambda x: f"{x.host} lacks the required trait(s) {x.detail}",
    ),
    _move(
        "traits.forbidden",
        TRAITS_FORBIDDEN,
        lambda world, v, a, b: _traits_reason(world, v, a, b, False),
        lambda x: f"{x.host} has the forbidden trait(s) {x.detail}",
    ),
    _move(
        "cpu_compat",
        CPU_COMPAT,
        _cpu_reason,
        lambda x: (
            f"{x.host} lacks CPU feature(s) {x.detail}, where the guest runs (require_cpu_compatibility)"
        ),
    ),
    # one rule for every resource class; its records are named capacity.<class>
    _move("capacity", CAPACITY, _capacity_any, _capacity_text),
    _move("numa", NUMA, _numa_reason, _numa_text),
    _move("max_host_score", MAX_HOST_SCORE, _score_reason, _score_text),
    *(
        _move(f"group.{kind}", GROUP_AFFINITY + k, _group_reason(k), _group_text(k))
        for k, kind in enumerate(GROUP_KIND_NAMES)
    ),
)
RULE = {r.name: r for r in RULES}
BY_INDEX = {r.index: r for r in RULES if r.index >= 0}


def rule_of(index: int) -> Rule:
    """The rule behind an index of :func:`first_failing` (capacity's carry the class's column)."""
    return BY_INDEX[min(index, CAPACITY)]


def walk_position(index: int) -> float:
    """Where index ``index`` comes in :func:`first_failing`'s walk (capacity's sit before numa)."""
    return NUMA - 0.5 + (index - CAPACITY) / 1e6 if index >= CAPACITY else float(index)


def rule_name(world: World, index: int) -> str:
    """A record's name for index ``index``: the rule's, or ``capacity.<class>``."""
    return f"capacity.{world.res_names[index - CAPACITY]}" if index >= CAPACITY else BY_INDEX[index].name


def rule_named(name: str) -> Rule | None:
    """The rule a record names (``capacity.PCPU`` is the capacity rule's)."""
    return RULE.get("capacity" if name.startswith("capacity.") else name)


VM_RULES = tuple(r for r in RULES if r.scope == "vm")


def _n3(x: float | None) -> str:
    return "?" if x is None else f"{x:.3f}"


def receivers(world: World) -> np.ndarray:
    """Hosts that pass the host rules host.enabled, host.up and host.leaving (bool[H])."""
    ok: np.ndarray = world.enabled & world.up & ~world.leaving
    return ok


def movable(world: World, how: Movement) -> np.ndarray:
    """VMs that break no VM rule of ``how``'s phase (bool[V])."""
    ok = np.ones(world.vm_host.size, dtype=np.bool_)
    for rule in VM_RULES:
        ok &= rule.check(world, how)
    return ok


def vm_rule_masks(world: World, how: Movement) -> list[tuple[Rule, np.ndarray]]:
    """Each VM rule with the VMs it lets move in ``how``'s phase."""
    return [(rule, rule.check(world, how)) for rule in VM_RULES]


def why_not_movable(
    world: World, v: int, how: Movement, masks: list[tuple[Rule, np.ndarray]] | None = None
) -> tuple[Reason, ...]:
    """Every VM rule v breaks in ``how``'s phase, in table order (empty: it may move).

    ``masks``: :func:`vm_rule_masks` computed once, when asking about many VMs.
    """
    masks = masks if masks is not None else vm_rule_masks(world, how)
    return tuple(rule.explain(world, v, how) for rule, ok in masks if not ok[v])


def explain_failure(world: World, index: int, v: int, a: int, b: int) -> Reason:
    """The Reason of host or move rule ``index`` failing for v going a -> b."""
    if index >= CAPACITY:
        return _capacity_reason(world, v, a, b, index - CAPACITY)
    return BY_INDEX[index].explain(world, v, a, b)


def heavier_than_host(world: World, hosts: np.ndarray) -> Reason | None:
    """The data problem behind ``source.load``: VMs on up ``hosts`` whose load is more than their
    host's score for some policy. Balancing leaves them; the plan says so once per aggregate."""
    on = np.flatnonzero(np.isin(world.vm_host, hosts[world.up[hosts]]))
    h = world.vm_host[on]
    bad = on[(world.load[on] / world.sc[h] > world.score[h] + EPS).any(axis=1)]
    if not bad.size:
        return None
    where = tuple(sorted({world.host_names[x] for x in world.vm_host[bad].tolist()}))
    return Reason(
        "data.weight_over_score", count=int(bad.size), hosts=where, detail=world.vm_ids[int(bad[0])]
    )


def _closest(world: World, index: int, v: int, hosts: np.ndarray) -> int:
    """Of ``hosts`` (all ruled out by rule ``index``), the one nearest to passing it."""
    if index >= CAPACITY:
        r = index - CAPACITY
        return int(hosts[np.argmax(world.cap[hosts, r] - world.used[hosts, r])])
    if rule_of(index).name == "max_host_score":
        over = world.score[hosts] + world.load[v] / world.sc[hosts] - world.pmax
        return int(hosts[np.argmin(over.max(axis=1))])
    return int(hosts[0])


def ruled_out(world: World, v: int, a: int, hosts: np.ndarray, balancing: bool) -> tuple[Reason, ...]:
    """One record per rule that rules out some of ``hosts`` for v (now on a), in table order.

    Each names every host it rules out (``hosts``) and gives the numbers of
    the one nearest to passing it (``host``), so a 1 000-host aggregate reads
    as a few lines, not a thousand.
    """
    hosts = hosts[hosts != a]
    first = np.empty(hosts.size, dtype=np.int64)
    walk_hosts(v, a, hosts, -1, int(balancing), False, first, world.arrays())
    out = []
    for index in sorted(np.unique(first[first != PASS]).tolist(), key=walk_position):
        these = hosts[first == index]
        rep = _closest(world, int(index), v, these)
        out.append(
            attrs.evolve(
                explain_failure(world, int(index), v, a, rep),
                hosts=tuple(world.host_names[h] for h in these),
            )
        )
    return tuple(out)
