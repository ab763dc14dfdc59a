"""Rows in the openstack client's formats: -f table|json|yaml|value|csv, -c, --sort-column."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ruamel.yaml import YAML

import kronos
from kronos.errors import UsageError
from kronos.listing import Listing, Shape, render, table
from tests.conftest import ROOT, kronos_cli

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
    kronos_cli("plan", EXAMPLE, "-o", str(tmp_path / "plan-b.json"))
    (tmp_path / "notes.json").write_text('{"x": 1}')
    proc = kronos_cli("plans", str(tmp_path), "-f", "csv", "-c", "file", "-c", "steps")
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.reader(io.StringIO(proc.stdout)))
    assert rows[0] == ["file", "steps"] and [r[0] for r in rows[1:]] == ["plan-b.json"]
    assert int(rows[1][1]) == len(kronos.load_plan(tmp_path / "plan-b.json").steps)
    assert "notes.json: not a plan, left out" in proc.stderr
    assert kronos_cli("plans").returncode == 64
    assert kronos_cli("plans", str(tmp_path / "nowhere")).returncode == 66


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
