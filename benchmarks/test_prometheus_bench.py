"""Reading load from Prometheus: one cycle against the real server, and Kronos's own share at scale.

``real-50x1000``: both sample policies' host and VM queries plus the health
verdict against a real Prometheus (the tests' generated history).
``canned-1000x100000``: the same work on canned answers for a 1 000-host,
100 000-VM cloud, which is what Kronos adds on top of Prometheus's own
query time (JSON decoding, keying, checks).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from tests import promdata
from tests.conftest import ROOT
from tests.prometheus_server import import_history, serve

from kronos.adapters.policies import load_policies
from kronos.adapters.prometheus import PrometheusClient
from kronos.adapters.scores import VMRef, assess, read_policies, read_vm_weights

AT = datetime.fromtimestamp(promdata.END, UTC)
POLICIES = load_policies(ROOT / "etc" / "kronos" / "policies.yaml.sample")


def _cycle(client: PrometheusClient, aggregates: dict[str, list[str]], refs: list[VMRef]) -> int:
    reports = assess(read_policies(client, POLICIES, AT), aggregates, AT)
    weights = [read_vm_weights(client, p, AT, refs) for p in POLICIES]
    return sum(r.skipped is None for r in reports) + sum(len(w.weights) for w in weights)


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, promdata.Truth]]:
    truth = promdata.build(hosts=50, vms=1000)
    work = tmp_path_factory.mktemp("prometheus-bench")
    with serve(import_history(promdata.openmetrics(truth), work), work) as url:
        yield url, truth


def test_bench_real_prometheus_cycle(benchmark: Any, real: tuple[str, promdata.Truth]) -> None:
    url, truth = real
    good = {"agg-good": truth.aggregates["agg-good"]}
    assert benchmark(_cycle, PrometheusClient(url), good, truth.refs) == 1 + 2 * 997 + 1


class Canned(requests.Session):
    """Answers each query with the body prepared for it."""

    def __init__(self, bodies: dict[str, bytes]) -> None:
        super().__init__()
        self.bodies = bodies

    def post(self, url: str, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        resp = requests.Response()
        resp.status_code = 200
        resp._content = self.bodies[kwargs["data"]["query"]]
        return resp


def _vector(series: list[tuple[dict[str, str], float]]) -> bytes:
    result = [{"metric": m, "value": [promdata.END, repr(v)]} for m, v in series]
    return json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}}).encode()


def test_bench_canned_1000_hosts_100000_vms(benchmark: Any) -> None:
    hosts = [f"cmp-{i:04d}" for i in range(1000)]
    refs = [VMRef(f"{i:032x}", f"vm-{i}", f"instance-{i:08x}") for i in range(100_000)]
    bodies: dict[str, bytes] = {}
    for k, p in enumerate(POLICIES):
        assert p.imbalance_query and p.vm_profile_query and p.freshness_query
        bodies[p.imbalance_query] = _vector(
            [({"nodename": h}, 0.2 + 0.5 * ((i * 7 + k) % 10) / 10) for i, h in enumerate(hosts)]
        )
        bodies[p.freshness_query] = _vector([({"nodename": h}, float(promdata.END - 15)) for h in hosts])
        bodies[p.vm_profile_query] = _vector(
            [({"instance_id": r.id, "domain": r.instance_name or ""}, 0.001) for r in refs]
        )
    client = PrometheusClient("http://canned", session=Canned(bodies))
    aggregates = {f"agg-{a}": hosts[a * 100 : (a + 1) * 100] for a in range(10)}
    assert benchmark(_cycle, client, aggregates, refs) == 10 + 200_000
