"""Planning over time: a cloud whose load moves, planned every ten minutes for a day (issue 20).

Why a simulator: the spread benchmarks time one plan on one snapshot, and a
plan that is best for one instant can be wasteful over a day. Load swings
with the hour, drifts, spikes for a few minutes and is noisy; a planner that
chases every instant moves VMs that the next hour moves back. What counts over
time is what a day of plans costs (migrations, GiB copied) against what it
buys (a lower imbalance, averaged over every minute, not just at planning
instants), and how often it undoes itself (a VM returning to a host it left
within the hour: a *ping-pong*).

The world: ``kronos.generate`` lays out hosts, flavors and an initial
placement (homogeneous hosts, so a VM weighs the same on every host); each
VM's weights from it are its *base* load, and each host's score minus its
VMs' weights is the hypervisor's own, constant load. Every minute each VM's
load (all policies alike) is its base × the diurnal swing
``1 + amplitude·sin(2π·t/24 h + phase)`` × a linear trend (±``trend`` over the
day for a ``trending`` share of the VMs), replaced by ``spike_factor`` × base
while it spikes (``spiking_per_hour`` of the VMs each hour, for
``spike_minutes``), times ``1 + noise·N(0, 1)``. All of it is one numpy array
drawn up front from the seed, so every configuration meets the same day.

The loop, minute by minute: moves due land (the VM's load counts on its new
host from that minute on), the hosts' scores and the combined imbalance are
recorded, and every ``cycle_minutes`` a snapshot is taken the way the
Prometheus recorder takes one (FORMATS §5: each host's ``score_history`` over
the last ``history_minutes`` at 60 s steps, each VM's ``weights_forecast`` by
Theil–Sen over its last ``history_minutes`` when the configuration forecasts),
planned with ``kronos.plan`` under the configuration's options, the plan's
state kept between cycles as the CLI keeps it (cooldowns), and every step
applied: it lands at the next minute, or ``seconds_per_gib`` × its memory later
(meanwhile the VM stays on its source as ``task_state: migrating``). The day
starts from the placement one unlimited instant plan makes of the generated
one (``settle``): a cloud a balancer has already run on, so that the day
measures planning over time rather than a catch-up every configuration pays.

``python -m benchmarks.simulate --seeds 3 --config off --config instant --config time-aware
--config hindsight=2 --config hindsight=3 --config hindsight=2,sustained=1200
--config hindsight=2,sustained=600 --config hindsight=3,sustained=1200``
prints the table of docs/benchmarks.md ("Planning over time: the simulator").
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import time
import typing
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import numpy as np
from attrs import frozen

import kronos
from kronos.core.model import VM, Plan, Policy, Snapshot, State
from kronos.core.trend import theil_sen

START = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
STEP_SECONDS = 60
DAY_SECONDS = 86400.0
POLICIES = ("cpu-spread", "memory-spread")

#: the configurations the CLI knows by name (options of ``kronos.plan``; ``None``: no planning)
CONFIGS: dict[str, dict[str, Any] | None] = {
    "off": None,
    "instant": {},
    # the best of the search on the reference scenario, seeds 0-2 (docs/benchmarks.md): wait for
    # 20 minutes of imbalance, and make a move pay 1e-5 of combined imbalance per GiB; forecasts
    # (plan_on forecast or max) and min_gain only added moves or removed all of them there
    "time-aware": {"min_sustained": 1200, "move_cost": 0.00001},
}


@frozen
class Scenario:
    """The simulated cloud and day; the defaults are issue 20's reference scenario."""

    hosts: int = 50
    vms: int = 2000
    hours: float = 24.0
    #: a snapshot and a plan every this many minutes, with this budget (steps per aggregate)
    cycle_minutes: int = 10
    budget: int = 10
    #: the window of each snapshot's score_history and of the VM forecasts
    history_minutes: int = 30
    #: cpu-spread and memory-spread: weights and (both) thresholds
    policy_weights: tuple[float, float] = (0.5, 0.5)
    threshold: float = 0.05
    #: the diurnal swing around each VM's base (a random phase per VM)
    amplitude: float = 0.3
    #: this share of the VMs trends by ±``trend`` of its base over 24 h
    trending: float = 0.10
    trend: float = 0.20
    #: each hour this share of the VMs spikes to ``spike_factor`` × base for ``spike_minutes``
    spiking_per_hour: float = 0.05
    spike_minutes: tuple[int, int] = (5, 10)
    spike_factor: float = 2.0
    #: relative per-minute noise (standard deviation), per VM and policy
    noise: float = 0.05
    #: how long a move takes: this many seconds per GiB of the VM's memory (0: it lands the
    #: next minute, "at once")
    seconds_per_gib: float = 0.0
    #: a VM back on a host it left less than this many minutes earlier is a ping-pong
    ping_pong_minutes: int = 60
    #: ``kronos.generate``'s hot-host skew and fill of the initial placement
    skew: float = 0.0
    fill: float = 0.65
    #: start the day from the placement an unlimited instant plan makes of the generated one
    #: (a cloud a balancer has run on before), so the day measures planning over time and not
    #: the one-off catch-up of a random placement, which every configuration pays alike
    settle: bool = True

    @property
    def minutes(self) -> int:
        return round(self.hours * 60)


