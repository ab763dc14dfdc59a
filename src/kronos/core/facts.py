"""What Nova's scheduler checks beyond aggregates and groups (FORMATS.md §4), as arrays.

Resource classes become columns (the legacy three first, then the others a
snapshot names, sorted), so capacity is one vector rule of any length.
Traits, CPU models and extra specs become *classes* (VMs or hosts that ask
for or offer the same thing share one), so a feasibility test is one table
lookup. NUMA cells become per-host arrays of up to 63 cells, a VM's cells a
bitmask, so the kernels can place a guest on cells the way Nova's fitting
would. A snapshot without §4 fields gives three columns, one class of each
kind and no cells: the kernels then do exactly what they did before.

Shapes (H hosts, V VMs, R resource classes, K most NUMA cells on a host):
    cap, used      H×R f8     size V×R f8 (the VM's allocation, or its flavor)
    tr_cls         V i4       treq_ok, tforb_ok: classes × H b1
    cpu_cls        H i4       cpu_ok: classes × classes b1 (source class ⊆ destination class)
    n_cells        H i4       cell_cap, cell_used: H×K×2 f8 (vCPUs incl. PCPU, MiB)
    vm_n           V i4       cells a NUMA-placed VM spans (0: host level only)
    vm_cells0      V i8       bitmask of its cells at the snapshot
    numa_need      V×2 f8     vCPUs (incl. PCPU) and MiB it needs, split evenly over its cells
"""

from __future__ import annotations

from itertools import chain, compress
from typing import Any

import numpy as np
from attrs import frozen

from kronos.core.model import MAX_AMOUNT, MAX_CELLS, RESOURCE_ALIASES, RESOURCES, VM, Flavor, Snapshot
from kronos.errors import DataError

#: HW_CPU_* traits that are not guest CPU features (FORMATS §4: not compared)
NOT_CPU_FEATURES = frozenset(
    {"HW_CPU_HYPERTHREADING", "HW_CPU_X86_AMD_SEV", "HW_CPU_X86_AMD_SEV_ES", "HW_CPU_X86_SGX"}
)


@frozen
class Facts:
    res_names: tuple[str, ...]
    cap: np.ndarray
    size: np.ndarray
    tr_cls: np.ndarray
    treq_ok: np.ndarray
    tforb_ok: np.ndarray
    tr_classes: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]  # (required, forbidden) per class
    host_traits: tuple[frozenset[str], ...]
    cpu_cls: np.ndarray
    cpu_strict: np.ndarray
    cpu_sets: tuple[frozenset[str], ...]
    n_cells: np.ndarray
    cell_ids: np.ndarray
    cell_cap: np.ndarray
    cell_used: np.ndarray
    vm_n: np.ndarray
    vm_cells0: np.ndarray
    numa_need: np.ndarray
    devices: dict[int, tuple[str, ...]]


def _name(key: str) -> str:
    return RESOURCE_ALIASES.get(key, key)


def flavor_sizes(flavors: list[Flavor]) -> np.ndarray:
    """The flavors' vCPUs, MiB and GiB (V×3)."""
    V = len(flavors)
    out = np.empty((V, 3))
    out[:, 0] = np.fromiter([f.vcpus for f in flavors], dtype=np.float64, count=V)
    out[:, 1] = np.fromiter([f.memory_mb for f in flavors], dtype=np.float64, count=V)
    out[:, 2] = np.fromiter([f.disk_gb for f in flavors], dtype=np.float64, count=V)
    return out


@frozen
class Weights:
    """Every VM's ``weights`` as a table, when all name the same policies (as producers write
    them): validation and the world read them from here instead of from 100 000 mappings."""

    policies: tuple[str, ...]  # the columns
    table: np.ndarray  # V×len(policies): the values as numpy reads them
    numbers: bool  # every value an int or a float (not a bool, not a string numpy would parse)


@frozen
class Columns:
    """The VMs' fields that validation and the world read, a list each, gathered in one pass:
    at 100 000 VMs a pass costs more in cache misses (each VM fetched again) than in Python."""

    ids: list[Any]
    names: list[Any]
    hosts: list[Any]
    statuses: list[Any]
    tasks: list[Any]
    flavors: list[Flavor]
    tags: list[Any]
    weights: list[Any]
    forecasts: list[Any]
    movable: list[Any]
    special: list[int]  # the VMs with any §4 field
    # their §4 fields, one list each (aligned with ``special``)
    held: list[Any]
    required: list[Any]
    forbidden: list[Any]
    cells: list[Any]
    devices: list[Any]


