"""The Nova adapter, ``kronos record`` / ``replay`` / ``check-config`` against a real Nova.

A fresh Nova (tests/nova_cloud.py: nova-api, conductor, scheduler, Placement
and fake-driver computes from PyPI, on 127.0.0.1) gets a world built through
its REST API: 7 hosts, two aggregates (one with an availability zone and
extra-spec metadata) and one host in none, flavors with extra specs, swap
and ephemeral disk, server groups of all four policies, tags, metadata, a
disabled and a forced-down host, a Placement inventory an operator changed.
A real Prometheus serves exporter history derived from the same servers
(their UUIDs and libvirt domain names). The recorded snapshot is checked
field by field against what was created; then planned and checked.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from ruamel import yaml

import kronos
from kronos.adapters.config import load_config
from kronos.adapters.nova import NovaReader, connect
from kronos.adapters.prometheus import PrometheusClient
from kronos.adapters.record import record
from tests import nova_server as ns
from tests import promdata
from tests.conftest import ROOT, kronos_cli
from tests.prometheus_server import import_history, serve

pytestmark = pytest.mark.nova

AT = datetime.fromtimestamp(promdata.END, UTC)
HOSTS = [f"cmp-{i}" for i in range(1, 8)]
AGG_A, AGG_B = HOSTS[:3], HOSTS[3:6]  # cmp-7 is in no aggregate
MIB = 1 << 20


class World:
    """What the test created, to compare the recording with."""

    def __init__(self, cloud: ns.Cloud) -> None:
        self.cloud = cloud
        c = cloud.connect()
        self.flavors = {
            "small": (ns.flavor(c, "small", 1, 512, 1), {}),
            "ssd": (ns.flavor(c, "ssd", 2, 1024, 5, {"aggregate_instance_extra_specs:ssd": "true"}), {}),
        }
        eph = c.compute.post(
            "/flavors",
            json={
                "flavor": {
                    "name": "eph",
                    "vcpus": 1,
                    "ram": 256,
                    "disk": 1,
                    "OS-FLV-EXT-DATA:ephemeral": 2,
                    "swap": 512,
                }
            },
            microversion=ns.MV,
        ).json()["flavor"]["id"]
        self.flavors["eph"] = (eph, {})
        ns.aggregate(c, "agg-a", AGG_A, az="az1", ssd="true")
        ns.aggregate(c, "agg-b", AGG_B, tier="bulk")
        self.groups = {
            "web": ("anti-affinity", {"max_server_per_host": 2}),
            "db": ("affinity", {}),
            "cache": ("soft-anti-affinity", {}),
            "batch": ("soft-affinity", {}),
        }
        gid = {name: ns.server_group(c, name, pol, rules) for name, (pol, rules) in self.groups.items()}
        self.group_ids = gid
        plan: list[ns.Boot] = []
        # agg-a is lopsided: most servers on cmp-1
        for i in range(11):
            plan.append(
                ns.Boot(
                    f"a-{i}",
                    self.flavors["ssd" if i % 3 == 0 else "small"][0],
                    host="cmp-1" if i < 7 else "cmp-2",
                    az="az1",
                    tags=("tier-a",),
                    metadata={"role": "app", "n": str(i)},
                )
            )
        plan[0].group = gid["web"]
        plan[1].group = gid["web"]
        plan[2].group = gid["web"]
        plan[2].host = "cmp-2"
        plan[3].tags = ("tier-a", "kronos:pinned")
        for i in range(4):
            plan.append(ns.Boot(f"db-{i}", self.flavors["small"][0], host="cmp-4", group=gid["db"]))
        for i in range(3):
            plan.append(ns.Boot(f"cache-{i}", self.flavors["small"][0], group=gid["cache"]))
        for i in range(3):
            plan.append(ns.Boot(f"batch-{i}", self.flavors["eph"][0], group=gid["batch"], host="cmp-5"))
        plan.append(ns.Boot("bulk-0", self.flavors["small"][0], host="cmp-6"))
        for i in range(3):
            plan.append(ns.Boot(f"loose-{i}", self.flavors["small"][0], host="cmp-7"))
        self.ids = ns.boot(c, plan)
        self.boots = {b.name: b for b in plan}
        self.servers = {s["id"]: s for s in ns.call(c, "get", "/servers/detail?all_tenants=1")["servers"]}
        # an operator's Placement change on cmp-3, a disabled cmp-5, a dead cmp-6
        self.set_vcpu_inventory("cmp-3", reserved=2, ratio=2.0)
        services = {s["host"]: s for s in ns.call(c, "get", "/os-services?binary=nova-compute")["services"]}
        ns.call(
            c,
            "put",
            f"/os-services/{services['cmp-5']['id']}",
            {"status": "disabled", "disabled_reason": "maintenance"},
        )
        ns.call(c, "put", f"/os-services/{services['cmp-6']['id']}", {"forced_down": True})

    def set_vcpu_inventory(self, host: str, reserved: int, ratio: float) -> None:
        h = {"X-Auth-Token": "admin", "OpenStack-API-Version": "placement 1.4"}
        rp = requests.get(
            f"{self.cloud.placement}/resource_providers?name={host}", headers=h, timeout=10
        ).json()
        uuid = rp["resource_providers"][0]["uuid"]
        inv = requests.get(
            f"{self.cloud.placement}/resource_providers/{uuid}/inventories", headers=h, timeout=10
        ).json()
        body = {
            "resource_provider_generation": inv["resource_provider_generation"],
            "total": 10,
            "reserved": reserved,
            "allocation_ratio": ratio,
        }
        resp = requests.put(
            f"{self.cloud.placement}/resource_providers/{uuid}/inventories/VCPU",
            json=body,
            headers=h,
            timeout=10,
        )
        assert resp.status_code == 200, resp.text

    def truth(self) -> promdata.Truth:
        """Exporter history for these servers; cmp-6 (dead) and cmp-7 (broken exporter) export nothing."""
        return promdata.from_servers(
            self.servers.values(), HOSTS[:5], lambda k, n: (0.05 + 0.08 * n + 0.01 * k, 0.1 + 0.05 * n), 2
        )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with ns.serve(HOSTS, tmp_path_factory.mktemp("nova")) as cloud:
        yield World(cloud)


@pytest.fixture(scope="module")
def prom(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("prometheus")
    with serve(import_history(promdata.openmetrics(world.truth()), work), work) as url:
        yield url


@pytest.fixture(scope="module")
def conf(world: World, prom: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("conf")
    policies = (ROOT / "etc" / "kronos" / "policies.yaml.sample").read_text()
    (d / "policies.yaml").write_text(policies)
    path = d / "kronos.conf"
    path.write_text(
        "[engine]\naggregates = agg-a, agg-b\ninclude_unassigned_hosts = true\ndry_run = false\n"
        f"[prometheus]\nurl = {prom}\n" + world.cloud.conf("admin")
    )
    return path


@pytest.fixture(scope="module")
def snapshot(conf: Path, world: World, prom: str) -> kronos.Snapshot:
    config = load_config(str(conf), {})
    reader = NovaReader(connect(config.nova))
    return record(config, reader, PrometheusClient(prom), AT)


def test_aggregates_and_hosts_are_recorded_as_nova_and_placement_have_them(snapshot: kronos.Snapshot) -> None:
    aggs = {a.name: a for a in snapshot.aggregates}
    assert set(aggs) == {"agg-a", "agg-b"}
    assert list(aggs["agg-a"].hosts) == AGG_A
    assert aggs["agg-a"].metadata == {"availability_zone": "az1", "ssd": "true"}
    assert list(aggs["agg-b"].hosts) == AGG_B
    assert aggs["agg-b"].metadata == {"tier": "bulk"}
    hosts = {h.name: h for h in snapshot.hosts}
    assert set(hosts) == set(HOSTS) - {"cmp-7"}  # cmp-7's exporter is gone: left out
    for name, h in hosts.items():
        # MediumFakeDriver: 10 VCPU x 4.0, 8192 MB - 512 reserved, 1028 GB; cmp-3: (10 - 2) x 2.0
        assert (h.capacity.vcpus, h.capacity.memory_mb, h.capacity.disk_gb) == (
            16.0 if name == "cmp-3" else 40.0,
            7680.0,
            1028.0,
        )
        assert h.enabled is (name != "cmp-5")
        assert h.up is (name != "cmp-6")
        assert h.forced_down is (name == "cmp-6")


def test_host_scores_and_vm_weights_come_from_prometheus(snapshot: kronos.Snapshot, world: World) -> None:
    truth = world.truth()
    for h in snapshot.hosts:
        if h.name == "cmp-6":
            assert h.scores == {}  # dead: exports nothing, and may omit its scores
            continue
        t = truth.hosts[h.name]
        assert h.scores["cpu-spread"] == pytest.approx(t.cpu, abs=1e-9)
        assert h.scores["memory-spread"] == pytest.approx(t.mem, abs=1e-9)
    weighted = 0
    for vm in snapshot.vms:
        if vm.id in truth.vms:
            tv = truth.vms[vm.id]
            assert vm.weights["cpu-spread"] == pytest.approx(truth.vm_cpu(tv), abs=1e-9)
            assert vm.weights["memory-spread"] == pytest.approx(truth.vm_mem(tv), abs=1e-9)
            weighted += 1
        else:
            assert vm.weights == {}
    assert weighted >= 15


def test_every_server_field_matches_what_was_created(snapshot: kronos.Snapshot, world: World) -> None:
    vms = {v.id: v for v in snapshot.vms}
    recorded_hosts = {h.name for h in snapshot.hosts}
    expected = {sid for sid, s in world.servers.items() if s["OS-EXT-SRV-ATTR:host"] in recorded_hosts}
    assert set(vms) == expected and len(expected) >= 20
    flavors = {
        "small": (1, 512, 1, {}),
        "ssd": (2, 1024, 5, {"aggregate_instance_extra_specs:ssd": "true"}),
        "eph": (1, 256, 1 + 2 + 1, {}),
    }  # root + ephemeral + ceil(512 MB swap / 1024)
    for sid, vm in vms.items():
        s = world.servers[sid]
        boot = world.boots[s["name"]]
        assert vm.name == boot.name
        assert vm.host == s["OS-EXT-SRV-ATTR:host"]
        if boot.host:
            assert vm.host == boot.host
        assert vm.status == "ACTIVE" and vm.task_state is None
        fl = next(k for k, (fid, _) in world.flavors.items() if fid == boot.flavor)
        assert vm.flavor.name == fl
        assert (vm.flavor.vcpus, vm.flavor.memory_mb, vm.flavor.disk_gb, vm.flavor.extra_specs) == flavors[fl]
        assert set(vm.tags) == set(boot.tags)
        assert vm.metadata == (boot.metadata or {})
        assert vm.migratable is ("kronos:pinned" not in boot.tags)
        assert vm.project_id == s["tenant_id"]


def test_server_groups_of_all_four_policies_with_rules_and_members(
    snapshot: kronos.Snapshot, world: World
) -> None:
    groups = {g.name: g for g in snapshot.server_groups}
    recorded = {v.id for v in snapshot.vms}
    assert set(groups) == set(world.groups)
    for name, (policy, rules) in world.groups.items():
        g = groups[name]
        assert g.id == world.group_ids[name]
        assert g.policy == policy
        assert g.rules == rules
        created = {world.ids[b] for b, boot in world.boots.items() if boot.group == world.group_ids[name]}
        assert set(g.members) == created & recorded


def test_bad_prometheus_data_leaves_hosts_out_and_skips_their_pool(snapshot: kronos.Snapshot) -> None:
    src = snapshot.source or {}
    assert list(src["excluded_hosts"]) == ["cmp-7"]
    assert "missing from the query result" in src["excluded_hosts"]["cmp-7"]
    assert list(src["skip_aggregates"]) == ["_unassigned_"]
    assert src["excluded_members"] == {"_unassigned_": ["cmp-7"]}  # where `scores --snapshot` looks again
    assert not any(v.host == "cmp-7" for v in snapshot.vms)
    # aggregates, services, hypervisors, the provider list, inventories + traits + allocations per
    # host (no nested providers here), servers, images, groups: no per-server calls
    assert src["nova_calls"] == 7 + 3 * len(HOSTS)


def test_pagination_follows_next_links_with_one_call_per_page(world: World) -> None:
    reader = NovaReader(world.cloud.connect(), page=5)
    servers = reader.servers(HOSTS)
    assert {s.id for s in servers} == set(world.servers)
    assert reader.calls == math.ceil(len(world.servers) / 5) + (len(world.servers) % 5 == 0)


def test_record_then_plan_passes_the_contract(conf: Path, tmp_path: Path, checker: Any) -> None:
    snap_path, plan_path = tmp_path / "s.json", tmp_path / "p.json"
    at = datetime.fromtimestamp(promdata.END, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    rec = kronos_cli("record", "--config", str(conf), "--at", at, "-o", str(snap_path))
    assert rec.returncode == 0, rec.stderr
    assert "left out cmp-7" in rec.stderr
    out = kronos_cli("replay", str(snap_path), "--budget", "unlimited", "-o", str(plan_path))
    assert out.returncode == 0, out.stderr
    snap, plan = kronos.load_snapshot(snap_path), kronos.load_plan(plan_path)
    recorded = (snap.source or {}).get("problems") or []  # on stderr too, not in the file alone
    assert recorded and all(f"  problem: {p}" in rec.stderr for p in recorded[:10])
    assert not [i for i in kronos.validate(snap) if i.severity == "error"]
    summary = plan.summary.aggregates
    assert summary["agg-a"].combined_after < summary["agg-a"].combined_before
    assert any(s.source == "cmp-1" for s in plan.steps)
    pinned = {v.id for v in snap.vms if not v.migratable}
    assert pinned and not any(s.instance in pinned for s in plan.steps)
    assert not any(s.destination in ("cmp-5", "cmp-6") for s in plan.steps)  # disabled, dead
    checker(snap, plan)


def test_check_config_with_an_admin_token_passes_where_record_keeps_every_aggregate(conf: Path) -> None:
    # with unassigned hosts: cmp-7 is one, and its exporter is gone, so record would skip them
    out = kronos_cli("check-config", "--config", str(conf), "--at", str(promdata.END))
    assert out.returncode == 65, out.stdout + out.stderr
    assert "cpu-spread 5 hosts" in out.stdout  # cmp-1..5 export; cmp-6 is dead, cmp-7's exporter gone
    assert "placement: 7 compute hosts with Placement inventories" in out.stdout  # unassigned included
    failed = [line for line in out.stdout.splitlines() if line.startswith("FAIL")]
    assert len(failed) == 1 and failed[0].startswith("FAIL  prometheus hosts: kronos record would skip "), (
        failed
    )
    assert "_unassigned_: bad data: cpu-spread: data of 1 of 1 hosts" in failed[0]
    assert "cmp-7" in failed[0] and "missing from the query result" in failed[0]
    assert "agg-a" not in failed[0] and "agg-b" not in failed[0]  # their hosts' data is good
    assert any(line.startswith("PASS  admin: inferred") for line in out.stdout.splitlines())
    # without unassigned hosts only the configured aggregates' hosts are read, and all is well
    scoped = conf.parent / "scoped" / "kronos.conf"
    scoped.parent.mkdir(exist_ok=True)
    scoped.write_text(
        conf.read_text().replace("include_unassigned_hosts = true", "include_unassigned_hosts = false")
    )
    (scoped.parent / "policies.yaml").write_text((conf.parent / "policies.yaml").read_text())
    out = kronos_cli("check-config", "--config", str(scoped), "--at", str(promdata.END))
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert all(line.startswith("PASS") for line in lines[:-1]), out.stdout
    assert any("admin: inferred" in line for line in lines)
    assert "placement: 6 compute hosts of the configured aggregates with Placement inventories" in out.stdout
    assert "PASS  prometheus hosts: every policy has good data for the 5 up host(s) in scope" in out.stdout
    assert lines[-1] == "check-config: passed"


def test_check_config_names_both_spellings_when_prometheus_and_nova_differ(
    conf: Path, tmp_path: Path
) -> None:
    """A host_label whose values are not Nova's host names: every record would leave every host out."""
    renamed = tmp_path / "kronos.conf"
    renamed.write_text(
        conf.read_text().replace("include_unassigned_hosts = true", "include_unassigned_hosts = false")
    )
    doc = yaml.YAML(typ="safe").load((conf.parent / "policies.yaml").read_text())
    for policy in doc["policies"]:  # the exporter's nodename as an FQDN
        q = policy["imbalance_query"]
        policy["imbalance_query"] = f'label_replace({q}, "nodename", "$1.example.org", "nodename", "(.*)")'
    with (tmp_path / "policies.yaml").open("w") as f:
        yaml.YAML(typ="safe").dump(doc, f)
    out = kronos_cli("check-config", "--config", str(renamed), "--at", str(promdata.END))
    assert out.returncode == 78, out.stdout + out.stderr
    line = next(x for x in out.stdout.splitlines() if x.startswith("FAIL  prometheus hosts:"))
    assert f"{tmp_path / 'policies.yaml'}: policy 'cpu-spread': host_label 'nodename' names " in line
    assert "cmp-1.example.org, cmp-2.example.org, cmp-3.example.org, none of them a Nova compute host" in line
    assert "(cmp-1, cmp-2, cmp-3, ...)" in line and "policy 'memory-spread'" in line  # every policy


