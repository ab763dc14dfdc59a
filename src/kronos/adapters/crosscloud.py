"""Carry out ``cross-cloud-migrate`` steps: a twin in the other cloud, then the original deleted.

Two Novas cannot migrate a VM between them. A VM whose data lives outside
the hypervisor (a boot volume the storage replicates to the other cloud, or
a stateless VM booted from an image both clouds hold) can instead be
re-created there and the original removed. Kronos does exactly that and no
more: it moves no disk and no address (that is the storage's job, e.g.
rbd-mirror, and the network's, e.g. BGP), and it trusts the plan's
``precondition``, which the operator declared in federation.yaml.

A step, ordered so that there is never a second running copy and never no
copy at all: pre-flight in both clouds → mark the original
(``kronos:federating_to``) and stop it, keeping it → create the twin on the
planned host (same flavor by name, same image or volumes, networks mapped by
the plan's ``networks``, the original's metadata, tags and user data, and
``kronos:federated_from = <source cloud>/<server id>``) → wait until it is
ACTIVE → only then delete the original. A twin that is refused, goes ERROR
or is not ACTIVE within ``migration_timeout`` is deleted and the original
started again. When in doubt (a twin that cannot be deleted, a create whose
fate cannot be read) the original stays stopped: two running copies of one
volume is the one outcome worse than a stopped VM.

Every attempt starts from what the two clouds say now (the original, and
its twin found by the marker), not from memory, so a retry after a lost
answer, a rerun after SIGKILL and a first run are the same code: a twin
ACTIVE with the original still there finishes by deleting the original; a
twin in ERROR is deleted and the original started; an original gone with
its twin ACTIVE is done.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import attrs
from attrs import frozen

from kronos.adapters.config import CLOUD_PREFIX, Config, ExecutorConfig
from kronos.adapters.crosscloud_nova import CloudCompute, Gone
from kronos.adapters.executor import PreFlightError, StepResult, Waves, _Failure, _Tries
from kronos.adapters.journal import plan_rows
from kronos.adapters.nova_actions import Refused, Transient
from kronos.core.model import Plan, Step
from kronos.errors import ConfigError, DataError
from kronos.terminal import one_line

log = logging.getLogger(__name__)

ACTION = "cross-cloud-migrate"
#: on the twin: where it came from, ``<source cloud>/<server id>`` (how a rerun finds it)
MARKER = "kronos:federated_from"
#: on the original, set before it is stopped: ``<destination cloud>/<host>``
LEAVING = "kronos:federating_to"
#: the data preconditions this executor knows how to carry out
PRECONDITIONS = ("replicated-volume", "stateless-image")


@frozen
class CrossCloudResult(StepResult):
    """A results line of a cross-cloud step: the clouds, and the twin while it exists."""

    source_cloud: str | None = None
    destination_cloud: str | None = None
    #: the twin's server id in ``destination_cloud`` (None: no twin, e.g. it was rolled back)
    twin: str | None = None
    #: a step that did not succeed left the original stopped (or Kronos could not read it):
    #: a rerun takes the step up again instead of skipping it as done
    original_stopped: bool = False


@frozen
class _Ends:
    """One step's two clouds and the markers that tie its two servers together."""

    step: Step
    src: CloudCompute
    dst: CloudCompute

    @property
    def marker(self) -> str:
        return f"{self.src.name}/{self.step.instance}"

    @property
    def leaving(self) -> str:
        return f"{self.dst.name}/{self.step.destination}"


class _Late(Exception):
    """A wait ran past migration_timeout."""


