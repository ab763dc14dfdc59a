"""The snapshot as a struct of numpy arrays, built once per planning call.

Kernels see only these arrays. Hosts and VMs keep their snapshot order (index
= position in ``snapshot.hosts`` / ``snapshot.vms``), which is also the
documented tie-break order of every planner.

Shapes (H hosts, V VMs, P enabled policies, G server groups, C extra-spec classes):
    score      H×P f8   current per-policy score
    sc         H×P f8   score_capacity (absolute amount a score of 1.0 means)
    cap, used  H×R f8   resource classes: vcpus, memory_mb, disk_gb, then others (core.facts)
    active     H   b1   enabled and up: counts in the imbalance
    enabled    H   b1   the compute service is enabled
    up         H   b1   the compute service is up
    leaving    H   b1   being emptied by this plan (evacuate, drain): receives nothing
    az         H   i4   availability-zone id, -1 for none
    vm_host    V   i8   current host index
    load       V×P f8   absolute load: weight × sc[original host]
    size       V×R f8   the VM's allocation (resources) or its flavor's three
    shutoff    V   b1   SHUTOFF: a move of it is a cold migration
    home       V   i8   its host at the snapshot
    (traits, CPU models and NUMA cells: see kronos.core.facts)
    spec       V   i4   extra-spec class; spec_ok C×H b1 says where it may land
    group      V   i4   server-group index or -1
    g_kind     G   i1   0 affinity, 1 anti-affinity, 2 soft-affinity, 3 soft-anti-affinity
    g_lim      G   i4   members allowed per host (anti-affinity kinds)
    g_cnt      G×H i4   members per host
"""

from __future__ import annotations

from collections import namedtuple
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
from attrs import define

from kronos.core.facts import Columns, Sizes, Weights, build_facts, capacity
from kronos.core.model import EXTRA_SPEC_PREFIX, UNASSIGNED, VM, Flavor, Snapshot, State

if TYPE_CHECKING:
    from kronos.core.outlook import History, Outlook

#: The world's arrays as the kernels see them (shapes in kronos.core.arrays),
#: one argument instead of twenty. A collections.namedtuple because numba
#: types it field by field and caches kernels that take it.
Arrays = namedtuple(
    "Arrays",
    "vm_host active enabled up leaving az spec spec_ok cap used size score sc load pw pmax "
    "group g_kind g_lim g_cnt g_max g_nmax moved shutoff home tr_cls treq_ok tforb_ok cpu_cls cpu_ok "
    "n_cells cell_cap cell_used vm_n vm_cells vm_cells0 numa_need",
)

#: The other aggregates sharing hosts with the one being balanced, for the
#: kernels' rule that a move leaves none of them more imbalanced: their
#: hosts (CSR: ``hosts[ptr[x]:ptr[x+1]]``), per host the ones holding it
#: (``haggs[hptr[h]:hptr[h+1]]``), and their current statistics (X×P
#: ``var``/``tot``, X ``n`` active hosts, X ``cur`` combined imbalance).
Overlap = namedtuple("Overlap", "ptr hosts hptr haggs var tot n cur")

GROUP_KIND_NAMES = ("affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity")
GROUP_KINDS = {name: k for k, name in enumerate(GROUP_KIND_NAMES)}

# facts that stop a VM moving, as bit flags (the VM rules of kronos.core.rules
# decide which apply to a phase). SHUTOFF is set instead of NOT_ACTIVE for a
# SHUTOFF VM: phases that empty hosts may cold-migrate it (FORMATS.md),
# balancing leaves it alone. ERROR comes with NOT_ACTIVE: only evacuate takes it.
# DEVICES: passthrough devices that do not allow live migration.
NOT_ACTIVE, BUSY, NOT_MIGRATABLE, COOLDOWN, QUARANTINE = 1, 2, 4, 8, 16
NO_PROFILE, SHUTOFF, ERROR, DEVICES = 32, 64, 128, 256


