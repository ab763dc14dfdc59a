"""Synthetic but realistic snapshots for tests, benchmarks and demos, deterministic per seed.

A tool beside the planner, not part of it: ``kronos.core`` never imports it.

Hosts get capacities after allocation ratios (``cores × cpu_ratio``), VMs a
flavor mix of 1-16 vCPU / 2-64 GiB placed only where they fit, and per-policy
weights in the units of the host's score, so that every host's score is the
sum of its VMs' weights plus a base load (the hypervisor's own use). ``skew``
makes some hosts hot: they attract more VMs and their VMs run busier.
Server groups of all four Nova policies are drawn so that they hold, except a
few that are deliberately broken (``broken_groups``), the way parallel boots
and forced hosts break them in real clouds.

What else Nova's scheduler checks (FORMATS §4: pinned CPUs, NUMA cells,
traits, passthrough devices) comes only on request. Each of those options
draws from a random stream of its own, so that without them a seed gives the
bytes it gave before they existed, and turning one on does not reshuffle
another's draws. The placement they come with is one Nova would accept: every
resource class and every NUMA cell fits, every VM has its host's traits.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime
from typing import Any

import attrs
import numpy as np
from attrs import frozen

from kronos.core.model import (
    EXTRA_SPEC_PREFIX,
    VM,
    Aggregate,
    Capacity,
    Flavor,
    Host,
    NumaCell,
    Policy,
    ServerGroup,
    Snapshot,
)

DEFAULT_TAKEN_AT = datetime(2026, 11, 21, 10, 0, 0, tzinfo=UTC)
SSD_SPEC = "aggregate_instance_extra_specs:ssd"

# name, vcpus, memory_mb, disk_gb, probability
_FLAVORS = (
    ("m1.small", 1, 2048, 20, 0.30),
    ("m1.medium", 2, 4096, 40, 0.28),
    ("m1.large", 4, 8192, 80, 0.17),
    ("m1.xlarge", 8, 16384, 160, 0.08),
    ("c1.xlarge", 16, 16384, 160, 0.03),
    ("r1.large", 4, 32768, 80, 0.07),
    ("r1.xlarge", 8, 65536, 160, 0.03),
    ("m1.2xlarge", 16, 32768, 320, 0.04),
)
# physical cores, RAM GiB, disk GB
_HOST_CLASSES = ((32, 256, 960), (64, 512, 1800), (96, 768, 3600), (128, 1024, 3600))
_CPU_RATIO = 4.0
_RESERVED_MB = 4096
_SHORT = {"affinity": "af", "anti-affinity": "aa", "soft-affinity": "saf", "soft-anti-affinity": "saa"}
_POLICY_NAMES = {"cpu": "cpu-spread", "mem": "memory-spread", "memory": "memory-spread"}

# -- FORMATS §4 ---------------------------------------------------------------
PCPU, VGPU, SRIOV = "PCPU", "VGPU", "CUSTOM_NIC_SRIOV"
GPU_DEVICE, SRIOV_DEVICE = "pci:gpu-a100", "sriov:physnet1"
#: Intel server generations (Broadwell, Skylake-SP, Cascade Lake, Ice Lake-SP): the
#: os-traits each one adds; a generation has every trait of the ones before it
CPU_GENERATIONS: tuple[tuple[str, ...], ...] = tuple(
    tuple(f"HW_CPU_X86_{f}" for f in features.split())
    for features in (
        "MMX SSE SSE2 SSE3 SSSE3 SSE41 SSE42 AVX AVX2 FMA3 F16C AESNI CLMUL BMI BMI2",
        "AVX512F AVX512CD AVX512BW AVX512DQ AVX512VL",
        "AVX512VNNI",
        "AVX512VBMI AVX512IFMA AVX512VBMI2 AVX512BITALG AVX512VPOPCNTDQ AVX512GFNI AVX512VAES "
        "AVX512VPCLMULQDQ SHA",
    )
)
#: the trait a flavor would ask for to get a generation (its first new feature)
_GENERATION_MARKERS = tuple(gen[0] if i else "HW_CPU_X86_AVX2" for i, gen in enumerate(CPU_GENERATIONS))
#: operators' own host traits and the share of hosts carrying each
CUSTOM_TRAITS = (("CUSTOM_NVME", 0.4), ("CUSTOM_GOLD", 0.25), ("CUSTOM_PCI_DSS", 0.15))
_HYPERTHREADING = ("HW_CPU_HYPERTHREADING", 0.8)
#: dedicated cores stay below this share of a host's cores (the host keeps shared ones)
_MAX_DEDICATED = 0.75
#: device capacity is sized so that the VMs that need it fill about this share
_DEVICE_FILL = 0.6
_GPU_HOSTS, _SRIOV_HOSTS = 0.25, 0.6
_FEATURE_STREAMS = ("pinned", "numa", "traits", "devices", "history", "federation", "tight")


@frozen
class _Shape:
    """The kind of cloud: its flavor mix, host sizes and CPU overcommit."""

    flavors: tuple[tuple[str, int, int, int, float], ...]
    host_classes: tuple[tuple[int, int, int], ...]
    #: the host class of every host when not ``heterogeneous``
    default_class: int
    cpu_ratio: float
    reserved_mb: int
    #: NUMA-placed VMs of at least this many vCPUs span two cells (with two or more)
    span_vcpus: int
    #: place each VM on the emptiest of its candidate hosts (every host about as full),
    #: not on the first that fits (hot hosts fill up, cold ones stay empty)
    balanced: bool = False


_STANDARD = _Shape(_FLAVORS, _HOST_CLASSES, 1, _CPU_RATIO, _RESERVED_MB, 16)

#: ByteDance's public VM-rescheduling data (VMR2L): 279 hosts of two NUMA nodes
#: with 88 CPUs and 360 GiB each, 2 089 VMs of 4-64 CPUs, no CPU overcommit,
#: about 90 % of the CPUs allocated; large VMs span both nodes. The flavor mix
#: is ours, chosen to give those totals.
_BYTEDANCE = _Shape(
    flavors=(
        ("bd.4c16g", 4, 16384, 40, 0.14),
        ("bd.4c8g", 4, 8192, 40, 0.06),
        ("bd.8c32g", 8, 32768, 80, 0.17),
        ("bd.8c16g", 8, 16384, 80, 0.08),
        ("bd.16c64g", 16, 65536, 160, 0.17),
        ("bd.16c32g", 16, 32768, 160, 0.08),
        ("bd.32c128g", 32, 131072, 320, 0.10),
        ("bd.32c64g", 32, 65536, 320, 0.05),
        ("bd.64c256g", 64, 262144, 640, 0.10),
        ("bd.64c128g", 64, 131072, 640, 0.05),
    ),
    host_classes=((176, 720, 3600),),
    default_class=0,
    cpu_ratio=1.0,
    reserved_mb=0,
    span_vcpus=32,
    balanced=True,
)


@frozen
class _Extras:
    """The FORMATS §4 options of :func:`generate` (all off: the world of before)."""

    pinned: float = 0.0
    pcpu_hosts: float = 0.5
    numa: int = 0
    numa_vms: float = 0.0
    traits: float = 0.0
    devices: float = 0.0

    def check(self) -> None:
        for name in ("pinned", "numa_vms", "traits", "devices"):
            x = getattr(self, name)
            if not 0.0 <= x <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {x!r}")
        if not 0.0 < self.pcpu_hosts <= 1.0:
            raise ValueError(f"pcpu_hosts must be within (0, 1], got {self.pcpu_hosts!r}")
        if self.numa < 0:
            raise ValueError(f"numa (cells per host) must be >= 0, got {self.numa!r}")
        if self.numa_vms > 0 and self.numa == 0:
            raise ValueError("numa_vms places VMs on NUMA cells: it needs numa >= 1")


#: the largest load skew: hosts' loads differ by exp(skew · N(0, 1)); 10 is already one host
#: e^20 times another, and a few hundred overflows
MAX_SKEW = 10.0


def _stream(seed: int, feature: str) -> np.random.Generator:
    """The random stream of one optional feature, apart from the base world's and the others'."""
    return np.random.default_rng([seed, 0x5EC4, _FEATURE_STREAMS.index(feature)])


def _policies(names: tuple[str, ...], mode: str) -> tuple[Policy, ...]:
    full = [_POLICY_NAMES.get(n, n) for n in names]
    if mode == "pack":
        full = [n.replace("-spread", "-pack") for n in full]
    if len(full) == 2:
        weights = [0.3, 0.7]
    else:
        weights = [round(1.0 / len(full), 6)] * len(full)
        weights[-1] = round(1.0 - sum(weights[:-1]), 6)
    out = []
    for i, (n, w) in enumerate(zip(full, weights, strict=True)):
        out.append(
            Policy(
                name=n,
                mode=mode,
                weight=w,
                threshold=0.05 if i == 0 else 0.08,
                max_migrations_per_cycle=10,
                vm_profile_fallback="host_average",
                max_host_score=0.95 if n.startswith("cpu") else 1.0,
            )
        )
    return tuple(out)


def generate(
    hosts: int = 50,
    vms: int = 5000,
    groups: int = 100,
    seed: int = 0,
    *,
    policies: tuple[str, ...] = ("cpu", "mem"),
    aggregates: int = 1,
    heterogeneous: bool = False,
    skew: float = 0.6,
    mode: str = "spread",
    broken_groups: float = 0.1,
    unmovable: float = 0.03,
    missing_weights: float = 0.0,
    down: int = 0,
    disabled: int = 0,
    unassigned: int = 0,
    overlapping: bool = False,
    fill: float = 0.65,
    pinned: float = 0.0,
    pcpu_hosts: float = 0.5,
    numa: int = 0,
    numa_vms: float = 0.0,
    traits: float = 0.0,
    devices: float = 0.0,
    taken_at: datetime = DEFAULT_TAKEN_AT,
) -> Snapshot:
    """Build a snapshot; the same arguments always give the same snapshot.

    The FORMATS §4 options (all off by default):

    - ``pinned``: this share of the VMs has ``hw:cpu_policy=dedicated`` in its
      flavor and holds ``PCPU`` instead of ``vcpus`` in ``resources``. A
      ``pcpu_hosts`` share of the hosts (at least one) dedicates some of its
      cores to them: capacity ``PCPU`` = those cores (allocation ratio 1),
      ``vcpus`` = the other cores × the CPU allocation ratio.
    - ``numa``: NUMA cells per host, splitting evenly the host's ``vcpus``
      plus ``PCPU`` and its memory. Pinned VMs and a ``numa_vms`` share of the
      others (flavor ``hw:numa_nodes``) sit on one cell, or on two (an even
      split) when they have 16 vCPU or more; every cell holds its VMs.
    - ``traits``: every host gets the CPU traits of its generation (nested:
      a newer one has every trait of an older one), several generations in
      every aggregate, ``HW_CPU_HYPERTHREADING`` on most and some of
      ``CUSTOM_NVME`` / ``CUSTOM_GOLD`` / ``CUSTOM_PCI_DSS``. This share of the
      VMs requires one or two traits its host has; a quarter as many forbid a
      ``CUSTOM_*`` trait their host lacks.
    - ``devices``: this share of the VMs has passthrough devices: one or two
      GPUs (``pci:gpu-a100``, ``VGPU`` in ``resources`` and the flavor's
      ``resources:VGPU``) or SR-IOV VFs (``sriov:physnet1``,
      ``CUSTOM_NIC_SRIOV``), on the quarter of hosts with ``VGPU`` capacity or
      the 60 % with ``CUSTOM_NIC_SRIOV``; some (a fifth of the GPU ones, 60 %
      of the SR-IOV ones) are ``live_migratable_devices``.
    """
    extras = _Extras(pinned, pcpu_hosts, numa, numa_vms, traits, devices)
    return _generate(
        _STANDARD, extras, hosts, vms, groups, seed,
        policies=policies, aggregates=aggregates, heterogeneous=heterogeneous, skew=skew, mode=mode,
        broken_groups=broken_groups, unmovable=unmovable, missing_weights=missing_weights, down=down,
        disabled=disabled, unassigned=unassigned, overlapping=overlapping, fill=fill, taken_at=taken_at,
    )  # fmt: skip


def generate_bytedance_like(
    seed: int = 0,
    *,
    hosts: int = 279,
    vms: int = 2089,
    groups: int = 0,
    policies: tuple[str, ...] = ("cpu", "mem"),
    taken_at: datetime = DEFAULT_TAKEN_AT,
) -> Snapshot:
    """A cluster shaped like ByteDance's public VM-rescheduling data, where VMs sit on NUMA nodes.

    279 hosts of two NUMA cells (88 vCPU, 360 GiB each, no CPU overcommit),
    2 089 VMs of 4-64 vCPU, every one on a NUMA cell: those under 32 vCPU on
    one, the larger on both (an even split); about 90 % of the vCPUs are
    allocated, so a host's free vCPUs are split between its cells and a move
    that fits the host may fit no cell of it. VMs that fit nowhere are left
    out (a seed or two may give a few fewer than ``vms``).
    """
    return _generate(
        _BYTEDANCE, _Extras(numa=2, numa_vms=1.0), hosts, vms, groups, seed,
        policies=policies, aggregates=1, heterogeneous=False, skew=0.6, mode="spread",
        broken_groups=0.1, unmovable=0.03, missing_weights=0.0, down=0, disabled=0, unassigned=0,
        overlapping=False, fill=0.95, taken_at=taken_at,
    )  # fmt: skip


def _generate(
    shape: _Shape,
    extras: _Extras,
    hosts: int,
    vms: int,
    groups: int,
    seed: int,
    *,
    policies: tuple[str, ...],
    aggregates: int,
    heterogeneous: bool,
    skew: float,
    mode: str,
    broken_groups: float,
    unmovable: float,
    missing_weights: float,
    down: int,
    disabled: int,
    unassigned: int,
    overlapping: bool,
    fill: float,
    taken_at: datetime,
) -> Snapshot:
    if hosts < 1 or vms < 0 or groups < 0 or aggregates < 1:
        raise ValueError("hosts and aggregates must be >= 1, vms and groups >= 0")
    if not 0 <= skew <= MAX_SKEW:  # exp(skew · N(0, 1)) overflows to inf, then NaN shares, far above
        raise ValueError(f"skew must be within [0, {MAX_SKEW:g}], got {skew!r}")
    extras.check()
    rng = np.random.default_rng(seed)
    pols = _policies(tuple(policies), mode)
    P = len(pols)
    ratio = shape.cpu_ratio

    # -- hosts -------------------------------------------------------------
    classes = shape.host_classes
    cls = rng.integers(0, len(classes), hosts) if heterogeneous else np.full(hosts, shape.default_class)
    cores = np.array([classes[c][0] for c in cls], dtype=float)
    ram_gib = np.array([classes[c][1] for c in cls], dtype=float)
    disk = np.array([classes[c][2] for c in cls], dtype=float)
    probs = np.array([f[4] for f in shape.flavors])
    probs /= probs.sum()
    # summed in order, not np.dot: OpenBLAS's kernel (chosen by the CPU) changed the last bit of
    # one mean, and with it the world a seed gives, between AVX-512 and AVX2 machines
    shares = list(zip(probs.tolist(), shape.flavors, strict=True))
    mean_vcpu, mean_mb, mean_gb = (sum(p * f[i] for p, f in shares) for i in (1, 2, 3))
    cpu_demand = vms * mean_vcpu / (cores.sum() * ratio)
    pin_rng = _stream(seed, "pinned")
    pcpu_host = np.zeros(hosts, dtype=bool)
    pinned_vcpu = vms * extras.pinned * mean_vcpu
    if extras.pinned > 0:
        pcpu_host[pin_rng.permutation(hosts)[: max(1, round(extras.pcpu_hosts * hosts))]] = True
        # a dedicated vCPU costs a whole core; and the dedicating hosts must hold them all
        cpu_demand = max(
            (vms * mean_vcpu - pinned_vcpu + pinned_vcpu * ratio) / (cores.sum() * ratio),
            pinned_vcpu / (_MAX_DEDICATED * cores[pcpu_host].sum()),
        )
    # dense clouds get bigger hosts rather than VMs that cannot fit anywhere
    demand = max(
        cpu_demand,
        vms * mean_mb / (ram_gib.sum() * 1024 - hosts * shape.reserved_mb),
        vms * mean_gb / disk.sum(),
    )
    scale = max(1.0, demand / fill)
    cores = np.ceil(cores * scale)
    ram_gib = np.ceil(ram_gib * scale)
    disk = np.ceil(disk * scale)
    cap = np.stack([cores * ratio, ram_gib * 1024 - shape.reserved_mb, disk], axis=1)
    dedicated = np.zeros(hosts)
    if extras.pinned > 0:
        # enough dedicated cores that the pinned VMs fill them about as much as `fill`
        share = pinned_vcpu / (fill * cores[pcpu_host].sum())
        dedicated = np.where(pcpu_host, np.minimum(np.ceil(cores * share), cores - 1), 0.0)
        cap[:, 0] = (cores - dedicated) * ratio
    # math.exp, not np.exp: numpy's own AVX-512 exp differs from libm's in the last bit
    heat = np.array([math.exp(skew * z) for z in rng.standard_normal(hosts).tolist()])
    names = [f"cmp-{i + 1:03d}" if hosts < 1000 else f"cmp-{i + 1:04d}" for i in range(hosts)]

    # -- aggregates (contiguous slices; odd ones carry ssd=true) ------------
    n_assigned = max(0, hosts - unassigned)
    bounds = np.linspace(0, n_assigned, aggregates + 1).astype(int)
    aggs: list[Aggregate] = []
    host_ssd = np.zeros(hosts, dtype=bool)
    for a in range(aggregates):
        lo, hi = int(bounds[a]), int(bounds[a + 1])
        ssd = a % 2 == 0
        host_ssd[lo:hi] = ssd
        meta = {"availability_zone": f"az{a % 2 + 1}", "ssd": "true" if ssd else "false"}
        aggs.append(Aggregate(f"agg-{a + 1:02d}", tuple(names[lo:hi]), meta))
    if overlapping and n_assigned >= 4:
        span = max(2, n_assigned // 4)
        start = max(0, int(bounds[1]) - span // 2) if aggregates > 1 else 0
        aggs.append(Aggregate("agg-overlap", tuple(names[start : start + span]), {"gpu": "true"}))

    # -- flavors and placement --------------------------------------------
    fsize = np.array([[f[1], f[2], f[3]] for f in shape.flavors], dtype=float)
    choice = rng.choice(len(shape.flavors), size=vms, p=probs)
    wants_ssd = rng.random(vms) < (0.1 if host_ssd.any() else 0.0)
    pref = cap[:, 1] * heat
    pref_all = pref / pref.sum()
    cand = rng.choice(hosts, size=(vms, 6), p=pref_all)
    need = fsize[choice]
    vm_pinned = pin_rng.random(vms) < extras.pinned if extras.pinned > 0 else np.zeros(vms, dtype=bool)
    gpus, vfs, live_devices, class_cap = _devices(_stream(seed, "devices"), extras.devices, hosts, vms)
    # classes beyond the legacy three: a pinned VM's vCPUs count as PCPU, not vcpus
    class_names = ([PCPU] if extras.pinned > 0 else []) + list(class_cap)
    if class_names:
        vcpus = need[:, 0]
        cols = [np.where(vm_pinned, 0.0, vcpus), need[:, 1], need[:, 2]]
        cols += [np.where(vm_pinned, vcpus, 0.0)] if extras.pinned > 0 else []
        cols += [gpus, vfs] if class_cap else []
        need = np.stack(cols, axis=1)
        extra_cap = ([dedicated] if extras.pinned > 0 else []) + list(class_cap.values())
        cap = np.hstack([cap, np.stack(extra_cap, axis=1)])
    # NUMA: cells split the host's vCPUs (shared and dedicated) and memory evenly
    C = extras.numa
    cell_cap = np.zeros((hosts, C, 2))
    numa_rng = _stream(seed, "numa")
    vm_ncells = np.zeros(vms, dtype=np.int64)
    if C:
        cell_cap[:, :, 0] = np.floor((cap[:, 0] + dedicated) / C)[:, None]
        cell_cap[:, :, 1] = np.floor(cap[:, 1] / C)[:, None]
        on_cells = vm_pinned | (numa_rng.random(vms) < extras.numa_vms)
        n_cells = np.where((C >= 2) & (fsize[choice, 0] >= shape.span_vcpus), 2, 1)
        vm_ncells = np.where(on_cells, n_cells, 0)
    cell_share = fsize[choice][:, :2] / np.maximum(vm_ncells, 1)[:, None]
    order = np.argsort(-fsize[choice, 1], kind="stable")  # big VMs first: they must fit
    placed_host, vm_cells = _place(
        order, cand, need, cap, wants_ssd, host_ssd, vm_ncells, cell_share, cell_cap, shape.balanced
    )
    kept = np.flatnonzero(placed_host >= 0)
    V = kept.size
    vhost = placed_host[kept]

    # -- load: weights in units of each host's score -----------------------
    base = rng.uniform(0.02, 0.06, size=(hosts, P))
    util = np.clip(rng.beta(2.0, 5.0, size=(V, P)) * heat[vhost, None], 0.01, 1.0)
    amount = np.empty((V, P))
    for p, pol in enumerate(pols):
        if pol.name.startswith("cpu"):
            amount[:, p] = fsize[choice[kept], 0] * util[:, p] / cores[vhost]
        elif pol.name.startswith("mem"):
            amount[:, p] = fsize[choice[kept], 1] * (0.3 + 0.65 * util[:, p]) / (ram_gib[vhost] * 1024)
        else:
            amount[:, p] = fsize[choice[kept], 0] * util[:, p] / (cores[vhost] * 2)
    load = np.zeros((hosts, P))
    np.add.at(load, vhost, amount)
    limit = 0.97 - base
    factor = np.where(load > limit, limit / np.maximum(load, 1e-12), 1.0)
    weights = np.round(amount * factor[vhost], 6)
    load = np.zeros((hosts, P))
    np.add.at(load, vhost, weights)
    scores = np.clip(np.round(base + load, 6), 0.0, 1.0)

    ids = [str(uuid.UUID(bytes=bytes(b), version=4)) for b in rng.integers(0, 256, (V, 16), dtype=np.uint8)]
    status_roll = rng.random(V)
    missing_roll = rng.random((V, P))
    tag_roll = rng.random(V)
    project = rng.integers(1, 21, V)

    down_set = set(rng.choice(hosts, size=min(down, hosts), replace=False).tolist()) if down else set()
    rest = [h for h in range(hosts) if h not in down_set]
    dis_set = (
        set(rng.choice(rest, size=min(disabled, len(rest)), replace=False).tolist()) if disabled else set()
    )

    # -- traits: after placement, so that every VM's are its host's ---------
    host_traits: list[tuple[str, ...]] | None = None
    vm_req: list[tuple[str, ...] | None] = [None] * V
    vm_forb: list[tuple[str, ...] | None] = [None] * V
    if extras.traits > 0:
        trait_rng = _stream(seed, "traits")
        slices = [(int(bounds[a]), int(bounds[a + 1])) for a in range(aggregates)] + [(n_assigned, hosts)]
        gen = _cpu_generations(trait_rng, hosts, slices)
        host_traits = _host_traits(trait_rng, gen)
        vm_req, vm_forb = _vm_traits(trait_rng, extras.traits, gen[vhost], [host_traits[h] for h in vhost])

    vm_objs: list[VM] = []
    pnames = [p.name for p in pols]
    flavor_cache: dict[tuple[int, bool, bool, int, int], Flavor] = {}
    for i in range(V):
        v = int(kept[i])
        h = int(vhost[i])
        r = status_roll[i] / max(unmovable, 1e-12) if unmovable > 0 else 9.0
        status, task, migratable = "ACTIVE", None, True
        if r < 0.3:
            status = "SHUTOFF"
        elif r < 0.45:
            status = "ERROR"
        elif r < 0.7:
            task = "image_snapshot"
        elif r < 1.0:
            migratable = False
        w = {
            pnames[p]: float(weights[i, p])
            for p in range(P)
            if not (missing_roll[i, p] < missing_weights or (h in down_set and missing_roll[i, p] < 0.5))
        }
        pin, n_gpu, n_vf = bool(vm_pinned[v]), int(gpus[v]), int(vfs[v])
        key = (int(choice[v]), bool(wants_ssd[v]), pin, int(vm_ncells[v]), n_gpu)
        flavor = flavor_cache.get(key)
        if flavor is None:
            flavor = flavor_cache[key] = _flavor(shape.flavors[key[0]], *key[1:])
        resources = None
        if pin or n_gpu or n_vf:
            resources = {PCPU if pin else "vcpus": flavor.vcpus, "memory_mb": flavor.memory_mb}
            resources["disk_gb"] = flavor.disk_gb
            resources |= {VGPU: float(n_gpu)} if n_gpu else {}
            resources |= {SRIOV: float(n_vf)} if n_vf else {}
        vm_devices = (GPU_DEVICE,) * n_gpu + (SRIOV_DEVICE,) * n_vf
        vm_objs.append(
            VM(
                id=ids[i],
                name=f"vm-{i + 1:06d}",
                host=names[h],
                status=status,
                task_state=task,
                flavor=flavor,
                weights=w,
                tags=("automatic-recovery",) if tag_roll[i] < 0.3 else (),
                migratable=migratable,
                project_id=f"project-{int(project[i]):02d}",
                resources=resources,
                required_traits=vm_req[i],
                forbidden_traits=vm_forb[i],
                numa_cells=vm_cells.get(v),
                devices=vm_devices or None,
                live_migratable_devices=True if vm_devices and live_devices[v] else None,
            )
        )

    host_objs = []
    for h in range(hosts):
        sc = {}
        if heterogeneous:
            for pname in pnames:
                sc[pname] = float(ram_gib[h] * 1024**3) if pname.startswith("mem") else float(cores[h])
        classes_h = {c: float(cap[h, 3 + j]) for j, c in enumerate(class_names) if cap[h, 3 + j] > 0}
        host_objs.append(
            Host(
                name=names[h],
                capacity=Capacity(
                    float(cap[h, 0]), float(cap[h, 1]), float(cap[h, 2]), classes=classes_h or None
                ),
                enabled=h not in dis_set,
                up=h not in down_set,
                scores={} if h in down_set else {p: float(scores[h, j]) for j, p in enumerate(pnames)},
                score_capacity=sc,
                cost_per_hour=float(round(0.02 * cores[h] + 0.002 * ram_gib[h], 4)),
                traits=host_traits[h] if host_traits is not None else None,
                numa_cells=tuple(
                    NumaCell(c, float(cell_cap[h, c, 0]), float(cell_cap[h, c, 1])) for c in range(C)
                )
                or None,
            )
        )

    sgs = _groups(rng, groups, vhost, ids, hosts, broken_groups)
    return Snapshot(
        taken_at=taken_at,
        policies=pols,
        aggregates=tuple(aggs),
        hosts=tuple(host_objs),
        vms=tuple(vm_objs),
        server_groups=sgs,
    )


def _flavor(base: tuple[str, int, int, int, float], ssd: bool, pinned: bool, cells: int, gpus: int) -> Flavor:
    """A flavor of the mix with the extra specs Nova would read for this kind of VM."""
    name, vcpus, memory_mb, disk_gb = base[:4]
    specs: dict[str, str] = {}
    if ssd:
        name += ".ssd"
        specs[SSD_SPEC] = "true"
    if pinned:
        name += ".pinned"
        specs["hw:cpu_policy"] = "dedicated"
    if cells:
        name += f".numa{cells}"
        specs["hw:numa_nodes"] = str(cells)
    if gpus:
        name += f".vgpu{gpus}"
        specs["resources:VGPU"] = str(gpus)
    return Flavor(name, vcpus, memory_mb, disk_gb, specs)


def _place(
    order: np.ndarray,
    cand: np.ndarray,
    need: np.ndarray,
    cap: np.ndarray,
    wants_ssd: np.ndarray,
    host_ssd: np.ndarray,
    vm_ncells: np.ndarray,
    cell_share: np.ndarray,
    cell_cap: np.ndarray,
    balanced: bool,
) -> tuple[np.ndarray, dict[int, tuple[int, ...]]]:
    """Each VM's host (-1: none fits) and, for those on NUMA cells, their cells.

    VMs go in ``order``, each to the first of its candidate hosts (``cand``,
    (V, 6)) where every resource class (``need`` (V, K) against ``cap``
    (H, K)) and, for a VM on ``vm_ncells`` cells, that many cells fit it
    (``cell_share`` (V, 2) vCPUs and MiB in each, against ``cell_cap``
    (H, C, 2)), or to the ``balanced`` emptiest of them; when none does, to
    the host with the most free memory that fits.
    """
    hosts = cap.shape[0]
    used = np.zeros(cap.shape)
    cell_used = np.zeros(cell_cap.shape)
    placed_host = np.full(need.shape[0], -1, dtype=np.int64)
    vm_cells: dict[int, tuple[int, ...]] = {}
    host_list = list(range(hosts))
    for v in order:
        v_need = need[v]
        k = int(vm_ncells[v])
        cells: tuple[int, ...] | None = None
        ok_host = -1
        best_free = -1.0
        for h in cand[v]:
            if wants_ssd[v] and not host_ssd[h]:
                continue
            if np.all(used[h] + v_need <= cap[h]):
                h_cells = None
                if k:
                    h_cells = _fitting_cells(cell_cap[h] - cell_used[h], cell_share[v], k)
                    if h_cells is None:
                        continue
                if not balanced:
                    ok_host, cells = int(h), h_cells
                    break
                if cap[h, 0] - used[h, 0] > best_free:  # the emptiest candidate
                    ok_host, cells, best_free = int(h), h_cells, cap[h, 0] - used[h, 0]
        if ok_host < 0:
            free = cap - used - v_need
            fits = np.all(free >= 0, axis=1) & (host_ssd | ~wants_ssd[v])
            if k:
                fits &= np.all(cell_cap - cell_used >= cell_share[v], axis=2).sum(axis=1) >= k
            if fits.any():
                ok_host = int(host_list[int(np.argmax(np.where(fits, free[:, 1], -np.inf)))])
                if k:
                    cells = _fitting_cells(cell_cap[ok_host] - cell_used[ok_host], cell_share[v], k)
        if ok_host < 0:
            continue  # nowhere to put it: the cloud is full, leave it out
        used[ok_host] += v_need
        placed_host[v] = ok_host
        if cells is not None:
            cell_used[ok_host, list(cells)] += cell_share[v]
            vm_cells[int(v)] = cells
    return placed_host, vm_cells


def _fitting_cells(free: np.ndarray, share: np.ndarray, k: int) -> tuple[int, ...] | None:
    """The ``k`` cells (ids, ascending) with the most free vCPUs among those ``share`` fits in.

    ``free`` is (cells, 2) vCPUs and MiB; ``share`` what the VM takes of each
    of its ``k`` cells. Most-free-first spreads guests over cells the way
    Nova does unless told to pack them.
    """
    need_vcpus, need_mb = float(share[0]), float(share[1])
    rows = free.tolist()  # a handful of cells: plain Python is 20x faster than numpy here
    fits = [c for c, (vcpus, mb) in enumerate(rows) if vcpus >= need_vcpus and mb >= need_mb]
    if len(fits) < k:
        return None
    fits.sort(key=lambda c: -rows[c][0])  # stable: the lower id first among equals
    return tuple(sorted(fits[:k]))


def _devices(
    rng: np.random.Generator, share: float, hosts: int, vms: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Per VM: GPUs, SR-IOV VFs, live-migratable; per class: host capacity (0 = none).

    Capacity goes to fixed shares of the hosts, sized so the VMs needing it
    fill about ``_DEVICE_FILL`` of it, in whole cards (4 vGPUs) and NICs (8 VFs).
    """
    if share <= 0:
        zero = np.zeros(vms)
        return zero, zero, np.zeros(vms, dtype=bool), {}
    has = rng.random(vms) < share
    gpu = rng.random(vms) < 0.35
    count = np.where(rng.random(vms) < 0.2, 2.0, 1.0)
    live = rng.random(vms) < np.where(gpu, 0.2, 0.6)
    gpus = np.where(has & gpu, count, 0.0)
    vfs = np.where(has & ~gpu, count, 0.0)
    cap: dict[str, np.ndarray] = {}
    for name, demand, host_share, unit in ((VGPU, gpus, _GPU_HOSTS, 4), (SRIOV, vfs, _SRIOV_HOSTS, 8)):
        n = max(1, round(host_share * hosts))
        per_host = unit * max(1, math.ceil(demand.sum() / (_DEVICE_FILL * n * unit)))
        column = np.zeros(hosts)
        column[rng.permutation(hosts)[:n]] = per_host
        cap[name] = column
    return gpus, vfs, live & has, cap


