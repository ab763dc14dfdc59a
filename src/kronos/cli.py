"""The ``kronos`` command: parse options, call adapters and the core, render.

Heavy imports (numpy, numba, openstacksdk, requests) happen inside commands
so ``kronos --help`` is fast. Every ``KronosError`` becomes one line on
stderr and its sysexits code; anything else is a bug (exit 70).
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from kronos import listing
from kronos.cli_paths import (
    DOCUMENT,
    DOCUMENT_SUFFIXES,
    a_path,
    an_id,
    distinct_files,
    misnamed,
    nonblank,
    written_as,
)
from kronos.core.phases import MODES
from kronos.core.phases import PHASES as PHASE_NAMES
from kronos.errors import KronosError, KronosIOError, UnknownAggregate, UsageError
from kronos.terminal import echo, prepare_streams, settle_stdout, unwritable

EX_USAGE, EX_SOFTWARE = 64, 70

#: below this many (host, VM) pairs the interpreter plans faster than numba loads its
#: cached kernels (~0.8 s of CPU), let alone compiles them (docs/benchmarks.md)
INTERPRET_BELOW = 50_000
JIT_CHOICES = ("auto", "always", "never")


def _prepare_numba_cache() -> None:
    """Keep compiled kernels on disk even when site-packages is read-only."""
    if "NUMBA_CACHE_DIR" in os.environ:
        return
    pkg = Path(__file__).resolve().parent / "core"
    if os.access(pkg, os.W_OK):
        return
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    os.environ["NUMBA_CACHE_DIR"] = str(Path(base) / "kronos" / "numba")


class Timer:
    """Wall time per phase for ``--time`` (the core reads no clock; the CLI may)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.phases: list[tuple[str, float]] = []

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.phases.append((name, time.perf_counter() - t0))

    def report(self) -> None:
        if not self.enabled:
            return
        total = sum(t for _, t in self.phases)
        for name, t in self.phases:
            echo(f"time {name:<16} {t * 1000:9.1f} ms", err=True)
        echo(f"time {'total':<16} {total * 1000:9.1f} ms", err=True)


#: the library's keyword spellings in messages and reasons, and this command line's
_FLAGS = {
    "assume_fenced=True": "--assume-fenced",
    "cold_migrate_stopped": "--cold-migrate-stopped",
    "(aggregates)": "(--aggregate)",
    "mode=": "--mode ",
    "budget=": "--budget ",
    "solver='exact'": "--solver exact",
    "mode='pack'": "--mode pack",
}


def as_flags(text: str) -> str:
    """Say what the library calls a keyword as this command line's flag (the core never names flags)."""
    for word, flag in _FLAGS.items():
        text = text.replace(word, flag)
    return text


def _own_flag(key: str) -> str | None:
    """The running command's flag ``--KEY``, if it has one (``--set mode=pack`` meant ``--mode``)."""
    ctx = click.get_current_context(silent=True)
    flag = "--" + key.replace("_", "-")
    if ctx is None or not any(flag in p.opts for p in ctx.command.params):
        return None
    return flag


def _spelled(key: str, flag: str) -> str:
    """A ``--set`` option's key as the options read it (``min-gain`` is ``min_gain``); any other
    flag's (metadata, flavor specs) as given."""
    return key.replace("-", "_") if flag == "--set" else key


def _parse_sets(values: tuple[str, ...], flag: str = "--set") -> dict[str, str]:
    """KEY=VALUE pairs; for ``--set`` each KEY a planner option (kronos.plan's own keywords,
    such as its test knob ``prune``, are not)."""
    from kronos.core.options import OPTION_NAMES, unknown_option

    out: dict[str, str] = {}
    for item in values:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise UsageError(f"{flag} {item!r}: expected KEY=VALUE")
        if flag == "--set" and key.strip().replace("-", "_") not in OPTION_NAMES:
            own = _own_flag(key.strip())
            if own:  # (worded without KEY=: the error's rendering turns "mode=" into "--mode ")
                raise UsageError(f"{flag} {key.strip()}: not a planner option but this command's {own}")
            raise UsageError(f"{flag} {key.strip()!r}: {unknown_option(key.strip())}")
        same = next((k for k in out if _spelled(k, flag) == _spelled(key.strip(), flag)), None)
        if same is not None:  # the last one used to win in silence
            raise UsageError(f"{flag} {key.strip()!r}: given twice (also as {same!r}); give it once")
        out[key.strip()] = value
    return out


def _parse_now(text: str | None, flag: str = "--now") -> datetime | None:
    from kronos.cli_cloud import parse_time_flag

    return None if text is None else parse_time_flag(flag, text)


def _kept_at(when: datetime, what: str, error: type[Exception]) -> None:
    """Refuse a time ahead of this machine's clock for a state that is written: judged then, it
    drops every hold that ends before it (:mod:`kronos.adapters.clock`)."""
    from kronos.adapters.clock import refuse_ahead

    why = (
        "the state written would drop every quarantine and cooldown ending before then and start "
        "new ones from then; give a time that has come"
    )
    refuse_ahead(when, what, why, error)


