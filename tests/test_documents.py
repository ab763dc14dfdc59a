"""Snapshot, plan and state documents that crashed Kronos or were silently accepted (issue 17).

Each test names one input the 3 269-input sweep found: before the strict
reader it raised a traceback (exit 70) or loaded with exit 0; now it is a
clean data error (65) naming the file, the path and the value, or, for the
fields FORMATS.md defines, it is read as the contract says.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import pytest

import kronos
from kronos.adapters.policies import parse_policies
from kronos.core.convert import reader_for, structure
from kronos.core.model import NOVA_STATUSES
from kronos.errors import ConfigError, DataError, KronosError, ValidationError
from tests.conftest import ROOT, kronos_cli

FORMATS = ROOT.parent / "shared" / "FORMATS.md"
T0 = datetime(2026, 11, 21, 10, tzinfo=UTC)


def _snapshot() -> dict[str, Any]:
    snap = kronos.generate(hosts=5, vms=14, groups=3, seed=3)
    return json.loads(kronos.files.render(snap))  # type: ignore[no-any-return]


def _plan() -> dict[str, Any]:
    steps = tuple(
        kronos.Step(i + 1, 1, "spread", "live-migrate", f"vm-{i}", "cmp-1", "cmp-2", "agg", "r", 0.1)
        for i in range(3)
    )
    summary = kronos.PlanSummary(
        aggregates={
            "agg": kronos.AggregateSummary({"cpu": 0.2}, {"cpu": 0.1}, 0.2, 0.1, migrations=len(steps))
        }
    )
    plan = kronos.Plan(T0, "sha256:" + "0" * 64, {"budget": 3}, steps, summary)
    return json.loads(kronos.files.render(plan))  # type: ignore[no-any-return]


def _state() -> dict[str, Any]:
    state = kronos.State(
        aggregate_cooldown_until={"agg": T0},
        instance_cooldown_until={"vm-1": T0},
        quarantined_until={"vm-2": None},
        results=(kronos.Result("vm-2", "MigrationFailed", T0, "boom"),),
    )
    return json.loads(kronos.files.render(state))  # type: ignore[no-any-return]


LOADERS = {"snapshot": kronos.load_snapshot, "plan": kronos.load_plan, "state": kronos.load_state}
DOCS = {"snapshot": _snapshot, "plan": _plan, "state": _state}


def problems(doc: Any, kind: str = "snapshot", text: str | None = None) -> list[str]:
    """Every error Kronos reports on ``doc`` (loading, then kronos.validate for a snapshot)."""
    text = json.dumps(doc) if text is None else text
    try:
        loaded = LOADERS[kind](io.StringIO(text))
    except ValidationError as exc:
        return [str(i) for i in exc.issues]
    except KronosError as exc:
        return [str(exc)]
    return [str(i) for i in kronos.validate(loaded) if i.severity == "error"]


def _cli_args(kind: str, path: Path) -> tuple[str, ...]:
    return {
        "snapshot": ("validate", str(path)),
        "plan": ("show", str(path)),
        "state": ("state", "show", "--state", str(path)),
    }[kind]


def _no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr


# ------------------------------------------------------------------ crashes


@pytest.mark.parametrize("kind", ["snapshot", "plan", "state"])
@pytest.mark.parametrize("depth", [100, 5000])
def test_deep_nesting_is_a_data_error(tmp_path: Path, kind: str, depth: int) -> None:
    doc = DOCS[kind]()
    doc["x_deep"] = "@"
    text = json.dumps(doc).replace('"@"', "[" * depth + "]" * depth)
    path = tmp_path / f"{kind}.json"
    path.write_text(text)
    proc = kronos_cli(*_cli_args(kind, path))
    assert proc.returncode == 65, proc.stderr
    _no_traceback(proc)
    assert "nested more than 64 levels" in proc.stderr and str(path) in proc.stderr


@pytest.mark.parametrize("kind", ["snapshot", "plan", "state"])
def test_deep_yaml_is_a_data_error(kind: str) -> None:
    text = f"format: kronos.{kind}/1\nx_deep: " + "[" * 3000 + "]" * 3000 + "\n"
    (msg,) = problems(None, kind, text)
    assert "nested more than 64 levels deep" in msg


BOMB = "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9) if prev else ', '.join(['lol'] * 9)}]\n"
    for prev, name in zip(["", "a", "b", "c", "d", "e", "f", "g"], "abcdefgh", strict=True)
)


def test_yaml_alias_bomb_is_refused_before_it_expands() -> None:
    text = BOMB + "format: kronos.snapshot/1\ntaken_at: '2026-11-21T10:00:00Z'\nsource: {x: *h}\n"
    assert len(text) < 600  # 9**8 = 43 million strings once expanded
    t = time.perf_counter()
    (msg,) = problems(None, "snapshot", text)
    assert time.perf_counter() - t < 5
    assert "aliases expand to more than 10000 nodes" in msg


def test_yaml_recursive_alias_and_reused_anchor_are_refused() -> None:
    (msg,) = problems(None, "state", "format: kronos.state/1\nx_loop: &a [1, *a]\n")
    assert "refers to a node that contains it" in msg
    (msg,) = problems(None, "state", "format: kronos.state/1\nx_a: &a [1]\nx_b: &a [2]\n")
    assert "anchor &a defined twice" in msg


def test_yaml_with_a_few_aliases_is_still_read() -> None:
    from ruamel.yaml import YAML

    doc = _snapshot()
    shared = doc["vms"][0]["flavor"]
    for vm in doc["vms"]:
        vm["flavor"] = shared  # one object: the YAML writer makes it an anchor and aliases
    out = io.StringIO()
    YAML(typ="safe", pure=True).dump(doc, out)
    assert "*id001" in out.getvalue()
    again = kronos.load_snapshot(io.StringIO(out.getvalue()))
    assert {v.flavor.name for v in again.vms} == {shared["name"]} and len(again.vms) == 14


def test_policies_yaml_nesting_and_alias_bomb_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="nested more than 64 levels deep"):
        parse_policies("policies: " + "[" * 3000 + "]" * 3000 + "\n", "policies.yaml")
    t = time.perf_counter()
    with pytest.raises(ConfigError, match="aliases expand to more than"):
        parse_policies(BOMB + "policies: *h\n", "policies.yaml")
    assert time.perf_counter() - t < 5


def test_policies_yaml_anchors_and_merge_keys_still_work() -> None:
    text = """