@define(slots=True)
class World:
    """Mutable planning state for one call of the planner; never shared."""

    host_names: list[str]
    vm_ids: list[str]
    vm_names: list[str | None]
    policy_names: list[str]
    pw: np.ndarray
    pmax: np.ndarray
    threshold: np.ndarray
    score: np.ndarray
    sc: np.ndarray
    cap: np.ndarray
    used: np.ndarray
    active: np.ndarray
    enabled: np.ndarray  # H b1
    up: np.ndarray  # H b1: the compute service is up (a disabled host may be up)
    leaving: np.ndarray  # H b1: being emptied by this plan; never a destination
    cost: np.ndarray  # H f8: cost_per_hour, 0 when unknown
    az: np.ndarray
    vm_host: np.ndarray
    load: np.ndarray
    size: np.ndarray
    spec: np.ndarray
    spec_ok: np.ndarray
    group: np.ndarray
    g_kind: np.ndarray
    g_lim: np.ndarray
    g_cnt: np.ndarray
    g_max: np.ndarray  # G i4: most members on one host (kept current by kernels.apply_move)
    g_nmax: np.ndarray  # G i4: how many hosts hold that many
    g_names: list[str]
    blocked: np.ndarray  # V i4: NOT_ACTIVE | BUSY | ... flags
    vm_status: list[str]  # for explanations
    vm_task: list[str | None]
    cooldown_until: dict[int, datetime]  # VM index -> end of its cooldown (those in force)
    quarantine_until: dict[int, datetime | None]
    moved: np.ndarray  # V b1
    aggregates: dict[str, np.ndarray]  # name -> host indices, snapshot order
    host_index: dict[str, int]
    az_names: list[str]  # az id -> zone name, for explanations
    spec_names: list[str]  # extra-spec class -> "key=value, ..." ("" for class 0)
    # FORMATS §4 (kronos.core.facts): arrays the kernels read, names explanations read
    shutoff: np.ndarray
    home: np.ndarray
    tr_cls: np.ndarray
    treq_ok: np.ndarray
    tforb_ok: np.ndarray
    cpu_cls: np.ndarray
    cpu_ok: np.ndarray  # what the plan enforces: all True unless require_cpu_compatibility
    cpu_strict: np.ndarray
    n_cells: np.ndarray
    cell_cap: np.ndarray
    cell_used: np.ndarray
    vm_n: np.ndarray
    vm_cells: np.ndarray  # V i8: bitmask of the cells a VM takes on its current host
    vm_cells0: np.ndarray
    numa_need: np.ndarray
    cell_ids: np.ndarray
    res_names: tuple[str, ...]
    tr_classes: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]
    host_traits: tuple[frozenset[str], ...]
    cpu_sets: tuple[frozenset[str], ...]
    devices: dict[int, tuple[str, ...]]
    #: FORMATS §5 (:mod:`kronos.core.outlook`): the hosts' score histories, and what spread
    #: plans on when not the present; set by the planner when its options read them
    history: History | None = None
    outlook: Outlook | None = None

    def copy(self) -> World:
        """An independent world to plan on: arrays copied, names shared (they never change)."""
        return attrs.evolve(self, **{f.name: getattr(self, f.name).copy() for f in _ARRAY_FIELDS})

    def arrays(self) -> Arrays:
        """The kernels' view: the same arrays (not copies), so kernels mutate this world."""
        return Arrays(*(getattr(self, name) for name in Arrays._fields))


