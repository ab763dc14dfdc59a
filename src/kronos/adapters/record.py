"""One snapshot from Nova and Prometheus at one evaluation time (``kronos record``).

The recorder is where untrustworthy data stops. The snapshot contract has
no "unknown" score for a host that is up, so a host whose Prometheus data is
bad (missing, NaN, out of range, stale, duplicated, query failed) is left out
of the snapshot together with its VMs, and the reason is kept in
``source.excluded_hosts``; an aggregate whose coverage falls below
``min_host_coverage`` is listed in ``source.skip_aggregates`` and the planner
reports it skipped ("bad data: ...") instead of planning on half the facts.
Server-group members outside the recorded hosts are dropped from the groups
(nothing can move to or from where they are), and counted in ``source``.

What Nova's scheduler would check comes in as FORMATS §4 fields: every
Placement class of a host's capacity, its traits, what each VM holds
(``resources``, written only where it differs from the flavor's three
sizes: a snapshot of a cloud without pinning or devices reads as before),
the traits its flavor and image require or forbid
(:mod:`kronos.adapters.nova_request`), and the NUMA cells of the
operator's ``numa_topology_file``. Where the file and Nova disagree (a host
Nova does not know, a VM that moved, a cell count its flavor does not ask
for), the VM is counted at host level and ``source.problems`` says why.

:func:`build_snapshot` is pure; :func:`record` does the reading.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs

from kronos.adapters.config import Config, PrometheusConfig
from kronos.adapters.history import Window
from kronos.adapters.nova import NovaReader, NovaWorld, Server
from kronos.adapters.nova_request import Request, request
from kronos.adapters.numa_file import NumaTopology
from kronos.adapters.numa_file import load as load_numa
from kronos.adapters.prometheus import PrometheusClient
from kronos.adapters.scores import (
    DEFAULT_LIMITS,
    PolicyReading,
    VMRef,
    VMWeights,
    assess,
    host_problem,
    read_policies,
    read_vm_weights,
)
from kronos.core.model import (
    RESOURCE_ALIASES,
    RESOURCES,
    STANDARD_RESOURCE_CLASSES,
    UNASSIGNED,
    VM,
    Aggregate,
    Capacity,
    Flavor,
    Host,
    Policy,
    ServerGroup,
    Snapshot,
)
from kronos.core.options import did_you_mean
from kronos.errors import UsageError
from kronos.redact import redact


def pools(world: NovaWorld, include_unassigned: bool) -> dict[str, list[str]]:
    """Aggregate → its recorded hosts; hosts in no aggregate form ``_unassigned_`` when asked."""
    out = {a.name: [h for h in a.hosts if h in world.services] for a in world.aggregates}
    if include_unassigned:
        placed = {h for hosts in out.values() for h in hosts}
        loose = [h for h in world.services if h not in placed]
        if loose:
            out[UNASSIGNED] = loose
    return out


def build_snapshot(
    world: NovaWorld,
    policies: Sequence[Policy],
    readings: Mapping[str, PolicyReading],
    vm_weights: Mapping[str, VMWeights],
    at: datetime,
    *,
    include_unassigned: bool = False,
    limits: PrometheusConfig = DEFAULT_LIMITS,
    pinned_tag: str = "kronos:pinned",
    source: Mapping[str, Any] | None = None,
    numa: NumaTopology | None = None,
) -> Snapshot:
    by_pool = pools(world, include_unassigned)
    down = {h for h, s in world.services.items() if not s.up or s.forced_down}
    reports = assess(readings, by_pool, at, down=down, limits=limits)
    skip = {r.name: r.skipped.removeprefix("bad data: ") for r in reports if r.skipped}
    t = at.timestamp()

    scores: dict[str, dict[str, float]] = {h: {} for h in world.services}
    histories: dict[str, dict[str, tuple[float | None, ...]]] = {h: {} for h in world.services}
    excluded: dict[str, str] = {}
    for host in world.services:
        for name, reading in readings.items():
            if reading.error is not None:
                why = f"{name}: query failed"
            else:
                problem = host_problem(reading, host, t, limits.max_sample_age)
                if problem is None:
                    scores[host][name] = reading.values[host][0]
                    if reading.history is not None:  # its last sample is this score (history.on_grid)
                        histories[host][name] = reading.history[host].samples
                    continue
                why = str(problem)
            if host not in down:
                excluded.setdefault(host, why)

    kept = [h for h in world.services if h not in excluded]
    numa = numa or NumaTopology({}, {}, "")
    unknown: set[str] = set()
    hosts = tuple(
        Host(
            name=h,
            capacity=_capacity(world.capacity.get(h), unknown),
            enabled=world.services[h].enabled,
            up=world.services[h].up and not world.services[h].forced_down,
            scores=scores[h],
            forced_down=world.services[h].forced_down,
            traits=world.traits.get(h) or None,
            numa_cells=numa.hosts.get(h),
            score_history=histories[h] or None,
        )
        for h in kept
    )
    keep = set(kept)
    aggregates = tuple(
        Aggregate(a.name, tuple(h for h in a.hosts if h in keep), a.metadata)
        for a in world.aggregates
        if a.name in by_pool
    )
    notes: list[str] = []
    asked: dict[tuple[object, ...], Request] = {}  # by flavor and image: 20 000 servers share a few dozen
    vms = tuple(
        _vm(s, world, numa, notes, unknown, vm_weights, pinned_tag, asked)
        for s in world.servers
        if s.host in keep
    )
    notes += _numa_strays(numa, world)
    notes += [f"Placement class {rc}: unknown to this Kronos version, left out" for rc in sorted(unknown)]
    recorded = {vm.id for vm in vms}
    groups, outside = [], 0
    for g in world.groups:
        members = tuple(m for m in g.members if m in recorded)
        outside += len(g.members) - len(members)
        if members:
            rules = {k: int(v) for k, v in g.rules.items() if k == "max_server_per_host"}
            groups.append(ServerGroup(g.id, g.policy, members, g.name, rules))
    steps = {r.window.step for r in readings.values() if r.window is not None}
    horizons = {w.horizon for w in vm_weights.values() if w.horizon is not None}
    problems = sorted(
        {str(p) for r in reports for p in r.problems}
        | {str(p) for w in vm_weights.values() for p in w.problems}
        | set(notes)
    )
    return Snapshot(
        taken_at=at,
        policies=tuple(policies),
        aggregates=aggregates,
        hosts=hosts,
        vms=vms,
        server_groups=tuple(groups),
        source={
            **(source or {}),
            "skip_aggregates": skip,
            "excluded_hosts": excluded,
            # which aggregates they were members of: `kronos scores --snapshot` checks them again
            "excluded_members": {
                name: [h for h in members if h in excluded]
                for name, members in by_pool.items()
                if any(h in excluded for h in members)
            },
            "problems": problems,
            "group_members_elsewhere": outside,
            "nova_calls": world.calls,
        },
        history_step_seconds=steps.pop() if any(h.score_history for h in hosts) and len(steps) == 1 else None,
        forecast_horizon_seconds=horizons.pop() if any(v.weights_forecast for v in vms) else None,
    )


def _vm(
    s: Server,
    world: NovaWorld,
    numa: NumaTopology,
    notes: list[str],
    unknown: set[str],
    vm_weights: Mapping[str, VMWeights],
    pinned_tag: str,
    requests: dict[tuple[object, ...], Request],
) -> VM:
    flavor = Flavor(**s.flavor)
    image = world.images.get(s.image, {}) if s.image else {}
    if s.image and s.image not in world.images:
        notes.append(f"VM {s.id}: image {s.image} is not in Nova's image list: its trait:* and hw_* unknown")
    key = (flavor.vcpus, flavor.memory_mb, flavor.disk_gb, tuple(flavor.extra_specs.items()), s.image)
    asked = requests.get(key)
    if asked is None:
        sizes = int(flavor.vcpus), int(flavor.memory_mb), int(flavor.disk_gb)
        asked = requests[key] = request(*sizes, flavor.extra_specs, image)
    held = world.allocations.get(s.host, {}).get(s.id)
    if held is None and s.status == "ACTIVE":
        notes.append(f"VM {s.id}: Placement holds no allocation for it on {s.host}: sized by its flavor")
    resources = _resources(flavor, held if held is not None else asked.resources, unknown)
    return VM(
        id=s.id,
        host=s.host,
        flavor=flavor,
        name=s.name,
        status=s.status,
        task_state=s.task_state,
        weights={p: w.weights[s.id] for p, w in vm_weights.items() if s.id in w.weights},
        weights_forecast={p: w.forecasts[s.id] for p, w in vm_weights.items() if s.id in w.forecasts} or None,
        tags=s.tags,
        migratable=pinned_tag not in s.tags,
        project_id=s.project_id,
        metadata=dict(s.metadata),
        resources=resources,
        required_traits=tuple(sorted(asked.required)) or None,
        forbidden_traits=tuple(sorted(asked.forbidden)) or None,
        numa_cells=_vm_cells(s, asked, numa, notes),
        devices=_devices(resources),
    )


#: resource classes that are a device passed through to the guest: Nova's live migration
#: refuses a guest holding them (vGPU live migration needs libvirt and Nova support and
#: is not assumed; SR-IOV ports are handled by Nova's live migration and are not listed)
PASSTHROUGH = ("PCI_DEVICE", "PGPU", "VGPU", "FPGA")


def _devices(resources: Mapping[str, float] | None) -> tuple[str, ...] | None:
    """The passthrough devices a VM's allocation shows (FORMATS §4 ``devices``): one per class held."""
    held = tuple(f"{rc}:{int(x)}" for rc, x in (resources or {}).items() if rc in PASSTHROUGH and x > 0)
    return held or None


