"""Federation speed (pytest-benchmark; results in docs/benchmarks.md).

The target: a three-cloud generated example "plans in well under a second".
Measured for the library call on three clouds of 20 × 600 (``kronos generate
--clouds 3``'s bundled size) and of 50 × 2 000 and 200 × 10 000, and for the
whole ``kronos federate`` process on the first (interpreted kernels, as the
CLI chooses below 50 000 host × VM pairs).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import kronos
from kronos.adapters.federation_file import parse_federation
from kronos.core.federation import federate
from kronos.core.warm import warm
from kronos.testing import generate_clouds

SIZES = {"3x20x600": (20, 600, 20), "3x50x2000": (50, 2000, 40), "3x200x10000": (200, 10_000, 100)}


@pytest.mark.parametrize("size", list(SIZES))
def test_federate_three_clouds(benchmark, size: str) -> None:  # type: ignore[no-untyped-def]
    hosts, vms, groups = SIZES[size]
    snaps, text = generate_clouds(3, hosts, vms, groups, seed=0)
    policy = parse_federation(text, "federation.yaml")
    warm()
    plan = benchmark(federate, snaps, policy)
    print(f"\n{size}: {len(plan.steps)} steps; {plan.summary.notes}")
    assert plan.steps


def test_kronos_federate_whole_process(benchmark, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    snaps, text = generate_clouds(3, 20, 600, 20, seed=0)
    files = []
    for name, snap in snaps.items():
        kronos.dump(snap, tmp_path / f"{name}.json")
        files.append(str(tmp_path / f"{name}.json"))
    (tmp_path / "federation.yaml").write_text(text)
    cmd = [sys.executable, "-m", "kronos", "federate", *files, "--policy", str(tmp_path / "federation.yaml"),
           "-o", str(tmp_path / "plan.json")]  # fmt: skip

    def run() -> None:
        subprocess.run(cmd, check=True, capture_output=True)

    benchmark.pedantic(run, rounds=5, iterations=1)
    assert kronos.load_plan(str(tmp_path / "plan.json")).steps