@frozen
class World:
    """One seed's cloud and its whole day of load, drawn before any planning."""

    scenario: Scenario
    #: the generated snapshot (hosts, flavors, initial placement), with the scenario's policies
    snapshot: Snapshot
    #: each VM's initial host (index into ``snapshot.hosts``)
    host_of: np.ndarray
    #: (H, P) the hypervisor's own load per host
    host_base: np.ndarray
    #: (W + T, V, P) each VM's weight per minute; row 0 is minute -W (W = history_minutes)
    weights: np.ndarray
    #: (V,) memory of each VM in GiB; (V, 3) its vcpus, memory_mb, disk_gb; (H, 3) capacities
    memory_gib: np.ndarray
    need: np.ndarray
    capacity: np.ndarray
    #: VM forecasts by (minute, horizon): they depend on the load alone, so the configurations
    #: of a grid that share a horizon share them (Theil–Sen over 2 000 VMs is ~0.1 s a cycle)
    forecasts: dict[tuple[int, float], np.ndarray] = attrs.field(factory=dict, eq=False, repr=False)

    @property
    def warmup(self) -> int:
        return self.scenario.history_minutes


@frozen
class Outcome:
    """What one run of one configuration on one world did."""

    migrations: int
    gib_moved: float
    #: the combined imbalance averaged over every simulated minute
    imbalance: float
    ping_pong: int
    plans: int
    #: wall time of the whole run and of its ``kronos.plan`` calls
    seconds: float
    plan_seconds: float
    #: the combined imbalance at each minute (T,)
    per_minute: np.ndarray = attrs.field(eq=False, repr=False)
    #: every landed move: (minute, VM index, source, destination host index)
    moves: tuple[tuple[int, int, int, int], ...] = attrs.field(eq=False, repr=False)
    #: landings that found the destination without room (the planner's snapshot did not
    #: show a move still in flight); 0 in the reference runs
    overcommits: int = 0


