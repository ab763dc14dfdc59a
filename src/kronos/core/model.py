"""The data model: snapshot, plan and state as frozen, slotted attrs classes.

These mirror ``FORMATS.md`` field for field. They hold data only; whether the
data makes sense together is decided in one place, :mod:`kronos.core.validate`,
so a document with ten problems reports ten, not the first.
Optional fields default to ``None`` and are left out when written.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from attrs import field, frozen

SNAPSHOT_FORMAT = "kronos.snapshot/1"
PLAN_FORMAT = "kronos.plan/1"
STATE_FORMAT = "kronos.state/1"
UNASSIGNED = "_unassigned_"
EXTRA_SPEC_PREFIX = "aggregate_instance_extra_specs:"

Mode = Literal["spread", "pack"]
GroupPolicy = Literal["affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity"]
Phase = str  # affinity | spread | pack | evacuate | drain | later additions
Action = Literal["live-migrate", "cold-migrate", "evacuate", "cross-cloud-migrate"]
RESOURCES = ("vcpus", "memory_mb", "disk_gb")
#: the largest capacity, size, amount or hourly cost a snapshot may state (a zettabyte in MB):
#: far past any cloud, and far enough under float's range that sums over millions of VMs, and
#: a plan's moved_memory_mb, stay finite (1e308 each made them infinite: no JSON plan)
MAX_AMOUNT = 1e15
#: Placement's names of the three legacy classes, which readers accept as aliases (FORMATS §4)
RESOURCE_ALIASES = {"VCPU": "vcpus", "MEMORY_MB": "memory_mb", "DISK_GB": "disk_gb"}
#: the most NUMA cells on a host Kronos plans for: a VM's cells are a bitmask in an int64
MAX_CELLS = 63
#: os-resource-classes' standard classes beyond the legacy three; ``CUSTOM_*`` are the operator's
STANDARD_RESOURCE_CLASSES = (
    "PCI_DEVICE",
    "SRIOV_NET_VF",
    "NUMA_SOCKET",
    "NUMA_CORE",
    "NUMA_THREAD",
    "NUMA_MEMORY_MB",
    "IPV4_ADDRESS",
    "VGPU",
    "VGPU_DISPLAY_HEAD",
    "NET_BW_EGR_KILOBIT_PER_SEC",
    "NET_BW_IGR_KILOBIT_PER_SEC",
    "PCPU",
    "MEM_ENCRYPTION_CONTEXT",
    "FPGA",
    "PGPU",
    "NET_PACKET_RATE_KILOPACKET_PER_SEC",
    "NET_PACKET_RATE_EGR_KILOPACKET_PER_SEC",
    "NET_PACKET_RATE_IGR_KILOPACKET_PER_SEC",
)
#: Nova's server statuses (case-sensitive, as the API returns them)
NOVA_STATUSES = (
    "ACTIVE",
    "BUILD",
    "DELETED",
    "ERROR",
    "HARD_REBOOT",
    "MIGRATING",
    "PASSWORD",
    "PAUSED",
    "REBOOT",
    "REBUILD",
    "RESCUE",
    "RESIZE",
    "REVERT_RESIZE",
    "SHELVED",
    "SHELVED_OFFLOADED",
    "SHUTOFF",
    "SOFT_DELETED",
    "SUSPENDED",
    "UNKNOWN",
    "VERIFY_RESIZE",
)
#: how a policy's ``vm_profile_label`` names the VM (policies.yaml and snapshot ``policies[]``)
VM_PROFILE_LABEL_TYPES = ("nova_instance_uuid", "libvirt_domain_name", "server_name")
#: what an executor reports of a step (state ``results[].outcome``)
OUTCOMES = ("Succeeded", "PreFlightError", "MigrationFailed", "MigrationTimeout")


@frozen
class Policy:
    name: str
    mode: str = "spread"
    weight: float = 1.0
    threshold: float = 0.0
    max_migrations_per_cycle: int | None = None
    vm_profile_fallback: str = "host_average"
    max_host_score: float = 1.0
    enabled: bool = True
    imbalance_query: str | None = None
    host_label: str | None = None
    vm_profile_query: str | None = None
    vm_profile_label: str | None = None
    vm_profile_label_type: str | None = None
    #: PromQL giving, per host, the newest sample time behind its score (data health)
    freshness_query: str | None = None


@frozen
class Capacity:
    vcpus: float = field(converter=float)
    memory_mb: float = field(converter=float)
    disk_gb: float = field(converter=float)
    #: Placement classes beyond the legacy three (``PCPU``, ``VGPU``, ``CUSTOM_*``), FORMATS §4;
    #: written beside ``vcpus`` in the document's ``capacity`` object, not nested
    classes: dict[str, float] | None = field(default=None, kw_only=True)


@frozen
class NumaCell:
    """A host NUMA cell and what it offers NUMA-placed guests (FORMATS §4)."""

    id: int
    vcpus: float
    memory_mb: float


@frozen
class Flavor:
    name: str
    vcpus: float = field(converter=float)
    memory_mb: float = field(converter=float)
    disk_gb: float = field(converter=float)
    extra_specs: dict[str, str] = field(factory=dict)


@frozen
class Host:
    name: str
    capacity: Capacity
    enabled: bool = True
    up: bool = True
    scores: dict[str, float] = field(factory=dict)
    score_capacity: dict[str, float] = field(factory=dict)
    cost_per_hour: float | None = None
    cluster: str | None = None
    forced_down: bool | None = None
    #: FORMATS §4: resource-provider traits and NUMA cells (facts; they bind nothing alone)
    traits: tuple[str, ...] | None = None
    numa_cells: tuple[NumaCell, ...] | None = None
    #: FORMATS §5: per policy, the score at equal steps of ``history_step_seconds``, oldest
    #: first, the last at ``taken_at``; a gap is None
    score_history: dict[str, tuple[float | None, ...]] | None = None


@frozen
class Aggregate:
    name: str
    hosts: tuple[str, ...] = ()
    metadata: dict[str, str] = field(factory=dict)


@frozen
class VM:
    id: str
    host: str
    flavor: Flavor
    name: str | None = None
    status: str = "ACTIVE"
    task_state: str | None = None
    weights: dict[str, float] = field(factory=dict)
    tags: tuple[str, ...] = ()
    migratable: bool = True
    project_id: str | None = None
    metadata: dict[str, str] | None = None
    #: FORMATS §4: Placement's allocation (replaces the flavor's three sizes where present),
    #: the traits a destination must have / must not have, the host NUMA cells occupied,
    #: passthrough devices and whether they allow live migration
    resources: dict[str, float] | None = None
    required_traits: tuple[str, ...] | None = None
    forbidden_traits: tuple[str, ...] | None = None
    numa_cells: tuple[int, ...] | None = None
    devices: tuple[str, ...] | None = None
    live_migratable_devices: bool | None = None
    #: FORMATS §5: the producer's forecast of ``weights`` at ``forecast_horizon_seconds``
    weights_forecast: dict[str, float] | None = None


@frozen
class ServerGroup:
    id: str
    policy: str
    members: tuple[str, ...] = ()
    name: str | None = None
    rules: dict[str, int] = field(factory=dict)

    @property
    def max_server_per_host(self) -> int:
        """Nova's rule: anti-affinity allows this many members per host (default 1)."""
        return int(self.rules.get("max_server_per_host", 1))

    @property
    def label(self) -> str:
        return self.name or self.id


