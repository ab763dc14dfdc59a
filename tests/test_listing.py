"""Rows in the openstack client's formats: -f table|json|yaml|value|csv, -c, --sort-column."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml as pyyaml
from hypothesis import given
from hypothesis import strategies as st
from ruamel.yaml import YAML

import kronos
from kronos.errors import UsageError
from kronos.listing import Listing, Shape, render, table
from kronos.render import EXPLAIN_COLUMNS, SCORE_COLUMNS
from tests import promdata
from tests.conftest import ROOT, kronos_cli
from tests.prometheus_server import serve_history
from tests.test_explain import STATE, _snapshot

EXAMPLE = str(ROOT / "examples" / "snapshot.json")
ROWS = Listing(
    ("seq", "instance", "cells", "after"),
    ((2, "vm-b", [0, 1], 0.25), (1, "vm-a", None, 0.5), (3, "vm-c", [1], 0.125)),
)


def test_json_yaml_csv_and_value_carry_the_rows() -> None:
    dicts = [dict(zip(ROWS.columns, r, strict=True)) for r in ROWS.rows]
    assert json.loads(render(ROWS, Shape("json"))) == dicts
    assert "\n" not in render(ROWS, Shape("json", noindent=True)).rstrip("\n")
    assert YAML(typ="safe").load(render(ROWS, Shape("yaml"))) == dicts
    parsed = list(csv.reader(io.StringIO(render(ROWS, Shape("csv")))))
    assert parsed == [
        list(ROWS.columns),
        ["2", "vm-b", "0,1", "0.25"],
        ["1", "vm-a", "", "0.5"],
        ["3", "vm-c", "1", "0.125"],
    ]
    assert render(ROWS, Shape("value", columns=("instance",))) == "vm-b\nvm-a\nvm-c\n"


def test_columns_choose_and_order_sort_orders() -> None:
    got = render(ROWS, Shape("value", columns=("after", "seq"), sort=("seq",)))
    assert got == "0.5 1\n0.25 2\n0.125 3\n"
    by_cells = render(ROWS, Shape("value", columns=("instance",), sort=("cells",)))
    assert by_cells.split() == ["vm-a", "vm-b", "vm-c"]  # None first, then as printed
    with pytest.raises(UsageError, match=r"-c size: no such column \(columns: seq, instance, cells, after\)"):
        render(ROWS, Shape("value", columns=("size",)))
    with pytest.raises(UsageError, match="--sort-column size: no such column"):
        render(ROWS, Shape("json", sort=("size",)))


@given(
    words=st.lists(
        st.text(
            st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="|"),
            min_size=1,
            max_size=90,
        ),
        min_size=1,
        max_size=6,
    ),
    width=st.integers(60, 160),
)
def test_a_table_fits_its_width_and_loses_nothing(words: list[str], width: int) -> None:
    listing = Listing(("n", "text"), tuple((i, w) for i, w in enumerate(words)))
    out = table(listing, width).splitlines()
    assert all(len(line) <= width for line in out)
    assert len({len(line) for line in out}) == 1  # every row as wide: aligned
    cells = "".join(line.split("|")[2].strip() for line in out if line.startswith("|"))
    assert cells == "text" + "".join(words)  # wrapped, never cut


def test_kronos_plan_rows_are_the_documents_steps(tmp_path: Path) -> None:
    doc = json.loads(kronos_cli("plan", EXAMPLE, "-o", "-").stdout)
    rows = kronos_cli("plan", EXAMPLE, "-f", "json")
    assert rows.returncode == 0, rows.stderr
    got = json.loads(rows.stdout)
    assert [r["instance"] for r in got] == [s["instance"] for s in doc["steps"]]
    assert [r["destination"] for r in got] == [s["destination"] for s in doc["steps"]]
    as_yaml = kronos_cli("plan", EXAMPLE, "-f", "yaml")  # a traceback: YAML knew no numpy float
    assert as_yaml.returncode == 0, as_yaml.stderr
    assert pyyaml.safe_load(as_yaml.stdout) == got  # and PyYAML reads what JSON says
    ids = kronos_cli("plan", EXAMPLE, "-f", "value", "-c", "instance").stdout.split()
    assert ids == [s["instance"] for s in doc["steps"]]
    out = tmp_path / "p.json"
    both = kronos_cli("plan", EXAMPLE, "-o", str(out), "-f", "csv", "-c", "seq")
    assert both.stdout.splitlines() == ['"seq"', *map(str, range(1, len(doc["steps"]) + 1))]
    assert kronos.load_plan(out).steps  # the file is the document, whatever -f says
    shown = kronos_cli("show", str(out), "-f", "value", "-c", "instance")
    assert shown.stdout.split() == ids
    bad = kronos_cli("plan", EXAMPLE, "-c", "nope")
    assert bad.returncode == 64 and "no such column" in bad.stderr and "Traceback" not in bad.stderr
    for shaped in (
        ("plan", EXAMPLE, "-o", "-", "-c", "seq"),
        ("explain", EXAMPLE, "--vm", "x", "-o", "-", "-f", "csv"),
    ):
        both_on_stdout = kronos_cli(*shaped)  # the rows asked for were dropped for the document
        assert both_on_stdout.returncode == 64 and "-o - writes the whole document" in both_on_stdout.stderr


def test_validate_and_state_rows(tmp_path: Path) -> None:
    snap = json.loads(Path(EXAMPLE).read_text())
    snap["hosts"][0]["scores"]["cpu-spread"] = 1.5
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(snap))
    proc = kronos_cli("validate", str(bad), "-f", "json")
    assert proc.returncode == 65
    rows = json.loads(proc.stdout)
    assert {"severity": "error", "path": "hosts[0].scores.cpu-spread", "value": "1.5"}.items() <= rows[
        0
    ].items()
    good = kronos_cli("validate", EXAMPLE, "-f", "json")  # stdout is JSON alone, the verdict on stderr
    assert good.returncode == 0 and json.loads(good.stdout) == [] and ": OK (" in good.stderr
    state = tmp_path / "state.json"
    kronos_cli("plan", EXAMPLE, "--state", str(state), "-o", str(tmp_path / "p.json"))
    held = kronos_cli("state", "show", "--state", str(state), "--now", "2026-01-01T00:00:00Z", "-f", "csv")
    assert held.returncode == 0, held.stderr
    lines = list(csv.reader(io.StringIO(held.stdout)))
    assert lines[0] == ["kind", "id", "until"] and {r[0] for r in lines[1:]} >= {
        "aggregate cooldown",
        "instance cooldown",
    }


def test_kronos_plans_lists_saved_plans_and_leaves_others_out(tmp_path: Path) -> None:
    """Oldest first by created_at (names sort by aggregate first), a row per aggregate moved with
    its own figures (the first aggregate's stood, unlabelled, for the whole plan)."""
    kronos_cli("plan", EXAMPLE, "-o", str(tmp_path / "plan-b.json"), "--now", "2026-11-21T11:00:00Z")
    kronos_cli("plan", EXAMPLE, "-o", str(tmp_path / "plan-c.yaml"))  # an operator's copy as YAML
    (tmp_path / "notes.json").write_text('{"x": 1}')
    (tmp_path / "gone.json").symlink_to(tmp_path / "nothing.json")  # a link to nothing: said
    proc = kronos_cli("plans", str(tmp_path), "-f", "json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    plan = kronos.load_plan(tmp_path / "plan-c.yaml")
    moved = {n: a for n, a in plan.summary.aggregates.items() if a.migrations}
    assert len(moved) == 2 and [r["file"] for r in rows] == ["plan-c.yaml"] * 2 + ["plan-b.json"] * 2
    assert [(r["aggregate"], r["steps"], r["combined_before"], r["combined_after"]) for r in rows[:2]] == [
        (n, a.migrations, a.combined_before, a.combined_after) for n, a in moved.items()
    ]
    assert "notes.json: not a plan, left out" in proc.stderr
    assert "gone.json: not a plan, left out" in proc.stderr
    (tmp_path / "gone.json").unlink()
    plan = json.loads((tmp_path / "plan-b.json").read_text())
    plan["steps"][0]["destinaton"] = plan["steps"][0].pop("destination")  # one misspelled key
    (tmp_path / "typo.json").write_text(json.dumps(plan))
    said = kronos_cli("plans", str(tmp_path)).stderr
    assert "typo.json: not a plan, left out:" in said
    assert "destinaton" in said and "did you mean destination" in said, said  # the hint, not just its echo
    assert kronos_cli("plans").returncode == 64
    conf = tmp_path / "kronos.conf"  # a configuration that saves no plans: its fault, 78
    conf.write_text("[engine]\naggregates = a\n")
    unset = kronos_cli("plans", "--config", str(conf))
    assert unset.returncode == 78 and "[engine] plan_dir is not set" in unset.stderr
    # the plans' folder is all it reads there: no policies file is needed to list them
    conf.write_text(f"[engine]\naggregates = a\nplan_dir = {tmp_path}\npolicies_file = /nonexistent.yaml\n")
    listed = kronos_cli("plans", "--config", str(conf), "-f", "csv", "-c", "file")
    assert listed.returncode == 0 and "plan-b.json" in listed.stdout, listed.stderr
    assert kronos_cli("plans", str(tmp_path / "nowhere")).returncode == 66
    a_file = kronos_cli("plans", EXAMPLE)
    assert a_file.returncode == 66 and "not a folder" in a_file.stderr


def test_the_plan_table_keeps_its_columns_with_long_names() -> None:
    import attrs

    from kronos.render import plan_table

    snap = kronos.generate(hosts=6, vms=60, groups=0, seed=4, skew=1.0, unmovable=0.0)
    long = {v.id: f"{v.name}-of-the-payments-database-cluster-in-zone-b" for v in snap.vms[::2]}
    snap = attrs.evolve(snap, vms=tuple(attrs.evolve(v, name=long.get(v.id, v.name)) for v in snap.vms))
    plan = kronos.plan(snap, budget=6)
    assert any(s.instance in long for s in plan.steps) and any(s.instance not in long for s in plan.steps)
    lines = plan_table(plan, reasons=False).splitlines()
    moves = [line for line in lines if " → " in line and "combined" in line]
    assert len(moves) == len(plan.steps)
    starts = {line.index(s.source + " → ") for line, s in zip(moves, plan.steps, strict=True)}
    assert len(starts) == 1  # every step's move starts in the same column
    width = max(len(line) for line in lines if line.lstrip().startswith("seq")) - 35 - len(" move")
    rebuilt, at = [], -1
    for line in lines:
        if line in moves:
            rebuilt.append(line[35 : 35 + width].strip())
            at = len(rebuilt) - 1
        elif at >= 0 and line.startswith(" " * 35) and line.strip():
            rebuilt[at] += line.strip()  # a long name goes on under its column
    assert rebuilt == [s.name for s in plan.steps]


# -- kronos explain and kronos scores: the same rows ---------------------------------------------
@pytest.fixture(scope="module")
def explained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path, kronos.Plan]:
    """test_explain's small cloud: web VMs pinned by anti-affinity, one too big, one resting, one host off."""
    where = tmp_path_factory.mktemp("explain")
    snap = _snapshot()
    plan = kronos.plan(snap, state=STATE)
    s, p, st = where / "s.json", where / "p.json", where / "state.json"
    kronos.dump(snap, s)
    kronos.dump(plan, p)
    kronos.dump(STATE, st)
    return s, p, st, plan


def test_kronos_explain_rows_are_the_records(explained: tuple[Path, Path, Path, kronos.Plan]) -> None:
    from kronos.core.explain import explain_host, explain_vm
    from kronos.core.reasons import render as say

    s, p, st, plan = explained
    args = ("explain", str(s), str(p), "--state", str(st), "--vm", "huge", "--vm", "resting", "--host", "off")
    rows = kronos_cli(*args, "-f", "json")
    assert rows.returncode == 0, rows.stderr
    got = json.loads(rows.stdout)
    assert all(tuple(r) == EXPLAIN_COLUMNS for r in got)
    snap = kronos.load_snapshot(s)
    huge, resting = (explain_vm(snap, plan, ref, STATE) for ref in ("huge", "resting"))
    off = explain_host(snap, plan, "off", STATE)
    want = [("huge", "candidate", h.host, h.why and h.why.rule) for h in huge.aggregates[0].hosts]
    want += [("huge", "decision", r.host, r.rule) for r in huge.decision]
    want += [("resting", "not_movable", r.host, r.rule) for r in resting.not_movable]
    want += [("resting", "candidate", h.host, h.why and h.why.rule) for h in resting.aggregates[0].hosts]
    want += [("resting", "decision", r.host, r.rule) for r in resting.decision]
    want += [("off", "decision", r.host, r.rule) for r in off.decision]
    assert [(r["subject"], r["kind"], r["host"], r["rule"]) for r in got] == want
    assert {r["host"]: r["rule"] for r in got if r["subject"] == "huge" and r["kind"] == "candidate"} == {
        "h2": "capacity.vcpus", "h3": "capacity.vcpus", "h4": "capacity.vcpus", "off": "host.enabled"
    }  # fmt: skip
    # the sentences are the rules' own, as the text prints them
    text = kronos_cli(*args).stdout
    for r in got:
        if r["kind"] == "decision":
            assert f"    {r['reason']}\n" in text
    held = next(r for r in got if r["kind"] == "not_movable")
    assert held["reason"] == say(resting.not_movable[0]) and f"may not move: {held['reason']}" in text
    fits = [h for h in resting.aggregates[0].hosts if h.why is None]
    assert fits and all(r["combined_after"] is None for r in got if r["rule"] is not None)

    # -f value -c host: exactly the rows' hosts, None as an empty line; --sort-column sorts
    hosts = kronos_cli(
        "explain", str(s), str(p), "--state", str(st), "--vm", "resting", "-f", "value", "-c", "host"
    )
    assert hosts.stdout.split("\n")[:-1] == [r["host"] or "" for r in got if r["subject"] == "resting"]
    ranked = kronos_cli("explain", str(s), str(p), "--state", str(st), "--vm", "resting", "-f", "value",
                        "-c", "host", "-c", "combined_after", "--sort-column", "combined_after")  # fmt: skip
    best = [line.split() for line in ranked.stdout.splitlines()[-len(fits) :]]
    by_gain = sorted(fits, key=lambda h: h.combined_after or 0.0)
    assert [b[0] for b in best] == [h.host for h in by_gain]
    assert [float(b[1]) for b in best] == pytest.approx([h.combined_after for h in by_gain], rel=1e-5)
    table = kronos_cli(*args, "-f", "csv", "-c", "subject", "-c", "kind")
    assert next(csv.reader(io.StringIO(table.stdout))) == ["subject", "kind"]
    records = json.loads(kronos_cli(*args, "-o", "-").stdout)  # the records, as before -f meant rows
    assert records[0]["instance"] == "huge" and records[2]["closed"][0]["rule"] == "host.enabled"


def test_kronos_explain_refuses_an_unknown_column_before_planning(tmp_path: Path) -> None:
    bad = kronos_cli("explain", str(tmp_path / "none.json"), "--vm", "x", "-c", "nope")
    assert bad.returncode == 64 and "-c nope: no such column (columns: subject, kind," in bad.stderr
    bad = kronos_cli("explain", EXAMPLE, "--vm", "x", "--sort-column", "score")
    assert bad.returncode == 64 and "--sort-column score: no such column" in bad.stderr


@pytest.fixture(scope="module")
def truth() -> promdata.Truth:
    return promdata.build(hosts=6, vms=60, seed=3)


@pytest.fixture(scope="module")
def prom(truth: promdata.Truth, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prometheus serving the truth's exporter history (skips locally without one)."""
    with serve_history(promdata.openmetrics(truth), tmp_path_factory.mktemp("prometheus")) as url:
        yield url


def _scores(tmp: Path, prom: str, truth: promdata.Truth) -> tuple[str, ...]:
    """``kronos scores`` on agg-good, agg-nan and agg-gone, its lost host marked down in the snapshot."""
    (tmp / "policies.yaml").write_text((ROOT / "etc" / "kronos" / "policies.yaml.sample").read_text())
    (tmp / "kronos.conf").write_text(f"[prometheus]\nurl = {prom}\n")
    hosts = sorted({h for members in truth.aggregates.values() for h in members})
    doc = {
        "format": "kronos.snapshot/1",
        "taken_at": "2026-01-01T00:00:00Z",
        "aggregates": [{"name": n, "hosts": m} for n, m in truth.aggregates.items()],
        "hosts": [
            {"name": h, "up": h != "gone-01", "capacity": {"vcpus": 8, "memory_mb": 1024, "disk_gb": 10}}
            for h in hosts
        ],
    }
    (tmp / "topology.json").write_text(json.dumps(doc))
    return (
        "scores", "--config", str(tmp / "kronos.conf"), "--snapshot", str(tmp / "topology.json"),
        "--at", str(promdata.END), "--aggregate", "agg-good", "--aggregate", "agg-nan", "--aggregate", "agg-gone",
    )  # fmt: skip


def test_kronos_scores_rows(prom: str, truth: promdata.Truth, tmp_path: Path) -> None:
    args = _scores(tmp_path, prom, truth)
    proc = kronos_cli(*args, "-f", "json")
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert all(tuple(r) == SCORE_COLUMNS for r in got)
    policies = ["cpu-spread", "memory-spread"]
    assert [(r["aggregate"], r["host"], r["policy"]) for r in got] == [
        (a, h, p) for a in ("agg-good", "agg-nan", "agg-gone") for h in truth.aggregates[a] for p in policies
    ]
    of = {(r["aggregate"], r["host"], r["policy"]): r for r in got}
    for h in truth.aggregates["agg-good"]:
        cpu, mem = of["agg-good", h, "cpu-spread"], of["agg-good", h, "memory-spread"]
        assert (cpu["health"], mem["health"], cpu["problem"], cpu["skipped"]) == ("ok", "ok", None, None)
        assert cpu["score"] == pytest.approx(truth.hosts[h].cpu, abs=1e-9)
        assert mem["score"] == pytest.approx(truth.hosts[h].mem, abs=1e-9)
    nan = of["agg-nan", "nan-01", "memory-spread"]
    assert (nan["score"], nan["health"], nan["problem"]) == (None, "nan", "score is NaN")
    assert nan["imbalance"] is None and nan["exceeded"] is None and nan["skipped"].startswith("bad data: ")
    assert of["agg-nan", "nan-01", "cpu-spread"]["health"] == "ok"
    assert of["agg-gone", "gone-01", "cpu-spread"]["health"] == "down"  # not up in the snapshot
    assert of["agg-gone", "gone-01", "cpu-spread"]["skipped"] is None  # a dead host exports nothing

    # -f value -c host: exactly the hosts, --sort-column sorts, -f csv has the header
    hosts = kronos_cli(*args, "-f", "value", "-c", "host")
    assert hosts.stdout.splitlines() == [r["host"] for r in got]
    top = kronos_cli(*args, "-f", "value", "-c", "host", "-c", "score", "--sort-column", "score")
    pairs = [line.split() for line in top.stdout.splitlines()]
    numbers = [float(p[1]) for p in pairs if len(p) == 2]
    assert numbers == sorted(numbers) and len(numbers) == sum(r["score"] is not None for r in got)
    # no score sorts first, in the rows' order: NaN memory, and the dead host in both policies
    assert [p[0] for p in pairs[: len(pairs) - len(numbers)]] == ["nan-01", "gone-01", "gone-01"]
    table = kronos_cli(*args, "-f", "csv", "-c", "aggregate", "-c", "health")
    lines = list(csv.reader(io.StringIO(table.stdout)))
    assert lines[0] == ["aggregate", "health"] and len(lines) == len(got) + 1
    # the report document, as --format json printed it
    doc = json.loads(kronos_cli(*args, "-o", "-").stdout)
    assert [a["name"] for a in doc["aggregates"]] == ["agg-good", "agg-nan", "agg-gone"]
    human = kronos_cli(*args)
    assert human.stdout.startswith(f"Prometheus {prom} at 2026-01-01T00:00:00Z")


def test_kronos_scores_refuses_an_unknown_column_before_asking_prometheus(tmp_path: Path) -> None:
    (tmp_path / "policies.yaml").write_text((ROOT / "etc" / "kronos" / "policies.yaml.sample").read_text())
    (tmp_path / "kronos.conf").write_text("[prometheus]\nurl = http://127.0.0.1:9\nretries = 0\n")
    bad = kronos_cli("scores", "--config", str(tmp_path / "kronos.conf"), "-c", "hostname")
    assert bad.returncode == 64, bad.stderr
    assert "-c hostname: no such column (columns: aggregate, host, policy, score," in bad.stderr


def test_a_failed_query_is_a_row_not_an_empty_listing() -> None:
    """Without --snapshot a failed query leaves no host to list: its row says so."""
    from datetime import UTC, datetime

    from kronos.adapters.scores import PolicyReading, assess
    from kronos.core.model import Policy
    from kronos.render import scores_rows

    at = datetime.fromtimestamp(promdata.END, UTC)
    cpu = Policy("cpu", threshold=0.1, weight=1.0)
    mem = Policy("mem", threshold=0.1, weight=1.0)
    readings = {"cpu": PolicyReading(cpu, {"h1": (0.5,)}), "mem": PolicyReading(mem, {}, error="HTTP 503")}
    got = render(
        scores_rows(assess(readings, {"*": ["h1"]}, at)),
        Shape("json", columns=("host", "policy", "health", "problem")),
    )
    assert json.loads(got) == [
        {"host": "h1", "policy": "cpu", "health": "ok", "problem": None},
        {"host": "h1", "policy": "mem", "health": "query", "problem": None},
        {"host": None, "policy": "mem", "health": "query", "problem": "query failed: HTTP 503"},
    ]