def build_world(scenario: Scenario, seed: int) -> World:
    """The cloud of ``seed`` and the load of every VM at every minute, warm-up included."""
    snap = kronos.generate(
        hosts=scenario.hosts,
        vms=scenario.vms,
        groups=0,
        seed=seed,
        unmovable=0.0,
        skew=scenario.skew,
        fill=scenario.fill,
        policies=("cpu", "mem"),
    )
    policies = tuple(
        Policy(
            name,
            weight=w,
            threshold=scenario.threshold,
            max_migrations_per_cycle=scenario.budget,
        )
        for name, w in zip(POLICIES, scenario.policy_weights, strict=True)
    )
    snap = attrs.evolve(snap, policies=policies)
    index = {h.name: i for i, h in enumerate(snap.hosts)}
    host_of = np.array([index[v.host] for v in snap.vms], dtype=np.int64)
    base_w = np.array([[v.weights[p] for p in POLICIES] for v in snap.vms])
    scores = np.array([[h.scores[p] for p in POLICIES] for h in snap.hosts])
    host_base = np.clip(scores - _host_sums(host_of, base_w, len(snap.hosts)), 0.0, None)
    if scenario.settle:
        moved = {s.instance: s.destination for s in kronos.plan(snap, budget="unlimited").steps}
        snap = attrs.evolve(snap, vms=tuple(attrs.evolve(v, host=moved.get(v.id, v.host)) for v in snap.vms))
        host_of = np.array([index[v.host] for v in snap.vms], dtype=np.int64)
    weights = _load(scenario, np.random.default_rng([seed, 0x5113]), base_w)
    need = np.array([[v.flavor.vcpus, v.flavor.memory_mb, v.flavor.disk_gb] for v in snap.vms])
    capacity = np.array([[h.capacity.vcpus, h.capacity.memory_mb, h.capacity.disk_gb] for h in snap.hosts])
    return World(scenario, snap, host_of, host_base, weights, need[:, 1] / 1024.0, need, capacity)


def _load(s: Scenario, rng: np.random.Generator, base_w: np.ndarray) -> np.ndarray:
    """(W + T, V, P) weights: base × swing × trend, spikes, noise (module docstring)."""
    V = base_w.shape[0]
    rows = s.history_minutes + s.minutes
    t = (np.arange(rows, dtype=np.float64) - s.history_minutes) * STEP_SECONDS
    phase = rng.uniform(0.0, 2 * np.pi, size=(V,))
    factor = 1.0 + s.amplitude * np.sin(2 * np.pi * t[:, None] / DAY_SECONDS + phase[None, :])
    sign = np.where(rng.random(V) < 0.5, -1.0, 1.0) * (rng.random(V) < s.trending)
    factor *= 1.0 + s.trend * sign[None, :] * (t[:, None] / DAY_SECONDS)
    per_hour = round(s.spiking_per_hour * V)
    lo, hi = s.spike_minutes
    for hour in range(math.ceil(rows / 60)):
        spiking = rng.choice(V, size=per_hour, replace=False)
        starts = hour * 60 + rng.integers(0, 60, per_hour)
        lengths = rng.integers(lo, hi + 1, per_hour)
        for v, a, n in zip(spiking.tolist(), starts.tolist(), lengths.tolist(), strict=True):
            factor[a : a + n, v] = s.spike_factor
    noise = 1.0 + s.noise * rng.standard_normal((rows, V, base_w.shape[1]))
    weights: np.ndarray = np.clip(base_w[None, :, :] * factor[:, :, None] * noise, 0.0, 1.0)
    return weights


def _host_sums(host_of: np.ndarray, w: np.ndarray, hosts: int) -> np.ndarray:
    """(H, P) the sum of each host's VMs' weights ``w`` (V, P)."""
    return np.stack([np.bincount(host_of, w[:, p], minlength=hosts) for p in range(w.shape[1])], axis=1)


def host_scores(world: World, host_of: np.ndarray, row: int) -> np.ndarray:
    """(H, P) every host's score at weights row ``row`` with VMs placed by ``host_of``."""
    sums = _host_sums(host_of, world.weights[row], len(world.snapshot.hosts))
    scores: np.ndarray = np.clip(world.host_base + sums, 0.0, 1.0)
    return scores


def combined_imbalance(world: World, scores: np.ndarray) -> float:
    """Σ policy weight × population standard deviation of the hosts' scores (FORMATS §2)."""
    return float(np.dot(world.scenario.policy_weights, scores.std(axis=0)))


#: a planner: the snapshot of one cycle → the plan to apply
Planner = Callable[[Snapshot], Plan]


