from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import attrs
import pytest

import kronos
import kronos.files
from tests.conftest import kronos_cli


def _kronos(*args: str) -> tuple[int, str]:
    proc = kronos_cli(*args)
    return proc.returncode, proc.stdout + proc.stderr


def _ten_errors(doc: dict) -> dict:  # type: ignore[type-arg]
    d = json.loads(json.dumps(doc))
    d["hosts"][3]["scores"]["cpu-spread"] = 1.7  # 1 score out of range
    d["hosts"][4]["scores"]["memory-spread"] = float("nan")  # 2 NaN score
    d["hosts"][5]["capacity"]["vcpus"] = -4  # 3 negative capacity
    d["hosts"][6]["name"] = d["hosts"][7]["name"]  # 4 duplicate host (and VMs on 6 now unknown)
    d["vms"][0]["host"] = "cmp-999"  # 5 unknown host
    d["vms"][2]["id"] = d["vms"][1]["id"]  # 6 duplicate VM id
    d["vms"][3]["weights"]["cpu-spread"] = -0.2  # 7 weight out of range
    d["server_groups"][0]["members"].append("no-such-vm")  # 8 unknown member
    d["server_groups"][1]["members"].append(d["server_groups"][2]["members"][0])  # 9 two groups
    d["policies"][0]["weight"] = 0.5  # 10 weights no longer sum to 1
    d["policies"][1]["mode"] = "pack"  # 11 mixed modes
    return d


def test_validate_reports_every_injected_error(tmp_path: Path, small: kronos.Snapshot) -> None:
    good = tmp_path / "good.json"
    kronos.dump(small, good)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(_ten_errors(json.loads(good.read_text()))))
    code, out = _kronos("validate", str(bad))
    assert code == 65
    expected = [
        "hosts[3].scores.cpu-spread = 1.7: scores must be in [0, 1]",
        "hosts[4].scores.memory-spread = NaN",
        "hosts[5].capacity.vcpus = -4.0",
        "hosts[6].name = 'cmp-008': duplicate host name",
        "vms[0].host = 'cmp-999': unknown host",
        "vms[2].id",
        "vms[3].weights.cpu-spread = -0.2",
        "server_groups[0].members[",
        "is already in server group",
        "enabled policy weights sum to 1.2",
        "enabled policies mix modes pack, spread",
    ]
    for fragment in expected:
        assert fragment in out, fragment
    code, out = _kronos("validate", str(good))
    assert code == 0, out
    assert "OK (12 hosts, 240 VMs" in out


def test_overcommitted_host_is_a_warning_not_an_error(small: kronos.Snapshot) -> None:
    h = small.hosts[0]
    tight = attrs.evolve(h, capacity=kronos.Capacity(1, 1, 1))
    snap = attrs.evolve(small, hosts=(tight, *small.hosts[1:]))
    issues = kronos.validate(snap)
    assert issues and all(i.severity == "warning" for i in issues)
    assert "already over capacity" in str(issues[0])
    plan = kronos.plan(snap, budget=5)  # accepted, and the host is never a destination
    assert all(s.destination != h.name for s in plan.steps)


def test_structural_errors_name_the_path(tmp_path: Path) -> None:
    p = tmp_path / "s.json"
    p.write_text(
        json.dumps(
            {
                "format": "kronos.snapshot/1",
                "taken_at": "2026-11-21T10:00:00Z",
                "hosts": [
                    {
                        "name": "a",
                        "capacity": {"vcpus": "many", "memory_mb": 1, "disk_gb": 1},
                        "enabled": "yes",
                    }
                ],
            }
        )
    )
    code, out = _kronos("validate", str(p))
    assert code == 65
    assert "hosts[0].capacity.vcpus" in out and "hosts[0].enabled" in out
    assert "Traceback" not in out


