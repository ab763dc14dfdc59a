"""Fuzzing the snapshot, plan and state loaders: any input gives a document or a Kronos error.

Valid documents are mutated the ways the issue-17 sweep found bugs (keys
dropped, renamed, duplicated; wrong types; extreme numbers; deep nesting;
broken Unicode; YAML anchors, aliases and tags) and written as JSON or YAML.
Loading must either succeed, and then validating, digesting and writing the
result must not fail either, or raise a :class:`~kronos.errors.KronosError`.
A sample goes through the real ``kronos`` command, whose exit code must be
the error's and whose output must hold no traceback.

CI runs a few hundred examples (~30 s); ``nox -s fuzz`` runs thousands
(``FUZZ_EXAMPLES``, outside the ``KRONOS_*`` namespace the config layer reads).
"""

from __future__ import annotations

import copy
import io
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kronos
from kronos.core.convert import snapshot_digest
from kronos.core.state import prune
from kronos.errors import KronosError
from tests.conftest import kronos_cli

T0 = datetime(2026, 11, 21, 10, tzinfo=UTC)
LONG = int(os.environ.get("FUZZ_EXAMPLES", "0"))


def examples(ci: int, share: int = 1) -> settings:
    """``ci`` examples per test in CI (and locally); ``FUZZ_EXAMPLES / share`` in the long run."""
    return settings(max_examples=LONG // share or ci, suppress_health_check=list(HealthCheck))


def _base(kind: str) -> dict[str, Any]:
    if kind == "snapshot":
        doc = kronos.generate(hosts=4, vms=8, groups=2, seed=7, down=1, missing_weights=0.2)
    elif kind == "plan":
        steps = tuple(
            kronos.Step(
                i + 1, 1 + i // 2, "spread", "live-migrate", f"vm-{i}", "cmp-1", "cmp-2", "agg", "r", 0.1
            )
            for i in range(3)
        )
        agg = kronos.AggregateSummary({"cpu": 0.2}, {"cpu": 0.1}, 0.2, 0.1, 3, ("cmp-1",), notes=("n",))
        unplaced = (kronos.Unplaced("vm-9", "no room", "agg", "drain"),)
        summary = kronos.PlanSummary({"agg": agg}, unplaced, warnings=("w",))
        doc = kronos.Plan(T0, "sha256:" + "0" * 64, {"budget": 3, "mode": "spread"}, steps, summary)
    else:
        doc = kronos.State(
            {"agg": T0},
            {"vm-1": T0},
            {"vm-2": None, "vm-3": T0},
            (kronos.Result("vm-2", "MigrationFailed", T0, "e"),),
        )
    return json.loads(kronos.files.render(doc))  # type: ignore[no-any-return]


BASES = {kind: _base(kind) for kind in ("snapshot", "plan", "state")}
LOADERS = {"snapshot": kronos.load_snapshot, "plan": kronos.load_plan, "state": kronos.load_state}


class Raw(str):
    """Text written into the JSON as is (a 5 000-digit number, 3 000 brackets)."""


class Pairs(list[tuple[str, Any]]):
    """A JSON object that may name a key twice."""


def emit(v: Any) -> str:
    if isinstance(v, Raw):
        return str(v)
    if isinstance(v, Pairs):
        return "{" + ", ".join(f"{json.dumps(k)}: {emit(x)}" for k, x in v) + "}"
    if isinstance(v, dict):
        return emit(Pairs(v.items()))
    if isinstance(v, list):
        return "[" + ", ".join(emit(x) for x in v) + "]"
    return json.dumps(v)


def _paths(v: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [at] if at else []
    if isinstance(v, dict):
        for k, x in v.items():
            out += _paths(x, (*at, k))
    elif isinstance(v, list):
        for i, x in enumerate(v):
            out += _paths(x, (*at, i))
    return out


PATHS = {kind: _paths(doc) for kind, doc in BASES.items()}

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(
        [
            "",
            " ",
            "\ud800",
            "ACTIVE",
            "active",
            "live-migrate",
            "teleport",
            "MigrationFailed",
            "2026-11-21T10:00:00Z",
            "2026-11-21T10:00:00",
            "9999-12-31T23:59:59-01:00",
            "0001-01-01T00:00:00+01:00",
            "kronos.snapshot/1",
            "kronos.plan/2",
            "x_",
            1e30,
            2**63,
            -(2**63) - 1,
            -0.0,
            1e-320,
        ]
    )
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
extremes = st.sampled_from(
    [
        Raw("9" * 5000),
        Raw("-" + "1" * 4400),
        Raw("1e999999"),
        Raw("-Infinity"),
        Raw("NaN"),
        Raw("[" * 3000 + "]" * 3000),
        Raw("[" * 80 + "]" * 80),
        Raw('{"a":' * 70 + "1" + "}" * 70),
        Raw('"\\udc80\\ud800"'),
        Raw('"\\u0000"'),
    ]
)


@st.composite
def mutants(draw: st.DrawFn, kind: str) -> Any:
    """A valid document of ``kind`` with one to three mutations."""
    doc = copy.deepcopy(BASES[kind])
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS[kind]))
        parent: Any = doc
        try:
            for key in path[:-1]:
                parent = parent[key]
            key = path[-1]
            old = parent[key]
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation moved the ground
        if not isinstance(parent, dict | list):
            continue  # ... or replaced it with raw text (which indexes like a string)
        op = draw(st.sampled_from(["drop", "rename", "set", "extreme", "wrap", "duplicate", "deep"]))
        if op == "drop":
            del parent[key]
        elif op == "rename" and isinstance(parent, dict):
            name = draw(
                st.sampled_from([key[:-1], key + "s", key.upper(), "x_" + key, key.replace("_", ""), ""])
                | st.text(max_size=8)
            )
            parent[name] = parent.pop(key)
        elif op == "set":
            parent[key] = draw(json_values)
        elif op == "extreme":
            parent[key] = draw(extremes)
        elif op == "wrap":
            parent[key] = draw(st.sampled_from([[old], {"value": old}, str(old), [old, old]]))
        elif op == "duplicate" and isinstance(parent, dict):
            pairs = Pairs(parent.items())
            pairs.append((key, draw(json_values)))
            if len(path) == 1:
                doc = pairs
                break
            grand: Any = doc
            for k in path[:-2]:
                grand = grand[k]
            grand[path[-2]] = pairs
        elif op == "deep":
            depth = draw(st.sampled_from([10, 63, 64, 65, 200, 900, 5000]))
            parent[key] = Raw("[" * depth + emit(old) + "]" * depth)
    return doc


