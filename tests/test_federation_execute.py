"""``kronos execute`` of a federation plan between two real Novas (tests/nova_server.py): each
moved VM exists once, in the other cloud, on the planned host; a failed create starts the original
again; a failed delete leaves the original stopped and a rerun finishes; a SIGKILL mid-step loses
nothing and duplicates nothing. Faults come from tests/fault_proxy.py in front of one cloud.

The test cloud answers block_device_mapping_v2 with its Cinder fixture, so the volume-booted path
(replicated-volume) runs for real too; Nova's os-volumes proxy does not work there, which is one
reason the executor leaves checking a volume to Nova's create.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import pytest

import kronos
from kronos.adapters.config import ExecutorConfig, load_config
from kronos.adapters.crosscloud import LEAVING, MARKER
from kronos.adapters.executor import Executor, StepResult
from kronos.adapters.nova_actions import Compute
from kronos.core.model import Plan, Step
from kronos.errors import ConfigError
from tests import nova_server as ns
from tests.conftest import ROOT, kronos_cli
from tests.executing import POLL_INTERVAL
from tests.fault_proxy import FaultProxy, proxied

NET = "3cb9bc59-5699-4588-a4b1-b87f96708bc6"  # the Neutron fixture's network "private"
VOLUME = "6ca404f3-d844-4169-bb96-bc792f37de98"  # the Cinder fixture's bootable volume
OTHER_IMAGE = "a2459075-d96c-40d5-893e-577ff92e721c"  # a second image of the Glance fixture
TWIN_READ = r"/servers/[0-9a-f-]{36}$"  # reading one server (the executor's wait for the twin)


class Side:
    """One cloud of the pair, read back through its API."""

    def __init__(self, name: str, hosts: list[str], cloud: ns.Cloud) -> None:
        self.name, self.hosts, self.cloud = name, hosts, cloud
        self.conn = cloud.connect()
        self.flavors: dict[str, str] = {}

    def flavor(self, name: str, vcpus: int) -> None:
        self.flavors[name] = ns.flavor(self.conn, name, vcpus, 512, 1)

    def server(self, sid: str) -> dict[str, Any] | None:
        resp = self.conn.compute.get(f"/servers/{sid}", microversion="2.59", raise_exc=False)
        if resp.status_code == 404:
            return None
        assert resp.status_code == 200, resp.text
        return dict(resp.json()["server"])

    def marked(self, key: str, value: str) -> list[dict[str, Any]]:
        """Every server carrying metadata ``key = value``, read without the executor's narrowing."""
        found = ns.call(self.conn, "get", "/servers/detail?all_tenants=1", mv="2.59")["servers"]
        return [s for s in found if s["metadata"].get(key) == value]

    def actions(self, sid: str) -> list[str]:
        """What was done to the server, oldest first (Nova lists the newest first)."""
        found = ns.call(self.conn, "get", f"/servers/{sid}/os-instance-actions", mv="2.59")
        return [a["action"] for a in reversed(found["instanceActions"])]


@pytest.fixture(scope="module")
def clouds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Side, Side]]:
    alpha_hosts, beta_hosts = ["a-1", "a-2"], ["b-1", "b-2"]
    with ns.serve_all([alpha_hosts, beta_hosts], tmp_path_factory.mktemp("nova")) as (a, b):
        alpha, beta = Side("alpha", alpha_hosts, a), Side("beta", beta_hosts, b)
        alpha.flavor("small", 1)
        beta.flavor("small", 1)
        alpha.flavor("only-alpha", 1)
        alpha.flavor("huge", 1)
        beta.flavor("huge", 512)  # same name, more vCPUs than any host of beta has
        yield alpha, beta


def boot(side: Side, name: str, host: str, flavor: str = "small", **extra: Any) -> str:
    return ns.boot(side.conn, [ns.Boot(name, side.flavors[flavor], host=host, **extra)])[name]