@pytest.mark.parametrize(
    ("content", "code", "fragment"),
    [
        (None, 66, "no such file"),
        ("{not json", 65, "invalid JSON"),
        ('{"format": "kronos.snapshot/2", "taken_at": "2026-11-21T10:00:00Z"}', 65, "unknown major version"),
        ('{"format": "kronos.plan/1"}', 65, "expected kronos.snapshot/1"),
    ],
)
def test_bad_files_exit_with_sysexits(tmp_path: Path, content: str | None, code: int, fragment: str) -> None:
    p = tmp_path / "in.json"
    if content is not None:
        p.write_text(content)
    got, out = _kronos("validate", str(p))
    assert got == code
    assert fragment in out and "Traceback" not in out


def test_nan_weight_is_reported(small: kronos.Snapshot) -> None:
    v = attrs.evolve(small.vms[0], weights={"cpu-spread": math.nan, "memory-spread": 0.1})
    issues = kronos.validate(attrs.evolve(small, vms=(v, *small.vms[1:])))
    assert [str(i) for i in issues] == ["vms[0].weights.cpu-spread = NaN: weights must be in [0, 1]"]


@pytest.mark.parametrize(
    ("key", "value", "said"),
    [
        ("coolddown", 5, "options.coolddown: no option of this name; did you mean cooldown?"),
        (
            "require_cpu_compatibility",
            "no",
            "options.require_cpu_compatibility = 'no': must be true or false",
        ),
        ("min_improvement", "abc", "options.min_improvement = 'abc': must be a number"),
        ("budget", "lots", "options.budget = 'lots': must be an integer >= 0 or null"),
        ("assumed_fenced", 7, "options.assumed_fenced = 7: must be a list of host names or null"),
        ("min_gain", 2, "options.min_gain = 2: a relative gain, between 0 and 1"),
    ],
)
def test_a_plans_options_are_checked_like_the_planners(
    tmp_path: Path, key: str, value: object, said: str
) -> None:
    """explain, report and execute read a plan's options back: a misspelled key or a string
    where JSON has a boolean would silently be read as the default (or crash explain)."""
    snap = kronos.generate(hosts=6, vms=40, groups=0, seed=5)
    made = kronos.plan(snap)
    doc = json.loads(kronos.files.render(made))
    kronos.load_plan(io.StringIO(json.dumps(doc)))  # what kronos writes it reads back
    doc["options"][key] = value
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    proc = kronos_cli("show", str(bad))
    assert proc.returncode == 65 and said in proc.stderr, proc.stderr


def test_a_plans_extensions_and_what_older_plans_recorded_still_load() -> None:
    """x_ keys are a producer's (FORMATS §0); prune and max_parallel 0 are what 0.1.0 wrote, a
    move_cost over 1000 what plans made before its cap recorded."""
    made = kronos.plan(kronos.generate(hosts=6, vms=40, groups=0, seed=5))
    doc = json.loads(kronos.files.render(made))
    doc["options"].update(x_producer="tool", prune=True, max_parallel=0, move_cost=5000.0)
    loaded = kronos.load_plan(io.StringIO(json.dumps(doc)))
    assert loaded.options["x_producer"] == "tool" and loaded.options["move_cost"] == 5000.0
    doc["options"]["move_cost"] = -1.0  # but no more than that: a negative cost never was one
    with pytest.raises(kronos.errors.DataError, match="move_cost"):
        kronos.load_plan(io.StringIO(json.dumps(doc)))


def _with_steps(doc: dict[str, Any], steps: list[dict[str, Any]]) -> dict[str, Any]:
    """``doc`` with these steps, its summary's migrations counting them (as a planner's would)."""
    aggregates = {
        name: {**a, "migrations": sum(s["aggregate"] == name for s in steps)}
        for name, a in doc["summary"]["aggregates"].items()
    }
    return {**doc, "steps": steps, "summary": {**doc["summary"], "aggregates": aggregates}}


