"""``kronos execute`` against a real Nova: waves, pre-flight refusals, Nova's own refusals, reruns,
signals, evacuation. Helpers (the cloud wrapper, plans, the CLI run) are in tests/executing.py.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import attrs
import pytest

import kronos
from kronos.core.model import Plan, Step
from tests import nova_server as ns
from tests.conftest import kronos_cli
from tests.executing import (
    HOSTS,
    Cloud,
    args,
    conf,
    execute,
    make_plan,
    results_of,
    start,
    wait_for_first_migration,
)

pytestmark = pytest.mark.nova


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with ns.serve(HOSTS, tmp_path_factory.mktemp("nova")) as c:
        yield Cloud(c)


def test_a_multi_wave_plan_ends_with_every_server_on_its_planned_host(cloud: Cloud, tmp_path: Path) -> None:
    vms = cloud.boot("w", ["cmp-1"] * 4)
    plan = make_plan(
        [
            (1, vms[0], "cmp-1", "cmp-2"),
            (1, vms[1], "cmp-1", "cmp-3"),
            (2, vms[2], "cmp-1", "cmp-4"),
            (2, vms[3], "cmp-1", "cmp-2"),
        ]
    )
    out, rows = execute(cloud, tmp_path, plan, max_concurrent_migrations=2)
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
    plan = make_plan([(1, vms[0], "cmp-1", "cmp-3"), (1, vms[1], "cmp-1", "cmp-4")])
    out, _ = execute(cloud, tmp_path, plan)
    assert out.returncode == 0, out.stdout + out.stderr
    (tmp_path / "results.jsonl").unlink()  # as if killed before anything was written
    out, rows = execute(cloud, tmp_path, plan)
    assert out.returncode == 0, out.stdout + out.stderr
    assert [(r["outcome"], r["reconciled"]) for r in rows] == [("Succeeded", True)] * 2
    assert all(len(cloud.migrations(v)) == 1 for v in vms)


def test_pre_flight_skips_a_vm_moved_behind_kronos_back_and_a_disabled_destination(
    cloud: Cloud, tmp_path: Path
) -> None:
    vms = cloud.boot("p", ["cmp-2", "cmp-2", "cmp-2"])
    plan = make_plan(
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
        out, rows = execute(cloud, tmp_path, plan, max_drift=0.5)
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
    plan = make_plan([(1, vms[0], "cmp-3", "cmp-4")])  # would put both members on cmp-4
    out, rows = execute(cloud, tmp_path, plan)
    assert out.returncode == 1
    assert rows[0]["outcome"] == "MigrationFailed" and rows[0]["attempts"] == 2  # max_retries = 1
    assert cloud.host_of(vms[0]) == "cmp-3"
    state = kronos.load_state(tmp_path / "state.json")
    assert vms[0] in state.quarantined_until


def test_drift_above_max_drift_aborts_before_any_move(cloud: Cloud, tmp_path: Path) -> None:
    vms = cloud.boot("d", ["cmp-4", "cmp-4"])
    plan = make_plan([(1, vms[0], "cmp-1", "cmp-2"), (1, vms[1], "cmp-4", "cmp-2")])  # vms[0] is not on cmp-1
    out, rows = execute(cloud, tmp_path, plan)
    assert out.returncode == 75 and "max_drift" in out.stderr and rows == []
    assert cloud.migrations(vms[1]) == []


def test_an_old_plan_is_refused_and_dry_run_touches_nothing(cloud: Cloud, tmp_path: Path) -> None:
    vms = cloud.boot("o", ["cmp-2"])
    old = Plan(
        datetime(2026, 1, 1, tzinfo=UTC),
        "sha256:old",
        steps=(Step(1, 1, "spread", "live-migrate", vms[0], "cmp-2", "cmp-3", "agg", "r", 0.0),),
    )
    out, rows = execute(cloud, tmp_path, old)
    assert out.returncode == 75 and "max_plan_age" in out.stderr and rows == []
    out, rows = execute(cloud, tmp_path, old, "--dry-run")  # shows the steps, says the run would refuse
    assert out.returncode == 75 and f"would live-migrate {vms[0]} cmp-2 -> cmp-3" in out.stdout
    assert "max_plan_age" in out.stderr
    assert cloud.migrations(vms[0]) == [] and rows == []
    # a plan dated ahead of the clock (replay --now in the future) passed any age: refused, 65
    ahead = attrs.evolve(old, created_at=datetime.now(UTC) + timedelta(hours=2))
    for extra in ((), ("--dry-run",)):
        out, rows = execute(cloud, tmp_path, ahead, *extra)
        assert out.returncode == 65 and "ahead of this machine's clock" in out.stderr, (extra, out.stderr)
        assert cloud.migrations(vms[0]) == [] and rows == []


def test_a_nova_that_refuses_or_is_not_there_is_77_or_69_before_any_step(
    cloud: Cloud, tmp_path: Path
) -> None:
    """Both were 75 (try again), which a service manager retries for ever on a wrong token."""
    vms = cloud.boot("r", ["cmp-2"])
    kronos.dump(make_plan([(1, vms[0], "cmp-2", "cmp-3")]), tmp_path / "plan.json")
    good = conf(cloud, tmp_path).read_text()
    for text, code, said in [
        (good.replace("token = admin", "token = member"), 77, "HTTP 403"),
        (good.replace(cloud.cloud.compute, "http://127.0.0.1:9/v2.1"), 69, "cannot reach"),
    ]:
        config = tmp_path / "kronos.conf"
        config.write_text(text)
        out = kronos_cli(*args(tmp_path, config))
        assert out.returncode == code and said in out.stderr, out.stderr
    assert cloud.migrations(vms[0]) == [] and results_of(tmp_path) == []


def test_sigterm_mid_run_records_every_started_step_and_starts_no_more(cloud: Cloud, tmp_path: Path) -> None:
    vms = cloud.boot("s", ["cmp-1"] * 4)
    kronos.dump(make_plan([(1, v, "cmp-1", "cmp-2") for v in vms]), tmp_path / "plan.json")
    proc = start(tmp_path, conf(cloud, tmp_path, max_concurrent_migrations=1))
    wait_for_first_migration(cloud, vms)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, out + err
    rows = results_of(tmp_path)
    moved = [v for v in vms if cloud.migrations(v)]
    assert {r["instance"] for r in rows} == set(moved) and len(moved) < len(vms)
    assert all(r["outcome"] == "Succeeded" for r in rows)
    assert "starting no new steps" in err
    kronos.load_state(tmp_path / "state.json")  # parses


@pytest.mark.parametrize("how", ["second-signal", "sigkill"])
def test_leaving_at_once_mid_step_loses_nothing_and_a_rerun_never_migrates_twice(
    cloud: Cloud, tmp_path: Path, how: str
) -> None:
    vms = cloud.boot("k" + how[:2], ["cmp-3"] * 3)
    kronos.dump(make_plan([(1, v, "cmp-3", "cmp-1") for v in vms]), tmp_path / "plan.json")
    config = conf(cloud, tmp_path, max_concurrent_migrations=1)
    proc = start(tmp_path, config)
    wait_for_first_migration(cloud, vms)
    if how == "sigkill":
        proc.kill()
    else:
        proc.send_signal(signal.SIGTERM)
        assert proc.stderr is not None
        while "starting no new steps" not in proc.stderr.readline():
            pass  # the first signal is handled: the second one now means "leave at once"
        proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == (-signal.SIGKILL if how == "sigkill" else 130), out + err
    first = results_of(tmp_path)  # every line parses (json.loads raises otherwise)
    if how == "second-signal":  # the running step has a recorded outcome: interrupted, or done
        # if the (instant) fake migration ended before the second signal came
        assert [r["instance"] for r in first] == [vms[0]], first
        assert first[0]["outcome"] in ("Interrupted", "Succeeded"), first
    if (tmp_path / "state.json").exists():
        kronos.load_state(tmp_path / "state.json")
    # the rerun finishes the plan: the interrupted step is reconciled from Nova, not migrated again
    again = kronos_cli(*args(tmp_path, config))
    assert again.returncode == 0, again.stdout + again.stderr
    done = {r["instance"]: r for r in results_of(tmp_path) if r["outcome"] != "Interrupted"}
    assert set(done) == set(vms) and all(r["outcome"] == "Succeeded" for r in done.values())
    for v in vms:
        assert cloud.host_of(v) == "cmp-1"
        assert [m["status"] for m in cloud.migrations(v)] == ["completed"]  # exactly one migration
