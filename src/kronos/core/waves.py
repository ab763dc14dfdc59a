"""Grouping consecutive steps into waves that are safe to run at the same time.

Rule (sufficient, simple): within a wave no host appears twice (as source or
destination) and no server group appears twice. Each step was feasible on
the placement its predecessors left; a step of a wave touches only its own
two hosts and its own group, so the other steps of the wave cannot change
whether it holds, in any order. ``max_parallel`` caps a wave's size.
"""

from __future__ import annotations

from collections.abc import Sequence


def assign_waves(touches: Sequence[tuple[int, int, int]], max_parallel: int | None = None) -> list[int]:
    """``touches[i]`` = (source, destination, group or -1); returns wave numbers from 1."""
    waves: list[int] = []
    wave = 0
    hosts: set[int] = set()
    groups: set[int] = set()
    size = 0
    for src, dst, grp in touches:
        clash = src in hosts or dst in hosts or (grp >= 0 and grp in groups)
        full = max_parallel is not None and size >= max_parallel
        if wave == 0 or clash or full:
            wave += 1
            hosts, groups, size = set(), set(), 0
        hosts.update((src, dst))
        if grp >= 0:
            groups.add(grp)
        size += 1
        waves.append(wave)
    return waves
