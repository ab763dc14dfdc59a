"""The commands that talk to the cloud: ``record``, ``check-config``, ``execute``.

Kept apart from :mod:`kronos.cli` (the offline commands) so each module has
one job; :mod:`kronos.cli` registers them on the ``kronos`` group.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from kronos import listing
from kronos.cli_paths import DOCUMENT, a_path, distinct_files
from kronos.errors import ConfigError, DataError, KronosError, KronosIOError, UsageError
from kronos.redact import redact
from kronos.terminal import echo, one_line, stdout_refusals


def OS_CLOUD(f: Any) -> Any:  # noqa: N802 - a decorator named as the option it adds
    """``--os-cloud`` and ``--os-region-name`` (OS_CLOUD, OS_REGION_NAME), as every openstack command."""
    f = click.option(
        "--os-region-name", "os_region", envvar="OS_REGION_NAME", help="region (overrides [nova] region_name)"
    )(f)
    return click.option(
        "--os-cloud", "os_cloud", envvar="OS_CLOUD", help="clouds.yaml entry (overrides [nova] cloud)"
    )(f)


def load_config(path: str | None, require_scope: bool = True, policies: bool = True) -> Any:
    """kronos.conf overlaid with KRONOS_* from the environment (the CLI may read it; the core never)."""
    from kronos.adapters import config

    return config.load_config(path, os.environ, require_scope=require_scope, policies=policies)


#: the times a command line may name: Unix time onwards, and far enough from year 9999 that adding a
#: cooldown, a quarantine or a plan's age to them stays a date
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def parse_time_flag(flag: str, text: str, unix: bool = False) -> datetime:
    """The time a flag names (RFC 3339, or Unix seconds when ``unix``); exit 64 naming flag and value."""
    from kronos.core.convert import parse_time

    span = f"between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}"
    if unix:
        try:
            seconds = float(text)
        except ValueError:
            pass
        else:
            if math.isfinite(seconds) and EARLIEST.timestamp() <= seconds < LATEST.timestamp():
                return datetime.fromtimestamp(seconds, UTC)
            raise UsageError(f"{flag} {text!r}: Unix seconds must name a time {span}")
    try:
        when = parse_time(text)
    except (ValueError, OverflowError):
        kind = "an RFC 3339 time or Unix seconds" if unix else "an RFC 3339 time"
        raise UsageError(f"{flag} {text!r}: not {kind} (e.g. 2026-11-21T10:00:00Z)") from None
    if not EARLIEST <= when < LATEST:
        raise UsageError(f"{flag} {text!r}: must be a time {span}")
    return when


def parse_at(text: str | None) -> datetime:
    """--at: RFC 3339 or Unix seconds; default now (the CLI may read the clock)."""
    return datetime.now(UTC) if text is None else parse_time_flag("--at", text, unix=True)


@click.command()
@click.option("--config", "config_path", required=True, help="kronos.conf")
@click.option(
    "--aggregate", "aggregates", multiple=True, help="record this aggregate (default: [engine] aggregates)"
)
@click.option("--at", "at_text", help="evaluation time, RFC 3339 or Unix seconds (default: now)")
@OS_CLOUD
@click.option(
    "-o", "--output", required=True, callback=DOCUMENT, help="snapshot file (.json/.yaml, - for stdout)"
)
def record(
    config_path: str,
    aggregates: tuple[str, ...],
    at_text: str | None,
    os_cloud: str | None,
    os_region: str | None,
    output: str,
) -> None:
    """Read Nova and Prometheus at one instant and write a snapshot.

    Hosts with untrustworthy Prometheus data are left out (with their VMs) and
    aggregates below [prometheus] min_host_coverage are marked skipped; both
    are recorded with the reasons in the snapshot's ``source``.
    """
    import kronos
    from kronos.adapters.journal import check_writable
    from kronos.adapters.nova import NovaReader, connect
    from kronos.adapters.prometheus import PrometheusClient
    from kronos.adapters.record import record as take

    config = load_config(config_path, require_scope=not aggregates)
    at = parse_at(at_text)
    if output != "-":
        check_writable(Path(output), "-o")
    reader = NovaReader(connect(config.nova, os_cloud, os_region))
    snap = take(config, reader, PrometheusClient.from_config(config.prometheus), at, aggregates or None)
    kronos.dump(snap, output)
    src = snap.source or {}
    echo(
        f"recorded {len(snap.aggregates)} aggregate(s), {len(snap.hosts)} hosts, {len(snap.vms)} VMs, "
        f"{len(snap.server_groups)} server groups ({src.get('nova_calls')} Nova/Placement calls)",
        err=True,
    )
    for host, why in (src.get("excluded_hosts") or {}).items():
        echo(redact(f"  left out {host}: {why}"), err=True)
    for agg, why in (src.get("skip_aggregates") or {}).items():
        echo(redact(f"  skipped {agg}: bad data: {why}"), err=True)
    problems = src.get("problems") or []  # VM profiles that failed, weights that are NaN, …
    for problem in problems[:RECORD_PROBLEMS_SHOWN]:
        echo(redact(f"  problem: {problem}"), err=True)
    if len(problems) > RECORD_PROBLEMS_SHOWN:
        more = len(problems) - RECORD_PROBLEMS_SHOWN
        echo(f"  … and {more} more problem(s): source.problems in {output}", err=True)


#: the first problems of a recording shown on stderr (the snapshot keeps them all)
RECORD_PROBLEMS_SHOWN = 10


class Checks:
    """The pass/fail list ``check-config`` prints; the first failure decides the exit code.

    Each line is redacted: it quotes URLs and what Nova and Prometheus answered.
    """

    def __init__(self) -> None:
        self.code = 0

    def run(self, name: str, check: Callable[[], str]) -> Any:
        try:
            detail = check()
        except KronosError as exc:
            echo(redact(f"FAIL  {name}: {exc}"))
            self.code = self.code or exc.exit_code
            return False
        echo(redact(f"PASS  {name}: {detail}"))
        return True

    def verdict(self) -> None:
        """The last line; exits with the first failure's code when there was one."""
        echo("check-config: " + ("passed" if self.code == 0 else "FAILED"))
        if self.code:
            raise SystemExit(self.code)


