"""``kronos run``: the engine loop against a real Nova and a real Prometheus.

A lopsided aggregate (most servers on cmp-1) whose exporter history,
derived from the same servers and ending at the present (the loop reads the
clock), makes cmp-1 the hot host. Dry run logs the plan and moves nothing;
``dry_run = false`` executes it end to end; the state's cooldown then keeps
the next cycle quiet; the lock keeps a second engine out; the loop cycles
every evaluation_interval until SIGTERM.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import kronos
from kronos.adapters.engine import EngineLock
from tests import nova_server as ns
from tests import promdata
from tests.conftest import ROOT, kronos_cli
from tests.executing import POLL_INTERVAL, Cloud
from tests.prometheus_server import import_history, serve

pytestmark = pytest.mark.nova

HOSTS = ["cmp-1", "cmp-2", "cmp-3", "cmp-4"]
LAYOUT = ["cmp-1"] * 6 + ["cmp-2", "cmp-3"]  # cmp-4 empty


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with ns.serve(HOSTS, tmp_path_factory.mktemp("nova")) as c:
        cloud = Cloud(c)
        ns.aggregate(cloud.conn, "agg-run", HOSTS)
        cloud.vms = cloud.boot("r", LAYOUT)  # type: ignore[attr-defined]
        yield cloud


def _truth(cloud: Cloud) -> promdata.Truth:
    """Host load grows with the number of servers; each server a share of its host's."""
    servers = ns.call(cloud.conn, "get", "/servers/detail?all_tenants=1")["servers"]
    return promdata.from_servers(servers, HOSTS, lambda _k, n: (0.05 + 0.1 * n, 0.1 + 0.1 * n), 1)


