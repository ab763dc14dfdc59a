"""Carry out a plan through Nova, step by step, never on stale facts.

For each step, in wave order (a wave's steps concurrently, at most
``max_concurrent_migrations``, started ``stagger_seconds`` apart):
pre-flight (the server is still where the plan thinks, in a state the
action allows, the destination enabled and up), act, poll the migration
record to a terminal status (the server's host flips before the record
completes), post-flight (on the destination, in its pre-move status), and
retry failures with exponential backoff, re-running pre-flight each time.
A refusal by Nova (4xx, e.g. it would break anti-affinity) and a timeout
are definitive: retrying cannot help, and a timed-out migration may still
be running.

A step whose VM already sits on its destination with a migration record
newer than the plan is reconciled as done instead of being moved again,
and one whose migration is still under way is adopted and polled: that is
how a rerun after SIGKILL picks up, and how a retry after a lost answer
(a 5xx or timeout after Nova had already acted) avoids a second request.
While polling, an unreachable Nova is waited out until migration_timeout. Every outcome goes to
``report`` as soon as it is known (the CLI appends it to the results file
and the state), so a stop at any point loses nothing that happened.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from itertools import groupby
from typing import Any

from attrs import Factory, define, frozen

from kronos.adapters.clock import refuse_ahead
from kronos.adapters.config import ExecutorConfig
from kronos.adapters.nova_actions import Compute, Refused, Transient
from kronos.core.model import OUTCOMES as STATE_OUTCOMES
from kronos.core.model import Plan, Step
from kronos.errors import DataError, TemporaryFailure

log = logging.getLogger(__name__)

DONE = {"completed", "done", "confirmed"}
FAILED = {"error", "failed", "cancelled"}
ALLOWED = {
    "live-migrate": {"ACTIVE"},
    "cold-migrate": {"ACTIVE", "SHUTOFF"},
    "evacuate": {"ACTIVE", "SHUTOFF", "ERROR"},
}


#: what a step came to in a results log: the state's outcomes, and Interrupted, which is none
#: (the next run reconciles that step from Nova)
OUTCOMES = (*STATE_OUTCOMES, "Interrupted")


@frozen
class StepResult:
    seq: int
    wave: int
    instance: str
    action: str
    source: str
    destination: str
    outcome: str  # one of OUTCOMES
    attempts: int
    started_at: str
    finished_at: str
    seconds: float
    error: str | None = None
    migration: str | None = None  # Nova's migration record uuid
    reconciled: bool = False
    plan: str | None = None  # the plan's created_at + snapshot digest: which plan this step belonged to


class PreFlightError(Exception):
    pass


@define
class _Tries:
    """What one step's attempts learned, so a retry does not repeat a request that took."""

    attempts: int = 0
    acted: bool = False  # a move request was sent (its answer may have been lost)
    seen: set[Any] = Factory(set)  # the migration records that existed before it
    status: str | None = None  # the server's status before the move, for post-flight


class _Failure(Exception):
    def __init__(self, message: str, definitive: bool = False, outcome: str = "MigrationFailed") -> None:
        super().__init__(message)
        self.definitive = definitive
        self.outcome = outcome