class FiniteRange(click.FloatRange):
    """click's FloatRange lets ``nan`` and ``inf`` through its bounds; this one refuses them."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kronos-planner")
@click.option("-v", "--verbose", count=True, help="more log detail on stderr (-vv: debug)")
@click.option(
    "--debug", is_flag=True, help="debug logs, openstacksdk's and keystoneauth's HTTP included (redacted)"
)
@click.option("--log-file", metavar="PATH", help="append the log here instead of stderr")
@click.option(
    "--jit",
    type=click.Choice(JIT_CHOICES),
    default="auto",
    show_default=True,
    help="run the kernels compiled by numba, or as plain Python; auto: Python for small snapshots",
)
@click.pass_context
def cli(ctx: click.Context, verbose: int, debug: bool, log_file: str | None, jit: str) -> None:
    """Plan constraint-safe VM live-migrations for OpenStack host aggregates."""
    from kronos.logs import configure

    if not (ctx.obj or {}).get("embedded"):  # inside `openstack`, its logging stands
        configure(verbose, debug, log_file)


@cli.command()
@click.argument("snapshot")
@listing.options()
def validate(snapshot: str, **shown: Any) -> None:
    """Check SNAPSHOT against the contract; list every problem with its path.

    With -f/-c the problems are rows on stdout (severity, path, value, message);
    the exit code is the same: 65 when there is an error.
    """
    import kronos
    from kronos.errors import DataError, ValidationError
    from kronos.render import issue_rows

    shape = listing.shape_of(shown)
    snap = None
    try:
        snap = kronos.load_snapshot(snapshot)
        issues = kronos.validate(snap)
    except ValidationError as exc:  # unreadable parts: its issues are every problem found
        issues = exc.issues
    if shape.asked:
        echo(listing.render(issue_rows(issues), shape), nl=False)
    else:
        for issue in issues:
            echo(f"{snapshot}: {issue}", err=True)
    errors = sum(1 for i in issues if i.severity == "error")
    if errors or snap is None:
        raise DataError(f"{snapshot}: {errors} error(s), {len(issues) - errors} warning(s)")
    echo(
        f"{snapshot}: OK ({len(snap.hosts)} hosts, {len(snap.vms)} VMs, "
        f"{len(snap.server_groups)} server groups, {len(snap.policies)} policies"
        f"{f', {len(issues)} warning(s)' if issues else ''})",
        err=shape.asked,  # with -f, stdout is the listing alone (| jq works)
    )


#: what each "instead" kind of generate reads besides -o; every other flag would be ignored
_GENERATE_USES = {
    "--clouds": ("hosts", "vms", "groups", "seed", "policies"),
    "--bytedance-like": ("seed",),
    "--packable": ("seed",),
    "--tight": ("hosts", "vms", "groups", "seed"),
    "--evacuable": ("hosts", "vms", "groups", "seed", "aggregates", "heterogeneous"),
}


def _uses(kind: str) -> str:
    """The flags an "instead" kind of generate reads, as its help and its error say them."""
    return " ".join("--" + u.replace("_", "-") for u in _GENERATE_USES[kind])


@cli.command()
@click.option("--hosts", default=50, show_default=True, type=click.IntRange(1, 100_000))
@click.option(
    "--vms", default=5000, show_default=True, type=click.IntRange(0, 1_000_000)
)  # 2.2 M: over 1 GiB
@click.option("--groups", default=100, show_default=True, type=click.IntRange(0, 1_000_000))
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0))
@click.option(
    "--policies",
    default="cpu,mem",
    show_default=True,
    help="comma-separated: cpu… and mem… load from vCPUs and RAM; any other name, half the vCPU load",
)
@click.option("--aggregates", default=1, show_default=True, type=click.IntRange(1))
@click.option("--heterogeneous", is_flag=True, help="mixed host sizes (score_capacity)")
@click.option("--skew", default=0.6, show_default=True, type=FiniteRange(0, 10))  # testing.MAX_SKEW
@click.option("--mode", type=click.Choice(MODES), default="spread", show_default=True)
@click.option("--broken-groups", default=0.1, show_default=True, type=FiniteRange(0, 1))
@click.option("--unmovable", default=0.03, show_default=True, type=FiniteRange(0, 1))
@click.option("--missing-weights", default=0.0, show_default=True, type=FiniteRange(0, 1))
@click.option("--down", default=0, show_default=True, type=click.IntRange(0), help="failed hosts")
@click.option("--disabled", default=0, show_default=True, type=click.IntRange(0))
@click.option("--unassigned", default=0, show_default=True, type=click.IntRange(0))
@click.option("--overlapping", is_flag=True, help="add an aggregate overlapping others")
@click.option("--fill", default=0.65, show_default=True, type=FiniteRange(0.05, 1.0))
@click.option(
    "--pinned",
    default=0.0,
    show_default=True,
    type=FiniteRange(0, 1),
    help="share of VMs with hw:cpu_policy=dedicated, holding PCPU instead of vcpus",
)
@click.option(
    "--pcpu-hosts",
    default=0.5,
    show_default=True,
    type=FiniteRange(0, 1, min_open=True),
    help="with --pinned: share of hosts with dedicated cores (PCPU capacity)",
)
@click.option(
    "--numa",
    default=0,
    show_default=True,
    type=click.IntRange(0, 16),
    metavar="CELLS",
    help="NUMA cells per host; pinned VMs sit on cells",
)
@click.option(
    "--numa-vms",
    default=0.0,
    show_default=True,
    type=FiniteRange(0, 1),
    help="with --numa: share of the other VMs on cells too (hw:numa_nodes)",
)
@click.option(
    "--traits",
    default=0.0,
    show_default=True,
    type=FiniteRange(0, 1),
    help="share of VMs requiring host traits (> 0 also gives hosts CPU-generation and CUSTOM_* traits)",
)
@click.option(
    "--devices",
    default=0.0,
    show_default=True,
    type=FiniteRange(0, 1),
    help="share of VMs with passthrough GPUs (VGPU) or SR-IOV VFs (CUSTOM_NIC_SRIOV)",
)
@click.option(
    "--history",
    default=0,
    show_default=True,
    type=click.IntRange(0, 10_000),
    metavar="SAMPLES",
    help="FORMATS §5: each host's score_history (SAMPLES a minute apart: flat, rising, falling, "
    "spiking or oscillating) and weights_forecast 15 minutes ahead for a third of the VMs",
)
@click.option(
    "--bytedance-like",
    is_flag=True,
    help="instead: 279 hosts of 2 NUMA cells, 2 089 VMs on cells, 90 % of vCPUs allocated, "
    "shaped like ByteDance's public rescheduling data (uses " + _uses("--bytedance-like") + ")",
)
@click.option(
    "--packable",
    type=click.IntRange(1, 100_000),
    metavar="K",
    help="instead: a pack instance whose optimum is K hosts, one VM per host (uses "
    + _uses("--packable")
    + ")",
)
@click.option(
    "--evacuable",
    type=click.IntRange(1),
    metavar="N",
    help="instead: N failed hosts whose VMs have a known place on the tightened survivors "
    "(uses " + _uses("--evacuable") + ")",
)
@click.option(
    "--tight",
    is_flag=True,
    help="instead: hosts nearly full, a few with room, many server groups: a cloud where single "
    "moves stall and swaps and chains help (uses " + _uses("--tight") + ")",
)
@click.option(
    "--clouds",
    type=click.IntRange(2, 8),
    metavar="N",
    help="instead: N clouds for kronos federate, written into the directory -o names with a "
    "federation.yaml (uses " + _uses("--clouds") + ")",
)
@click.option("-o", "--output", default="-", show_default=True, help="file (.json/.yaml) or -")
def generate(
    output: str,
    policies: str,
    packable: int | None,
    evacuable: int | None,
    bytedance_like: bool,
    history: int,
    clouds: int | None,
    tight: bool,
    **kw: Any,
) -> None:
    """Write a realistic synthetic snapshot (same seed, same bytes)."""
    import kronos

    instead = {
        "--clouds": clouds is not None,
        "--bytedance-like": bytedance_like,
        "--packable": packable is not None,
        "--tight": tight,
        "--evacuable": evacuable is not None,
    }
    given = [flag for flag, on in instead.items() if on]
    if len(given) > 1:
        raise UsageError(f"{' and '.join(given)}: each makes a snapshot of its own kind; give one")
    _refuse_unused_generate_flags(
        click.get_current_context(), next(iter(given), None), pinned=kw["pinned"] > 0
    )
    hosts = kw["hosts"]
    for flag, count in (("--aggregates", kw["aggregates"]), ("--down", kw["down"]),
                        ("--disabled", kw["disabled"]), ("--unassigned", kw["unassigned"])):  # fmt: skip
        if count > hosts:
            raise UsageError(f"{flag} {count}: more than the {hosts} host(s) of --hosts")
    if evacuable is not None and evacuable >= hosts:
        raise UsageError(f"--evacuable {evacuable}: needs fewer failed hosts than the {hosts} of --hosts")

    if clouds is not None:
        _generate_clouds(clouds, output, policies, kw)
        return
    problem = misnamed(output, DOCUMENT_SUFFIXES)
    if problem:
        raise UsageError(f"-o {problem}")
    if bytedance_like:
        from kronos.testing import generate_bytedance_like

        kronos.dump(generate_bytedance_like(kw["seed"]), output)
        return
    if packable is not None:
        kronos.dump(kronos.generate_packable(packable, kw["seed"]), output)
        return
    if tight:
        from kronos.testing import generate_tight

        kronos.dump(generate_tight(kw["hosts"], kw["vms"], kw["seed"], groups=kw["groups"]), output)
        return
    if evacuable is not None:
        from kronos.testing import generate_evacuable

        keep = ("hosts", "vms", "groups", "seed", "aggregates", "heterogeneous")
        kronos.dump(generate_evacuable(failed=evacuable, **{k: kw[k] for k in keep}), output)
        return
    names = _policy_names(policies)
    if kw["numa_vms"] > 0 and kw["numa"] == 0:
        raise UsageError("--numa-vms places VMs on NUMA cells: give --numa CELLS too")
    snap = kronos.generate(policies=names, **kw)
    if history:
        from kronos.testing import with_history

        snap = with_history(snap, history, kw["seed"])
    kronos.dump(snap, output)


def _policy_names(policies: str) -> tuple[str, ...]:
    """``--policies``: at least one name, each once (one snapshot's, or every cloud's)."""
    names = tuple(p.strip() for p in policies.split(",") if p.strip())
    if not names:
        raise UsageError("--policies: give at least one policy name")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UsageError(f"--policies {policies!r}: {twice[0]!r} given twice")
    return names


def _refuse_unused_generate_flags(ctx: click.Context, kind: str | None, pinned: bool) -> None:
    """A flag given on the command line that the snapshot will not show is a mistake to name,
    not to ignore (``--bytedance-like --hosts 10`` makes 279 hosts)."""
    typed = [n for n in ctx.params if ctx.get_parameter_source(n) == click.core.ParameterSource.COMMANDLINE]
    flag = {n: "--" + n.replace("_", "-") for n in typed}
    if kind is not None:
        uses = {kind.lstrip("-").replace("-", "_"), "output", *_GENERATE_USES[kind]}
        unused = [flag[n] for n in typed if n not in uses]
        if unused:
            raise UsageError(f"{kind} uses {_uses(kind)} only: {', '.join(unused)} would be ignored")
    elif "pcpu_hosts" in typed and not pinned:
        raise UsageError("--pcpu-hosts shares dedicated cores among hosts for pinned VMs: give --pinned > 0")


def _generate_clouds(clouds: int, output: str, policies: str, kw: dict[str, Any]) -> None:
    import kronos
    from kronos.errors import KronosIOError
    from kronos.files import make_folder, write_atomic
    from kronos.testing import CLOUD_NAMES, generate_clouds

    if output == "-":
        raise UsageError("--clouds writes several files: give -o DIRECTORY")
    names = _policy_names(policies)
    where = make_folder(output, "--clouds writes one snapshot per cloud into it", "-o")
    snaps, policy = generate_clouds(clouds, kw["hosts"], kw["vms"], kw["groups"], kw["seed"], policies=names)
    files = [where / f"{name}.json" for name in snaps] + [where / "federation.yaml"]
    for f in files:  # a folder in a file's place: found before any file is written
        if f.is_dir():
            raise KronosIOError(f"-o {output}: {f.name} is a directory, not a file it may write")
    for name, snap in snaps.items():
        kronos.dump(snap, where / f"{name}.json")
    write_atomic(where / "federation.yaml", policy)
    echo(
        f"wrote {', '.join(f'{n}.json' for n in snaps)} and federation.yaml to {output}; plan with: "
        f"kronos federate {' '.join(str(where / f'{n}.json') for n in snaps)} "
        f"--policy {where / 'federation.yaml'}"
    )
    stale = [f"{n}.json" for n in CLOUD_NAMES if n not in snaps and (where / f"{n}.json").exists()]
    if stale:  # `kronos federate DIR/*.json` would take them for clouds of this run
        verb = "is" if len(stale) == 1 else "are"
        echo(
            f"kronos: note: {', '.join(stale)} in {output} {verb} from an earlier run, not of this one",
            err=True,
        )


@cli.command()
@click.argument("snapshots", nargs=-1, required=True, metavar="SNAPSHOT...")
@click.option("--policy", "policy_path", required=True, help="federation.yaml: eligible VMs, trigger, budget")
@click.option("-o", "--output", help="write the plan here (.json/.yaml, - for stdout)", callback=DOCUMENT)
@click.option(
    "--then-spread",
    "then_spread",
    metavar="DIR",
    help="also write, per cloud, CLOUD.after.json (the cloud after the cross-cloud steps) and "
    "CLOUD.plan.json (its spread plan on that snapshot) into DIR",
)
@click.option("--budget", help="with --then-spread: steps per aggregate, or 'unlimited'")
@click.option(
    "--state",
    "state_path",
    callback=a_path,
    help="state file (read only): cooldowns and quarantines hold VMs",
)
@click.option("--now", help="RFC 3339 time cooldowns are judged at (default: the newest taken_at)")
@listing.options()
def federate(
    snapshots: tuple[str, ...],
    policy_path: str,
    output: str | None,
    then_spread: str | None,
    budget: str | None,
    state_path: str | None,
    now: str | None,
    **shown: Any,
) -> None:
    """Plan cross-cloud moves between the clouds of SNAPSHOT... (one snapshot per cloud).

    Each snapshot's cloud is its top-level ``cloud`` name, else its file's
    stem. Load moves from the most to the least loaded cloud (capacity-
    normalised, the policies' weights) while federation.yaml's trigger holds,
    within its budget, onto hosts that keep every rule of the destination
    cloud. Steps are ``cross-cloud-migrate``; ``kronos execute`` carries them
    out with one ``[nova:<cloud>]`` section per cloud (docs/federation.md).
    With --then-spread, each cloud's own spread plan after the arrivals is an
    ordinary plan, for that cloud's ``[nova]``, once the cross-cloud steps are done.
    """
    import kronos
    from kronos.adapters.federation_file import load_federation
    from kronos.core.validate import CLOUD_NAME
    from kronos.errors import DataError, ValidationError

    shape = listing.shape_of(shown)
    listing.check_output(shape, output)
    if len(snapshots) < 2:
        raise UsageError(f"give two snapshots or more (one per cloud), got {len(snapshots)}")
    distinct_files(
        *[("SNAPSHOT", p) for p in snapshots],
        ("--policy", policy_path),
        ("--state", state_path),
        ("-o", output),
    )
    policy = load_federation(policy_path)
    loaded = []
    for path in snapshots:
        snap = kronos.load_snapshot(path)
        problems = [i for i in kronos.validate(snap) if i.severity == "error"]
        if problems:
            raise ValidationError(path, problems)
        loaded.append(snap)
    # a cloud named "" is a name, refused below as "  " is, not the file's stem in disguise
    names = [
        Path(p).name.split(".")[0] if s.cloud is None else s.cloud
        for p, s in zip(snapshots, loaded, strict=True)
    ]
    for path, name in zip(snapshots, names, strict=True):
        if not CLOUD_NAME.fullmatch(name):
            raise DataError(
                f"{path}: cloud = {name!r}: a cloud's name is letters, digits and . _ - "
                "(it names [nova:<cloud>] and the --then-spread files)"
            )
    for i, n in enumerate(names):
        if names.index(n) != i:
            raise DataError(
                f"{snapshots[i]}: cloud {n!r} is also {snapshots[names.index(n)]}'s: give each snapshot "
                "its own top-level 'cloud' name"
            )
    if then_spread is not None:  # the files it writes are no input, nor -o, nor a folder
        spread_files = [
            str(Path(then_spread) / f"{n}.{kind}.json") for n in names for kind in ("after", "plan")
        ]
        distinct_files(
            *[("SNAPSHOT", p) for p in snapshots],
            ("--policy", policy_path),
            ("--state", state_path),
            ("-o", output),
            *[("--then-spread", f) for f in spread_files],
        )
        from kronos.adapters.journal import check_writable

        for f in spread_files:
            if Path(f).is_dir():  # (a missing folder is made)
                check_writable(Path(f), "--then-spread")
    oldest, newest = min(loaded, key=lambda s: s.taken_at), max(loaded, key=lambda s: s.taken_at)
    apart = (newest.taken_at - oldest.taken_at).total_seconds()
    if apart > FEDERATE_SNAPSHOTS_APART:  # the plan's age is the newest's: an old one hides behind it
        stale = snapshots[loaded.index(oldest)]
        echo(
            f"kronos: warning: {stale} was taken {apart / 60:.0f} min before "
            f"{snapshots[loaded.index(newest)]}: the plan moves VMs onto what that cloud looked like then",
            err=True,
        )
    if budget is not None and then_spread is None:
        raise UsageError("--budget is the spread plans' budget: give --then-spread DIR too")
    state = _load_state(state_path, read_only=True)  # before the try: its errors are its own
    from kronos.files import folder_wanted, make_folder

    where = None
    if then_spread is not None:  # made when the plans are written, not before the federation runs
        where = folder_wanted(then_spread, "the spread plans and snapshots go in it", "--then-spread")
    _choose_kernels(max(loaded, key=lambda s: len(s.hosts) * len(s.vms)))
    from kronos.core.federation import federate_all

    try:
        result = federate_all(
            dict(zip(names, loaded, strict=True)),
            policy,
            then_spread=where is not None,
            budget=budget,
            state=state,
            now=_parse_now(now),
            validate_input=False,
        )
    except DataError as exc:
        raise DataError(f"{policy_path} with {', '.join(snapshots)}: {exc}") from None
    if where is not None and result.spread is not None:
        make_folder(where)
        for name, after in result.after.items():
            kronos.dump(after, where / f"{name}.after.json")
            kronos.dump(result.spread[name], where / f"{name}.plan.json")
    _emit(result.plan, output, shape)
    if where is not None and result.spread is not None:
        moves = ", ".join(f"{n} {len(p.steps)}" for n, p in result.spread.items())
        said = f"then spread, steps per cloud: {moves} (plans and snapshots in {then_spread})"
        echo(said, err=True)  # stdout may be the plan (-o -, -f json)


@cli.command()
@click.argument("snapshot")
@click.option("--mode", type=click.Choice(MODES), help="default: the policies' mode")
@click.option("--budget", help="steps per aggregate, or 'unlimited' (default: policies' cap)")
@click.option(
    "--aggregate",
    "aggregates",
    multiple=True,
    callback=nonblank,
    help="plan only this aggregate (repeatable)",
)
@click.option("--state", "state_path", callback=a_path, help="state file: read for cooldowns, then rewritten")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="planner option")
@click.option("--now", help="RFC 3339 time cooldowns are judged at (default: snapshot taken_at)")
@click.option("-o", "--output", help="write the plan here (.json/.yaml, - for stdout)", callback=DOCUMENT)
@listing.options()
@click.option("--config", "config_path", help="kronos.conf: its [engine] planner options (--set wins)")
@click.option(
    "--drain",
    "drain_hosts",
    multiple=True,
    callback=nonblank,
    metavar="HOST",
    help="drain HOST first, then balance",
)
@click.option("--cold-migrate-stopped", is_flag=True, help="with --drain: cold-migrate SHUTOFF VMs")
@click.option(
    "--solver",
    type=click.Choice(["greedy", "exact"]),
    help="pack, spread: exact adds OR-Tools CP-SAT with a proven bound (extra: kronos-planner[exact])",
)
@click.option(
    "--time-limit", "time_limit", type=float, help="--solver exact: seconds per aggregate (default 10)"
)
@click.option("--time", "timing", is_flag=True, help="print per-phase wall times on stderr")
def plan(
    snapshot: str,
    mode: str | None,
    budget: str | None,
    aggregates: tuple[str, ...],
    state_path: str | None,
    sets: tuple[str, ...],
    now: str | None,
    output: str | None,
    config_path: str | None,
    drain_hosts: tuple[str, ...],
    cold_migrate_stopped: bool,
    solver: str | None,
    time_limit: float | None,
    timing: bool,
    **shown: Any,
) -> None:
    """Plan migrations for SNAPSHOT and print or write the plan.

    On the terminal: the steps and the summary, or with -f/-c the steps as rows
    (-f json|yaml|value|csv). -o FILE (- for stdout) writes the plan document.
    """
    given = _parse_sets(sets)
    engine = _engine_options(config_path)
    options: dict[str, Any] = {**engine, **given}
    flags = {"solver": ("--solver", solver), "time_limit": ("--time-limit", time_limit)}
    for key, (flag, value) in {**flags, "aggregates": ("--aggregate", aggregates or None)}.items():
        if value is not None:
            _once(given, key, flag)
            options[key] = value
    if drain_hosts:
        options.update(drain=drain_hosts, cold_migrate_stopped=cold_migrate_stopped)
    elif cold_migrate_stopped:
        raise UsageError("--cold-migrate-stopped moves the stopped VMs of a drain: give --drain HOST too")
    if time_limit is not None and str(options.get("solver", "greedy")).strip() != "exact":
        raise UsageError("--time-limit is the exact solver's: give --solver exact too")
    shape = listing.shape_of(shown)
    try:
        _run_planner(
            "plan", snapshot, state_path, now, output, shape, timing, mode=mode, budget=budget, **options
        )
    except UnknownAggregate as exc:  # kronos.conf's scope, not a flag: its fault, said there
        if options.get("aggregates") != engine.get("aggregates"):
            raise
        from kronos.errors import ConfigError

        raise ConfigError(f"{config_path}: [engine] aggregates: {exc}") from None


def _once(given: dict[str, Any], key: str, flag: str) -> None:
    """A flag that is also a ``--set`` key, given both ways: which would win is no one's guess."""
    if key in given:
        raise UsageError(f"{flag} and --set {key}: give it once")


def _engine_options(config_path: str | None) -> dict[str, Any]:
    """The planner options kronos.conf sets (its [engine] section and KRONOS_ENGINE_*)."""
    if config_path is None:
        return {}
    from kronos.cli_cloud import load_config
    from kronos.core.options import PlannerOptions

    # the snapshot brings the policies: a kronos.conf read for its [engine] needs no policies file
    config = load_config(config_path, require_scope=False, policies=False)
    defaults = PlannerOptions().as_dict()
    chosen = {k: v for k, v in config.engine.options.as_dict().items() if v != defaults[k]}
    if config.scope:
        chosen["aggregates"] = config.scope
    return chosen


def _run_planner(
    entry: str,
    snapshot: str,
    state_path: str | None,
    now: str | None,
    output: str | None,
    shape: listing.Shape,
    timing: bool,
    fenced_snapshot: str | None = None,
    **kwargs: Any,
) -> None:
    """Load, validate, plan with ``kronos.<entry>``, write the plan and the next state."""
    listing.check_output(shape, output)
    distinct_files(
        ("SNAPSHOT", snapshot),
        ("--state", state_path),
        ("-o", output),
        ("--fenced-snapshot", fenced_snapshot),
    )
    from kronos.adapters.journal import check_writable

    for label, path in (("--state", state_path), ("-o", output), ("--fenced-snapshot", fenced_snapshot)):
        if path is not None and path != "-":  # a missing folder is found before anything is written
            check_writable(Path(path).resolve(), label)  # as the write resolves it (sub/..: no sub needed)
    timer = Timer(timing)
    when = _parse_now(now)
    with timer.phase("load"):
        import kronos
        from kronos.errors import DataError

        snap = kronos.load_snapshot(snapshot)
        if state_path is not None:  # written at the plan's time: --now, else the snapshot's
            _kept_at(
                when or snap.taken_at,
                "--now" if when else f"{snapshot}: taken_at",
                UsageError if when else DataError,
            )
        state = _load_state(state_path)
    with timer.phase("validate"):
        problems = [i for i in kronos.validate(snap) if i.severity == "error"]
        if problems:
            from kronos.errors import ValidationError

            raise ValidationError(snapshot, problems)
    with timer.phase("compile/arrays"):
        from kronos.compile_notice import CompileNotice
        from kronos.core import jit

        _choose_kernels(snap)
        if not jit.interpreted():
            from kronos.core.warm import warm

            with CompileNotice(sys.stderr, sys.stderr.isatty()):
                warm(_phases_of(entry, snap, kwargs))
    with timer.phase("plan"):
        from kronos.core import planner

        try:
            ready = planner.prepare(snap, state, when, validate_input=False)
            result = getattr(planner, entry)(ready, **kwargs)
        except DataError as exc:
            raise DataError(f"{snapshot}: {exc}") from None
    with timer.phase("write"):
        if fenced_snapshot is not None:
            from kronos.core.evacuate import fence

            kronos.dump(fence(snap, result.options.get("assumed_fenced") or ()), fenced_snapshot)
        _emit(result, output, shape)
        if state_path is not None:
            from kronos.core.options import OPTION_NAMES

            opts = {k: v for k, v in kwargs.items() if k in OPTION_NAMES and k != "aggregates"}
            new = kronos.next_state(state, result, now=result.created_at, **opts)
            kronos.dump(new, state_path)
    timer.report()


def _choose_kernels(snap: Any) -> None:
    """Compiled or plain-Python kernels for this process, before the first is imported.

    ``--jit`` of the group (absent when a command runs alone, e.g. an alias:
    auto). NUMBA_DISABLE_JIT=1 means never, without importing numba at all.
    In auto, kernels another caller has imported already stay as they are.
    """
    from kronos.core import jit

    root = click.get_current_context().find_root()
    choice = root.params.get("jit") or "auto"
    if os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0"):
        choice = "never"
    if choice == "auto":
        if not jit.imported():
            jit.interpret(len(snap.hosts) * len(snap.vms) < INTERPRET_BELOW)
        return
    try:
        jit.interpret(choice == "never")
    except RuntimeError:
        raise UsageError(f"--jit {choice}: the kernels are already loaded the other way here") from None


def _phases_of(entry: str, snap: Any, kwargs: dict[str, Any]) -> list[str]:
    """The phases ``kronos.<entry>`` will run, so only their kernels compile."""
    from kronos.core import phases

    if entry != "plan":
        return [entry]
    pols = snap.enabled_policies
    mode = kwargs.get("mode") or (pols[0].mode if pols else phases.SPREAD)
    ran = [phases.AFFINITY, *([phases.DRAIN] if kwargs.get("drain") else [])]
    return [*ran, mode] if mode in phases.MODES else ran


def _leaving_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Options evacuate and drain share: which hosts, which VMs, in what order, and output."""
    for opt in reversed(
        [
            click.argument("snapshot"),
            click.option("--host", "hosts", multiple=True, required=True, callback=nonblank,
                         help="host to empty (repeatable)"),
            click.option("--tag", "tags", multiple=True, callback=nonblank,
                         help="only VMs with this tag (any selector)"),
            click.option("--flavor-spec", "flavor_specs", multiple=True, metavar="KEY=VALUE",
                         help="only VMs whose flavor has this extra spec"),
            click.option("--metadata", "metadata", multiple=True, metavar="KEY=VALUE",
                         help="only VMs with this metadata item"),
            click.option("--priority", metavar="KEY", callback=nonblank,
                         help="order by the number in metadata KEY or tag KEY=N, highest first"),
            click.option("--smallest-first", is_flag=True, help="within a priority, smallest VMs first"),
            click.option("--aggregate", "aggregates", multiple=True, callback=nonblank,
                         help="only this aggregate (repeatable)"),
            click.option("--state", "state_path", callback=a_path,
                         help="state file: read for quarantine, then rewritten"),
            click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="planner option"),
            click.option("--now", help="RFC 3339 time quarantines are judged at (default: taken_at)"),
            click.option("-o", "--output", callback=DOCUMENT,
                         help="write the plan here (.json/.yaml, - for stdout)"),
            click.option("--time", "timing", is_flag=True, help="print per-phase wall times on stderr"),
        ]
    ):  # fmt: skip
        f = opt(f)
    return listing.options()(f)


def _leaving_kwargs(kw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split click's keywords into the runner's and the planner's."""
    shape = listing.shape_of(kw)
    run = {k: kw.pop(k) for k in ("snapshot", "state_path", "now", "output", "timing")}
    run["shape"] = shape
    options = _parse_sets(kw.pop("sets"))
    aggregates = kw.pop("aggregates")
    if aggregates:
        _once(options, "aggregates", "--aggregate")
        options["aggregates"] = aggregates
    kw["flavor_specs"] = _parse_sets(kw["flavor_specs"], "--flavor-spec")
    kw["metadata"] = _parse_sets(kw["metadata"], "--metadata")
    kw["largest_first"] = not kw.pop("smallest_first")
    return run, {**kw, **options}


@cli.command()
@_leaving_options
@click.option("--assume-fenced", is_flag=True, help="plan for hosts still up as if fenced and down")
@click.option(
    "--fenced-snapshot",
    metavar="PATH",
    callback=DOCUMENT,
    help="with --assume-fenced: write the snapshot planned against",
)
def evacuate(**kw: Any) -> None:
    """Plan rebuilding the VMs of failed HOSTs elsewhere (Nova evacuate).

    The hosts must be down (fenced) or --assume-fenced given. Every VM on
    them ends up as a step, unplaced with a reason, or not selected.
    """
    fenced = kw.pop("fenced_snapshot")
    if fenced is not None and not kw["assume_fenced"]:
        raise UsageError("--fenced-snapshot: only with --assume-fenced")
    run, kwargs = _leaving_kwargs(kw)
    _run_planner("evacuate", **run, fenced_snapshot=fenced, **kwargs)


@cli.command()
@_leaving_options
@click.option("--budget", default="unlimited", show_default=True, help="steps per aggregate")
@click.option("--cold-migrate-stopped", is_flag=True, help="cold-migrate SHUTOFF VMs instead of listing them")
def drain(**kw: Any) -> None:
    """Plan live-migrating every movable VM off running HOSTs for maintenance."""
    run, kwargs = _leaving_kwargs(kw)
    _run_planner("drain", **run, **kwargs)


#: snapshots of a federation taken further apart than this (seconds; [executor] max_plan_age's
#: default) get a warning
FEDERATE_SNAPSHOTS_APART = 900.0


def _load_state(path: str | None, read_only: bool = False) -> Any:
    """The state at ``path``; a missing file is an empty state (a first run: ``federate
    --state`` before ``execute`` wrote one). Where the command only reads it, that is said on
    stderr, since a mistyped name would otherwise plan as if no VM were held; a folder that
    does not exist is a mistake (66)."""
    if path is None:
        return None
    import kronos

    if path != "-" and not Path(path).exists():
        if read_only:
            _no_state_yet(path)
        return kronos.State()
    return kronos.load_state(path)


def _no_state_yet(path: str, named: str = "--state") -> None:
    """A state file a command only reads is not there: a mistyped name would otherwise read as a
    cloud where nothing is held, so it is said on stderr; a folder that is not there is 66."""
    from kronos.errors import NoInputError

    if not Path(path).parent.is_dir():
        raise NoInputError(f"{named} {path}: no such file, nor folder {str(Path(path).parent)!r}")
    echo(f"kronos: {named} {path}: no such file yet: no VM or aggregate is held", err=True)


def _emit(result: Any, output: str | None, shape: listing.Shape) -> None:
    """The document to ``output``; on the terminal the human view or the rows asked for."""
    import kronos
    from kronos.files import is_stdout
    from kronos.render import plan_rows, plan_table

    if output is not None:
        kronos.dump(result, output)
        if is_stdout(output):
            return
    if shape.asked:
        echo(listing.render(plan_rows(result), shape), nl=False)
    else:
        echo(as_flags(plan_table(result)), nl=False)


@cli.command()
@click.argument("plan_file", metavar="PLAN")
@click.option("--no-reasons", is_flag=True, help="one line per step")
@listing.options()
def show(plan_file: str, no_reasons: bool, **shown: Any) -> None:
    """Print PLAN as a readable table of steps and the before/after summary (or, with -f/-c,
    its steps as rows)."""
    import kronos
    from kronos.render import plan_rows, plan_table

    shape = listing.shape_of(shown)
    if shape.asked and no_reasons:  # the rows have a column each: -c chooses them
        raise UsageError("--no-reasons shortens the table; with -f or -c choose the columns with -c")
    the_plan = kronos.load_plan(plan_file)
    if shape.asked:
        echo(listing.render(plan_rows(the_plan), shape), nl=False)
    else:
        echo(as_flags(plan_table(the_plan, reasons=not no_reasons)), nl=False)


@cli.command()
@click.option(
    "--phase",
    "names",
    multiple=True,
    type=click.Choice(PHASE_NAMES),
    help="only this phase's kernels (repeatable; default: every phase)",
)
def warm(names: tuple[str, ...]) -> None:
    """Compile the planner's kernels now, into numba's on-disk cache.

    For images and packages: run it once after installing so the first
    plan does not spend half a minute compiling. The cache is next to the
    code, or NUMBA_CACHE_DIR, or ~/.cache/kronos/numba when the code is
    read-only.
    """
    from kronos.compile_notice import CompileNotice
    from kronos.core import warm as kernels
    from kronos.errors import ConfigError

    chosen = names or PHASE_NAMES
    given = os.environ.get("NUMBA_CACHE_DIR")
    if given and not Path(given).is_dir():  # numba would cache beside the code instead, unsaid
        try:
            Path(given).mkdir(parents=True)
        except OSError as exc:
            raise ConfigError(
                f"NUMBA_CACHE_DIR = {given!r}: not a folder, and cannot be made one: {exc.strerror}"
            ) from None
    t0 = time.perf_counter()
    with CompileNotice(
        sys.stderr, sys.stderr.isatty(), delay=0.0, what=f"the kernels of {', '.join(chosen)}"
    ):
        kernels.warm(chosen)
    where = os.environ.get("NUMBA_CACHE_DIR") or str(Path(__file__).resolve().parent / "core" / "__pycache__")
    echo(f"kernels of {', '.join(chosen)} ready in {time.perf_counter() - t0:.1f} s (cache: {where})")


@cli.command()
@click.argument("folder", metavar="[DIR]", required=False, callback=a_path)
@click.option("--config", "config_path", help="kronos.conf: list its [engine] plan_dir")
@listing.options()
def plans(folder: str | None, config_path: str | None, **shown: Any) -> None:
    """List the plans `kronos run` recommended in dry run ([engine] plan_dir), oldest first,
    a row per aggregate each moves.

    Approve one by running it: `kronos execute FILE` (its age and drift gates
    apply). A file that is not a plan is reported on stderr and left out.
    """
    import kronos
    from kronos.core.convert import format_time
    from kronos.errors import ConfigError, KronosError, NoInputError

    if (folder is None) == (config_path is None):
        raise UsageError("give DIR or --config kronos.conf (its [engine] plan_dir), one of them")
    if config_path is not None:
        from kronos.cli_cloud import load_config

        config = load_config(config_path, require_scope=False, policies=False)  # the folder only
        where = config.path(config.engine.plan_dir)
        if where is None:
            raise ConfigError(f"{config_path}: [engine] plan_dir is not set: no plans are saved")
    else:
        where = Path(folder or ".")
    if where.exists() and not where.is_dir():
        raise NoInputError(f"{where}: not a folder (name the folder kronos run saves plans in)")
    if not where.is_dir():
        raise NoInputError(f"{where}: no such folder (plans are saved there by kronos run in dry run)")
    if not os.access(where, os.R_OK | os.X_OK):  # glob would see an unreadable folder as empty
        raise NoInputError(f"{where}: folder not readable (permission denied)")
    rows: list[tuple[Any, ...]] = []
    # a link to nothing is listed as left out, not passed over (is_file follows it: False)
    documents = (
        p
        for p in where.iterdir()
        if p.suffix.lower() in DOCUMENT_SUFFIXES and (p.is_file() or p.is_symlink())
    )
    plans = []
    for path in sorted(documents):  # a plan an operator saved as YAML is one too
        try:
            saved = kronos.load_plan(path)
        except KronosError as exc:
            # every line: a misspelled key's hint, or where YAML broke, is not on the last one
            said = "\n".join(f"  {line.strip()}" for line in str(exc).splitlines() if line.strip())
            echo(f"{path}: not a plan, left out:\n{said}", err=True)
            continue
        plans.append((saved.created_at, path.name, saved))
    # oldest first by when they were made: names sort by aggregate first (plan-<aggregate>-<time>)
    for _, name, saved in sorted(plans, key=lambda p: (p[0], p[1])):
        moved = {n: a for n, a in saved.summary.aggregates.items() if a.migrations}
        made = format_time(saved.created_at)
        rows += [  # a row per aggregate moved, each with its own figures
            (name, made, agg, a.migrations, a.combined_before, a.combined_after) for agg, a in moved.items()
        ] or [(name, made, None, 0, None, None)]
    columns = ("file", "created_at", "aggregate", "steps", "combined_before", "combined_after")
    shape = listing.shape_of(shown)
    echo(listing.render(listing.Listing(columns, tuple(rows)), shape), nl=False)


@cli.command()
@click.argument("snapshot")
@click.argument("plan_file", metavar="PLAN")
@click.option(
    "-o", "--output", callback=written_as(".html", ".htm"), help="write the HTML report here (- for stdout)"
)
@click.option(
    "--png",
    "png_dir",
    metavar="DIR",
    callback=a_path,
    help="also write each chart as a PNG in DIR (needs matplotlib)",
)
def report(snapshot: str, plan_file: str, output: str | None, png_dir: str | None) -> None:
    """Draw PLAN on SNAPSHOT as one self-contained HTML page (and PNG charts).

    Per aggregate and policy: each host's score before and after, the
    threshold band and max_host_score; the steps by wave; the summary; what
    could not be placed and why. The plan must have been made for SNAPSHOT.
    """
    if output is None and png_dir is None:
        raise UsageError("nothing to write: give -o FILE, --png DIR or both")
    if png_dir == "-":  # it made a folder named "-"
        raise UsageError("--png names a folder for the PNG files; - (standard output) cannot hold them")
    distinct_files(("SNAPSHOT", snapshot), ("PLAN", plan_file), ("-o", output), ("--png", png_dir))
    import kronos
    from kronos.errors import DataError, ValidationError
    from kronos.files import write_atomic

    snap, plan_doc = kronos.load_snapshot(snapshot), kronos.load_plan(plan_file)
    problems = [i for i in kronos.validate(snap) if i.severity == "error"]
    if problems:
        raise ValidationError(snapshot, problems)
    _choose_kernels(snap)
    from kronos.report import build_report, chart_folder, render_html, render_pngs, write_pngs

    try:
        built = build_report(snap, plan_doc)
    except DataError as exc:
        raise DataError(f"{plan_file} on {snapshot}: {exc}") from None
    pngs = render_pngs(built) if png_dir is not None else {}
    if png_dir is not None:
        chart_folder(png_dir)
    if output == "-":
        echo(render_html(built), nl=False)
    elif output is not None:
        write_atomic(output, render_html(built))
    if png_dir is not None:
        for path in write_pngs(pngs, png_dir):
            echo(f"wrote {path}", err=True)


@cli.command()
@click.argument("snapshot")
@click.argument("plan_file", metavar="[PLAN]", required=False)
@click.option("--vm", "vms", multiple=True, metavar="ID|NAME", help="explain this VM (repeatable)")
@click.option("--host", "hosts", multiple=True, metavar="NAME", help="explain this host (repeatable)")
@click.option("--mode", type=click.Choice(MODES), help="without PLAN: plan in this mode first")
@click.option("--budget", help="without PLAN: steps per aggregate, or 'unlimited'")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="without PLAN: planner option")
@click.option(
    "--state", "state_path", callback=a_path, help="state file (read only): cooldowns and quarantine"
)
@click.option("--config", "config_path", help="without PLAN: kronos.conf's [engine] planner options")
@click.option(
    "-o", "--output", help="write the answers as records here (.json/.yaml, - for stdout)", callback=DOCUMENT
)
@listing.options()
def explain(
    snapshot: str,
    plan_file: str | None,
    vms: tuple[str, ...],
    hosts: tuple[str, ...],
    mode: str | None,
    budget: str | None,
    sets: tuple[str, ...],
    state_path: str | None,
    config_path: str | None,
    output: str | None,
    **shown: Any,
) -> None:
    """Why a VM moved or stayed, why a host was chosen, passed over or emptied.

    With PLAN, about that plan (made for SNAPSHOT); without, about the plan
    `kronos plan SNAPSHOT` would make with the same options. For a VM: the
    rules that hold it, each host of its aggregate with the first rule that
    rules it out or the imbalance it would leave, and the plan's decision.
    With -f/-c each of those is a row (subject, kind, aggregate, host, rule,
    combined_after, reason); -o FILE (- for stdout) writes the records.
    """
    shape = listing.shape_of(shown)
    listing.check_output(shape, output)
    if not vms and not hosts:
        raise UsageError("nothing to explain: give --vm ID|NAME or --host NAME (repeatable)")
    distinct_files(("SNAPSHOT", snapshot), ("PLAN", plan_file), ("--state", state_path), ("-o", output))
    if plan_file is not None and (mode or budget or sets or config_path):
        raise UsageError("--mode, --budget, --set and --config make a plan: give them without PLAN")
    from kronos.render import EXPLAIN_COLUMNS

    listing.select(listing.Listing(EXPLAIN_COLUMNS, ()), shape)  # a wrong -c before any planning
    import kronos
    from kronos.errors import DataError, ValidationError

    snap = kronos.load_snapshot(snapshot)
    state = _load_state(state_path, read_only=True)
    problems = [i for i in kronos.validate(snap) if i.severity == "error"]
    if problems:
        raise ValidationError(snapshot, problems)
    _choose_kernels(snap)
    from kronos.core import explain as why
    from kronos.core.convert import snapshot_digest
    from kronos.core.replay import check_digest
    from kronos.render import explain_host_text, explain_rows, explain_vm_text

    if plan_file is not None:
        plan_doc = kronos.load_plan(plan_file)
        try:
            check_digest(snapshot_digest(snap), plan_doc)
        except DataError as exc:
            raise DataError(f"{plan_file} on {snapshot}: {exc}") from None
    else:
        options: dict[str, Any] = {**_engine_options(config_path), **_parse_sets(sets)}
        plan_doc = kronos.plan(snap, mode=mode, budget=budget, state=state, validate_input=False, **options)
    try:
        answers: list[Any] = [why.explain_vm(snap, plan_doc, ref, state) for ref in vms]
        answers += [why.explain_host(snap, plan_doc, ref, state) for ref in hosts]
    except DataError as exc:  # a step that does not fit the snapshot
        raise DataError(f"{plan_file} on {snapshot}: {exc}") from None
    if output is not None:
        from kronos.files import is_stdout, render, yaml_named

        _write(output, render(answers, yaml=yaml_named(output)))
        if is_stdout(output):
            return
    if shape.asked:
        echo(listing.render(explain_rows(answers, as_flags), shape), nl=False)
        return
    for answer in answers:
        text = explain_vm_text(answer) if isinstance(answer, why.VMExplanation) else explain_host_text(answer)
        echo(as_flags(text), nl=False)


