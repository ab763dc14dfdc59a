"""The engine loop of the original Kronos: every evaluation_interval, per aggregate,
record → plan (with the state) → log the plan (dry run) or execute it.

Each aggregate is recorded and planned on its own, so bad data or an API
error in one does not hold back the others; its error is logged with the
exit code it would have had. Every cycle and every step is one JSON log
line. With ``[engine] dry_run = true`` (the default) nothing is moved and no
cooldown is set: the loop shows what it would do, cycle after cycle. When
it executes, the plan's cooldowns go into the state first, then each
step's outcome as it happens (:class:`~kronos.adapters.journal.Journal`).

One engine per set of aggregates: :class:`EngineLock` holds an exclusive
``flock`` on ``[engine] lock_file`` for the life of the process.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import sys
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import attrs

import kronos
from kronos.adapters.audit import Audit
from kronos.adapters.config import Config
from kronos.adapters.coordination import Alone, Coordinator
from kronos.adapters.executor import Executor, iso
from kronos.adapters.journal import Journal, SharedState, open_append, state_options
from kronos.adapters.nova import NovaReader
from kronos.adapters.nova_actions import Compute
from kronos.adapters.prometheus import PrometheusClient
from kronos.adapters.record import record
from kronos.core.model import Plan
from kronos.errors import (
    ConfigError,
    DataError,
    KronosError,
    KronosIOError,
    TemporaryFailure,
    UsageError,
)
from kronos.files import make_folder, shortened
from kronos.logs import JsonFormatter

#: a failed step makes a one-shot cycle exit 1, as ``kronos execute`` does
STEP_FAILED = 1


class JsonLog:
    """The engine's events: records of the ``kronos.events`` logger, one JSON object per line
    (:class:`kronos.logs.JsonFormatter`, redacted), to a file (appended) or standard output.

    Its own handler, not the text log's: ``-v``/``--debug`` never change these
    lines, and they never go to stderr.
    """

    def __init__(self, path: Path | None, clock: Callable[[], datetime], label: str = "--log") -> None:
        self.clock = clock
        self._own = path is not None
        self._out: IO[str] = open_append(path, label) if path else sys.stdout
        self._handler = logging.StreamHandler(self._out)  # flushed after every line
        self._handler.setFormatter(JsonFormatter())
        self._logger = logging.getLogger("kronos.events")
        self._logger.propagate = False
        self._logger.setLevel(logging.INFO)
        self._logger.addHandler(self._handler)

    def __call__(self, event: str, **fields: Any) -> None:
        self._logger.info(event, extra={"fields": fields, "at": self.clock()})

    def close(self) -> None:
        self._logger.removeHandler(self._handler)
        if self._own:
            self._out.close()


class EngineLock:
    """An exclusive, non-blocking flock; the holder's pid is written into the file for the next one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def __enter__(self) -> EngineLock:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise KronosIOError(f"[engine] lock_file = {str(self.path)!r}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise TemporaryFailure(
                f"[engine] lock_file = {str(self.path)!r}: held by another kronos run (pid {holder}) "
                "managing these aggregates"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the flock
            self._fd = None