def test_check_config_fails_cleanly_with_a_member_token(conf: Path, world: World, tmp_path: Path) -> None:
    member = tmp_path / "kronos.conf"
    member.write_text(conf.read_text().replace("token = admin", "token = member"))
    (tmp_path / "policies.yaml").write_text((conf.parent / "policies.yaml").read_text())
    out = kronos_cli("check-config", "--config", str(member), "--at", str(promdata.END))
    assert out.returncode == 77, out.stdout + out.stderr
    assert (
        "FAIL  nova" in out.stdout and "HTTP 403" in out.stdout and "permission denied, needs" in out.stdout
    )
    assert "Traceback" not in out.stderr
    assert "check-config: FAILED" in out.stdout
    rec = kronos_cli("record", "--config", str(member), "-o", str(tmp_path / "s.json"))
    assert rec.returncode == 77 and "kronos: error:" in rec.stderr and "Traceback" not in rec.stderr
    assert not (tmp_path / "s.json").exists()


def test_check_config_runs_each_vm_profile_query(conf: Path, tmp_path: Path) -> None:
    """A broken vm_profile_query passed, then left every VM without a weight at each cycle."""
    broken = tmp_path / "kronos.conf"
    broken.write_text(conf.read_text())
    policies = (conf.parent / "policies.yaml").read_text()
    assert "vm_profile_query: " in policies
    (tmp_path / "policies.yaml").write_text(policies.replace("vm_profile_query: ", "vm_profile_query: (", 1))
    out = kronos_cli("check-config", "--config", str(broken), "--at", str(promdata.END))
    assert out.returncode == 78 and "FAIL  prometheus" in out.stdout, out.stdout + out.stderr
    assert ": vm_profile_query: HTTP 400 bad_data" in out.stdout and "check-config: FAILED" in out.stdout