def _cpu_generations(rng: np.random.Generator, hosts: int, slices: list[tuple[int, int]]) -> np.ndarray:
    """Each host's CPU generation (index into CPU_GENERATIONS), two or three mixed per aggregate.

    Mixed so that ``require_cpu_compatibility`` matters: in every slice of two
    hosts or more, at least two generations.
    """
    n_gen = len(CPU_GENERATIONS)
    gen = np.zeros(hosts, dtype=np.int64)
    for lo, hi in slices:
        if hi <= lo:
            continue
        width = int(rng.integers(2, 4))
        first = int(rng.integers(0, n_gen - width + 1))
        g = first + rng.integers(0, width, hi - lo)
        if hi - lo >= 2 and np.all(g == g[0]):
            g[0] = first + 1 if g[0] == first else first
        gen[lo:hi] = g
    return gen


def _host_traits(rng: np.random.Generator, gen: np.ndarray) -> list[tuple[str, ...]]:
    cumulative = [sum(CPU_GENERATIONS[: g + 1], ()) for g in range(len(CPU_GENERATIONS))]
    optional = (_HYPERTHREADING, *CUSTOM_TRAITS)
    roll = rng.random((gen.size, len(optional)))
    out = []
    for h, g in enumerate(gen):
        extra = tuple(t for j, (t, p) in enumerate(optional) if roll[h, j] < p)
        out.append(tuple(sorted(cumulative[int(g)] + extra)))
    return out


