"""Pinned CPUs, traits and nested providers, recorded from a real Nova, planned, and executed.

The cloud (tests/nova_cloud.py) has six fake-driver computes. Two get PCPU
inventory and one gets custom traits through the Placement API, as an
operator's tooling sets them (the fake driver reports neither; Nova's
scheduler decides from Placement as it does for libvirt hosts, with the
VCPU fallback for pinned guests off). One runs Nova's fake driver with a
nested child provider (CUSTOM_MAGIC). Flavors: ``hw:cpu_policy=dedicated``,
``trait:CUSTOM_X=required``, ``resources1:CUSTOM_MAGIC=1``, and an image
with ``trait:CUSTOM_IMG=required``.

``kronos record`` must capture all of it field by field, as Placement and
Nova have it; then a plan may move the pinned guest only to the host with
PCPU room (the emptier host without PCPU would be the naive choice), and
``kronos execute`` carries the move out: Nova migrates it there and
Placement holds its PCPU there.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

import kronos
from kronos.adapters.config import load_config
from kronos.adapters.nova import NovaReader, connect
from kronos.adapters.prometheus import PrometheusClient
from kronos.adapters.record import record
from tests import nova_server as ns
from tests import promdata
from tests.conftest import ROOT, kronos_cli
from tests.executing import POLL_INTERVAL, make_plan
from tests.prometheus_server import import_history, serve

pytestmark = pytest.mark.nova

AT = datetime.fromtimestamp(promdata.END, UTC)
NESTED = "fake.MediumFakeDriverWithNestedCustomResources"
PINNED_HOSTS = ["pin-1", "pin-2", "pin-3"]  # agg-pin: PCPU on pin-1 (full) and pin-3 (free), none on pin-2
OTHER_HOSTS = ["gold-1", "plain-1", "nest-1"]  # agg-other: CUSTOM_X/CUSTOM_IMG on gold-1; nest-1 nested
HOSTS = PINNED_HOSTS + OTHER_HOSTS
IMAGE3 = "76fa36fc-c930-4bf3-8c8a-ea2a2420deb6"  # the Glance fixture's third image
PLACEMENT = "placement 1.14"
PCPU = 4
#: host load (cpu, memory) by position in HOSTS: pin-1 is hot, pin-2 the coolest, pin-3 cool
LOAD = {0: (0.9, 0.9), 1: (0.05, 0.05), 2: (0.3, 0.3)}
#: what the operator's tooling knows of NUMA (Nova's API does not show it)
NUMA_FILE = """\
hosts:
  pin-1: [{id: 0, vcpus: 4, memory_mb: 4096}, {id: 1, vcpus: 4, memory_mb: 4096}]
  pin-3: [{id: 0, vcpus: 4, memory_mb: 4096}, {id: 1, vcpus: 4, memory_mb: 4096}]
vms:
  PINNED: [1]