@frozen
class Snapshot:
    taken_at: datetime
    policies: tuple[Policy, ...] = ()
    aggregates: tuple[Aggregate, ...] = ()
    hosts: tuple[Host, ...] = ()
    vms: tuple[VM, ...] = ()
    server_groups: tuple[ServerGroup, ...] = ()
    format: str = SNAPSHOT_FORMAT
    source: dict[str, Any] | None = None
    #: FORMATS §5: the spacing of ``hosts[].score_history`` and the horizon of
    #: ``vms[].weights_forecast`` (each required when that field appears)
    history_step_seconds: float | None = None
    forecast_horizon_seconds: float | None = None
    #: sha256 of the document this snapshot was read from, set by the loader so a
    #: plan need not serialise 100 000 VMs again; not part of the data (init=False:
    #: ``attrs.evolve`` drops it, so a changed snapshot never carries a stale digest)
    digest: str | None = field(default=None, init=False, eq=False, repr=False)
    #: federation: which cloud this snapshot is of (``kronos federate`` uses the file's stem
    #: when it is absent)
    cloud: str | None = None

    @property
    def enabled_policies(self) -> tuple[Policy, ...]:
        return tuple(p for p in self.policies if p.enabled)


@frozen
class Reason:
    """Why something was done or not, as data: a rule's or a decision's name and its numbers.

    ``rule`` is a stable name: a placement rule of :mod:`kronos.core.rules`
    (``capacity.vcpus``, ``group.anti-affinity``) or a planner decision
    (``aggregate.balanced``, ``spread.gain``). The other fields are the
    numbers that rule speaks of, each only where it means something. Text is
    made from it by :func:`kronos.core.reasons.render`, in one place per
    rule, when it is shown; the plan's string fields (``reason``,
    ``skipped``) are rendered from these records.
    """

    rule: str
    host: str | None = None
    aggregate: str | None = None
    #: hosts the same rule ruled out (explanations group them)
    hosts: tuple[str, ...] | None = None
    policy: str | None = None
    group: str | None = None
    #: what the VM needs, what the host has free, the bound, the measured value
    need: float | None = None
    free: float | None = None
    limit: float | None = None
    value: float | None = None
    before: float | None = None
    after: float | None = None
    count: int | None = None
    until: datetime | None = None
    #: a name or setting the rule refers to (a zone, an extra spec, a status)
    detail: str | None = None
    #: the values the rule allows (statuses)
    allowed: tuple[str, ...] | None = None