policies:
  - &cpu {name: cpu, mode: spread, weight: 0.5, threshold: 0.1, host_label: instance, imbalance_query: up}
  - {<<: *cpu, name: mem}
"""
    assert [(p.name, p.weight) for p in parse_policies(text, "policies.yaml")] == [("cpu", 0.5), ("mem", 0.5)]


def test_a_5000_digit_integer_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    text = json.dumps(_snapshot(), indent=1)
    path.write_text(re.sub(r'"vcpus": [0-9.]+', '"vcpus": ' + "9" * 5000, text, count=1))
    proc = kronos_cli("validate", str(path))
    assert proc.returncode == 65
    _no_traceback(proc)
    assert re.search(rf"{re.escape(str(path))}:\d+: invalid JSON: a number of 5000 digits", proc.stderr), (
        proc.stderr
    )


def test_large_numbers_are_refused_with_their_place() -> None:
    doc = _snapshot()
    doc["hosts"][0]["capacity"]["vcpus"] = 10**400  # float() of it overflowed
    doc["hosts"][1]["capacity"]["memory_mb"] = 10**20  # as good as 1e20: read, then out of range
    doc["vms"][0]["flavor"]["vcpus"] = 1e400  # json.dumps writes Infinity
    doc["policies"][0]["max_migrations_per_cycle"] = 2**70
    found = problems(doc)
    assert any(
        p.startswith("hosts[0].capacity.vcpus = <an integer of 401 digits>: number out of range")
        for p in found
    )
    assert "vms[0].flavor.vcpus = inf: must be a finite number" in found
    assert [p for p in found if p.startswith("hosts[1]")] == [
        "hosts[1].capacity.memory_mb = 1e+20: capacity must be a number from 0 to 1e+15"
    ]
    assert any(
        p.startswith("policies[0].max_migrations_per_cycle = 1180591620717411303424: integer out")
        for p in found
    )


@pytest.mark.parametrize("value", [1e30, 2**40, 0, -3])
def test_max_server_per_host_out_of_range(value: float) -> None:
    doc = _snapshot()
    doc["server_groups"][0]["policy"] = "anti-affinity"
    doc["server_groups"][0]["rules"] = {"max_server_per_host": value}
    (msg,) = problems(doc)
    assert msg.startswith("server_groups[0].rules.max_server_per_host = ")


@pytest.mark.parametrize(
    "when", ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00", "2026-02-30T00:00:00Z"]
)
def test_times_out_of_range_are_data_errors(tmp_path: Path, when: str) -> None:
    doc = _snapshot()
    doc["taken_at"] = when
    (msg,) = problems(doc)
    assert msg.startswith(f"taken_at = {when!r}: not a valid time (")
    state = _state()
    state["instance_cooldown_until"]["vm-1"] = when
    path = tmp_path / "state.json"
    path.write_text(json.dumps(state))
    proc = kronos_cli("state", "show", "--state", str(path))
    assert proc.returncode == 65 and "instance_cooldown_until.vm-1" in proc.stderr
    _no_traceback(proc)


def test_lone_surrogate_in_a_name_is_a_data_error_not_a_crash_when_writing(tmp_path: Path) -> None:
    doc = _snapshot()
    doc["vms"][0]["name"] = "web-\ud800"
    path = tmp_path / "s.json"
    path.write_text(json.dumps(doc))  # ASCII: \ud800 escaped, as a producer would write it
    assert problems(doc) == ["vms[0].name = 'web-\\ud800': not valid Unicode text (a lone surrogate)"]
    proc = kronos_cli("plan", str(path), "-o", str(tmp_path / "p.json"))
    assert proc.returncode == 65, proc.stderr
    _no_traceback(proc)
    assert not (tmp_path / "p.json").exists()


# ------------------------------------------------------------------ unknown keys


def test_unknown_key_names_the_nearest_known_one() -> None:
    doc = _snapshot()
    doc["hosts"][3]["enabeld"] = False
    assert problems(doc) == ["hosts[3].enabeld: unknown key; did you mean enabled?"]


@pytest.mark.parametrize(
    ("where", "typo", "near"),
    [
        (("vms", 0), "migrateable", "migratable"),
        (("vms", 0, "flavor"), "extra_spec", "extra_specs"),
        (("server_groups", 0), "rule", "rules"),
        (("policies", 0), "max_host_scor", "max_host_score"),
        (("hosts", 0), "upp", "up"),
        ((), "server_group", "server_groups"),
        (("aggregates", 0), "metdata", "metadata"),
    ],
)
def test_misspelled_keys_of_the_issue_are_errors(where: tuple[Any, ...], typo: str, near: str) -> None:
    doc = _snapshot()
    target = doc
    for key in where:
        target = target[key]
    target[typo] = True
    path = "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in where).lstrip(".")
    assert problems(doc) == [f"{path}.{typo}: unknown key; did you mean {near}?".lstrip(".")]


@pytest.mark.parametrize("kind", ["plan", "state"])
def test_unknown_keys_in_plans_and_states(kind: str) -> None:
    doc = DOCS[kind]()
    if kind == "plan":
        doc["steps"][1]["destinaton"] = "cmp-3"
        assert problems(doc, kind) == ["steps[1].destinaton: unknown key; did you mean destination?"]
    else:
        doc["instance_cooldown_untl"] = doc.pop("instance_cooldown_until")
        assert problems(doc, kind) == [
            "instance_cooldown_untl: unknown key; did you mean instance_cooldown_until?"
        ]


def test_x_keys_and_source_are_free() -> None:
    doc = _snapshot()
    doc["x_producer"] = {"anything": [1, {"deep": None}]}
    doc["hosts"][0]["x_rack"] = "r12"
    doc["vms"][0]["flavor"]["x_family"] = "c"
    doc["hosts"][0]["capacity"]["x_note"] = "measured"
    doc["source"] = {"recorder": "mine", "whatever": {"keys": ["we", "like"]}, "n": 3}
    assert problems(doc) == []
    plan, state = _plan(), _state()
    plan["steps"][0]["x_ticket"] = "OPS-1"
    state["x_owner"] = "team-a"
    assert problems(plan, "plan") == [] and problems(state, "state") == []


def test_state_with_a_misspelled_key_is_refused_and_not_rewritten(tmp_path: Path) -> None:
    state = _state()
    state["instance_cooldown_untl"] = state.pop("instance_cooldown_until")
    path = tmp_path / "state.json"
    path.write_text(json.dumps(state))
    before = path.read_bytes()
    proc = kronos_cli(
        "state", "record-result", "--state", str(path), "--instance", "vm-9", "--outcome", "Succeeded"
    )
    assert proc.returncode == 65
    assert "instance_cooldown_untl: unknown key; did you mean instance_cooldown_until?" in proc.stderr
    assert path.read_bytes() == before  # the cooldowns are not silently dropped


def test_known_keys_come_from_the_model() -> None:
    """A field added to a model class is known at once: there is no second list of keys."""

    @attrs.frozen
    class Later:
        name: str
        brand_new: float | None = None

    read = reader_for(Later)
    from kronos.core.convert import _Problems

    ok, bad = _Problems(), _Problems()
    assert read({"name": "a", "brand_new": 2}, (), None, ok) == Later("a", 2.0) and not ok.issues
    read({"name": "a", "brand_nwe": 2}, (), None, bad)
    assert [str(i) for i in bad.issues] == ["brand_nwe: unknown key; did you mean brand_new?"]


def _formats_examples() -> list[Any]:
    if not FORMATS.exists():
        pytest.skip(f"{FORMATS} is not beside this checkout")
    blocks = re.findall(r"```json\n(.*?)```", FORMATS.read_text(), flags=re.S)
    return [json.loads(b) for b in blocks]


def test_every_key_of_the_formats_examples_is_known() -> None:
    examples = _formats_examples()
    assert len(examples) >= 5
    kinds = {"kronos.plan/1": "plan", "kronos.state/1": "state"}
    for doc in examples:
        kind = kinds.get(doc.get("format"), "snapshot")
        doc.setdefault("format", f"kronos.{kind}/1")
        found = problems(doc, kind)
        assert not [p for p in found if "unknown key" in p or "unknown resource class" in p], found


# ------------------------------------------------------------------ FORMATS §4, §5, §6


def test_section_4_host_facts_are_read_and_round_trip(tmp_path: Path) -> None:
    doc = _snapshot()
    doc["hosts"][0]["capacity"] = {
        "VCPU": 64,
        "MEMORY_MB": 262144,
        "DISK_GB": 900,
        "PCPU": 32,
        "VGPU": 4,
        "CUSTOM_NIC_SRIOV": 8,
    }
    doc["hosts"][0]["traits"] = ["HW_CPU_X86_AVX2", "CUSTOM_GOLD"]
    doc["hosts"][0]["numa_cells"] = [
        {"id": 0, "vcpus": 16, "memory_mb": 131072},
        {"id": 1, "vcpus": 16, "memory_mb": 131072},
    ]
    v = doc["vms"][0]
    v["resources"] = {
        k: v["flavor"][k] for k in ("vcpus", "memory_mb", "disk_gb")
    }  # what it holds: binds nothing new
    v["devices"], v["required_traits"], v["live_migratable_devices"] = [], [], False
    assert problems(doc) == []
    snap = kronos.load_snapshot(io.StringIO(json.dumps(doc)))
    cap = snap.hosts[0].capacity
    assert (cap.vcpus, cap.memory_mb, cap.disk_gb) == (64, 262144, 900)
    assert cap.classes == {"PCPU": 32, "VGPU": 4, "CUSTOM_NIC_SRIOV": 8}
    kronos.dump(snap, tmp_path / "again.json")
    written = json.loads((tmp_path / "again.json").read_text())
    assert written["hosts"][0]["capacity"] == {
        "vcpus": 64,
        "memory_mb": 262144,
        "disk_gb": 900,
        "PCPU": 32,
        "VGPU": 4,
        "CUSTOM_NIC_SRIOV": 8,
    }
    assert kronos.load_snapshot(tmp_path / "again.json") == snap


def test_capacity_names_that_are_not_resource_classes_are_errors() -> None:
    doc = _snapshot()
    doc["hosts"][0]["capacity"]["vcpu"] = 3
    doc["hosts"][1]["capacity"]["VCPU"] = 3  # and vcpus too: the same class twice
    doc["hosts"][2]["capacity"]["GPU"] = 1
    found = problems(doc)
    assert "hosts[0].capacity.vcpu: unknown resource class; did you mean vcpus?" in found
    assert "hosts[1].capacity.VCPU: vcpus given twice (by its two names)" in found or (
        "hosts[1].capacity.vcpus: vcpus given twice (by its two names)" in found
    )
    assert any(p.startswith("hosts[2].capacity.GPU: unknown resource class") for p in found)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("resources", {"PCPU": 4, "memory_mb": 4096, "disk_gb": 40}),
        ("required_traits", ["HW_CPU_X86_AVX512F"]),
        ("forbidden_traits", ["CUSTOM_GOLD"]),
        ("devices", ["pci:gpu-a100"]),
    ],
)
def test_section_4_fields_are_read_and_honoured(field: str, value: Any) -> None:
    doc = _snapshot()
    doc["vms"][0][field] = value
    assert problems(doc) == []


@pytest.mark.parametrize(
    ("host_cells", "vm_cells", "message"),
    [
        (None, [0], "its host cmp-1 has no numa_cells"),
        ([{"id": 0, "vcpus": 8, "memory_mb": 8192}], [1], "not cells of its host cmp-1 (0)"),
        ([{"id": 0, "vcpus": 8, "memory_mb": 8192}], [0, 0], "cell ids must be distinct"),
    ],
)
def test_a_vms_numa_cells_must_be_cells_of_its_host(
    host_cells: Any, vm_cells: list[int], message: str
) -> None:
    doc = _snapshot()
    host = next(h for h in doc["hosts"] if h["name"] == doc["vms"][0]["host"])
    if host_cells is not None:
        host["numa_cells"] = host_cells
    doc["vms"][0]["numa_cells"] = vm_cells
    (msg,) = problems(doc)
    assert msg.startswith("vms[0].numa_cells") and message.replace("cmp-1", host["name"]) in msg


def test_a_trait_both_required_and_forbidden_is_an_error() -> None:
    doc = _snapshot()
    doc["vms"][0]["required_traits"] = ["CUSTOM_GOLD"]
    doc["vms"][0]["forbidden_traits"] = ["CUSTOM_GOLD"]
    (msg,) = problems(doc)
    assert msg.startswith("vms[0].forbidden_traits") and "also required" in msg


def test_section_5_time_fields_are_read_and_their_shape_checked() -> None:
    doc = _snapshot()
    h, v = doc["hosts"][0], doc["vms"][0]
    score = h["scores"]["cpu-spread"]
    h["score_history"] = {"cpu-spread": [0.3, None, score]}
    v["weights_forecast"] = {"cpu-spread": 0.01}
    found = problems(doc)
    assert found == [
        "history_step_seconds: required when hosts[].score_history is present",
        "forecast_horizon_seconds: required when vms[].weights_forecast is present",
    ]
    doc["history_step_seconds"], doc["forecast_horizon_seconds"] = 60, 900
    assert problems(doc) == []
    h["score_history"] = {"cpu-spread": [1.5, score, None], "cpu-sprad": [score]}
    v["weights_forecast"] = {"cpu-spread": 2.0}
    found = problems(doc)
    assert "hosts[0].score_history.cpu-spread[0] = 1.5: must be in [0, 1] or null" in found
    assert (
        "hosts[0].score_history.cpu-spread[2]: the last sample is the score at taken_at; never null" in found
    )
    assert "hosts[0].score_history.cpu-sprad: no policy of this name; did you mean cpu-spread?" in found
    assert "vms[0].weights_forecast.cpu-spread = 2.0: forecasts must be in [0, 1]" in found


def test_section_5_and_6_plan_fields_are_read() -> None:
    plan = _plan()
    agg = plan["summary"]["aggregates"]["agg"]
    agg.update(moved_memory_mb=8192, combined_forecast_before=0.3, combined_forecast_after=0.2)
    agg["optimality"] = {
        "solver": "cp-sat",
        "status": "optimal",
        "objective": 4,
        "bound": 4,
        "gap": 0,
        "seconds": 1.5,
        "objective_kind": "hosts",
    }
    plan["steps"][1]["numa_cells"] = [0, 1]
    plan["steps"][2]["repeat_reason"] = "parking move for a two-hop swap"
    assert problems(plan, "plan") == []
    loaded = kronos.load_plan(io.StringIO(json.dumps(plan)))
    assert loaded.summary.aggregates["agg"].optimality.status == "optimal"  # type: ignore[union-attr]
    assert loaded.steps[2].repeat_reason and loaded.steps[1].numa_cells == (0, 1)
    agg["optimality"]["status"], agg["optimality"]["objective_kind"] = "great", "vibes"
    found = problems(plan, "plan")
    assert any(p.startswith("summary.aggregates.agg.optimality.status = 'great'") for p in found)
    assert any(p.startswith("summary.aggregates.agg.optimality.objective_kind = 'vibes'") for p in found)


# ------------------------------------------------------------------ snapshot values


def test_duplicate_json_keys_are_errors_with_their_path() -> None:
    text = json.dumps(_snapshot()).replace('"enabled": true', '"enabled": true, "enabled": false', 1)
    found = problems(None, "snapshot", text)
    assert found == ["policies[0].enabled: key given 2 times (only one is allowed)"]


def test_values_keyed_by_an_unknown_policy() -> None:
    doc = _snapshot()
    doc["hosts"][0]["scores"]["cpu-sprea"] = 0.5
    doc["hosts"][1]["score_capacity"] = {"gpu": 4}
    doc["vms"][2]["weights"]["memory-spreed"] = 0.1
    assert problems(doc) == [
        "hosts[0].scores.cpu-sprea: no policy of this name; did you mean cpu-spread?",
        "hosts[1].score_capacity.gpu: no policy of this name",
        "vms[2].weights.memory-spreed: no policy of this name; did you mean memory-spread?",
    ]


@pytest.mark.parametrize("status", ["active", "Running", "", "DELETING"])
def test_unknown_vm_status_is_an_error(status: str) -> None:
    doc = _snapshot()
    doc["vms"][1]["status"] = status
    (msg,) = problems(doc)
    assert msg.startswith(f"vms[1].status = {status!r}: not a Nova server status")


def test_every_nova_status_is_accepted() -> None:
    doc = _snapshot()
    for i, status in enumerate(NOVA_STATUSES):
        doc["vms"][i % len(doc["vms"])]["status"] = status
        assert problems(doc) == [], status


@pytest.mark.parametrize("tags", ["automatic-recovery", {"automatic-recovery": True}, [1]])
def test_tags_must_be_a_list_of_strings(tags: Any) -> None:
    doc = _snapshot()
    doc["vms"][0]["tags"] = tags
    (msg,) = problems(doc)
    assert msg.startswith("vms[0].tags")


@pytest.mark.parametrize("kind", ["snapshot", "plan", "state"])
def test_missing_format_is_an_error(kind: str) -> None:
    doc = DOCS[kind]()
    del doc["format"]
    assert problems(doc, kind) == [f'format: missing required key (expected "kronos.{kind}/1")']


@pytest.mark.parametrize(
    ("kind", "where"),
    [("snapshot", ("taken_at",)), ("plan", ("created_at",)), ("state", ("instance_cooldown_until", "vm-1"))],
)
def test_times_without_a_utc_offset_are_errors(kind: str, where: tuple[str, ...]) -> None:
    doc = DOCS[kind]()
    target = doc
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = "2026-11-21T10:00:00"
    (msg,) = problems(doc, kind)
    assert (
        msg
        == f"{'.'.join(where)} = '2026-11-21T10:00:00': expected an RFC 3339 time with a UTC offset, e.g. 2026-11-21T10:00:00Z"
    )


def test_a_lowercase_z_is_utc_as_rfc_3339_allows() -> None:
    """RFC 3339 §5.6: 'T' and 'Z' may be lowercase; '…10:00:00z' was refused."""
    doc = DOCS["snapshot"]()
    doc["taken_at"] = "2026-11-21t10:00:00z"
    assert problems(doc) == []
    assert LOADERS["snapshot"](io.StringIO(json.dumps(doc))).taken_at == T0
    doc["taken_at"] = "2026-11-21T10:00:00"  # and no offset at all is still refused
    assert problems(doc) and "with a UTC offset" in problems(doc)[0]


def test_blank_ids_and_names_are_errors() -> None:
    doc = _snapshot()
    doc["hosts"][0]["name"] = ""
    doc["vms"][0]["id"] = "  "
    doc["aggregates"][0]["name"] = ""
    doc["server_groups"][0]["id"] = ""
    doc["policies"][0]["name"] = " "
    found = problems(doc)
    for path in (
        "hosts[0].name",
        "vms[0].id",
        "aggregates[0].name",
        "server_groups[0].id",
        "policies[0].name",
    ):
        assert any(p.startswith(path) and p.endswith("must not be blank") for p in found), path


def test_policy_label_type_outside_its_set() -> None:
    doc = _snapshot()
    doc["policies"][0]["vm_profile_label_type"] = "hostname"
    (msg,) = problems(doc)
    assert msg.startswith("policies[0].vm_profile_label_type = 'hostname': must be one of nova_instance_uuid")


@pytest.mark.parametrize("cost", ["-Infinity", "NaN", "-1"])
def test_cost_per_hour_must_be_a_finite_amount(cost: str) -> None:
    text = json.dumps(_snapshot()).replace('"cost_per_hour": ', f'"cost_per_hour": {cost}, "x_was": ', 1)
    (msg,) = problems(None, "snapshot", text)
    assert msg.startswith("hosts[0].cost_per_hour = ")


# ------------------------------------------------------------------ plans and states


def test_plan_problems_are_errors() -> None:
    plan = _plan()
    plan["steps"][1]["seq"] = 1
    plan["steps"][2]["combined_after"] = math.nan
    plan["steps"][0]["action"] = "teleport"
    plan["steps"][2]["phase"] = " "
    assert problems(plan, "plan") == [
        "steps[2].combined_after = NaN: must be a finite number",
        "steps[0].seq = 1: another step has this seq",
        "steps[0].action = 'teleport': must be one of live-migrate, cold-migrate, evacuate, cross-cloud-migrate",
        "steps[1].seq = 1: another step has this seq",
        "steps[2].phase = ' ': must be a phase name",
    ]
    plan = _plan()
    plan["summary"] = ["not", "a", "summary"]
    assert problems(plan, "plan") == ["summary = ['not', 'a', 'summary']: expected a mapping (PlanSummary)"]


def test_a_later_phase_is_fine() -> None:
    plan = _plan()
    plan["steps"][0]["phase"] = "defragment"
    assert problems(plan, "plan") == []


def test_execute_dry_run_refuses_an_unknown_action(tmp_path: Path) -> None:
    plan = _plan()
    plan["steps"][0]["action"] = "teleport"
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    conf = tmp_path / "kronos.conf"
    conf.write_text((ROOT / "etc" / "kronos" / "kronos.conf.sample").read_text())
    (tmp_path / "policies.yaml").write_text((ROOT / "etc" / "kronos" / "policies.yaml.sample").read_text())
    proc = kronos_cli("execute", str(path), "--config", str(conf), "--dry-run")
    assert proc.returncode == 65, proc.stderr
    assert "would teleport" not in proc.stdout and "steps[0].action = 'teleport'" in proc.stderr


def test_state_problems_are_errors() -> None:
    state = _state()
    state["results"][0]["outcome"] = "Exploded"
    state["aggregate_cooldown_until"][""] = "2026-11-21T10:00:00Z"
    assert problems(state, "state") == [
        'aggregate_cooldown_until[""]: keys must not be blank',
        "results[0].outcome = 'Exploded': must be one of Succeeded, PreFlightError, MigrationFailed, MigrationTimeout",
    ]


# ------------------------------------------------------------------ messages and exit codes


def test_validate_reports_structural_and_semantic_problems_together_once(tmp_path: Path) -> None:
    doc = _snapshot()
    doc["hosts"][0]["enabled"] = "yes"  # a type error ...
    doc["vms"][0]["host"] = "cmp-999"  # ... and a meaning error after it
    doc["vms"][1]["weights"]["cpu-spread"] = 7  # ... and another
    path = tmp_path / "s.json"
    path.write_text(json.dumps(doc))
    proc = kronos_cli("validate", str(path))
    assert proc.returncode == 65
    lines = [
        f"{path}: hosts[0].enabled = 'yes': expected true or false",
        f"{path}: vms[0].host = 'cmp-999': unknown host",
        f"{path}: vms[1].weights.cpu-spread = 7.0: weights must be in [0, 1]",
    ]
    for line in lines:
        assert proc.stderr.count(line.split(": ", 1)[1]) == 1, proc.stderr
        assert line in proc.stderr
    assert proc.stderr.strip().endswith(f"{path}: 3 error(s), 0 warning(s)")


def test_every_structural_error_shows_its_value() -> None:
    doc = _snapshot()
    doc["hosts"][0]["capacity"]["vcpus"] = "many"
    doc["vms"][0]["migratable"] = "false"
    doc["policies"][0]["weight"] = "0.3"
    doc["server_groups"][0]["members"] = "vm-1"
    found = problems(doc)
    assert found == [
        "policies[0].weight = '0.3': expected a number",
        "hosts[0].capacity.vcpus = 'many': expected a number",
        "vms[0].migratable = 'false': expected true or false",
        "server_groups[0].members = 'vm-1': expected a list",
    ]


@pytest.mark.parametrize("kind", ["snapshot", "plan", "state"])
def test_an_unreadable_input_file_exits_66(
    tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """EX_NOINPUT is "did not exist or was not readable"; 77 is for a cloud's permissions."""
    from kronos.cli import cli, run

    path = tmp_path / f"{kind}.json"
    path.write_text(json.dumps(DOCS[kind]()))
    real = Path.open

    def refuse(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self == path:  # fault injection: root, as CI runs, reads a file of mode 000 anyway
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refuse)
    assert run(cli.main, list(_cli_args(kind, path))) == 66
    assert f"{path}: not readable (permission denied)" in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file of mode 000")
