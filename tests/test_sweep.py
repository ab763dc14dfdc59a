"""The sweep: many generated snapshots, each planned in every mode, every plan checked.

Issue #17 found its planner defects (moves off down hosts, overlapping
aggregates left worse, plans that a second plan undoes) by running
thousands of generated snapshots through every mode and an independent
checker. This keeps doing that: a plain seeded loop rather than Hypothesis,
so every run covers the same ground and says how much it covered.

``SWEEP_SNAPSHOTS`` snapshots (default sized for CI, 60: half a minute on two cores,
a minute when the machine is slow; ``nox -s sweep`` runs thousands) starting at ``SWEEP_FIRST``
(default 0). Snapshot ``i`` is the same whatever the count, so a failure
reported for snapshot ``i`` is reproduced by
``SWEEP_FIRST=i SWEEP_SNAPSHOTS=1 python -m pytest tests/test_sweep.py -s -n 0``.

Every plan must pass :func:`tests.naive.replay` and, when ``../shared`` is
there, ``check.py --strict-waves --strict-claims``; no step but an
evacuation leaves a down host and every evacuation leaves one; no VM ends
where it started; no prefix of a spread plan leaves any aggregate more
imbalanced than the snapshot, those sharing hosts included; the plan survives
a round trip through its file format; its records render and say what its
strings say. An evacuation that assumes a host fenced is checked against
the fenced snapshot (:func:`kronos.core.evacuate.fence`).
A spread plan with an unlimited budget is planned again on its result with
the same options: nothing to do when every VM has its profile, and never a
VM sent back where the first plan took it from.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import random
import traceback
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import pytest

import kronos
import kronos.testing
from kronos.core import reasons
from kronos.core.evacuate import fence
from kronos.core.phases import EVACUATE, SPREAD
from tests.conftest import CHECKER
from tests.naive import NaiveWorld, apply_plan, replay
from tests.test_rules import _records

SNAPSHOTS = int(os.environ.get("SWEEP_SNAPSHOTS", "60"))
FIRST = int(os.environ.get("SWEEP_FIRST", "0"))
SHOWN = 20  # failures spelled out in the assertion message; the count says how many in all
#: what the failure messages' Python needs
IMPORTS = (
    "import kronos, kronos.testing; from kronos.core.evacuate import fence; "
    "from tests.naive import apply_plan; from tests.test_sweep import without_thresholds"
)


def _load_checker() -> ModuleType | None:
    """check.py as a module: run in-process, a few thousand times, it costs no interpreter start."""
    if not CHECKER.exists():
        return None
    spec = importlib.util.spec_from_file_location("kronos_sweep_check", CHECKER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CHECK = _load_checker()


@dataclass(frozen=True)
class Case:
    """One generated snapshot: the generator's name and its arguments.

    ``fenced``: hosts then marked down with their scores and weights kept (a
    host that just failed still shows its last figures; FORMATS §1 allows
    both), where the generator's down hosts have none.
    """

    index: int
    maker: str
    args: dict[str, Any]
    fenced: tuple[str, ...] = ()
    #: FORMATS §5: samples of score_history (kronos.testing.with_history), 0 for none
    history: int = 0

    def snapshot(self) -> kronos.Snapshot:
        snap = getattr(kronos.testing, self.maker)(**self.args)
        if self.history:
            snap = kronos.testing.with_history(snap, self.history, self.args["seed"])
        return fence(snap, self.fenced) if self.fenced else snap

    def __str__(self) -> str:
        made = f"kronos.testing.{self.maker}({_kwargs(self.args)})"
        if self.history:
            made = f"kronos.testing.with_history({made}, {self.history}, {self.args['seed']})"
        return f"fence({made}, {list(self.fenced)})" if self.fenced else made


@dataclass(frozen=True)
class Mode:
    """One planning call: ``kronos.<call>(snapshot, **kwargs)``, thresholds zeroed or not."""

    label: str
    call: str
    kwargs: dict[str, Any]
    zero_thresholds: bool = False
    replan: bool = False

    def run(self, snap: kronos.Snapshot) -> kronos.Plan:
        """Plan ``snap`` (thresholds already zeroed when the mode says so)."""
        plan: kronos.Plan = getattr(kronos, self.call)(snap, **self.kwargs)
        return plan

    def __str__(self) -> str:
        snap = "without_thresholds(snap)" if self.zero_thresholds else "snap"
        return f"kronos.{self.call}({snap}, {_kwargs(self.kwargs)})"


def _kwargs(kw: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kw.items())


def without_thresholds(snap: kronos.Snapshot) -> kronos.Snapshot:
    """Every policy's threshold 0: spread stops only where no move helps."""
    return attrs.evolve(snap, policies=tuple(attrs.evolve(p, threshold=0.0) for p in snap.policies))