@frozen
class Step:
    seq: int
    wave: int
    phase: str
    action: str
    instance: str
    source: str
    destination: str
    aggregate: str
    reason: str
    combined_after: float
    name: str | None = None
    #: the records ``reason`` is rendered from
    why: tuple[Reason, ...] | None = None
    #: FORMATS §4: the destination NUMA cells the move assumes
    numa_cells: tuple[int, ...] | None = None
    #: FORMATS §2: why this VM moves a second time in the plan (two-hop or parking move)
    repeat_reason: str | None = None
    #: federation (docs/formats.md): a ``cross-cloud-migrate`` step names both clouds and the
    #: data precondition it assumed (``replicated-volume`` | ``stateless-image``)
    source_cloud: str | None = None
    destination_cloud: str | None = None
    precondition: str | None = None


@frozen
class Neighbourhoods:
    """What the exact search proved of an aggregate too large to model whole (issue 19's
    "say what was proven"): it solved neighbourhoods of the greedy's plan, each a few
    hosts with every VM on them. A proof about a neighbourhood is no bound on the
    aggregate, so it lives here and never in ``Optimality.bound``."""

    #: neighbourhoods solved, and how many of them to proven optimality (no better
    #: placement of their VMs on their hosts, under the same rules and the budget left)
    searched: int
    optimal: int
    #: hosts in the largest one
    hosts: int
    #: neighbourhoods whose solution the plan took (it emptied hosts or cut cost)
    improved: int


@frozen
class Optimality:
    """FORMATS §6: how good a solver's plan for one aggregate is, and how sure it is."""

    solver: str
    status: str
    objective: float
    bound: float
    gap: float
    seconds: float
    objective_kind: str
    neighbourhoods: Neighbourhoods | None = None


@frozen
class AggregateWhy:
    """The records behind an aggregate summary's ``skipped``, ``unrepaired`` and ``notes``."""

    skipped: Reason | None = None
    unrepaired: tuple[Reason, ...] = ()
    notes: tuple[Reason, ...] = ()


@frozen
class AggregateSummary:
    imbalance_before: dict[str, float]
    imbalance_after: dict[str, float]
    combined_before: float
    combined_after: float
    migrations: int = 0
    hosts_emptied: tuple[str, ...] = ()
    skipped: str | None = None
    hosts: int | None = None
    notes: tuple[str, ...] | None = None
    unrepaired: tuple[str, ...] | None = None
    #: pack: hosts holding VMs before / after the plan, and the fewest that could
    hosts_used_before: int | None = None
    hosts_used_after: int | None = None
    hosts_lower_bound: int | None = None
    #: pack: what to do with each emptied host (``post_drain_action``)
    post_drain: dict[str, str] | None = None
    #: pack: disabled, empty hosts that would take load no enabled host can
    hosts_to_enable: tuple[str, ...] | None = None
    why: AggregateWhy | None = None
    #: FORMATS §5: the sum of the moved VMs' ``memory_mb``, and the combined imbalance on
    #: forecast scores when a forecast was used
    moved_memory_mb: float | None = None
    combined_forecast_before: float | None = None
    combined_forecast_after: float | None = None
    #: FORMATS §6 (when a solver ran)
    optimality: Optimality | None = None


@frozen
class Unplaced:
    instance: str
    reason: str
    aggregate: str | None = None
    phase: str | None = None
    #: the records ``reason`` is rendered from
    why: tuple[Reason, ...] | None = None


@frozen
class CloudSummary:
    """Federation: one cloud's capacity-normalised combined load and its own imbalance.

    ``load``: the policies' weighted mean of (sum of host scores × score capacity) over
    (sum of score capacity) across the cloud's active hosts; ``imbalance``: the combined
    imbalance of all its active hosts taken as one set.
    """

    load_before: float
    load_after: float
    imbalance_before: float
    imbalance_after: float
    departures: int = 0
    arrivals: int = 0
    moved_memory_mb: float = 0.0


@frozen
class PlanSummary:
    aggregates: dict[str, AggregateSummary] = field(factory=dict)
    unplaced: tuple[Unplaced, ...] = ()
    warnings: tuple[str, ...] | None = None
    #: every aggregate's ``hosts_to_enable``, for the executor or the operator
    hosts_to_enable: tuple[str, ...] | None = None
    #: evacuate / drain with a selector: instances on the hosts it left where they are
    not_selected: tuple[Unplaced, ...] | None = None
    #: evacuate: hosts to fence (power off) before any step runs
    fence_first: tuple[str, ...] | None = None
    #: federation: per cloud, load and imbalance before and after the cross-cloud steps, and
    #: why the cross-cloud moves stopped
    clouds: dict[str, CloudSummary] | None = None
    notes: tuple[str, ...] | None = None


@frozen
class Plan:
    created_at: datetime
    snapshot_digest: str
    options: dict[str, Any] = field(factory=dict)
    steps: tuple[Step, ...] = ()
    summary: PlanSummary = field(factory=PlanSummary)
    format: str = PLAN_FORMAT


@frozen
class Result:
    instance: str
    outcome: str
    at: datetime
    error: str | None = None


@frozen
class State:
    aggregate_cooldown_until: dict[str, datetime] = field(factory=dict)
    instance_cooldown_until: dict[str, datetime] = field(factory=dict)
    quarantined_until: dict[str, datetime | None] = field(factory=dict)
    results: tuple[Result, ...] = ()
    format: str = STATE_FORMAT
