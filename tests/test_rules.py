"""The rule table: every rule has its kernel, its reference and its explanation, and they agree."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import kronos
from kronos.core import reasons, rules
from kronos.core.arrays import build_world
from kronos.core.model import Reason
from kronos.core.phases import PHASES
from kronos.testing import DEFAULT_TAKEN_AT
from tests.naive import MOVE_RULES, VM_RULES, NaiveWorld


def test_the_table_and_the_reference_name_the_same_rules_in_the_same_order() -> None:
    names = [r.name for r in rules.RULES]
    assert len(set(names)) == len(names)
    assert names == [*VM_RULES, *MOVE_RULES]
    for rule in rules.RULES:
        if rule.scope == "vm":
            assert rule.index == -1
        else:  # the index the walking kernel returns for it, checked by the one kernel holds()
            assert rules.BY_INDEX[rule.index] is rule
    assert hasattr(rules.holds, "py_func")  # numba's, compiled once for every rule (index at run time)
    assert sorted(rules.BY_INDEX) == list(range(len(MOVE_RULES)))
    assert rules.rule_named("capacity.PCPU") is rules.RULE["capacity"]


# One VM or host per rule, each made to break exactly that rule first.
def _case() -> kronos.Snapshot:
    cap = kronos.Capacity(64, 65536, 1000, classes={"PCPU": 16})
    f = kronos.Flavor("m", 4, 4096, 40)
    ssd = kronos.Flavor("ssd", 4, 4096, 40, {"aggregate_instance_extra_specs:ssd": "true"})
    traits = ("CUSTOM_SSD", "HW_CPU_X86_AVX2", "HW_CPU_X86_AVX512F")
    cells = (kronos.NumaCell(0, 32, 32768), kronos.NumaCell(1, 32, 32768))

    def host(name: str, **kw: object) -> kronos.Host:
        kw.setdefault("traits", traits)
        kw.setdefault("numa_cells", cells)
        return kronos.Host(name, kw.pop("capacity", cap), scores={"cpu": kw.pop("score", 0.1)}, **kw)  # type: ignore[arg-type]

    hosts = (
        host("src", score=0.5),
        host("off", enabled=False),
        host("dead", up=False),
        host("gone"),  # leaving: marked by the test
        host("elsewhere"),  # another AZ
        host("plain"),  # no ssd metadata
        host("few-cpus", capacity=kronos.Capacity(6, 65536, 1000)),
        host("few-mb", capacity=kronos.Capacity(64, 6000, 1000)),
        host("few-gb", capacity=kronos.Capacity(64, 65536, 60)),
        host("hot", score=0.95),
        host("taken"),
        host("untraited", traits=("HW_CPU_X86_AVX2", "HW_CPU_X86_AVX512F")),
        host("golden", traits=(*traits, "CUSTOM_GOLD")),
        host("old-cpu", traits=("CUSTOM_SSD", "HW_CPU_X86_AVX2", "HW_CPU_HYPERTHREADING")),
        host("no-pcpu", capacity=kronos.Capacity(64, 65536, 1000)),
        host("tight-numa", numa_cells=(kronos.NumaCell(0, 2, 8192), kronos.NumaCell(1, 2, 8192))),
    )
    a = tuple(h.name for h in hosts if h.name != "elsewhere")
    aggs = (
        kronos.Aggregate("agg", a, {"availability_zone": "az1"}),
        kronos.Aggregate("ssd", tuple(n for n in a if n != "plain"), {"ssd": "true"}),
        kronos.Aggregate("other", ("elsewhere",), {"availability_zone": "az2", "ssd": "true"}),
    )
    vms = [kronos.VM(f"fill-{h}", h, kronos.Flavor("fill", 4, 4096, 40), weights={"cpu": 0.0})
           for h in ("few-cpus", "few-mb", "few-gb")]  # fmt: skip
    vms.append(
        kronos.VM(
            "mover",
            "src",
            ssd,
            weights={"cpu": 0.1},
            required_traits=("CUSTOM_SSD",),
            forbidden_traits=("CUSTOM_GOLD",),
        )
    )
    pcpu = {"PCPU": 4.0, "memory_mb": 4096.0, "disk_gb": 40.0}
    vms.append(kronos.VM("numa", "src", f, weights={"cpu": 0.01}, resources=pcpu, numa_cells=(0,)))
    for kind in ("affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity"):
        second = "taken" if kind.endswith("anti-affinity") else "src"  # each group as it should be
        vms.append(kronos.VM(f"{kind}-1", "src", f, weights={"cpu": 0.01}))
        vms.append(kronos.VM(f"{kind}-2", second, f, weights={"cpu": 0.01}))
    groups = tuple(
        kronos.ServerGroup(kind, kind, (f"{kind}-1", f"{kind}-2"))
        for kind in ("affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity")
    )
    w = {"cpu": 0.0}
    vms += [
        kronos.VM("stopped", "src", f, status="SHUTOFF", weights=w),
        kronos.VM("busy", "src", f, task_state="migrating", weights=w),
        kronos.VM("pinned", "src", f, migratable=False, weights=w),
        kronos.VM("resting", "src", f, weights=w),
        kronos.VM("jailed", "src", f, weights=w),
        kronos.VM("unknown-load", "src", f),  # no weight, and the policy's fallback is skip
        kronos.VM("stranded", "dead", f, weights=w),
        kronos.VM("gpu", "src", f, weights=w, devices=("pci:gpu-a100",)),
        kronos.VM("gpu-off", "src", f, status="SHUTOFF", weights=w, devices=("pci:gpu-a100",)),
        kronos.VM("vgpu", "src", f, weights=w, devices=("mdev:nvidia-35",), live_migratable_devices=True),
    ]
    pol = kronos.Policy("cpu", max_host_score=0.9, vm_profile_fallback="skip")
    return kronos.Snapshot(DEFAULT_TAKEN_AT, (pol,), aggs, hosts, tuple(vms), groups)


def _world():  # type: ignore[no-untyped-def]
    later = DEFAULT_TAKEN_AT + timedelta(hours=1)
    state = kronos.State(instance_cooldown_until={"resting": later}, quarantined_until={"jailed": None})
    snap = _case()
    world = build_world(snap, state, DEFAULT_TAKEN_AT)
    world.leaving[world.host_index["gone"]] = True
    world.cpu_ok[:] = world.cpu_strict  # require_cpu_compatibility
    return snap, world


WHERE = {
    "host.enabled": "off",
    "host.up": "dead",
    "host.leaving": "gone",
    "az": "elsewhere",
    "extra_specs": "plain",
    "capacity.vcpus": "few-cpus",
    "capacity.memory_mb": "few-mb",
    "capacity.disk_gb": "few-gb",
    "max_host_score": "hot",
    "traits.required": "untraited",
    "traits.forbidden": "golden",
    "cpu_compat": "old-cpu",
}
EXPECTED_TEXT = {
    "host.enabled": "off is disabled",
    "host.up": "dead is down",
    "host.leaving": "gone is being emptied by this plan",
    "az": "elsewhere is not in availability zone az1",
    "extra_specs": "plain is in no aggregate with ssd=true",
    "capacity.vcpus": "needs 4 vCPUs, few-cpus has 2 free",
    "capacity.memory_mb": "needs 4096 MiB of RAM, few-mb has 1904 free",
    "capacity.disk_gb": "needs 40 GiB of disk, few-gb has 20 free",
    "max_host_score": "cpu on hot would reach 1.050 > max_host_score 0.9",
    "traits.required": "untraited lacks the required trait(s) CUSTOM_SSD",
    "traits.forbidden": "golden has the forbidden trait(s) CUSTOM_GOLD",
    "cpu_compat": "old-cpu lacks CPU feature(s) HW_CPU_X86_AVX512F of src, where the guest runs "
    "(require_cpu_compatibility)",
}


@pytest.mark.parametrize("name", list(EXPECTED_TEXT))
def test_each_host_rule_fails_first_where_it_should_and_says_so_with_the_numbers(name: str) -> None:
    _, world = _world()
    v, a, b = world.vm_ids.index("mover"), world.host_index["src"], world.host_index[WHERE[name]]
    index = rules.first_failing(v, a, b, world.arrays(), True)
    assert rules.rule_name(world, index) == name
    why = rules.explain_failure(world, index, v, a, b)
    assert why.rule == name and why.host == world.host_names[b]
    assert reasons.render(why) == EXPECTED_TEXT[name]


@pytest.mark.parametrize(
    ("where", "name", "text"),
    [
        ("no-pcpu", "capacity.PCPU", "needs 4 PCPU, no-pcpu has 0 free"),
        (
            "tight-numa",
            "numa",
            "needs 4 vCPUs and 4096 MiB on one NUMA cell of tight-numa; "
            "free: cell 0 2 vCPUs/8192 MiB, cell 1 2 vCPUs/8192 MiB",
        ),
    ],
)
def test_a_pinned_numa_guest_needs_pcpu_and_a_cell_with_room(where: str, name: str, text: str) -> None:
    _, world = _world()
    v, a, b = world.vm_ids.index("numa"), world.host_index["src"], world.host_index[where]
    index = rules.first_failing(v, a, b, world.arrays(), True)
    assert rules.rule_name(world, index) == name
    assert reasons.render(rules.explain_failure(world, index, v, a, b)) == text


def test_a_numa_guest_takes_the_tightest_cell_and_its_own_back_at_home() -> None:
    from kronos.core import kernels
    from kronos.core.moves import cells_taken

    _, world = _world()
    w = world.arrays()
    v, src, dst = world.vm_ids.index("numa"), world.host_index["src"], world.host_index["taken"]
    assert cells_taken(world, v) == (0,)
    world.cell_used[dst, 1, 0] = 20  # cell 1 fuller: the tightest fit keeps cell 0 whole
    kernels.apply_move(v, dst, w)
    assert cells_taken(world, v) == (1,) and world.cell_used[src, 0, 0] == 0
    assert tuple(world.cell_used[dst, 1]) == (24, 4096)
    kernels.apply_move(v, src, w)
    assert cells_taken(world, v) == (0,) and tuple(world.cell_used[src, 0]) == (4, 4096)


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        ("affinity", "affinity group affinity has its members on src: taken splits it"),
        ("anti-affinity", "anti-affinity group anti-affinity has 1 member on taken (max 1)"),
        ("soft-affinity", "soft-affinity group soft-affinity has its members on src: taken splits it"),
        ("soft-anti-affinity", "soft-anti-affinity group soft-anti-affinity has 1 member on taken (max 1)"),
    ],
)
def test_each_group_rule_fails_where_it_should_and_says_so(kind: str, text: str) -> None:
    _, world = _world()
    # the first member joins the second (anti-affinity) or leaves it (affinity) for "taken"
    v, a, b = world.vm_ids.index(f"{kind}-1"), world.host_index["src"], world.host_index["taken"]
    w = world.arrays()
    index = rules.first_failing(v, a, b, w, True)
    assert rules.BY_INDEX[index].name == f"group.{kind}"
    soft = kind.startswith("soft")
    assert rules.first_failing(v, a, b, w, False) == (rules.PASS if soft else index)
    assert rules.soft_worse(v, a, b, w) == soft
    assert reasons.render(rules.explain_failure(world, index, v, a, b)) == text


VM_CASES = {
    # vm -> (phase, cold) -> the rules it breaks
    "stopped": {("spread", False): ["vm.status"], ("drain", True): [], ("evacuate", False): ["source.up"]},
    "busy": {("spread", False): ["vm.task_state"], ("drain", False): ["vm.task_state"]},
    "pinned": {("spread", False): ["vm.migratable"], ("evacuate", False): ["vm.migratable", "source.up"]},
    "resting": {("spread", False): ["vm.cooldown"], ("drain", False): ["vm.cooldown"]},
    "jailed": {("spread", False): ["vm.quarantine"], ("evacuate", False): ["vm.quarantine", "source.up"]},
    "unknown-load": {("spread", False): ["vm.profile"], ("drain", False): []},
    "stranded": {("spread", False): ["source.up"], ("evacuate", False): []},
    "gpu": {
        ("spread", False): ["vm.devices"],
        ("drain", True): ["vm.devices"],
        ("evacuate", False): ["source.up"],
    },
    "gpu-off": {("spread", False): ["vm.status", "vm.devices"], ("drain", True): [], ("pack", True): []},
    "vgpu": {("spread", False): []},
}


@pytest.mark.parametrize("vm", list(VM_CASES))
def test_vm_rules_say_which_rule_holds_a_vm_in_each_phase(vm: str) -> None:
    _, world = _world()
    v = world.vm_ids.index(vm)
    for (phase, cold), broken in VM_CASES[vm].items():
        how = rules.Movement(phase, cold=cold)
        why = rules.why_not_movable(world, v, how)
        assert [r.rule for r in why] == broken, (vm, phase)
        assert bool(rules.movable(world, how)[v]) == (not broken)
        for r in why:
            assert reasons.render(r)  # every record says something
    world.moved[v] = True
    assert "vm.moved" in [r.rule for r in rules.why_not_movable(world, v, rules.Movement("spread"))]


def test_vm_rule_records_carry_their_facts() -> None:
    _, world = _world()
    spread = rules.Movement("spread")
    (status,) = rules.why_not_movable(world, world.vm_ids.index("stopped"), spread)
    assert (status.detail, status.allowed) == ("SHUTOFF", ("ACTIVE",))
    assert "cold_migrate_stopped" in reasons.render(status)
    (rest,) = rules.why_not_movable(world, world.vm_ids.index("resting"), spread)
    assert rest.until == DEFAULT_TAKEN_AT + timedelta(hours=1)
    assert reasons.render(rest) == "in cooldown until 2026-11-21T11:00:00Z"
    (jail,) = rules.why_not_movable(world, world.vm_ids.index("jailed"), spread)
    assert reasons.render(jail) == "quarantined until released by hand"


gen_args = st.fixed_dictionaries(
    {
        "hosts": st.integers(3, 12),
        "vms": st.integers(10, 120),
        "groups": st.integers(0, 10),
        "seed": st.integers(0, 10_000),
        "heterogeneous": st.booleans(),
        "aggregates": st.integers(1, 2),
        "broken_groups": st.floats(0.0, 0.5),
        "unmovable": st.floats(0.0, 0.3),
        "missing_weights": st.sampled_from([0.0, 0.2]),
        "down": st.integers(0, 2),
        "disabled": st.integers(0, 2),
        "fill": st.floats(0.3, 0.95),
        # FORMATS §4
        "pinned": st.sampled_from([0.0, 0.0, 0.3]),
        "numa": st.sampled_from([0, 0, 2, 4]),
        "traits": st.sampled_from([0.0, 0.0, 0.4]),
        "devices": st.sampled_from([0.0, 0.0, 0.2]),
    }
)


@given(args=gen_args, data=st.data())
def test_each_predicate_and_the_walk_match_the_reference(args: dict, data: st.DataObject) -> None:  # type: ignore[type-arg]
    snap = kronos.generate(**args)
    world = build_world(snap)
    naive = NaiveWorld(snap)
    w = world.arrays()
    H = len(snap.hosts)
    for _ in range(25):
        v = data.draw(st.integers(0, len(snap.vms) - 1))
        b = data.draw(st.integers(0, H - 1))
        a = int(world.vm_host[v])
        if b == a:
            continue  # no move: feasible() says so before any rule
        vid, src, dst = snap.vms[v].id, world.host_names[a], world.host_names[b]
        for rule in rules.RULES:
            if rule.scope == "vm":
                continue
            got = rule.check(v, a, b, -1, w)
            assert got == naive.rule_holds(rule.name, vid, src, dst), rule.name
        first = rules.first_failing(v, a, b, w, True)
        want = next((r for r in MOVE_RULES if not naive.rule_holds(r, vid, src, dst)), None)
        assert (rules.rule_of(first).name if first != rules.PASS else None) == want


@given(args=gen_args, phase=st.sampled_from(PHASES), cold=st.booleans())
def test_vm_rule_masks_match_the_reference(args: dict, phase: str, cold: bool) -> None:  # type: ignore[type-arg]
    snap = kronos.generate(**args)
    world = build_world(snap)
    naive = NaiveWorld(snap)
    how = rules.Movement(phase, cold=cold)
    for rule, ok in rules.vm_rule_masks(world, how):
        want = [naive.vm_rule_holds(rule.name, v.id, phase, cold=cold) for v in snap.vms]
        assert ok.tolist() == want, rule.name


def _records(plan: kronos.Plan) -> list[Reason]:
    out = [r for s in plan.steps for r in s.why or ()]
    out += [r for u in (*plan.summary.unplaced, *(plan.summary.not_selected or ())) for r in u.why or ()]
    for a in plan.summary.aggregates.values():
        if a.why is not None:
            out += [*([a.why.skipped] if a.why.skipped else []), *a.why.unrepaired, *a.why.notes]
    return out


@given(args=gen_args)
def test_every_record_a_plan_carries_is_known_and_is_what_its_string_says(args: dict) -> None:  # type: ignore[type-arg]
    snap = kronos.generate(**args)
    down = [h.name for h in snap.hosts if not h.up]
    up = [h.name for h in snap.hosts if h.up]
    plans = [
        kronos.plan(snap, budget=5, enforce_hard_affinity=True, enforce_soft_affinity=True),
        kronos.plan(snap, mode="pack", budget=20),
        kronos.drain(snap, up[:1]),
    ]
    if down:
        plans.append(kronos.evacuate(snap, down))
    for plan in plans:
        for r in _records(plan):
            assert reasons.known(r.rule), r.rule
        for s in plan.steps:
            assert s.why, s
            if s.phase != "spread":  # spread's reason is the effect alone; the record holds the gain
                assert s.reason.startswith(reasons.render(s.why[0]))
        for u in plan.summary.unplaced:
            assert u.why and u.reason == reasons.render_all(u.why)
        for a in plan.summary.aggregates.values():
            if a.skipped is not None:
                assert a.why is not None and a.why.skipped is not None
                assert a.skipped == reasons.render(a.why.skipped)
            assert list(a.notes or ()) == [reasons.render(n) for n in (a.why.notes if a.why else ())]


def test_unplaced_records_group_hosts_by_rule() -> None:
    _, world = _world()
    v, a = world.vm_ids.index("mover"), world.host_index["src"]
    hosts = world.aggregates["agg"]
    why = rules.ruled_out(world, v, a, hosts, balancing=True)
    by_rule = {r.rule: r for r in why}
    assert set(by_rule) == set(EXPECTED_TEXT) - {"az"}  # elsewhere is in another aggregate; taken passes
    for name, r in by_rule.items():
        assert r.hosts is not None and r.host in r.hosts, name
    assert np.isin([world.host_index[h] for r in why for h in r.hosts or ()], hosts).all()