"""


class World:
    """What the test created, to compare the recording with."""

    def __init__(self, cloud: ns.Cloud) -> None:
        self.cloud = cloud
        self.conn = c = cloud.connect()
        self.rp = {p["name"]: p for p in self.placement("get", "/resource_providers")["resource_providers"]}
        for host in ("pin-1", "pin-3"):
            self.add_pcpu(host)
        for trait in ("CUSTOM_X", "CUSTOM_IMG"):
            self.placement("put", f"/traits/{trait}")
        self.add_traits("gold-1", "CUSTOM_X", "CUSTOM_IMG")
        ns.call(
            c, "post", f"/images/{IMAGE3}/metadata", {"metadata": {"trait:CUSTOM_IMG": "required"}}, "2.35"
        )
        self.flavors = {
            "pinned": ns.flavor(c, "pinned", PCPU, 512, 1, {"hw:cpu_policy": "dedicated"}),
            "gold": ns.flavor(c, "gold", 1, 256, 1, {"trait:CUSTOM_X": "required"}),
            "magic": ns.flavor(c, "magic", 1, 256, 1, {"resources1:CUSTOM_MAGIC": "1"}),
            "small": ns.flavor(c, "small", 1, 256, 1),
        }
        ns.aggregate(c, "agg-pin", PINNED_HOSTS)
        ns.aggregate(c, "agg-other", OTHER_HOSTS)
        boots = [
            ns.Boot("pinned-0", self.flavors["pinned"], host="pin-1"),
            ns.Boot("gold-0", self.flavors["gold"], host="gold-1"),
            ns.Boot("magic-0", self.flavors["magic"], host="nest-1"),
            ns.Boot("small-0", self.flavors["small"], host="plain-1"),
        ]
        self.ids = ns.boot(c, boots)
        # an image is chosen per boot only through the API body: boot the image-trait server by hand
        body = {"server": {"name": "img-0", "imageRef": IMAGE3, "flavorRef": self.flavors["gold"]}}
        body["server"] |= {"networks": "none", "host": "gold-1"}
        self.ids["img-0"] = ns.call(c, "post", "/servers", body)["server"]["id"]
        ns.wait_status(c, self.ids["img-0"], "ACTIVE")
        self.servers = {s["id"]: s for s in ns.call(c, "get", "/servers/detail?all_tenants=1")["servers"]}

    def placement(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        headers = {"X-Auth-Token": "admin", "OpenStack-API-Version": PLACEMENT}
        resp = requests.request(
            method, f"{self.cloud.placement}{path}", json=body, headers=headers, timeout=30
        )
        assert resp.status_code < 300, f"{method} {path}: {resp.status_code} {resp.text[:300]}"
        return resp.json() if resp.content else None

    def add_pcpu(self, host: str) -> None:
        """What ``[compute] cpu_dedicated_set`` makes the libvirt driver report: PCPU beside VCPU."""
        uuid = self.rp[host]["uuid"]
        inv = self.placement("get", f"/resource_providers/{uuid}/inventories")
        pcpu = {"total": PCPU, "reserved": 0, "min_unit": 1, "max_unit": PCPU, "step_size": 1}
        body = {
            "resource_provider_generation": inv["resource_provider_generation"],
            "inventories": {**inv["inventories"], "PCPU": {**pcpu, "allocation_ratio": 1.0}},
        }
        self.placement("put", f"/resource_providers/{uuid}/inventories", body)

    def add_traits(self, host: str, *traits: str) -> None:
        uuid = self.rp[host]["uuid"]
        have = self.placement("get", f"/resource_providers/{uuid}/traits")
        body = {
            "resource_provider_generation": have["resource_provider_generation"],
            "traits": sorted({*have["traits"], *traits}),
        }
        self.placement("put", f"/resource_providers/{uuid}/traits", body)

    def tree(self, host: str) -> list[str]:
        """The host's providers: its root and every descendant."""
        root = self.rp[host]["uuid"]
        listed = self.placement("get", f"/resource_providers?in_tree={root}")["resource_providers"]
        return [p["uuid"] for p in listed]

    def traits_of(self, host: str) -> set[str]:
        return {
            t
            for u in self.tree(host)
            for t in self.placement("get", f"/resource_providers/{u}/traits")["traits"]
        }

    def allocation(self, server: str) -> dict[str, dict[str, int]]:
        """Placement's allocation of one server, by provider UUID (the per-instance read Kronos avoids)."""
        found = self.placement("get", f"/allocations/{server}")["allocations"]
        return {rp: dict(a["resources"]) for rp, a in found.items()}

    def truth(self) -> promdata.Truth:
        return promdata.from_servers(self.servers.values(), HOSTS, lambda k, n: LOAD.get(k, (0.3, 0.3)), 2)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    hosts = [f"{h}={NESTED}" if h == "nest-1" else h for h in HOSTS]
    with ns.serve(hosts, tmp_path_factory.mktemp("nova")) as cloud:
        yield World(cloud)


