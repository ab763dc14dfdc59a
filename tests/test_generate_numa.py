"""``kronos generate`` and the FORMATS §4 fields: pinned CPUs, NUMA cells, traits, devices.

Every snapshot is checked twice: by this file's own recomputation of what each
host and each NUMA cell holds, and, where ``../shared`` is present, by
check.py's data checks on an empty plan (no data error, no "already over
capacity" note).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import kronos
from kronos.testing import (
    CPU_GENERATIONS,
    CUSTOM_TRAITS,
    GPU_DEVICE,
    PCPU,
    SRIOV,
    SRIOV_DEVICE,
    VGPU,
    generate_bytedance_like,
    generate_evacuable,
)
from tests.conftest import kronos_cli, run_checker

LEGACY = ("vcpus", "memory_mb", "disk_gb")
ALL_ON: dict[str, Any] = {"pinned": 0.25, "numa": 2, "numa_vms": 0.3, "traits": 0.4, "devices": 0.15}


def holdings(v: kronos.VM) -> dict[str, float]:
    """What the VM holds on its host (FORMATS §4: resources replace the flavor's three)."""
    if v.resources is not None:
        return dict(v.resources)
    return {"vcpus": v.flavor.vcpus, "memory_mb": v.flavor.memory_mb, "disk_gb": v.flavor.disk_gb}


def assert_consistent(snap: kronos.Snapshot) -> None:
    """Every class of every host and every NUMA cell holds what its VMs take; traits hold."""
    hosts = {h.name: h for h in snap.hosts}
    used: dict[str, Counter[str]] = {h.name: Counter() for h in snap.hosts}
    cell_used: dict[tuple[str, int], list[float]] = {
        (h.name, c.id): [0.0, 0.0] for h in snap.hosts for c in h.numa_cells or ()
    }
    for v in snap.vms:
        held = holdings(v)
        used[v.host].update(held)
        h = hosts[v.host]
        assert set(v.required_traits or ()) <= set(h.traits or ()), (v.id, v.required_traits)
        assert not set(v.forbidden_traits or ()) & set(h.traits or ()), (v.id, v.forbidden_traits)
        if v.numa_cells:
            n = len(v.numa_cells)
            assert len(set(v.numa_cells)) == n
            vcpus = held.get(PCPU, 0.0) + held.get("vcpus", 0.0)
            for c in v.numa_cells:
                cell = cell_used[v.host, c]  # KeyError: a cell its host does not have
                cell[0] += vcpus / n
                cell[1] += held["memory_mb"] / n
    for name, h in hosts.items():
        capacity = {r: getattr(h.capacity, r) for r in LEGACY} | (h.capacity.classes or {})
        for r, amount in used[name].items():
            if amount > 0:
                assert r in capacity, (name, r)
                assert amount <= capacity[r], (name, r, amount, capacity[r])
        for c in h.numa_cells or ():
            assert cell_used[name, c.id][0] <= c.vcpus and cell_used[name, c.id][1] <= c.memory_mb
    assert all(x > 0 for h in snap.hosts for x in (h.capacity.classes or {}).values())  # absent, not 0


def assert_check_py_clean(tmp: Path, snap: kronos.Snapshot) -> None:
    """check.py reads the snapshot without a data error or an over-capacity note (when present)."""
    kronos.dump(snap, tmp / "s.json")
    digest = kronos.load_snapshot(tmp / "s.json").digest
    assert digest is not None
    empty = kronos.Plan(created_at=snap.taken_at, snapshot_digest=digest)
    result = run_checker(tmp, snap, empty)
    if result is None:
        return
    assert result["data_errors"] == []
    assert result["notes"] == []
    assert result["violations"] == []


def vms_with(snap: kronos.Snapshot, field: str) -> list[kronos.VM]:
    return [v for v in snap.vms if getattr(v, field)]


# ------------------------------------------------------------------ unchanged


# sha256 of `kronos.dump` of these, as the generator wrote them before the §4 options
# existed (commit 507a5d9): the benchmarks and every test built on a seed keep their world
BEFORE = {
    "30x900-het-2agg": (
        {"hosts": 30, "vms": 900, "groups": 24, "seed": 42, "aggregates": 2, "heterogeneous": True},
        "0dd2ab4f30129a59d4e9dca7d4e9fca2a1eee8dc69da044cbd6dc44968b78e3a",
    ),
    "20x400-odd-hosts": (
        {
            "hosts": 20,
            "vms": 400,
            "groups": 10,
            "seed": 7,
            "down": 2,
            "disabled": 1,
            "unassigned": 3,
            "overlapping": True,
            "aggregates": 3,
            "missing_weights": 0.1,
        },
        "ce4e1e897226d37d74590cebee60957c083d9fb048c0091b42e5e7714d8b290c",
    ),
    "8x3000-full": (
        {"hosts": 8, "vms": 3000, "groups": 5, "seed": 3, "fill": 0.9},
        "c654545f364ee36f768b1079122c8e6e1fa7e6309be496f4408b2e763f18b016",
    ),
}


@pytest.mark.parametrize("case", sorted(BEFORE))
def test_without_the_new_options_a_seed_gives_the_bytes_it_gave_before(tmp_path: Path, case: str) -> None:
    kw, digest = BEFORE[case]
    off = kronos.generate(**kw, pinned=0.0, numa=0, numa_vms=0.0, traits=0.0, devices=0.0)
    assert off == kronos.generate(**kw)
    kronos.dump(off, tmp_path / "s.json")
    assert hashlib.sha256((tmp_path / "s.json").read_bytes()).hexdigest() == digest
    assert not any(h.traits or h.numa_cells or h.capacity.classes for h in off.hosts)
    assert not any(
        v.resources or v.required_traits or v.forbidden_traits or v.numa_cells or v.devices for v in off.vms
    )


def test_the_evacuable_world_is_unchanged(tmp_path: Path) -> None:
    kronos.dump(generate_evacuable(seed=3), tmp_path / "e.json")
    digest = hashlib.sha256((tmp_path / "e.json").read_bytes()).hexdigest()
    assert digest == "0ced8547625cc24c3a5f1c01496264177b0376a3d38986bb855a7487796e83b6"


# ------------------------------------------------------------------ each option


def test_pinned_vms_hold_pcpu_on_the_hosts_that_dedicate_cores(tmp_path: Path) -> None:
    snap = kronos.generate(hosts=40, vms=3000, groups=10, seed=11, pinned=0.25)
    pinned = [v for v in snap.vms if v.flavor.extra_specs.get("hw:cpu_policy") == "dedicated"]
    assert 0.2 < len(pinned) / len(snap.vms) < 0.3
    for v in pinned:
        assert v.resources == {
            PCPU: v.flavor.vcpus,
            "memory_mb": v.flavor.memory_mb,
            "disk_gb": v.flavor.disk_gb,
        }
        assert v.numa_cells is None  # no cells without --numa
    assert all(v.resources is None for v in snap.vms if v not in pinned)
    with_pcpu = {h.name for h in snap.hosts if (h.capacity.classes or {}).get(PCPU, 0) > 0}
    assert len(with_pcpu) == 20  # pcpu_hosts 0.5 of 40
    assert {v.host for v in pinned} <= with_pcpu
    for h in snap.hosts:  # dedicated cores leave shared ones, overcommitted 4:1
        assert h.capacity.vcpus > 0 and h.capacity.vcpus % 4 == 0
    assert_consistent(snap)
    assert_check_py_clean(tmp_path, snap)

    everywhere = kronos.generate(hosts=12, vms=600, groups=0, seed=11, pinned=0.1, pcpu_hosts=1.0)
    assert all((h.capacity.classes or {}).get(PCPU, 0) > 0 for h in everywhere.hosts)
    assert_consistent(everywhere)


@pytest.mark.parametrize("cells", [1, 2, 4])
def test_numa_cells_split_each_host_and_hold_their_vms(tmp_path: Path, cells: int) -> None:
    snap = kronos.generate(hosts=30, vms=2500, groups=10, seed=cells, pinned=0.2, numa=cells, numa_vms=0.3)
    for h in snap.hosts:
        assert h.numa_cells is not None and [c.id for c in h.numa_cells] == list(range(cells))
        vcpus = h.capacity.vcpus + (h.capacity.classes or {}).get(PCPU, 0.0)
        for c in h.numa_cells:
            assert c.vcpus == vcpus // cells and c.memory_mb == h.capacity.memory_mb // cells
    placed = vms_with(snap, "numa_cells")
    pinned = [v for v in snap.vms if v.resources and PCPU in v.resources]
    assert {v.id for v in pinned} <= {v.id for v in placed}  # a pinned guest has a NUMA topology
    assert len(placed) > len(pinned)  # and so do some of the others
    for v in placed:
        assert v.numa_cells is not None
        assert v.flavor.extra_specs["hw:numa_nodes"] == str(len(v.numa_cells))
        assert len(v.numa_cells) == (2 if cells >= 2 and v.flavor.vcpus >= 16 else 1)
    spans = Counter(len(v.numa_cells or ()) for v in placed)
    assert spans[1] > spans[2] > 0 if cells >= 2 else set(spans) == {1}
    assert_consistent(snap)
    assert_check_py_clean(tmp_path, snap)


def test_hosts_without_vm_placement_are_valid_today() -> None:
    """Host-side §4 facts bind nothing alone: the current validator accepts them."""
    snap = kronos.generate(hosts=10, vms=300, groups=4, seed=2, numa=2)
    assert all(h.numa_cells for h in snap.hosts) and not vms_with(snap, "numa_cells")
    assert kronos.validate(snap) == []


def cpu_traits(h: kronos.Host) -> frozenset[str]:
    return frozenset(t for t in h.traits or () if t.startswith("HW_CPU_X86_"))


def test_traits_nest_by_generation_mix_in_aggregates_and_bind_vms(tmp_path: Path) -> None:
    snap = kronos.generate(hosts=48, vms=3000, groups=10, seed=5, aggregates=3, unassigned=4, traits=0.3)
    generations = [frozenset().union(*CPU_GENERATIONS[: g + 1]) for g in range(len(CPU_GENERATIONS))]
    hosts = {h.name: h for h in snap.hosts}
    for h in snap.hosts:
        assert cpu_traits(h) in generations
    for agg in snap.aggregates:
        assert len({cpu_traits(hosts[n]) for n in agg.hosts}) >= 2, agg.name
    # so a live migration may need a CPU trait the destination lacks
    assert any(
        cpu_traits(hosts[a]) - cpu_traits(hosts[b])
        for agg in snap.aggregates
        for a in agg.hosts
        for b in agg.hosts
    )
    all_traits = Counter(t for h in snap.hosts for t in h.traits or ())
    for custom, _ in CUSTOM_TRAITS:
        assert 0 < all_traits[custom] < len(snap.hosts)
    assert 0 < all_traits["HW_CPU_HYPERTHREADING"] < len(snap.hosts)
    required = vms_with(snap, "required_traits")
    forbidden = vms_with(snap, "forbidden_traits")
    assert 0.25 < len(required) / len(snap.vms) < 0.35
    assert 0.3 * len(required) / 4 < len(forbidden) < 2 * len(required) / 4
    assert all(t.startswith("CUSTOM_") for v in forbidden for t in v.forbidden_traits or ())
    assert Counter(len(v.required_traits or ()) for v in required)[2] > 0
    demanding = [
        v for v in required if any(t.startswith("HW_CPU_X86_AVX512") for t in v.required_traits or ())
    ]
    assert demanding  # some need a newer generation than the aggregate's oldest
    assert_consistent(snap)
    assert_check_py_clean(tmp_path, snap)


def test_devices_hold_their_class_on_hosts_that_have_it(tmp_path: Path) -> None:
    snap = kronos.generate(hosts=40, vms=3000, groups=10, seed=8, devices=0.2)
    with_devices = vms_with(snap, "devices")
    assert 0.15 < len(with_devices) / len(snap.vms) < 0.25
    kinds: Counter[tuple[str, bool | None]] = Counter()
    for v in with_devices:
        assert v.resources is not None and v.devices is not None
        gpus, vfs = v.devices.count(GPU_DEVICE), v.devices.count(SRIOV_DEVICE)
        assert gpus + vfs == len(v.devices) and (gpus == 0 or vfs == 0)
        assert v.resources.get(VGPU, 0) == gpus and v.resources.get(SRIOV, 0) == vfs
        assert v.resources["vcpus"] == v.flavor.vcpus
        assert v.flavor.extra_specs.get("resources:VGPU") == (str(gpus) if gpus else None)
        kinds[GPU_DEVICE if gpus else SRIOV_DEVICE, v.live_migratable_devices] += 1
    assert all(kinds[k, m] > 0 for k in (GPU_DEVICE, SRIOV_DEVICE) for m in (True, None))
    assert all(v.live_migratable_devices is None for v in snap.vms if not v.devices)
    assert sum(VGPU in (h.capacity.classes or {}) for h in snap.hosts) == 10
    assert sum(SRIOV in (h.capacity.classes or {}) for h in snap.hosts) == 24
    assert_consistent(snap)
    assert_check_py_clean(tmp_path, snap)


# ------------------------------------------------------------------ together


SWEEP = [
    {"hosts": 24, "vms": 1500, "groups": 12, "seed": 1, **ALL_ON},
    {"hosts": 30, "vms": 2400, "groups": 8, "seed": 2, "heterogeneous": True, "aggregates": 3, "fill": 0.9, **ALL_ON},
    {"hosts": 20, "vms": 1200, "groups": 6, "seed": 3, "down": 2, "disabled": 1, "unassigned": 2,
     "overlapping": True, "aggregates": 2, "pinned": 0.5, "pcpu_hosts": 1.0, "numa": 4, "numa_vms": 1.0},
    {"hosts": 10, "vms": 2500, "groups": 4, "seed": 4, "fill": 0.95, "mode": "pack", "pinned": 0.3,
     "numa": 2, "devices": 0.3, "traits": 1.0},
]  # fmt: skip


@pytest.mark.parametrize("kw", SWEEP, ids=lambda kw: f"seed{kw['seed']}")
def test_every_option_together_makes_a_world_nova_would_accept(tmp_path: Path, kw: dict[str, Any]) -> None:
    snap = kronos.generate(**kw)
    assert len(snap.vms) > 0.95 * kw["vms"]
    for field in ("resources", "numa_cells"):
        assert vms_with(snap, field)
    assert_consistent(snap)
    assert_check_py_clean(tmp_path, snap)
    kronos.dump(snap, tmp_path / "r.json")  # loading reads the structure and refuses nothing
    assert kronos.load_snapshot(tmp_path / "r.json") == snap


def test_same_seed_same_world_and_each_option_draws_apart() -> None:
    kw: dict[str, Any] = {"hosts": 20, "vms": 1000, "groups": 6, "seed": 9}
    a = kronos.generate(**kw, **ALL_ON)
    assert a == kronos.generate(**kw, **ALL_ON)
    assert a != kronos.generate(**(kw | {"seed": 10}), **ALL_ON)
    # traits come after placement from a stream of their own: the rest stays as it was
    without = kronos.generate(**kw, **(ALL_ON | {"traits": 0.0}))
    assert [(v.id, v.host, v.numa_cells, v.resources) for v in a.vms] == [
        (v.id, v.host, v.numa_cells, v.resources) for v in without.vms
    ]
    assert vms_with(a, "required_traits") and not vms_with(without, "required_traits")


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"pinned": 1.5}, "pinned must be within [0, 1]"),
        ({"devices": -0.1}, "devices must be within [0, 1]"),
        ({"pinned": 0.2, "pcpu_hosts": 0.0}, "pcpu_hosts must be within (0, 1]"),
        ({"numa": -1}, "numa (cells per host) must be >= 0"),
        ({"numa_vms": 0.5}, "numa_vms places VMs on NUMA cells: it needs numa >= 1"),
        ({"skew": 400.0}, "skew must be within [0, 10], got 400.0"),  # was NaN shares, a traceback
    ],
)
def test_nonsense_options_are_refused_by_name(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        kronos.generate(hosts=4, vms=20, groups=0, **kw)


# ------------------------------------------------------------------ ByteDance-like


def free_per_cell(snap: kronos.Snapshot) -> dict[str, list[float]]:
    free = {h.name: [c.vcpus for c in h.numa_cells or ()] for h in snap.hosts}
    for v in snap.vms:
        for c in v.numa_cells or ():
            free[v.host][c] -= v.flavor.vcpus / len(v.numa_cells or ())
    return free


def test_bytedance_like_cluster_has_vms_on_cells_and_fragmented_free_vcpus(tmp_path: Path) -> None:
    snap = generate_bytedance_like(0)
    assert (len(snap.hosts), len(snap.vms)) == (279, 2089)
    for h in snap.hosts:
        assert [(c.vcpus, c.memory_mb) for c in h.numa_cells or ()] == [(88, 368640)] * 2
    assert all(v.numa_cells for v in snap.vms)
    one_cell = [v for v in snap.vms if len(v.numa_cells or ()) == 1]
    assert len(one_cell) > 0.6 * len(snap.vms)
    assert all(len(v.numa_cells or ()) == 2 for v in snap.vms if v.flavor.vcpus >= 32)
    allocated = sum(v.flavor.vcpus for v in snap.vms) / sum(h.capacity.vcpus for h in snap.hosts)
    assert allocated > 0.85
    # the trap for a host-level planner: room for a 16-vCPU guest on the host, on no cell of it
    free = free_per_cell(snap)
    trapped = [n for n, cells in free.items() if sum(cells) >= 16 and max(cells) < 16]
    assert len(trapped) > 0.25 * len(snap.hosts)
    assert_consistent(snap)
    assert_check_py_clean(tmp_path, snap)


# ------------------------------------------------------------------ CLI


def test_cli_flags_produce_the_library_world(tmp_path: Path) -> None:
    out = tmp_path / "x.json"
    flags = ["--pinned", "0.25", "--numa", "2", "--numa-vms", "0.3", "--traits", "0.4", "--devices", "0.15"]
    proc = kronos_cli(
        "generate", "--hosts", "12", "--vms", "400", "--groups", "4", "--seed", "6", *flags, "-o", str(out)
    )
    assert proc.returncode == 0, proc.stderr
    assert kronos.load_snapshot(out) == kronos.generate(hosts=12, vms=400, groups=4, seed=6, **ALL_ON)

    bd = tmp_path / "bd.json"
    proc = kronos_cli("generate", "--bytedance-like", "--seed", "3", "-o", str(bd))
    assert proc.returncode == 0, proc.stderr
    assert kronos.load_snapshot(bd) == generate_bytedance_like(3)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--numa-vms", "0.5"], "--numa-vms places VMs on NUMA cells: give --numa CELLS too"),
        (["--pinned", "0.2", "--pcpu-hosts", "0"], "Invalid value for '--pcpu-hosts'"),
        (["--numa", "-1"], "Invalid value for '--numa'"),
        (["--traits", "nan"], "'--traits': 'nan' is not a finite number"),
    ],
)
def test_cli_refuses_nonsense_flags(tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "x.json"
    proc = kronos_cli("generate", "--hosts", "4", "--vms", "20", *args, "-o", str(out))
    assert proc.returncode == 64
    assert message in proc.stderr
    assert not out.exists()
