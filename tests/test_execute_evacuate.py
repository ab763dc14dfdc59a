"""``kronos execute`` of an evacuation plan, and the README's example consumer, against a real Nova.

Kept apart from tests/test_execute.py so each runs on a fresh cloud: the
fake cloud once wedged in CI (every request timing out) late in the long run of
migrations and killed clients that module puts it through.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import kronos
from tests import nova_server as ns
from tests.conftest import ROOT
from tests.executing import HOSTS, Cloud, execute, make_plan, results_of

pytestmark = pytest.mark.nova


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with ns.serve(HOSTS, tmp_path_factory.mktemp("nova")) as c:
        yield Cloud(c)


def test_an_evacuation_plan_runs_once_the_compute_service_is_forced_down(
    cloud: Cloud, tmp_path: Path
) -> None:
    vms = cloud.boot("e", ["cmp-5", "cmp-5"])
    up = cloud.boot("eu", ["cmp-3"])
    the_plan = make_plan(
        [(1, vms[0], "cmp-5", "cmp-2"), (1, vms[1], "cmp-5", "cmp-3"), (1, up[0], "cmp-3", "cmp-2")],
        action="evacuate",
    )
    # cmp-5 stays down: Nova refuses to force a host up while its `done` evacuations await its restart
    cloud.service("cmp-5", forced_down=True)
    out, rows = execute(cloud, tmp_path, the_plan, max_drift=0.5)
    assert out.returncode == 1, out.stdout + out.stderr  # the step from a live host is refused
    by = {r["instance"]: r for r in rows}
    for vm, dest in ((vms[0], "cmp-2"), (vms[1], "cmp-3")):
        assert by[vm]["outcome"] == "Succeeded", by[vm]
        assert cloud.host_of(vm) == dest
        assert [(m["migration_type"], m["status"], m["dest_compute"]) for m in cloud.migrations(vm)] == [
            ("evacuation", "done", dest)
        ]
        assert ns.wait_status(cloud.conn, vm, "ACTIVE")["OS-EXT-SRV-ATTR:host"] == dest
    assert by[up[0]]["outcome"] == "PreFlightError" and "source cmp-3 is up" in by[up[0]]["error"]
    assert cloud.migrations(up[0]) == [] and cloud.host_of(up[0]) == "cmp-3"


def test_the_readme_example_consumer_moves_vms_and_kronos_reads_what_it_wrote(
    cloud: Cloud, tmp_path: Path
) -> None:
    """examples/consume_plan.py: the plan format in, the results format and state out."""
    vms = cloud.boot("x", ["cmp-2", "cmp-2", "cmp-4"])
    the_plan = make_plan(
        [(1, vms[0], "cmp-2", "cmp-3"), (1, vms[1], "cmp-2", "cmp-4"), (2, vms[2], "cmp-1", "cmp-3")]
    )
    kronos.dump(the_plan, tmp_path / "plan.json")
    (tmp_path / "clouds.yaml").write_text(
        "clouds:\n  test:\n    auth_type: admin_token\n"
        f"    auth:\n      endpoint: {cloud.cloud.compute}\n      token: admin\n"
        f"    compute_endpoint_override: {cloud.cloud.compute}\n"
    )
    env = {
        **os.environ,
        "OS_CLOUD": "test",
        "OS_CLIENT_CONFIG_FILE": str(tmp_path / "clouds.yaml"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "consume_plan.py"),
            "plan.json",
            "results.jsonl",
            "state.json",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    rows = results_of(tmp_path)
    assert [(r["instance"], r["outcome"]) for r in rows] == [
        (vms[0], "Succeeded"),
        (vms[1], "Succeeded"),
        (vms[2], "PreFlightError"),  # it is on cmp-4, not cmp-1
    ]
    assert cloud.host_of(vms[0]) == "cmp-3" and cloud.host_of(vms[1]) == "cmp-4"
    state = kronos.load_state(tmp_path / "state.json")  # Kronos's state, fed by the example
    assert set(state.instance_cooldown_until) == set(vms)
    # kronos execute picks up where the example left off: Nova's records say those moves are done
    (tmp_path / "results.jsonl").unlink()
    again, rows = execute(cloud, tmp_path, the_plan, max_drift=0.5)
    assert again.returncode == 1  # the third step still fails pre-flight
    by = {r["instance"]: r for r in rows}
    assert by[vms[0]]["reconciled"] and by[vms[1]]["reconciled"], json.dumps(rows)
    assert by[vms[2]]["outcome"] == "PreFlightError"
    assert [len(cloud.migrations(v)) for v in vms] == [1, 1, 0]
