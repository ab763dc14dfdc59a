"""Score histories and VM forecasts over time (FORMATS §5) from a real Prometheus.

One Prometheus per module serves gauges whose load rises, falls, spikes,
oscillates, has gaps and bad samples, or starts late (tests/promdata.py
``shaped``); the recorder, over a canned Nova of the same hosts and
servers, must write histories that follow them sample by sample, forecasts
that follow a trend but not a spike, and flag a host whose history is
mostly gaps. Skips locally without the Debian ``prometheus`` package;
fails under CI=true.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

import kronos
from kronos.adapters import history
from kronos.adapters.config import Config, load_config
from kronos.adapters.nova import NovaReader
from kronos.adapters.prometheus import PrometheusClient, Series
from kronos.adapters.record import record
from tests import promdata
from tests.canned_nova import CannedCloud
from tests.conftest import kronos_cli
from tests.prometheus_server import import_history, serve

AT = datetime.fromtimestamp(promdata.END, UTC)
SAMPLES = promdata.WINDOW // promdata.GRID + 1  # 31
CLOUD = CannedCloud(hosts=7, servers=14, per_aggregate=6)  # agg-0: cmp-0000..5, agg-1: cmp-0006
RISE, FALL, SPIKE, WAVE, GAPS, FLAT, LATE = CLOUD.hosts
VM = [s["id"] for s in CLOUD.servers]  # server i runs on host i % 7
VM_RISE, VM_SPIKE, VM_FLAT, VM_LATE = VM[0], VM[1], VM[2], VM[3]


def _wave(k: int) -> float:
    return 0.5 + 0.2 * math.sin(2 * math.pi * k / 10)


def _gaps(k: int) -> float | None:
    if 11 <= k <= 19:
        return None  # a scrape gap of 10 minutes: the last point shows for 5, then nothing
    return {25: math.nan, 27: 1.3}.get(k, 0.4)


HOSTS: dict[str, promdata.Shape] = {
    RISE: lambda k: 0.2 + 0.01 * k,
    FALL: lambda k: 0.7 - 0.01 * k,
    SPIKE: lambda k: 0.95 if k == 20 else 0.3,
    WAVE: _wave,
    GAPS: _gaps,
    FLAT: lambda k: 0.35,
    LATE: lambda k: 0.5 if k >= 20 else None,  # a host whose exporter started 10 minutes ago
}
VMS: dict[str, promdata.Shape] = {
    VM_RISE: lambda k: 0.02 + 0.002 * k,
    VM_SPIKE: lambda k: 0.5 if k == 25 else 0.05,
    VM_LATE: lambda k: 0.03 if k >= 26 else None,
    **{v: (lambda k: 0.04) for v in VM[2:] if v != VM_LATE},
}
POLICIES = """\
policies:
  - name: load
    mode: spread
    weight: 1.0
    threshold: 0.05
    imbalance_query: kronos_test_host_load
    host_label: nodename
    vm_profile_query: kronos_test_vm_share
    vm_profile_label: instance_id
