"""Spread in tight clouds: pairs of moves against single moves at the same budget (issue 19).

Why a script beside the timings: what matters here is how low the combined
imbalance ends, not only how fast. Each row plans ``kronos.testing.generate_tight``
clouds (hosts nearly full, a few with room, many server groups) with
``pair_moves`` on and off at the same budget, and reports the combined
imbalance after each, the steps, and the median time of each plan.

``python -m benchmarks.tight`` prints the table of docs/benchmarks.md
("Spread in tight clouds").
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence

import kronos
from kronos.testing import generate_tight

#: (hosts, VMs, server groups): 25 VMs a host, where pairs are weighed before every single
#: move; 40 a host, where they are tried only where single moves stall
SHAPES = ((20, 500, 60), (50, 1250, 150), (50, 2000, 150))


def _plan(snap: kronos.Snapshot, budget: int, pair_moves: bool) -> tuple[float, int, float]:
    started = time.perf_counter()
    plan = kronos.plan(snap, budget=budget, pair_moves=pair_moves)
    seconds = time.perf_counter() - started
    return plan.summary.aggregates["agg-01"].combined_after, len(plan.steps), seconds


def row(hosts: int, vms: int, groups: int, budget: int, seeds: Sequence[int]) -> str:
    cuts, stalled, single_steps, pair_steps, t_single, t_pairs = [], 0, [], [], [], []
    for seed in seeds:
        snap = generate_tight(hosts, vms, seed, groups=groups)
        s_after, s_steps, s_time = _plan(snap, budget, False)
        p_after, p_steps, p_time = _plan(snap, budget, True)
        stalled += s_steps < budget
        cuts.append((s_after - p_after) / s_after if s_after > 0 else 0.0)
        single_steps.append(s_steps)
        pair_steps.append(p_steps)
        t_single.append(s_time)
        t_pairs.append(p_time)
    return (
        f"| {hosts} × {vms}, {groups} groups | {budget} | {stalled} of {len(seeds)} "
        f"| {statistics.mean(single_steps):.1f} → {statistics.mean(pair_steps):.1f} "
        f"| {100 * statistics.mean(cuts):.1f} % ({100 * min(cuts):.1f} to {100 * max(cuts):.1f}) "
        f"| {1000 * statistics.median(t_single):.0f} → {1000 * statistics.median(t_pairs):.0f} ms |"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tight", description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=8, help="seeds 0..N-1 (default 8)")
    parser.add_argument("--budget", type=int, action="append", help="default: 20 and 40")
    args = parser.parse_args(argv)
    seeds = range(args.seeds)
    kronos.plan(generate_tight(6, 60, 0), budget=4)  # compile before timing
    print(
        "| cloud | budget | single moves stall | steps (single → pairs) "
        "| combined imbalance lower with pairs: mean (min to max) | median time (single → pairs) |"
    )
    print("|---|---|---|---|---|---|")
    for hosts, vms, groups in SHAPES:
        for budget in args.budget or (20, 40):
            print(row(hosts, vms, groups, budget, seeds), flush=True)


if __name__ == "__main__":
    main()
