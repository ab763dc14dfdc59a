"""Grouping consecutive steps into waves that are safe to run at the same time.

Two rules, both sufficient. Each step was feasible on the placement its
predecessors left; the question is whether the other steps of its wave,
finished or not, in any order, can change that.

- Balancing (spread, pack, affinity): within a wave no host appears twice
  (as source or destination) and no server group appears twice. A step then
  touches only its own two hosts and its own group.
- Emptying hosts (``ONE_WAY`` phases: evacuate, drain): within a wave no
  host is both a source and a destination, and no server group appears
  twice. Destinations then only gain and sources only lose, so each
  destination's load grows monotonically towards the wave's end state, which
  the plan order already showed to fit; this lets the VMs of one failed host
  be rebuilt in parallel rather than one at a time.

``max_parallel`` caps a wave's size; a change of rule starts a new wave.
"""

from __future__ import annotations

from collections.abc import Sequence

ONE_WAY = ("evacuate", "drain")


def assign_waves(touches: Sequence[tuple[int, int, int, bool]], max_parallel: int | None = None) -> list[int]:
    """``touches[i]`` = (source, destination, group or -1, one-way); returns wave numbers from 1."""
    waves: list[int] = []
    wave = 0
    sources: set[int] = set()
    dests: set[int] = set()
    groups: set[int] = set()
    size = 0
    mode = False
    for src, dst, grp, one_way in touches:
        if one_way:
            clash = src in dests or dst in sources
        else:
            clash = src in sources or src in dests or dst in sources or dst in dests
        clash = clash or (grp >= 0 and grp in groups)
        full = max_parallel is not None and size >= max_parallel
        if wave == 0 or clash or full or one_way != mode:
            wave += 1
            sources, dests, groups, size, mode = set(), set(), set(), 0, one_way
        sources.add(src)
        dests.add(dst)
        if grp >= 0:
            groups.add(grp)
        size += 1
        waves.append(wave)
    return waves