def _vm_traits(
    rng: np.random.Generator, share: float, gen: np.ndarray, host_traits: list[tuple[str, ...]]
) -> tuple[list[tuple[str, ...] | None], list[tuple[str, ...] | None]]:
    """Required traits each VM's host has (a generation above the oldest, or a custom one) and
    forbidden ``CUSTOM_*`` traits it lacks, for a ``share`` and a quarter of it of the VMs."""
    V = gen.size
    req_roll, two, forb_roll = rng.random(V), rng.random(V) < 0.25, rng.random(V)
    pick = rng.random((V, 2))
    customs = [t for t, _ in CUSTOM_TRAITS]
    required: list[tuple[str, ...] | None] = [None] * V
    forbidden: list[tuple[str, ...] | None] = [None] * V
    for i in range(V):
        have = host_traits[i]
        if req_roll[i] < share:
            options = [*_GENERATION_MARKERS[1 : int(gen[i]) + 1], *(t for t in customs if t in have)]
            options = options or [_GENERATION_MARKERS[0]]
            first = options.pop(int(pick[i, 0] * len(options)))
            chosen = [first] + ([options[int(pick[i, 1] * len(options))]] if two[i] and options else [])
            required[i] = tuple(sorted(chosen))
        if forb_roll[i] < share / 4:
            absent = [t for t in customs if t not in have]
            if absent:
                forbidden[i] = (absent[int(pick[i, 1] * len(absent))],)
    return required, forbidden