@click.command("check-config")
@click.option("--config", "config_path", required=True, help="kronos.conf")
@click.option(
    "--at", "at_text", help="query Prometheus at this time, RFC 3339 or Unix seconds (default: now)"
)
@OS_CLOUD
def check_config(config_path: str, at_text: str | None, os_cloud: str | None, os_region: str | None) -> None:
    """Validate kronos.conf and policies.yaml, reach Prometheus and Nova, check permissions.

    Admin rights (needed to migrate when [engine] dry_run = false) are
    inferred from admin-only reads; nothing is migrated to find out.
    """
    checks = Checks()
    holder: dict[str, Any] = {}

    def config() -> str:
        holder["config"] = c = load_config(config_path, require_scope=True)
        pols = ", ".join(p.name for p in c.policies if p.enabled)
        return f"{c.source} and its policies ({pols}); aggregates {', '.join(c.scope)}"

    if not checks.run("configuration", config):
        checks.verdict()
    c = holder["config"]

    def files() -> str:
        from kronos.adapters.config import unwritable, written_keys

        problems = unwritable(c)
        if problems:
            raise KronosIOError("; ".join(problems))
        named = written_keys(c)
        return f"kronos run can write {', '.join(named)}" if named else "kronos run writes none"

    checks.run("files", files)

    def prometheus() -> str:
        from kronos.adapters.history import Window
        from kronos.adapters.prometheus import PrometheusClient
        from kronos.adapters.scores import read_policies

        at = parse_at(at_text)  # the range query too, as kronos record runs it
        client = PrometheusClient.from_config(c.prometheus)
        readings = read_policies(client, c.policies, at, Window.of(c.engine, at))
        failed = [f"{n}: {r.error}" for n, r in readings.items() if r.error]
        failed += [
            f"{n}: the query returned {r.unlabeled} series, none with host_label {r.policy.host_label!r}"
            if r.unlabeled
            else f"{n}: the query returned no host series"
            for n, r in readings.items()
            if not (r.values or r.error)
        ]
        failed += _profile_problems(client, c.policies, at)
        if failed:
            raise ConfigError("; ".join(failed))
        holder["readings"], holder["at"] = readings, at
        return f"{c.prometheus.url}: " + ", ".join(f"{n} {len(r.hosts)} hosts" for n, r in readings.items())

    checks.run("prometheus", prometheus)

    from kronos.adapters.nova import NovaReader, connect

    def nova() -> str:  # a clouds.yaml entry that is not there fails here, in the list
        holder["reader"] = NovaReader(connect(c.nova, os_cloud, os_region))
        cloud = os_cloud or c.nova.cloud
        return f"from clouds.yaml cloud {cloud!r}" if cloud else "from [nova]"

    if not checks.run("nova client", nova):
        checks.verdict()
    reader = holder["reader"]

    def aggregates() -> str:
        holder["aggregates"] = read = reader.aggregates()
        found = {a.name: a for a in read}
        missing = [a for a in (c.engine.options.aggregates or ()) if a not in found]
        if missing:
            raise ConfigError(
                f"aggregate {missing[0]!r} not in Nova (known: {', '.join(sorted(found)) or 'none'})"
            )
        return f"{len(found)} aggregate(s) readable, the configured ones present"

    def services() -> str:
        holder["services"] = s = reader.services()
        return f"{len(s)} compute services ({sum(1 for v in s.values() if v.up)} up)"

    def hypervisors() -> str:
        # the hosts in scope only: three Placement reads a host add up on a big cloud
        if c.engine.include_unassigned_hosts:
            return f"{len(reader.capacity())} compute hosts with Placement inventories"
        scope = set(c.engine.options.aggregates or ())
        hosts = {h for a in reader.aggregates() if a.name in scope for h in a.hosts}
        found = len(reader.capacity(hosts))
        return f"{found} compute hosts of the configured aggregates with Placement inventories"

    def groups() -> str:
        return f"{len(reader.server_groups())} server groups visible"

    def coverage() -> str:
        return _coverage(c, holder["readings"], holder["aggregates"], holder["services"], holder["at"])

    ok = all(
        [
            checks.run("nova aggregates", aggregates),
            checks.run("nova compute services", services),
            checks.run("nova hypervisors + placement", hypervisors),
            checks.run("nova server groups", groups),
        ]
    )
    for cloud, nova in sorted(c.clouds.items()):  # [nova:<cloud>]: the clouds of federation plans

        def federated(nova: Any = nova) -> str:
            other = NovaReader(connect(nova, envvars=False))
            s = other.services()
            return f"{len(s)} compute services ({sum(1 for v in s.values() if v.up)} up)"

        ok = checks.run(f"nova:{cloud} compute services", federated) and ok
    if c.coordination.backend_url:
        from kronos.adapters import coordination

        ok = checks.run("coordination", lambda: coordination.probe(c.coordination)) and ok
    if {"readings", "aggregates", "services"} <= holder.keys():  # Prometheus's hosts vs Nova's (last)
        checks.run("prometheus hosts", coverage)  # not an admin-only read: `ok` stands
    if ok:
        need = (
            "needed: [engine] dry_run = false" if not c.engine.dry_run else "not needed while dry_run = true"
        )
        echo(f"PASS  admin: inferred from the admin-only reads above, nothing migrated to find out ({need})")
    elif not c.engine.dry_run:
        echo("FAIL  admin: not inferred (an admin-only read failed); [engine] dry_run = false needs admin")
    checks.verdict()


