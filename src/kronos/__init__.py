"""Kronos plans VM live-migrations for OpenStack host aggregates.

The public API::

    snap = kronos.load_snapshot("snap.json")
    problems = kronos.validate(snap)
    plan = kronos.plan(snap, budget=10)
    plan = kronos.evacuate(snap, ["cmp-007"])        # a failed, fenced host
    plan = kronos.drain(snap, ["cmp-003"])           # maintenance
    kronos.dump(plan, "plan.json")
    plan = kronos.federate({"alpha": a, "beta": b}, kronos.load_federation("federation.yaml"))

``plan``, ``next_state`` and ``generate`` load numpy and numba on first use,
so ``import kronos`` (and ``kronos --help``) stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kronos import errors
from kronos.core.model import (
    VM,
    Aggregate,
    AggregateSummary,
    Capacity,
    CloudSummary,
    Flavor,
    Host,
    NumaCell,
    Plan,
    PlanSummary,
    Policy,
    Result,
    ServerGroup,
    Snapshot,
    State,
    Step,
    Unplaced,
)
from kronos.core.validate import Issue, validate
from kronos.files import dump, load_plan, load_snapshot, load_state

if TYPE_CHECKING:
    from kronos.adapters.federation_file import load_federation
    from kronos.core.federation import Federated, federate, federate_all
    from kronos.core.federation_policy import FederationPolicy
    from kronos.core.planner import UNLIMITED, Prepared, drain, evacuate, plan, prepare
    from kronos.core.state import next_state, record_result, release
    from kronos.testing import generate, generate_packable

_LAZY = {
    "plan": "kronos.core.planner",
    "evacuate": "kronos.core.planner",
    "drain": "kronos.core.planner",
    "prepare": "kronos.core.planner",
    "Prepared": "kronos.core.planner",
    "next_state": "kronos.core.state",
    "record_result": "kronos.core.state",
    "release": "kronos.core.state",
    "UNLIMITED": "kronos.core.planner",
    "generate": "kronos.testing",
    "generate_packable": "kronos.testing",
    "federate": "kronos.core.federation",
    "federate_all": "kronos.core.federation",
    "Federated": "kronos.core.federation",
    "FederationPolicy": "kronos.core.federation_policy",
    "load_federation": "kronos.adapters.federation_file",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'kronos' has no attribute {name!r}")


__all__ = [
    "UNLIMITED",
    "VM",
    "Aggregate",
    "AggregateSummary",
    "Capacity",
    "CloudSummary",
    "Federated",
    "FederationPolicy",
    "Flavor",
    "Host",
    "Issue",
    "NumaCell",
    "Plan",
    "PlanSummary",
    "Policy",
    "Prepared",
    "Result",
    "ServerGroup",
    "Snapshot",
    "State",
    "Step",
    "Unplaced",
    "drain",
    "dump",
    "errors",
    "evacuate",
    "federate",
    "federate_all",
    "generate",
    "generate_packable",
    "load_federation",
    "load_plan",
    "load_snapshot",
    "load_state",
    "next_state",
    "plan",
    "prepare",
    "record_result",
    "release",
    "validate",
]
__version__ = "0.1.0"
