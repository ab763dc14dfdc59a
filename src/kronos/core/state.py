"""The state document's transitions: cooldowns after a plan, quarantine after failures.

Pure functions: the caller passes the time; nothing here reads a clock or
writes a file. Every transition also prunes expired entries, so the state
stays small however long the engine runs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from kronos.core.model import OUTCOMES, Plan, Result, State
from kronos.core.options import make_options
from kronos.errors import UsageError

DEFINITIVE_FAILURES = ("MigrationFailed", "MigrationTimeout")
MAX_RESULTS = 1000


def prune(state: State, now: datetime) -> State:
    return attrs.evolve(
        state,
        aggregate_cooldown_until={k: t for k, t in state.aggregate_cooldown_until.items() if t > now},
        instance_cooldown_until={k: t for k, t in state.instance_cooldown_until.items() if t > now},
        quarantined_until={k: t for k, t in state.quarantined_until.items() if t is None or t > now},
    )


#: the last instant a document can say (RFC 3339 stops at year 9999)
END_OF_TIME = datetime.max.replace(tzinfo=UTC)


def after(t: datetime, seconds: float) -> datetime:
    """``t`` plus ``seconds``, or :data:`END_OF_TIME` for a cooldown that would end past year 9999."""
    try:
        return t + timedelta(seconds=seconds)
    except OverflowError:
        return END_OF_TIME


def _later(current: datetime | None, candidate: datetime) -> datetime:
    return candidate if current is None or candidate > current else current


def next_state(state: State | None, plan: Plan, *, now: datetime, **options: Any) -> State:
    """The state after emitting ``plan`` at ``now``: aggregate and instance cooldowns set."""
    opts = make_options(options)
    state = prune(state or State(), now)
    agg = dict(state.aggregate_cooldown_until)
    inst = dict(state.instance_cooldown_until)
    for step in plan.steps:
        if opts.common.cooldown > 0:
            agg[step.aggregate] = _later(agg.get(step.aggregate), after(now, opts.common.cooldown))
        if opts.common.instance_cooldown > 0:
            inst[step.instance] = _later(inst.get(step.instance), after(now, opts.common.instance_cooldown))
    return attrs.evolve(state, aggregate_cooldown_until=agg, instance_cooldown_until=inst)


def record_result(
    state: State | None,
    instance: str,
    outcome: str,
    *,
    at: datetime,
    error: str | None = None,
    **options: Any,
) -> State:
    """Feed back one step's outcome.

    ``MigrationFailed`` / ``MigrationTimeout`` quarantine the VM for
    ``instance_quarantine_seconds`` (-1: until released by hand) so the
    planner stops proposing it; ``PreFlightError`` (the world changed under
    the plan) only sets the instance cooldown; ``Succeeded`` refreshes it.
    """
    if outcome not in OUTCOMES:
        raise UsageError(f"outcome = {outcome!r}: must be one of {', '.join(OUTCOMES)}")
    opts = make_options(options)
    state = prune(state or State(), at)
    inst = dict(state.instance_cooldown_until)
    quar = dict(state.quarantined_until)
    if outcome in DEFINITIVE_FAILURES:
        secs = opts.common.instance_quarantine_seconds
        held = quar.get(instance, at)  # (not held: nothing beyond the failure's own time)
        if held is not None:  # None: until released by hand, which no new failure shortens
            quar[instance] = None if secs < 0 else _later(held, after(at, secs))
    elif opts.common.instance_cooldown > 0:
        inst[instance] = _later(inst.get(instance), after(at, opts.common.instance_cooldown))
    results = (*state.results, Result(instance, outcome, at, error))[-MAX_RESULTS:]
    return attrs.evolve(state, instance_cooldown_until=inst, quarantined_until=quar, results=results)


def release(state: State, instance: str) -> State:
    """Lift a VM's quarantine and cooldown (an operator's decision)."""
    if instance not in state.quarantined_until and instance not in state.instance_cooldown_until:
        raise UsageError(f"instance {instance!r} is neither quarantined nor in cooldown")
    return attrs.evolve(
        state,
        quarantined_until={k: t for k, t in state.quarantined_until.items() if k != instance},
        instance_cooldown_until={k: t for k, t in state.instance_cooldown_until.items() if k != instance},
    )