def move(wave: int, sid: str, name: str, src: str, dst: str, data: str = "stateless-image") -> Step:
    """A cross-cloud step alpha → beta (numbered by make_plan)."""
    return Step(
        0,
        wave,
        "federation",
        "cross-cloud-migrate",
        sid,
        src,
        dst,
        "beta-agg",
        "test move",
        0.0,
        name=name,
        source_cloud="alpha",
        destination_cloud="beta",
        precondition=data,
    )


def make_plan(steps: list[Step], networks: dict[str, str] | None = None) -> Plan:
    """A federation plan made now, its steps numbered in order."""
    options = {
        "mode": "federate",
        "clouds": ["alpha", "beta"],
        "networks": networks or {},
        "data": "stateless-image",
    }
    numbered = tuple(attrs.evolve(s, seq=k + 1) for k, s in enumerate(steps))
    return Plan(datetime.now(UTC), "sha256:federation-test", options=options, steps=numbered)


def write_conf(
    tmp: Path,
    alpha: Side,
    beta: Side,
    alpha_compute: str | None = None,
    beta_compute: str | None = None,
    **ex: Any,
) -> Path:
    """A federation.conf: [nova:<cloud>] sections and [executor], no policies.yaml beside it."""
    opts = {
        "stagger_seconds": 0,
        "poll_interval": POLL_INTERVAL,
        "retry_backoff": 0.1,
        "max_retries": 1,
        "migration_timeout": 60,
        **ex,
    }
    text = alpha.cloud.conf(compute=alpha_compute, section="nova:alpha")
    text += beta.cloud.conf(compute=beta_compute, section="nova:beta")
    text += "[executor]\n" + "".join(f"{k} = {v}\n" for k, v in opts.items())
    path = tmp / "kronos.conf"
    path.write_text(text)
    return path


def cli_args(tmp: Path) -> list[str]:
    return [
        "execute",
        str(tmp / "plan.json"),
        "--config",
        str(tmp / "kronos.conf"),
        "--results",
        str(tmp / "results.jsonl"),
        "--state",
        str(tmp / "state.json"),
    ]


def rows_of(tmp: Path) -> list[dict[str, Any]]:
    path = tmp / "results.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def execute(tmp: Path, plan: Plan) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    kronos.dump(plan, tmp / "plan.json")
    out = kronos_cli(*cli_args(tmp))
    return out, rows_of(tmp)


def assert_moved(alpha: Side, beta: Side, sid: str, host: str, row: dict[str, Any]) -> dict[str, Any]:
    """Exactly one copy: the original gone from alpha (or DELETED: Nova shows a deleted server a
    moment before it answers 404), one twin in beta, ACTIVE on ``host``."""
    original = alpha.server(sid)
    assert original is None or original["status"] == "DELETED", original  # (not SOFT_DELETED: restorable)
    twins = beta.marked(MARKER, f"alpha/{sid}")
    assert [t["id"] for t in twins] == [row["twin"]]
    twin = twins[0]
    assert (twin["status"], twin["OS-EXT-SRV-ATTR:host"]) == ("ACTIVE", host)
    assert LEAVING not in twin["metadata"]
    return twin