def _score_scope(snapshot_path: str | None, chosen: tuple[str, ...], config: Any) -> tuple[Any, set[str]]:
    """Aggregate → hosts to score from --snapshot (None without one), and the hosts known to be down.

    Read before Prometheus is asked anything: a wrong file or name is the user's to fix first.
    """
    if snapshot_path is None:
        return None, set()
    import kronos
    from kronos.core.model import UNASSIGNED
    from kronos.core.options import unknown_option

    snap = kronos.load_snapshot(snapshot_path)
    # the hosts `kronos record` left out for bad data are scored again: they are why it did
    left_out = (snap.source or {}).get("excluded_members") or {}
    if not (
        isinstance(left_out, dict)
        and all(isinstance(h, list) and all(isinstance(x, str) for x in h) for h in left_out.values())
    ):
        from kronos.errors import DataError

        shown = f"source.excluded_members = {left_out!r}"
        raise DataError(f"{snapshot_path}: {shown}: expected {{aggregate: [host]}}")
    pools = {a.name: [*a.hosts, *left_out.get(a.name, ())] for a in snap.aggregates}
    member = {h for a in snap.aggregates for h in a.hosts}
    loose = [h.name for h in snap.hosts if h.name not in member] + list(left_out.get(UNASSIGNED, ()))
    if loose:
        pools[UNASSIGNED] = loose
    names = chosen or config.scope or tuple(pools)
    for name in names:
        if name not in pools:
            why = unknown_option(name, tuple(pools)).replace("option", "aggregate")
            raise UsageError(f"{why} in {snapshot_path}")
    return {n: pools[n] for n in names}, {h.name for h in snap.hosts if not h.up}


