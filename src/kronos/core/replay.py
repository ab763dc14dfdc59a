"""A plan's steps applied to the planner's world: the placement and scores it leaves.

One definition of what a step does to the numbers (the planner's own
:func:`kronos.core.kernels.apply_move`), shared by the report and by
``kronos explain``, so what they show is what the planner reckoned with.
"""

from __future__ import annotations

from collections.abc import Iterable

from kronos.core import kernels
from kronos.core.arrays import World
from kronos.core.model import Plan, Step
from kronos.errors import DataError


def apply_steps(world: World, steps: Iterable[Step]) -> None:
    """Apply ``steps`` to ``world`` in order; a step that does not fit the world is a DataError."""
    vm_index = {vid: k for k, vid in enumerate(world.vm_ids)}
    arrays = world.arrays()
    for step in steps:
        v = vm_index.get(step.instance)
        if v is None:
            raise DataError(f"step {step.seq}: instance {step.instance} is not in the snapshot")
        if step.destination not in world.host_index:
            raise DataError(f"step {step.seq}: destination {step.destination} is not in the snapshot")
        members = world.aggregates.get(step.aggregate)
        if members is None:
            raise DataError(f"step {step.seq}: aggregate {step.aggregate} is not in the snapshot")
        outside = [h for h in (step.source, step.destination) if world.host_index.get(h, -1) not in members]
        if outside:
            raise DataError(f"step {step.seq}: {outside[0]} is not in aggregate {step.aggregate}")
        here = world.host_names[world.vm_host[v]]
        if here != step.source:
            raise DataError(
                f"step {step.seq}: instance {step.instance} is on {here} by then, not on {step.source}"
            )
        kernels.apply_move(v, world.host_index[step.destination], arrays)


def check_digest(snapshot_digest: str, plan: Plan) -> None:
    """A plan is read against the snapshot it was made for, or not at all."""
    if plan.options.get("mode") == "federate":  # its digest is of every cloud's: none matches one
        raise DataError(
            "a federation plan (its steps cross clouds) is read against one cloud's snapshot here: "
            "give the plan of that cloud (federate --then-spread writes them), or read it with kronos show"
        )
    if plan.snapshot_digest != snapshot_digest:
        raise DataError(
            f"the plan was made for snapshot {plan.snapshot_digest}, not for this one ({snapshot_digest})"
        )
