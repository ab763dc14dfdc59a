"""Running ``kronos execute`` against the real Nova of tests/nova_server.py, for the executor tests.

Plans are built by hand from servers the test booted (the executor
consumes any valid plan, whoever made it); the real CLI runs in a
subprocess; assertions read Nova back: where every server is, and its
migration records.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kronos
from kronos.core.model import Plan, Step
from tests import nova_server as ns
from tests.conftest import ROOT, kronos_cli

#: the executor's poll of a migrating server in the tests: the fake cloud is one CPU-bound process
#: (a GET costs it 70-140 ms), so faster polls take the CPU the migrations they wait for need
POLL_INTERVAL = 0.5
HOSTS = ["cmp-1", "cmp-2", "cmp-3", "cmp-4", "cmp-5"]  # cmp-5: the evacuation test takes it down


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

    def service(self, host: str, **change: Any) -> None:
        ns.call(self.conn, "put", f"/os-services/{self.services[host]}", change)

    def migrations(self, sid: str) -> list[dict[str, Any]]:
        return list(ns.call(self.conn, "get", f"/os-migrations?instance_uuid={sid}", mv="2.59")["migrations"])

    def wait_migrated(self, sid: str, limit: float = 60.0) -> None:
        deadline = time.monotonic() + limit
        while not [m for m in self.migrations(sid) if m["status"] == "completed"]:
            assert time.monotonic() < deadline, f"{sid}: migration did not complete"
            time.sleep(0.3)


def make_plan(moves: list[tuple[int, str, str, str]], action: str = "live-migrate") -> Plan:
    """(wave, server, source, destination) per step, made now."""
    steps = tuple(
        Step(k + 1, wave, "spread", action, sid, src, dst, "agg", "test move", 0.0)
        for k, (wave, sid, src, dst) in enumerate(moves)
    )
    return Plan(datetime.now(UTC), "sha256:test", steps=steps)


def conf(cloud: Cloud, tmp: Path, nova: dict[str, Any] | None = None, **executor: Any) -> Path:
    """kronos.conf for this cloud: POLL_INTERVAL, fast backoff, stagger 0; ``nova``: more [nova] keys."""
    (tmp / "policies.yaml").write_text((ROOT / "etc" / "kronos" / "policies.yaml.sample").read_text())
    opts = {
        "stagger_seconds": 0,
        "poll_interval": POLL_INTERVAL,
        "retry_backoff": 0.1,
        "max_retries": 1,
        **executor,
    }
    text = cloud.cloud.conf("admin", **(nova or {})) + "[executor]\n"
    path = tmp / "kronos.conf"
    path.write_text(text + "".join(f"{k} = {v}\n" for k, v in opts.items()))
    return path


def results_of(tmp: Path) -> list[dict[str, Any]]:
    path = tmp / "results.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def execute(
    cloud: Cloud, tmp: Path, the_plan: Plan, *extra: str, nova: dict[str, Any] | None = None, **executor: Any
) -> tuple[Any, list[dict[str, Any]]]:
    """``kronos execute`` the plan with results and state in ``tmp``; (the run, the results rows)."""
    kronos.dump(the_plan, tmp / "plan.json")
    out = kronos_cli(*args(tmp, conf(cloud, tmp, nova, **executor)), *extra)
    return out, results_of(tmp)


def args(tmp: Path, config: Path) -> list[str]:
    return [
        "execute",
        str(tmp / "plan.json"),
        "--config",
        str(config),
        "--results",
        str(tmp / "results.jsonl"),
        "--state",
        str(tmp / "state.json"),
    ]


def start(tmp: Path, config: Path) -> subprocess.Popen[str]:
    """``kronos execute`` in the background, for the tests that signal it."""
    return subprocess.Popen(
        [sys.executable, "-c", "from kronos.cli import main; main()", *args(tmp, config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_first_migration(cloud: Cloud, vms: list[str], limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while not [m for v in vms for m in cloud.migrations(v)]:
        assert time.monotonic() < deadline, "no migration started"
        time.sleep(0.2)
