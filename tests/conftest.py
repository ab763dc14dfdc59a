from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

import kronos

# compiled, the library default, before any in-process command line on a small snapshot could
# choose the plain-Python kernels for the whole session (kronos.core.jit: once a process)
import kronos.core.kernels
import kronos.core.placement
import kronos.core.rules
from tests.etcd_server import Etcd

ROOT = Path(__file__).resolve().parent.parent
CHECKER = ROOT.parent / "shared" / "tools" / "check.py"

settings.register_profile(
    "default",
    deadline=None,
    max_examples=40,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# CI: as many examples as a local run, within the 25-minute budget of .ci/run (nox -s fuzz and
# nox -s sweep run the long ones); 70 took the whole run to 19-23 minutes on a 2-core machine,
# 50 to 21-25 minutes when the machine was slow (2026-12-03)
settings.register_profile("ci", parent=settings.get_profile("default"), max_examples=40)
settings.load_profile("ci" if os.environ.get("CI") == "true" else "default")


#: the order the two test workers (pyproject's addopts) take modules in. test_ha.py (~4 minutes
#: of engines, etcd and a Nova migrating one VM at a time) first, while the other worker runs the
#: long modules without a Nova of their own: beside another Nova its migrations took twice as
#: long. Then the Nova modules, longest first, and the rest as collected. xdist's own order (most
#: tests first) started test_ha.py when the other worker had little left to do
SLOWEST_FIRST = (
    "test_ha.py",
    "test_sweep.py",
    "test_coordination.py",
    "test_jit.py",
    "test_fuzz_config.py",
    "test_pack.py",
    "test_pairs.py",
    "test_docs.py",
    "test_engines_bench.py",
    "test_fuzz_documents.py",
    "test_osc.py",
    "test_evacuate.py",
    "test_prometheus.py",
    "test_affinity.py",
    "test_simulate.py",
    "test_execute.py",
    "test_federation_execute.py",
    "test_nova.py",
    "test_execute_faults.py",
    "test_execute_evacuate.py",
    "test_nova_placement.py",
    "test_run.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: a module keeps its order


def run_checker(tmp: Path, snap: kronos.Snapshot, plan: kronos.Plan, *extra: str) -> dict[str, Any] | None:
    """Run ../shared/tools/check.py when it is there (it is a development aid, not a dependency)."""
    if not CHECKER.exists():
        return None
    s, p = tmp / "snap.json", tmp / "plan.json"
    kronos.dump(snap, s)
    kronos.dump(plan, p)
    proc = subprocess.run(
        [sys.executable, str(CHECKER), str(s), str(p), "--strict-waves", "--strict-claims", "--json", *extra],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def checker(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """check(snapshot, plan, *flags): assert check.py finds no violation (when present)."""

    def check(snap: kronos.Snapshot, plan: kronos.Plan, *extra: str) -> None:
        result = run_checker(tmp_path_factory.mktemp("check"), snap, plan, *extra)
        if result is not None:
            assert result["violations"] == [], result["violations"][:5]

    return check


@pytest.fixture(scope="module")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Etcd]:
    """A real etcd for the module's tests (tests/etcd_server.py): one server a module."""
    server = Etcd(tmp_path_factory.mktemp("etcd"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def small() -> kronos.Snapshot:
    return kronos.generate(hosts=12, vms=240, groups=12, seed=5)


def kronos_cli(
    *args: str, stdin: str | None = None, process: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run the ``kronos`` command line (exit code, stdout, stderr).

    In this process, through the same ``run`` as the console script, with its own stdin,
    stdout, stderr, logging and signal handlers: a new interpreter importing kronos and
    loading the kernels cost ~1 s a call, several minutes over the suite. ``process`` (a test
    of the process itself: its file descriptors, its signals), ``--jit`` (which chooses the
    process's kernels) and TESTS_CLI_PROCESS=1 (not a KRONOS_ name: those are kronos.conf
    settings) run a real subprocess. In this process pytest's warning filters apply: a warning
    a command raises fails it (exit 70), where a real process would log it and go on.
    """
    if process or args[:1] == ("--jit",) or os.environ.get("TESTS_CLI_PROCESS") == "1":
        return subprocess.run(
            [sys.executable, "-c", "from kronos.cli import main; main()", *args],
            capture_output=True,
            text=True,
            input=stdin,
            check=False,
        )
    return _in_process(list(args), stdin)


def _in_process(args: list[str], stdin: str | None) -> subprocess.CompletedProcess[str]:
    import logging
    import signal
    import warnings

    from click.testing import CliRunner

    from kronos.cli import cli, run
    from kronos.logs import configure

    loggers = [logging.getLogger()] + [
        lg for lg in logging.root.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    ]
    kept = {lg: (list(lg.handlers), lg.level, lg.propagate) for lg in loggers}
    signals = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    showwarning = warnings.showwarning
    environ = dict(os.environ)
    cwd = Path.cwd()
    try:
        with CliRunner().isolation(input=stdin) as (out, err, _):
            configure()  # as main() does: warnings before the options are read are logged too
            try:
                code = run(cli.main, args)
            except SystemExit as exc:  # pragma: no cover - run() returns its codes
                code = exc.code if isinstance(exc.code, int) else 1
            return subprocess.CompletedProcess(
                ["kronos", *args], code, out.getvalue().decode(), err.getvalue().decode()
            )
    finally:
        logging.captureWarnings(False)
        warnings.showwarning = showwarning
        for lg in [logging.getLogger()] + [
            x for x in logging.root.manager.loggerDict.values() if isinstance(x, logging.Logger)
        ]:
            handlers, level, propagate = kept.get(lg, ([], logging.NOTSET, True))
            for h in list(lg.handlers):
                lg.removeHandler(h)
                if h not in handlers:
                    h.close()  # a --log-file's, a JSON log's (kronos.events) stream
            for h in handlers:
                lg.addHandler(h)
            lg.setLevel(level)
            lg.propagate = propagate
        for s, h in signals.items():
            signal.signal(s, h)
        os.environ.clear()
        os.environ.update(environ)
        os.chdir(cwd)
