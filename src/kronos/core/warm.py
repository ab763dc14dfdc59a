"""Compile (or load from numba's on-disk cache) the kernels a phase calls, before timing it.

Kernels compile on first call. The CLI calls :func:`warm` for the phases it
is about to run so that ``--time`` shows compilation apart from planning,
and so a first run compiles only what it needs. Each phase lists the
kernels it calls from Python (their callees compile with them), run once
on a two-host world.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime

import numpy as np

from kronos.core import kernels, phases, placement, rules
from kronos.core.arrays import Arrays, World, build_world, value_arrays
from kronos.core.model import VM, Aggregate, Capacity, Flavor, Host, Policy, ServerGroup, Snapshot
from kronos.core.spread import overlap


def _tiny() -> World:
    flavor = Flavor("f", 1, 512, 1)
    snap = Snapshot(
        taken_at=datetime(2026, 1, 1, tzinfo=UTC),
        policies=(Policy("cpu"),),
        aggregates=(Aggregate("a", ("h0", "h1")),),
        hosts=(
            Host("h0", Capacity(8, 8192, 100), scores={"cpu": 0.5}),
            Host("h1", Capacity(8, 8192, 100), scores={"cpu": 0.1}),
        ),
        vms=(VM("v0", "h0", flavor, weights={"cpu": 0.2}), VM("v1", "h0", flavor, weights={"cpu": 0.2})),
        server_groups=(ServerGroup("g", "anti-affinity", ("v0", "v1")),),
    )
    return build_world(snap)


def _common(world: World, w: Arrays, hosts: np.ndarray) -> None:
    P = world.pw.size
    kernels.stats(hosts, world.active, world.score, world.pw, np.zeros(P), np.zeros(P))
    kernels.move_value(0, 0, 1, 2, np.zeros(P), np.zeros(P), *value_arrays(world))
    rules.feasible(0, 0, 1, w, True)
    rules.soft_worse(0, 0, 1, w)
    rules.walk_hosts(0, 0, hosts, -1, rules.BALANCING, False, np.empty(2, dtype=np.int64), w)
    rules.first_failing(0, 0, 1, w, True)
    rules.first_failing_target(0, 0, 1, -1, w)
    kernels.apply_move(0, 0, w)


def _spread(world: World, w: Arrays, hosts: np.ndarray) -> None:
    ov = overlap(world, "a")
    P = world.pw.size
    kernels.best_move(hosts, np.zeros(1, dtype=np.int64), np.zeros(2, dtype=np.int64), 1, 1.0, True, w, True,
                      np.zeros(P), np.zeros(P), 2, ov, np.zeros(len(world.vm_ids)))  # fmt: skip
    kernels.others_kept(0, 0, 1, ov, *value_arrays(world))
    kernels.refresh_others(0, ov, w)
    one = np.zeros(1, dtype=np.int64)  # the pair search walks many pairs in one call
    rules.walk(one, one, hosts, one - 1, rules.BALANCING, False, -1, np.zeros(0, dtype=np.bool_), False,
               np.empty(2, dtype=np.int64), w)  # fmt: skip


def _pack(world: World, w: Arrays, hosts: np.ndarray) -> None:
    norm = np.ones(3 + world.pw.size)
    open_ = np.ones(2, dtype=np.bool_)
    kernels.best_fit(0, 0, hosts, open_, w, norm)
    kernels.pack_hosts(hosts, hosts, np.arange(2, dtype=np.int64), np.ones(2, dtype=np.bool_), np.ones(2),
                       open_, 1, 1, 1, 1000, 1, 1000, 10, 1, w, norm)  # fmt: skip


def _leaving(world: World, w: Arrays, hosts: np.ndarray) -> None:
    norm = np.ones(3 + world.pw.size)
    P = world.pw.size
    order = np.zeros(1, dtype=np.int64)
    origin = world.vm_host.copy()
    placement.best_destination(
        0, 0, hosts, placement.MIN_IMBALANCE, False, w, norm, np.zeros(P), np.zeros(P), 2
    )
    placement.place_all(order, hosts, placement.MIN_IMBALANCE, w, norm)
    placement.make_room(0, order, origin, hosts, 100, w, norm)
    placement.fill_hosts(order, hosts, origin, 10, 100, w, norm)
    placement.improve(order, hosts, 1, w)


_BY_PHASE: dict[str, tuple[Callable[[World, Arrays, np.ndarray], None], ...]] = {
    phases.AFFINITY: (_common,),
    phases.SPREAD: (_common, _spread),
    phases.PACK: (_common, _pack),
    phases.EVACUATE: (_common, _leaving),
    phases.DRAIN: (_common, _leaving),
}


def warm(names: Iterable[str] = phases.PHASES) -> None:
    """Compile the kernels of the phases ``names`` (default: all of them)."""
    todo = list(dict.fromkeys(f for name in names for f in _BY_PHASE[name]))
    for f in todo:
        world = _tiny()
        f(world, world.arrays(), np.arange(2, dtype=np.int64))