@cli.command()
@click.option("--config", "config_path", help="kronos.conf (default: KRONOS_* environment only)")
@click.option(
    "--aggregate", "aggregates", multiple=True, callback=nonblank, help="only this aggregate (repeatable)"
)
@click.option("--at", "at_text", help="evaluation time, RFC 3339 or Unix seconds (default: now)")
@click.option("--snapshot", "snapshot_path", help="take aggregates and their hosts from this snapshot")
@click.option(
    "-o",
    "--output",
    callback=written_as(".json"),
    help="write the report as a JSON document here (- for stdout)",
)
@listing.options()
def scores(
    config_path: str | None,
    aggregates: tuple[str, ...],
    at_text: str | None,
    snapshot_path: str | None,
    output: str | None,
    **shown: Any,
) -> None:
    """Per aggregate and policy: host scores, imbalance vs threshold, data health.

    On the terminal the report, or with -f/-c one row per aggregate, host and
    policy (score, health, problem, imbalance, threshold, exceeded, skipped).
    -o FILE (- for stdout) writes the report document. Without --snapshot
    every host the policies' queries return is scored as one pool, ``*``.
    With [engine] history_window > 0 each host's history over the window is
    checked too (and kept in the -o document). Exit 0 even when an aggregate
    is skipped for bad data (the report says why); 69 when Prometheus cannot
    be reached.
    """
    shape = listing.shape_of(shown)
    listing.check_output(shape, output)
    if aggregates and snapshot_path is None:
        raise UsageError("--aggregate needs --snapshot FILE to know the aggregate's hosts")
    from kronos.render import SCORE_COLUMNS

    listing.select(listing.Listing(SCORE_COLUMNS, ()), shape)  # a wrong -c before Prometheus is asked
    from kronos.adapters.history import Window
    from kronos.adapters.prometheus import PrometheusClient
    from kronos.adapters.scores import assess, read_policies
    from kronos.cli_cloud import load_config, parse_at
    from kronos.core.convert import format_time
    from kronos.redact import redact
    from kronos.render import scores_rows, scores_table

    config = load_config(config_path, require_scope=False)
    at = parse_at(at_text)
    pools, down = _score_scope(snapshot_path, aggregates, config)
    client = PrometheusClient.from_config(config.prometheus)
    readings = read_policies(client, config.policies, at, Window.of(config.engine, at))
    if pools is None:
        pools = {"*": sorted(set().union(*(r.hosts for r in readings.values())))}
    reports = assess(
        readings,
        pools,
        at,
        down=down,
        limits=config.prometheus,
    )
    if output is not None:
        from kronos.files import is_stdout

        _write(output, _scores_json(reports, format_time(at)) + "\n")
        if is_stdout(output):
            return
    if shape.asked:  # redacted as the report is: a failed query's words may carry the URL
        echo(redact(listing.render(scores_rows(reports, down), shape)), nl=False)
    else:
        echo(redact(scores_table(reports, client.shown, format_time(at))), nl=False)


