"""Spread planner speed (pytest-benchmark; results in docs/benchmarks.md).

Targets (one core of the 2-core machine, warm JIT, loaded snapshot):
50×5000 budget 20 ≤ 20 ms; 1000×100 000 budget 50 ≤ 1 s, and within 1.5× of
that with two NUMA cells a host and a fifth of the VMs pinned; whole-process
``kronos plan`` on 50×5000 ≤ 1.5 s with a warm cache.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import kronos
from benchmarks.conftest import BUDGETS
from kronos.core.arrays import build_world
from kronos.core.warm import warm


@pytest.mark.parametrize("case", list(BUDGETS))
def test_plan(benchmark, snapshot_file, case: str) -> None:  # type: ignore[no-untyped-def]
    snap = kronos.load_snapshot(snapshot_file(case))
    warm()
    plan = benchmark(kronos.plan, snap, budget=BUDGETS[case])
    assert plan.steps


@pytest.mark.parametrize("case", list(BUDGETS))
def test_arrays_only(benchmark, snapshot_file, case: str) -> None:  # type: ignore[no-untyped-def]
    snap = kronos.load_snapshot(snapshot_file(case))
    world = benchmark(build_world, snap)
    assert world.vm_host.size == len(snap.vms)


def test_whole_process_plan_warm_cache(benchmark, snapshot_file) -> None:  # type: ignore[no-untyped-def]
    path = str(snapshot_file("50x5000"))
    cmd = [sys.executable, "-c", "from kronos.cli import main; main()", "plan", path, "--budget", "20"]
    subprocess.run(cmd, check=True, capture_output=True)  # fills the numba cache

    def run() -> None:
        subprocess.run(cmd, check=True, capture_output=True)

    benchmark.pedantic(run, rounds=5, iterations=1)


def test_whole_process_plan_cold_cache(benchmark, snapshot_file, tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    """Same command with an empty numba cache each round: compile time included."""
    path = str(snapshot_file("50x5000"))
    cmd = [sys.executable, "-c", "from kronos.cli import main; main()", "plan", path, "--budget", "20"]

    def run() -> None:
        env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path_factory.mktemp("numba-cold"))}
        subprocess.run(cmd, check=True, capture_output=True, env=env)

    benchmark.pedantic(run, rounds=2, iterations=1)


def test_peak_memory_1000x100000(snapshot_file) -> None:  # type: ignore[no-untyped-def]
    """Whole-process peak RSS of ``kronos plan`` on 1000×100 000 (target ≤ 1 GiB)."""
    path = str(snapshot_file("1000x100000"))
    code = (
        "import resource, sys; from kronos.cli import run, cli;"
        f"rc = run(cli.main, ['plan', {path!r}, '--budget', '50', '-o', '/dev/null']);"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    peak_mib = int(out.stdout.strip().splitlines()[-1]) / 1024
    print(f"\npeak RSS kronos plan 1000x100000: {peak_mib:.0f} MiB")
    assert peak_mib <= 1024