def _coverage(c: Any, readings: Any, found: Any, services: Any, at: Any) -> str:
    """Whether ``kronos record`` would keep the aggregates in scope, from the answers the checks
    above read: each policy's query must answer for their up hosts under Nova's names. A
    host_label whose values are FQDNs where Nova has short names (or the other way round)
    leaves every host out, and every cycle skips the aggregate for bad data."""
    from kronos.adapters.scores import assess
    from kronos.core.model import UNASSIGNED

    scope = set(c.engine.options.aggregates or ())
    # as record reads them: a host without a compute service is not in the recording
    pools = {a.name: [h for h in a.hosts if h in services] for a in found if a.name in scope}
    if c.engine.include_unassigned_hosts:
        member = {h for a in found for h in a.hosts}
        pools[UNASSIGNED] = sorted(h for h in services if h not in member)
    down = {h for h, s in services.items() if not s.up or s.forced_down}
    live = sorted(set().union(*pools.values()) - down)
    named = [
        f"{c.path(c.engine.policies_file)}: policy {name!r}: host_label {r.policy.host_label!r} names "
        f"{', '.join(sorted(r.hosts)[:3])}, none of them a Nova compute host "
        f"({', '.join(sorted(services)[:3])}, ...)"
        for name, r in readings.items()
        if r.hosts and not set(r.hosts) & set(services)
    ]
    if named:  # not one name in common with the whole cloud: the label, not the data
        raise ConfigError("; ".join(named))
    reports = assess(
        readings,
        pools,
        at,
        down=down,
        limits=c.prometheus,
    )
    skipped = [r for r in reports if r.skipped]
    if skipped:
        said = [f"{r.name}: {r.skipped} ({'; '.join(str(p) for p in r.problems[:3])})" for r in skipped]
        raise DataError("kronos record would skip " + "; ".join(said))
    return f"every policy has good data for the {len(live)} up host(s) in scope"