def _known(rc: str) -> bool:
    """A class the snapshot format carries: a standard one this Kronos knows, or ``CUSTOM_*``."""
    return rc in RESOURCES or rc in STANDARD_RESOURCE_CLASSES or bool(re.fullmatch("CUSTOM_[A-Z0-9_]+", rc))


def _capacity(capacity: Capacity | None, unknown: set[str]) -> Capacity:
    """A host's capacity with only the classes a snapshot can carry (a newer Placement may have more)."""
    if capacity is None:
        return Capacity(0, 0, 0)  # no resource provider yet: no room
    classes = {rc: x for rc, x in (capacity.classes or {}).items() if _known(rc)}
    unknown.update(set(capacity.classes or ()) - set(classes))
    return attrs.evolve(capacity, classes=classes or None)


def _resources(flavor: Flavor, held: Mapping[str, float], unknown: set[str]) -> dict[str, float] | None:
    """What the VM holds, by the snapshot's keys; None where that is just its flavor's three sizes."""
    amounts = {RESOURCE_ALIASES.get(rc, rc): float(x) for rc, x in held.items() if x}
    unknown.update(rc for rc in amounts if not _known(rc))
    amounts = {rc: x for rc, x in amounts.items() if _known(rc)}
    if amounts == {r: getattr(flavor, r) for r in RESOURCES if getattr(flavor, r)}:
        return None
    return dict(sorted(amounts.items()))