def test_check_config_reaches_each_cloud_of_a_federation(conf: Path, world: World, tmp_path: Path) -> None:
    """[nova:<cloud>] sections (federation plans) are probed too, each on its own line."""
    port = world.cloud.compute.split(":")[2].split("/")[0]
    edge = world.cloud.conf(section="nova:edge")
    gone = world.cloud.conf(section="nova:gone").replace(f":{port}/", ":9/")
    fed = tmp_path / "kronos.conf"
    fed.write_text(conf.read_text() + edge + gone)
    (tmp_path / "policies.yaml").write_text((conf.parent / "policies.yaml").read_text())
    out = kronos_cli("check-config", "--config", str(fed), "--at", str(promdata.END))
    assert out.returncode == 69, out.stdout + out.stderr
    assert "PASS  nova:edge compute services: 7 compute services" in out.stdout
    assert "FAIL  nova:gone compute services:" in out.stdout and "127.0.0.1:9" in out.stdout
    assert "check-config: FAILED" in out.stdout and "Traceback" not in out.stderr


def test_an_unreachable_nova_is_exit_69_naming_the_url(conf: Path, world: World, tmp_path: Path) -> None:
    port = world.cloud.compute.split(":")[2].split("/")[0]
    dead = tmp_path / "kronos.conf"
    dead.write_text(conf.read_text().replace(f":{port}/", ":9/"))
    (tmp_path / "policies.yaml").write_text((conf.parent / "policies.yaml").read_text())
    rec = kronos_cli("record", "--config", str(dead), "-o", str(tmp_path / "s.json"))
    assert rec.returncode == 69, rec.stderr
    assert "127.0.0.1:9" in rec.stderr and "Traceback" not in rec.stderr


