"""The Prometheus adapter against a real Prometheus serving generated exporter history.

The history (tests/promdata.py) is derived from a chosen truth, so the sample
policies' PromQL must give back exactly the intended host scores and VM
shares, and each injected data fault must produce its own health report and
a skipped aggregate. Skips locally without the Debian ``prometheus``
package; fails under CI=true.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import attrs
import pytest
import requests

from kronos.adapters.config import PrometheusConfig
from kronos.adapters.policies import load_policies
from kronos.adapters.prometheus import PrometheusClient, QueryFailed
from kronos.adapters.scores import VMRef, assess, read_policies, read_policy, read_vm_weights
from kronos.core.model import Policy
from tests import promdata
from tests.conftest import ROOT, kronos_cli
from tests.prometheus_server import serve_history

AT = datetime.fromtimestamp(promdata.END, UTC)
SAMPLE = ROOT / "etc" / "kronos" / "policies.yaml.sample"
TOL = 1e-9


@pytest.fixture(scope="module")
def truth() -> promdata.Truth:
    return promdata.build(hosts=50, vms=1000, seed=7)


@pytest.fixture(scope="module")
def prom(truth: promdata.Truth, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve_history(promdata.openmetrics(truth), tmp_path_factory.mktemp("prometheus")) as url:
        yield url


@pytest.fixture(scope="module")
def policies() -> tuple[Policy, ...]:
    return load_policies(SAMPLE)


@pytest.fixture(scope="module")
def reports(prom: str, truth: promdata.Truth, policies: tuple[Policy, ...]) -> dict[str, object]:
    readings = read_policies(PrometheusClient(prom), policies, AT)
    return {r.name: r for r in assess(readings, truth.aggregates, AT)}


def test_sample_policies_give_the_intended_host_scores(reports: dict, truth: promdata.Truth) -> None:
    good = reports["agg-good"]
    assert good.skipped is None and good.problems == ()
    cpu, mem = good.policies
    assert (cpu.policy, mem.policy) == ("cpu-spread", "memory-spread")
    hosts = truth.aggregates["agg-good"]
    assert set(cpu.scores) == set(mem.scores) == set(hosts)
    for h in hosts:
        assert cpu.scores[h] == pytest.approx(truth.hosts[h].cpu, abs=TOL)
        assert mem.scores[h] == pytest.approx(truth.hosts[h].mem, abs=TOL)
    assert cpu.imbalance == pytest.approx(statistics.pstdev(truth.hosts[h].cpu for h in hosts), abs=TOL)
    assert good.combined == pytest.approx(0.3 * cpu.imbalance + 0.7 * mem.imbalance)
    assert cpu.exceeded == (cpu.imbalance > 0.05)


def test_sample_policies_give_the_intended_vm_shares(
    prom: str, truth: promdata.Truth, policies: tuple[Policy, ...]
) -> None:
    client = PrometheusClient(prom)
    cpu = read_vm_weights(client, policies[0], AT, truth.refs)
    mem = read_vm_weights(client, policies[1], AT, truth.refs)
    for vm in truth.good_vms:
        assert cpu.weights[vm.id] == pytest.approx(truth.vm_cpu(vm), abs=TOL)
        assert mem.weights[vm.id] == pytest.approx(truth.vm_mem(vm), abs=TOL)
    ghost, twice, nan = list(truth.vms.values())[:3]
    kinds = {(p.kind, p.subject) for p in mem.problems}
    assert ("vm-duplicate", twice.id) in kinds and ("vm-value", nan.id) in kinds
    assert set(mem.missing) == {ghost.id, twice.id, nan.id}
    assert set(cpu.missing) == {ghost.id, twice.id}  # its CPU series is fine
    gap = next(p for p in mem.problems if p.kind == "vm-gap")
    assert "3 of 1000" in gap.detail and "vm_profile_fallback = skip" in gap.detail


FAULTS = [
    ("agg-gone", "gone-01", "missing", {"cpu-spread", "memory-spread"}),
    ("agg-nan", "nan-01", "nan", {"memory-spread"}),
    ("agg-inf", "inf-01", "inf", {"memory-spread"}),
    ("agg-over", "over-01", "range", {"memory-spread"}),
    ("agg-stale", "stale-01", "stale", {"cpu-spread", "memory-spread"}),
]


@pytest.mark.parametrize(("agg", "host", "kind", "policies_hit"), FAULTS)
def test_each_data_fault_is_reported_and_skips_its_aggregate(
    reports: dict, truth: promdata.Truth, agg: str, host: str, kind: str, policies_hit: set[str]
) -> None:
    rep = reports[agg]
    assert {(p.policy, p.kind, p.subject) for p in rep.problems} == {
        (name, kind, host) for name in policies_hit
    }
    assert rep.skipped is not None
    for name in policies_hit:
        assert f"{name}: data of 1 of 5 hosts not trustworthy" in rep.skipped
    for p in rep.policies:  # only the healthy hosts count; an unaffected policy is usable
        if p.policy in policies_hit:
            assert host not in p.scores and len(p.scores) == 4 and p.imbalance is None
        else:
            assert len(p.scores) == 5 and p.imbalance is not None
    if kind == "inf":
        assert "-Inf" in rep.problems[0].detail
    if kind == "stale":
        assert f"{promdata.STALE_FOR}s old" in rep.problems[0].detail


def test_duplicate_series_for_one_host(
    prom: str, truth: promdata.Truth, policies: tuple[Policy, ...]
) -> None:
    # the sample averages by nodename, so two exporters of one host do not show...
    sample = read_policies(PrometheusClient(prom), policies, AT)
    assert assess(sample, {"agg-dup": truth.aggregates["agg-dup"]}, AT)[0].skipped is None
    # ...but a query that does not aggregate returns two series for dup-01
    raw = attrs.evolve(
        policies[1],
        imbalance_query="1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes"
        " * on(instance) group_left(nodename) node_uname_info",
        weight=1.0,
    )
    rep = assess(
        {raw.name: read_policy(PrometheusClient(prom), raw, AT)}, {"agg-dup": truth.aggregates["agg-dup"]}, AT
    )[0]
    dup = [p for p in rep.problems if p.kind == "duplicate"]
    assert [p.subject for p in dup] == ["dup-01"] and "2 series for one host" in dup[0].detail
    assert rep.skipped is not None and "memory-spread" in rep.skipped


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("1 - avg by (nodename) (", "HTTP 400 bad_data"),  # PromQL syntax error
        ("node_cpu_seconds_total * on(instance) node_uname_info", "HTTP 422 execution"),  # many-to-one
        ("node_uname_info[5m]", "returned a matrix; expected an instant vector"),
    ],
)
def test_query_errors_are_reported_and_skip_every_aggregate(
    prom: str, truth: promdata.Truth, policies: tuple[Policy, ...], query: str, expected: str
) -> None:
    broken = attrs.evolve(policies[0], imbalance_query=query)
    readings = read_policies(PrometheusClient(prom), (broken, policies[1]), AT)
    assert expected in (readings["cpu-spread"].error or "")
    for rep in assess(readings, truth.aggregates, AT):
        assert rep.skipped is not None and "cpu-spread: query failed" in rep.skipped
        assert any(p.kind == "query" and expected in p.detail for p in rep.problems)
        assert rep.combined is None


def test_coverage_and_down_hosts(prom: str, truth: promdata.Truth, policies: tuple[Policy, ...]) -> None:
    readings = read_policies(PrometheusClient(prom), policies, AT)
    lenient = assess(
        readings, {"agg-nan": truth.aggregates["agg-nan"]}, AT, limits=PrometheusConfig(min_host_coverage=0.8)
    )[0]
    assert lenient.skipped is None and len(lenient.problems) == 1  # reported, not fatal
    mem = lenient.policies[1]
    four = [truth.hosts[h].mem for h in truth.aggregates["agg-nan"][:4]]
    assert mem.imbalance == pytest.approx(statistics.pstdev(four), abs=TOL)
    # a host known to be down exports nothing: no problem, no skip
    dead = assess(readings, {"agg-gone": truth.aggregates["agg-gone"]}, AT, down={"gone-01"})[0]
    assert dead.skipped is None and dead.problems == ()


def test_vm_label_types(prom: str, truth: promdata.Truth, policies: tuple[Policy, ...]) -> None:
    client = PrometheusClient(prom)
    by_domain = attrs.evolve(
        policies[0], vm_profile_label="domain", vm_profile_label_type="libvirt_domain_name"
    )
    got = read_vm_weights(client, by_domain, AT, truth.refs)
    for vm in truth.good_vms:
        assert got.weights[vm.id] == pytest.approx(truth.vm_cpu(vm), abs=TOL)
    by_name = attrs.evolve(
        policies[0],
        vm_profile_query=policies[0].vm_profile_query.replace(
            "group_left(instance_id)", "group_left(instance_name)"
        ),
        vm_profile_label="instance_name",
        vm_profile_label_type="server_name",
    )
    refs = truth.refs
    a, b = refs[10], refs[11]
    refs[11] = VMRef(b.id, a.name, b.instance_name)  # two servers with one name
    got = read_vm_weights(client, by_name, AT, refs)
    assert a.id not in got.weights and b.id not in got.weights
    assert any(p.kind == "vm-ambiguous" and p.subject == a.name for p in got.problems)
    for vm in truth.good_vms:
        if vm.id not in (a.id, b.id):
            assert got.weights[vm.id] == pytest.approx(truth.vm_cpu(vm), abs=TOL)


def test_the_longest_history_the_config_allows_is_what_prometheus_answers(
    prom: str, policies: tuple[Policy, ...], tmp_path: Path
) -> None:
    """[engine] history_window / history_step may reach MAX_POINTS steps, and not one more: the
    boundary Prometheus itself keeps (it answers MAX_POINTS + 1 samples, both ends counted)."""
    from datetime import timedelta

    from kronos.adapters.config import MAX_POINTS, load_config

    client = PrometheusClient(prom)
    longest = timedelta(seconds=MAX_POINTS)
    (series,) = client.query_range("vector(1)", AT - longest, AT, 1.0)  # a sample at every step
    assert len(series.times) == MAX_POINTS + 1 and series.times[-1] == AT.timestamp()
    assert client.query_range(policies[0].imbalance_query or "", AT - longest, AT, 1.0)
    with pytest.raises(QueryFailed, match="11,000 points"):
        client.query_range("vector(1)", AT - longest - timedelta(seconds=1), AT, 1.0)
    (tmp_path / "policies.yaml").write_text(SAMPLE.read_text())
    conf = tmp_path / "kronos.conf"
    conf.write_text(f"[engine]\nhistory_window = {MAX_POINTS}\nhistory_step = 1\n")
    assert load_config(str(conf), {}, require_scope=False).engine.history_window == MAX_POINTS


def test_connection_errors_are_retried_with_backoff(prom: str, policies: tuple[Policy, ...]) -> None:
    class Flaky(requests.Session):
        failures = 2

        def post(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            if self.failures:
                self.failures -= 1
                raise requests.ConnectionError("injected: connection reset")
            return super().post(*args, **kwargs)

    slept: list[float] = []
    client = PrometheusClient(prom, session=Flaky(), retries=3, backoff=0.25, sleep=slept.append)
    assert len(client.query(policies[0].imbalance_query or "", AT)) > 50
    assert slept == [0.25, 0.5]


def _conf(tmp: Path, url: str, extra: str = "") -> Path:
    (tmp / "policies.yaml").write_text(SAMPLE.read_text())
    conf = tmp / "kronos.conf"
    conf.write_text(f"[engine]\naggregates = agg-good\n\n[prometheus]\nurl = {url}\n{extra}")
    return conf


def _topology(tmp: Path, truth: promdata.Truth) -> Path:
    hosts = sorted({h for members in truth.aggregates.values() for h in members})
    doc = {
        "format": "kronos.snapshot/1",
        "taken_at": "2026-01-01T00:00:00Z",
        "aggregates": [{"name": n, "hosts": m} for n, m in truth.aggregates.items()],
        "hosts": [{"name": h, "capacity": {"vcpus": 8, "memory_mb": 1024, "disk_gb": 10}} for h in hosts],
    }
    path = tmp / "topology.json"
    path.write_text(json.dumps(doc))
    return path


def test_kronos_scores_prints_the_table(prom: str, truth: promdata.Truth, tmp_path: Path) -> None:
    conf, topo = _conf(tmp_path, prom), _topology(tmp_path, truth)
    args = ("scores", "--config", str(conf), "--snapshot", str(topo), "--at", "2026-01-01T00:00:00Z")
    proc = kronos_cli(*args, "--aggregate", "agg-good", "--aggregate", "agg-nan")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith(f"Prometheus {prom} at 2026-01-01T00:00:00Z")
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.startswith("  cmp-")}
    for h in truth.aggregates["agg-good"]:
        cpu, mem = (float(x) for x in rows[h][:2])
        assert abs(cpu - truth.hosts[h].cpu) <= 5e-5 and abs(mem - truth.hosts[h].mem) <= 5e-5
    good, nan = out.split("aggregate agg-nan")
    cpu_line = next(line for line in good.splitlines() if line.strip().startswith("cpu-spread"))
    hosts = truth.aggregates["agg-good"]
    imbalance = statistics.pstdev(truth.hosts[h].cpu for h in hosts)
    _, weight, shown, threshold, exceeded = cpu_line.split()
    assert (float(weight), float(threshold)) == (0.3, 0.05)
    assert abs(float(shown) - imbalance) <= 5e-5 and exceeded == ("yes" if imbalance > 0.05 else "no")
    assert "SKIPPED (bad data: memory-spread" in nan
    nan_row = next(line for line in nan.splitlines() if line.strip().startswith("nan-01"))
    assert nan_row.split()[2:] == ["NaN", "!"]
    assert "memory-spread: nan-01: score is NaN" in nan
    assert "agg-over" not in out  # only the aggregates asked for

    shown_json = kronos_cli(*args, "-o", "-")  # the report document
    assert shown_json.returncode == 0, shown_json.stderr
    as_json = json.loads(shown_json.stdout)
    assert [a["name"] for a in as_json["aggregates"]] == ["agg-good"]  # [engine] aggregates
    scores = as_json["aggregates"][0]["policies"][1]["scores"]
    assert all(abs(scores[h][0] - truth.hosts[h].mem) <= TOL for h in hosts)
    # [engine] history_window's default: 31 samples a minute apart, the sample PromQL's rate() included
    for policy in as_json["aggregates"][0]["policies"]:
        truth_of = {"cpu-spread": "cpu", "memory-spread": "mem"}[policy["name"]]
        for h in hosts:
            assert policy["history"][h] == pytest.approx([getattr(truth.hosts[h], truth_of)] * 31, abs=TOL)
        assert policy["problems"] == []  # no gaps


def test_kronos_scores_checks_again_the_hosts_record_left_out(
    prom: str, truth: promdata.Truth, tmp_path: Path
) -> None:
    """A snapshot that `kronos record` made without nan-01 (its data was bad): scored from that
    snapshot, agg-nan is still skipped, not reported healthy on the hosts that were kept."""
    conf, topo = _conf(tmp_path, prom), _topology(tmp_path, truth)
    doc = json.loads(topo.read_text())
    for agg in doc["aggregates"]:
        agg["hosts"] = [h for h in agg["hosts"] if h != "nan-01"]
    doc["hosts"] = [h for h in doc["hosts"] if h["name"] != "nan-01"]
    args = ("scores", "--config", str(conf), "--snapshot", str(topo), "--at", "2026-01-01T00:00:00Z")
    args += ("--aggregate", "agg-nan")
    topo.write_text(json.dumps(doc))
    kept_only = kronos_cli(*args)
    assert kept_only.returncode == 0, kept_only.stderr
    assert "SKIPPED" not in kept_only.stdout  # what the kept hosts alone look like
    doc["source"] = {"excluded_members": {"agg-nan": ["nan-01"]}}
    topo.write_text(json.dumps(doc))
    proc = kronos_cli(*args)
    assert proc.returncode == 0, proc.stderr
    assert "SKIPPED (bad data: memory-spread" in proc.stdout
    assert "memory-spread: nan-01: score is NaN" in proc.stdout


def test_kronos_scores_without_topology_scores_every_reported_host(
    prom: str, truth: promdata.Truth, tmp_path: Path
) -> None:
    proc = kronos_cli("scores", "--config", str(_conf(tmp_path, prom)), "--at", str(promdata.END))
    assert proc.returncode == 0, proc.stderr
    hosts = {
        line.split()[0]
        for line in proc.stdout.splitlines()
        if line.startswith("  ") and not line.startswith("   ") and "-0" in line
    }
    assert hosts == set(truth.hosts)  # every host with data; gone-01 has none
    assert "aggregate *:" in proc.stdout and "SKIPPED" in proc.stdout  # the faulty hosts are in the pool


def test_kronos_scores_errors_name_the_problem(prom: str, tmp_path: Path) -> None:
    closed = kronos_cli(
        "scores", "--config", str(_conf(tmp_path, "http://127.0.0.1:9", "retries = 0\n")), "--at", "0"
    )
    assert closed.returncode == 69 and "http://127.0.0.1:9 unreachable" in closed.stderr
    assert "Traceback" not in closed.stderr
    bad = kronos_cli("scores", "--config", str(_conf(tmp_path, prom, "timeout = soon\n")))
    assert bad.returncode == 78 and "kronos.conf:6: [prometheus] timeout = 'soon'" in bad.stderr
    when = kronos_cli("scores", "--config", str(_conf(tmp_path, prom)), "--at", "yesterday")
    assert when.returncode == 64 and "--at 'yesterday'" in when.stderr


def test_query_failures_carry_prometheus_own_words(prom: str) -> None:
    with pytest.raises(QueryFailed, match=r"HTTP 400 bad_data: .*parse error"):
        PrometheusClient(prom).query("sum(", AT)
    [nan] = PrometheusClient(prom).query("vector(0/0)", AT)  # Prometheus writes "NaN"
    assert math.isnan(nan.value) and nan.labels == {}