def _write(output: str, text: str) -> None:
    """A document to ``output`` (``-``: stdout), replacing a file whole."""
    if output == "-":
        echo(text, nl=False)
        return
    from kronos.files import write_atomic

    write_atomic(output, text)


def _scores_json(reports: Any, at: str) -> str:
    import json
    import math

    def num(x: float | None) -> float | str | None:
        return x if x is None or math.isfinite(x) else str(x).replace("inf", "Inf").replace("nan", "NaN")

    doc = {
        "at": at,
        "aggregates": [
            {
                "name": r.name,
                "hosts": list(r.hosts),
                "skipped": r.skipped,
                "combined_imbalance": r.combined,
                "policies": [
                    {
                        "name": p.policy,
                        "weight": p.weight,
                        "threshold": p.threshold,
                        "imbalance": p.imbalance,
                        "exceeded": p.exceeded,
                        "scores": {h: [num(v) for v in vs] for h, vs in p.values.items()},
                        **({"history": p.history} if p.history else {}),
                        "problems": [
                            {"kind": x.kind, "subject": x.subject, "detail": x.detail} for x in p.problems
                        ],
                    }
                    for p in r.policies
                ],
            }
            for r in reports
        ],
    }
    from kronos.redact import redact_data

    return json.dumps(redact_data(doc), indent=2)


