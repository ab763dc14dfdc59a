"""``openstack kronos …``: the real python-openstackclient runs the plugin (the ``osc`` extra).

Skipped where the client is not installed, except under ``CI=true``, where
``.[dev]`` installs it and a missing client is a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, kronos_cli

EXAMPLE = str(ROOT / "examples" / "snapshot.json")
OPENSTACK = shutil.which("openstack", path=str(Path(sys.executable).parent)) or shutil.which("openstack")


@pytest.fixture(autouse=True)
def openstack_client() -> None:
    if OPENSTACK is None:
        if os.environ.get("CI") == "true":
            pytest.fail("python-openstackclient is not installed (pip install -e '.[osc]')")
        pytest.skip("python-openstackclient is not installed (pip install -e '.[osc]')")


def openstack(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    assert OPENSTACK is not None
    return subprocess.run(
        [OPENSTACK, *args], capture_output=True, text=True, check=False, env={**os.environ, **(env or {})}
    )


def test_openstack_kronos_plan_is_kronos_plan() -> None:
    got = openstack("kronos", "plan", EXAMPLE, "-f", "value", "-c", "instance", "-c", "destination")
    assert got.returncode == 0, got.stderr
    want = kronos_cli("plan", EXAMPLE, "-f", "value", "-c", "instance", "-c", "destination")
    assert got.stdout == want.stdout and got.stdout.count("\n") > 3
    helped = openstack("help", "kronos", "plan")
    assert "Usage: openstack kronos plan [OPTIONS] SNAPSHOT" in helped.stdout
    assert "-f, --format [table|json|yaml|value|csv]" in helped.stdout


def test_errors_keep_kronos_exit_codes() -> None:
    missing = openstack("kronos", "validate", "/nonexistent/snap.json")
    assert missing.returncode == 66 and "Traceback" not in missing.stderr
    assert "no such file" in missing.stderr


def test_the_clients_cloud_options_reach_kronos(tmp_path: Path) -> None:
    """--os-cloud and --os-region-name are the client's; Kronos connects with them."""
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text(
        "clouds:\n  lab:\n    auth:\n      auth_url: http://127.0.0.1:9/v3\n      username: u\n"
        "      password: p\n      project_name: x\n    regions: [RegionOne, RegionTwo]\n"
    )
    (tmp_path / "policies.yaml").write_text((ROOT / "examples" / "policies.yaml").read_text())
    conf = tmp_path / "kronos.conf"
    conf.write_text("[engine]\naggregates = a\n[prometheus]\nurl = http://127.0.0.1:9\nretries = 0\n")
    env = {"OS_CLIENT_CONFIG_FILE": str(clouds)}
    args = (
        "--os-cloud",
        "lab",
        "--os-region-name",
        "RegionTwo",
        "kronos",
        "check-config",
        "--config",
        str(conf),
    )
    checked = openstack(*args, env=env)
    assert checked.returncode == 69, checked.stdout + checked.stderr
    assert "FAIL  nova aggregates" in checked.stdout and "127.0.0.1:9/v3" in checked.stdout  # lab's Keystone


def test_a_cloud_given_after_the_command_wins_over_the_clients(tmp_path: Path) -> None:
    """``openstack --os-cloud lab kronos check-config … --os-cloud=other``: the "=" form was not
    seen, so the client's lab was appended after it and won."""
    clouds = tmp_path / "clouds.yaml"
    entry = "    auth:\n      auth_url: http://127.0.0.1:{}/v3\n      username: u\n      password: p\n"
    clouds.write_text("clouds:\n  lab:\n" + entry.format(9) + "  other:\n" + entry.format(8))
    (tmp_path / "policies.yaml").write_text((ROOT / "examples" / "policies.yaml").read_text())
    conf = tmp_path / "kronos.conf"
    conf.write_text("[engine]\naggregates = a\n[prometheus]\nurl = http://127.0.0.1:9\nretries = 0\n")
    env = {"OS_CLIENT_CONFIG_FILE": str(clouds)}
    checked = openstack(
        "--os-cloud", "lab", "kronos", "check-config", "--config", str(conf), "--os-cloud=other", env=env
    )
    assert "127.0.0.1:8/v3" in checked.stdout and "127.0.0.1:9/v3" not in checked.stdout, checked.stdout
    scores = openstack("kronos", "scores", "--config", str(conf))  # offered, as kronos scores
    assert scores.returncode == 69 and "unreachable" in scores.stderr, scores.stderr