@pytest.fixture(scope="module")
def prom(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("prometheus")
    with serve(import_history(promdata.openmetrics(world.truth()), work), work) as url:
        yield url


@pytest.fixture(scope="module")
def conf(world: World, prom: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("conf")
    (d / "policies.yaml").write_text((ROOT / "etc" / "kronos" / "policies.yaml.sample").read_text())
    (d / "numa.yaml").write_text(NUMA_FILE.replace("PINNED", world.ids["pinned-0"]))
    path = d / "kronos.conf"
    path.write_text(
        "[engine]\naggregates = agg-pin, agg-other\ndry_run = false\n"
        f"[prometheus]\nurl = {prom}\n"
        + world.cloud.conf("admin", numa_topology_file="numa.yaml")
        + f"[executor]\nstagger_seconds = 0\npoll_interval = {POLL_INTERVAL}\nretry_backoff = 0.1\nmax_retries = 0\n"
        + "max_plan_age = 315360000\n"  # plans are made at the exporter history's end, long ago
    )
    return path


@pytest.fixture(scope="module")
def snapshot(conf: Path) -> kronos.Snapshot:
    config = load_config(str(conf), {})
    return record(config, NovaReader(connect(config.nova)), PrometheusClient(config.prometheus.url), AT)


def test_every_placement_class_and_trait_of_a_host_and_its_children_is_recorded(
    snapshot: kronos.Snapshot, world: World
) -> None:
    hosts = {h.name: h for h in snapshot.hosts}
    assert set(hosts) == set(HOSTS)
    for name, h in hosts.items():
        # MediumFakeDriver: 10 VCPU x 4.0, 8192 MB - 512 reserved, 1028 GB
        assert (h.capacity.vcpus, h.capacity.memory_mb, h.capacity.disk_gb) == (40.0, 7680.0, 1028.0)
        classes = {"PCPU": float(PCPU)} if name in ("pin-1", "pin-3") else None
        if name == "nest-1":
            classes = {"CUSTOM_MAGIC": 10.0}  # the nested child's inventory counts for its root's host
        assert h.capacity.classes == classes, name
        assert set(h.traits or ()) == world.traits_of(name), name
    assert {"CUSTOM_X", "CUSTOM_IMG"} <= set(hosts["gold-1"].traits or ())
    assert not {"CUSTOM_X", "CUSTOM_IMG"} & set(hosts["plain-1"].traits or ())
    assert "OWNER_NOVA" in (hosts["nest-1"].traits or ())  # the child's trait
    assert len(world.tree("nest-1")) == 2


def test_what_each_vm_holds_and_requires_is_recorded_as_nova_has_it(
    snapshot: kronos.Snapshot, world: World
) -> None:
    vms = {v.name: v for v in snapshot.vms}
    assert set(vms) == {"pinned-0", "gold-0", "magic-0", "small-0", "img-0"}
    expected = {
        "pinned-0": ({"PCPU": 4.0, "memory_mb": 512.0, "disk_gb": 1.0}, None),
        "gold-0": (None, ("CUSTOM_X",)),  # holds its flavor's sizes: resources left out
        "magic-0": ({"CUSTOM_MAGIC": 1.0, "vcpus": 1.0, "memory_mb": 256.0, "disk_gb": 1.0}, None),
        "small-0": (None, None),
        "img-0": (None, ("CUSTOM_IMG", "CUSTOM_X")),  # the image's trait and the flavor's
    }
    for name, vm in vms.items():
        assert (vm.resources, vm.required_traits) == expected[name], name
        assert vm.forbidden_traits is None and vm.devices is None
        # the recorded resources are Placement's allocation of the instance, read the expensive way
        held: dict[str, float] = {}
        for amounts in world.allocation(vm.id).values():
            for rc, x in amounts.items():
                key = kronos.core.model.RESOURCE_ALIASES.get(rc, rc)
                held[key] = held.get(key, 0.0) + x
        f = vm.flavor
        assert (vm.resources or {"vcpus": f.vcpus, "memory_mb": f.memory_mb, "disk_gb": f.disk_gb}) == held
    assert vms["pinned-0"].flavor.extra_specs == {"hw:cpu_policy": "dedicated"}


def test_numa_cells_come_from_the_operators_file(snapshot: kronos.Snapshot, world: World) -> None:
    hosts = {h.name: h for h in snapshot.hosts}
    assert [(c.id, c.vcpus, c.memory_mb) for c in hosts["pin-3"].numa_cells or ()] == [
        (0, 4.0, 4096.0),
        (1, 4.0, 4096.0),
    ]
    assert hosts["pin-2"].numa_cells is None
    assert {v.name: v.numa_cells for v in snapshot.vms}["pinned-0"] == (1,)
    assert (snapshot.source or {})["problems"] == []


def test_the_recording_round_trips_and_stays_within_its_call_budget(
    snapshot: kronos.Snapshot, tmp_path: Path
) -> None:
    path = tmp_path / "s.json"
    kronos.dump(snapshot, path)
    assert kronos.load_snapshot(path) == snapshot
    doc = json.loads(path.read_text())
    pin1 = next(h for h in doc["hosts"] if h["name"] == "pin-1")
    assert pin1["capacity"] == {"vcpus": 40.0, "memory_mb": 7680.0, "disk_gb": 1028.0, "PCPU": 4.0}
    # aggregates, services, hypervisors, the provider list, 3 per provider (6 roots, 1 child),
    # servers, images, groups
    assert (snapshot.source or {})["nova_calls"] == 4 + 3 * 7 + 3


def _execute(plan: Path, conf: Path, tmp: Path) -> tuple[Any, list[dict[str, Any]]]:
    run = kronos_cli(
        "execute",
        str(plan),
        "--config",
        str(conf),
        "--results",
        str(tmp / "results.jsonl"),
        "--state",
        str(tmp / "state.json"),
    )
    results = tmp / "results.jsonl"
    assert results.exists(), run.stdout + run.stderr
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    return run, rows


def test_a_plan_moves_the_pinned_vm_only_where_pcpu_is_free_and_nova_agrees(
    conf: Path, world: World, tmp_path: Path, checker: Any
) -> None:
    pinned = world.ids["pinned-0"]
    # first, that the naive choice is wrong: Nova refuses the empty host without PCPU
    naive = tmp_path / "naive"
    naive.mkdir()
    kronos.dump(make_plan([(1, pinned, "pin-1", "pin-2")]), naive / "plan.json")
    run, rows = _execute(naive / "plan.json", conf, naive)
    assert run.returncode != 0 and [r["outcome"] for r in rows] == ["MigrationFailed"], (
        run.stdout + run.stderr
    )
    assert ns.call(world.conn, "get", f"/servers/{pinned}")["server"]["OS-EXT-SRV-ATTR:host"] == "pin-1"
    # then the plan Kronos makes from what it recorded
    snap_path, plan_path = tmp_path / "s.json", tmp_path / "p.json"
    at = AT.strftime("%Y-%m-%dT%H:%M:%SZ")
    rec = kronos_cli(
        "record", "--config", str(conf), "--aggregate", "agg-pin", "--at", at, "-o", str(snap_path)
    )
    assert rec.returncode == 0, rec.stderr
    out = kronos_cli("replay", str(snap_path), "--budget", "unlimited", "-o", str(plan_path))
    assert out.returncode == 0, out.stderr
    snap, plan = kronos.load_snapshot(snap_path), kronos.load_plan(plan_path)
    checker(snap, plan)
    steps = [s for s in plan.steps if s.instance == pinned]
    assert [(s.source, s.destination) for s in steps] == [("pin-1", "pin-3")], plan.steps  # not pin-2
    run, rows = _execute(plan_path, conf, tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert [r["outcome"] for r in rows if r["instance"] == pinned] == ["Succeeded"]
    assert ns.call(world.conn, "get", f"/servers/{pinned}")["server"]["OS-EXT-SRV-ATTR:host"] == "pin-3"
    migrations = ns.call(world.conn, "get", f"/os-migrations?instance_uuid={pinned}", mv="2.59")["migrations"]
    done = [m["dest_compute"] for m in migrations if m["status"] == "completed"]
    assert done == ["pin-3"] and sorted(m["status"] for m in migrations) == ["completed", "error"]
    assert world.allocation(pinned) == {
        world.rp["pin-3"]["uuid"]: {"PCPU": 4, "MEMORY_MB": 512, "DISK_GB": 1}
    }
