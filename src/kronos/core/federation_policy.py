"""What federation.yaml says, as data: which VMs may leave their cloud, when, how many, where.

Apart from :mod:`kronos.core.federation` so that reading the file loads no
numpy and no kernels (the CLI picks compiled or interpreted kernels after
reading its inputs).
"""

from __future__ import annotations

from attrs import field, frozen

from kronos.core.model import VM

#: what the operator declares of the VMs' disks: a cross-cloud move copies none
PRECONDITIONS = ("replicated-volume", "stateless-image")


@frozen
class Eligible:
    """Which VMs may leave their cloud: any one criterion matching opts a VM in."""

    tags: tuple[str, ...] = ()
    metadata: dict[str, str] = field(factory=dict)
    projects: tuple[str, ...] = ()

    def matches(self, vm: VM) -> bool:
        meta = vm.metadata or {}
        return (
            any(t in vm.tags for t in self.tags)
            or any(meta.get(k) == v for k, v in self.metadata.items())
            or (vm.project_id is not None and vm.project_id in self.projects)
        )


@frozen
class Trigger:
    """When load moves between clouds (None: that test is off)."""

    load_difference: float | None = 0.10
    max_load: float | None = None
    #: once moving, go on until the loads differ by at most this (None: half of
    #: ``load_difference``), so the next cycle does not fire again on the next wobble
    target_difference: float | None = None

    def target(self) -> float | None:
        if self.target_difference is not None:
            return self.target_difference
        return None if self.load_difference is None else self.load_difference / 2


@frozen
class Budget:
    """Cross-cloud moves per cycle: they copy nothing, but each stops and recreates a VM."""

    moves: int = 8
    memory_gb: float | None = None


@frozen
class Receive:
    """Where a cloud takes arrivals (None: anywhere)."""

    aggregates: tuple[str, ...] | None = None
    availability_zones: tuple[str, ...] | None = None


@frozen
class FederationPolicy:
    """federation.yaml: ``data`` is the operator's word on where eligible VMs keep their disks
    (no default in the file: Kronos cannot check it); ``networks`` maps a source network's name
    to the destination's, for the executor."""

    eligible: Eligible = Eligible()
    trigger: Trigger = Trigger()
    budget: Budget = Budget()
    receive: dict[str, Receive] = field(factory=dict)
    networks: dict[str, str] = field(factory=dict)
    data: str = "replicated-volume"