def _groups(
    rng: np.random.Generator,
    n: int,
    vhost: np.ndarray,
    ids: list[str],
    hosts: int,
    broken: float,
) -> tuple[ServerGroup, ...]:
    """Draw ``n`` groups cycling through the four policies, a ``broken`` share violated."""
    free: list[list[int]] = [[] for _ in range(hosts)]
    for i in rng.permutation(len(ids)):
        free[int(vhost[i])].append(int(i))
    kinds = ("anti-affinity", "affinity", "soft-anti-affinity", "soft-affinity")
    out: list[ServerGroup] = []
    for g in range(n):
        policy = kinds[g % 4]
        size = int(rng.integers(2, 6))
        rules: dict[str, int] = {}
        limit = 1
        if policy == "anti-affinity" and rng.random() < 0.35:
            limit = 2
            rules = {"max_server_per_host": 2}
        violate = rng.random() < broken
        members: list[int] = []
        if policy.endswith("anti-affinity"):
            order = [int(h) for h in rng.permutation(hosts)]
            for h in order:
                take = limit + 1 if violate and not members else limit
                while take and free[h] and len(members) < size + (1 if violate else 0):
                    members.append(free[h].pop())
                    take -= 1
                if len(members) >= size + (1 if violate else 0):
                    break
        else:
            rich = [h for h in range(hosts) if len(free[h]) >= size]
            if not rich:
                continue
            h0 = rich[int(rng.integers(0, len(rich)))]
            members = [free[h0].pop() for _ in range(size)]
            if violate:
                others = [h for h in range(hosts) if h != h0 and free[h]]
                if others:
                    members.append(free[others[int(rng.integers(0, len(others)))]].pop())
        if len(members) < 2:
            continue
        out.append(
            ServerGroup(
                id=str(uuid.UUID(int=int(rng.integers(0, 2**62)) << 64 | g, version=4)),
                name=f"{_SHORT[policy]}-{g + 1:03d}",
                policy=policy,
                rules=rules,
                members=tuple(ids[m] for m in members),
            )
        )
    return tuple(out)