def columns(vms: tuple[VM, ...]) -> Columns:
    """:class:`Columns` of these VMs."""
    ids: list[Any] = []
    names: list[Any] = []
    hosts: list[Any] = []
    statuses: list[Any] = []
    tasks: list[Any] = []
    flavors: list[Flavor] = []
    tags: list[Any] = []
    weights: list[Any] = []
    forecasts: list[Any] = []
    movable: list[Any] = []
    special: list[int] = []
    held: list[Any] = []
    required: list[Any] = []
    forbidden: list[Any] = []
    cells: list[Any] = []
    devices: list[Any] = []
    for k, v in enumerate(vms):
        ids.append(v.id)
        names.append(v.name)
        hosts.append(v.host)
        statuses.append(v.status)
        tasks.append(v.task_state)
        flavors.append(v.flavor)
        tags.append(v.tags)
        weights.append(v.weights)
        forecasts.append(v.weights_forecast)
        movable.append(v.migratable)
        r, d, q, f, n = v.resources, v.devices, v.required_traits, v.forbidden_traits, v.numa_cells
        if r is not None or d or q or f or n:
            special.append(k)
            held.append(r)
            required.append(q)
            forbidden.append(f)
            cells.append(n)
            devices.append(d)
    return Columns(
        ids,
        names,
        hosts,
        statuses,
        tasks,
        flavors,
        tags,
        weights,
        forecasts,
        movable,
        special,
        held,
        required,
        forbidden,
        cells,
        devices,
    )


def weight_table(given: list[Any]) -> Weights | None:
    """:class:`Weights` of these VMs, or None where they name different policies or a value
    is not a number (``given``: each VM's ``weights``)."""
    try:
        policies = tuple(given[0]) if given else ()
        if set(map(len, given)) - {len(policies)}:
            return None
        columns = [[w[p] for w in given] for p in policies]  # KeyError: another policy
        table = np.empty((len(given), len(policies)))
        for j, values in enumerate(columns):
            table[:, j] = np.fromiter(values, dtype=np.float64, count=len(values))
    except (TypeError, ValueError, KeyError, OverflowError):
        return None
    numbers = all(_NUMBERS.issuperset(map(type, values)) for values in columns)
    return Weights(policies, table, numbers)


_NUMBERS = frozenset({int, float})


@frozen
class Sizes:
    """What :func:`capacity` finds: validation warns from it and the world is built on it."""

    names: tuple[str, ...]  # the resource classes, one column each
    cap: np.ndarray  # H×R
    size: np.ndarray  # V×R
    special: list[int]  # the VMs with any §4 field
    vm_host: np.ndarray  # V: each VM's host
    used: np.ndarray  # H×R: what the VMs on each host hold
    flavor: np.ndarray  # V×3: each VM's flavor's sizes (validation checks them)
    columns: Columns  # the VMs' fields validation and the world read
    vm_index: dict[str, int] | None  # a VM's index by its id (the last VM of a duplicate id)
    weights: Weights | None  # the VMs' weights as a table, when they name the same policies
    held_ok: bool  # every allocation's amounts ints or floats from 0 to MAX_AMOUNT (validation's test)


