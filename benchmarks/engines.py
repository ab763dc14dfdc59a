"""One engine cycle over many aggregates, shared by 1, 2, 4 … engines on a real etcd (issue 22).

``python -m benchmarks.engines [--aggregates 200] [--hosts 50] [--vms 1000] [--engines 1 2 4]``
(``nox -s engines``). Each engine is a process running :class:`kronos.adapters.engine.Engine`
with a :class:`~kronos.adapters.coordination.Group` on one etcd (Debian's ``etcd``, started
here on loopback ports), in dry run, for one cycle. Its recording is replaced by a generated
snapshot of the aggregate (``kronos.generate``, seeded by the aggregate's name: the same
snapshot whichever engine plans it), the Nova and Prometheus reads being out of the picture
("canned answers are fine"). Every engine joins, waits until all have, loads its kernels (not
counted), then runs the cycle. Reported per engine count, as medians over the engines:

- **planning CPU**: ``time.process_time`` spent in ``kronos.plan`` (validation, world, search);
  should fall as 1/N, the aggregates being divided;
- **coordination**: wall time in ``owns`` and the aggregate locks (etcd round trips);
- **cycle wall**: the whole cycle, on this machine's cores (N processes share them).
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any


def _engine(
    member: str,
    backend: str,
    aggregates: list[str],
    hosts: int,
    vms: int,
    engines: int,
    out: Any,
    finished: Any,
) -> None:
    from datetime import datetime

    import kronos
    from kronos.adapters.config import Config, CoordinationConfig, EngineConfig
    from kronos.adapters.coordination import Group, status
    from kronos.adapters.engine import Engine
    from kronos.core.options import make_options

    group_name = f"bench-{engines}"  # a group per run: the last run's members may not have left yet
    cfg = CoordinationConfig(backend_url=backend, member_id=member, group=group_name, heartbeat_timeout=30)
    group = Group(cfg)
    timed: dict[str, Any] = {"plan_cpu": 0.0, "coordination": 0.0, "planned": 0, "names": []}

    class Timed:
        """The group, its ownership and lock calls timed."""

        member = group.member
        slot, may_start, healthy, close = group.slot, group.may_start, group.healthy, group.close

        def owns(self, aggregate: str) -> bool:
            t0 = time.perf_counter()
            try:
                return group.owns(aggregate)
            finally:
                timed["coordination"] += time.perf_counter() - t0

        @contextlib.contextmanager
        def hold(self, aggregate: str) -> Iterator[bool]:
            t0 = time.perf_counter()
            with group.hold(aggregate) as held:
                timed["coordination"] += time.perf_counter() - t0
                yield held

    class Bench(Engine):
        def _plan(self, agg: str, at: datetime) -> Any:
            seed = int(agg.rsplit("-", 1)[1])
            snap = kronos.generate(hosts=hosts, vms=vms, groups=vms // 50, seed=seed, taken_at=at)
            c0 = time.process_time()
            plan = kronos.plan(snap, state=self.journal.state, now=at)
            timed["plan_cpu"] += time.process_time() - c0
            timed["planned"] += 1
            timed["names"].append(agg)
            return plan

    config = Config(
        source="(environment)",
        engine=EngineConfig(dry_run=True, options=make_options({"aggregates": ",".join(aggregates)})),
    )
    engine = Bench(
        config, None, None, None, lambda event, **f: None,  # type: ignore[arg-type]
        coordinator=Timed(), state_store=group.state_store(),
    )  # fmt: skip
    kronos.plan(kronos.generate(hosts=5, vms=50, seed=0))  # load the kernels: not counted
    deadline = time.monotonic() + 60
    while len(status(cfg, ()).members) < engines:
        if time.monotonic() > deadline:
            raise SystemExit(f"{member}: the other engines never joined")
        time.sleep(0.1)
    t0 = time.perf_counter()
    engine.cycle(1)
    timed["wall"] = time.perf_counter() - t0
    out.put((member, timed))
    finished.wait(600)  # stay a member until every engine has cycled: a leaver's aggregates move
    group.close()


def run(backend: str, aggregates: int, hosts: int, vms: int, engines: int) -> dict[str, Any]:
    names = [f"agg-{k}" for k in range(aggregates)]
    ctx = mp.get_context("spawn")
    out, finished = ctx.Queue(), ctx.Event()
    procs = [
        ctx.Process(
            target=_engine, args=(f"e{k}-of-{engines}", backend, names, hosts, vms, engines, out, finished)
        )
        for k in range(engines)
    ]
    for p in procs:
        p.start()
    results = dict(out.get(timeout=1800) for _ in procs)
    finished.set()
    for p in procs:
        p.join()
    planned = sum(r["planned"] for r in results.values())
    seen = [n for r in results.values() for n in r["names"]]
    twice = sorted({n for n in seen if seen.count(n) > 1})
    return {
        "engines": engines,
        "planned": planned,
        "per_engine": sorted(r["planned"] for r in results.values()),
        "twice": twice,
        "plan_cpu": statistics.median(r["plan_cpu"] for r in results.values()),
        "plan_cpu_max": max(r["plan_cpu"] for r in results.values()),
        "coordination": statistics.median(r["coordination"] for r in results.values()),
        "wall": max(r["wall"] for r in results.values()),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.engines", description=__doc__.split("\n")[0])
    parser.add_argument("--aggregates", type=int, default=200)
    parser.add_argument("--hosts", type=int, default=50, help="per aggregate")
    parser.add_argument("--vms", type=int, default=1000, help="per aggregate")
    parser.add_argument("--engines", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.etcd_server import Etcd

    with tempfile.TemporaryDirectory() as tmp:
        etcd = Etcd(Path(tmp))
        etcd.start()
        try:
            print("| engines | aggregates planned (per engine) | planning CPU per engine, median (max) | "
                  "coordination per engine | cycle wall |")  # fmt: skip
            print("|---|---|---|---|---|")
            base = None
            for n in args.engines:
                r = run(etcd.backend_url, args.aggregates, args.hosts, args.vms, n)
                base = base or r["plan_cpu"]
                print(
                    f"| {n} | {r['planned']} ({', '.join(map(str, r['per_engine']))}) | "
                    f"{r['plan_cpu']:.2f} s ({r['plan_cpu_max']:.2f} s), {r['plan_cpu'] / base:.2f}× | "
                    f"{r['coordination']:.2f} s | {r['wall']:.2f} s |",
                    flush=True,
                )
        finally:
            etcd.stop()


if __name__ == "__main__":
    main()