@pytest.fixture(scope="module")
def prom(cloud: Cloud, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("prometheus")
    now = int(time.time())
    history = promdata.shifted(promdata.openmetrics(_truth(cloud)), now - promdata.END)
    with serve(import_history(history, work), work) as url:
        yield url


def _conf(cloud: Cloud, prom: str, tmp: Path, *, dry_run: bool, **engine: Any) -> Path:
    (tmp / "policies.yaml").write_text((ROOT / "etc" / "kronos" / "policies.yaml.sample").read_text())
    settings = {"aggregates": "agg-run", "dry_run": str(dry_run).lower(), "evaluation_interval": 1, **engine}
    text = (
        "[engine]\n"
        + "".join(f"{k} = {v}\n" for k, v in settings.items())
        + f"[prometheus]\nurl = {prom}\n"
        + cloud.cloud.conf("admin")
        + f"[executor]\nstagger_seconds = 0\npoll_interval = {POLL_INTERVAL}\nretry_backoff = 0.1\nmax_retries = 1\n"
    )
    path = tmp / "kronos.conf"
    path.write_text(text)
    return path


def _log(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_dry_run_logs_the_plan_as_json_lines_and_moves_nothing(
    cloud: Cloud, prom: str, tmp_path: Path
) -> None:
    conf = _conf(cloud, prom, tmp_path, dry_run=True, aggregates="agg-run, agg-missing", plan_dir="plans")
    out = kronos_cli("run", "--config", str(conf), "--once")
    lines = _log(out.stdout)
    steps = [e for e in lines if e["event"] == "step"]
    (cycle,) = [e for e in lines if e["event"] == "cycle"]
    assert steps and all(e["dry_run"] and e["source"] == "cmp-1" for e in steps), out.stderr
    assert cycle["steps_planned"] == len(steps) and cycle["dry_run"] is True
    agg = cycle["aggregates"]["agg-run"]
    assert agg["imbalance_after"] < agg["imbalance_before"]
    # the missing aggregate is an error of its own; agg-run was planned all the same
    (missing,) = [e for e in lines if e["event"] == "aggregate"]
    assert missing["aggregate"] == "agg-missing" and out.returncode == missing["exit_code"] == 78
    assert "[engine] aggregates" in missing["error"] and "agg-missing" in missing["error"]
    assert all(cloud.migrations(v) == [] for v in cloud.vms)  # type: ignore[attr-defined]
    assert not (tmp_path / "kronos-state.json").exists()  # a dry run sets no cooldown
    # recommend, then approve: the plan is saved for kronos plans and kronos execute
    (saved,) = [e for e in lines if e["event"] == "plan_saved"]
    plan = kronos.load_plan(saved["path"])
    assert [s.instance for s in plan.steps] == [e["instance"] for e in steps]
    listed = json.loads(kronos_cli("plans", "--config", str(conf), "-f", "json").stdout)
    assert [(r["file"], r["steps"], r["aggregate"]) for r in listed] == [
        (Path(saved["path"]).name, len(steps), "agg-run")
    ]


def test_run_once_executes_a_spread_plan_end_to_end_then_rests(
    cloud: Cloud, prom: str, tmp_path: Path
) -> None:
    conf = _conf(
        cloud,
        prom,
        tmp_path,
        dry_run=False,
        results_file="results.jsonl",
        cooldown=600,
        audit_file="audit.jsonl",
        plan_dir="plans",  # left from a dry run: unused now, and the log says so
    )
    out = kronos_cli("run", "--config", str(conf), "--once")
    assert out.returncode == 0, out.stdout + out.stderr
    lines = _log(out.stdout)
    (warned,) = [e for e in lines if e["event"] == "warning"]
    assert warned["setting"] == "[engine] plan_dir" and "not saved" in warned["reason"]
    assert not (tmp_path / "plans").exists()
    steps = [e for e in lines if e["event"] == "step"]
    (cycle,) = [e for e in lines if e["event"] == "cycle"]
    assert steps and cycle["outcomes"] == {"Succeeded": len(steps)} == {"Succeeded": cycle["steps_planned"]}
    for e in steps:
        assert cloud.host_of(e["instance"]) == e["destination"]
        assert [(m["dest_compute"], m["status"]) for m in cloud.migrations(e["instance"])] == [
            (e["destination"], "completed")
        ]
    results = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert sorted(r["instance"] for r in results) == sorted(e["instance"] for e in steps)
    state = kronos.load_state(tmp_path / "kronos-state.json")
    assert "agg-run" in state.aggregate_cooldown_until
    assert {e["instance"] for e in steps} <= set(state.instance_cooldown_until)
    # the audit log: the plan, its cooldowns, then each step started and finished, saying who
    audit = (tmp_path / "audit.jsonl").read_text()
    events = [json.loads(line) for line in audit.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[:2] == ["plan", "cooldown_set"] and events[0]["dry_run"] is False
    assert "agg-run" in events[1]["aggregates"]
    started = [e["instance"] for e in events if e["event"] == "step_started"]
    finished = {e["instance"]: e["outcome"] for e in events if e["event"] == "step_finished"}
    assert sorted(started) == sorted(finished) == sorted(e["instance"] for e in steps)
    assert set(finished.values()) == {"Succeeded"}
    assert all(e["who"]["pid"] > 0 and e["who"]["user"] and e["who"]["host"] for e in events)
    # the next cycle: the aggregate rests (cooldown), nothing moves
    again = kronos_cli("run", "--config", str(conf), "--once")
    assert (tmp_path / "audit.jsonl").read_text().startswith(audit)  # appended, never rewritten
    assert again.returncode == 0, again.stderr
    (cycle,) = [e for e in _log(again.stdout) if e["event"] == "cycle"]
    assert cycle["steps_planned"] == 0
    assert all(len(cloud.migrations(e["instance"])) == 1 for e in steps)


def test_a_second_engine_on_the_same_lock_exits_75(cloud: Cloud, prom: str, tmp_path: Path) -> None:
    conf = _conf(cloud, prom, tmp_path, dry_run=True)
    with EngineLock(tmp_path / "kronos.lock"):
        out = kronos_cli("run", "--config", str(conf), "--once")
    assert out.returncode == 75 and "kronos.lock" in out.stderr and "held by another kronos run" in out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""


def test_the_loop_cycles_every_interval_until_sigterm(cloud: Cloud, prom: str, tmp_path: Path) -> None:
    conf = _conf(cloud, prom, tmp_path, dry_run=True, log_file="engine.log")
    proc = subprocess.Popen(
        [sys.executable, "-c", "from kronos.cli import main; main()", "run", "--config", str(conf)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    log = tmp_path / "engine.log"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if log.exists() and sum(e["event"] == "cycle" for e in _log(log.read_text())) >= 2:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    cycles = [e for e in _log(log.read_text()) if e["event"] == "cycle"]
    assert [c["cycle"] for c in cycles] == list(range(1, len(cycles) + 1)) and len(cycles) >= 2
    assert all(c["exit_code"] == 0 for c in cycles)


def test_an_aggregate_skipped_for_bad_data_logs_no_imbalance() -> None:
    """Its figures were of the hosts left after the bad ones (0.0 for one host), logged as if
    measured; a cooldown's skip keeps the real ones."""
    from datetime import UTC, datetime

    from kronos.adapters.engine import _summary
    from kronos.core.model import AggregateSummary, AggregateWhy, Plan, PlanSummary, Reason
    from kronos.core.reasons import render

    def logged(why: Reason, text: str | None = None) -> dict[str, Any]:
        skipped = render(why) if text is None else text
        agg = AggregateSummary({}, {}, 0.0, 0.0, skipped=skipped, why=AggregateWhy(skipped=why))
        plan = Plan(datetime(2026, 1, 1, tzinfo=UTC), "sha256:x", summary=PlanSummary({"a": agg}))
        return _summary(plan, "a")

    bad = logged(Reason("aggregate.bad_data", aggregate="a", detail="cpu-spread: query failed"))
    assert bad["imbalance_before"] is None and bad["imbalance_after"] is None
    assert bad["skipped"] == "bad data: cpu-spread: query failed"
    cooling = logged(
        Reason("aggregate.cooldown", aggregate="a", until=datetime(2026, 1, 1, 0, 10, tzinfo=UTC))
    )
    assert cooling["imbalance_before"] == 0.0 and cooling["skipped"].startswith("in cooldown")
    # the record decides, not the words (a text of that shape is not the rule's)
    assert (
        logged(Reason("aggregate.cooldown", aggregate="a"), "bad data: lookalike")["imbalance_before"] == 0.0
    )


def test_a_saved_plans_name_fits_a_file_system_whatever_the_aggregate(tmp_path: Path) -> None:
    """An aggregate name of 300 characters made a dry run's plan file name the file system
    refused; two such names alike in their first hundred must stay two files."""
    from datetime import UTC, datetime

    from kronos.adapters.engine import saved_plan_name

    at = datetime(2026, 12, 4, 2, 30, tzinfo=UTC)
    assert saved_plan_name("agg 01", at) == "plan-agg_01-20261204T023000Z.json"
    one, two = (saved_plan_name("a" * 299 + end, at) for end in "12")
    assert one != two and len(one.encode()) <= 140
    (tmp_path / one).write_text("{}")  # and the file system takes it, temporary affixes aside