# -- no cloud needed ------------------------------------------------------------------------------
def test_nova_sections_per_cloud_are_read_and_checked_like_nova(tmp_path: Path) -> None:
    (tmp_path / "policies.yaml").write_text((ROOT / "etc" / "kronos" / "policies.yaml.sample").read_text())
    good = tmp_path / "good.conf"
    good.write_text(
        "[nova:alpha]\nauth_type = admin_token\ntoken = t\ncompute_endpoint_override = http://a:8774/v2.1\n"
        "[nova: beta ]\ncloud = beta-admin\nregion_name = r2\ntimeout = 5\n"
    )
    config = load_config(str(good), {}, require_scope=False)
    assert sorted(config.clouds) == ["alpha", "beta"]
    assert config.clouds["alpha"].compute_endpoint_override == "http://a:8774/v2.1"
    assert str(config.clouds["alpha"].token) == "Secret('***')"
    assert (config.clouds["beta"].cloud, config.clouds["beta"].region_name) == ("beta-admin", "r2")
    assert config.clouds["beta"].timeout == 5.0 and config.nova.cloud is None
    bad = tmp_path / "bad.conf"
    bad.write_text(
        "[nova:alpha]\npasword = x\ncloud = c\ntimeout = soon\n"
        "[nova:]\ncloud = c\n"
        "[nova:gamma]\nregion_name = r\n"
        "[nova-delta]\ncloud = d\n"
    )
    with pytest.raises(ConfigError) as err:
        load_config(str(bad), {}, require_scope=False)
    text = str(err.value)
    assert f"{bad}:2: [nova:alpha] pasword: unknown option (did you mean password?)" in text
    assert f"{bad}:4: [nova:alpha] timeout = 'soon': expected a number" in text
    assert f"{bad}:5: [nova:]: name the cloud" in text
    assert "[nova:gamma]: say how to reach this cloud" in text
    assert f"{bad}:9: [nova-delta]: unknown section" in text and "[nova:NAME]" in text