def test_a_plan_whose_summary_counts_other_steps_is_refused(tmp_path: Path) -> None:
    """A hand-edited plan with steps taken out kept its summary: report and show said 10 moves
    for a plan that made none. Every consumer loads it through the same check."""
    snap = kronos.generate(hosts=6, vms=40, groups=0, seed=5)
    kronos.dump(snap, tmp_path / "s.json")
    doc = json.loads(kronos.files.render(kronos.plan(snap)))
    agg = doc["steps"][0]["aggregate"]
    planned = doc["summary"]["aggregates"][agg]["migrations"]
    assert planned == sum(s["aggregate"] == agg for s in doc["steps"]) > 1
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**doc, "steps": doc["steps"][1:]}))
    for command in ("show", "report"):
        out = ["-o", str(tmp_path / "r.html")]
        proc = (
            kronos_cli(command, str(bad))
            if command == "show"
            else kronos_cli(command, str(tmp_path / "s.json"), str(bad), *out)
        )
        said = f"summary.aggregates.{agg}.migrations = {planned}: the plan has {planned - 1} step(s) in this"
        assert proc.returncode == 65 and said in proc.stderr, proc.stderr
    bad.write_text(json.dumps(doc))
    assert kronos.load_plan(bad).summary.aggregates[agg].migrations == planned


def test_a_plan_that_moves_a_vm_nowhere_or_twice_is_refused(tmp_path: Path) -> None:
    """FORMATS §2: a VM moves once a plan unless the later step says why, never twice in one wave
    (the executor runs a wave at once), and a step goes somewhere. The executor took such plans."""
    snap = kronos.generate(hosts=6, vms=40, groups=0, seed=5)
    doc = json.loads(kronos.files.render(kronos.plan(snap, budget="unlimited")))
    first, second = doc["steps"][:2]
    again = {**second, "instance": first["instance"], "wave": first["wave"] + 1}
    for steps, said in [
        ([{**first, "destination": first["source"]}], "steps[0].destination"),
        (
            [first, {**second, "instance": first["instance"], "wave": first["wave"]}],
            "steps[0] moves this VM in the same wave",
        ),
        ([first, again], "steps[1].instance"),
    ]:
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps(_with_steps(doc, steps)))
        proc = kronos_cli("show", str(bad))
        assert proc.returncode == 65 and said in proc.stderr, proc.stderr
        with pytest.raises(kronos.errors.ValidationError) as err:
            kronos.load_plan(bad)
        assert said in str(err.value), str(err.value)
    assert "steps[0] moves it already; a repeat needs repeat_reason" in str(err.value)
    # a later step that says why it moves the VM again (a two-hop, a parking move) is a plan
    fine = _with_steps(doc, [first, {**again, "repeat_reason": "parking"}])
    assert kronos.load_plan(io.StringIO(json.dumps(fine))).steps[1].repeat_reason == "parking"


def test_a_plan_whose_file_seq_and_wave_orders_differ_is_refused(tmp_path: Path) -> None:
    """The executor runs by (wave, seq); report, explain and the dry run replayed the file's
    order. A hand-edited plan whose orders differ showed one sequence and would carry out another."""
    snap = kronos.generate(hosts=6, vms=40, groups=0, seed=5)
    doc = json.loads(kronos.files.render(kronos.plan(snap, budget="unlimited")))
    first, second = doc["steps"][:2]
    assert first["wave"] < second["wave"]  # two waves, so a swap of either order shows
    for steps, said in [
        ([second, first], f"steps[1].seq = {first['seq']}: steps are written in seq order"),
        (
            [{**first, "wave": second["wave"]}, {**second, "wave": first["wave"]}],
            f"steps[1].wave = {first['wave']}: waves run in seq order",
        ),
    ]:
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps(_with_steps(doc, steps)))
        proc = kronos_cli("show", str(bad))
        assert proc.returncode == 65 and said in proc.stderr, proc.stderr
    assert kronos.load_plan(io.StringIO(json.dumps(_with_steps(doc, [first, second])))).steps


