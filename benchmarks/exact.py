"""The exact solver against the greedy (issue 19): pack hosts, spread imbalance, proven gaps.

Why a script and not timings: what matters is how good the plans are and
what is proven at each time limit, at 1, 10 and 60 s per aggregate (minutes
in all, too long for CI). Pack: ``kronos.generate_packable`` instances (a
known optimum) and generated clouds with server groups. Spread (budget 20):
generated clouds, and tight ones (``kronos.testing.generate_tight``: hosts
nearly full, many server groups), against the single-move greedy and the
default (pairs of moves where single moves stall).

``python -m benchmarks.exact`` prints the tables of docs/benchmarks.md
("Exact solver"); ``--limits 1 10`` for a shorter run.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import kronos
from kronos.testing import generate_tight

AGGREGATE = "agg-01"


def pack_rows(limits: Sequence[float]) -> list[str]:
    rows = []
    cases: list[tuple[str, kronos.Snapshot, str, str]] = []
    for k in (10, 20, 40):
        for seed in range(3):
            cases.append(
                (f"packable K={k} seed {seed}", kronos.generate_packable(k, seed), "agg-pack", str(k))
            )
    for seed in range(3):
        snap = kronos.generate(
            hosts=20, vms=240, groups=12, seed=seed, mode="pack", fill=0.3, heterogeneous=True
        )
        cases.append((f"cloud seed {seed} (20 hosts, groups)", snap, AGGREGATE, "?"))
    for label, snap, agg, optimum in cases:
        cells = []
        for limit in limits:
            opt = (
                kronos.plan(snap, mode="pack", budget="unlimited", solver="exact", time_limit=limit)
                .summary.aggregates[agg]
                .optimality
            )
            assert opt is not None
            cells.append(f"{opt.objective:g} ({opt.bound:g}, {opt.status})")
        rows.append(f"| {label} | {len(snap.vms)} | {optimum} | {_hosts(snap, agg)} | {' | '.join(cells)} |")
    return rows


def _hosts(snap: kronos.Snapshot, agg: str) -> int:
    """Hosts of ``agg`` holding a VM after the greedy's pack (FORMATS §6 ``hosts``)."""
    plan = kronos.plan(snap, mode="pack", budget="unlimited")
    where = {vm.id: vm.host for vm in snap.vms}
    for step in plan.steps:
        where[step.instance] = step.destination
    members = next(a.hosts for a in snap.aggregates if a.name == agg)
    return len({h for h in where.values() if h in members})


def spread_rows(limits: Sequence[float], large: bool) -> list[str]:
    cases: list[tuple[str, kronos.Snapshot, Sequence[float]]] = []
    for seed in range(4):
        cases.append(
            (
                f"generate 20 × 500 seed {seed}",
                kronos.generate(hosts=20, vms=500, groups=60, seed=seed),
                limits,
            )
        )
    for seed in range(4):
        cases.append((f"tight 20 × 500 seed {seed}", generate_tight(20, 500, seed, groups=60), limits))
    if large:
        cases.append(
            ("generate 50 × 5000 seed 0", kronos.generate(hosts=50, vms=5000, groups=60, seed=0), (10.0,))
        )
    rows = []
    for label, snap, these in cases:
        single = kronos.plan(snap, mode="spread", budget=20, pair_moves=False).summary.aggregates[AGGREGATE]
        default = kronos.plan(snap, mode="spread", budget=20).summary.aggregates[AGGREGATE]
        cells = []
        for limit in limits:
            if limit not in these:
                cells.append("")
                continue
            started = time.perf_counter()
            plan = kronos.plan(snap, mode="spread", budget=20, solver="exact", time_limit=limit)
            wall = time.perf_counter() - started
            opt = plan.summary.aggregates[AGGREGATE].optimality
            assert opt is not None
            cells.append(
                f"{opt.objective:.4f} (bound {opt.bound:.4f}, gap {100 * opt.gap:.1f} %, {wall:.0f} s)"
            )
        rows.append(
            f"| {label} | {single.combined_after:.4f} | {default.combined_after:.4f} | {' | '.join(cells)} |"
        )
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.exact", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--limits", type=float, nargs="+", default=[1.0, 10.0, 60.0], help="seconds (default 1 10 60)"
    )
    parser.add_argument("--large", action="store_true", help="add 50 hosts × 5 000 VMs (spread, 10 s)")
    parser.add_argument("--only", choices=("pack", "spread"), help="one table")
    args = parser.parse_args(argv)
    heads = " | ".join(f"exact {t:g} s" for t in args.limits)
    bars = "|".join("---" for _ in args.limits)
    if args.only != "spread":
        print(f"| instance | VMs | optimum | greedy | {heads} |")
        print(f"|---|---|---|---|{bars}|")
        for line in pack_rows(args.limits):
            print(line, flush=True)
    if args.only != "pack":
        print()
        print(f"| instance (budget 20) | single moves | default | {heads} |")
        print(f"|---|---|---|{bars}|")
        for line in spread_rows(args.limits, args.large):
            print(line, flush=True)


if __name__ == "__main__":
    main()
