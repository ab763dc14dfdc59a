"""Fuzzing the kronos.conf and policies.yaml loaders (issue 17: "keep it fixed").

Valid files are mutated the way careless and hostile users mutate them —
unknown keys and sections, wrong types, extreme numbers (inf, NaN, 1e400,
5 000 digits), unicode, lines dropped or doubled, stray bytes, other
encodings, ``KRONOS_*`` variables — and every loader must answer with a
Config or a :class:`~kronos.errors.KronosError`, never anything else, with no
secret of the file in what it says. A sample goes through the real CLI, whose
exit code must be the error's. The YAML parser's own limits (nesting depth,
aliases) are fuzzed where that parse call is hardened; here the documents
are ordinary in shape.

Budget: about 30 s of CI (``max_examples`` below, whatever the profile).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from kronos.adapters.config import ENV_NAMES, load_config
from kronos.adapters.policies import load_policies, parse_policies
from kronos.errors import KronosError

PROM_PASS, NOVA_PASS, APP_SECRET, USERINFO = "Fz-PROM-8c1e", "Fz-NOVA-44d0", "Fz-APP-a9b7", "Fz-INFO-1f62"
SECRETS = (PROM_PASS, NOVA_PASS, APP_SECRET, USERINFO)
BASE: dict[str, list[tuple[str, str]]] = {
    "engine": [
        ("aggregates", "agg-a, agg-b"),
        ("dry_run", "true"),
        ("evaluation_interval", "60"),
        ("cooldown", "600"),
        ("instance_quarantine_seconds", "-1"),
        ("min_load", "0.1"),
        ("max_parallel", "none"),
        ("post_drain_action", "none"),
        ("policies_file", "policies.yaml"),
    ],
    "prometheus": [
        ("url", f"http://kronos:{USERINFO}@127.0.0.1:9/prom"),
        ("timeout", "2"),
        ("retries", "0"),
        ("username", "kronos"),
        ("password", PROM_PASS),
        ("max_sample_age", "180"),
        ("min_host_coverage", "0.9"),
    ],
    "nova": [
        ("auth_type", "v3applicationcredential"),
        ("auth_url", "http://127.0.0.1:9/v3"),
        ("application_credential_id", "app-1"),
        ("application_credential_secret", APP_SECRET),
        ("password", NOVA_PASS),
        ("timeout", "5"),
        ("interface", "internal"),
    ],
    "executor": [("max_concurrent_migrations", "2"), ("max_drift", "0.1"), ("max_plan_age", "900")],
}
POLICIES = """\
policies:
  - name: cpu
    mode: spread
    weight: 0.5
    threshold: 0.05
    max_migrations_per_cycle: 5
    imbalance_query: avg by (nodename) (cpu)
    host_label: nodename
    freshness_query: timestamp(cpu)
  - name: mem
    mode: spread
    weight: 0.5
    threshold: 0.1
    max_host_score: 0.9
    vm_profile_fallback: skip
    imbalance_query: mem
    host_label: nodename
    vm_profile_query: vm_mem
    vm_profile_label: uuid
    vm_profile_label_type: nova_instance_uuid