@click.command("status")
@click.option("--config", "config_path", required=True, help="kronos.conf with a [coordination] backend_url")
@listing.options()
def status(config_path: str, **shown: Any) -> None:
    """The engines sharing the cloud: members of the group, the engine each aggregate belongs to,
    the aggregates a cycle is acting on now and the migrations in flight cloud-wide.

    Read from the coordination backend without joining the group. Exit 78
    without [coordination] backend_url (one engine: nothing to share).
    """
    from kronos.adapters import coordination

    config = load_config(config_path, require_scope=True)
    if not config.coordination.backend_url:
        raise ConfigError(
            f"{config.source}: [coordination] backend_url is empty: one engine, no group to show"
        )
    seen = coordination.status(config.coordination, config.scope)
    shape = listing.shape_of(shown)
    rows = listing.Listing(
        ("aggregate", "owner", "acting"),
        tuple((agg, owner, agg in seen.locked) for agg, owner in seen.owners.items()),
    )
    if shape.asked:
        echo(listing.render(rows, shape), nl=False)
        return
    limit = config.executor.max_concurrent_migrations_cloud
    echo(f"group {seen.group!r}: {len(seen.members)} member(s): {', '.join(seen.members) or 'none'}")
    echo(
        f"migrations in flight cloud-wide: {seen.migrations_in_flight}"
        + (f" of {limit}" if limit else " (no cloud-wide limit: not counted)")
    )
    echo(listing.render(rows, shape), nl=False)


def on_signals(stop: Any, leave_now: Callable[[int], None]) -> None:
    """SIGTERM/SIGINT: the first sets ``stop`` (start nothing new), the second calls ``leave_now``."""
    import signal

    def handler(signum: int, _frame: Any) -> None:
        if stop.is_set():
            leave_now(signum)
            os._exit(130)
        echo(
            f"signal {signum}: starting no new steps; waiting for running ones (again to exit now)", err=True
        )
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


