"""Kronos plans VM live-migrations for OpenStack host aggregates.

The public API::

    snap = kronos.load_snapshot("snap.json")
    problems = kronos.validate(snap)
    plan = kronos.plan(snap, budget=10)
    kronos.dump(plan, "plan.json")
"""

from kronos import errors
from kronos.core.generate import generate
from kronos.core.model import (
    VM,
    Aggregate,
    AggregateSummary,
    Capacity,
    Flavor,
    Host,
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
from kronos.core.planner import next_state, plan
from kronos.core.validate import Issue, validate
from kronos.files import dump, load_plan, load_snapshot, load_state

__all__ = [
    "VM",
    "Aggregate",
    "AggregateSummary",
    "Capacity",
    "Flavor",
    "Host",
    "Issue",
    "Plan",
    "PlanSummary",
    "Policy",
    "Result",
    "ServerGroup",
    "Snapshot",
    "State",
    "Step",
    "Unplaced",
    "dump",
    "errors",
    "generate",
    "load_plan",
    "load_snapshot",
    "load_state",
    "next_state",
    "plan",
    "validate",
]
__version__ = "0.1.0"