"""


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("prometheus")
    with serve(import_history(promdata.shaped(HOSTS, VMS), work), work) as url:
        yield url


class Counting(requests.Session):
    """A real session that keeps the path and form of every POST."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, dict[str, str]]] = []

    def post(self, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.sent.append((str(url).split("/api/v1", 1)[1], dict(kwargs.get("data") or {})))
        return super().post(url, *args, **kwargs)


def _config(tmp: Path, prom: str, extra: str = "") -> Config:
    (tmp / "policies.yaml").write_text(POLICIES)
    conf = tmp / "kronos.conf"
    conf.write_text(f"[engine]\naggregates = agg-0, agg-1\n{extra}\n[prometheus]\nurl = {prom}\n")
    return load_config(str(conf), {})


def _record(tmp: Path, prom: str, extra: str = "forecast_horizon = 900") -> tuple[kronos.Snapshot, Counting]:
    session = Counting()
    snap = record(_config(tmp, prom, extra), NovaReader(CLOUD), PrometheusClient(prom, session=session), AT)
    return snap, session


@pytest.fixture(scope="module")
def recorded(prom: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[kronos.Snapshot, Counting]:
    return _record(tmp_path_factory.mktemp("record"), prom)


def _history(snap: kronos.Snapshot, host: str) -> tuple[float | None, ...]:
    h = next(h for h in snap.hosts if h.name == host)
    assert h.score_history is not None
    return h.score_history["load"]


def test_histories_follow_the_load_sample_by_sample(recorded: tuple[kronos.Snapshot, Counting]) -> None:
    snap, _ = recorded
    assert snap.history_step_seconds == 60.0
    for h in snap.hosts:
        assert h.score_history is not None and len(h.score_history["load"]) == SAMPLES
        assert h.score_history["load"][-1] == h.scores["load"]  # the last sample is the score
    rise, fall = _history(snap, RISE), _history(snap, FALL)
    assert all(a is not None and b is not None and a < b for a, b in itertools.pairwise(rise))
    assert all(a is not None and b is not None and a > b for a, b in itertools.pairwise(fall))
    assert rise == pytest.approx([HOSTS[RISE](k) for k in range(SAMPLES)], abs=1e-12)
    spike = _history(snap, SPIKE)
    assert spike[20] == 0.95 and set(spike[:20] + spike[21:]) == {0.3}
    assert _history(snap, WAVE) == pytest.approx([_wave(k) for k in range(SAMPLES)], abs=1e-12)


def test_gaps_and_bad_samples_are_null_counted_and_not_fatal(
    recorded: tuple[kronos.Snapshot, Counting],
) -> None:
    snap, _ = recorded
    gaps = _history(snap, GAPS)
    assert [k for k, x in enumerate(gaps) if x is None] == [16, 17, 18, 19, 25, 27]  # missing, NaN, 1.3
    assert set(gaps[11:16]) == {0.4}  # within Prometheus's 5-minute lookback of the last point
    src = snap.source or {}
    assert GAPS not in src["excluded_hosts"] and "agg-0" not in src["skip_aggregates"]
    assert (
        f"load: history: 6 null sample(s) (4 missing, 1 NaN, 1 outside [0, 1]) on 1 host(s) ({GAPS}), "
        "kept as gaps" in src["problems"]
    )


def test_a_host_missing_most_of_its_window_is_bad_data(recorded: tuple[kronos.Snapshot, Counting]) -> None:
    snap, _ = recorded
    src = snap.source or {}
    assert LATE not in {h.name for h in snap.hosts}
    assert src["excluded_hosts"][LATE] == (
        f"load: {LATE}: history over the last 1800s at 60s steps: 20 of 31 samples null (20 missing), "
        "more than half"
    )
    assert "load: data of 1 of 1 hosts not trustworthy" in src["skip_aggregates"]["agg-1"]


def test_vm_forecasts_follow_a_trend_not_a_spike(recorded: tuple[kronos.Snapshot, Counting]) -> None:
    snap, _ = recorded
    assert snap.forecast_horizon_seconds == 900.0
    vms = {v.id: v for v in snap.vms}
    rise = vms[VM_RISE]
    assert rise.weights_forecast is not None
    assert rise.weights["load"] == pytest.approx(0.08)
    assert rise.weights_forecast["load"] == pytest.approx(0.08 + 0.002 * 15, abs=1e-9)  # 15 more minutes
    spike = vms[VM_SPIKE]
    assert spike.weights_forecast == pytest.approx({"load": 0.05}, abs=1e-12)  # not pulled up
    assert vms[VM_FLAT].weights_forecast == pytest.approx({"load": 0.04}, abs=1e-12)
    assert vms[VM_LATE].weights_forecast == {"load": 0.03}  # 5 minutes of profile: no trend
    assert (
        "load: VM profile history (1800s at 60s steps): 26 null sample(s) (26 missing) on 1 of 14 VMs; "
        "1 more than half missing, forecast at their current weight"
    ) in (snap.source or {})["problems"]
    assert all(v.weights_forecast for v in snap.vms)


def test_one_range_query_per_policy_and_kind_aligned_to_the_snapshot(
    recorded: tuple[kronos.Snapshot, Counting],
) -> None:
    _, session = recorded
    ranges = [form for path, form in session.sent if path == "/query_range"]
    assert [path for path, _ in session.sent] == ["/query", "/query_range", "/query", "/query_range"]
    assert [f["query"] for f in ranges] == ["kronos_test_host_load", "kronos_test_vm_share"]
    for form in ranges:
        assert float(form["end"]) == promdata.END and float(form["start"]) == promdata.END - 1800
        assert float(form["step"]) == 60


def test_the_snapshot_validates_round_trips_and_plans(
    recorded: tuple[kronos.Snapshot, Counting], tmp_path: Path, checker: Any
) -> None:
    snap, _ = recorded
    assert [i for i in kronos.validate(snap) if i.severity == "error"] == []
    path = tmp_path / "snap.json"
    kronos.dump(snap, path)
    doc = json.loads(path.read_text())
    assert doc["history_step_seconds"] == 60 and doc["forecast_horizon_seconds"] == 900
    assert doc["hosts"][[h["name"] for h in doc["hosts"]].index(GAPS)]["score_history"]["load"][16] is None
    again = kronos.load_snapshot(path)
    assert again.hosts == snap.hosts and again.vms == snap.vms
    proc = kronos_cli("validate", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    plan = kronos.plan(again, forecast_horizon=900)
    checker(again, plan)


def test_window_zero_reads_no_history_and_horizon_zero_no_forecast(prom: str, tmp_path: Path) -> None:
    snap, session = _record(tmp_path, prom, "history_window = 0")
    assert all(path == "/query" for path, _ in session.sent)
    assert snap.history_step_seconds is None and all(h.score_history is None for h in snap.hosts)
    assert LATE in {h.name for h in snap.hosts}  # its score now is fine: only its history was thin
    snap, session = _record(tmp_path, prom, "history_step = 120")
    assert [path for path, _ in session.sent].count("/query_range") == 1  # hosts only
    assert snap.history_step_seconds == 120.0 and len(_history(snap, RISE)) == 16
    assert snap.forecast_horizon_seconds is None and all(v.weights_forecast is None for v in snap.vms)


def test_kronos_scores_reads_the_history(prom: str, tmp_path: Path) -> None:
    _config(tmp_path, prom)
    proc = kronos_cli(
        "scores", "--config", str(tmp_path / "kronos.conf"), "--at", str(promdata.END), "-o", "-"
    )
    assert proc.returncode == 0, proc.stderr
    [pool] = json.loads(proc.stdout)["aggregates"]
    [load] = pool["policies"]
    assert load["history"][SPIKE][20] == 0.95 and load["history"][GAPS][16] is None
    assert {(p["kind"], p["subject"]) for p in load["problems"]} == {("history", LATE), ("gaps", None)}
    assert pool["skipped"] is not None and "1 of 7 hosts" in pool["skipped"]


def _series(*points: tuple[float, float]) -> Series:
    return Series({"nodename": "h"}, [t for t, _ in points], [v for _, v in points])


def test_samples_go_on_the_grid_and_the_instant_value_last() -> None:
    window = history.Window(datetime.fromtimestamp(1000, UTC), 300, 60)  # 6 samples, 700..1000
    assert (window.samples, window.start.timestamp()) == (6, 700)
    series = {
        "a": [_series((700, 0.1), (760, 0.2), (880, math.inf), (999, 0.9))],  # 999: off the grid
        "b": [_series((700, 0.1)), _series((700, 0.3), (1000, 0.5))],
        "c": [_series((760, math.nan), (820, -0.1))],
    }
    grid = history.on_grid(series, {"a": 0.6, "b": None, "c": 0.2, "d": 0.3}, window)
    a, b, c, d = (grid.history(i) for i in range(4))
    assert a.samples == (0.1, 0.2, None, None, None, 0.6)  # the range lost its last point: the instant's
    assert a.gaps == {"missing": 2, "inf": 1} and not a.mostly_missing
    assert b.samples == (None, None, None, None, None, 0.5) and b.mostly_missing
    assert b.describe() == "5 of 6 samples null (4 missing, 1 duplicated)"
    assert c.gaps == {"missing": 3, "nan": 1, "range": 1}
    assert d.samples == (None,) * 5 + (0.3,)
    assert grid.mostly_missing.tolist() == [False, True, True, True]
    # a rises (0.1, 0.2, ... 0.6) past 1 in 10 minutes: clamped; the thin rows keep their last value
    assert history.forecast(grid, 60, 600).tolist() == [1.0, 0.5, 0.2, 0.3]