class CrossCloudExecutor(Waves):
    """The executor's waves, retries, signals and journal, with a cross-cloud step as its step."""

    def __init__(
        self,
        clouds: Mapping[str, CloudCompute],
        config: ExecutorConfig,
        report: Callable[[StepResult], None],
        *,
        networks: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        """``clouds``: each cloud the plan names; ``networks``: source network name → destination
        network name (a name not in it keeps its name); ``kwargs``: as :class:`Waves`'s."""
        super().__init__(config, report, **kwargs)
        self.clouds = dict(clouds)
        self.networks = dict(networks or {})
        self._twins: dict[int, str] = {}  # step seq → its twin's id, while the twin exists

    # -- the plan -----------------------------------------------------------------------------
    def drift(self, steps: Sequence[Step], plan: Plan) -> tuple[float, list[str]]:
        """Like the executor's: a VM this plan already marked, stopped or re-created is progress."""
        changed = []
        for step in steps:
            ends = self._ends(step)
            orig = ends.src.find(step.instance)
            if orig is None:
                if not self._twins_of(ends, None):
                    changed.append(f"{step.instance}: gone from {ends.src.name}")
                continue
            if (orig.get("metadata") or {}).get(LEAVING) == ends.leaving:
                continue
            host, status = orig.get("OS-EXT-SRV-ATTR:host"), orig.get("status")
            task = orig.get("OS-EXT-STS:task_state")
            if host != step.source:
                changed.append(f"{step.instance}: on {host}, not {step.source}")
            elif status != "ACTIVE" or task:
                changed.append(f"{step.instance}: {status} {task or ''}".rstrip())
        return (len(changed) / len(steps) if steps else 0.0), changed

    # -- one step -----------------------------------------------------------------------------
    def _attempt(self, step: Step, plan: Plan, tries: _Tries) -> tuple[str | None, bool]:
        """One try, from what both clouds say now; returns (no migration record, reconciled).
        Nova refusing any call (4xx) ends the step: the same call would be refused again."""
        if step.action != ACTION:  # check_plan refuses such plans before any step runs
            raise PreFlightError(f"{step.action}: a federation plan carries out only {ACTION} steps")
        try:
            return self._move(self._ends(step), tries)
        except Refused as exc:
            raise _Failure(str(exc), definitive=True) from None

    def _move(self, ends: _Ends, tries: _Tries) -> tuple[str | None, bool]:
        step = ends.step
        orig = ends.src.find(step.instance)
        twin = self._one_twin(ends, self._twins_of(ends, orig))
        if twin is not None:
            found = not tries.acted  # an earlier attempt or run created it
            self._twins[step.seq] = str(twin["id"])
            self._finish(ends, self._settle(ends, twin, orig), orig)
            return None, found
        if orig is None:
            raise PreFlightError(
                f"not in {ends.src.name} any more, and no twin marked {MARKER} = {ends.marker} "
                f"in {ends.dst.name}"
            )
        body = self._check_resumed(ends, orig)
        orig = self._leave(ends, orig)
        tries.acted = True
        twin = self._create(ends, body, orig)
        self._finish(ends, self._settle(ends, twin, orig), orig)
        return None, False

    def _check_resumed(self, ends: _Ends, orig: dict[str, Any]) -> dict[str, Any]:
        """Pre-flight; when an earlier run stopped the original and no twin exists, a pre-flight
        that fails starts the original again (no twin can come now) instead of leaving no copy
        running."""
        resumed = (orig.get("metadata") or {}).get(LEAVING) == ends.leaving and (
            orig.get("status") != "ACTIVE" or bool(orig.get("OS-EXT-STS:task_state"))
        )
        try:
            return self._check_both(ends, orig)
        except (PreFlightError, Refused, Transient) as exc:
            if not resumed:
                raise
            state = self._restore(ends, None)
            if isinstance(exc, PreFlightError):
                raise PreFlightError(f"{exc}; {state}") from None
            raise _Failure(f"{exc}; {state}", definitive=isinstance(exc, Refused)) from None

    def _ends(self, step: Step) -> _Ends:
        return _Ends(step, self.clouds[str(step.source_cloud)], self.clouds[str(step.destination_cloud)])

    def _twins_of(self, ends: _Ends, orig: dict[str, Any] | None) -> list[dict[str, Any]]:
        """The servers marked as this step's twin; looked up by the original's name, or by the
        planned host when the name is unknown (a twin that got there is ACTIVE there)."""
        name = orig.get("name") if orig is not None else ends.step.name
        host = ends.step.destination if name is None else None
        return ends.dst.marked(MARKER, ends.marker, name=name, host=host)

    def _one_twin(self, ends: _Ends, twins: list[dict[str, Any]]) -> dict[str, Any] | None:
        """The twin to keep (the oldest ACTIVE one, else the oldest); any other is deleted."""
        if not twins:
            return None
        keep = next((t for t in twins if t.get("status") == "ACTIVE"), twins[0])
        for extra in twins:
            if extra is not keep:
                log.warning(
                    "%s: deleting a second twin %s in %s", ends.step.instance, extra["id"], ends.dst.name
                )
                ends.dst.delete(str(extra["id"]))
        return keep

    def _check_both(self, ends: _Ends, orig: dict[str, Any]) -> dict[str, Any]:
        """Both clouds as the plan assumed them; returns the twin's create body."""
        step, src, dst = ends.step, ends.src, ends.dst
        host, status = orig.get("OS-EXT-SRV-ATTR:host"), orig.get("status")
        task = orig.get("OS-EXT-STS:task_state")
        ours = (orig.get("metadata") or {}).get(LEAVING) == ends.leaving
        if host != step.source:
            raise PreFlightError(f"moved: on {host} in {src.name}, the plan says {step.source}")
        if not (status == "ACTIVE" or (ours and status == "SHUTOFF")):
            raise PreFlightError(f"status {status}: {ACTION} needs ACTIVE")
        if task and not (ours and task == "powering-off"):
            raise PreFlightError(f"task_state {task}: another operation is running")
        server: dict[str, Any] = {
            "name": orig.get("name"),
            "host": step.destination,
            "metadata": {k: v for k, v in (orig.get("metadata") or {}).items() if k != LEAVING}
            | {MARKER: ends.marker},
        }
        server |= self._data(ends, orig)
        self._check_destination(ends)
        flavor = (orig.get("flavor") or {}).get("original_name")
        flavor_id = dst.flavor_id(str(flavor)) if flavor else None
        if flavor_id is None:
            raise PreFlightError(f"flavor {flavor!r}: none of that name in {dst.name}")
        server["flavorRef"] = flavor_id
        if "imageRef" in server and not dst.has_image(server["imageRef"]):
            raise PreFlightError(
                f"image {server['imageRef']}: not in {dst.name} "
                f"({step.precondition} needs the same image there)"
            )
        server["networks"] = self._networks(ends, orig)
        if server["networks"] != "none":
            groups = sorted({str(g.get("name")) for g in orig.get("security_groups") or []})
            if groups:
                server["security_groups"] = [{"name": g} for g in groups]
        for key, field in (
            ("tags", "tags"),
            ("user_data", "OS-EXT-SRV-ATTR:user_data"),
            ("description", "description"),
        ):
            if orig.get(field):
                server[key] = orig[field]
        return server

    def _data(self, ends: _Ends, orig: dict[str, Any]) -> dict[str, Any]:
        """What the twin boots from, as the precondition says the data lives: the image, or the
        same volumes (which must survive the original's deletion)."""
        step = ends.step
        image = orig.get("image")
        image_id = image.get("id") if isinstance(image, dict) else None
        volumes = [v for v in orig.get("os-extended-volumes:volumes_attached") or [] if v.get("id")]
        if step.precondition == "stateless-image":
            if not image_id:
                raise PreFlightError("stateless-image: booted from a volume, not from an image")
            if volumes:
                ids = ", ".join(str(v["id"]) for v in volumes)
                raise PreFlightError(
                    f"stateless-image: volume(s) {ids} attached: their data would not follow"
                )
            return {"imageRef": str(image_id)}
        if step.precondition != "replicated-volume":
            raise PreFlightError(f"precondition {step.precondition!r}: one of {', '.join(PRECONDITIONS)}")
        if image_id:
            raise PreFlightError(f"replicated-volume: booted from image {image_id}, not from a volume")
        if not volumes:
            raise PreFlightError("replicated-volume: no volume attached")
        doomed = [str(v["id"]) for v in volumes if v.get("delete_on_termination")]
        if doomed:
            raise PreFlightError(
                f"replicated-volume: volume {doomed[0]} is deleted with its server (delete_on_termination): "
                "deleting the original would delete it"
            )
        root_device = orig.get("OS-EXT-SRV-ATTR:root_device_name")
        attached = ends.src.attachments(step.instance)
        roots = [str(a["volumeId"]) for a in attached if a.get("device") == root_device]
        root = roots[0] if roots else str(volumes[0]["id"])
        others = [str(v["id"]) for v in volumes if str(v["id"]) != root]
        return {
            "block_device_mapping_v2": [
                {
                    "uuid": vid,
                    "source_type": "volume",
                    "destination_type": "volume",
                    "boot_index": 0 if vid == root else -1,
                    "delete_on_termination": False,
                }
                for vid in (root, *others)
            ]
        }

    def _check_destination(self, ends: _Ends) -> None:
        dst, host = ends.dst, ends.step.destination
        service = dst.service(host)
        if service is None:
            raise PreFlightError(f"destination {host}: no nova-compute service in {dst.name}")
        if service.get("status") != "enabled":
            why = f" ({service['disabled_reason']})" if service.get("disabled_reason") else ""
            raise PreFlightError(f"destination {host} in {dst.name} is disabled{why}")
        if service.get("state") != "up" or service.get("forced_down"):
            raise PreFlightError(f"destination {host} in {dst.name} is down")

    def _networks(self, ends: _Ends, orig: dict[str, Any]) -> list[dict[str, str]] | str:
        """The destination network of each network the original has an address on."""
        names = list(orig.get("addresses") or {})
        if not names:
            return "none"
        known = ends.dst.networks()
        out = []
        for name in names:
            target = self.networks.get(name, name)
            ids = known.get(target, [])
            if not ids:
                mapped = f" (for {name!r})" if target != name else ""
                raise PreFlightError(
                    f"network {target!r}{mapped}: not in {ends.dst.name}; map it in federation.yaml networks"
                )
            if len(ids) > 1:
                raise PreFlightError(
                    f"network {target!r}: {len(ids)} networks of that name in {ends.dst.name}"
                )
            out.append({"uuid": ids[0]})
        return out

    def _leave(self, ends: _Ends, orig: dict[str, Any]) -> dict[str, Any]:
        """Mark the original (a rerun knows who stopped it), stop it, wait until it is SHUTOFF."""
        sid = ends.step.instance
        if (orig.get("metadata") or {}).get(LEAVING) != ends.leaving:
            ends.src.set_metadata(sid, {LEAVING: ends.leaving})
        if orig.get("status") == "ACTIVE" and not orig.get("OS-EXT-STS:task_state"):
            ends.src.stop(sid)
        try:
            stopped = self._wait(ends.src, sid, lambda s: s is None or _settled(s, "SHUTOFF", "ERROR"))
        except _Late as exc:
            raise _Failure(
                f"the original did not stop in {ends.src.name}: {exc}; no twin was created",
                definitive=True,
                outcome="MigrationTimeout",
            ) from None
        if stopped is None or stopped.get("status") != "SHUTOFF":
            what = "vanished" if stopped is None else f"went {stopped.get('status')}"
            raise _Failure(
                f"the original {what} in {ends.src.name} while stopping; no twin was created", True
            )
        return stopped

    def _create(self, ends: _Ends, body: dict[str, Any], orig: dict[str, Any]) -> dict[str, Any]:
        """Create the twin; a refusal starts the original again, a lost answer is looked for first."""
        try:
            sid = ends.dst.create(body)
        except (Refused, Transient) as exc:
            try:
                took = self._twins_of(ends, orig)
            except (Refused, Transient) as again:
                raise _Failure(
                    f"creating the twin in {ends.dst.name} failed ({exc}) and whether it took cannot be "
                    f"read ({again}): the original stays SHUTOFF in {ends.src.name}"
                ) from None
            if took:
                twin = took[0]  # Nova acted; the answer was lost
                self._twins[ends.step.seq] = str(twin["id"])
                return twin
            state = self._restore(ends, None)
            if isinstance(exc, Refused):
                raise _Failure(f"{ends.dst.name} refused the twin: {exc}; {state}", definitive=True) from None
            raise _Failure(f"creating the twin failed: {exc}; {state}") from None
        self._twins[ends.step.seq] = sid
        log.info("step %d: twin %s created in %s", ends.step.seq, sid, ends.dst.name)
        return {"id": sid, "status": "BUILD"}

    def _settle(self, ends: _Ends, twin: dict[str, Any], orig: dict[str, Any] | None) -> dict[str, Any]:
        """Wait until the twin is ACTIVE; one that goes ERROR, vanishes or is late is rolled back
        (deleted, the original started), unless the original is gone: then it is the only copy."""
        tid = str(twin["id"])
        try:
            now = self._wait(ends.dst, tid, lambda s: s is None or _settled(s, "ACTIVE", "ERROR"))
            late = ""
        except _Late as exc:
            now, late = None, str(exc)
        if now is not None and now.get("status") == "ACTIVE":
            return now
        if late:
            what, outcome = f"twin {tid} not ACTIVE in {ends.dst.name}: {late}", "MigrationTimeout"
        elif now is None:
            what, outcome = f"twin {tid} vanished from {ends.dst.name}", "MigrationFailed"
        else:
            fault = (now.get("fault") or {}).get("message")
            what, outcome = (
                f"twin {tid} went ERROR in {ends.dst.name}" + (f" ({fault})" if fault else ""),
                "MigrationFailed",
            )
        if orig is None:
            raise _Failure(
                f"{what}; the original is gone from {ends.src.name}: the twin is left as it is", True, outcome
            )
        raise _Failure(
            f"{what}; {self._restore(ends, tid if now is not None or late else None)}", True, outcome
        )

    def _restore(self, ends: _Ends, twin: str | None) -> str:
        """Undo a step that did not take: delete the twin, then start the original and unmark it.
        The original is started only once no twin is left. Returns what became of both."""
        src, sid, done = ends.src, ends.step.instance, []
        if twin is not None:
            try:
                ends.dst.delete(twin)
                self._wait(ends.dst, twin, lambda s: s is None)
            except Gone:
                pass
            except (Refused, Transient, _Late) as exc:
                return (
                    f"deleting twin {twin} in {ends.dst.name} failed ({exc}): the original stays SHUTOFF in "
                    f"{src.name} (never two running copies); a rerun finishes or undoes the step"
                )
            self._twins.pop(ends.step.seq, None)
            done.append(f"twin {twin} deleted")
        try:
            now = self._wait(src, sid, lambda s: s is None or not s.get("OS-EXT-STS:task_state"))
            if now is not None and now.get("status") == "SHUTOFF":
                src.start(sid)
                self._wait(src, sid, lambda s: s is None or _settled(s, "ACTIVE", "ERROR"))
            src.unset_metadata(sid, LEAVING)
        except (Refused, Transient, _Late) as exc:
            done.append(f"the original stays SHUTOFF in {src.name}: starting it failed ({exc})")
        else:
            done.append(f"the original is running again in {src.name}")
        return ", ".join(done)

    def _finish(self, ends: _Ends, twin: dict[str, Any], orig: dict[str, Any] | None) -> None:
        """The twin is ACTIVE: delete the original (only now), then check the twin is where planned."""
        src, sid, tid = ends.src, ends.step.instance, str(twin["id"])
        if orig is not None:
            try:
                src.delete(sid)
                self._wait(src, sid, lambda s: s is None)
            except Gone:
                pass
            except (Refused, Transient, _Late) as exc:
                raise _Failure(
                    f"twin {tid} is ACTIVE in {ends.dst.name} on {twin.get('OS-EXT-SRV-ATTR:host')}, but "
                    f"the original ({orig.get('status')}) could not be deleted from {src.name}: {exc}; "
                    "a rerun deletes it",
                    definitive=isinstance(exc, Refused),
                ) from None
        host = twin.get("OS-EXT-SRV-ATTR:host")
        if host != ends.step.destination:
            raise _Failure(
                f"post-flight: twin {tid} on {host} in {ends.dst.name}, not {ends.step.destination}", True
            )

    def _wait(
        self, cloud: CloudCompute, sid: str, done: Callable[[dict[str, Any] | None], bool]
    ) -> dict[str, Any] | None:
        """Read the server until ``done`` (None: it is gone); an unreachable Nova is waited out.
        _Late after migration_timeout."""
        deadline = self.clock().timestamp() + self.config.migration_timeout
        seen = "unread"
        while True:
            try:
                server = cloud.find(sid)
                if done(server):
                    return server
                task = server.get("OS-EXT-STS:task_state") if server else None
                seen = f"{server.get('status')}{f' ({task})' if task else ''}" if server else "gone"
            except Transient as exc:
                seen += f" (last read: {exc})" if "last read" not in seen else ""
            if self.clock().timestamp() > deadline:
                raise _Late(f"server {sid} still {seen} after {self.config.migration_timeout:g}s")
            time.sleep(self.poll_interval)  # not stop.wait: a running step always reaches its end

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
        base = super()._result(step, outcome, attempts, t0, error, migration, reconciled)
        return CrossCloudResult(
            **attrs.asdict(base, recurse=False),
            source_cloud=step.source_cloud,
            destination_cloud=step.destination_cloud,
            twin=self._twins.get(step.seq),
            original_stopped=outcome != "Succeeded" and self._left_stopped(step),
        )

    def _left_stopped(self, step: Step) -> bool:
        """Is the original stopped by this plan and not running again? Unreadable counts as yes:
        a rerun then looks at both clouds before doing anything."""
        ends = self._ends(step)
        try:
            orig = ends.src.find(step.instance)
        except (Refused, Transient):
            return True
        if orig is None or (orig.get("metadata") or {}).get(LEAVING) != ends.leaving:
            return False
        return orig.get("status") != "ACTIVE" or bool(orig.get("OS-EXT-STS:task_state"))


def _settled(server: dict[str, Any], *statuses: str) -> bool:
    return server.get("status") in statuses and not server.get("OS-EXT-STS:task_state")


# -- what the CLI needs ---------------------------------------------------------------------------
def is_federation(plan: Plan) -> bool:
    return plan.options.get("mode") == "federate" or any(s.action == ACTION for s in plan.steps)


def check_plan(plan: Plan, source: str, config: Config) -> dict[str, str]:
    """Before anything is contacted: the plan is one this executor can carry out (65 if not), and
    kronos.conf has a ``[nova:NAME]`` for each cloud it names (78 if not). Returns the networks map."""
    others = [s.seq for s in plan.steps if s.action != ACTION]
    if others:
        raise DataError(
            f"{source}: step(s) {', '.join(map(str, others[:10]))} are not {ACTION}: a federation plan "
            "holds cross-cloud steps only (execute moves within a cloud as a plan of their own)"
        )
    for i, s in enumerate(plan.steps):
        if s.precondition not in PRECONDITIONS:
            raise DataError(
                f"{source}: steps[{i}].precondition = {s.precondition!r}: Kronos carries out "
                f"{' or '.join(PRECONDITIONS)}"
            )
    networks = plan.options.get("networks") or {}
    if not isinstance(networks, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in networks.items()
    ):
        raise DataError(f"{source}: options.networks = {networks!r}: expected source name: destination name")
    named = sorted({str(c) for s in plan.steps for c in (s.source_cloud, s.destination_cloud)})
    missing = [c for c in named if c not in config.clouds]
    if missing:
        sections = ", ".join(f"[{CLOUD_PREFIX}{c}]" for c in missing)
        raise ConfigError(
            f"{config.source}: no {sections} section for the cloud(s) {source} names "
            f"(one [{CLOUD_PREFIX}NAME] per cloud, with [nova]'s keys; cloud = <clouds.yaml entry>)"
        )
    return dict(networks)


def connect_clouds(config: Config, plan: Plan) -> dict[str, CloudCompute]:
    """A client per cloud the plan names (nothing is contacted yet)."""
    from kronos.adapters.nova import connect

    named = {str(c) for s in plan.steps for c in (s.source_cloud, s.destination_cloud)}
    return {name: CloudCompute(connect(config.clouds[name], envvars=False), name) for name in sorted(named)}


def describe(step: Step) -> str:
    """A dry run's line."""
    return (
        f"would {ACTION} {one_line(step.name or step.instance)} {step.source_cloud}/{step.source} -> "
        f"{step.destination_cloud}/{step.destination} (wave {step.wave}, {step.precondition})"
    )


def unfinished(results_path: str | Path | None, plan: Plan) -> set[int]:
    """Steps of plan ``pid`` whose last outcome was no success but left a twin behind (the
    original could not be deleted) or the original stopped (a rollback that could not start it,
    a create whose fate was unreadable, a stop that timed out): a rerun takes them up again
    instead of skipping them as done, so no VM is left with no running copy."""
    last: dict[int, dict[str, Any]] = {}
    for row in plan_rows(results_path, plan):
        if row["outcome"] != "Interrupted":  # as done_steps: an interruption is no outcome
            last[row["seq"]] = row
    return {
        seq
        for seq, row in last.items()
        if row.get("outcome") != "Succeeded" and (row.get("twin") or row.get("original_stopped"))
    }