class Engine:
    def __init__(
        self,
        config: Config,
        reader: NovaReader,
        prometheus: PrometheusClient,
        compute: Compute,
        log: Callable[..., None],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        stop: threading.Event | None = None,
        coordinator: Coordinator | None = None,
        state_store: SharedState | None = None,
    ) -> None:
        """``coordinator``: who owns which aggregate when several engines share the cloud
        (:mod:`kronos.adapters.coordination`; default: this engine alone); ``state_store``: the
        state they share (default: ``[engine] state_file``)."""
        self.config = config
        self.coordinator: Coordinator = coordinator or Alone()
        self.reader = reader
        self.prometheus = prometheus
        self.compute = compute
        self.log = log
        self.clock = clock
        self.stop = stop or threading.Event()
        self.executor: Executor | None = None  # the one running now, for a second signal
        path = config.path(config.engine.results_file)
        audit_path = config.path(config.engine.audit_file)
        self.audit = Audit(audit_path, clock=clock) if audit_path else None
        try:
            self.journal = Journal(
                path,
                config.path(config.engine.state_file),
                state_options(config),
                clock=clock,
                also=lambda r: log("step", **attrs.asdict(r)),
                labels=("[engine] results_file", "[engine] state_file"),
                audit=self.audit,
                store=state_store,
            )
        except BaseException:  # an unreadable state, an unwritable results file: no open audit left
            if self.audit is not None:
                self.audit.close()
            raise

    def loop(self, once: bool = False) -> int:
        """Cycle until stopped (or once); the exit code of the last cycle."""
        number, code = 0, 0
        try:
            while not self.stop.is_set():
                number += 1
                started = self.clock()
                code = self.cycle(number)
                if once:
                    break
                rest = self.config.engine.evaluation_interval - (self.clock() - started).total_seconds()
                self.stop.wait(max(0.0, rest))
        finally:  # however the loop ends
            self.journal.close()
            if self.audit is not None:
                self.audit.close()
        return code

    def cycle(self, number: int) -> int:
        at = self.clock()
        dry = self.config.engine.dry_run
        aggregates: dict[str, dict[str, Any]] = {}
        outcomes: Counter[str] = Counter()
        code = 0
        elsewhere: list[str] = []
        for agg in self.config.scope:
            if self.stop.is_set():
                break
            if not self.coordinator.owns(agg):
                elsewhere.append(agg)
                continue
            with self.coordinator.hold(agg) as held:
                if not held:  # another engine is acting on it (its ring saw a change before ours)
                    elsewhere.append(agg)
                    continue
                failed = self._cycle_one(number, agg, at, aggregates, outcomes)
                code = code or failed  # the first error's code, as before
        if not code and any(o != "Succeeded" for o in outcomes):
            code = STEP_FAILED
        self.log(
            "cycle",
            cycle=number,
            at=iso(at),
            dry_run=dry,
            seconds=round((self.clock() - at).total_seconds(), 3),
            aggregates=aggregates,
            steps_planned=sum(a.get("steps", 0) for a in aggregates.values()),
            outcomes=dict(outcomes),
            stopped=self.stop.is_set(),
            exit_code=code,
            member=self.coordinator.member,
            **({"elsewhere": elsewhere} if elsewhere else {}),
        )
        return code

    def _cycle_one(
        self,
        number: int,
        agg: str,
        at: datetime,
        aggregates: dict[str, dict[str, Any]],
        outcomes: Counter[str],
    ) -> int:
        """Plan one aggregate this engine holds, then log, save or execute the plan: its exit code."""
        dry = self.config.engine.dry_run
        try:
            self.journal.refresh()  # another engine may have set cooldowns since
            plan = self._plan(agg, at)
            aggregates[agg] = _summary(plan, agg)
            if plan.steps:
                self.journal.audit("plan", aggregate=agg, dry_run=dry, **aggregates[agg])
            if dry:
                for step in plan.steps:
                    self.log("step", cycle=number, dry_run=True, **attrs.asdict(step))
                if plan.steps and self.config.engine.plan_dir:
                    saved = self._save(plan, agg, at)
                    self.log("plan_saved", cycle=number, aggregate=agg, path=str(saved))
            elif plan.steps:
                outcomes.update(self._execute(plan, agg))
        except KronosError as exc:
            aggregates[agg] = {"error": str(exc), "exit_code": exc.exit_code}
            self.log("aggregate", cycle=number, aggregate=agg, error=str(exc), exit_code=exc.exit_code)
            return exc.exit_code
        return 0

    def _plan(self, agg: str, at: datetime) -> Plan:
        try:
            snap = record(self.config, self.reader, self.prometheus, at, (agg,))
        except UsageError as exc:  # on the command line a usage error; here the config names it
            raise ConfigError(f"{self.config.source}: [engine] aggregates: {exc}") from None
        problems = [i for i in kronos.validate(snap) if i.severity == "error"]
        if problems:
            raise DataError(f"recorded snapshot of {agg}: {problems[0]}")
        options = {**self.config.engine.options.as_dict(), "aggregates": (agg,)}
        return kronos.plan(snap, state=self.journal.state, now=at, validate_input=False, **options)

    def _save(self, plan: Plan, agg: str, at: datetime) -> Path:
        """Write a recommended plan where ``kronos plans`` finds it (atomically: a reader never
        sees half a plan)."""
        folder = self.config.path(self.config.engine.plan_dir)
        assert folder is not None  # only called with a plan_dir
        make_folder(folder, "kronos run saves its dry-run plans in it", "[engine] plan_dir =")
        path = folder / saved_plan_name(agg, at)
        kronos.dump(plan, path)
        return path

    def _execute(self, plan: Plan, agg: str) -> Counter[str]:
        """Execute a fresh plan: its cooldowns go into the state first, then each outcome.
        No step starts unless the coordinator says this engine still holds ``agg``."""
        executor = Executor(
            self.compute,
            self.config.executor,
            self.journal,
            clock=self.clock,
            stop=self.stop,
            started=self.journal.started,
            gate=lambda: self.coordinator.may_start(agg),
            slot=lambda stop: self.coordinator.slot(stop, busy=self._in_flight),
        )
        executor.check_drift(plan.steps, plan)
        opts = {k: v for k, v in self.config.engine.options.as_dict().items() if k != "aggregates"}
        self.journal.adopt(plan, lambda state: kronos.next_state(state, plan, now=plan.created_at, **opts))
        self.executor = executor
        try:
            return Counter(r.outcome for r in executor.execute(plan))
        finally:
            self.executor = None

    def _in_flight(self) -> int:
        """Nova's count of the cloud's migrations not over, changed in the last day."""
        since = (self.clock() - timedelta(days=1)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return self.compute.migrations_in_flight(since)


def saved_plan_name(aggregate: str, at: datetime) -> str:
    """``plan-<aggregate>-<UTC time>.json``: sorted by name, a folder lists each aggregate's plans
    oldest first; characters a file name should not hold become ``_``."""
    safe = shortened(re.sub(r"[^A-Za-z0-9._-]", "_", aggregate), aggregate)
    return f"plan-{safe}-{at.astimezone(UTC):%Y%m%dT%H%M%SZ}.json"


def _summary(plan: Plan, agg: str) -> dict[str, Any]:
    s = plan.summary.aggregates.get(agg)
    out: dict[str, Any] = {"steps": len(plan.steps)}
    if s is not None:
        # skipped for bad data, its figures are of the few hosts left (0.0 for one): no measurement
        planned = not (s.why and s.why.skipped and s.why.skipped.rule == "aggregate.bad_data")
        out.update(
            imbalance_before=s.combined_before if planned else None,
            imbalance_after=s.combined_after if planned else None,
            skipped=s.skipped,
        )
    return out