def plan_id(plan: Plan) -> str:
    """Which plan a results-log row belongs to: its time, its snapshot and a digest of its moves.
    Every plan of one snapshot (a spread, a drain, a re-plan with another budget) has the time
    and the snapshot; without the moves, a row of one was taken for a step done of another."""
    moves = json.dumps([[s.seq, s.action, s.instance, s.source, s.destination] for s in plan.steps])
    steps = hashlib.sha256(moves.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{plan.created_at.strftime('%Y-%m-%dT%H:%M:%SZ')} {plan.snapshot_digest} steps:{steps}"


def check_plan_age(plan: Plan, now: datetime, max_age: float) -> None:
    """Refuse a stale plan (75: plan again) and one dated ahead of the clock (65): a plan made
    with ``--now`` in the future, or on a machine whose clock is wrong, would pass any age."""
    why = "a plan made with --now in the future, or a clock that is wrong; plan again"
    refuse_ahead(plan.created_at, "plan created_at", why, DataError, now)
    age = (now - plan.created_at).total_seconds()
    if age > max_age:
        raise TemporaryFailure(
            f"plan created {age:.0f}s ago, older than [executor] max_plan_age = {max_age:g}s: plan again"
        )


class Waves:
    """A plan's steps, wave by wave: concurrency, stagger, retries, signals, the gate and the
    slots, and each step's result. What one attempt of a step does, and what counts as drift,
    is a subclass's: :class:`Executor` within one cloud, ``CrossCloudExecutor`` across two."""

    def __init__(
        self,
        config: ExecutorConfig,
        report: Callable[[StepResult], None],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        stop: threading.Event | None = None,
        started: Callable[[Step, str | None], None] | None = None,
        gate: Callable[[], bool | None] | None = None,
        slot: Callable[[threading.Event], AbstractContextManager[bool]] | None = None,
    ) -> None:
        """``report``: each step's outcome; ``started``: each step about to act (the audit log);
        ``gate``: asked before each step starts, True go, False wait (the coordination backend
        is unreachable), None give up (the aggregate is no longer this engine's); ``slot``: one
        of the cloud-wide migration slots, held while a step runs (False: none before the stop)."""
        self.config = config
        self.report = report
        self.started = started
        self.gate = gate or (lambda: True)
        self.slot = slot or (lambda stop: nullcontext(True))
        self.clock = clock
        self.stop = stop or threading.Event()
        self.poll_interval = config.poll_interval
        self.retry_backoff = config.retry_backoff
        self.running: dict[int, Step] = {}
        self.plan: str | None = None  # plan_id of the plan being executed
        self._lock = threading.Lock()

    def drift(self, steps: Sequence[Step], plan: Plan) -> tuple[float, list[str]]:
        """Fraction of the steps' VMs that moved or changed state since the plan was made, and
        what changed; a VM this plan already moved, or is moving, is progress, not drift."""
        raise NotImplementedError

    def _attempt(self, step: Step, plan: Plan, tries: _Tries) -> tuple[str | None, bool]:
        """One try of ``step``: (its migration record's id or None, reconciled from an earlier
        run); raises PreFlightError, _Failure or Transient."""
        raise NotImplementedError

    # -- the plan -----------------------------------------------------------------------------
    def check_drift(self, steps: Sequence[Step], plan: Plan) -> None:
        """Refuse (75) when more than [executor] max_drift of the steps' VMs drifted; names a few."""
        share, changed = self.drift(steps, plan)
        if share > self.config.max_drift:
            raise TemporaryFailure(
                f"{share:.0%} of the plan's VMs moved or changed state since it was made "
                f"(max_drift {self.config.max_drift:.0%}): plan again; " + "; ".join(changed[:10])
            )

    def execute(self, plan: Plan, skip: set[int] | None = None) -> list[StepResult]:
        """Run every step not in ``skip`` (already done in an earlier run); returns the outcomes."""
        results: list[StepResult] = []
        self.plan = plan_id(plan)
        todo = [s for s in plan.steps if s.seq not in (skip or set())]
        for _, wave in groupby(sorted(todo, key=lambda s: (s.wave, s.seq)), key=lambda s: s.wave):
            if self.stop.is_set():
                break
            with ThreadPoolExecutor(max(1, self.config.max_concurrent_migrations)) as pool:
                futures = []
                for k, step in enumerate(wave):
                    if k and self.stop.wait(self.config.stagger_seconds):
                        break
                    if self.stop.is_set():
                        break
                    futures.append(pool.submit(self._run, step, plan))
                results.extend(r for f in futures if (r := f.result()) is not None)
        return results

    # -- one step -----------------------------------------------------------------------------
    def _run(self, step: Step, plan: Plan) -> StepResult | None:
        with self.slot(self.stop) as free:
            if not free or not self._may_start(step):
                return None  # not started: the next plan sees the VM where it is
            return self._step(step, plan)

    def _may_start(self, step: Step) -> bool:
        """Fail closed: no migration starts while the gate says wait; False on give-up or stop."""
        held = False
        while (verdict := self.gate()) is not True:
            if verdict is None:
                log.warning("step %d not started: this engine no longer holds its aggregate", step.seq)
                return False
            if not held:
                log.warning("step %d held: the coordination backend does not answer", step.seq)
                held = True
            if self.stop.wait(self.poll_interval):
                return False
        if held:
            log.warning("step %d: the coordination backend answers again; starting", step.seq)
        return True

    def _step(self, step: Step, plan: Plan) -> StepResult | None:
        with self._lock:
            if self.stop.is_set():
                return None  # queued behind max_concurrent_migrations when the stop came: not started
            self.running[step.seq] = step
        t0 = self.clock()
        if self.started is not None:
            self.started(step, self.plan)
        log.info(
            "step %d: %s %s %s -> %s", step.seq, step.action, step.instance, step.source, step.destination
        )
        tries = _Tries()
        error, migration, outcome, reconciled = None, None, "MigrationFailed", False
        while True:
            tries.attempts += 1
            try:
                migration, reconciled = self._attempt(step, plan, tries)
                outcome, error = "Succeeded", None
                break
            except PreFlightError as exc:
                outcome, error = "PreFlightError", str(exc)
                break
            except (_Failure, Transient) as exc:
                error = str(exc)
                definitive = isinstance(exc, _Failure) and exc.definitive
                outcome = exc.outcome if isinstance(exc, _Failure) else "MigrationFailed"
                if definitive or tries.attempts > self.config.max_retries:
                    break
                if self.stop.wait(self.retry_backoff * 2 ** (tries.attempts - 1)):
                    break
        result = self._result(step, outcome, tries.attempts, t0, error, migration, reconciled)
        log.info(
            "step %d: %s after %d attempt(s)%s",
            step.seq,
            outcome,
            tries.attempts,
            f": {error}" if error else "",
        )
        with self._lock:
            self.running.pop(step.seq, None)
            self.report(result)
        return result

    def _result(
        self,
        step: Step,
        outcome: str,
        attempts: int,
        t0: datetime,
        error: str | None = None,
        migration: str | None = None,
        reconciled: bool = False,
    ) -> StepResult:
        t1 = self.clock()
        seconds = round((t1 - t0).total_seconds(), 3)
        return StepResult(
            step.seq,
            step.wave,
            step.instance,
            step.action,
            step.source,
            step.destination,
            outcome,
            attempts,
            iso(t0),
            iso(t1),
            seconds,
            error,
            migration,
            reconciled,
            self.plan,
        )

    def interrupt(self, why: str) -> None:
        """Leaving at once: report every running step as ``Interrupted`` (a rerun reconciles it)."""
        with self._lock:
            for step in list(self.running.values()):
                self.report(self._result(step, "Interrupted", 0, self.clock(), why))
            self.running.clear()


class Executor(Waves):
    """Steps within one cloud: live and cold migrations and evacuations through Nova, each
    adopting this plan's migration where an earlier attempt or run already started one."""

    def __init__(
        self, compute: Compute, config: ExecutorConfig, report: Callable[[StepResult], None], **kwargs: Any
    ) -> None:
        """``compute``: the cloud's Nova; the rest as :class:`Waves`'s."""
        super().__init__(config, report, **kwargs)
        self.compute = compute

    def drift(self, steps: Sequence[Step], plan: Plan) -> tuple[float, list[str]]:
        """Fraction of the plan's VMs that moved or changed state since the plan was made.

        A VM this plan already moved, or is moving (an earlier run killed
        mid-step), is progress, not drift.
        """
        changed = []
        for step in steps:
            try:
                s = self.compute.server(step.instance)
            except Refused:
                changed.append(f"{step.instance}: gone")
                continue
            host, status = s.get("OS-EXT-SRV-ATTR:host"), s.get("status")
            task = s.get("OS-EXT-STS:task_state")
            if host == step.destination:
                continue
            if host == step.source and status in ALLOWED.get(step.action, {"ACTIVE"}) and not task:
                continue
            if host == step.source and ours(step, plan, self.compute.migrations(step.instance)) is not None:
                continue
            if host != step.source:
                changed.append(f"{step.instance}: on {host}, not {step.source}")
            else:
                changed.append(f"{step.instance}: {status} {task or ''}".rstrip())
        return (len(changed) / len(steps) if steps else 0.0), changed

    def _attempt(self, step: Step, plan: Plan, tries: _Tries) -> tuple[str | None, bool]:
        """One try: adopt this plan's migration if one exists (earlier attempt or run), else move."""
        if step.action not in ALLOWED:  # a cross-cloud step is no migration: never sent to Nova as one
            raise PreFlightError(
                f"{step.action}: not a move within one cloud; kronos execute carries it out "
                "with a [nova:<cloud>] section per cloud (kronos.adapters.crosscloud)"
            )
        server = self.compute.server(step.instance)
        records = self.compute.migrations(step.instance)
        mine = ours(step, plan, records)
        if mine is not None and mine.get("status") in DONE:
            if server.get("OS-EXT-SRV-ATTR:host") == step.destination:
                self._postflight(step, tries.status)
                return str(mine.get("uuid")), not tries.acted  # reconciled: an earlier run moved it
        elif mine is not None:  # under way: an earlier request (this run's or a killed run's) took
            return self._follow(step, tries, {m.get("uuid") for m in records if m is not mine})
        if tries.acted and server.get("OS-EXT-STS:task_state"):  # our earlier request took after all
            return self._follow(step, tries, tries.seen)
        tries.status = self._preflight(step, server)
        tries.seen = {m.get("uuid") for m in records}
        tries.acted = True  # from here on Nova may act even if the answer never comes back
        try:
            self.compute.act(step.action, step.instance, step.destination)
        except (Refused, Transient) as exc:
            if not self._took(step, tries.seen):  # final if refused; retried if it never arrived
                if isinstance(exc, Refused):
                    raise _Failure(f"Nova refused: {exc}", definitive=True) from None
                raise
        return self._follow(step, tries, tries.seen)

    def _took(self, step: Step, seen: set[Any]) -> bool:
        """Did a move request take although its answer was an error (lost, or a 409 racing our own)?

        Nova sets the task_state in the API call itself; the migration record
        may come a little later from the conductor.
        """
        if [m for m in self.compute.migrations(step.instance) if m.get("uuid") not in seen]:
            return True
        return bool(self.compute.server(step.instance).get("OS-EXT-STS:task_state"))

    def _follow(self, step: Step, tries: _Tries, seen: set[Any]) -> tuple[str | None, bool]:
        record = self._poll(step, seen)
        self._postflight(step, tries.status)
        return record.get("uuid"), False

    def _preflight(self, step: Step, server: dict[str, Any]) -> str:
        host, status = server.get("OS-EXT-SRV-ATTR:host"), server.get("status")
        task = server.get("OS-EXT-STS:task_state")
        if host != step.source:
            raise PreFlightError(f"moved: on {host}, the plan says {step.source}")
        if status not in ALLOWED[step.action]:
            raise PreFlightError(
                f"status {status}: {step.action} needs {'/'.join(sorted(ALLOWED[step.action]))}"
            )
        if task and step.action != "evacuate":
            raise PreFlightError(f"task_state {task}: another operation is running")
        dest = self.compute.service(step.destination)
        if dest is None:
            raise PreFlightError(f"destination {step.destination}: no nova-compute service")
        if dest.get("status") != "enabled":
            why = f" ({dest['disabled_reason']})" if dest.get("disabled_reason") else ""
            raise PreFlightError(f"destination {step.destination} is disabled{why}")
        if dest.get("state") != "up" or dest.get("forced_down"):
            raise PreFlightError(f"destination {step.destination} is down")
        if step.action == "evacuate":
            src = self.compute.service(step.source)
            if src is not None and src.get("state") == "up" and not src.get("forced_down"):
                raise PreFlightError(f"source {step.source} is up: evacuate only a failed, fenced host")
        return str(status)

    def _poll(self, step: Step, seen: set[Any]) -> dict[str, Any]:
        """Wait for the migration record's end; an unreachable Nova is waited out until the deadline."""
        deadline = self.clock().timestamp() + self.config.migration_timeout
        confirmed, trouble = False, ""
        while True:
            try:
                fresh = [m for m in self.compute.migrations(step.instance) if m.get("uuid") not in seen]
                trouble = ""
                if fresh:
                    record = fresh[-1]
                    st = record.get("status")
                    if st in DONE:
                        return record
                    if st in FAILED:
                        raise _Failure(f"migration {record.get('uuid')} ended {st}")
                    if st == "finished" and step.action == "cold-migrate" and not confirmed:
                        self.compute.confirm_resize(step.instance)  # cold migration waits in VERIFY_RESIZE
                        confirmed = True
            except Transient as exc:
                trouble = f" (last read: {exc})"
            if self.clock().timestamp() > deadline:
                raise _Failure(
                    f"no terminal migration status after {self.config.migration_timeout:g}s{trouble}",
                    definitive=True,
                    outcome="MigrationTimeout",
                )
            time.sleep(self.poll_interval)  # not stop.wait: a running step always reaches its end

    def _postflight(self, step: Step, status: str | None) -> None:
        """On the destination, in the pre-move status (any the action allows when that is unknown)."""
        server = self.compute.server(step.instance)
        host = server.get("OS-EXT-SRV-ATTR:host")
        if host != step.destination:
            raise _Failure(f"post-flight: on {host}, not {step.destination}")
        if status is None:
            expected = ALLOWED[step.action] - {"ERROR"}
        else:
            expected = {"ACTIVE" if step.action == "evacuate" and status == "ERROR" else status}
        if server.get("status") not in expected:
            want = "/".join(sorted(expected))
            raise _Failure(f"post-flight: status {server.get('status')}, expected {want}")


def ours(step: Step, plan: Plan, records: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The newest migration of ``step.instance`` to its destination since the plan was made, if not failed.

    Nova's and Kronos's clocks are compared (to the second), so the two
    must agree to within the time between planning and executing. A live
    migration's record has no ``dest_compute`` until the conductor has
    checked the destination (status ``accepted``): that one counts too.
    """
    since = plan.created_at.replace(microsecond=0)
    for m in reversed(records):
        created = _parse(m.get("created_at"))
        dest = m.get("dest_compute")
        if dest in (step.destination, None) and created is not None and created >= since:
            return None if m.get("status") in FAILED else m
    return None


def iso(t: datetime) -> str:
    """UTC, microseconds, Z: the one timestamp shape of results and engine logs."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(text: Any) -> datetime | None:
    if not text:
        return None
    try:
        t = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)
