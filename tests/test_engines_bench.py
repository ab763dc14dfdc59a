"""The engine benchmark (benchmarks/engines.py) on a small cloud: each aggregate planned once, by
one engine, however many share the cycle (the long run is ``nox -s engines``)."""

from __future__ import annotations

from pathlib import Path

from benchmarks.engines import run

from tests.etcd_server import Etcd


def test_two_engines_plan_every_aggregate_once_between_them(etcd: Etcd, tmp_path: Path) -> None:
    alone = run(etcd.backend_url, aggregates=8, hosts=6, vms=60, engines=1)
    shared = run(etcd.backend_url, aggregates=8, hosts=6, vms=60, engines=2)
    assert alone["planned"] == alone["per_engine"][0] == 8
    assert shared["planned"] == 8 and len(shared["per_engine"]) == 2
    assert shared["per_engine"][-1] < 8  # divided, not done twice or by one
