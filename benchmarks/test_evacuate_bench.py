"""Evacuate and drain speed (pytest-benchmark; results in docs/benchmarks.md).

The target (≤ 50 ms warm to evacuate one host of ~100 VMs at 1 000 × 100 000)
is for a caller that keeps the snapshot prepared (``kronos.prepare``: validated,
arrays built, digest taken) and plans the moment a host fails. The cold path
from a loaded snapshot is measured too.
"""

from __future__ import annotations

import pytest

import kronos
from kronos.core.warm import warm
from kronos.testing import generate_evacuable


def _down(snap: kronos.Snapshot) -> list[str]:
    return [h.name for h in snap.hosts if not h.up]


@pytest.fixture(scope="module")
def big(snapshot_file):  # type: ignore[no-untyped-def]
    """The 1 000 × 100 000 cloud with one failed host: loaded, and prepared once."""
    snap = kronos.load_snapshot(snapshot_file("evac-1000x100000"))
    warm()
    return snap, kronos.prepare(snap)


def test_evacuate_one_host_prepared(benchmark, big) -> None:  # type: ignore[no-untyped-def]
    snap, ready = big
    failed = _down(snap)
    plan = benchmark(kronos.evacuate, ready, failed)
    on = sum(1 for v in snap.vms if v.host in failed)
    print(f"\nevacuate {failed[0]}: {on} VMs, {len(plan.steps)} steps, {len(plan.summary.unplaced)} unplaced")
    assert len(plan.steps) + len(plan.summary.unplaced) == on


def test_evacuate_one_host_from_loaded_snapshot(benchmark, big) -> None:  # type: ignore[no-untyped-def]
    snap, _ = big
    benchmark.pedantic(kronos.evacuate, args=(snap, _down(snap)), rounds=3)


def test_drain_one_host_prepared(benchmark, big) -> None:  # type: ignore[no-untyped-def]
    _, ready = big
    plan = benchmark(kronos.drain, ready, ["cmp-0001"])
    print(f"\ndrain cmp-0001: {len(plan.steps)} steps, {len(plan.summary.unplaced)} listed")


def test_evacuate_three_hosts_with_a_known_placement(benchmark) -> None:  # type: ignore[no-untyped-def]
    """The tight case: survivors' free room is exactly the evacuees' size (all passes run)."""
    snap = generate_evacuable(hosts=30, vms=900, failed=3, seed=3)
    warm()
    ready = kronos.prepare(snap)
    failed = _down(snap)
    plan = benchmark(kronos.evacuate, ready, failed)
    on = sum(1 for v in snap.vms if v.host in failed)
    print(f"\nknown placement, 3 failed: {len(plan.steps)} of {on} placed")
