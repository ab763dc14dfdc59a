"""Where step outcomes go the moment they are known: the results file and the state file.

Both ``kronos execute`` and the ``kronos run`` loop write through here, so
the guarantees are the same: one JSON line per outcome, flushed and
fsynced before the next step can be reported (a SIGKILL loses at most the
line being written, which the next run skips); the state rewritten
atomically after each outcome (cooldown, or quarantine on a definitive
failure). ``Interrupted`` is recorded in the results but not fed to the
state: the next run reconciles that step from Nova.

A step's error text comes from Nova and its transport; it is redacted
(:func:`kronos.redact.redact`) once, here, before any of those sinks sees it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import IO, Any, Protocol

import attrs

import kronos
from kronos.adapters.executor import OUTCOMES, StepResult, plan_id
from kronos.core.model import Plan, State, Step
from kronos.errors import DataError, KronosIOError, TemporaryFailure
from kronos.files import unwritable_file
from kronos.redact import redact

log = logging.getLogger(__name__)


class SharedState(Protocol):
    """The state several engines share (:class:`kronos.adapters.coordination.EtcdState`), or a
    state file (:class:`kronos.adapters.state_store.FileState`)."""

    label: str  # what errors and the audit log call it

    def load(self) -> State | None: ...
    def update(self, change: Callable[[State | None], State]) -> State: ...


class FileState:
    """A ``kronos.state/1`` file: read whole, written whole and atomically; each change reads
    it first, so what another process (an operator's ``kronos state``) wrote is kept."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.label = self.path

    def load(self) -> State | None:
        if self.path != "-" and not Path(self.path).exists():
            return None
        return kronos.load_state(self.path)

    def update(self, change: Callable[[State | None], State]) -> State:
        new = change(self.load())
        kronos.dump(new, self.path)
        return new


class Journal:
    def __init__(
        self,
        results_path: str | Path | None,
        state_path: str | Path | None,
        state_options: dict[str, Any],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        also: Callable[[StepResult], None] | None = None,
        labels: tuple[str, str] = ("--results", "--state"),
        audit: Callable[..., None] | None = None,
        store: SharedState | None = None,
    ) -> None:
        """``labels``: how the user named the results and state files, for errors; ``audit``:
        :class:`kronos.adapters.audit.Audit`, told of every step and every state change;
        ``store``: the state shared by several engines (then ``state_path`` is not used)."""
        self.audit = audit or (lambda event, **fields: None)
        if store is None and state_path:
            check_writable(Path(state_path), labels[1])
            store = FileState(state_path)
        self.store = store
        self.state_options = state_options
        self.clock = clock
        self.also = also
        self.state: State | None = None
        #: outcomes the shared state has not taken yet (its backend was unreachable): applied first
        #: at the next write or refresh, so no result is lost
        self._pending: list[Callable[[State | None], State]] = []
        self._label = labels[0]
        self._out = open_append(results_path, self._label) if results_path else None
        self.refresh()

    def __call__(self, result: StepResult) -> None:
        if result.error:
            result = attrs.evolve(result, error=redact(result.error))
        if self._out is not None:
            append_line(self._out, json.dumps(attrs.asdict(result), sort_keys=True), self._label)
        self.audit("step_finished", **attrs.asdict(result))
        if result.outcome != "Interrupted":
            at, options = self.clock(), self.state_options

            def record(state: State | None) -> State:
                return kronos.record_result(
                    state, result.instance, result.outcome, at=at, error=result.error, **options
                )

            self._pending.append(record)
            try:
                self._change()
            except TemporaryFailure as exc:  # kept in _pending; the results line is written
                log.warning("%s: the outcome of %s waits for the backend", exc, result.instance)
            else:
                self._audit_holds(result.instance)
        if self.also is not None:
            self.also(result)

    def started(self, step: Step, plan: str | None) -> None:
        """A step is about to act on the cloud."""
        self.audit("step_started", plan=plan, **attrs.asdict(step, recurse=True))

    def adopt(self, plan: Plan, change: Callable[[State | None], State]) -> None:
        """The state a plan about to run leaves (its cooldowns, ``change`` of the current one),
        saved before any step starts; TemporaryFailure when the shared state cannot take it."""
        old = self.state
        self._change(change)
        state = self.state
        assert state is not None
        new_aggs = {
            k: v
            for k, v in state.aggregate_cooldown_until.items()
            if not old or old.aggregate_cooldown_until.get(k) != v
        }
        new_vms = {
            k: v
            for k, v in state.instance_cooldown_until.items()
            if not old or old.instance_cooldown_until.get(k) != v
        }
        self.audit("cooldown_set", aggregates=new_aggs, instances=new_vms, steps=len(plan.steps))

    def _audit_holds(self, instance: str) -> None:
        if self.state is None:
            return
        if instance in self.state.quarantined_until:
            until = self.state.quarantined_until[instance]
            self.audit("quarantine_set", instance=instance, until=until or "released by hand")
        elif instance in self.state.instance_cooldown_until:
            self.audit("cooldown_set", instances={instance: self.state.instance_cooldown_until[instance]})

    def refresh(self) -> None:
        """Read the state again: another engine, or an operator's ``kronos state``, may have
        changed it since."""
        if self.store is None:
            return
        if self._pending:
            self._change()
        else:
            self.state = self.store.load()

    def _change(self, change: Callable[[State | None], State] | None = None) -> None:
        """Apply the pending outcomes, then ``change``, to the state, and store it."""
        pending = list(self._pending)

        def apply(state: State | None) -> State:
            for p in pending:
                state = p(state)
            if change is not None:
                state = change(state)
            assert state is not None, "_change() with nothing to change"
            return state

        self.state = self.store.update(apply) if self.store is not None else apply(self.state)
        del self._pending[: len(pending)]

    def close(self) -> None:
        if self._out is not None:
            close_appended(self._out)
            self._out = None


def check_journal(
    results_path: str | Path | None,
    state_path: str | Path | None,
    labels: tuple[str, str] = ("--results", "--state"),
) -> None:
    """What :class:`Journal` finds wrong with its files, found without writing either: a dry
    run fails as the run would (``--state snapshot.json``: 65; a folder, a missing folder, a
    file it may not write: 74), not exit 0 and then the run fail."""
    for path, label in ((state_path, labels[1]), (results_path, labels[0])):
        if path:
            check_writable(Path(path), label)
            if path == state_path:
                FileState(path).load()
            problem = unwritable_file(Path(path))
            if problem:
                raise KronosIOError(f"{label} {str(path)!r}: {problem}")


def state_options(config: Any) -> dict[str, Any]:
    """The [engine] options the state needs to turn an outcome into a cooldown or a quarantine."""
    opts = config.engine.options
    return {
        "instance_cooldown": opts.instance_cooldown,
        "instance_quarantine_seconds": opts.instance_quarantine_seconds,
    }


def open_append(path: str | Path, label: str) -> IO[str]:
    """``path`` opened for appending lines; a path that cannot be one is exit 74 naming it.

    A file whose last line was cut (a kill, a full disk) gets a newline first, so the cut line
    stays alone and the next row is whole."""
    try:
        cut = _ends_mid_line(Path(path))
        fh = Path(path).open("a", encoding="utf-8")  # noqa: SIM115 - the caller keeps it open
        if cut:
            fh.write("\n")
        return fh
    except OSError as exc:
        raise KronosIOError(f"{label} {str(path)!r}: cannot append to it: {_why(exc, path)}") from None


def append_line(fh: IO[str], line: str, label: str) -> None:
    """``line`` and a newline appended to ``fh``, flushed and fsynced before the caller goes on;
    a disk that refuses it (full, gone) is exit 74 naming the file, not a traceback."""
    try:
        fh.write(line + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    except OSError as exc:
        raise KronosIOError(f"{label} {fh.name!r}: cannot append to it: {_why(exc, fh.name)}") from None


def close_appended(fh: IO[str]) -> None:
    """Close a file of :func:`append_line`: a line it could not write was said when it failed,
    and closing would only try it again."""
    with contextlib.suppress(OSError):
        fh.close()


def _ends_mid_line(path: Path) -> bool:
    """Whether a regular file's last byte is not a newline (never reads a device or a pipe:
    ``--log /dev/stdout`` on a terminal would wait for input)."""
    if not path.is_file() or path.stat().st_size == 0:
        return False
    with path.open("rb") as fh:
        fh.seek(-1, 2)
        return fh.read(1) != b"\n"


def check_writable(path: Path, label: str) -> None:
    """Before anything moves or is read: a file that could not be written at the end is exit 74 now."""
    if path.is_dir():
        raise KronosIOError(f"{label} {str(path)!r}: is a directory, expected a file")
    if not path.parent.is_dir():
        raise KronosIOError(f"{label} {str(path)!r}: directory {str(path.parent)!r} does not exist")


def _why(exc: OSError, path: str | Path) -> str:
    if isinstance(exc, FileNotFoundError):
        return f"directory {str(Path(path).parent)!r} does not exist"
    return exc.strerror or str(exc)


#: the longest line of a results log read: a row is under a KiB but for Nova's error text (a
#: fault message is at most 255 characters); a longer line is no row, and it is not read whole
MAX_ROW_BYTES = 1 << 20
_NO_LOG = (
    "a results log has one JSON object per line, as kronos execute appends them "
    "(name a new file to start one)"
)


def _numbered_rows(results_path: str | Path | None) -> Iterator[tuple[int, dict[str, Any]]]:
    """The JSON-object rows of a results log, with their line numbers (none if there is no file yet).

    A line that does not parse was cut by SIGKILL or a full disk: skipped, that step is
    reconciled from Nova instead. But a file whose first line does not start as a row does
    (``{"``), or with a line that is a kronos document, is no results log (``--results
    plan.json``, pretty-printed or YAML): refused (65) before a run appends its lines to it.

    The log grows with every run, so it is read a line at a time, each at most
    :data:`MAX_ROW_BYTES`. Only a regular file holds earlier rows: a device or a pipe
    (``results_file = /dev/stdout``) is not read, as :func:`_ends_mid_line` does not read one:
    on a terminal that would wait for input, and ``/dev/zero`` never ends.
    """
    if not results_path:
        return
    path, label = Path(results_path), _label(results_path)
    try:  # is_file re-raises EACCES: a folder on the way that may not be searched
        if not (path.is_file() or path.is_dir()):  # a directory: refused (74) as read
            return
    except OSError as exc:
        raise KronosIOError(f"{label}: cannot read it: {_why(exc, path)}") from None
    for n, line in _lines(path, label):
        try:
            row = json.loads(line)
        except ValueError:
            row = None
        document = isinstance(row, dict) and "format" in row
        if document or (n == 1 and not line.startswith('{"')):  # a row, whole or cut, starts so
            what = f"a {row['format']} document" if document else "not a JSON object"
            raise DataError(f"{label}:{n}: {what}; {_NO_LOG}")
        if isinstance(row, dict):
            yield n, row


def _label(results_path: str | Path) -> str:
    return f"--results {str(results_path)!r}"


def plan_rows(results_path: str | Path | None, plan: Plan) -> list[dict[str, Any]]:
    """The rows of ``plan`` (those naming its id), each one as kronos writes it for that plan:
    a step of it, its VM, a known outcome. One that is not was edited or written by something
    else, and trusting it could skip a step never made (``"outcome": "Succeded"``): refused (65)
    with its line, field and value. Rows of other plans are history, not read."""
    pid, steps = plan_id(plan), {s.seq: s for s in plan.steps}
    rows = []
    for n, row in _numbered_rows(results_path):
        if row.get("plan") != pid:
            continue
        seq, outcome, instance = row.get("seq"), row.get("outcome"), row.get("instance")
        step = steps.get(seq) if type(seq) is int else None
        if step is None:
            problem = f"seq = {seq!r}: the plan has no such step"
        elif outcome not in OUTCOMES:
            problem = f"outcome = {outcome!r}: expected one of {', '.join(OUTCOMES)}"
        elif instance != step.instance:
            problem = f"instance = {instance!r}: step {seq} moves {step.instance!r}"
        else:
            rows.append(row)
            continue
        raise DataError(
            f"{_label(results_path or '')}:{n}: {problem}; a row of plan {pid!r} is trusted only "
            "as kronos wrote it: correct or remove the line"
        )
    return rows


def _lines(path: Path, label: str) -> Iterator[tuple[int, str]]:
    """The file's lines, numbered from 1, without their ends; one over :data:`MAX_ROW_BYTES` is
    refused (65) when that much of it is read."""
    try:
        with path.open("rb") as fh:
            for n, raw in enumerate(iter(partial(fh.readline, MAX_ROW_BYTES + 1), b""), 1):
                if len(raw) > MAX_ROW_BYTES and not raw.endswith(b"\n"):  # (MAX bytes and its end: one)
                    raise DataError(f"{label}:{n}: a line of more than {MAX_ROW_BYTES} bytes; {_NO_LOG}")
                yield n, raw.decode("utf-8", errors="replace").rstrip("\r\n")
    except OSError as exc:
        raise KronosIOError(f"{label}: cannot read it: {_why(exc, path)}") from None


def done_steps(results_path: str | Path | None, plan: Plan) -> set[int]:
    """Steps of ``plan`` an earlier run finished (any outcome but Interrupted)."""
    return {row["seq"] for row in plan_rows(results_path, plan) if row["outcome"] != "Interrupted"}
