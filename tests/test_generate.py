from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

import kronos
from tests.conftest import kronos_cli


def test_generated_snapshot_is_valid_and_deterministic(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    for out in (a, b):
        proc = kronos_cli(
            "generate",
            "--hosts",
            "30",
            "--vms",
            "900",
            "--groups",
            "24",
            "--seed",
            "42",
            "--aggregates",
            "2",
            "--heterogeneous",
            "-o",
            str(out),
        )
        assert proc.returncode == 0, proc.stderr
    assert a.read_bytes() == b.read_bytes()
    assert kronos_cli("validate", str(a)).returncode == 0
    other = kronos.generate(hosts=30, vms=900, groups=24, seed=43, aggregates=2, heterogeneous=True)
    assert other != kronos.load_snapshot(a)


def test_generated_world_is_consistent() -> None:
    snap = kronos.generate(hosts=40, vms=2000, groups=40, seed=1, heterogeneous=True, aggregates=2)
    assert not [i for i in kronos.validate(snap)]  # no errors, and nothing over capacity
    per_host: dict[str, list[float]] = {h.name: [0.0, 0.0] for h in snap.hosts}
    for v in snap.vms:
        for j, p in enumerate(("cpu-spread", "memory-spread")):
            per_host[v.host][j] += v.weights[p]
    for h in snap.hosts:
        for j, p in enumerate(("cpu-spread", "memory-spread")):
            base = h.scores[p] - per_host[h.name][j]
            assert -1e-5 <= base <= 0.1, (h.name, p, base)  # score = Σ weights + base load
    assert len({h.capacity.vcpus for h in snap.hosts}) > 1
    assert all(h.score_capacity for h in snap.hosts)
    vcpus = {v.flavor.vcpus for v in snap.vms}
    assert min(vcpus) == 1 and max(vcpus) == 16
    kinds = Counter(g.policy for g in snap.server_groups)
    assert set(kinds) == {"affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity"}
    assert any(g.rules.get("max_server_per_host") == 2 for g in snap.server_groups)
    assert any(v.status != "ACTIVE" or v.task_state or not v.migratable for v in snap.vms)
    zones = {a.metadata["availability_zone"] for a in snap.aggregates}
    assert zones == {"az1", "az2"}
    scores = np.array([h.scores["cpu-spread"] for h in snap.hosts])
    assert scores.max() - scores.min() > 0.3  # skewed: some hosts are hot


def test_some_groups_are_broken_and_most_are_not() -> None:
    snap = kronos.generate(hosts=30, vms=600, groups=80, seed=2, broken_groups=0.2)
    host = {v.id: v.host for v in snap.vms}
    broken = 0
    for g in snap.server_groups:
        counts = Counter(host[m] for m in g.members)
        if g.policy.endswith("anti-affinity"):
            lim = g.max_server_per_host if g.policy == "anti-affinity" else 1
            broken += max(counts.values()) > lim
        else:
            broken += len(counts) > 1
    assert 0 < broken < len(snap.server_groups) / 2


def test_large_generation_is_fast_enough_to_use() -> None:
    snap = kronos.generate(hosts=200, vms=20000, groups=100, seed=3)
    assert len(snap.vms) == 20000