def _vm_cells(s: Server, asked: Request, numa: NumaTopology, notes: list[str]) -> tuple[int, ...] | None:
    """The file's cells for a NUMA-placed VM, where they fit its host and Nova's view of the guest."""
    cells = numa.vms.get(s.id)
    host = numa.hosts.get(s.host)
    where = f"{numa.source}: vms.{s.id}"
    if cells is None:
        if host and asked.numa_nodes:
            notes.append(
                f"VM {s.id} has {asked.numa_nodes} NUMA cell(s) in Nova but {numa.source} names none "
                f"for it on {s.host}: counted at host level only"
            )
        return None
    if asked.numa_nodes is None:
        why = "its flavor and image give it no NUMA topology (Nova does not count it per cell)"
    elif len(cells) != asked.numa_nodes:
        why = f"{len(cells)} cell(s), but its flavor and image ask for {asked.numa_nodes}"
    elif host is None:
        why = f"its host {s.host} has no cells in the file"
    elif missing := sorted(set(cells) - {c.id for c in host}):
        why = f"{s.host} has no cell {missing[0]} (cells {', '.join(str(c.id) for c in host)})"
    else:
        return cells
    notes.append(f"{where} = {list(cells)}: {why}: counted at host level only")
    return None


def _numa_strays(numa: NumaTopology, world: NovaWorld) -> list[str]:
    """Hosts the file names that Nova has no compute service for (a typo, or a host long gone)."""
    out = []
    for host in numa.hosts:
        if world.compute_hosts and host not in world.compute_hosts:
            hint = did_you_mean(host, sorted(world.compute_hosts))
            out.append(f"{numa.source}: hosts.{host}: no compute host of this name in Nova{hint}")
    return out


def record(
    config: Config,
    reader: NovaReader,
    prometheus: PrometheusClient,
    at: datetime,
    aggregates: Sequence[str] | None = None,
) -> Snapshot:
    """Read Nova, then Prometheus at ``at``, and build the snapshot for the scope."""
    engine = config.engine
    wanted = tuple(aggregates) if aggregates else tuple(engine.options.aggregates or ())
    unassigned = engine.include_unassigned_hosts or UNASSIGNED in wanted
    names = {a for a in wanted if a != UNASSIGNED}
    numa_path = config.path(config.nova.numa_topology_file)
    numa = load_numa(numa_path) if numa_path else None  # a bad file fails before any call is made
    world = reader.read(lambda a: a.name in names, include_unassigned=unassigned)
    unknown = sorted(names - {a.name for a in world.aggregates})
    if unknown:
        raise UsageError(f"aggregate {unknown[0]!r} is not in Nova (or not visible to these credentials)")
    policies = config.policies
    window = Window.of(engine, at)
    horizon = engine.options.spread.forecast_horizon
    readings = read_policies(prometheus, policies, at, window)
    refs = [VMRef(s.id, s.name, s.instance_name) for s in world.servers]
    weights = {
        p.name: read_vm_weights(prometheus, p, at, refs, window, horizon)
        for p in policies
        if p.enabled and p.vm_profile_query
    }
    return build_snapshot(
        world,
        policies,
        readings,
        weights,
        at,
        include_unassigned=unassigned,
        limits=config.prometheus,
        pinned_tag=config.nova.pinned_tag,
        source={
            "recorder": "kronos record",
            "config": config.source,
            "prometheus": redact(config.prometheus.url),
            **({"numa_topology_file": str(numa_path)} if numa_path else {}),
        },
        numa=numa,
    )