def _plain(v: Any) -> Any:
    """The mutant as plain data for the YAML writer (Raw text parsed back where JSON can)."""
    if isinstance(v, Raw):
        try:
            return json.loads(v)
        except (ValueError, RecursionError):
            return str(v)
    if isinstance(v, Pairs | dict):
        return {k: _plain(x) for k, x in (v if isinstance(v, Pairs) else v.items())}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


YAML_FEATURES = [
    "",
    "x_anchor: &a [1, 2, 3]\nx_alias: *a\n",
    "x_loop: &l [1, *l]\n",
    "x_bin: !!binary aGVsbG8=\n",
    "x_set: !!set {a, b}\n",
    "x_obj: !!python/object/apply:os.system ['true']\n",
    "x_custom: !thing 3\n",
    "x_time: 2026-11-21T10:00:00Z\n",
    "x_date: 2026-11-21\n",
    "x_nan: .nan\n",
    "x_int_key: {1: a, [2]: b}\n",
    "x_merge: {<<: {a: 1}, b: 2}\n",
    "x_dup: 1\nx_dup: 2\n",
    "x_deep: " + "[" * 2000 + "]" * 2000 + "\n",
    "".join(
        f"x{n}: &{n} [{', '.join([f'*{p}'] * 9) if p else 'lol'}]\n"
        for p, n in zip(["", "a", "b", "c", "d", "e"], "abcdef", strict=True)
    ),
    "---\nsecond: document\n",
    "%YAML 1.1\n---\n",
    "\t- tab\n",
]


def serialise(doc: Any, as_yaml: bool, feature: str) -> str:
    if not as_yaml:
        return emit(doc)
    from ruamel.yaml import YAML

    out = io.StringIO()
    yaml = YAML(typ="safe", pure=True)
    try:
        yaml.dump(_plain(doc), out)
    except Exception:  # the writer refuses lone surrogates etc.: fall back to JSON text, which is YAML
        return emit(doc)
    text = out.getvalue()
    return text + feature if feature.startswith("---") else feature + text  # a second document goes after


class Named(io.StringIO):
    def __init__(self, text: str, name: str) -> None:
        super().__init__(text)
        self.name = name


def exercise(kind: str, src: Path | Named) -> int:
    """Load ``src`` as ``kind`` and use the result; return the exit code the CLI should give."""
    try:
        loaded = LOADERS[kind](src)
    except KronosError as exc:
        assert str(exc).strip(), "an error must say what is wrong"
        return exc.exit_code
    issues = kronos.validate(loaded)
    for issue in issues:
        str(issue).encode("utf-8")  # printable, whatever the document held
    kronos.files.render(loaded)
    kronos.files.render(loaded, yaml=True)
    if isinstance(loaded, kronos.Snapshot):
        snapshot_digest(loaded)
        return 65 if any(i.severity == "error" for i in issues) else 0
    if isinstance(loaded, kronos.State):
        prune(loaded, T0)
    return 0


documents = st.tuples(
    st.sampled_from(["snapshot", "plan", "state"]), st.booleans(), st.sampled_from(YAML_FEATURES)
)


@examples(ci=150)
@given(data=st.data(), which=documents)
def test_mutated_documents_load_or_fail_cleanly(data: st.DataObject, which: tuple[str, bool, str]) -> None:
    kind, as_yaml, feature = which
    doc = data.draw(mutants(kind))
    exercise(kind, Named(serialise(doc, as_yaml, feature), f"{kind}.yaml" if as_yaml else f"{kind}.json"))


@examples(ci=100)
@given(
    text=st.text(
        alphabet=st.sampled_from(list("{}[]\":,&*!-|>#%@`'\\ \t\n0123456789.eE+abtrufnlsxy_\ud800")),
        max_size=80,
    ),
    kind=st.sampled_from(["snapshot", "plan", "state"]),
    suffix=st.sampled_from([".json", ".yaml", ""]),
)
def test_arbitrary_text_loads_or_fails_cleanly(text: str, kind: str, suffix: str) -> None:
    exercise(kind, Named(text, f"doc{suffix}"))


@examples(ci=8, share=20)  # a process each
@given(data=st.data(), which=documents)
def test_a_sample_through_the_command_line(
    data: st.DataObject, which: tuple[str, bool, str], tmp_path_factory: Any
) -> None:
    kind, as_yaml, feature = which
    text = serialise(data.draw(mutants(kind)), as_yaml, feature)
    path = Path(tmp_path_factory.mktemp("fuzz")) / (f"{kind}.yaml" if as_yaml else f"{kind}.json")
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    expected = exercise(kind, path)
    args = {
        "snapshot": ("validate", str(path)),
        "plan": ("show", str(path)),
        "state": ("state", "show", "--state", str(path), "--now", "2026-11-21T10:00:00Z"),
    }[kind]
    proc = kronos_cli(*args)
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    assert proc.returncode == expected, (proc.returncode, expected, proc.stderr[-2000:])
