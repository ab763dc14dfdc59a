"""``kronos execute`` against a real Nova: waves, pre-flight refusals, Nova's own refusals, reruns.

Each test builds its plan by hand from servers it booted (the executor
consumes any valid plan, whoever made it) and runs the real CLI in a
subprocess, then checks Nova: where every server is, and its migration
records.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import kronos
from kronos.core.model import Plan, Step
from tests import nova_server as ns
from tests.conftest import kronos_cli

pytestmark = pytest.mark.nova

HOSTS = ["cmp-1", "cmp-2", "cmp-3", "cmp-4"]


class Cloud:
    def __init__(self, cloud: ns.Cloud) -> None:
        self.cloud = cloud
        self.conn = cloud.connect()
        self.flavor = ns.flavor(self.conn, "small", 1, 512, 1)
        self.services = {
            s["host"]: s["id"]
            for s in ns.call(self.conn, "get", "/os-services?binary=nova-compute")["services"]
        }

    def boot(self, prefix: str, hosts: list[str], group: str | None = None) -> list[str]:
        boots = [ns.Boot(f"{prefix}-{i}", self.flavor, host=h, group=group) for i, h in enumerate(hosts)]
        ids = ns.boot(self.conn, boots)
        return [ids[b.name] for b in boots]

    def host_of(self, sid: str) -> str:
        return str(ns.call(self.conn, "get", f"/servers/{sid}")["server"]["OS-EXT-SRV-ATTR:host"])

    def wait_migrated(self, sid: str, limit: float = 60.0) -> None:
        import time

        deadline = time.monotonic() + limit
        while not [m for m in self.migrations(sid) if m["status"] == "completed"]:
            assert time.monotonic() < deadline, f"{sid}: migration did not complete"
            time.sleep(0.1)

    def migrations(self, sid: str) -> list[dict[str, Any]]:
        return list(ns.call(self.conn, "get", f"/os-migrations?instance_uuid={sid}", mv="2.59")["migrations"])


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with ns.serve(HOSTS, tmp_path_factory.mktemp("nova")) as c:
        yield Cloud(c)


def _plan(moves: list[tuple[int, str, str, str]]) -> Plan:
    steps = tuple(
        Step(k + 1, wave, "spread", "live-migrate", sid, src, dst, "agg", "test move", 0.0)
        for k, (wave, sid, src, dst) in enumerate(moves)
    )
    return Plan(datetime.now(UTC), "sha256:test", steps=steps)


def _conf(cloud: Cloud, tmp: Path, **executor: Any) -> Path:
    (tmp / "policies.yaml").write_text(
        (Path(__file__).parent.parent / "etc" / "kronos" / "policies.yaml.sample").read_text()
    )
    opts = {"stagger_seconds": 0, "poll_interval": 0.2, "retry_backoff": 0.1, "max_retries": 1, **executor}
    text = cloud.cloud.conf("admin") + "[executor]\n" + "".join(f"{k} = {v}\n" for k, v in opts.items())
    path = tmp / "kronos.conf"
    path.write_text(text)
    return path


def _run(
    cloud: Cloud, tmp: Path, plan: Plan, *extra: str, **executor: Any
) -> tuple[Any, list[dict[str, Any]]]:
    kronos.dump(plan, tmp / "plan.json")
    out = kronos_cli(
        "execute",
        str(tmp / "plan.json"),
        "--config",
        str(_conf(cloud, tmp, **executor)),
        "--results",
        str(tmp / "results.jsonl"),
        "--state",
        str(tmp / "state.json"),
        *extra,
    )
    rows = (
        [json.loads(line) for line in (tmp / "results.jsonl").read_text().splitlines()]
        if (tmp / "results.jsonl").exists()
        else []
    )
    return out, rows


def test_a_multi_wave_plan_ends_with_every_server_on_its_planned_host(cloud: Cloud, tmp_path: Path) -> None:
    vms = cloud.boot("w", ["cmp-1"] * 4)
    plan = _plan(
        [
            (1, vms[0], "cmp-1", "cmp-2"),
            (1, vms[1], "cmp-1", "cmp-3"),
            (2, vms[2], "cmp-1", "cmp-4"),
            (2, vms[3], "cmp-1", "cmp-2"),
        ]
    )
    out, rows = _run(cloud, tmp_path, plan, max_concurrent_migrations=2)
    assert out.returncode == 0, out.stdout + out.stderr
    assert [r["outcome"] for r in sorted(rows, key=lambda r: r["seq"])] == ["Succeeded"] * 4
    for step in plan.steps:
        assert cloud.host_of(step.instance) == step.destination
        records = cloud.migrations(step.instance)
        assert [(m["dest_compute"], m["status"]) for m in records] == [(step.destination, "completed")]
    # wave 2 started only after wave 1 finished
    wave1_end = max(r["finished_at"] for r in rows if r["wave"] == 1)
    assert all(r["started_at"] >= wave1_end for r in rows if r["wave"] == 2)
    state = kronos.load_state(tmp_path / "state.json")
    assert set(state.instance_cooldown_until) == set(vms)
    # the same plan again: every step is already done, nothing is migrated twice
    again = kronos_cli(
        "execute",
        str(tmp_path / "plan.json"),
        "--config",
        str(tmp_path / "kronos.conf"),
        "--results",
        str(tmp_path / "results.jsonl"),
    )
    assert again.returncode == 0 and "executed 0 of 0" in again.stdout
    assert all(len(cloud.migrations(s.instance)) == 1 for s in plan.steps)


def test_a_rerun_without_results_reconciles_from_nova_instead_of_migrating(
    cloud: Cloud, tmp_path: Path
) -> None:
    vms = cloud.boot("r", ["cmp-1", "cmp-1"])
    plan = _plan([(1, vms[0], "cmp-1", "cmp-3"), (1, vms[1], "cmp-1", "cmp-4")])
    out, _ = _run(cloud, tmp_path, plan)
    assert out.returncode == 0, out.stdout + out.stderr
    (tmp_path / "results.jsonl").unlink()  # as if killed before anything was written
    out, rows = _run(cloud, tmp_path, plan)
    assert out.returncode == 0, out.stdout + out.stderr
    assert [(r["outcome"], r["reconciled"]) for r in rows] == [("Succeeded", True)] * 2
    assert all(len(cloud.migrations(v)) == 1 for v in vms)


def test_pre_flight_skips_a_vm_moved_behind_kronos_back_and_a_disabled_destination(
    cloud: Cloud, tmp_path: Path
) -> None:
    vms = cloud.boot("p", ["cmp-2", "cmp-2", "cmp-2"])
    plan = _plan(
        [(1, vms[0], "cmp-2", "cmp-3"), (1, vms[1], "cmp-2", "cmp-1"), (2, vms[2], "cmp-2", "cmp-3")]
    )
    # after planning: someone moves vms[0] to cmp-4, and cmp-1 goes into maintenance
    ns.call(
        cloud.conn,
        "post",
        f"/servers/{vms[0]}/action",
        {"os-migrateLive": {"host": "cmp-4", "block_migration": "auto"}},
    )
    cloud.wait_migrated(vms[0])
    ns.call(
        cloud.conn,
        "put",
        f"/os-services/{cloud.services['cmp-1']}",
        {"status": "disabled", "disabled_reason": "maintenance"},
    )
    try:
        out, rows = _run(cloud, tmp_path, plan, max_drift=0.5)
    finally:
        ns.call(cloud.conn, "put", f"/os-services/{cloud.services['cmp-1']}", {"status": "enabled"})
    assert out.returncode == 1, out.stdout + out.stderr
    by = {r["instance"]: r for r in rows}
    assert by[vms[0]]["outcome"] == "PreFlightError" and "moved: on cmp-4" in by[vms[0]]["error"]
    assert (
        by[vms[1]]["outcome"] == "PreFlightError" and "cmp-1 is disabled (maintenance)" in by[vms[1]]["error"]
    )
    assert by[vms[2]]["outcome"] == "Succeeded" and cloud.host_of(vms[2]) == "cmp-3"
    assert cloud.host_of(vms[1]) == "cmp-2" and len(cloud.migrations(vms[1])) == 0
    state = kronos.load_state(tmp_path / "state.json")
    assert vms[0] in state.instance_cooldown_until and vms[0] not in state.quarantined_until


def test_a_move_nova_refuses_is_a_failure_and_a_quarantine(cloud: Cloud, tmp_path: Path) -> None:
    group = ns.server_group(cloud.conn, "aa", "anti-affinity")
    vms = cloud.boot("aa", ["cmp-3", "cmp-4"], group=group)
    plan = _plan([(1, vms[0], "cmp-3", "cmp-4")])  # would put both members on cmp-4
    out, rows = _run(cloud, tmp_path, plan)
    assert out.returncode == 1
    assert rows[0]["outcome"] == "MigrationFailed" and rows[0]["attempts"] == 2  # max_retries = 1
    assert cloud.host_of(vms[0]) == "cmp-3"
    state = kronos.load_state(tmp_path / "state.json")
    assert vms[0] in state.quarantined_until


def test_drift_above_max_drift_aborts_before_any_move(cloud: Cloud, tmp_path: Path) -> None:
    vms = cloud.boot("d", ["cmp-4", "cmp-4"])
    plan = _plan([(1, vms[0], "cmp-1", "cmp-2"), (1, vms[1], "cmp-4", "cmp-2")])  # vms[0] is not on cmp-1
    out, rows = _run(cloud, tmp_path, plan)
    assert out.returncode == 75 and "max_drift" in out.stderr and rows == []
    assert cloud.migrations(vms[1]) == []


def test_an_old_plan_is_refused_and_dry_run_touches_nothing(cloud: Cloud, tmp_path: Path) -> None:
    vms = cloud.boot("o", ["cmp-2"])
    old = Plan(
        datetime(2026, 1, 1, tzinfo=UTC),
        "sha256:old",
        steps=(Step(1, 1, "spread", "live-migrate", vms[0], "cmp-2", "cmp-3", "agg", "r", 0.0),),
    )
    out, rows = _run(cloud, tmp_path, old)
    assert out.returncode == 75 and "max_plan_age" in out.stderr and rows == []
    out, rows = _run(cloud, tmp_path, old, "--dry-run")
    assert out.returncode == 0 and f"would live-migrate {vms[0]} cmp-2 -> cmp-3" in out.stdout
    assert cloud.migrations(vms[0]) == [] and rows == []


def test_sigterm_mid_run_records_every_started_step_and_starts_no_more(cloud: Cloud, tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    vms = cloud.boot("s", ["cmp-1"] * 4)
    plan = _plan([(1, v, "cmp-1", "cmp-2") for v in vms])
    kronos.dump(plan, tmp_path / "plan.json")
    conf = _conf(cloud, tmp_path, max_concurrent_migrations=1)
    results = tmp_path / "results.jsonl"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from kronos.cli import main; main()",
            "execute",
            str(tmp_path / "plan.json"),
            "--config",
            str(conf),
            "--results",
            str(results),
            "--state",
            str(tmp_path / "state.json"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not [m for v in vms for m in cloud.migrations(v)] and time.monotonic() < deadline:
        time.sleep(0.05)  # the first migration is under way
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, out + err
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    moved = [v for v in vms if cloud.migrations(v)]
    assert {r["instance"] for r in rows} == set(moved) and len(moved) < len(vms)
    assert all(r["outcome"] == "Succeeded" for r in rows)
    assert "starting no new steps" in err
    kronos.load_state(tmp_path / "state.json")  # parses