def test_amounts_and_steps_past_what_sums_and_clocks_hold_are_refused(tmp_path: Path) -> None:
    """Each of 1e308 is finite, but two summed are not: a drain's moved_memory_mb came out
    infinite and the plan could not be written (70); a step of 1e-310 s overflowed the window."""
    doc = json.loads(json.dumps(kronos.files.unstructure(kronos.generate(hosts=6, vms=40, seed=2))))
    doc["hosts"][0]["capacity"]["memory_mb"] = 1.7e308
    doc["hosts"][1]["cost_per_hour"] = 1e308
    doc["vms"][0]["flavor"]["memory_mb"] = 2e15
    doc["history_step_seconds"] = 1e-310
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    code, out = _kronos("validate", str(bad))
    assert code == 65, out
    for fragment in (
        "hosts[0].capacity.memory_mb = 1.7e+308: capacity must be a number from 0 to 1e+15",
        "hosts[1].cost_per_hour = 1e+308: must be a number from 0 to 1e+15",
        "vms[0].flavor.memory_mb = 2000000000000000.0: flavor sizes must be a number from 0 to 1e+15",
        "history_step_seconds = 1e-310: must be a number of seconds from 0.001 to",
    ):
        assert fragment in out, (fragment, out)
    drained = _kronos("drain", str(bad), "--host", doc["hosts"][0]["name"], "-o", str(tmp_path / "p.json"))
    assert drained[0] == 65 and "Traceback" not in drained[1], drained[1]


@pytest.mark.parametrize("odd", [False, True], ids=["column-fast-path", "field-by-field"])
def test_the_amount_bound_is_the_same_on_both_paths(odd: bool) -> None:
    """validate tests most VMs column by column and the odd ones field by field: both must
    take 1e15 and refuse just above it, or a value slips through one of them."""
    snap = kronos.generate(hosts=4, vms=12, seed=1, groups=0)
    vm = snap.vms[0]
    hosts = [attrs.evolve(h, capacity=attrs.evolve(h.capacity, memory_mb=1e15)) for h in snap.hosts]
    for size, refused in ((1e15, False), (1.0000001e15, True)):
        big = attrs.evolve(vm, flavor=attrs.evolve(vm.flavor, memory_mb=size), tags=(" ",) if odd else ())
        found = [
            str(i) for i in kronos.validate(attrs.evolve(snap, hosts=tuple(hosts), vms=(big, *snap.vms[1:])))
        ]
        assert any("vms[0].flavor.memory_mb" in f for f in found) == refused, found
        assert any("vms[0].tags[0]" in f for f in found) == odd, found


def test_a_name_with_a_control_character_is_refused(tmp_path: Path, small: kronos.Snapshot) -> None:
    """A host named "cmp\nFAKE-LINE" validated, and `kronos show` printed a forged step line; a tab
    split one row of `-f value` in two. No id or host name Nova gives holds a control character
    (a VM's name is its owner's free text: shown escaped, tests/test_terminal.py)."""
    good = tmp_path / "good.json"
    kronos.dump(small, good)
    doc = json.loads(good.read_text())
    old = doc["hosts"][1]["name"]
    doc["hosts"][1]["name"] = "cmp\nFAKE-LINE"
    for vm in doc["vms"]:
        vm["host"] = "cmp\nFAKE-LINE" if vm["host"] == old else vm["host"]
    for agg in doc["aggregates"]:
        agg["hosts"] = ["cmp\nFAKE-LINE" if h == old else h for h in agg["hosts"]]
    doc["aggregates"][0]["name"] = "agg\t1"
    doc["vms"][6]["id"] = "id\x85"
    doc["server_groups"][0]["id"] = "g\x7f"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    code, out = _kronos("validate", str(bad))
    said = "must not hold a control character (a tab, a line break): Nova's never do"
    assert code == 65, out
    for where in ("hosts[1].name = 'cmp\\nFAKE-LINE'", "aggregates[0].name = 'agg\\t1'",
                  "vms[6].id = 'id\\x85'", "server_groups[0].id = 'g\\x7f'"):  # fmt: skip
        assert f"{where}: {said}" in out, where
    assert "FAKE-LINE →" not in out
    plan = tmp_path / "plan.json"
    assert kronos_cli("plan", str(good), "-o", str(plan)).returncode == 0
    edited = json.loads(plan.read_text())
    edited["steps"][0]["destination"] = "cmp\nFAKE-LINE"
    plan.write_text(json.dumps(edited))
    code, out = _kronos("show", str(plan))
    assert code == 65 and f"steps[0].destination = 'cmp\\nFAKE-LINE': {said}" in out, out
