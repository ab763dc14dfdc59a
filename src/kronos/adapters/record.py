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

:func:`build_snapshot` is pure; :func:`record` does the reading.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from kronos.adapters.config import Config
from kronos.adapters.nova import NovaReader, NovaWorld
from kronos.adapters.prometheus import PrometheusClient
from kronos.adapters.scores import (
    PolicyReading,
    VMRef,
    VMWeights,
    assess,
    host_problem,
    read_policies,
    read_vm_weights,
)
from kronos.core.model import UNASSIGNED, VM, Aggregate, Capacity, Flavor, Host, Policy, ServerGroup, Snapshot
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
    max_sample_age: float = 180.0,
    min_host_coverage: float = 1.0,
    pinned_tag: str = "kronos:pinned",
    source: Mapping[str, Any] | None = None,
) -> Snapshot:
    by_pool = pools(world, include_unassigned)
    down = {h for h, s in world.services.items() if not s.up or s.forced_down}
    reports = assess(
        readings, by_pool, at, down=down, max_sample_age=max_sample_age, min_host_coverage=min_host_coverage
    )
    skip = {r.name: r.skipped.removeprefix("bad data: ") for r in reports if r.skipped}
    t = at.timestamp()

    scores: dict[str, dict[str, float]] = {h: {} for h in world.services}
    excluded: dict[str, str] = {}
    for host in world.services:
        for name, reading in readings.items():
            if reading.error is not None:
                why = f"{name}: query failed"
            else:
                problem = host_problem(reading, host, t, max_sample_age)
                if problem is None:
                    scores[host][name] = reading.values[host][0]
                    continue
                why = str(problem)
            if host not in down:
                excluded.setdefault(host, why)

    kept = [h for h in world.services if h not in excluded]
    hosts = tuple(
        Host(
            name=h,
            capacity=world.capacity.get(h) or Capacity(0, 0, 0),  # no resource provider yet: no room
            enabled=world.services[h].enabled,
            up=world.services[h].up and not world.services[h].forced_down,
            scores=scores[h],
            forced_down=world.services[h].forced_down,
        )
        for h in kept
    )
    keep = set(kept)
    aggregates = tuple(
        Aggregate(a.name, tuple(h for h in a.hosts if h in keep), a.metadata)
        for a in world.aggregates
        if a.name in by_pool
    )
    vms = tuple(
        VM(
            id=s.id,
            host=s.host,
            flavor=Flavor(**s.flavor),
            name=s.name,
            status=s.status,
            task_state=s.task_state,
            weights={p: w.weights[s.id] for p, w in vm_weights.items() if s.id in w.weights},
            tags=s.tags,
            migratable=pinned_tag not in s.tags,
            project_id=s.project_id,
            metadata=dict(s.metadata),
        )
        for s in world.servers
        if s.host in keep
    )
    recorded = {vm.id for vm in vms}
    groups, outside = [], 0
    for g in world.groups:
        members = tuple(m for m in g.members if m in recorded)
        outside += len(g.members) - len(members)
        if members:
            rules = {k: int(v) for k, v in g.rules.items() if k == "max_server_per_host"}
            groups.append(ServerGroup(g.id, g.policy, members, g.name, rules))
    problems = sorted(
        {str(p) for r in reports for p in r.problems}
        | {str(p) for w in vm_weights.values() for p in w.problems}
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
            "problems": problems,
            "group_members_elsewhere": outside,
            "nova_calls": world.calls,
        },
    )


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
    world = reader.read(lambda a: a.name in names, include_unassigned=unassigned)
    unknown = sorted(names - {a.name for a in world.aggregates})
    if unknown:
        raise UsageError(f"aggregate {unknown[0]!r} is not in Nova (or not visible to these credentials)")
    policies = config.policies
    readings = read_policies(prometheus, policies, at)
    refs = [VMRef(s.id, s.name, s.instance_name) for s in world.servers]
    weights = {
        p.name: read_vm_weights(prometheus, p, at, refs) for p in policies if p.enabled and p.vm_profile_query
    }
    return build_snapshot(
        world,
        policies,
        readings,
        weights,
        at,
        include_unassigned=unassigned,
        max_sample_age=config.prometheus.max_sample_age,
        min_host_coverage=config.prometheus.min_host_coverage,
        pinned_tag=config.nova.pinned_tag,
        source={
            "recorder": "kronos record",
            "config": config.source,
            "prometheus": redact(config.prometheus.url),
        },
    )