def test_a_file_of_mode_000_exits_66(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps(_snapshot()))
    path.chmod(0)
    proc = kronos_cli("validate", str(path))
    assert proc.returncode == 66 and "not readable" in proc.stderr
    _no_traceback(proc)


def test_structure_rejects_a_document_of_the_wrong_kind() -> None:
    with pytest.raises(ValidationError, match=r"expected kronos\.snapshot/1"):
        structure(_plan(), kronos.Snapshot, "p.json")
    with pytest.raises(DataError, match=r"expected a kronos\.state object"):
        structure([1, 2], kronos.State, "s.json")


def test_a_host_of_more_numa_cells_than_kronos_plans_is_an_error_naming_it() -> None:
    doc = _snapshot()
    doc["hosts"][0]["numa_cells"] = [{"id": i, "vcpus": 1, "memory_mb": 1024} for i in range(64)]
    (msg,) = problems(doc)
    assert msg.startswith("hosts[0].numa_cells = 64") and "up to 63 NUMA cells" in msg


def test_a_byte_order_mark_is_read_past_in_json_as_in_yaml(tmp_path: Path) -> None:
    """Windows editors write one: a .yaml or kronos.conf with it loaded, the same .json was 65."""
    example = (ROOT / "examples" / "snapshot.json").read_bytes()
    for name in ("s.json", "s.yaml"):
        marked = tmp_path / name
        marked.write_bytes(b"\xef\xbb\xbf" + example)
        assert (
            kronos.load_snapshot(marked).digest
            == kronos.load_snapshot(ROOT / "examples" / "snapshot.json").digest
        )
    proc = kronos_cli("validate", str(tmp_path / "s.json"))
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stderr
    stream = io.BytesIO(b"\xef\xbb\xbf" + example)  # an open binary file: the same, and bad bytes are 65
    assert (
        kronos.load_snapshot(stream).digest
        == kronos.load_snapshot(ROOT / "examples" / "snapshot.json").digest
    )
    with pytest.raises(DataError, match=r"<stream>: not UTF-8 text"):
        kronos.load_snapshot(io.BytesIO(b"\xff" + example))