def capacity(snapshot: Snapshot) -> Sizes:
    """The resource classes (the legacy three, then every other class a host offers or a
    VM holds, sorted), each host's capacity (H×R) and each VM's size (V×R): its
    allocation where Placement gave one, else its flavor. KeyError: a VM on an unknown host."""
    hosts, vms = snapshot.hosts, snapshot.vms
    H, V = len(hosts), len(vms)
    index = {h.name: i for i, h in enumerate(hosts)}
    cols = columns(vms)
    vm_host = np.fromiter([index[h] for h in cols.hosts], dtype=np.int64, count=V)
    special = cols.special
    # the VMs by the classes they hold: a cloud pins thousands of guests the same way, and
    # numpy fills each kind at once (per-VM indexing costs more than planning them)
    kinds = _kinds(cols)
    other = {_name(r) for h in hosts for r in h.capacity.classes or ()}
    other.update(_name(r) for kind in kinds for r in kind)
    names = (*RESOURCES, *sorted(other - set(RESOURCES)))
    column = {r: i for i, r in enumerate(names)}
    column.update({alias: column[r] for alias, r in RESOURCE_ALIASES.items() if r in column})
    cap = np.zeros((H, len(names)))
    for i, h in enumerate(hosts):
        cap[i, :3] = (h.capacity.vcpus, h.capacity.memory_mb, h.capacity.disk_gb)
        for rc, amount in (h.capacity.classes or {}).items():
            cap[i, column[rc]] = amount
    size = np.zeros((V, len(names)))
    flavor = flavor_sizes(cols.flavors)
    size[:, :3] = flavor
    held_ok = True
    for kind, (rows, held) in kinds.items():
        size[rows] = 0.0  # Placement's allocation replaces the flavor's three
        if set(map(type, held)) == {dict}:  # each mapping's values in the order of ``kind``
            given = [x for amounts in held for x in amounts.values()]
            amounts = np.fromiter(given, dtype=np.float64, count=len(given)).reshape(len(rows), len(kind))
            for j, r in enumerate(kind):  # (a class named twice, as an alias too: the last amount)
                size[rows, column[r]] = amounts[:, j]
            held_ok = (
                held_ok
                and _NUMBERS.issuperset(map(type, given))
                and bool(((amounts >= 0.0) & (amounts <= MAX_AMOUNT)).all())
            )
        else:
            held_ok = False
            values = chain.from_iterable((x or {}).values() for x in held)
            size[rows[:, None], [column[r] for r in kind]] = np.fromiter(
                values, dtype=np.float64, count=len(rows) * len(kind)
            ).reshape(len(rows), len(kind))
    used = host_sums(vm_host, size, H)
    try:
        vm_index: dict[str, int] | None = dict(zip(cols.ids, range(V), strict=True))
    except TypeError:  # an id that is not a string: the world fails where it always did
        vm_index = None
    weights = weight_table(cols.weights)
    return Sizes(names, cap, size, special, vm_host, used, flavor, cols, vm_index, weights, held_ok)


def _kinds(cols: Columns) -> dict[tuple[str, ...], tuple[np.ndarray, list[Any]]]:
    """The VMs holding an allocation, by the classes it names (in the order first seen): their
    indices and their allocations."""
    given = [x is not None for x in cols.held]
    rows = np.array(cols.special, dtype=np.int64)[np.array(given, dtype=np.bool_)]
    held: list[Any] = list(compress(cols.held, given))
    kind_of = {kind: c for c, kind in enumerate(dict.fromkeys(map(tuple, held)))}
    if len(kind_of) == 1:
        return {next(iter(kind_of)): (rows, held)}
    code = np.fromiter(map(kind_of.__getitem__, map(tuple, held)), dtype=np.int64, count=len(held))
    return {
        kind: (rows[code == c], list(compress(held, (code == c).tolist()))) for kind, c in kind_of.items()
    }


def host_sums(vm_host: np.ndarray, values: np.ndarray, hosts: int) -> np.ndarray:
    """Each host's sum of its VMs' rows of ``values`` (V×R): what ``np.add.at`` gives, to
    the bit (the same additions in the same order), at a third of its cost."""
    return np.stack(
        [np.bincount(vm_host, weights=values[:, r], minlength=hosts) for r in range(values.shape[1])], axis=1
    ).reshape(hosts, values.shape[1])


def capacity_or_none(snapshot: Snapshot) -> Sizes | None:
    """:func:`capacity`, or None where a value is not a number or a host is unknown
    (validation names it)."""
    try:
        return capacity(snapshot)
    except (TypeError, ValueError, KeyError):
        return None