def test_record_json_is_a_valid_snapshot_document(conf: Path, tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    rec = kronos_cli(
        "record", "--config", str(conf), "--aggregate", "agg-a", "--at", str(promdata.END), "-o", str(path)
    )
    assert rec.returncode == 0, rec.stderr
    doc = json.loads(path.read_text())
    assert doc["format"] == "kronos.snapshot/1"
    assert [a["name"] for a in doc["aggregates"]] == ["agg-a"]
    assert {h["name"] for h in doc["hosts"]} == set(AGG_A)
    assert doc["taken_at"] == "2026-01-01T00:00:00Z"
    # FORMATS §5 at [engine] history_window's default; no VM forecast while forecast_horizon = 0
    assert doc["history_step_seconds"] == 60 and "forecast_horizon_seconds" not in doc
    for h in doc["hosts"]:  # the exporters' load was constant over the window
        assert set(h["score_history"]) == set(h["scores"]) == {"cpu-spread", "memory-spread"}
        for policy, score in h["scores"].items():
            assert h["score_history"][policy] == pytest.approx([score] * 31, abs=1e-9)
            assert h["score_history"][policy][-1] == score
    assert not any("weights_forecast" in v for v in doc["vms"])


def test_vm_profiles_keyed_by_libvirt_domain_name_map_to_instance_uuids(
    conf: Path, world: World, prom: str
) -> None:
    """Exporters that only know the libvirt domain: Nova's instance_name maps it to the UUID."""
    import attrs

    config = load_config(str(conf), {})
    by_domain = tuple(
        attrs.evolve(p, vm_profile_label="domain", vm_profile_label_type="libvirt_domain_name")
        for p in config.policies
    )
    snap = record(
        attrs.evolve(config, policies=by_domain),
        NovaReader(world.cloud.connect()),
        PrometheusClient(prom),
        AT,
    )
    truth = world.truth()
    checked = 0
    for vm in snap.vms:
        if vm.id in truth.vms:
            assert vm.weights["memory-spread"] == pytest.approx(truth.vm_mem(truth.vms[vm.id]), abs=1e-9)
            checked += 1
    assert checked == len(truth.vms) >= 15


def test_os_cloud_reads_credentials_from_clouds_yaml(conf: Path, world: World, tmp_path: Path) -> None:
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text(
        "clouds:\n  test-cloud:\n    auth_type: admin_token\n"
        f"    auth:\n      endpoint: {world.cloud.compute}\n      token: admin\n"
        f"    compute_endpoint_override: {world.cloud.compute}\n"
        f"    placement_endpoint_override: {world.cloud.placement}\n"
    )
    bare = tmp_path / "kronos.conf"
    bare.write_text(conf.read_text().split("[nova]")[0])  # no [nova] section at all
    (tmp_path / "policies.yaml").write_text((conf.parent / "policies.yaml").read_text())
    import os
    import subprocess
    import sys

    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from kronos.cli import main; main()",
            "record",
            "--config",
            str(bare),
            "--os-cloud",
            "test-cloud",
            "--aggregate",
            "agg-b",
            "--at",
            str(promdata.END),
            "-o",
            "-",
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "OS_CLIENT_CONFIG_FILE": str(clouds)},
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert {h["name"] for h in doc["hosts"]} == set(AGG_B)
    unknown = kronos_cli("record", "--config", str(bare), "--os-cloud", "nope", "-o", "-")
    assert unknown.returncode == 78 and "nope" in unknown.stderr and "Traceback" not in unknown.stderr