#: what a host's recent past looked like, drawn per host and policy by :func:`with_history`
HISTORY_SHAPES = ("flat", "rising", "falling", "spike", "oscillating")


def with_history(
    snap: Snapshot, samples: int, seed: int = 0, *, step: float = 60.0, horizon: float = 900.0
) -> Snapshot:
    """``snap`` with FORMATS §5 fields: a ``score_history`` of ``samples`` for every host and
    policy, ``step`` seconds apart, ending at today's score, and ``weights_forecast`` at
    ``horizon`` for a third of the VMs.

    Each host's past has one of :data:`HISTORY_SHAPES` (rising: it was up to a
    third lower; a spike: twice the level for a few samples, now or earlier),
    with 2 % noise and 3 % gaps (``null``), never in the last sample.
    """
    if samples < 1:
        raise ValueError("samples must be >= 1")
    rng = _stream(seed, "history")
    t = np.arange(samples, dtype=np.float64) - (samples - 1)  # the last sample at 0
    span = max(samples - 1, 1)
    hosts = []
    for h in snap.hosts:
        history: dict[str, tuple[float | None, ...]] = {}
        for p, now in h.scores.items():
            shape = HISTORY_SHAPES[int(rng.integers(len(HISTORY_SHAPES)))]
            level = np.full(samples, now)
            if shape == "rising":
                level = now * (1 + rng.uniform(0.1, 0.33) * t / span)
            elif shape == "falling":
                level = now * (1 - rng.uniform(0.1, 0.5) * t / span)
            elif shape == "spike":
                start = int(rng.integers(samples))
                level = np.full(samples, now / 2 if start + 5 >= samples else now)
                level[start : start + 5] *= 2
            elif shape == "oscillating":
                level = now * (1 + 0.2 * np.sin(2 * np.pi * t / 10 + rng.uniform(0, 2 * np.pi)))
            values = np.clip(level * (1 + rng.normal(0, 0.02, samples)), 0.0, 1.0)
            gaps = rng.random(samples) < 0.03
            series: list[float | None] = [
                None if gap else round(float(x), 6) for x, gap in zip(values, gaps, strict=True)
            ]
            series[-1] = now
            history[p] = tuple(series)
        hosts.append(attrs.evolve(h, score_history=history))
    vms = []
    for v in snap.vms:
        if v.weights and rng.random() < 1 / 3:
            change = rng.uniform(0.6, 1.5, len(v.weights))
            forecast = {
                p: round(float(min(1.0, w * c)), 6)
                for (p, w), c in zip(v.weights.items(), change, strict=True)
            }
            v = attrs.evolve(v, weights_forecast=forecast)
        vms.append(v)
    return attrs.evolve(
        snap,
        hosts=tuple(hosts),
        vms=tuple(vms),
        history_step_seconds=step,
        forecast_horizon_seconds=horizon,
    )


