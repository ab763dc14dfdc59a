"""A canned Connection answering the Nova adapter's list calls from memory.

For what a real Nova cannot give here: injected faults (5xx, 401/403,
refused connections) and a cloud of 1 000 hosts and 20 000 servers to count
API calls on. The JSON shapes are the ones the real Nova in tests/test_nova.py
returns at the same microversions.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlparse


class Response:
    def __init__(self, status: int, body: Any) -> None:
        self.status_code = status
        self._body = body
        self.text = json.dumps(body)

    def json(self) -> Any:
        return self._body


class Proxy:
    def __init__(self, cloud: CannedCloud, service: str) -> None:
        self.cloud = cloud
        self.service = service

    def get(self, path: str, params: dict[str, Any] | None = None, **_: Any) -> Response:
        self.cloud.calls.append(path)
        fault = self.cloud.fault(self.service, path)
        if isinstance(fault, BaseException):
            raise fault
        if isinstance(fault, int):
            return Response(fault, {"error": "injected"})
        return Response(200, self.cloud.answer(path, dict(params or {})))

    def get_endpoint(self) -> str:
        return f"http://{self.service}.example:8774/v2.1"


#: what a Placement provider of a canned host has: the root's, and a vGPU child's
ROOT_INVENTORY = {
    "VCPU": {"total": 64, "reserved": 0, "allocation_ratio": 4.0},
    "MEMORY_MB": {"total": 524288, "reserved": 4096, "allocation_ratio": 1.0},
    "DISK_GB": {"total": 2000, "reserved": 0, "allocation_ratio": 1.0},
}
GPU_INVENTORY = {"VGPU": {"total": 32, "reserved": 0, "allocation_ratio": 1.0}}
ROOT_TRAITS = ["COMPUTE_NET_ATTACH_INTERFACE", "HW_CPU_X86_AVX2"]
GPU_TRAITS = ["CUSTOM_VGPU_A100"]


class CannedCloud:
    """``hosts`` compute hosts in aggregates of ``per_aggregate``; ``servers`` spread round-robin.

    Every ``gpu_every``-th host has a nested vGPU provider, and the servers on
    it hold one vGPU there (0: no vGPU hosts).
    """

    def __init__(self, hosts: int, servers: int, per_aggregate: int = 50, gpu_every: int = 0) -> None:
        self.hosts = [f"cmp-{i:04d}" for i in range(hosts)]
        self.gpu_hosts = set(self.hosts[::gpu_every]) if gpu_every else set()
        self.servers = [
            {
                "id": f"{i:08d}-0000-4000-8000-000000000000",
                "name": f"vm-{i}",
                "status": "ACTIVE",
                "OS-EXT-STS:task_state": None,
                "OS-EXT-SRV-ATTR:host": self.hosts[i % hosts],
                "OS-EXT-SRV-ATTR:instance_name": f"instance-{i:08x}",
                "image": {"id": "img"},
                "flavor": {
                    "original_name": "m1.small",
                    "vcpus": 1,
                    "ram": 2048,
                    "disk": 20,
                    "ephemeral": 0,
                    "swap": 0,
                    "extra_specs": {},
                },
                "tenant_id": "p1",
                "tags": [],
                "metadata": {},
            }
            for i in range(servers)
        ]
        self.on_host: dict[str, list[str]] = {}
        for srv in self.servers:
            self.on_host.setdefault(srv["OS-EXT-SRV-ATTR:host"], []).append(srv["id"])
        self.images = [{"id": "img", "name": "base", "metadata": {"hw_disk_bus": "virtio"}}]
        self.aggregates = [
            {"id": k, "name": f"agg-{k}", "hosts": self.hosts[a : a + per_aggregate], "metadata": {}}
            for k, a in enumerate(range(0, hosts, per_aggregate))
        ]
        self.calls: list[str] = []
        self.fault: Callable[[str, str], Any] = lambda service, path: None
        self.compute = Proxy(self, "compute")
        self.placement = Proxy(self, "placement")

    def answer(self, path: str, params: dict[str, Any]) -> Any:
        query = parse_qs(urlparse(path).query)
        params.update({k: v[0] for k, v in query.items()})
        path = urlparse(path).path
        if path == "/os-aggregates":
            return {"aggregates": self.aggregates}
        if path == "/os-services":
            return {
                "services": [
                    {
                        "id": h,
                        "host": h,
                        "binary": "nova-compute",
                        "status": "enabled",
                        "state": "up",
                        "forced_down": False,
                    }
                    for h in self.hosts
                ]
            }
        if path == "/os-hypervisors/detail":
            items = [{"id": f"rp-{h}", "hypervisor_hostname": h, "service": {"host": h}} for h in self.hosts]
            return self._page("hypervisors", items, params)
        if path == "/servers/detail":
            return self._page("servers", self.servers, params)
        if path == "/os-server-groups":
            return self._page("server_groups", [], params)
        if path == "/images/detail":
            return self._page("images", self.images, params)
        if path == "/resource_providers":
            roots = [{"uuid": f"rp-{h}", "root_provider_uuid": f"rp-{h}"} for h in self.hosts]
            gpus = [{"uuid": f"rp-{h}-gpu", "root_provider_uuid": f"rp-{h}"} for h in sorted(self.gpu_hosts)]
            return {"resource_providers": roots + gpus}
        if path.startswith("/resource_providers/rp-"):
            uuid, what = path.split("/")[2:4]
            host = uuid.removeprefix("rp-").removesuffix("-gpu")
            gpu = uuid.endswith("-gpu")
            if what == "inventories":
                return {"inventories": GPU_INVENTORY if gpu else ROOT_INVENTORY}
            if what == "traits":
                return {"traits": GPU_TRAITS if gpu else ROOT_TRAITS}
            if what == "allocations":
                held = {"VGPU": 1} if gpu else {"VCPU": 1, "MEMORY_MB": 2048, "DISK_GB": 20}
                return {"allocations": {sid: {"resources": held} for sid in self.on_host.get(host, [])}}
        raise AssertionError(f"canned cloud: no answer for {path}")

    @staticmethod
    def _page(key: str, items: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
        limit = int(params.get("limit", 1000))
        start = 0
        if "marker" in params:
            start = next(i for i, x in enumerate(items) if x["id"] == params["marker"]) + 1
        page = items[start : start + limit]
        out: dict[str, Any] = {key: page}
        if start + limit < len(items):
            out[f"{key}_links"] = [{"rel": "next", "href": f"...?marker={page[-1]['id']}"}]
        return out
