"""kronos explain: each answer names the rule and its numbers, as records and as text."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta
from pathlib import Path

import attrs
import pytest

import kronos
from kronos.core.explain import explain_host, explain_vm, not_movable
from kronos.testing import DEFAULT_TAKEN_AT
from tests.conftest import kronos_cli

LATER = DEFAULT_TAKEN_AT + timedelta(minutes=30)


def _snapshot() -> kronos.Snapshot:
    def host(name: str, score: float, **kw: object) -> kronos.Host:
        return kronos.Host(name, kronos.Capacity(32, 65536, 500), scores={"cpu": score}, **kw)  # type: ignore[arg-type]

    small = kronos.Flavor("small", 2, 4096, 20)
    big = kronos.Flavor("big", 40, 8192, 20)
    hosts = (
        host("h1", 0.9),
        host("h2", 0.2),
        host("h3", 0.3),
        host("h4", 0.25),
        host("off", 0.0, enabled=False),
    )
    vms = [kronos.VM(f"load-{i}", "h1", small, name=f"load-{i}", weights={"cpu": 0.1}) for i in range(6)]
    vms += [
        kronos.VM(f"web-{h}", h, small, name=f"web-{h}", weights={"cpu": 0.05})
        for h in ("h1", "h2", "h3", "h4")
    ]
    vms += [
        kronos.VM("huge", "h1", big, name="huge", weights={"cpu": 0.1}),
        kronos.VM("resting", "h1", small, name="resting", weights={"cpu": 0.05}),
    ]
    web = kronos.ServerGroup(
        "sg-web", "anti-affinity", tuple(f"web-{h}" for h in ("h1", "h2", "h3", "h4")), name="web"
    )
    return kronos.Snapshot(
        DEFAULT_TAKEN_AT,
        (kronos.Policy("cpu", threshold=0.01, max_migrations_per_cycle=2),),
        (kronos.Aggregate("agg", tuple(h.name for h in hosts)),),
        hosts,
        tuple(vms),
        (web,),
    )


STATE = kronos.State(instance_cooldown_until={"resting": LATER})


@pytest.fixture(scope="module")
def case() -> tuple[kronos.Snapshot, kronos.Plan]:
    snap = _snapshot()
    return snap, kronos.plan(snap, state=STATE)


def test_a_vm_pinned_by_anti_affinity_names_the_group_on_every_host(case) -> None:  # type: ignore[no-untyped-def]
    snap, plan = case
    x = explain_vm(snap, plan, "web-h1", STATE)
    assert x.not_movable == ()
    (view,) = x.aggregates
    ruled = {h.host: h.why for h in view.hosts}
    assert {h: r.rule for h, r in ruled.items() if r is not None} == {
        "h2": "group.anti-affinity", "h3": "group.anti-affinity", "h4": "group.anti-affinity", "off": "host.enabled"
    }  # fmt: skip
    r = ruled["h2"]
    assert r is not None and (r.group, r.count, r.limit) == ("web", 1, 1)
    assert x.decision[0].rule == "explain.no_host"
    assert {d.rule for d in x.decision[1:]} == {"group.anti-affinity", "host.enabled"}


def test_a_vm_too_big_for_every_host_names_the_resource_and_the_numbers(case) -> None:  # type: ignore[no-untyped-def]
    snap, plan = case
    x = explain_vm(snap, plan, "huge", STATE)
    (view,) = x.aggregates
    cpus = [h.why for h in view.hosts if h.why is not None and h.why.rule == "capacity.vcpus"]
    assert {w.host for w in cpus} == {"h2", "h3", "h4"}
    assert all(w.need == 40 and w.free == 30 for w in cpus)
    grouped = [d for d in x.decision if d.rule == "capacity.vcpus"]
    assert grouped and set(grouped[0].hosts or ()) == {"h2", "h3", "h4"}


def test_a_vm_in_cooldown_says_until_when(case) -> None:  # type: ignore[no-untyped-def]
    snap, plan = case
    x = explain_vm(snap, plan, "resting", STATE)
    (cool,) = x.not_movable
    assert (cool.rule, cool.until) == ("vm.cooldown", LATER)
    assert [d.rule for d in x.decision] == ["explain.not_movable", "vm.cooldown"]


def test_a_disabled_host_says_so_and_a_destination_counts_its_arrivals(case) -> None:  # type: ignore[no-untyped-def]
    snap, plan = case
    off = explain_host(snap, plan, "off", STATE)
    assert [r.rule for r in off.closed] == ["host.enabled"]
    assert [r.rule for r in off.decision] == ["host.enabled"]
    dest = plan.steps[0].destination
    x = explain_host(snap, plan, dest, STATE)
    assert x.arrivals == tuple(s.seq for s in plan.steps if s.destination == dest)
    assert x.vms_after == x.vms_before + len(x.arrivals) - len(x.departures)
    assert x.decision[-1].rule == "explain.destination"


def test_a_moved_vm_names_its_step_and_a_vm_left_behind_the_stop(case) -> None:  # type: ignore[no-untyped-def]
    snap, plan = case
    assert len(plan.steps) == 2  # the policy's budget
    step = plan.steps[0]
    moved = explain_vm(snap, plan, step.instance, STATE)
    assert moved.step == step and moved.decision[0].count == step.seq
    left = next(
        v.id for v in snap.vms if v.id.startswith("load-") and v.id not in {s.instance for s in plan.steps}
    )
    rules = [d.rule for d in explain_vm(snap, plan, left, STATE).decision]
    assert rules == ["explain.not_chosen", "spread.stop_budget"]


def test_not_movable_lists_every_vm_the_phase_holds(case) -> None:  # type: ignore[no-untyped-def]
    snap, plan = case
    held = not_movable(snap, plan, STATE)
    assert [(x.instance, [r.rule for r in x.why]) for x in held] == [("resting", ["vm.cooldown"])]


def test_the_cli_answers_in_a_screenful_and_as_records(tmp_path: Path, case) -> None:  # type: ignore[no-untyped-def]
    snap, plan = case
    s, p, st = tmp_path / "s.json", tmp_path / "p.json", tmp_path / "state.json"
    kronos.dump(snap, s)
    kronos.dump(plan, p)
    kronos.dump(STATE, st)
    out = kronos_cli("explain", str(s), str(p), "--vm", "web-h1", "--vm", "huge", "--vm", "resting",
                     "--host", "off", "--state", str(st))  # fmt: skip
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert (
        "group.anti-affinity rules out 3: h2, h3, h4 (e.g. anti-affinity group web has 1 member on h2 (max 1))"
        in text
    )
    assert "capacity.vcpus rules out 3: h2, h3, h4 (e.g. needs 40 vCPUs, h2 has 30 free)" in text
    assert "may not move: in cooldown until 2026-11-21T10:30:00Z" in text
    assert "off is disabled" in text
    assert len(text.splitlines()) < 60
    js = kronos_cli("explain", str(s), str(p), "--vm", "huge", "--host", "off", "--state", str(st), "-o", "-")
    records = json.loads(js.stdout)
    assert records[0]["instance"] == "huge" and records[1]["closed"][0]["rule"] == "host.enabled"
    # without PLAN it plans as `kronos plan` would, with the same state
    again = kronos_cli("explain", str(s), "--vm", "resting", "--state", str(st))
    assert again.returncode == 0 and "in cooldown until" in again.stdout


def test_the_cli_refuses_what_it_cannot_answer(tmp_path: Path, case) -> None:  # type: ignore[no-untyped-def]
    snap, plan = case
    s, p = tmp_path / "s.json", tmp_path / "p.json"
    kronos.dump(snap, s)
    kronos.dump(plan, p)
    assert kronos_cli("explain", str(s), str(p)).returncode == 64
    nobody = kronos_cli("explain", str(s), str(p), "--vm", "nobody")
    assert nobody.returncode == 64 and "nobody" in nobody.stderr and "did you mean" not in nobody.stderr
    typo = kronos_cli("explain", str(s), str(p), "--vm", "hugе", "--host", "of")  # a Cyrillic е
    assert typo.returncode == 64 and "vm='hugе'" in typo.stderr and "(did you mean huge?)" in typo.stderr
    host = kronos_cli("explain", str(s), str(p), "--host", "offf")
    assert host.returncode == 64 and "host='offf'" in host.stderr and "(did you mean off?)" in host.stderr
    other = tmp_path / "other.json"
    kronos.dump(kronos.generate(hosts=3, vms=10, groups=0, seed=1), other)
    wrong = kronos_cli("explain", str(other), str(p), "--vm", "huge")
    assert wrong.returncode == 65 and "made for snapshot" in wrong.stderr
    # a plan whose step leaves the snapshot's hosts and aggregates is refused, not explained
    doc = json.loads(p.read_text())
    assert doc["steps"], "the case's plan moves something"
    for field, value, said in [
        ("destination", "cmp-999", "destination cmp-999 is not in the snapshot"),
        ("aggregate", "agg-99", "aggregate agg-99 is not in the snapshot"),
    ]:
        bad = tmp_path / f"bad-{field}.json"
        steps = [{**doc["steps"][0], field: value}, *doc["steps"][1:]]
        counted = {  # the summary counts the edited steps, as a loader checks: the replay refuses it
            name: {**doc["summary"]["aggregates"][doc["steps"][0]["aggregate"]], "migrations": n}
            for name, n in Counter(step["aggregate"] for step in steps).items()
        }
        bad.write_text(
            json.dumps({**doc, "steps": steps, "summary": {**doc["summary"], "aggregates": counted}})
        )
        for args in (("explain", str(s), str(bad), "--host", doc["steps"][0]["source"]),
                     ("report", str(s), str(bad), "-o", str(tmp_path / "r.html"))):  # fmt: skip
            proc = kronos_cli(*args)
            assert proc.returncode == 65 and f"{bad} on {s}: step 1: {said}" in proc.stderr, proc.stderr


def test_a_host_of_a_cloud_without_vms_is_explained(tmp_path: Path) -> None:
    """The host rules are checked with no VM (v = -1); the walk read that VM's group and NUMA
    need first: an IndexError (exit 70) interpreted, a read out of bounds compiled."""
    snap = kronos.generate(hosts=3, vms=0, groups=0, seed=1)
    off = attrs.evolve(snap, hosts=(attrs.evolve(snap.hosts[0], enabled=False), *snap.hosts[1:]))
    plan = kronos.plan(off)
    x = explain_host(off, plan, "cmp-001")  # compiled, in this process
    assert x.vms_before == x.vms_after == 0 and [r.rule for r in x.closed] == ["host.enabled"]
    assert explain_host(off, plan, "cmp-002").closed == ()
    files = tmp_path / "s.json", tmp_path / "p.json"
    kronos.dump(off, files[0])
    kronos.dump(plan, files[1])
    out = kronos_cli("explain", *map(str, files), "--host", "cmp-001")  # interpreted (a small world)
    assert out.returncode == 0, out.stderr
    assert "cmp-001 is disabled" in out.stdout and "Traceback" not in out.stderr


def test_a_host_of_an_aggregate_the_plan_did_not_cover_says_so() -> None:
    """Its decision was empty: the VM form said why, the host form said nothing."""
    snap = kronos.generate(hosts=20, vms=200, aggregates=2, seed=3)
    plan = kronos.plan(snap, aggregates=("agg-01",))
    other = next(a for a in snap.aggregates if a.name == "agg-02").hosts[0]
    x = explain_host(snap, plan, other)
    assert [r.rule for r in x.decision] == ["explain.host_out_of_scope"]
    assert kronos.core.reasons.render(x.decision[0]) == f"none of {other}'s aggregates was planned"
    inside = next(a for a in snap.aggregates if a.name == "agg-01").hosts[0]
    assert "explain.host_out_of_scope" not in [r.rule for r in explain_host(snap, plan, inside).decision]


def test_a_vm_moved_twice_names_both_steps_and_its_last_host() -> None:
    """Only the first step was named: 'moved to cmp-003' of a VM a later step moved on."""
    from kronos.testing import generate_tight

    snap = generate_tight(hosts=20, vms=300, groups=30, seed=0)
    plan = kronos.plan(snap, mode="spread", budget="unlimited")
    seen: dict[str, list[kronos.Step]] = {}
    for s in plan.steps:
        seen.setdefault(s.instance, []).append(s)
    vm, steps = next((k, v) for k, v in seen.items() if len(v) == 2)  # this cloud makes one
    moved = [d for d in explain_vm(snap, plan, vm).decision if d.rule == "explain.moved"]
    assert [(d.count, d.host) for d in moved] == [(s.seq, s.destination) for s in steps]
    assert steps[1].repeat_reason and explain_vm(snap, plan, vm).step == steps[0]