def generate_packable(
    k: int = 20,
    seed: int = 0,
    *,
    pieces: tuple[int, int] = (3, 9),
    taken_at: datetime = DEFAULT_TAKEN_AT,
) -> Snapshot:
    """A bin-packing instance whose optimum is known: exactly ``k`` hosts.

    ``k`` full hosts (64 vCPU, 256 GiB, 2000 GB; two pack policies) are each
    cut into ``pieces`` VMs, every dimension independently, so the VMs' sizes
    sum to exactly ``k`` hosts and no fewer can hold them. Then every VM gets
    a host of its own, scattered in random order, one VM per host: the worst
    start a consolidation can have. Weights follow the cut of vCPU and memory
    (scores never bind before capacity does).
    """
    rng = np.random.default_rng(seed)
    cap = np.array([64.0, 262144.0, 2000.0])
    unit = np.array([1.0, 512.0, 10.0])  # sizes are whole vCPUs, 512 MiB, 10 GB
    sizes: list[np.ndarray] = []
    for _ in range(k):
        m = int(rng.integers(pieces[0], pieces[1] + 1))
        cols = []
        for r in range(3):
            slots = int(cap[r] / unit[r])
            cuts = np.sort(rng.choice(np.arange(1, slots), size=m - 1, replace=False))
            cols.append(np.diff(np.concatenate(([0], cuts, [slots]))) * unit[r])
        sizes.append(np.stack(cols, axis=1))
    size = np.concatenate(sizes)[rng.permutation(sum(len(s) for s in sizes))]
    n = size.shape[0]
    width = max(3, len(str(n)))
    names = [f"cmp-{i + 1:0{width}d}" for i in range(n)]
    pols = tuple(
        Policy(name=name, mode="pack", weight=wt, threshold=0.05, max_migrations_per_cycle=None)
        for name, wt in (("cpu-pack", 0.5), ("memory-pack", 0.5))
    )
    hosts = []
    vms = []
    for i in range(n):
        cpu, mem = float(size[i, 0] / cap[0]), float(size[i, 1] / cap[1])
        hosts.append(
            Host(
                name=names[i],
                capacity=Capacity(*map(float, cap)),
                scores={"cpu-pack": round(cpu * 0.9, 9), "memory-pack": round(mem * 0.9, 9)},
            )
        )
        vms.append(
            VM(
                id=str(uuid.UUID(int=int(rng.integers(0, 2**62)) << 64 | i, version=4)),
                name=f"vm-{i + 1:0{width}d}",
                host=names[i],
                status="ACTIVE",
                task_state=None,
                flavor=Flavor(f"cut-{i + 1}", float(size[i, 0]), float(size[i, 1]), float(size[i, 2])),
                weights={"cpu-pack": round(cpu * 0.9, 9), "memory-pack": round(mem * 0.9, 9)},
            )
        )
    return Snapshot(
        taken_at=taken_at,
        policies=pols,
        aggregates=(Aggregate("agg-pack", tuple(names), {}),),
        hosts=tuple(hosts),
        vms=tuple(vms),
        server_groups=(),
    )