"""

EXTREMES = ["inf", "-inf", "nan", "NaN", "1e400", "-0", "0", "-1", "1e308", "1e-320", "9" * 5000, "", " ",
            "true", "no", "none", "unlimited", "0x10", "1_000", "١٢٣", "+5", "3.", ".5e-3", "-1e12", "𝟘",
            "http://x:y@h", "ftp://h", "http://[::1", "http://h:0", "public", "admin_token", "a,,b"]  # fmt: skip
values = st.one_of(
    st.sampled_from(EXTREMES),
    st.integers().map(str),
    st.floats().map(repr),
    st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\r"), max_size=16),
)
names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_ .-]{0,14}", fullmatch=True)
section = st.sampled_from([*BASE, "messaging", "Engine", "nova "])
mutation = st.one_of(
    st.tuples(
        st.just("set"), section, st.sampled_from(sorted({k for kv in BASE.values() for k, _ in kv})), values
    ),
    st.tuples(st.just("unknown"), section, names, values),
    st.tuples(st.just("header"), st.integers(0, 40), names),
    st.tuples(st.just("drop"), st.integers(0, 40)),
    st.tuples(st.just("double"), st.integers(0, 40)),
    st.tuples(st.just("line"), st.integers(0, 40), values),
    st.tuples(st.just("unsep"), st.integers(0, 40)),  # "password = x" → "password x": unparsable
)
encoding = st.one_of(
    st.just(None),
    st.sampled_from(["latin-1", "utf-16", "cp1252", "utf-8-sig"]),
    st.tuples(st.integers(0, 600), st.binary(min_size=1, max_size=4)),
)
environ = st.dictionaries(
    st.one_of(st.sampled_from(ENV_NAMES), st.from_regex(r"KRONOS_[A-Z_]{1,24}", fullmatch=True)),
    values.filter(lambda v: "\x00" not in v),
    max_size=3,
)


def conf_bytes(mutations: list[tuple[Any, ...]], enc: Any) -> bytes:
    sections = {name: dict(items) for name, items in BASE.items()}
    extra_lines: list[tuple[str, ...]] = []
    for m in mutations:
        if m[0] in ("set", "unknown"):
            sections.setdefault(m[1], {})[m[2].strip().lower() or "x"] = m[3]
        else:
            extra_lines.append(m)
    lines: list[str] = []
    for name, items in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {v}" for k, v in items.items()]
    for m in extra_lines:
        at = m[1] % (len(lines) + 1)
        if m[0] == "header":
            lines.insert(at, f"[{m[2]}]")
        elif m[0] == "drop" and lines:
            del lines[at % len(lines)]
        elif m[0] == "double" and lines:
            lines.insert(at, lines[at % len(lines)])
        elif m[0] == "line":
            lines.insert(at, m[2])
        elif m[0] == "unsep" and lines:
            lines[at % len(lines)] = lines[at % len(lines)].replace(" = ", " ", 1)
    text = "\n".join(lines) + "\n"
    if enc is None:
        return text.encode("utf-8", "surrogatepass")
    if isinstance(enc, str):
        return text.encode(enc, "replace")
    return _insert(text.encode("utf-8", "surrogatepass"), enc)


def _insert(raw: bytes, enc: tuple[int, bytes]) -> bytes:
    """``raw`` with stray bytes spliced in (``enc``: where, what)."""
    at = enc[0] % (len(raw) + 1)
    return raw[:at] + enc[1] + raw[at:]


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret} shown: {text[-800:]}"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fuzz")
    (path / "policies.yaml").write_text(POLICIES)
    return path


def load(folder: Path, data: bytes, env: dict[str, str], require_scope: bool = True) -> KronosError | None:
    """Load the mutated file; a KronosError is an answer, anything else escapes and fails the test."""
    path = folder / "kronos.conf"
    path.write_bytes(data)
    try:
        config = load_config(str(path), env, require_scope=require_scope)
    except KronosError as exc:
        assert_no_secret(str(exc))
        assert exc.exit_code in (64, 65, 66, 69, 74, 75, 77, 78), exc
        return exc
    assert_no_secret(repr(config))
    return None


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutation, max_size=6), encoding, environ, st.booleans())
def test_mutated_kronos_conf_loads_or_says_why(
    folder: Path, mutations: list[tuple[Any, ...]], enc: Any, env: dict[str, str], scope: bool
) -> None:
    load(folder, conf_bytes(mutations, enc), env, scope)


def _cli(folder: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KRONOS_")}
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from kronos.cli import main; main()",
            "scores",
            "--config",
            str(folder / "kronos.conf"),
        ],
        capture_output=True,
        text=True,
        env={**clean, **env},
        check=False,
        timeout=60,
    )


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)
@given(st.lists(mutation, min_size=1, max_size=4), encoding, environ)
def test_a_sample_through_the_cli_exits_with_the_errors_code(
    folder: Path, mutations: list[tuple[Any, ...]], enc: Any, env: dict[str, str]
) -> None:
    assume(all(v.isprintable() for v in env.values()))  # what a shell can export
    error = load(folder, conf_bytes(mutations, enc), env, require_scope=False)
    assume(error is not None)  # a valid file would go on to ask Prometheus
    proc = _cli(folder, env)
    assert proc.returncode == error.exit_code, proc.stderr
    assert "Traceback" not in proc.stderr
    assert_no_secret(proc.stdout + proc.stderr)


# -- policies.yaml ---------------------------------------------------------------------------------
FIELDS = ["name", "mode", "weight", "threshold", "max_migrations_per_cycle", "vm_profile_fallback",
          "max_host_score", "enabled", "imbalance_query", "host_label", "vm_profile_query",
          "vm_profile_label", "vm_profile_label_type", "freshness_query"]  # fmt: skip
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(-(10**30), 10**30).map(lambda n: n * 10**30),
    st.floats(),
    st.sampled_from(EXTREMES),
    st.text(st.characters(exclude_categories=["Cs"]), max_size=12),
)
yaml_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(names, inner, max_size=3),
    max_leaves=6,
)
policy_mutation = st.one_of(
    st.tuples(st.just("set"), st.integers(0, 3), st.sampled_from(FIELDS), yaml_values),
    st.tuples(
        st.just("unknown"),
        st.integers(0, 3),
        st.one_of(names, st.integers(), st.none(), st.booleans()),
        yaml_values,
    ),
    st.tuples(st.just("delete"), st.integers(0, 3), st.sampled_from(FIELDS)),
    st.tuples(st.just("top"), st.one_of(names, st.integers()), yaml_values),
    st.tuples(st.just("entry"), st.integers(0, 3), yaml_values),
    st.tuples(st.just("double"), st.integers(0, 3)),
)


def policies_text(mutations: list[tuple[Any, ...]]) -> str:
    from ruamel.yaml import YAML

    doc: dict[Any, Any] = YAML(typ="safe", pure=True).load(POLICIES)
    entries: list[Any] = doc["policies"]
    for m in mutations:
        i = m[1] % len(entries) if isinstance(m[1], int) and entries and m[0] != "top" else 0
        if m[0] == "set" and isinstance(entries[i], dict):
            entries[i][m[2]] = m[3]
        elif m[0] == "unknown" and isinstance(entries[i], dict):
            entries[i][m[2]] = m[3]
        elif m[0] == "delete" and isinstance(entries[i], dict):
            entries[i].pop(m[2], None)
        elif m[0] == "top":
            doc[m[1]] = m[2]
        elif m[0] == "entry":
            entries[i] = m[2]
        elif m[0] == "double":
            entries.append(entries[i])
    out = io.StringIO()
    yaml = YAML(typ="safe", pure=True)
    yaml.representer.ignore_aliases = lambda _data: True
    yaml.dump(doc, out)
    return out.getvalue()


@settings(max_examples=250, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(policy_mutation, max_size=5),
    st.lists(st.tuples(st.integers(0, 2000), st.text(max_size=3)), max_size=2),
    encoding,
)
def test_mutated_policies_load_or_say_why(
    folder: Path, mutations: list[tuple[Any, ...]], edits: list[tuple[int, str]], enc: Any
) -> None:
    text = policies_text(mutations)
    for at, insert in edits:  # stray characters: broken indentation, quotes, tabs
        at %= len(text) + 1
        text = text[:at] + insert + text[at:]
    path = folder / "fuzzed-policies.yaml"
    if isinstance(enc, str):
        path.write_bytes(text.encode(enc, "replace"))
    else:
        raw = text.encode("utf-8", "surrogatepass")
        path.write_bytes(raw if enc is None else _insert(raw, enc))
    try:
        policies = load_policies(path)
    except KronosError as exc:
        assert exc.exit_code == 78 and str(exc).startswith(str(path)), exc
        return
    assert policies and all(p.name.strip() for p in policies)
    assert abs(sum(p.weight for p in policies if p.enabled) - 1.0) <= 1e-6


def test_the_fuzzers_base_files_are_valid(folder: Path) -> None:
    """Mutations start from files that load: the fuzz tests the mutations, not a broken base."""
    assert load(folder, conf_bytes([], None), {}) is None
    assert [p.name for p in parse_policies(policies_text([]), "p.yaml")] == ["cpu", "mem"]