def build_world(
    snapshot: Snapshot, state: State | None = None, now: datetime | None = None, sizes: Sizes | None = None
) -> World:
    """``sizes``: :func:`kronos.core.facts.capacity` of this snapshot, when validation computed it."""
    pols = snapshot.enabled_policies
    pnames = [p.name for p in pols]
    P = len(pnames)
    H = len(snapshot.hosts)
    host_index = {h.name: i for i, h in enumerate(snapshot.hosts)}

    score = np.zeros((H, P))
    sc = np.ones((H, P))
    enabled = np.zeros(H, dtype=np.bool_)
    up = np.zeros(H, dtype=np.bool_)
    cost = np.zeros(H)
    for i, h in enumerate(snapshot.hosts):
        enabled[i] = h.enabled
        up[i] = h.up
        cost[i] = h.cost_per_hour or 0.0
        for j, p in enumerate(pnames):
            score[i, j] = h.scores.get(p, 0.0)
            sc[i, j] = h.score_capacity.get(p, 1.0)

    aggregates: dict[str, np.ndarray] = {}
    meta: list[dict[str, set[str]]] = [{} for _ in range(H)]
    az_names: dict[str, int] = {}
    az = np.full(H, -1, dtype=np.int32)
    member = np.zeros(H, dtype=np.bool_)
    for a in snapshot.aggregates:
        idx = sorted({host_index[n] for n in a.hosts if n in host_index})
        aggregates[a.name] = np.array(idx, dtype=np.int64)
        member[idx] = True
        zone = a.metadata.get("availability_zone")
        for i in idx:
            for mkey, mval in a.metadata.items():
                meta[i].setdefault(mkey, set()).add(mval)
            if zone is not None:
                az[i] = az_names.setdefault(zone, len(az_names))
    if not member.all():
        aggregates[UNASSIGNED] = np.flatnonzero(~member).astype(np.int64)

    vms = snapshot.vms
    V = len(vms)
    sizes = capacity(snapshot) if sizes is None else sizes
    vm_host = sizes.vm_host.copy()  # planning moves VMs in the world, not in sizes
    facts = build_facts(snapshot, sizes)
    cap, size = facts.cap, facts.size
    cols = sizes.columns
    weights = _weights(vms, pnames, sizes.weights)
    used = sizes.used.copy()  # the world's to change as it plans
    count = np.bincount(vm_host, minlength=H)

    blocked = np.zeros(V, dtype=np.int32)
    missing = np.isnan(weights)
    if missing.any():
        avg = score / np.maximum(count, 1)[:, None]
        weights = np.where(missing, avg[vm_host], weights)
        skip = np.array([p.vm_profile_fallback == "skip" for p in pols], dtype=np.bool_)
        blocked[(missing & skip[None, :]).any(axis=1)] |= NO_PROFILE
    load = weights * sc[vm_host]

    spec_classes: dict[tuple[tuple[str, str], ...], int] = {(): 0}
    spec = _spec_classes(cols.flavors, spec_classes)
    blocked |= _blocked(cols)
    for k in facts.devices:
        if not vms[k].live_migratable_devices:
            blocked[k] |= DEVICES
    vm_ids = cols.ids
    vm_index = sizes.vm_index if sizes.vm_index is not None else {v.id: k for k, v in enumerate(vms)}
    cooldown_until: dict[int, datetime] = {}
    quarantine_until: dict[int, datetime | None] = {}
    if state is not None:
        for vid, until in state.instance_cooldown_until.items():
            if vid in vm_index and (now is None or until > now):
                blocked[vm_index[vid]] |= COOLDOWN
                cooldown_until[vm_index[vid]] = until
        for vid, q_until in state.quarantined_until.items():
            if vid in vm_index and (q_until is None or now is None or q_until > now):
                blocked[vm_index[vid]] |= QUARANTINE
                quarantine_until[vm_index[vid]] = q_until
    spec_ok = np.ones((len(spec_classes), H), dtype=np.bool_)
    for spec_key, c in spec_classes.items():
        for i in range(H):
            spec_ok[c, i] = all(val in meta[i].get(name, ()) for name, val in spec_key)

    G = len(snapshot.server_groups)
    group = np.full(V, -1, dtype=np.int32)
    g_kind = np.zeros(G, dtype=np.int8)
    g_lim = np.ones(G, dtype=np.int32)
    g_cnt = np.zeros((G, H), dtype=np.int32)
    for g, sg in enumerate(snapshot.server_groups):
        g_kind[g] = GROUP_KINDS[sg.policy]
        g_lim[g] = sg.max_server_per_host if sg.policy == "anti-affinity" else 1
        for m in sg.members:
            j = vm_index[m]
            group[j] = g
            g_cnt[g, vm_host[j]] += 1

    return World(
        host_names=[h.name for h in snapshot.hosts],
        vm_ids=vm_ids,
        vm_names=cols.names,
        policy_names=pnames,
        pw=np.array([p.weight for p in pols], dtype=np.float64),
        pmax=np.array([p.max_host_score for p in pols], dtype=np.float64),
        threshold=np.array([p.threshold for p in pols], dtype=np.float64),
        score=score,
        sc=sc,
        cap=cap,
        used=used,
        active=enabled & up,
        enabled=enabled,
        up=up,
        leaving=np.zeros(H, dtype=np.bool_),
        cost=cost,
        az=az,
        vm_host=vm_host,
        load=load,
        size=size,
        spec=spec,
        spec_ok=spec_ok,
        group=group,
        g_kind=g_kind,
        g_lim=g_lim,
        g_cnt=g_cnt,
        g_max=g_cnt.max(axis=1, initial=0).astype(np.int32),
        g_nmax=((g_cnt == g_cnt.max(axis=1, initial=0)[:, None]) & (g_cnt > 0)).sum(axis=1).astype(np.int32),
        g_names=[sg.label for sg in snapshot.server_groups],
        blocked=blocked,
        vm_status=cols.statuses,
        vm_task=cols.tasks,
        cooldown_until=cooldown_until,
        quarantine_until=quarantine_until,
        moved=np.zeros(V, dtype=np.bool_),
        aggregates=aggregates,
        host_index=host_index,
        az_names=list(az_names),
        spec_names=[", ".join(f"{k}={v}" for k, v in key) for key in spec_classes],
        shutoff=(blocked & SHUTOFF) != 0,
        home=vm_host.copy(),
        tr_cls=facts.tr_cls,
        treq_ok=facts.treq_ok,
        tforb_ok=facts.tforb_ok,
        cpu_cls=facts.cpu_cls,
        cpu_ok=np.ones_like(facts.cpu_strict),
        cpu_strict=facts.cpu_strict,
        n_cells=facts.n_cells,
        cell_cap=facts.cell_cap,
        cell_used=facts.cell_used,
        vm_n=facts.vm_n,
        vm_cells=facts.vm_cells0.copy(),
        vm_cells0=facts.vm_cells0,
        numa_need=facts.numa_need,
        cell_ids=facts.cell_ids,
        res_names=facts.res_names,
        tr_classes=facts.tr_classes,
        host_traits=facts.host_traits,
        cpu_sets=facts.cpu_sets,
        devices=facts.devices,
    )