@click.command()
@click.argument("plan_file", metavar="PLAN")
@click.option("--config", "config_path", required=True, help="kronos.conf ([nova], [executor])")
@click.option(
    "--state", "state_path", callback=a_path, help="state file: cooldowns and quarantines are written back"
)
@click.option("--results", "results_path", callback=a_path, help="append one JSON line per step outcome here")
@click.option("--dry-run", is_flag=True, help="print what would be done, touch nothing")
@OS_CLOUD
def execute(
    plan_file: str,
    config_path: str,
    state_path: str | None,
    results_path: str | None,
    dry_run: bool,
    os_cloud: str | None,
    os_region: str | None,
) -> None:
    """Carry out PLAN through Nova: pre-flight, migrate, poll, post-flight, retry.

    A federation plan's cross-cloud steps re-create each VM in the other
    cloud and then delete the original, through one [nova:<cloud>] section
    per cloud (docs/executor.md, "Cross-cloud steps").

    Refuses a plan older than [executor] max_plan_age and, before starting,
    one whose VMs drifted by more than max_drift (exit 75); one dated ahead of
    the clock (65). Nova unreachable: 69; credentials refused: 77. SIGINT/SIGTERM:
    no new steps, running ones finish and are recorded; a second signal
    exits at once. A rerun of the same plan skips finished steps and
    reconciles interrupted ones from Nova's migration records. Progress is
    a bar on a terminal, one line per step otherwise.
    """
    import sys
    import threading

    import kronos
    from kronos.adapters import crosscloud
    from kronos.adapters.audit import Audit
    from kronos.adapters.executor import Executor, Waves, check_plan_age, plan_id
    from kronos.adapters.journal import Journal, check_journal, done_steps, state_options
    from kronos.adapters.nova import connect
    from kronos.adapters.nova_actions import Compute
    from kronos.progress import Progress

    config = load_config(config_path, require_scope=False, policies=False)  # a plan has its own
    audit_path = config.path(config.engine.audit_file)
    audit_file = str(audit_path) if audit_path else None
    distinct_files(
        ("PLAN", plan_file),
        ("--state", state_path),
        ("--results", results_path),
        ("--config", config_path),
        ("[engine] audit_file", audit_file),
    )
    plan = kronos.load_plan(plan_file)
    federation = crosscloud.is_federation(plan)
    if federation:
        _no_single_cloud(os_cloud, os_region)
    networks = crosscloud.check_plan(plan, plan_file, config) if federation else {}
    skip = done_steps(results_path, plan)
    if federation:  # a step whose original could not be deleted is finished by a rerun
        skip -= crosscloud.unfinished(results_path, plan)
    todo = [s for s in plan.steps if s.seq not in skip]
    if dry_run:
        check_journal(results_path, state_path)  # as the run would find them
        for s in todo:
            who = one_line(s.name or s.instance)
            echo(
                crosscloud.describe(s)
                if federation
                else f"would {s.action} {who} {s.source} -> {s.destination} (wave {s.wave})"
            )
        echo(f"dry run: {len(todo)} step(s), {len(skip)} already done")
        check_plan_age(plan, datetime.now(UTC), config.executor.max_plan_age)  # as a run would
        return
    ex_conf = config.executor
    check_plan_age(plan, datetime.now(UTC), ex_conf.max_plan_age)
    stop = threading.Event()
    progress = Progress(len(plan.steps), sys.stdout, sys.stdout.isatty())
    with contextlib.ExitStack() as files:  # closed however it ends (a refused Nova, a drift abort)
        audit = Audit(audit_path) if audit_path else None
        if audit is not None:
            files.callback(audit.close)
        journal = Journal(results_path, state_path, state_options(config), also=progress, audit=audit)
        files.callback(journal.close)
        executor: Waves
        if federation:  # [nova:<cloud>] per cloud; --os-cloud and [nova] are not used
            clouds = crosscloud.connect_clouds(config, plan)
            receiving = {str(s.destination_cloud) for s in todo}  # where os-services is read anyway
            conns = {name: c.conn for name, c in clouds.items() if name in receiving}
            executor = crosscloud.CrossCloudExecutor(
                clouds, ex_conf, journal, networks=networks, stop=stop, started=journal.started
            )
        else:
            compute = Compute(connect(config.nova, os_cloud, os_region))
            conns = {"": compute.conn}
            executor = Executor(compute, ex_conf, journal, stop=stop, started=journal.started)
        reach(conns)
        executor.check_drift(todo, plan)
        journal.audit("execute", plan=plan_id(plan), file=plan_file, steps=len(todo), done_before=len(skip))

        def leave_now(signum: int) -> None:
            executor.interrupt(f"signal {signum} while running")
            journal.close()

        on_signals(stop, leave_now)
        results = executor.execute(plan, skip)
    progress.finish()
    counts: dict[str, int] = {}
    for r in results:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "nothing to do"
    echo(
        f"executed {len(results)} of {len(todo)} step(s): {summary}" + (" (stopped)" if stop.is_set() else "")
    )
    with stdout_refusals():  # before the SystemExit below, which leaves run() before its own flush
        sys.stdout.flush()
    if stop.is_set():
        raise SystemExit(130)
    if any(r.outcome != "Succeeded" for r in results):
        raise SystemExit(1)


def _profile_problems(client: Any, policies: Any, at: datetime) -> list[str]:
    """Each enabled policy's vm_profile_query, run once as kronos record runs it: a broken one
    passed check-config and then made every VM weightless ('no movable VMs' under skip)."""
    from kronos.adapters.prometheus import QueryFailed

    out = []
    for p in policies:
        if not (p.enabled and p.vm_profile_query):
            continue
        try:
            samples = client.query(p.vm_profile_query, at)
        except QueryFailed as exc:
            out.append(f"{p.name}: vm_profile_query: {exc}")
            continue
        if samples and not any(p.vm_profile_label in s.labels for s in samples):  # none: no VMs yet
            out.append(
                f"{p.name}: vm_profile_query returned {len(samples)} series, none with "
                f"vm_profile_label {p.vm_profile_label!r}"
            )
    return out


def reach(conns: dict[str, Any]) -> None:
    """One read of each cloud before any step, mapped as every other read is: an unreachable
    Nova is 69 and refused credentials 77. A step's own failures are 75 (Transient, retried),
    and a service manager restarting on 75 would retry a wrong password for ever."""
    from kronos.adapters.nova import NovaReader

    for name, conn in conns.items():
        try:
            NovaReader(conn).services()
        except KronosError as exc:
            if not name:
                raise
            raise type(exc)(f"{name}: {exc}") from None


