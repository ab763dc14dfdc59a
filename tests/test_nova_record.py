"""The recorder's FORMATS §4 fields from hand-made Nova worlds, and ``[nova] numa_topology_file``.

What the real Nova gives is in tests/test_nova_placement.py; here, the
cases a small real cloud cannot show cheaply: a VM Placement holds nothing
for, an image that is gone, every way the NUMA file can disagree with Nova,
and every way it can be malformed (exit 65 naming file, path and value,
before a single call to Nova).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import kronos
from kronos.adapters.nova import Aggregate, Capacity, NovaWorld, Server, Service
from kronos.adapters.numa_file import NumaTopology, load
from kronos.adapters.record import build_snapshot
from kronos.adapters.scores import PolicyReading
from kronos.core.model import NumaCell, Policy
from kronos.errors import NoInputError, ValidationError
from tests.conftest import ROOT, kronos_cli

AT = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
POLICY = Policy(name="cpu", mode="spread", weight=1.0, threshold=0.05)
HELD = {"VCPU": 2.0, "MEMORY_MB": 2048.0, "DISK_GB": 20.0}


def _flavor(vcpus: int = 2, **extra_specs: str) -> dict[str, Any]:
    return {"name": "m1", "vcpus": vcpus, "memory_mb": 2048, "disk_gb": 20, "extra_specs": extra_specs}


def _server(sid: str, host: str, flavor: dict[str, Any], image: str | None = "img") -> Server:
    return Server(sid, sid, host, None, "ACTIVE", None, flavor, "p", image=image)


def _snapshot(
    servers: list[Server],
    allocations: dict[str, dict[str, dict[str, float]]],
    numa: NumaTopology | None = None,
    images: dict[str, dict[str, str]] | None = None,
    capacity: dict[str, Capacity] | None = None,
) -> kronos.Snapshot:
    hosts = ["h1", "h2"]
    world = NovaWorld(
        aggregates=(Aggregate("agg", tuple(hosts), {}),),
        services={h: Service(h, True, True, False) for h in hosts},
        capacity=capacity
        or {
            "h1": Capacity(64, 65536, 500, classes={"PCPU": 8.0, "VGPU": 4.0}),
            "h2": Capacity(64, 65536, 500),
        },
        servers=tuple(servers),
        groups=(),
        traits={"h1": ("CUSTOM_GOLD", "HW_CPU_X86_AVX2"), "h2": ()},
        allocations=allocations,
        images={"img": {}, **(images or {})},
        compute_hosts=frozenset((*hosts, "h3")),
    )
    readings = {"cpu": PolicyReading(POLICY, {"h1": (0.5,), "h2": (0.2,)})}
    return build_snapshot(world, [POLICY], readings, {}, AT, numa=numa)


def _vm(snap: kronos.Snapshot, sid: str) -> kronos.VM:
    return next(v for v in snap.vms if v.id == sid)


def test_placement_facts_become_the_format_4_fields_and_survive_a_round_trip(tmp_path: Path) -> None:
    servers = [
        _server("plain", "h1", _flavor()),
        _server("pinned", "h1", _flavor(**{"hw:cpu_policy": "dedicated"})),
        _server("gpu", "h1", _flavor(**{"resources1:VGPU": "1", "trait:CUSTOM_GOLD": "required"})),
        _server("imaged", "h2", _flavor(**{"trait:CUSTOM_SLOW": "forbidden"}), image="traited"),
    ]
    allocations = {
        "h1": {
            "plain": dict(HELD),
            "pinned": {"PCPU": 2.0, "MEMORY_MB": 2048.0, "DISK_GB": 20.0},
            "gpu": {**HELD, "VGPU": 1.0},
            "a-migration-record": dict(HELD),  # a consumer that is no server: not a VM
        },
        "h2": {"imaged": dict(HELD)},
    }
    snap = _snapshot(servers, allocations, images={"traited": {"trait:CUSTOM_AVX": "required"}})
    h1 = next(h for h in snap.hosts if h.name == "h1")
    assert h1.capacity.classes == {"PCPU": 8.0, "VGPU": 4.0}
    assert h1.traits == ("CUSTOM_GOLD", "HW_CPU_X86_AVX2")
    assert next(h for h in snap.hosts if h.name == "h2").traits is None  # Placement has none
    assert _vm(snap, "plain").resources is None  # its flavor's three sizes: nothing to add
    assert _vm(snap, "pinned").resources == {"PCPU": 2.0, "disk_gb": 20.0, "memory_mb": 2048.0}
    assert _vm(snap, "gpu").resources == {"VGPU": 1.0, "disk_gb": 20.0, "memory_mb": 2048.0, "vcpus": 2.0}
    assert _vm(snap, "gpu").required_traits == ("CUSTOM_GOLD",)
    imaged = _vm(snap, "imaged")
    assert (imaged.required_traits, imaged.forbidden_traits) == (("CUSTOM_AVX",), ("CUSTOM_SLOW",))
    assert _vm(snap, "plain").required_traits is None and _vm(snap, "plain").forbidden_traits is None
    assert {v.id for v in snap.vms} == {"plain", "pinned", "gpu", "imaged"}
    assert (snap.source or {})["problems"] == []
    path = tmp_path / "s.json"
    kronos.dump(snap, path)
    assert kronos.load_snapshot(path) == snap


def test_without_an_allocation_a_vm_is_sized_by_novas_rules_and_the_snapshot_says_so() -> None:
    pinned = _server("pinned", "h1", _flavor(4, **{"hw:cpu_policy": "dedicated"}))
    gone = _server("orphan", "h2", _flavor(), image="deleted-image")
    snap = _snapshot([pinned, gone], {"h1": {}, "h2": {"orphan": dict(HELD)}})
    assert _vm(snap, "pinned").resources == {"PCPU": 4.0, "disk_gb": 20.0, "memory_mb": 2048.0}
    problems = (snap.source or {})["problems"]
    assert "VM pinned: Placement holds no allocation for it on h1: sized by its flavor" in problems
    assert any("image deleted-image is not in Nova's image list" in p for p in problems)


def test_a_class_a_newer_placement_has_is_left_out_so_the_snapshot_stays_readable(tmp_path: Path) -> None:
    newer = {**HELD, "NET_FUTURE_UNITS": 3.0}  # not in os-resource-classes 1.1, which this Kronos knows
    capacity = {"h1": Capacity(64, 65536, 500, classes={"NET_FUTURE_UNITS": 9.0, "PCPU": 2.0})}
    snap = _snapshot([_server("vm", "h1", _flavor())], {"h1": {"vm": newer}}, capacity=capacity)
    assert next(h for h in snap.hosts if h.name == "h1").capacity.classes == {"PCPU": 2.0}
    assert _vm(snap, "vm").resources is None  # what is left is its flavor's three sizes
    assert (snap.source or {})["problems"] == [
        "Placement class NET_FUTURE_UNITS: unknown to this Kronos version, left out"
    ]
    kronos.dump(snap, tmp_path / "s.json")
    assert kronos.load_snapshot(tmp_path / "s.json") == snap


def _numa(hosts: dict[str, list[tuple[int, float]]], vms: dict[str, tuple[int, ...]]) -> NumaTopology:
    cells = {h: tuple(NumaCell(i, v, 8192.0) for i, v in cs) for h, cs in hosts.items()}
    return NumaTopology(cells, vms, "numa.yaml")


def test_numa_cells_are_recorded_where_the_file_agrees_with_nova() -> None:
    two = _flavor(4, **{"hw:numa_nodes": "2"})
    servers = [
        _server("ok", "h1", two),
        _server("pinned", "h1", _flavor(2, **{"hw:cpu_policy": "dedicated"})),
        _server("floating", "h1", _flavor()),  # no NUMA topology in Nova
        _server("miscounted", "h1", two),
        _server("no-such-cell", "h1", two),
        _server("unlisted", "h1", two),
        _server("moved", "h2", two),  # the file still has it where h2 has no cells
    ]
    numa = _numa(
        {"h1": [(0, 16.0), (1, 16.0)], "h3": [(0, 8.0)], "hx-typo": [(0, 8.0)]},
        {
            "ok": (0, 1),
            "pinned": (1,),
            "floating": (0,),
            "miscounted": (0,),
            "no-such-cell": (0, 2),
            "moved": (0, 1),
            "deleted-long-ago": (0,),
        },
    )
    allocations = {"h1": {s.id: dict(HELD) for s in servers[:6]}, "h2": {"moved": dict(HELD)}}
    snap = _snapshot(servers, allocations, numa)
    h1 = next(h for h in snap.hosts if h.name == "h1")
    assert h1.numa_cells == (NumaCell(0, 16.0, 8192.0), NumaCell(1, 16.0, 8192.0))
    assert next(h for h in snap.hosts if h.name == "h2").numa_cells is None
    cells = {v.id: v.numa_cells for v in snap.vms}
    assert cells == {
        "ok": (0, 1),
        "pinned": (1,),
        "floating": None,
        "miscounted": None,
        "no-such-cell": None,
        "unlisted": None,
        "moved": None,
    }
    problems = "\n".join((snap.source or {})["problems"])
    assert "numa.yaml: vms.floating = [0]: its flavor and image give it no NUMA topology" in problems
    assert "numa.yaml: vms.miscounted = [0]: 1 cell(s), but its flavor and image ask for 2" in problems
    assert "numa.yaml: vms.no-such-cell = [0, 2]: h1 has no cell 2 (cells 0, 1)" in problems
    assert "VM unlisted has 2 NUMA cell(s) in Nova but numa.yaml names none for it on h1" in problems
    assert "numa.yaml: vms.moved = [0, 1]: its host h2 has no cells in the file" in problems
    assert "numa.yaml: hosts.hx-typo: no compute host of this name in Nova" in problems
    assert "hosts.h3" not in problems  # a compute host outside the scope: nothing to say
    assert "deleted-long-ago" not in problems  # a VM not recorded: the file may lag behind


def _write(tmp_path: Path, text: str, name: str = "numa.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_well_formed_numa_file_loads_yaml_or_json(tmp_path: Path) -> None:
    yaml = "hosts:\n  cmp-1:\n    - {id: 0, vcpus: 16, memory_mb: 257536}\n    - {id: 1, vcpus: 15.5, memory_mb: 0}\nvms:\n  vm-1: [0, 1]\n"
    topology = load(_write(tmp_path, yaml))
    assert topology.hosts == {"cmp-1": (NumaCell(0, 16.0, 257536.0), NumaCell(1, 15.5, 0.0))}
    assert topology.vms == {"vm-1": (0, 1)}
    as_json = load(_write(tmp_path, '{"vms": {"vm-2": [3]}}', "numa.json"))
    assert (as_json.hosts, as_json.vms) == ({}, {"vm-2": (3,)})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("host:\n  cmp-1: []\n", "host: unknown key; did you mean hosts?"),
        (
            "hosts:\n  cmp-1:\n    - {id: 0, vcpu: 4, memory_mb: 1}\n",
            "hosts.cmp-1[0].vcpu: unknown key; did you mean vcpus?",
        ),
        (
            "hosts:\n  cmp-1:\n    - {id: 0, vcpus: -4, memory_mb: 1}\n",
            "hosts.cmp-1[0].vcpus = -4: must be a number >= 0",
        ),
        (
            "hosts:\n  cmp-1:\n    - {id: 0, vcpus: .nan, memory_mb: 1}\n",
            "hosts.cmp-1[0].vcpus = NaN: must be a number >= 0",
        ),
        (
            "hosts:\n  cmp-1:\n    - {id: one, vcpus: 4, memory_mb: 1}\n",
            "hosts.cmp-1[0].id = 'one': must be an integer >= 0",
        ),
        ("hosts:\n  cmp-1:\n    - {id: 0, vcpus: 4}\n", "hosts.cmp-1[0]: missing memory_mb"),
        (
            "hosts:\n  cmp-1:\n    - {id: 0, vcpus: 4, memory_mb: 1}\n    - {id: 0, vcpus: 4, memory_mb: 1}\n",
            "hosts.cmp-1 = [0, 0]: cell ids must be distinct",
        ),
        ("hosts:\n  cmp-1: 4\n", "hosts.cmp-1 = 4: expected a list of cells"),
        ("hosts: [cmp-1]\n", "hosts = ['cmp-1']: expected a mapping of host name → list of cells"),
        ("vms:\n  vm-1: [0, -1]\n", "vms.vm-1 = [0, -1]: expected a list of host cell ids (integers >= 0)"),
        ("vms:\n  vm-1: [1, 1]\n", "vms.vm-1 = [1, 1]: cell ids must be distinct"),
        ("vms:\n  vm-1: true\n", "vms.vm-1 = True: expected a list of host cell ids"),
        ("- cmp-1\n", "(top) = ['cmp-1']: expected a mapping with hosts and/or vms"),
    ],
)
def test_a_malformed_numa_file_names_file_path_and_value(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        load(_write(tmp_path, text))
    assert str(info.value).startswith(f"{tmp_path / 'numa.yaml'}: ")
    assert message in str(info.value)


def test_every_problem_of_a_numa_file_is_reported_at_once(tmp_path: Path) -> None:
    text = "hosts:\n  cmp-1:\n    - {id: 0, vcpus: -1, memroy_mb: 1}\nvms:\n  vm-1: [a]\nextra: 1\n"
    with pytest.raises(ValidationError) as info:
        load(_write(tmp_path, text))
    assert len(info.value.issues) == 5  # vcpus, memroy_mb (unknown), memory_mb (missing), vms.vm-1, extra


def test_a_missing_numa_file_is_no_input(tmp_path: Path) -> None:
    with pytest.raises(NoInputError, match="no such file"):
        load(tmp_path / "absent.yaml")


def _conf(tmp_path: Path, numa: str) -> Path:
    (tmp_path / "policies.yaml").write_text((ROOT / "etc" / "kronos" / "policies.yaml.sample").read_text())
    conf = tmp_path / "kronos.conf"
    conf.write_text(
        "[engine]\naggregates = agg-a\n[nova]\nauth_type = admin_token\ntoken = t\n"
        f"compute_endpoint_override = http://127.0.0.1:9/v2.1\nnuma_topology_file = {numa}\n"
    )
    return conf


def test_record_refuses_a_bad_numa_file_before_calling_nova(tmp_path: Path) -> None:
    """Relative to kronos.conf's folder; exit 65 naming it, 66 when it is missing (never 69: Nova
    at 127.0.0.1:9 is never called)."""
    _write(tmp_path, "hosts:\n  cmp-1:\n    - {id: 0, vcpus: 4, memory: 1}\n")
    out = kronos_cli("record", "--config", str(_conf(tmp_path, "numa.yaml")), "-o", str(tmp_path / "s.json"))
    assert out.returncode == 65, out.stderr
    assert f"{tmp_path / 'numa.yaml'}: 2 problem(s)" in out.stderr
    assert "hosts.cmp-1[0].memory: unknown key; did you mean memory_mb?" in out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "s.json").exists()
    out = kronos_cli("record", "--config", str(_conf(tmp_path, "gone.yaml")), "-o", str(tmp_path / "s.json"))
    assert out.returncode == 66 and f"{tmp_path / 'gone.yaml'}: no such file" in out.stderr


def test_an_allocation_of_a_passthrough_class_is_recorded_as_a_device_that_holds_live_migration() -> None:
    import attrs

    import kronos
    from kronos.adapters.record import _devices

    assert _devices({"vcpus": 4, "memory_mb": 4096, "VGPU": 1}) == ("VGPU:1",)
    assert _devices({"vcpus": 4, "memory_mb": 4096, "SRIOV_NET_VF": 1}) is None  # Nova live-migrates those
    assert _devices(None) is None
    snap = kronos.generate(hosts=6, vms=60, groups=0, seed=2, skew=1.2)
    gpu = attrs.evolve(snap.vms[0], devices=_devices({"PCI_DEVICE": 1}))
    snap = attrs.evolve(snap, vms=(gpu, *snap.vms[1:]))
    plan = kronos.plan(snap, budget="unlimited", min_improvement=0.0)
    assert plan.steps and gpu.id not in {s.instance for s in plan.steps}