class _Endless(io.RawIOBase):
    """A device of bad bytes that never ends (``/dev/urandom``), counting what is read of it."""

    name = "endless"

    def __init__(self, first: bytes) -> None:
        self.first, self.given = first, 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        assert 0 < size and self.given < 64 << 20, "read on, past the first bad byte"
        chunk = (self.first + b"\0" * size)[:size] if self.given == 0 else b"\0" * size
        self.given += len(chunk)
        return chunk


@pytest.mark.parametrize(
    ("first", "said"),
    [(b"\xff", "invalid start byte at byte 0"), (b'{"a": "\xc3(', "invalid continuation byte at byte 7")],
)
def test_bytes_that_are_not_utf8_are_refused_where_they_are_read(first: bytes, said: str) -> None:
    """``kronos plan /dev/urandom`` read 1 GiB (the size cap) before the UTF-8 check refused it."""
    from kronos.files import read_text

    stream = _Endless(first)
    with pytest.raises(DataError, match=f"endless: not UTF-8 text \\({said}\\)") as err:
        read_text(stream)
    assert err.value.exit_code == 65
    assert stream.given <= 1 << 20  # the first chunk


def test_bytes_not_utf8_in_an_open_text_stream_are_a_data_error() -> None:
    """A text stream decodes inside its read(): its UnicodeDecodeError escaped as a traceback."""
    stream = io.TextIOWrapper(io.BytesIO(b'{"a": "\xff"}'), encoding="utf-8")
    with pytest.raises(DataError, match=r"<stream>: not UTF-8 text \(invalid start byte\)"):
        kronos.load_snapshot(stream)