def generate_tight(
    hosts: int = 20,
    vms: int = 500,
    seed: int = 0,
    *,
    groups: int = 60,
    room: float = 1.0,
    roomy: float = 0.15,
    taken_at: datetime = DEFAULT_TAKEN_AT,
) -> Snapshot:
    """A tight cloud for spread: hosts nearly full, a few with room, many server groups.

    Starts from :func:`generate` (``groups`` server groups of every kind) and
    shrinks each host's capacity, in every resource, to what its VMs hold
    plus a random slack: up to ``room`` × an average VM's size on most hosts,
    four times that on a ``roomy`` share of them. The load skew is left as
    generated, so the cloud wants balancing while most single moves find no
    room: where a greedy of single moves stalls and swaps and chains do not.
    """
    snap = generate(hosts=hosts, vms=vms, groups=groups, seed=seed, taken_at=taken_at)
    rng = _stream(seed, "tight")
    keys = ("vcpus", "memory_mb", "disk_gb")
    index = {h.name: i for i, h in enumerate(snap.hosts)}
    used = np.zeros((len(snap.hosts), 3))
    for vm in snap.vms:
        used[index[vm.host]] += [getattr(vm.flavor, k) for k in keys]
    mean = used.sum(axis=0) / max(1, len(snap.vms))
    scale = np.where(rng.random(len(snap.hosts)) < roomy, 4.0 * room, room)
    slack = rng.random((len(snap.hosts), 3)) * scale[:, None] * mean
    tight = tuple(
        attrs.evolve(h, capacity=Capacity(*(float(x) for x in np.round(used[i] + slack[i], 3))))
        for i, h in enumerate(snap.hosts)
    )
    return attrs.evolve(snap, hosts=tight)