@cli.group()
def state() -> None:
    """Inspect and change the cooldown / quarantine state: a file, or the engines' (--config)."""


AUDIT_OPT = click.option(
    "--audit-file", "audit_path", metavar="PATH", help="append what this changes to this audit log"
)
STATE_OPT = click.option(
    "--state",
    "state_path",
    metavar="FILE",
    callback=a_path,
    help="state file (default state.json; created if missing, rewritten atomically)",
)
CONFIG_OPT = click.option(
    "--config",
    "config_path",
    metavar="PATH",
    help="instead of --state: the state this kronos.conf's engines keep ([coordination] backend_url's "
    "etcd key, shared by several engines, else [engine] state_file)",
)


def _state_store(state_path: str | None, config_path: str | None) -> Any:
    """--state or --config, not both (64); the store as a context manager."""
    if state_path is not None and config_path is not None:
        raise UsageError("--state and --config name two places for the state: give one")
    from kronos.adapters.state_store import open_state

    return open_state(state_path, config_path)


def _now_or_clock(text: str | None, flag: str) -> datetime:
    return _parse_now(text, flag) or datetime.now(UTC)


#: the options a migration's outcome reads (how long the VM rests or is held)
RESULT_OPTIONS = ("instance_cooldown", "instance_quarantine_seconds")


