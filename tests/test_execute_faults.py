"""``kronos execute`` through a fault-injecting proxy in front of the real Nova.

500/503 answers, answers lost after Nova acted, requests that hang past
[nova] timeout, and a Nova API that is down for a while: each is retried
(with backoff, pre-flight again) or waited out, and every step ends with
exactly one recorded outcome and at most one migration in Nova.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import kronos
from tests import nova_server as ns
from tests.executing import HOSTS, Cloud, execute, make_plan
from tests.fault_proxy import FaultProxy, proxied

pytestmark = pytest.mark.nova


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with ns.serve(HOSTS, tmp_path_factory.mktemp("nova")) as c:
        yield Cloud(c)


@pytest.fixture
def proxy(cloud: Cloud) -> Iterator[FaultProxy]:
    with proxied(cloud.cloud.compute) as p:
        yield p


def test_failed_lost_and_hung_requests_are_retried_and_nothing_is_lost(
    cloud: Cloud, proxy: FaultProxy, tmp_path: Path
) -> None:
    vms = cloud.boot("f", ["cmp-1"] * 5)
    faults = [
        proxy.add("POST", f"/servers/{vms[0]}/action", "503"),  # Nova never saw it
        proxy.add("POST", f"/servers/{vms[1]}/action", "lost:502"),  # Nova acted, the answer was lost
        # past [nova] timeout = 1; `after`: the drift gate's read goes through
        proxy.add("GET", f"/servers/{vms[2]}$", "hang", delay=3.0, after=1),
        # while polling: after the read before the move request
        proxy.add("GET", f"/os-migrations\\?instance_uuid={vms[3]}", "500", times=3, after=1),
        proxy.add("POST", f"/servers/{vms[4]}/action", "503", times=99),  # never gets through
    ]
    plan = make_plan([(1, v, "cmp-1", "cmp-2") for v in vms])
    out, rows = execute(
        cloud,
        tmp_path,
        plan,
        nova={"compute": proxy.url, "timeout": 1},
        max_concurrent_migrations=1,
        max_retries=2,
    )
    assert out.returncode == 1, out.stdout + out.stderr  # one step failed for good
    assert all(f.hits >= 1 for f in faults), [(f.path, f.hits) for f in faults]
    by = {r["instance"]: r for r in rows}
    assert len(rows) == 5 and set(by) == set(vms)  # every step has exactly one outcome
    assert [by[v]["outcome"] for v in vms] == ["Succeeded"] * 4 + ["MigrationFailed"]
    assert [by[v]["attempts"] for v in vms] == [2, 1, 2, 1, 3]
    for v in vms[:4]:
        assert cloud.host_of(v) == "cmp-2"
        assert [m["status"] for m in cloud.migrations(v)] == ["completed"]  # never a second migration
        assert by[v]["migration"] == cloud.migrations(v)[0]["uuid"]
    assert "HTTP 503" in by[vms[4]]["error"]
    assert cloud.host_of(vms[4]) == "cmp-1" and cloud.migrations(vms[4]) == []
    assert proxy.seen("POST", f"/servers/{vms[4]}/action") == ["503"] * 3  # max_retries = 2
    state = kronos.load_state(tmp_path / "state.json")
    assert vms[4] in state.quarantined_until and vms[0] not in state.quarantined_until


def test_a_nova_api_down_for_a_while_mid_run_is_waited_out(
    cloud: Cloud, proxy: FaultProxy, tmp_path: Path
) -> None:
    vms = cloud.boot("g", ["cmp-3"] * 3)

    def outage() -> None:  # once the first migration is under way, Nova's API is gone for 3 s
        deadline = time.monotonic() + 60
        while not cloud.migrations(vms[0]) and time.monotonic() < deadline:
            time.sleep(0.2)
        proxy.down = True
        time.sleep(3.0)
        proxy.down = False

    thread = threading.Thread(target=outage)
    thread.start()
    out, rows = execute(
        cloud,
        tmp_path,
        make_plan([(1, v, "cmp-3", "cmp-4") for v in vms]),
        nova={"compute": proxy.url, "timeout": 2},
        max_concurrent_migrations=1,
        max_retries=3,
        retry_backoff=0.5,
    )
    thread.join()
    assert out.returncode == 0, out.stdout + out.stderr
    assert any(what == "503" for _, _, what in proxy.log)  # the outage was seen
    assert sorted(r["instance"] for r in rows) == sorted(vms)
    assert all(r["outcome"] == "Succeeded" for r in rows)
    for v in vms:
        assert cloud.host_of(v) == "cmp-4" and [m["status"] for m in cloud.migrations(v)] == ["completed"]
