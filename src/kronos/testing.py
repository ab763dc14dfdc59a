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
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import attrs
import numpy as np

from kronos.core.model import (
    EXTRA_SPEC_PREFIX,
    VM,
    Aggregate,
    Capacity,
    Flavor,
    Host,
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
    taken_at: datetime = DEFAULT_TAKEN_AT,
) -> Snapshot:
    """Build a snapshot; the same arguments always give the same snapshot."""
    if hosts < 1 or vms < 0 or groups < 0 or aggregates < 1:
        raise ValueError("hosts and aggregates must be >= 1, vms and groups >= 0")
    rng = np.random.default_rng(seed)
    pols = _policies(tuple(policies), mode)
    P = len(pols)

    # -- hosts -------------------------------------------------------------
    cls = rng.integers(0, len(_HOST_CLASSES), hosts) if heterogeneous else np.full(hosts, 1)
    cores = np.array([_HOST_CLASSES[c][0] for c in cls], dtype=float)
    ram_gib = np.array([_HOST_CLASSES[c][1] for c in cls], dtype=float)
    disk = np.array([_HOST_CLASSES[c][2] for c in cls], dtype=float)
    probs = np.array([f[4] for f in _FLAVORS])
    probs /= probs.sum()
    mean_vcpu = float(np.dot(probs, [f[1] for f in _FLAVORS]))
    mean_mb = float(np.dot(probs, [f[2] for f in _FLAVORS]))
    mean_gb = float(np.dot(probs, [f[3] for f in _FLAVORS]))
    # dense clouds get bigger hosts rather than VMs that cannot fit anywhere
    demand = max(
        vms * mean_vcpu / (cores.sum() * _CPU_RATIO),
        vms * mean_mb / (ram_gib.sum() * 1024 - hosts * _RESERVED_MB),
        vms * mean_gb / disk.sum(),
    )
    scale = max(1.0, demand / fill)
    cores = np.ceil(cores * scale)
    ram_gib = np.ceil(ram_gib * scale)
    disk = np.ceil(disk * scale)
    cap = np.stack([cores * _CPU_RATIO, ram_gib * 1024 - _RESERVED_MB, disk], axis=1)
    heat = np.exp(skew * rng.standard_normal(hosts))
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
    flavors = [Flavor(f[0], f[1], f[2], f[3]) for f in _FLAVORS]
    ssd_flavors = [Flavor(f[0] + ".ssd", f[1], f[2], f[3], {SSD_SPEC: "true"}) for f in _FLAVORS]
    fsize = np.array([[f[1], f[2], f[3]] for f in _FLAVORS], dtype=float)
    choice = rng.choice(len(_FLAVORS), size=vms, p=probs)
    wants_ssd = rng.random(vms) < (0.1 if host_ssd.any() else 0.0)
    pref = cap[:, 1] * heat
    pref_all = pref / pref.sum()
    cand = rng.choice(hosts, size=(vms, 6), p=pref_all)
    used = np.zeros((hosts, 3))
    placed_host = np.full(vms, -1, dtype=np.int64)
    order = np.argsort(-fsize[choice, 1], kind="stable")  # big VMs first: they must fit
    host_list = list(range(hosts))
    for v in order:
        need = fsize[choice[v]]
        ok_host = -1
        for h in cand[v]:
            if wants_ssd[v] and not host_ssd[h]:
                continue
            if np.all(used[h] + need <= cap[h]):
                ok_host = int(h)
                break
        if ok_host < 0:
            free = cap - used - need
            fits = np.all(free >= 0, axis=1) & (host_ssd | ~wants_ssd[v])
            if fits.any():
                ok_host = int(host_list[int(np.argmax(np.where(fits, free[:, 1], -np.inf)))])
        if ok_host < 0:
            continue  # nowhere to put it: the cloud is full, leave it out
        used[ok_host] += need
        placed_host[v] = ok_host
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

    vm_objs: list[VM] = []
    pnames = [p.name for p in pols]
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
        vm_objs.append(
            VM(
                id=ids[i],
                name=f"vm-{i + 1:06d}",
                host=names[h],
                status=status,
                task_state=task,
                flavor=(ssd_flavors if wants_ssd[v] else flavors)[int(choice[v])],
                weights=w,
                tags=("automatic-recovery",) if tag_roll[i] < 0.3 else (),
                migratable=migratable,
                project_id=f"project-{int(project[i]):02d}",
            )
        )

    host_objs = []
    for h in range(hosts):
        sc = {}
        if heterogeneous:
            for pname in pnames:
                sc[pname] = float(ram_gib[h] * 1024**3) if pname.startswith("mem") else float(cores[h])
        host_objs.append(
            Host(
                name=names[h],
                capacity=Capacity(float(cap[h, 0]), float(cap[h, 1]), float(cap[h, 2])),
                enabled=h not in dis_set,
                up=h not in down_set,
                scores={} if h in down_set else {p: float(scores[h, j]) for j, p in enumerate(pnames)},
                score_capacity=sc,
                cost_per_hour=float(round(0.02 * cores[h] + 0.002 * ram_gib[h], 4)),
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