@state.command("record-result")
@STATE_OPT
@CONFIG_OPT
@click.option("--instance", required=True, callback=an_id, help="instance UUID")
@click.option(
    "--outcome",
    required=True,
    type=click.Choice(["Succeeded", "PreFlightError", "MigrationFailed", "MigrationTimeout"]),
)
@click.option("--error", help="error text to keep with the result")
@click.option("--at", "at", help="RFC 3339 time of the outcome (default: now)")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="e.g. instance_quarantine_seconds=-1")
@AUDIT_OPT
def record_result_cmd(
    state_path: str | None,
    config_path: str | None,
    instance: str,
    outcome: str,
    error: str | None,
    at: str | None,
    sets: tuple[str, ...],
    audit_path: str | None,
) -> None:
    """Feed back a migration outcome: failures quarantine the VM, others cool it down."""
    import kronos

    when, given = _now_or_clock(at, "--at"), _parse_sets(sets)
    _kept_at(when, "--at", UsageError)
    unread = [k for k in given if k.replace("-", "_") not in RESULT_OPTIONS]
    if unread:
        raise UsageError(f"--set {unread[0]}: record-result reads only {' and '.join(RESULT_OPTIONS)}")
    with (
        _state_store(state_path, config_path) as (store, engine),
        _audit(audit_path, store, config_path) as audit,
    ):
        options = {**engine, **given}  # the engines' [engine] holds, unless --set says otherwise
        new = store.update(
            lambda current: kronos.record_result(current, instance, outcome, at=when, error=error, **options)
        )
        held = (
            "quarantine"
            if instance in new.quarantined_until
            else ("cooldown" if instance in new.instance_cooldown_until else "none")
        )
        audit(
            "result_recorded", instance=instance, outcome=outcome, error=error, hold=held, state=store.label
        )
    from kronos.core.convert import format_time

    # an --at in the past may record a hold that is over already: said, or it reads as in force
    over = " (over already)"
    clock = datetime.now(UTC)
    if instance in new.quarantined_until:
        q = new.quarantined_until[instance]
        until = "released by hand" if q is None else format_time(q) + (over if q <= clock else "")
        echo(f"{instance}: {outcome}; quarantined until {until}")
    elif instance in new.instance_cooldown_until:
        c = new.instance_cooldown_until[instance]
        echo(f"{instance}: {outcome}; in cooldown until {format_time(c)}{over if c <= clock else ''}")
    else:
        echo(f"{instance}: {outcome}")