def test_a_document_past_the_size_limit_is_refused_before_it_fills_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--state /dev/zero`` read until the kernel killed the process (a device never ends)."""
    import kronos.files

    example = ROOT / "examples" / "snapshot.json"
    size = example.stat().st_size
    monkeypatch.setattr(kronos.files, "MAX_DOCUMENT_BYTES", size)
    assert len(kronos.load_snapshot(example).vms) > 0  # as large as allowed: read
    monkeypatch.setattr(kronos.files, "MAX_DOCUMENT_BYTES", size - 1)
    with pytest.raises(DataError, match=rf"snapshot.json: more than {size - 1} bytes: too large"):
        kronos.load_snapshot(example)
    with pytest.raises(DataError, match="<stream>: more than"):  # an open stream, text or binary
        kronos.load_snapshot(io.StringIO(example.read_text()))
    monkeypatch.setattr(kronos.files, "MAX_DOCUMENT_BYTES", size)  # the snapshot fits, nothing more
    endless = kronos_cli("plan", str(example), "--state", "/dev/zero")
    assert endless.returncode == 65 and f"/dev/zero: more than {size} bytes" in endless.stderr, endless.stderr
    piped = kronos_cli("plan", "-", stdin="{" + " " * size + "}")
    assert piped.returncode == 65 and f"<stdin>: more than {size} bytes" in piped.stderr, piped.stderr
    import kronos.adapters.config

    monkeypatch.setattr(kronos.adapters.config, "MAX_CONFIG_BYTES", size)  # kronos.conf's own cap
    conf = tmp_path / "kronos.conf"
    conf.write_text("[engine]\naggregates = a\n" + "#" * size + "\n")
    config = kronos_cli("check-config", "--config", str(conf))
    assert config.returncode == 78 and f"kronos.conf: more than {size} bytes" in config.stdout + config.stderr
    noise = kronos_cli("check-config", "--config", "/dev/urandom")  # read until the cap, not a GiB
    assert noise.returncode == 78 and "/dev/urandom: more than " in noise.stdout + noise.stderr


def test_a_document_with_thousands_of_problems_lists_the_first_fifty(tmp_path: Path) -> None:
    """Every one of 480 bad VMs was a line on stderr (a generated snapshot gone wrong buries the
    first screenful, where the cause is); the library's error keeps them all."""
    doc = json.loads((ROOT / "examples" / "snapshot.json").read_text())
    for vm in doc["vms"]:
        vm["weights"]["cpu-spread"] = -1
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    proc = kronos_cli("plan", str(bad))
    lines = proc.stderr.splitlines()
    assert proc.returncode == 65 and lines[0] == f"kronos: error: {bad}: {len(doc['vms'])} problem(s)", lines[
        :2
    ]
    assert len(lines) == 52 and lines[-1] == f"  … and {len(doc['vms']) - 50} more", lines[-3:]
    assert all(".weights.cpu-spread = -1" in line for line in lines[1:51])
    with pytest.raises(ValidationError) as err:
        kronos.plan(kronos.load_snapshot(str(bad)))
    assert len(err.value.issues) == len(doc["vms"])


def test_a_document_no_reader_would_take_is_not_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """generate --vms 2300000 wrote 1.13 GB, which validate and plan then refused (65 over
    1 GiB). The bound is lowered here so that a small snapshot is over it."""
    import kronos.files

    snap = kronos.generate(hosts=5, vms=40, groups=2, seed=1)
    size = len(kronos.files.render(snap))
    monkeypatch.setattr(kronos.files, "MAX_DOCUMENT_BYTES", size - 1)
    out = tmp_path / "big.json"
    with pytest.raises(DataError, match=f"{out}: the document would be {size} bytes, over the {size - 1}"):
        kronos.dump(snap, out)
    assert not out.exists()
    monkeypatch.setattr(kronos.files, "MAX_DOCUMENT_BYTES", size)
    kronos.dump(snap, out)
    assert kronos.load_snapshot(out) == snap