def build_facts(snapshot: Snapshot, sizes: Sizes) -> Facts:
    hosts, vms = snapshot.hosts, snapshot.vms
    H, V = len(hosts), len(vms)
    names, cap, size, special, vm_host = sizes.names, sizes.cap, sizes.size, sizes.special, sizes.vm_host
    column = {r: i for i, r in enumerate(names)}
    numa_need = size[:, :2].copy()
    if "PCPU" in column:
        numa_need[:, 0] += size[:, column["PCPU"]]
    # the special VMs' §4 fields column by column (a fifth of 100 000 guests may be pinned)
    cols = sizes.columns
    given = cols.devices
    devices = {special[j]: tuple(given[j] or ()) for j in compress(range(len(given)), given)}

    host_traits = tuple(frozenset(h.traits or ()) for h in hosts)
    tr_index: dict[tuple[tuple[str, ...], tuple[str, ...]], int] = {((), ()): 0}
    tr_cls = np.zeros(V, dtype=np.int32)
    if any(cols.required) or any(cols.forbidden):
        for k, req, forb in zip(special, cols.required, cols.forbidden, strict=True):
            if req or forb:
                key = (tuple(sorted(req or ())), tuple(sorted(forb or ())))
                tr_cls[k] = tr_index.setdefault(key, len(tr_index))
    tr_classes = tuple(tr_index)
    treq_ok = np.array([[set(req) <= t for t in host_traits] for req, _ in tr_classes], dtype=np.bool_)
    tforb_ok = np.array([[not set(forb) & t for t in host_traits] for _, forb in tr_classes], dtype=np.bool_)
    treq_ok, tforb_ok = treq_ok.reshape(len(tr_classes), H), tforb_ok.reshape(len(tr_classes), H)

    cpu_index: dict[frozenset[str], int] = {}
    cpu_cls = np.zeros(H, dtype=np.int32)
    for i, t in enumerate(host_traits):
        models = frozenset(x for x in t if x.startswith("HW_CPU_")) - NOT_CPU_FEATURES
        cpu_cls[i] = cpu_index.setdefault(models, len(cpu_index))
    cpu_sets = tuple(cpu_index) or (frozenset(),)
    cpu_strict = np.array([[a <= b for b in cpu_sets] for a in cpu_sets], dtype=np.bool_)

    K = max((len(h.numa_cells or ()) for h in hosts), default=0)
    if K > MAX_CELLS:
        raise DataError(f"a host has {K} NUMA cells: Kronos plans hosts of up to {MAX_CELLS}")
    n_cells = np.zeros(H, dtype=np.int32)
    cell_ids = np.full((H, K), -1, dtype=np.int64)
    cell_cap = np.zeros((H, K, 2))
    at_host: list[int] = []  # the hosts' cells, sorted by id, in one list each: set at once
    at_cell: list[int] = []
    ids_of: list[Any] = []
    vcpus_of: list[Any] = []
    mib_of: list[Any] = []
    for i, h in enumerate(hosts):
        if h.numa_cells:
            cells = sorted(h.numa_cells, key=lambda c: c.id)
            at_host += [i] * len(cells)
            at_cell += range(len(cells))
            ids_of += [c.id for c in cells]
            vcpus_of += [c.vcpus for c in cells]
            mib_of += [c.memory_mb for c in cells]
    if at_host:
        n_cells[:] = np.bincount(at_host, minlength=H)
        cell_ids[at_host, at_cell] = ids_of
        cell_cap[at_host, at_cell, 0] = vcpus_of
        cell_cap[at_host, at_cell, 1] = mib_of
    vm_n = np.zeros(V, dtype=np.int32)
    vm_cells0 = np.zeros(V, dtype=np.int64)
    cell_used = np.zeros((H, K, 2))
    # each NUMA-placed VM's cells as indices into its host's, all at once (a fifth of 100 000
    # guests may be pinned)
    pinned = cols.cells
    numa_vms = np.array(special, dtype=np.int64)[
        np.fromiter(map(bool, pinned), dtype=np.bool_, count=len(pinned))
    ]
    keep = n_cells[vm_host[numa_vms]] > 0
    numa_vms = numa_vms[keep]
    if numa_vms.size:
        members: list[Any] = list(compress(compress(pinned, pinned), keep.tolist()))
        counts = np.fromiter(map(len, members), dtype=np.int64, count=len(members))
        ids = np.fromiter(chain.from_iterable(members), dtype=np.int64, count=int(counts.sum()))
        spans = np.repeat(numa_vms, counts)
        at = vm_host[spans]
        match = cell_ids[at] == ids[:, None]
        found = match.any(axis=1)
        if not found.all():
            first = int(np.argmin(found))
            k = int(spans[first])
            raise DataError(f"vms[{k}].numa_cells: {ids[first]} is not a NUMA cell of its host {vms[k].host}")
        cell = match.argmax(axis=1)
        vm_n[numa_vms] = counts
        np.bitwise_or.at(vm_cells0, spans, np.left_shift(1, cell))
        np.add.at(cell_used, (at, cell), numa_need[spans] / counts.repeat(counts)[:, None])
    return Facts(
        res_names=names,
        cap=cap,
        size=size,
        tr_cls=tr_cls,
        treq_ok=treq_ok,
        tforb_ok=tforb_ok,
        tr_classes=tr_classes,
        host_traits=host_traits,
        cpu_cls=cpu_cls,
        cpu_strict=cpu_strict,
        cpu_sets=cpu_sets,
        n_cells=n_cells,
        cell_ids=cell_ids,
        cell_cap=cell_cap,
        cell_used=cell_used,
        vm_n=vm_n,
        vm_cells0=vm_cells0,
        numa_need=numa_need,
        devices=devices,
    )