@state.command("release")
@STATE_OPT
@CONFIG_OPT
@click.argument("instance", callback=an_id)
@AUDIT_OPT
def release_cmd(
    state_path: str | None, config_path: str | None, instance: str, audit_path: str | None
) -> None:
    """Lift INSTANCE's quarantine and cooldown."""
    import kronos

    with (
        _state_store(state_path, config_path) as (store, _),
        _audit(audit_path, store, config_path) as audit,
    ):
        path = getattr(store, "path", None)
        if isinstance(path, str) and path != "-" and not Path(path).exists():  # as `state show` says it
            _no_state_yet(path, "--state" if config_path is None else "[engine] state_file")
        store.update(lambda current: kronos.release(current or kronos.State(), instance))
        audit("released", instance=instance, state_file=store.label)
    echo(f"{instance}: released")


@contextlib.contextmanager
def _audit(path: str | None, store: Any, config_path: str | None) -> Iterator[Callable[..., None]]:
    """The audit log ``path`` (none: a log that writes nothing), for a change made by hand:
    opened before the change, so a log that cannot be opened leaves the state as it was; one
    that fails after (a full disk) says which change it could not record."""
    if path is None:
        yield lambda _event, **_fields: None
        return
    from kronos.adapters.audit import Audit

    # its lines, appended to the state file or kronos.conf, broke them (a shared state has no path)
    distinct_files(
        ("the state", getattr(store, "path", None)), ("--config", config_path), ("--audit-file", path)
    )

    audit = Audit(path, "--audit-file")

    def record(event: str, **fields: Any) -> None:
        try:
            audit(event, **fields)
        except KronosError as exc:  # the log broke after it opened (a full disk): say what it misses
            said = ", ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
            raise type(exc)(f"{exc}: the state was changed all the same; unlogged: {event} {said}") from None

    try:
        yield record
    finally:
        audit.close()


@state.command("show")
@STATE_OPT
@CONFIG_OPT
@click.option("--now", help="judge expiry at this RFC 3339 time (default: now)")
@listing.options()
def show_state(state_path: str | None, config_path: str | None, now: str | None, **shown: Any) -> None:
    """List aggregates and VMs in cooldown or quarantine (expired entries hidden)."""
    import kronos
    from kronos.core.convert import format_time
    from kronos.core.state import prune
    from kronos.render import state_rows

    shape = listing.shape_of(shown)
    when = _now_or_clock(now, "--now")
    with _state_store(state_path, config_path) as (store, _):
        found = store.load()
        if found is None and isinstance(getattr(store, "path", None), str):  # a file not written yet
            _no_state_yet(store.path, "--state" if config_path is None else "[engine] state_file")
        current = prune(found or kronos.State(), when)
    held = state_rows(current, format_time)
    if shape.asked:
        echo(listing.render(held, shape), nl=False)
        return
    if not held.rows:
        echo("nothing in cooldown or quarantine")
    else:
        by_hand = tuple((kind, key, until or "released by hand") for kind, key, until in held.rows)
        echo(listing.render(listing.Listing(held.columns, by_hand), shape), nl=False)
    echo(f"{len(current.results)} recorded result(s)")


def _register_cloud_commands() -> None:
    from kronos import cli_cloud

    cli.add_command(cli_cloud.record)
    cli.add_command(cli_cloud.check_config)
    cli.add_command(cli_cloud.execute)
    cli.add_command(cli_cloud.run_engine)
    cli.add_command(cli_cloud.status)
    replay_help = (
        "Plan on a snapshot `kronos record` wrote (as `kronos plan` does; the\n"
        "original kronos-replay): same options, same plan."
    )
    cli.add_command(click.Command("replay", params=plan.params, callback=plan.callback, help=replay_help))


_register_cloud_commands()


def main(argv: list[str] | None = None, command: click.Command | None = None, prog: str = "kronos") -> None:
    """Entry point: run the click group (or one command, for :mod:`kronos.aliases`) and map failures
    to sysexits codes."""
    from kronos.logs import configure

    _prepare_numba_cache()
    configure()  # warnings before the options are read (a usage error) are logged too
    sys.exit(run((command or cli).main, argv, prog))


def embedded(argv: list[str]) -> int:
    """Run a ``kronos`` command inside another program (``openstack kronos …``): its exit code."""
    return run(functools.partial(cli.main, obj={"embedded": True}), argv, "openstack kronos")


def run(entry: Callable[..., Any], argv: list[str] | None, prog: str = "kronos") -> int:
    """Run ``entry``; every message on the way out passes :func:`kronos.redact.redact`."""
    prepare_streams()
    code = _run(entry, argv, prog)
    lost = settle_stdout()  # what echo buffered: a full disk may refuse it only now
    return code if lost is None or code != 0 else _output_lost(lost)


def _output_lost(exc: OSError) -> int:
    """Standard output refused the rest: a closed pipe is the reader's choice (0), else 74."""
    if isinstance(exc, BrokenPipeError):
        return 0
    echo(f"kronos: error: {unwritable('standard output', exc)}", err=True)
    return KronosIOError.exit_code


def _in_click_echo(exc: BaseException) -> bool:
    """Whether ``exc`` was raised writing in click's echo (help, version: not through ours)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return False
    return tb.tb_frame.f_globals.get("__name__") == "click.utils" and tb.tb_frame.f_code.co_name == "echo"


def _run(entry: Callable[..., Any], argv: list[str] | None, prog: str) -> int:
    from kronos.redact import redact

    try:
        entry(args=argv, prog_name=prog, standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        echo(exc.format_message() if hasattr(exc, "format_message") else str(exc), err=True)
        return EX_USAGE
    except click.UsageError as exc:
        import io

        shown = io.StringIO()
        exc.show(file=shown)
        echo(redact(shown.getvalue()), err=True, nl=False)
        return EX_USAGE
    except click.exceptions.Abort:
        echo("kronos: aborted", err=True)
        return 130
    except KronosError as exc:
        echo(f"kronos: error: {redact(as_flags(str(exc)))}", err=True)
        return exc.exit_code
    except BrokenPipeError:  # the reader had enough (| head): run() quiets the rest
        return 0
    except KeyboardInterrupt:
        echo("kronos: interrupted", err=True)
        return 130
    except Exception as exc:
        if isinstance(exc, OSError) and _in_click_echo(exc):  # its own output (--help) was refused
            settle_stdout()
            return _output_lost(exc)
        import traceback

        echo(redact(traceback.format_exc()), err=True, nl=False)
        echo("kronos: internal error (a bug: please report it with the traceback)", err=True)
        return EX_SOFTWARE
    return 0


if __name__ == "__main__":  # pragma: no cover
    main()