def _no_single_cloud(os_cloud: str | None, os_region: str | None) -> None:
    """A federation plan reaches each cloud through its [nova:<cloud>]: --os-cloud and
    --os-region-name name one cloud, so given on the command line they are an error, and
    from OS_CLOUD / OS_REGION_NAME a warning (a shell's defaults should not fail a run)."""
    ctx = click.get_current_context()
    given = (("os_cloud", "--os-cloud", os_cloud), ("os_region", "--os-region-name", os_region))
    for name, flag, value in given:
        if value is None:
            continue
        if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE:
            raise UsageError(
                f"{flag} {value}: a federation plan reaches each cloud through its [nova:<cloud>] "
                "section (cloud = <clouds.yaml entry> there), not one --os-cloud"
            )
        echo(f"kronos: {flag} {value} (from the environment) is not used: federation plan", err=True)


@click.command("run")
@click.option("--config", "config_path", required=True, help="kronos.conf")
@click.option("--once", is_flag=True, help="run one cycle and exit with its outcome")
@click.option(
    "--log", "log_path", callback=a_path, help="JSON log lines here (default: [engine] log_file, else stdout)"
)
@OS_CLOUD
def run_engine(
    config_path: str, once: bool, log_path: str | None, os_cloud: str | None, os_region: str | None
) -> None:
    """The engine loop: every [engine] evaluation_interval, for each aggregate,
    record → plan (with the state) → log the plan ([engine] dry_run = true,
    the default) or execute it.

    One JSON line per cycle and per step. [engine] lock_file keeps a second
    engine off the same aggregates (exit 75); with [coordination] backend_url
    the engines of one group divide the aggregates among them instead. SIGTERM/SIGINT: no new steps
    or cycles, running steps finish (exit 0); a second signal leaves at
    once, running steps recorded as Interrupted. With --once the exit code
    is the cycle's: 0, 1 if a step failed, else the first aggregate's error.
    """
    import contextlib
    import threading

    from kronos.adapters import coordination
    from kronos.adapters.engine import Engine, EngineLock, JsonLog
    from kronos.adapters.nova import NovaReader, connect
    from kronos.adapters.nova_actions import Compute
    from kronos.adapters.prometheus import PrometheusClient

    config = load_config(config_path, require_scope=True)
    shared = bool(config.coordination.backend_url)
    lock_path = config.path(config.engine.lock_file)
    if lock_path is None and not shared:
        raise ConfigError(f"{config.source}: [engine] lock_file is empty: kronos run needs a lock file")
    conn = connect(config.nova, os_cloud, os_region)
    stop = threading.Event()
    coordinator = coordination.connect(config.coordination, config.executor.max_concurrent_migrations_cloud)
    store = coordinator.state_store() if isinstance(coordinator, coordination.Group) else None
    # alone, the lock file keeps a second engine off; in a group, the backend's locks do
    with contextlib.ExitStack() as held:
        if not shared:
            assert lock_path is not None
            held.enter_context(EngineLock(lock_path))
        held.callback(coordinator.close)
        log_file = Path(log_path) if log_path else config.path(config.engine.log_file)
        log = JsonLog(log_file, lambda: datetime.now(UTC), "--log" if log_path else "[engine] log_file")
        held.callback(log.close)  # however the loop ends
        engine = Engine(
            config,
            NovaReader(conn),
            PrometheusClient.from_config(config.prometheus),
            Compute(conn),
            log,
            clock=lambda: datetime.now(UTC),
            stop=stop,
            coordinator=coordinator,
            state_store=store,
        )

        def leave_now(signum: int) -> None:
            if engine.executor is not None:
                engine.executor.interrupt(f"signal {signum} while running")
            engine.journal.close()
            log("stopped", signal=signum, at_once=True)

        on_signals(stop, leave_now)
        if config.engine.plan_dir and not config.engine.dry_run:  # not an error: dry_run is toggled
            unused = "plans are executed, not saved there ([engine] dry_run = false)"
            log("warning", setting="[engine] plan_dir", value=config.engine.plan_dir, reason=unused)
        code = engine.loop(once=once)
    if once and code:
        raise SystemExit(code)