class KronosPlanner:
    """``kronos.plan`` with a configuration's options, keeping the state between cycles as the CLI does."""

    def __init__(self, budget: int, options: Mapping[str, Any]) -> None:
        self.budget = budget
        self.options = dict(options)
        self.state: State | None = None

    def __call__(self, snapshot: Snapshot) -> Plan:
        plan = kronos.plan(snapshot, budget=self.budget, state=self.state, **self.options)
        self.state = kronos.next_state(self.state, plan, now=snapshot.taken_at, **self.options)
        return plan


def landing_delays(world: World) -> np.ndarray:
    """(V,) minutes from a plan to its move of each VM landing: the next minute, or
    ``seconds_per_gib`` × the VM's memory later, whichever is later."""
    minutes = np.ceil(world.scenario.seconds_per_gib * world.memory_gib / STEP_SECONDS)
    delays: np.ndarray = np.maximum(1, minutes).astype(np.int64)
    return delays


def scripted(world: World, script: Mapping[int, Sequence[tuple[int, int]]]) -> Planner:
    """A planner that, at cycle minute m, moves each (VM index, destination host index) of ``script[m]``."""
    names = [h.name for h in world.snapshot.hosts]
    ids = [v.id for v in world.snapshot.vms]

    def planner(snap: Snapshot) -> Plan:
        minute = int((snap.taken_at - START).total_seconds() // 60)
        where = {v.id: v.host for v in snap.vms}
        steps = tuple(
            kronos.Step(
                seq,
                1,
                "spread",
                "live-migrate",
                ids[v],
                where[ids[v]],
                names[dest],
                "agg-01",
                "scripted",
                0.0,
            )
            for seq, (v, dest) in enumerate(script.get(minute, ()), start=1)
        )
        return Plan(created_at=snap.taken_at, snapshot_digest="sha256:scripted", steps=steps)

    return planner


def wait_minutes(sustained: float, history_minutes: int) -> int:
    """The minutes before the present that a wait of ``sustained`` seconds tests; a wait the
    snapshots' history does not cover is refused (``kronos.plan`` would never find it lasted)."""
    if not 0 <= sustained // STEP_SECONDS <= history_minutes:
        covers = history_minutes * STEP_SECONDS
        raise ValueError(f"sustained {sustained} s: the snapshots' history covers 0 to {covers} s")
    return int(sustained // STEP_SECONDS)


def lasted(world: World, scores: np.ndarray, sustained: float) -> np.ndarray:
    """(R,) for each minute of ``scores`` (R, H, P; oldest first): whether some policy's
    imbalance was above its threshold at that minute and at every minute of the
    ``sustained`` seconds before it, the test ``kronos.plan``'s ``min_sustained`` makes
    on a score_history (False where the rows do not reach that far back)."""
    over = np.any(scores.std(axis=1) > world.scenario.threshold, axis=1)
    calm = np.concatenate([[0], np.cumsum(~over)])  # calm[r]: calm minutes before row r
    k = int(sustained // STEP_SECONDS)  # may reach past the rows: then nothing lasted
    out = np.zeros(len(over), dtype=bool)
    if k < len(over):
        out[k:] = calm[k + 1 :] == calm[: len(over) - k]
    return out


def hindsight(world: World, moves: int, sustained: float | None = None) -> dict[int, list[tuple[int, int]]]:
    """The script of ``moves`` single moves that most lower the day's time-averaged combined
    imbalance, picked one at a time by a planner that knows the whole day's load in advance.

    Why: a yardstick for the table. A planner sees only the past; this one
    sees the future, so what it reaches with k moves a day is about the best
    any planner could with k (greedy, so not a proof: a better pair may exist).
    Each candidate is a VM, a destination with room for it and a cycle minute;
    its value is exact on the unclipped scores: a move of load w from host a to b
    changes each minute's sum of squares by 2w(s_b - s_a) + 2w², the mean not at
    all. The move lands as :func:`run` lands it. Picks go forward in time (none at a
    cycle before the last pick's) and move a VM once, so the placement each pick
    starts from is the one the script has made by then.

    ``sustained`` (seconds) holds the yardstick to a threshold gate: a pick may
    only be made at a cycle where, under the placement the script has made by
    then, the imbalance had :func:`lasted` that long (0: over a threshold at
    the cycle minute), as ``kronos.plan(min_sustained=...)`` requires. It
    shows about the best that a planner which respects its thresholds, and
    waits that long, can expect with k moves (greedy again, not a proof).
    """
    s = world.scenario
    H, W, T = len(world.snapshot.hosts), world.warmup, s.minutes
    pw = np.asarray(s.policy_weights)
    host_of = world.host_of.copy()
    load = world.weights[W : W + T]  # (T, V, P)
    sums = np.stack([_host_sums(host_of, load[t], H) for t in range(T)]) + world.host_base  # (T, H, P)
    used = np.zeros_like(world.capacity)
    np.add.at(used, host_of, world.need)
    cycles = np.arange(0, T, s.cycle_minutes)
    delay = landing_delays(world)
    if sustained is not None:
        wait_minutes(sustained, W)
    script: dict[int, list[tuple[int, int]]] = {}
    moved = np.zeros(load.shape[1], dtype=bool)
    # the half hour before the day, for the gate's window: the initial placement, as run() records it
    before = np.stack([_host_sums(host_of, world.weights[r], H) for r in range(W)]) + world.host_base
    for _ in range(moves):
        since = max(script, default=0)
        var = sums.var(axis=1)  # (T, P)
        now = np.sqrt(var) @ pw  # (T,)
        gated = np.zeros(len(cycles), dtype=bool)
        if sustained is not None:
            gated = ~lasted(world, np.concatenate([before, sums]), sustained)[W + cycles]
        best: tuple[float, int, int, int] = (0.0, -1, -1, -1)
        for v in np.flatnonzero(~moved).tolist():
            a, w = int(host_of[v]), load[:, v, None, :]
            change = np.sqrt(
                np.maximum(var[:, None, :] + (2 * w * (sums - sums[:, a : a + 1]) + 2 * w**2) / H, 0.0)
            )
            # the change of the day's total from each minute on: a move landing then keeps it
            after = np.cumsum((change @ pw - now[:, None])[::-1], axis=0)[::-1]  # (T, H)
            lands = cycles + delay[v]
            value = after[lands[lands < T]]
            value[cycles[: len(value)] < since] = 0.0
            value[gated[: len(value)]] = 0.0
            value[:, a] = 0.0
            value[:, ~np.all(used + world.need[v] <= world.capacity + 1e-9, axis=1)] = 0.0
            c, b = np.unravel_index(np.argmin(value), value.shape)
            if value[c, b] < best[0]:
                best = (float(value[c, b]), v, int(b), int(cycles[c]))
        _, v, b, minute = best
        if v < 0:
            break
        a, t = int(host_of[v]), minute + int(delay[v])
        sums[t:, a] -= load[t:, v]
        sums[t:, b] += load[t:, v]
        used[a] -= world.need[v]
        used[b] += world.need[v]
        host_of[v] = b
        moved[v] = True
        script.setdefault(minute, []).append((v, b))
    return script


def snapshot_at(
    world: World,
    minute: int,
    host_of: np.ndarray,
    history: np.ndarray,
    in_flight: set[int],
    forecast_horizon: float = 0.0,
) -> Snapshot:
    """What the recorder would write at ``minute``: scores, 30 minutes of history, weights, forecasts.

    ``history`` is (W + 1, H, P), the hosts' recorded scores oldest first, the
    last row now (so the last sample equals the score, as FORMATS §5 wants).
    """
    snap = world.snapshot
    row = world.warmup + minute
    now_w = world.weights[row]
    forecast = None
    if forecast_horizon > 0:
        forecast = world.forecasts.get((minute, forecast_horizon))
        if forecast is None:
            window = world.weights[row - world.warmup : row + 1]  # (W + 1, V, P)
            forecast = world.forecasts[minute, forecast_horizon] = np.stack(
                [theil_sen(window[:, :, p].T, STEP_SECONDS, forecast_horizon) for p in range(len(POLICIES))],
                axis=1,
            )
    names = [h.name for h in snap.hosts]
    hosts = tuple(
        attrs.evolve(
            h,
            scores={p: float(history[-1, i, j]) for j, p in enumerate(POLICIES)},
            score_history={p: tuple(history[:, i, j].tolist()) for j, p in enumerate(POLICIES)},
        )
        for i, h in enumerate(snap.hosts)
    )
    vms = []
    w_list = now_w.tolist()
    f_list = forecast.tolist() if forecast is not None else None
    for v, base in enumerate(snap.vms):
        vms.append(
            VM(
                id=base.id,
                host=names[host_of[v]],
                flavor=base.flavor,
                name=base.name,
                task_state="migrating" if v in in_flight else None,
                weights=dict(zip(POLICIES, w_list[v], strict=True)),
                project_id=base.project_id,
                weights_forecast=dict(zip(POLICIES, f_list[v], strict=True)) if f_list else None,
            )
        )
    out = attrs.evolve(
        snap,
        taken_at=START + timedelta(minutes=minute),
        hosts=hosts,
        vms=tuple(vms),
        history_step_seconds=float(STEP_SECONDS),
        forecast_horizon_seconds=float(forecast_horizon) if forecast_horizon > 0 else None,
    )
    # The snapshot is never written, so nothing could check a plan against its sha256, and
    # hashing 2 000 VMs is two thirds of a plan's time here: the digest names the minute instead.
    object.__setattr__(out, "digest", f"simulated:minute-{minute}")
    return out


def run(world: World, planner: Planner | None, forecast_horizon: float = 0.0) -> Outcome:
    """Step ``world`` minute by minute, planning every cycle with ``planner`` (None: never).

    Per minute: land the moves due, record the scores and the combined
    imbalance, then (on a cycle minute) snapshot, plan and queue the steps.
    A move lands at the next minute or ``seconds_per_gib`` × GiB later,
    whichever is later; a landing on a host the VM left less than
    ``ping_pong_minutes`` before (counted from landing to landing) is a
    ping-pong.
    """
    started = time.perf_counter()
    s = world.scenario
    snap = world.snapshot
    H, W, T = len(snap.hosts), world.warmup, s.minutes
    vm_index = {v.id: i for i, v in enumerate(snap.vms)}
    host_index = {h.name: i for i, h in enumerate(snap.hosts)}
    host_of = world.host_of.copy()
    delay = landing_delays(world)
    used = np.zeros_like(world.capacity)
    np.add.at(used, host_of, world.need)
    recorded = np.empty((W + T, H, len(POLICIES)))
    for row in range(W):  # the half hour before the day: the initial placement
        recorded[row] = host_scores(world, host_of, row)
    per_minute = np.empty(T)
    pending: list[tuple[int, int, int]] = []  # (minute it lands, VM, destination), in plan order
    in_flight: set[int] = set()
    left: dict[tuple[int, int], int] = {}  # (VM, host) → the minute the VM last left that host
    moves: list[tuple[int, int, int, int]] = []
    migrations = plans = ping_pong = overcommits = 0
    gib = plan_seconds = 0.0
    for minute in range(T):
        due = [m for m in pending if m[0] <= minute]
        if due:
            pending = [m for m in pending if m[0] > minute]
            for _, v, dest in due:
                src = int(host_of[v])
                back = left.get((v, dest))
                if back is not None and minute - back < s.ping_pong_minutes:
                    ping_pong += 1
                left[(v, src)] = minute
                used[src] -= world.need[v]
                used[dest] += world.need[v]
                overcommits += bool(np.any(used[dest] > world.capacity[dest] + 1e-9))
                host_of[v] = dest
                moves.append((minute, v, src, dest))
            in_flight = {v for _, v, _ in pending}
        row = W + minute
        recorded[row] = host_scores(world, host_of, row)
        per_minute[minute] = combined_imbalance(world, recorded[row])
        if planner is None or minute % s.cycle_minutes:
            continue
        snapshot = snapshot_at(
            world, minute, host_of, recorded[row - W : row + 1], in_flight, forecast_horizon
        )
        t0 = time.perf_counter()
        plan = planner(snapshot)
        plan_seconds += time.perf_counter() - t0
        plans += 1
        for step in plan.steps:
            v = vm_index[step.instance]
            pending.append((minute + int(delay[v]), v, host_index[step.destination]))
            in_flight.add(v)
            migrations += 1
            gib += float(world.memory_gib[v])
    return Outcome(
        migrations=migrations,
        gib_moved=gib,
        imbalance=float(per_minute.mean()),
        ping_pong=ping_pong,
        plans=plans,
        seconds=time.perf_counter() - started,
        plan_seconds=plan_seconds,
        per_minute=per_minute,
        moves=tuple(moves),
        overcommits=overcommits,
    )


@frozen
class Config:
    """A named configuration: ``kronos.plan`` options, or ``None`` for no planning at all."""

    name: str
    options: dict[str, Any] | None
    #: not Kronos: the script of this many moves a day picked knowing the day (:func:`hindsight`)
    hindsight: int | None = None
    #: the yardstick's threshold gate in seconds (``hindsight``'s ``sustained``); None: no gate
    sustained: float | None = None

    @property
    def forecast_horizon(self) -> float:
        return float((self.options or {}).get("forecast_horizon", 0) or 0)

    def planner(self, world: World) -> Planner | None:
        if self.hindsight is not None:
            return scripted(world, hindsight(world, self.hindsight, self.sustained))
        return None if self.options is None else KronosPlanner(world.scenario.budget, self.options)


def parse_config(text: str) -> Config:
    """``instant``, ``off``, ``time-aware``, ``hindsight=K[,sustained=S]`` or
    ``[label:]key=value,key=value`` (kronos.plan options)."""
    if text in CONFIGS:
        return Config(text, CONFIGS[text])
    if text.startswith("hindsight="):
        count, comma, gate = text.partition("=")[2].partition(",")
        key, _, seconds = gate.partition("=")
        moves, wait = -1, None
        with contextlib.suppress(ValueError):  # a malformed number is caught below
            moves, wait = int(count), float(seconds) if comma else None
        if moves < 0 or (comma and (key.strip() != "sustained" or wait is None or not wait >= 0)):
            raise ValueError(
                f"config {text!r}: not hindsight=K or hindsight=K,sustained=SECONDS (K, SECONDS >= 0)"
            )
        return Config(text, None, moves, wait)
    label, _, spec = text.rpartition(":")
    options: dict[str, Any] = {}
    for item in filter(None, (x.strip() for x in spec.split(","))):
        key, eq, value = item.partition("=")
        if not eq:
            raise ValueError(
                f"config {text!r}: {item!r} is not key=value (known names: {', '.join(CONFIGS)})"
            )
        options[key.strip().replace("-", "_")] = value.strip()
    return Config(label or spec, options)


def grid(axes: Sequence[str]) -> list[Config]:
    """Every combination of ``key=v1|v2|...`` axes, each a config named by its values."""
    combos: list[dict[str, Any]] = [{}]
    for axis in axes:
        key, _, values = axis.partition("=")
        key = key.strip().replace("-", "_")
        combos = [{**c, key: v.strip()} for c in combos for v in values.split("|")]
    return [Config(",".join(f"{k}={v}" for k, v in c.items()), c) for c in combos if axes]


@frozen
class Row:
    """One configuration's outcomes over the seeds, and their means."""

    config: Config
    outcomes: tuple[Outcome, ...]
    seeds: tuple[int, ...] = ()

    def mean(self, field: str) -> float:
        return float(np.mean([getattr(o, field) for o in self.outcomes]))


def simulate(scenario: Scenario, configs: Sequence[Config], seeds: Sequence[int]) -> list[Row]:
    """Every configuration on every seed's world (built once per seed, so all meet the same day)."""
    results: dict[str, list[Outcome]] = {c.name: [] for c in configs}
    for k, seed in enumerate(seeds):
        world = build_world(scenario, seed)
        if k == 0:
            kronos.plan(world.snapshot, budget=1)  # compile (or load) the kernels outside the timings
        for c in configs:
            results[c.name].append(run(world, c.planner(world), c.forecast_horizon))
    return [Row(c, tuple(results[c.name]), tuple(seeds)) for c in configs]


def table(rows: Sequence[Row], per_seed: bool = False) -> str:
    """A markdown table of the means, each relative to the first row with planning."""
    ref = next((r for r in rows if r.config.options is not None), rows[0])
    head = (
        "| config | migrations | GiB moved | imbalance (time-avg combined) | ping-pong returns | s per run |"
    )
    lines = [head, "|---|---|---|---|---|---|"]

    def rel(x: float, y: float) -> str:
        return f" ({(x / y - 1) * 100:+.1f} %)" if y and x != y else ""

    for r in rows:
        mig, gib, imb, pp = (r.mean(f) for f in ("migrations", "gib_moved", "imbalance", "ping_pong"))
        cells = [
            f"{mig:.1f}{rel(mig, ref.mean('migrations'))}",
            f"{gib:.0f}",
            f"{imb:.4f}{rel(imb, ref.mean('imbalance'))}",
            f"{pp:.1f}{rel(pp, ref.mean('ping_pong'))}",
            f"{r.mean('seconds'):.1f}",
        ]
        lines.append(f"| {r.config.name} | " + " | ".join(cells) + " |")
        if per_seed:
            for seed, o in zip(r.seeds or range(len(r.outcomes)), r.outcomes, strict=True):
                lines.append(
                    f"| · seed {seed} | {o.migrations} | {o.gib_moved:.0f} | {o.imbalance:.4f} | "
                    f"{o.ping_pong} | {o.seconds:.1f} |"
                )
    options = [f"- {r.config.name}: {r.config.options}" for r in rows]
    return "\n".join([*lines, "", *options])


def _scenario(items: Sequence[str]) -> Scenario:
    """``--scenario key=value`` overrides of the reference scenario."""
    hints = typing.get_type_hints(Scenario)
    changes: dict[str, Any] = {}
    for item in items:
        key, _, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if key not in hints:
            raise SystemExit(f"unknown scenario field {key!r}: one of {', '.join(hints)}")
        kind = hints[key]
        if typing.get_origin(kind) is tuple:
            changes[key] = tuple(
                type(x)(y) for x, y in zip(getattr(Scenario(), key), value.split("/"), strict=True)
            )
        elif kind is bool:
            changes[key] = value.strip().lower() in ("1", "true", "yes", "on")
        else:
            changes[key] = kind(value)
    return Scenario(**changes)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.simulate", description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (default 3)")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument(
        "--config",
        action="append",
        help="instant, off, time-aware, hindsight=K[,sustained=S] (K moves a day, picked knowing "
        "the day; only where a threshold was crossed for S seconds) or "
        "[label:]key=value,... (kronos.plan options); repeatable",
    )
    parser.add_argument(
        "--grid",
        action="append",
        default=[],
        help="key=v1|v2|...: add a config for every combination of the grid's axes (after --config)",
    )
    parser.add_argument("--scenario", action="append", default=[], help="key=value (tuples: a/b)")
    parser.add_argument("--per-seed", action="store_true", help="a row per seed under each config")
    args = parser.parse_args(argv)
    scenario = _scenario(args.scenario)
    named = args.config or ([] if args.grid else ["instant", "time-aware"])
    try:
        configs = [parse_config(c) for c in named] + grid(args.grid)
        for c in configs:  # before any world is built, not after the configs ahead of it ran
            if c.sustained is not None:
                wait_minutes(c.sustained, scenario.history_minutes)
    except ValueError as e:
        parser.error(str(e))
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    rows = simulate(scenario, configs, seeds)
    print(f"{scenario}\nseeds {seeds}\n")
    print(table(rows, args.per_seed))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