_ARRAY_FIELDS = [f for f in attrs.fields(World) if str(f.type) == "np.ndarray"]
#: what a VM's status alone says of it (any other status: NOT_ACTIVE)
_STATUS_FLAGS = {"ACTIVE": 0, "SHUTOFF": SHUTOFF, "ERROR": NOT_ACTIVE | ERROR}


def _weights(vms: tuple[VM, ...], pnames: list[str], given: Weights | None) -> np.ndarray:
    """V×P: each VM's weight of each enabled policy, NaN where it gives none (read from the
    table of :func:`kronos.core.facts.weight_table` when there is one)."""
    V, P = len(vms), len(pnames)
    weights = np.empty((V, P))
    for j, p in enumerate(pnames):
        if given is not None:
            weights[:, j] = given.table[:, given.policies.index(p)] if p in given.policies else np.nan
        else:
            weights[:, j] = np.fromiter((v.weights.get(p, np.nan) for v in vms), dtype=float, count=V)
    return weights


def _spec_classes(flavors: list[Flavor], classes: dict[tuple[tuple[str, str], ...], int]) -> np.ndarray:
    """Each VM's extra-spec class (0: none), numbering the classes in ``classes`` as first met:
    the flavors' extra specs as given are few kinds, each worked out once."""
    spec = np.zeros(len(flavors), dtype=np.int32)
    chosen = [k for k, f in enumerate(flavors) if f.extra_specs]
    if not chosen:
        return spec
    seen: dict[tuple[tuple[str, str], ...], int] = {}
    given: list[int] = []
    # a flavor's extra specs are most likely those of the last flavor of its name: equal
    # mappings have the same class (a comparison costs less than a tuple of the items)
    last: dict[Any, tuple[Any, int]] = {}
    for k in chosen:
        f = flavors[k]
        specs, name = f.extra_specs, f.name
        hit = last.get(name) if type(name) is str else None
        if hit is not None and hit[0] == specs:
            given.append(hit[1])
            continue
        items = tuple(specs.items())
        c = seen.get(items)
        if c is None:
            key = tuple(
                sorted(
                    (s.removeprefix(EXTRA_SPEC_PREFIX), val)
                    for s, val in items
                    if s.startswith(EXTRA_SPEC_PREFIX)
                )
            )
            c = seen[items] = classes.setdefault(key, len(classes))
        if type(name) is str:
            last[name] = (specs, c)
        given.append(c)
    spec[chosen] = np.array(given, dtype=np.int32)
    return spec