def test_a_plan_naming_a_cloud_without_a_section_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "policies.yaml").write_text((ROOT / "etc" / "kronos" / "policies.yaml.sample").read_text())
    conf = tmp_path / "kronos.conf"
    conf.write_text("[nova:alpha]\ncloud = a\n[nova]\ncloud = ordinary\n")
    plan = make_plan([move(1, "0b9d1f5e-0000-4000-8000-000000000001", "web-1", "a-1", "b-2")])
    kronos.dump(plan, tmp_path / "plan.json")
    out = kronos_cli("execute", str(tmp_path / "plan.json"), "--config", str(conf), "--dry-run")
    assert out.returncode == 78, out.stderr
    assert str(conf) in out.stderr and "[nova:beta]" in out.stderr and "Traceback" not in out.stderr
    conf.write_text("[nova:alpha]\ncloud = a\n[nova:beta]\ncloud = b\n")
    out = kronos_cli("execute", str(tmp_path / "plan.json"), "--config", str(conf), "--dry-run")
    assert out.returncode == 0, out.stderr
    assert "would cross-cloud-migrate web-1 alpha/a-1 -> beta/b-2 (wave 1, stateless-image)" in out.stdout
    # one --os-cloud cannot name two clouds: an error on the command line, a warning from OS_CLOUD
    out = kronos_cli(
        "execute", str(tmp_path / "plan.json"), "--config", str(conf), "--dry-run", "--os-cloud", "a"
    )
    assert out.returncode == 64 and "--os-cloud a: a federation plan reaches each cloud" in out.stderr
    env = {**os.environ, "OS_CLOUD": "a"}
    out = subprocess.run(
        [sys.executable, "-m", "kronos", "execute", str(tmp_path / "plan.json"), "--config", str(conf), "--dry-run"],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert out.returncode == 0 and "--os-cloud a (from the environment) is not used" in out.stderr
    # an ordinary step in a federation plan, and a precondition nobody can carry out: exit 65
    mixed = Plan(
        plan.created_at,
        plan.snapshot_digest,
        options=plan.options,
        steps=(*plan.steps, Step(2, 2, "spread", "live-migrate", "x", "a-1", "a-2", "agg", "r", 0.0)),
    )
    kronos.dump(mixed, tmp_path / "plan.json")
    out = kronos_cli("execute", str(tmp_path / "plan.json"), "--config", str(conf), "--dry-run")
    assert out.returncode == 65 and "step(s) 2 are not cross-cloud-migrate" in out.stderr
    odd = Plan(
        plan.created_at, plan.snapshot_digest, steps=(attrs.evolve(plan.steps[0], precondition="hope"),)
    )
    kronos.dump(odd, tmp_path / "plan.json")
    out = kronos_cli("execute", str(tmp_path / "plan.json"), "--config", str(conf), "--dry-run")
    assert out.returncode == 65 and "steps[0].precondition = 'hope'" in out.stderr


def test_os_variables_never_reach_a_cloud_section(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """OS_CLOUD names one cloud; with it set, [nova:beta]'s explicit auth must still reach beta."""
    from kronos.adapters.crosscloud import connect_clouds

    yaml = tmp_path / "clouds.yaml"
    yaml.write_text(
        "clouds:\n  alpha:\n    region_name: RegionAlpha\n    compute_endpoint_override: http://alpha.example:8774/v2.1\n"
        "    auth: {auth_url: 'http://alpha.example:5000/v3', username: a, password: a, project_name: a}\n"
    )
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(yaml))
    monkeypatch.setenv("OS_CLOUD", "alpha")
    monkeypatch.setenv("OS_REGION_NAME", "RegionAlpha")
    (tmp_path / "policies.yaml").write_text((ROOT / "etc" / "kronos" / "policies.yaml.sample").read_text())
    conf = tmp_path / "kronos.conf"
    conf.write_text(
        "[nova:alpha]\ncloud = alpha\n"
        "[nova:beta]\nauth_url = http://beta.example:5000/v3\nusername = b\npassword = b\nproject_name = b\n"
    )
    plan = make_plan([move(1, "0b9d1f5e-0000-4000-8000-000000000001", "web-1", "a-1", "b-2")])
    clients = connect_clouds(load_config(str(conf), require_scope=False), plan)
    beta = clients["beta"].conn.config
    assert beta.region_name != "RegionAlpha" and beta.get_endpoint("compute") is None
    assert clients["alpha"].conn.config.region_name == "RegionAlpha"  # its own clouds.yaml entry


def test_the_single_cloud_executor_refuses_a_cross_cloud_step_without_calling_nova() -> None:
    plan = make_plan([move(1, "0b9d1f5e-0000-4000-8000-000000000001", "web-1", "a-1", "b-2")])
    seen: list[StepResult] = []
    # Compute(None) has no connection: any call to Nova would raise AttributeError here
    results = Executor(Compute(None), ExecutorConfig(stagger_seconds=0), seen.append).execute(plan)
    assert [(r.outcome, r.attempts) for r in results] == [("PreFlightError", 1)] and seen == results
    assert "cross-cloud-migrate: not a move within one cloud" in str(results[0].error)


# -- two real Novas -------------------------------------------------------------------------------
@pytest.mark.nova
def test_each_vm_ends_once_in_the_other_cloud_on_its_planned_host(
    clouds: tuple[Side, Side], tmp_path: Path
) -> None:
    alpha, beta = clouds
    web1 = boot(
        alpha,
        "web-1",
        "a-1",
        networks=[{"uuid": NET}],
        metadata={"role": "web"},
        tags=("blue",),
        user_data="aGVsbG8=",
    )
    web2 = boot(alpha, "web-2", "a-2")
    vol1 = boot(alpha, "vol-1", "a-1", volume=VOLUME)
    write_conf(tmp_path, alpha, beta, max_concurrent_migrations=2)
    plan = make_plan(
        [
            move(1, web1, "web-1", "a-1", "b-1"),
            move(1, vol1, "vol-1", "a-1", "b-2", data="replicated-volume"),
            move(2, web2, "web-2", "a-2", "b-2"),
        ],
        networks={"private": "private"},
    )
    out, rows = execute(tmp_path, plan)
    assert out.returncode == 0, out.stdout + out.stderr
    by = {r["instance"]: r for r in rows}
    assert len(rows) == 3 and all(r["outcome"] == "Succeeded" and not r["reconciled"] for r in rows)
    assert all((r["source_cloud"], r["destination_cloud"]) == ("alpha", "beta") for r in rows)
    twin = assert_moved(alpha, beta, web1, "b-1", by[web1])
    assert twin["name"] == "web-1" and twin["flavor"]["original_name"] == "small"
    assert twin["image"]["id"] == ns.IMAGE and list(twin["addresses"]) == ["private"]
    assert twin["metadata"] == {"role": "web", MARKER: f"alpha/{web1}"} and twin["tags"] == ["blue"]
    assert twin["OS-EXT-SRV-ATTR:user_data"] == "aGVsbG8="
    twin = assert_moved(alpha, beta, vol1, "b-2", by[vol1])
    assert twin["image"] == "" and [v["id"] for v in twin["os-extended-volumes:volumes_attached"]] == [VOLUME]
    assert twin["addresses"] == {}
    assert_moved(alpha, beta, web2, "b-2", by[web2])
    wave1_end = max(r["finished_at"] for r in rows if r["wave"] == 1)
    assert by[web2]["started_at"] >= wave1_end
    assert set(kronos.load_state(tmp_path / "state.json").instance_cooldown_until) == {web1, web2, vol1}
    again = kronos_cli(*cli_args(tmp_path))  # every step done: nothing is created twice
    assert again.returncode == 0 and "executed 0 of 0" in again.stdout, again.stderr
    assert len(beta.marked(MARKER, f"alpha/{web1}")) == 1


def recorded(side: Side, score: float) -> kronos.Snapshot:
    """The cloud as ``kronos record`` would write it, its Nova facts read from the real API and
    every host's cpu score ``score`` (the Prometheus half is tests/test_prometheus*.py's)."""
    from kronos.adapters.nova import NovaReader
    from kronos.adapters.record import build_snapshot
    from kronos.adapters.scores import PolicyReading
    from kronos.core.model import Policy

    world = NovaReader(side.conn).read(lambda a: True, include_unassigned=True)
    cpu = Policy("cpu", threshold=0.05)
    reading = PolicyReading(cpu, {h: (score,) for h in side.hosts})
    snap = build_snapshot(world, [cpu], {"cpu": reading}, {}, datetime.now(UTC))
    # each VM weighs 0.05 (the rest of a host's score is its own use), whatever else earlier tests
    # left on the host: a move then narrows the gap without turning it around
    vms = tuple(attrs.evolve(v, weights={"cpu": 0.05}) for v in snap.vms)
    return attrs.evolve(snap, cloud=side.name, vms=vms)


@pytest.mark.nova
def test_a_plan_made_from_both_clouds_is_carried_out(clouds: tuple[Side, Side], tmp_path: Path) -> None:
    """kronos federate on snapshots of the two real clouds, then kronos execute of its plan: the
    opted-in VMs (and no other) end once in beta, on the hosts the plan chose."""
    from kronos.core.federation import federate
    from kronos.core.federation_policy import Budget, Eligible, FederationPolicy, Trigger

    alpha, beta = clouds
    mine = [
        boot(alpha, f"fed-{k}", host, tags=("federate-e2e",)) for k, host in enumerate(["a-1", "a-2", "a-1"])
    ]
    stay = boot(alpha, "fed-stays", "a-2")
    snaps = {"alpha": recorded(alpha, 0.9), "beta": recorded(beta, 0.1)}
    policy = FederationPolicy(
        eligible=Eligible(tags=("federate-e2e",)),
        trigger=Trigger(load_difference=0.1),
        budget=Budget(moves=2),
        data="stateless-image",
    )
    plan = federate(snaps, policy)
    assert len(plan.steps) == 2 and {s.instance for s in plan.steps} < set(mine), plan.summary.notes
    assert all(s.destination in beta.hosts for s in plan.steps)
    write_conf(tmp_path, alpha, beta)
    out, rows = execute(tmp_path, plan)
    assert out.returncode == 0, out.stdout + out.stderr
    by = {r["instance"]: r for r in rows}
    for s in plan.steps:
        assert by[s.instance]["outcome"] == "Succeeded"
        assert_moved(alpha, beta, s.instance, s.destination, by[s.instance])
    for sid in [*set(mine) - {s.instance for s in plan.steps}, stay]:
        assert (alpha.server(sid) or {}).get("status") == "ACTIVE" and not beta.marked(MARKER, f"alpha/{sid}")


@pytest.mark.nova
def test_pre_flight_refusals_touch_nothing_and_a_twin_in_error_gives_the_original_back(
    clouds: tuple[Side, Side], tmp_path: Path
) -> None:
    alpha, beta = clouds
    net = boot(alpha, "p-net", "a-1", networks=[{"uuid": NET}])
    img = boot(alpha, "p-img", "a-1", image=OTHER_IMAGE)
    flv = boot(alpha, "p-flv", "a-2", flavor="only-alpha")
    err = boot(alpha, "p-err", "a-2", flavor="huge")
    ns.call(beta.conn, "delete", f"/images/{OTHER_IMAGE}", mv="2.35")  # beta lacks that image
    write_conf(tmp_path, alpha, beta, max_concurrent_migrations=2)
    plan = make_plan(
        [
            move(1, net, "p-net", "a-1", "b-1"),
            move(1, img, "p-img", "a-1", "b-1"),
            move(1, flv, "p-flv", "a-2", "b-2"),
            move(1, err, "p-err", "a-2", "b-2"),
        ],
        networks={"private": "dmz"},
    )
    out, rows = execute(tmp_path, plan)
    assert out.returncode == 1, out.stdout + out.stderr
    by = {r["instance"]: r for r in rows}
    assert by[net]["outcome"] == "PreFlightError"
    assert "network 'dmz' (for 'private'): not in beta" in by[net]["error"]
    assert by[img]["outcome"] == "PreFlightError" and f"image {OTHER_IMAGE}: not in beta" in by[img]["error"]
    assert by[flv]["outcome"] == "PreFlightError"
    assert "flavor 'only-alpha': none of that name in beta" in by[flv]["error"]
    for sid in (net, img, flv):  # pre-flight came before anything changed
        assert alpha.actions(sid) == ["create"]
    assert by[err]["outcome"] == "MigrationFailed" and by[err]["twin"] is None
    assert (
        "went ERROR in beta" in by[err]["error"]
        and "the original is running again in alpha" in by[err]["error"]
    )
    assert alpha.actions(err) == ["create", "stop", "start"]
    for sid in (net, img, flv, err):
        original = alpha.server(sid)
        assert original is not None and original["status"] == "ACTIVE" and LEAVING not in original["metadata"]
        assert beta.marked(MARKER, f"alpha/{sid}") == []
    state = kronos.load_state(tmp_path / "state.json")
    assert err in state.quarantined_until and net not in state.quarantined_until


@pytest.fixture
def beta_proxy(clouds: tuple[Side, Side]) -> Iterator[FaultProxy]:
    with proxied(clouds[1].cloud.compute) as p:
        yield p


@pytest.fixture
def alpha_proxy(clouds: tuple[Side, Side]) -> Iterator[FaultProxy]:
    with proxied(clouds[0].cloud.compute) as p:
        yield p


@pytest.mark.nova
def test_a_create_that_fails_starts_the_original_again_and_leaves_no_twin(
    clouds: tuple[Side, Side], beta_proxy: FaultProxy, tmp_path: Path
) -> None:
    alpha, beta = clouds
    sid = boot(alpha, "c-1", "a-1")
    beta_proxy.add("POST", r"/servers$", "503", times=99)
    write_conf(tmp_path, alpha, beta, beta_compute=beta_proxy.url)
    out, rows = execute(tmp_path, make_plan([move(1, sid, "c-1", "a-1", "b-1")]))
    assert out.returncode == 1, out.stdout + out.stderr
    assert [(r["outcome"], r["attempts"], r["twin"]) for r in rows] == [("MigrationFailed", 2, None)]
    assert "HTTP 503" in rows[0]["error"] and "the original is running again in alpha" in rows[0]["error"]
    assert beta_proxy.seen("POST", r"/servers$") == ["503", "503"]  # max_retries = 1
    assert alpha.actions(sid) == ["create", "stop", "start", "stop", "start"]
    original = alpha.server(sid)
    assert original is not None and (original["status"], original["OS-EXT-SRV-ATTR:host"]) == (
        "ACTIVE",
        "a-1",
    )
    assert LEAVING not in original["metadata"] and beta.marked(MARKER, f"alpha/{sid}") == []


@pytest.mark.nova
def test_a_rollback_that_cannot_start_the_original_is_taken_up_by_the_rerun(
    clouds: tuple[Side, Side], alpha_proxy: FaultProxy, beta_proxy: FaultProxy, tmp_path: Path
) -> None:
    """The create fails and starting the original again fails too: no twin, the original
    stopped. The results line says so, and a rerun does not skip the step but carries it out."""
    alpha, beta = clouds
    sid = boot(alpha, "r-1", "a-2")
    beta_proxy.add("POST", r"/servers$", "503", times=99)
    alpha_proxy.add("POST", rf"/servers/{sid}/action$", "503", times=99, after=1)  # the stop passes
    write_conf(
        tmp_path, alpha, beta, alpha_compute=alpha_proxy.url, beta_compute=beta_proxy.url, max_retries=0
    )
    out, rows = execute(tmp_path, make_plan([move(1, sid, "r-1", "a-2", "b-1")]))
    assert out.returncode == 1, out.stdout + out.stderr
    assert [(r["outcome"], r["twin"], r["original_stopped"]) for r in rows] == [
        ("MigrationFailed", None, True)
    ]
    assert (alpha.server(sid) or {}).get("status") == "SHUTOFF" and beta.marked(MARKER, f"alpha/{sid}") == []
    alpha_proxy.faults.clear()
    beta_proxy.faults.clear()
    again = kronos_cli(*cli_args(tmp_path))
    assert again.returncode == 0, again.stdout + again.stderr
    last = rows_of(tmp_path)[-1]
    assert (last["outcome"], last["original_stopped"]) == ("Succeeded", False)
    assert_moved(alpha, beta, sid, "b-1", last)


@pytest.mark.nova
def test_a_delete_that_fails_keeps_the_original_stopped_and_a_rerun_finishes(
    clouds: tuple[Side, Side], alpha_proxy: FaultProxy, tmp_path: Path
) -> None:
    alpha, beta = clouds
    sid = boot(alpha, "d-1", "a-2")
    alpha_proxy.add("DELETE", rf"/servers/{sid}$", "500", times=99)
    write_conf(tmp_path, alpha, beta, alpha_compute=alpha_proxy.url)
    out, rows = execute(tmp_path, make_plan([move(1, sid, "d-1", "a-2", "b-2")]))
    assert out.returncode == 1, out.stdout + out.stderr
    assert [(r["outcome"], r["attempts"]) for r in rows] == [("MigrationFailed", 2)]
    assert "could not be deleted from alpha" in rows[0]["error"] and "a rerun deletes it" in rows[0]["error"]
    twins = beta.marked(MARKER, f"alpha/{sid}")
    assert [(t["id"], t["status"], t["OS-EXT-SRV-ATTR:host"]) for t in twins] == [
        (rows[0]["twin"], "ACTIVE", "b-2")
    ]
    original = alpha.server(sid)
    assert original is not None and original["status"] == "SHUTOFF"  # one running copy: the twin
    alpha_proxy.faults.clear()
    again = kronos_cli(*cli_args(tmp_path))
    assert again.returncode == 0, again.stdout + again.stderr
    last = rows_of(tmp_path)[-1]
    assert (last["outcome"], last["reconciled"], last["twin"]) == ("Succeeded", True, rows[0]["twin"])
    assert_moved(alpha, beta, sid, "b-2", last)


@pytest.mark.nova
def test_killed_while_the_twin_is_building_a_rerun_ends_with_exactly_one_running_copy(
    clouds: tuple[Side, Side], beta_proxy: FaultProxy, tmp_path: Path
) -> None:
    alpha, beta = clouds
    sid = boot(alpha, "k-1", "a-1")
    beta_proxy.add("GET", TWIN_READ, "hang", delay=20.0)  # the first read of the new twin never returns
    write_conf(tmp_path, alpha, beta, beta_compute=beta_proxy.url)
    kronos.dump(make_plan([move(1, sid, "k-1", "a-1", "b-1")]), tmp_path / "plan.json")
    proc = subprocess.Popen(
        [sys.executable, "-c", "from kronos.cli import main; main()", *cli_args(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while "hang" not in beta_proxy.seen("GET", TWIN_READ):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.kill()
    proc.communicate(timeout=30)
    assert rows_of(tmp_path) == []  # killed before any outcome
    twins = beta.marked(MARKER, f"alpha/{sid}")
    original = alpha.server(sid)
    assert len(twins) == 1 and original is not None and original["status"] == "SHUTOFF"
    again = kronos_cli(*cli_args(tmp_path))
    assert again.returncode == 0, again.stdout + again.stderr
    rows = rows_of(tmp_path)
    assert [(r["outcome"], r["reconciled"]) for r in rows] == [("Succeeded", True)]
    assert assert_moved(alpha, beta, sid, "b-1", rows[0])["id"] == twins[0]["id"]
    assert beta_proxy.seen("POST", r"/servers$") == ["202"]  # created once, never again


@pytest.mark.nova
def test_killed_after_stopping_a_rerun_whose_pre_flight_fails_starts_the_original_again(
    clouds: tuple[Side, Side], beta_proxy: FaultProxy, tmp_path: Path
) -> None:
    alpha, beta = clouds
    sid = boot(alpha, "s-1", "a-2")
    beta_proxy.add("POST", r"/servers$", "hang", delay=20.0)  # the create never reaches beta
    write_conf(tmp_path, alpha, beta, beta_compute=beta_proxy.url)
    kronos.dump(make_plan([move(1, sid, "s-1", "a-2", "b-2")]), tmp_path / "plan.json")
    proc = subprocess.Popen(
        [sys.executable, "-c", "from kronos.cli import main; main()", *cli_args(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while "hang" not in beta_proxy.seen("POST", r"/servers$"):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.kill()
    proc.communicate(timeout=30)
    original = alpha.server(sid)
    assert original is not None and original["status"] == "SHUTOFF"
    assert original["metadata"][LEAVING] == "beta/b-2" and beta.marked(MARKER, f"alpha/{sid}") == []
    services = ns.call(beta.conn, "get", "/os-services?binary=nova-compute&host=b-2")["services"]
    ns.call(beta.conn, "put", f"/os-services/{services[0]['id']}", {"status": "disabled"})
    try:
        again = kronos_cli(*cli_args(tmp_path))
    finally:
        ns.call(beta.conn, "put", f"/os-services/{services[0]['id']}", {"status": "enabled"})
    assert again.returncode == 1, again.stdout + again.stderr
    rows = rows_of(tmp_path)
    assert [(r["outcome"], r["twin"]) for r in rows] == [("PreFlightError", None)]
    assert "b-2 in beta is disabled" in rows[0]["error"] and "running again in alpha" in rows[0]["error"]
    original = alpha.server(sid)
    assert original is not None and original["status"] == "ACTIVE" and LEAVING not in original["metadata"]
    assert beta.marked(MARKER, f"alpha/{sid}") == []