def case(index: int) -> Case:
    """Snapshot ``index`` of the sweep: its own seeded generator, whatever came before."""
    rng = random.Random(f"kronos-sweep-{index}")
    roll = rng.random()
    if roll < 0.08:
        return Case(index, "generate_packable", {"k": rng.randint(2, 7), "seed": rng.randrange(10**6)})
    if roll < 0.18:
        hosts = rng.randint(5, 16)
        args: dict[str, Any] = {
            "hosts": hosts,
            "vms": rng.randint(4 * hosts, 20 * hosts),
            "failed": rng.randint(1, 2),
            "seed": rng.randrange(10**6),
            "groups": rng.randint(0, 8),
            "slack": rng.choice([0.0, 0.1, 0.3]),
            "aggregates": rng.choice([1, 1, 2]),
            "heterogeneous": rng.random() < 0.3,
        }
        return Case(index, "generate_evacuable", args)
    hosts = rng.randint(3, 16)
    vms = rng.randint(2 * hosts, 22 * hosts)
    args = {
        "hosts": hosts,
        "vms": vms,
        "groups": rng.randint(0, max(1, vms // 12)),
        "seed": rng.randrange(10**6),
        "policies": rng.choice([("cpu", "mem"), ("cpu", "mem"), ("cpu",), ("cpu", "mem", "io")]),
        "aggregates": rng.choice([1, 1, 2, 3]),
        "overlapping": rng.random() < 0.35,
        "unassigned": rng.choice([0, 0, 0, 1, 2]),
        "heterogeneous": rng.random() < 0.3,
        "skew": rng.choice([0.3, 0.6, 1.0]),
        "down": min(hosts - 2, rng.choice([0, 0, 1, 1, 2])),
        "disabled": rng.choice([0, 0, 1, 2]),
        "missing_weights": rng.choice([0.0, 0.0, 0.0, 0.1, 0.3]),
        "broken_groups": rng.choice([0.0, 0.1, 0.3, 0.5]),
        "unmovable": rng.choice([0.0, 0.03, 0.1, 0.3]),
        "fill": rng.choice([0.3, 0.5, 0.65, 0.8, 0.95]),
        "mode": "pack" if rng.random() < 0.25 else "spread",
    }
    # FORMATS §4 from a generator of its own, so the snapshots above stay what they were
    extra = random.Random(f"kronos-sweep-s4-{index}")
    if extra.random() < 0.4:
        args |= {
            "pinned": extra.choice([0.0, 0.1, 0.3]),
            "pcpu_hosts": extra.choice([0.3, 0.7, 1.0]),
            "numa": extra.choice([0, 2, 2, 4]),
            "traits": extra.choice([0.0, 0.2, 0.5]),
            "devices": extra.choice([0.0, 0.1, 0.2]),
        }
        if args["numa"]:
            args["numa_vms"] = extra.choice([0.0, 0.3, 0.6])
    fenced: tuple[str, ...] = ()
    if rng.random() < 0.25:
        count = min(rng.choice([1, 2]), hosts - args["down"] - 1)
        fenced = tuple(f"cmp-{h + 1:03d}" for h in sorted(rng.sample(range(hosts), count)))
    # FORMATS §5, from a generator of its own too
    past = random.Random(f"kronos-sweep-s5-{index}")
    history = past.choice([2, 6, 31]) if past.random() < 0.3 else 0
    return Case(index, "generate", args, fenced, history)


def modes(snap: kronos.Snapshot, rng: random.Random) -> Iterator[Mode]:
    """Every way to plan ``snap``, options drawn from ``rng``."""
    up = [h.name for h in snap.hosts if h.up]
    down = [h.name for h in snap.hosts if not h.up]
    small = rng.choice([1, 2, 3, 5, 10])
    yield Mode("spread", "plan", {"mode": SPREAD, "budget": small})
    yield Mode("spread", "plan", {"mode": SPREAD, "budget": "unlimited"}, replan=True)
    yield Mode("spread", "plan", {"mode": SPREAD, "budget": "unlimited"}, zero_thresholds=True, replan=True)
    hard, soft = rng.choice([(True, True), (True, False), (False, True)])
    yield Mode(
        "spread+affinity",
        "plan",
        {
            "mode": SPREAD,
            "budget": rng.choice([small, "unlimited"]),
            "enforce_hard_affinity": hard,
            "enforce_soft_affinity": soft,
        },
        zero_thresholds=rng.random() < 0.5,
    )
    yield Mode(
        "pack",
        "plan",
        {
            "mode": "pack",
            "budget": rng.choice([small, 20, "unlimited"]),
            "ha_reserve": rng.choice([0, 0, 1, 2]),
            "post_drain_action": rng.choice(["none", "disable"]),
        },
    )
    if any(h.traits for h in snap.hosts):  # FORMATS §4: live migrations keep the source's CPU features
        cpu = {"require_cpu_compatibility": True}
        yield Mode("spread", "plan", {"mode": SPREAD, "budget": "unlimited", **cpu}, zero_thresholds=True)
        yield Mode("pack", "plan", {"mode": "pack", "budget": "unlimited", **cpu})
        if up:
            yield Mode("drain", "drain", {"hosts": [rng.choice(up)], **cpu})
    if up:
        yield Mode("drain", "drain", {"hosts": [rng.choice(up)], "cold_migrate_stopped": rng.random() < 0.5})
        yield Mode(
            "plan+drain",
            "plan",
            {
                "drain": [rng.choice(up)],
                "budget": rng.choice([small, "unlimited"]),
                "cold_migrate_stopped": True,
            },
        )
        yield Mode("evacuate-fenced", "evacuate", {"hosts": [rng.choice(up)], "assume_fenced": True})
    if down:
        yield Mode("evacuate", "evacuate", {"hosts": down})
    if any(h.score_history for h in snap.hosts):  # FORMATS §5: planning over time
        ahead = {"forecast_horizon": rng.choice([300, 900]), "plan_on": rng.choice(["forecast", "max"])}
        yield Mode("spread-ahead", "plan", {"mode": SPREAD, "budget": rng.choice([small, "unlimited"]), **ahead,
                                            "min_sustained": rng.choice([0, 120, 1800]),
                                            "min_gain": rng.choice([0.0, 0.05]),
                                            "move_cost": rng.choice([0.0, 1e-4])})  # fmt: skip
        # on today's scores the time options only hold moves back: no aggregate ends worse
        yield Mode("spread", "plan", {"mode": SPREAD, "budget": "unlimited", "min_sustained": 300,
                                      "min_gain": 0.02, "move_cost": 5e-5})  # fmt: skip


@dataclass
class Sweep:
    """The counts a sweep reports, what it found, and the snapshot file check.py reads."""

    tmp: Path
    dumped: kronos.Snapshot | None = None
    snapshots: int = 0
    plans: Counter[str] = field(default_factory=Counter)
    steps: int = 0
    replans: int = 0
    replans_strict: int = 0
    checked: int = 0
    failures: list[str] = field(default_factory=list)

    def fail(self, c: Case, mode: Mode | str, problem: str) -> None:
        self.failures.append(
            f"snapshot {c.index}: snap = {c}\n  {mode}\n  {problem}\n"
            f"  again: SWEEP_FIRST={c.index} SWEEP_SNAPSHOTS=1 python -m pytest tests/test_sweep.py -s -n 0"
        )

    def report(self) -> str:
        per_mode = ", ".join(f"{k} {v}" for k, v in sorted(self.plans.items()))
        checker = f"check.py ran on {self.checked} plans" if CHECK else "check.py absent (../shared)"
        return (
            f"sweep: snapshots {FIRST}..{FIRST + self.snapshots - 1}: {self.snapshots} snapshots, "
            f"{sum(self.plans.values())} plans ({per_mode}), {self.steps} steps, "
            f"{self.replans} re-plans ({self.replans_strict} required empty); {checker}; "
            f"{len(self.failures)} failures"
        )


def plan_problems(snap: kronos.Snapshot, plan: kronos.Plan, sweep: Sweep) -> list[str]:
    """Everything wrong with ``plan`` for ``snap`` that holds whatever the mode."""
    out = [f"naive.replay: {p}" for p in replay(snap, plan.steps)]
    hosts = {h.name: h for h in snap.hosts}
    for s in plan.steps:
        if (s.action == EVACUATE) == hosts[s.source].up:
            state = "up" if hosts[s.source].up else "down"
            out.append(f"step {s.seq}: {s.action} of {s.instance} from {state} host {s.source}")
    start = {v.id: v.host for v in snap.vms}
    end = {s.instance: s.destination for s in plan.steps}
    out += [f"{vm} moved and brought back to {start[vm]}" for vm, h in end.items() if h == start[vm]]
    text = io.StringIO()
    kronos.dump(plan, text)
    if kronos.load_plan(io.StringIO(text.getvalue())) != plan:
        out.append("plan changed in a round trip through kronos.dump / kronos.load_plan")
    out += record_problems(plan)
    if CHECK is not None:
        cpu = ["--require-cpu-compatibility"] if plan.options.get("require_cpu_compatibility") else []
        out += [f"check.py: {v}" for v in run_check(snap, text.getvalue(), sweep, *cpu)]
        sweep.checked += 1
    return out


def record_problems(plan: kronos.Plan) -> list[str]:
    """Each record is known, renders, and is what the string beside it says."""
    out = []
    for r in _records(plan):
        if not reasons.known(r.rule):
            out.append(f"unknown record {r.rule}")
        else:
            reasons.render(r)
    for s in plan.steps:
        if not s.why:
            out.append(f"step {s.seq}: no why")
        elif s.phase == SPREAD:  # the reason is the move's effect; the record, its gain, says the end
            if not s.reason.endswith(reasons.render(s.why[0])):
                out.append(f"step {s.seq}: reason {s.reason!r} does not end in {reasons.render(s.why[0])!r}")
        elif not s.reason.startswith(reasons.render(s.why[0])):
            out.append(f"step {s.seq}: reason {s.reason!r} does not start {reasons.render(s.why[0])!r}")
    for u in (*plan.summary.unplaced, *(plan.summary.not_selected or ())):
        if not u.why or u.reason != reasons.render_all(u.why):
            out.append(f"unplaced {u.instance}: reason {u.reason!r} is not its records")
    for name, a in plan.summary.aggregates.items():
        if a.skipped is not None and (
            a.why is None or a.why.skipped is None or a.skipped != reasons.render(a.why.skipped)
        ):
            out.append(f"aggregate {name}: skipped {a.skipped!r} is not its record")
        if list(a.notes or ()) != [reasons.render(n) for n in (a.why.notes if a.why else ())]:
            out.append(f"aggregate {name}: notes are not their records")
    return out


def run_check(snap: kronos.Snapshot, plan_text: str, sweep: Sweep, *extra: str) -> list[str]:
    """``check.py SNAPSHOT PLAN --strict-waves --strict-claims [EXTRA]``: its violations."""
    assert CHECK is not None
    s, p = sweep.tmp / "snapshot.json", sweep.tmp / "plan.json"
    if sweep.dumped is not snap:  # one snapshot serves several plans in a row
        kronos.dump(snap, s)
        sweep.dumped = snap
    p.write_text(plan_text)
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = CHECK.main([str(s), str(p), "--strict-waves", "--strict-claims", "--json", *extra])
    result = json.loads(stdout.getvalue())
    assert code in (0, 1), result
    return [f"[{v['kind']}] step {v['seq']} {v['instance']}: {v['detail']}" for v in result["violations"]]


def balance_problems(snap: kronos.Snapshot, plan: kronos.Plan) -> list[str]:
    """A spread plan: stopped after any step, it has left no aggregate more imbalanced."""
    world = NaiveWorld(snap)
    start = {a: world.imbalance(a)[1] for a in world.aggs}
    out = []
    for s in plan.steps:
        world.apply(s.instance, s.destination)
        for a, was in start.items():
            now = world.imbalance(a)[1]
            if now > was + 1e-9:
                out.append(f"after step {s.seq} aggregate {a} is more imbalanced: {was} -> {now}")
    return out


def replan_problems(snap: kronos.Snapshot, plan: kronos.Plan, mode: Mode, sweep: Sweep) -> list[str]:
    """Plan the result of ``plan`` again with the same options: nothing, or at least no VM sent back.

    ``snap`` is the snapshot as planned. A VM without a profile is planned on
    its host's average at ``snap``; the result's snapshot averages anew and
    may show small new gains (docs/spread.md), so there the re-plan runs as
    the engine runs it, with the state the plan left (the moved VMs in
    cooldown), and must send no VM back.
    """
    after = apply_plan(snap, plan)
    below = [f"{h.name} {p} {x}" for h in after.hosts for p, x in h.scores.items() if x < 0]
    if below:
        return [f"the plan drives scores below 0: {', '.join(below[:3])}"]
    enabled = [p.name for p in snap.enabled_policies]
    up = {h.name for h in snap.hosts if h.up}
    profiled = all(p in v.weights for v in snap.vms if v.host in up for p in enabled)
    # as the engine runs it: the moved VMs rest (a pair's VMs do not move again in its plan, and
    # a plan made without their cooldowns may move them on); with aggregate cooldowns too where
    # new averages may show new gains
    state = kronos.next_state(None, plan, now=plan.created_at, cooldown=0 if profiled else 600)
    again = getattr(kronos, mode.call)(after, state=state, **mode.kwargs)
    sweep.replans += 1
    sweep.steps += len(again.steps)
    out = [f"re-plan on apply_plan(snap, plan): {p}" for p in plan_problems(after, again, sweep)]
    out += [f"re-plan on apply_plan(snap, plan): {p}" for p in balance_problems(after, again)]
    if profiled:
        sweep.replans_strict += 1
        if again.steps:
            shown = [(s.instance, s.source, s.destination, s.reason) for s in again.steps[:3]]
            out.append(f"re-plan on apply_plan(snap, plan) has {len(again.steps)} steps: {shown}")
    came_from = {s.instance: s.source for s in plan.steps}
    out += [
        f"re-plan on apply_plan(snap, plan) moves {s.instance} back to {s.destination}"
        for s in again.steps
        if came_from.get(s.instance) == s.destination
    ]
    return out


def sweep_one(c: Case, sweep: Sweep) -> None:
    snap = c.snapshot()
    zeroed = without_thresholds(snap)
    sweep.snapshots += 1
    rng = random.Random(f"kronos-sweep-options-{c.index}")
    for mode in modes(snap, rng):
        planned = zeroed if mode.zero_thresholds else snap
        try:
            plan = mode.run(planned)
            sweep.plans[mode.label] += 1
            sweep.steps += len(plan.steps)
            if mode.kwargs.get("assume_fenced"):  # planned, and so checked, as if fenced
                planned = fence(planned, mode.kwargs["hosts"])
            problems = plan_problems(planned, plan, sweep)
            if mode.label == SPREAD:
                problems += balance_problems(planned, plan)
            if mode.replan:
                problems += replan_problems(planned, plan, mode, sweep)
        except Exception:  # a crash is a finding like any other; the sweep goes on
            problems = [traceback.format_exc(limit=-3)]
        for p in problems:
            sweep.fail(c, mode, p)


def test_every_mode_on_generated_snapshots_gives_plans_that_check_and_stay_fixed(tmp_path: Path) -> None:
    sweep = Sweep(tmp_path)
    for i in range(FIRST, FIRST + SNAPSHOTS):
        sweep_one(case(i), sweep)
    print(sweep.report())
    assert sweep.snapshots == SNAPSHOTS and sweep.replans >= SNAPSHOTS  # the sweep swept
    if sweep.failures:
        pytest.fail(
            "\n".join([sweep.report(), f"(in Python: {IMPORTS})", *sweep.failures[:SHOWN]]), pytrace=False
        )