def generate_evacuable(
    hosts: int = 40,
    vms: int = 1600,
    failed: int = 1,
    seed: int = 0,
    *,
    groups: int = 40,
    slack: float = 0.0,
    aggregates: int = 1,
    heterogeneous: bool = False,
    taken_at: datetime = DEFAULT_TAKEN_AT,
) -> Snapshot:
    """An evacuation whose every evacuee has a known place: feasible by construction.

    Starts from :func:`generate` with ``failed`` hosts down, then places each
    VM of the failed hosts on a random survivor that every rule allows, in a
    random order (so one valid sequence of steps exists), and shrinks every
    survivor's capacity to what it holds plus what it received, times
    ``1 + slack``. With ``slack=0`` the survivors' free room is exactly the
    evacuees' size in every resource, a perfect packing. An evacuee no rule
    allows anywhere (a hard affinity group living wholly on a failed host) is
    left out of the snapshot.
    """
    base = generate(
        hosts, vms, groups, seed, down=failed, unmovable=0.0, broken_groups=0.0,
        aggregates=aggregates, heterogeneous=heterogeneous, fill=0.5, taken_at=taken_at,
    )  # fmt: skip
    rng = np.random.default_rng(seed + 7919)
    by_name = {h.name: h for h in base.hosts}
    pols = base.enabled_policies
    aggs_of: dict[str, set[str]] = {h.name: set() for h in base.hosts}
    meta: dict[str, dict[str, set[str]]] = {h.name: {} for h in base.hosts}
    for a in base.aggregates:
        for n in a.hosts:
            aggs_of[n].add(a.name)
            for k, val in a.metadata.items():
                meta[n].setdefault(k, set()).add(val)
    used = {h.name: np.zeros(3) for h in base.hosts}
    count = {h.name: 0 for h in base.hosts}
    for v in base.vms:
        used[v.host] += (v.flavor.vcpus, v.flavor.memory_mb, v.flavor.disk_gb)
        count[v.host] += 1
    score = {h.name: {p.name: h.scores.get(p.name, 0.0) for p in pols} for h in base.hosts}
    group_of = {m: g for g in base.server_groups for m in g.members}
    where = {v.id: v.host for v in base.vms}

    def group_ok(vid: str, dst: str) -> bool:
        g = group_of.get(vid)
        if g is None or g.policy.startswith("soft"):
            return True
        hosts_now = [where[m] for m in g.members]
        after = [dst if m == vid else where[m] for m in g.members]
        return _group_measure(g, after) <= _group_measure(g, hosts_now)

    survivors = [h.name for h in base.hosts if h.up and h.enabled]
    arrived = {n: np.zeros(3) for n in survivors}
    dropped: set[str] = set()
    evacuees = [v for v in base.vms if not by_name[v.host].up]
    for i in rng.permutation(len(evacuees)):
        v = evacuees[int(i)]
        src = by_name[v.host]
        load = {
            p.name: v.weights.get(p.name, score[v.host][p.name] / max(1, count[v.host]))
            * src.score_capacity.get(p.name, 1.0)
            for p in pols
        }
        specs = {
            k.removeprefix(EXTRA_SPEC_PREFIX): str(val)
            for k, val in v.flavor.extra_specs.items()
            if k.startswith(EXTRA_SPEC_PREFIX)
        }
        cands = [
            n
            for n in survivors
            if aggs_of[n] & aggs_of[v.host]
            and meta[n].get("availability_zone") == meta[v.host].get("availability_zone")
            and all(val in meta[n].get(k, ()) for k, val in specs.items())
            and group_ok(v.id, n)
            and all(
                score[n][p.name] + load[p.name] / by_name[n].score_capacity.get(p.name, 1.0)
                <= p.max_host_score
                for p in pols
            )
        ]
        if not cands:
            dropped.add(v.id)
            continue
        n = cands[int(rng.integers(0, len(cands)))]
        where[v.id] = n
        arrived[n] += (v.flavor.vcpus, v.flavor.memory_mb, v.flavor.disk_gb)
        for p in pols:
            score[n][p.name] += load[p.name] / by_name[n].score_capacity.get(p.name, 1.0)

    new_hosts = []
    for h in base.hosts:
        if h.name in arrived:
            cap = used[h.name] + arrived[h.name] * (1.0 + slack)
            h = attrs.evolve(h, capacity=Capacity(*(float(np.ceil(c)) for c in cap)))
        new_hosts.append(h)
    sgs = tuple(
        attrs.evolve(g, members=tuple(m for m in g.members if m not in dropped)) for g in base.server_groups
    )
    return attrs.evolve(
        base,
        hosts=tuple(new_hosts),
        vms=tuple(v for v in base.vms if v.id not in dropped),
        server_groups=tuple(g for g in sgs if len(g.members) >= 2),
    )


def _group_measure(g: ServerGroup, hosts: list[str]) -> int:
    """FORMATS.md's violation measure of ``g`` with its members on ``hosts``."""
    cnt: dict[str, int] = {}
    for h in hosts:
        cnt[h] = cnt.get(h, 0) + 1
    if not cnt:
        return 0
    if g.policy.endswith("anti-affinity"):
        lim = g.max_server_per_host if g.policy == "anti-affinity" else 1
        return sum(max(0, c - lim) for c in cnt.values())
    return len(hosts) - max(cnt.values())


CLOUD_NAMES = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta")
#: per cloud in turn, its share of ``vms`` and how full its hosts are: the first is the
#: busiest, so the set has load to move
_CLOUD_SHARES = (1.0, 0.5, 0.7, 0.6, 0.9, 0.55, 0.8, 0.65)
_CLOUD_FILLS = (0.85, 0.45, 0.65, 0.55, 0.75, 0.5, 0.7, 0.6)
FEDERATE_TAG = "federate"


def generate_clouds(
    clouds: int = 3,
    hosts: int = 20,
    vms: int = 600,
    groups: int = 20,
    seed: int = 0,
    *,
    eligible: float = 0.25,
    policies: tuple[str, ...] = ("cpu", "mem"),
    **options: Any,
) -> tuple[dict[str, Snapshot], str]:
    """Snapshots of ``clouds`` independent clouds (the first the busiest) and a federation.yaml.

    Each cloud is :func:`generate` with its own seed, share of ``vms`` and fill, its hosts named
    ``<cloud>-cmp-NNN``, its ``cloud`` field set; an ``eligible`` share of the
    VMs outside server groups carries the tag ``federate``, which the
    federation.yaml opts in. The second cloud takes arrivals in its first
    aggregate only, to show ``receive``. ``options``: :func:`generate`'s (``traits``,
    ``numa``, ``pinned``, ``aggregates``, ...), for every cloud.
    """
    if not 2 <= clouds <= len(CLOUD_NAMES):
        raise ValueError(f"clouds={clouds}: between 2 and {len(CLOUD_NAMES)}")
    out: dict[str, Snapshot] = {}
    for i, name in enumerate(CLOUD_NAMES[:clouds]):
        snap = generate(
            hosts,
            round(vms * _CLOUD_SHARES[i]),
            groups,
            seed * 101 + i,
            policies=policies,
            **{"fill": _CLOUD_FILLS[i], "skew": 0.4 + 0.1 * i, **options},
        )
        rename = {h.name: f"{name}-{h.name}" for h in snap.hosts}
        members = {m for g in snap.server_groups for m in g.members}
        rng = _stream(seed * 101 + i, "federation")
        pick = rng.random(len(snap.vms)) < eligible
        out[name] = attrs.evolve(
            snap,
            cloud=name,
            hosts=tuple(attrs.evolve(h, name=rename[h.name]) for h in snap.hosts),
            aggregates=tuple(
                attrs.evolve(a, hosts=tuple(rename[h] for h in a.hosts)) for a in snap.aggregates
            ),
            vms=tuple(
                attrs.evolve(
                    v,
                    host=rename[v.host],
                    tags=(*v.tags, FEDERATE_TAG) if pick[k] and v.id not in members else v.tags,
                )
                for k, v in enumerate(snap.vms)
            ),
        )
    second = CLOUD_NAMES[1]
    first_agg = out[second].aggregates[0].name
    policy = (
        "# federation.yaml for the clouds kronos generate --clouds wrote beside it\n"
        "eligible:              # a VM may leave its cloud if any of these match\n"
        f"  tags: [{FEDERATE_TAG}]\n"
        "trigger:\n"
        "  load_difference: 0.05  # capacity-normalised combined loads differ by more\n"
        "  max_load: 0.85         # or a cloud is above this while another is below\n"
        "budget:                # cross-cloud moves per cycle\n"
        "  moves: 8\n"
        "  memory_gb: 512\n"
        "receive:               # where a cloud takes arrivals (default: everywhere)\n"
        f"  {second}: {{aggregates: [{first_agg}]}}\n"
        "networks: {}           # source network name -> destination network name\n"
        "data: stateless-image  # image-booted VMs, the image present in every cloud\n"
    )
    return out, policy
