"""Nova adapter faults (injected) and scale (canned): what the real Nova cannot show here.

Also the recorder's pure part, :func:`build_snapshot`, on hand-made inputs:
partial coverage, dead hosts, group members outside the recorded hosts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from keystoneauth1 import exceptions as ksa

from kronos.adapters.config import PrometheusConfig
from kronos.adapters.nova import Aggregate, Capacity, NovaReader, NovaWorld, Server, ServerGroup, Service
from kronos.adapters.record import build_snapshot
from kronos.adapters.scores import PolicyReading
from kronos.core.model import Policy
from kronos.errors import DataError, PermissionDenied, UnavailableError
from tests.canned_nova import CannedCloud
from tests.conftest import kronos_cli

AT = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


def test_a_large_cloud_is_read_with_one_call_per_page_and_three_per_provider_in_scope() -> None:
    cloud = CannedCloud(hosts=1000, servers=20000, gpu_every=10)
    reader = NovaReader(cloud)
    world = reader.read(lambda a: a.name in ("agg-0", "agg-1"))
    assert len(world.services) == 100 and len(world.capacity) == 100
    assert len(world.servers) == 2000  # 20 per host on the 100 hosts in scope
    # aggregates + services + hypervisors (1 page) + the provider list, then inventories, traits and
    # allocations of the 100 hosts and their 10 vGPU children, 20 server pages, images, groups:
    # never a call per server (GET /allocations/{instance} would be 2 000 more)
    assert world.calls == len(cloud.calls) == 1 + 1 + 1 + 1 + 3 * (100 + 10) + 20 + 1 + 1
    assert not any(p.startswith("/servers/") and p != "/servers/detail" for p in cloud.calls)
    assert not any(p.startswith("/allocations") for p in cloud.calls)
    cap = world.capacity["cmp-0000"]  # a vGPU host: its child's VGPU and trait count for it
    assert (cap.vcpus, cap.memory_mb, cap.disk_gb, cap.classes) == (256, 520192, 2000, {"VGPU": 32})
    assert world.traits["cmp-0000"] == ("COMPUTE_NET_ATTACH_INTERFACE", "CUSTOM_VGPU_A100", "HW_CPU_X86_AVX2")
    assert world.capacity["cmp-0001"].classes is None
    assert world.traits["cmp-0001"] == ("COMPUTE_NET_ATTACH_INTERFACE", "HW_CPU_X86_AVX2")
    gpu_vm = cloud.on_host["cmp-0000"][0]
    assert world.allocations["cmp-0000"][gpu_vm] == {"VCPU": 1, "MEMORY_MB": 2048, "DISK_GB": 20, "VGPU": 1}
    plain_vm = cloud.on_host["cmp-0001"][0]
    assert world.allocations["cmp-0001"][plain_vm] == {"VCPU": 1, "MEMORY_MB": 2048, "DISK_GB": 20}
    assert world.images == {"img": {"hw_disk_bus": "virtio"}}


@pytest.mark.parametrize(
    ("fault", "error", "words"),
    [
        (500, UnavailableError, "HTTP 500"),
        (503, UnavailableError, "http://compute.example:8774/v2.1/os-aggregates"),
        (401, PermissionDenied, "authentication failed"),
        (403, PermissionDenied, "os_compute_api:os-aggregates:index"),
        (404, DataError, "HTTP 404"),
        (ksa.ConnectFailure("refused"), UnavailableError, "cannot reach http://compute.example"),
        (ksa.ConnectTimeout("timed out"), UnavailableError, "timed out"),
        (ksa.Unauthorized("bad password"), PermissionDenied, "authentication failed"),
    ],
)
def test_faults_become_their_exit_codes(fault: object, error: type, words: str) -> None:
    cloud = CannedCloud(hosts=3, servers=3, per_aggregate=3)
    cloud.fault = lambda service, path: fault if path == "/os-aggregates" else None
    with pytest.raises(error, match=None) as info:
        NovaReader(cloud).read(lambda a: True)
    assert words in str(info.value)


@pytest.mark.parametrize(
    ("refused", "permission"),
    [
        ("/resource_providers", "placement:resource_providers:list"),
        ("/inventories", "placement:resource_providers:inventories:list"),
        ("/traits", "placement:resource_providers:traits:list"),
        ("/allocations", "placement:resource_providers:allocations:list"),
        ("/images/detail", "Glance get_images"),
    ],
)
def test_a_403_names_the_permission_of_the_refused_read(refused: str, permission: str) -> None:
    cloud = CannedCloud(hosts=3, servers=3, per_aggregate=3)
    cloud.fault = lambda service, path: 403 if path.endswith(refused) else None
    with pytest.raises(PermissionDenied, match=f"HTTP 403: permission denied, needs {permission}"):
        NovaReader(cloud).read(lambda a: True)


def test_an_unreachable_keystone_is_exit_69_and_the_password_never_shows(tmp_path: Path) -> None:
    (tmp_path / "policies.yaml").write_text(
        (Path(__file__).parent.parent / "etc" / "kronos" / "policies.yaml.sample").read_text()
    )
    conf = tmp_path / "kronos.conf"
    conf.write_text(
        "[engine]\naggregates = agg-a\n[nova]\nauth_url = http://127.0.0.1:9/v3\nusername = kronos\n"
        "password = s3cret-pw\nproject_name = service\n"
    )
    out = kronos_cli("record", "--config", str(conf), "-o", str(tmp_path / "s.json"))
    assert out.returncode == 69, out.stderr
    assert "127.0.0.1:9" in out.stderr and "Traceback" not in out.stderr
    assert "s3cret-pw" not in out.stdout + out.stderr
    assert not (tmp_path / "s.json").exists()


def _world() -> NovaWorld:
    flavor = {"name": "m1", "vcpus": 2, "memory_mb": 2048, "disk_gb": 20, "extra_specs": {}}
    hosts = ["h1", "h2", "h3", "h4"]
    servers = tuple(
        Server(
            f"vm-{h}-{k}", f"n-{h}-{k}", h, None, "ACTIVE", None, flavor, "p", ("kronos:pinned",) if k else ()
        )
        for h in hosts
        for k in range(2)
    )
    return NovaWorld(
        aggregates=(Aggregate("agg", tuple(hosts), {"availability_zone": "az1"}),),
        services={h: Service(h, True, h != "h4", False) for h in hosts},
        capacity={h: Capacity(64, 65536, 500) for h in hosts},
        servers=servers,
        groups=(
            ServerGroup(
                "g1", "web", "anti-affinity", {"max_server_per_host": 2}, ("vm-h1-0", "vm-h3-0", "x")
            ),
        ),
    )


def _reading(values: dict[str, tuple[float, ...]]) -> dict[str, PolicyReading]:
    policy = Policy(name="cpu", mode="spread", weight=1.0, threshold=0.05)
    return {"cpu": PolicyReading(policy, values)}


def test_partial_coverage_plans_without_the_bad_host_and_says_why() -> None:
    policy = _reading({})["cpu"].policy
    readings = _reading({"h1": (0.5,), "h2": (0.2,), "h3": (float("nan"),)})  # h4 is down: exports nothing
    snap = build_snapshot(
        _world(), [policy], readings, {}, AT, limits=PrometheusConfig(min_host_coverage=0.6)
    )
    src = snap.source or {}
    assert src["skip_aggregates"] == {}
    assert list(src["excluded_hosts"]) == ["h3"] and "NaN" in src["excluded_hosts"]["h3"]
    assert [h.name for h in snap.hosts] == ["h1", "h2", "h4"]
    assert snap.aggregates[0].hosts == ("h1", "h2", "h4")
    down = next(h for h in snap.hosts if h.name == "h4")
    assert down.up is False and down.scores == {}
    assert {v.host for v in snap.vms} == {"h1", "h2", "h4"}
    assert [v.migratable for v in snap.vms if v.host == "h1"] == [True, False]
    group = snap.server_groups[0]
    assert group.members == ("vm-h1-0",) and src["group_members_elsewhere"] == 2


def test_full_coverage_required_by_default_skips_the_aggregate() -> None:
    policy = _reading({})["cpu"].policy
    readings = _reading({"h1": (0.5,), "h2": (0.2,), "h3": (1.7,)})
    snap = build_snapshot(_world(), [policy], readings, {}, AT)
    src = snap.source or {}
    assert "agg" in src["skip_aggregates"] and "1 of 3 hosts" in src["skip_aggregates"]["agg"]
    assert "outside [0, 1]" in src["excluded_hosts"]["h3"]