def _blocked(cols: Columns) -> np.ndarray:
    """What each VM's status, task and ``migratable`` forbid (NOT_ACTIVE, SHUTOFF, ERROR, BUSY,
    NOT_MIGRATABLE)."""
    statuses = cols.statuses
    V = len(statuses)
    try:
        blocked = np.fromiter([_STATUS_FLAGS.get(s, NOT_ACTIVE) for s in statuses], dtype=np.int32, count=V)
    except TypeError:  # a status that is not a string
        blocked = np.fromiter(
            [
                (SHUTOFF if s == "SHUTOFF" else NOT_ACTIVE if s != "ACTIVE" else 0)
                | (ERROR if s == "ERROR" else 0)
                for s in statuses
            ],
            dtype=np.int32,
            count=V,
        )
    blocked[[k for k, t in enumerate(cols.tasks) if t is not None]] |= BUSY
    blocked[[k for k, m in enumerate(cols.movable) if not m]] |= NOT_MIGRATABLE
    return blocked


def value_arrays(world: World) -> tuple[np.ndarray, ...]:
    """The arrays :func:`kronos.core.kernels.move_value` reads, in its order (for Python callers)."""
    return world.score, world.load, world.sc, world.active, world.pw


def imbalance(world: World, hosts: np.ndarray) -> tuple[np.ndarray, float]:
    """Per-policy population std over the active hosts of ``hosts``, and the weighted sum."""
    act = hosts[world.active[hosts]]
    if act.size == 0 or world.pw.size == 0:
        return np.zeros(world.pw.size), 0.0
    std = world.score[act].std(axis=0)
    return std, float(weighted(std, world.pw))


def weighted(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``x @ w`` over the last axis of ``x``, summed in index order.

    Not ``@`` or ``np.dot``: they call the BLAS kernel OpenBLAS picks for the
    CPU, and its kernels sum in different orders, so the same snapshot gave
    plans whose figures differed in the last bit on an AVX-512 machine and
    an AVX2 one. Sums of a few policies cost nothing either way.
    """
    if w.ndim != 1 or x.shape[-1:] != w.shape:
        raise ValueError(f"weighted: {x.shape} by {w.shape}")  # what @ refused
    out = np.zeros(x.shape[:-1])
    for j in range(w.size):
        out = out + x[..., j] * w[j]
    return out
