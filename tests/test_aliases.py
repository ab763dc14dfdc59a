"""The original Kronos's command names (kronos-engine, ...): real entry points, exit codes, output."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from importlib import import_module
from pathlib import Path

import click
import pytest

from kronos import aliases
from kronos.cli import cli
from tests.conftest import ROOT

EXAMPLE = str(ROOT / "examples" / "snapshot.json")


def alias_cli(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the console script ``name`` as pyproject.toml declares it, in a subprocess (no OS_* auth)."""
    target = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"][name]
    module, _, func = target.partition(":")
    code = f"import sys; sys.argv[0] = {name!r}; from {module} import {func}; {func}()"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=False, env=env
    )


def _conf(tmp_path: Path, text: str) -> Path:
    shutil.copy(ROOT / "etc" / "kronos" / "policies.yaml.sample", tmp_path / "policies.yaml")
    conf = tmp_path / "kronos.conf"
    conf.write_text(text, encoding="utf-8")
    return conf


def test_every_original_command_is_a_console_script_of_its_kronos_subcommand() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert set(aliases.ALIASES) == {s for s in scripts if s != "kronos"}
    for name, sub in aliases.ALIASES.items():
        module, _, func = scripts[name].partition(":")
        assert callable(getattr(import_module(module), func))
        assert sub in cli.commands
        opts = [o for p in aliases.command(name).params if isinstance(p, click.Option) for o in p.opts]
        assert "--config" in opts and "--config-file" in opts, name
    # the aliases widen copies: `kronos replay` itself keeps its one spelling
    assert all("--config-file" not in p.opts for c in cli.commands.values() for p in c.params)


def test_test_config_with_an_unknown_key_exits_78_naming_it(tmp_path: Path) -> None:
    conf = _conf(tmp_path, "[engine]\naggregates = a\nevaluation_intervall = 5\n")
    for args in (["--config-file", str(conf)], [f"--config-file={conf}"]):
        proc = alias_cli("kronos-test-config", *args)
        assert proc.returncode == 78, proc.stderr
        assert "kronos.conf:3: [engine] evaluation_intervall: unknown option" in proc.stdout
        assert "did you mean evaluation_interval?" in proc.stdout
        assert "Traceback" not in proc.stdout + proc.stderr


def test_test_config_with_a_valid_file_goes_on_to_prometheus_and_nova(tmp_path: Path) -> None:
    """As the original: validate the configuration, then test connectivity (nothing listens on :9)."""
    nova = "[nova]\nauth_url = http://127.0.0.1:9/v3\nusername = k\npassword = hunter2\nproject_name = p\n"
    prom = "[prometheus]\nurl = http://127.0.0.1:9\nretries = 0\n"
    conf = _conf(tmp_path, "[engine]\naggregates = a\n" + prom + nova)
    proc = alias_cli("kronos-test-config", "--config-file", str(conf))
    assert "PASS  configuration:" in proc.stdout
    assert "FAIL  prometheus:" in proc.stdout and "FAIL  nova aggregates:" in proc.stdout
    assert proc.returncode == 69, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr and "hunter2" not in proc.stdout + proc.stderr
    # nothing says how to authenticate to Nova: a line of the list, not keystoneauth's traceback
    # (the exit code is the first failure's: Prometheus's 69)
    conf = _conf(tmp_path, "[engine]\naggregates = a\n" + prom)
    proc = alias_cli("kronos-test-config", "--config-file", str(conf))
    assert proc.returncode == 69, proc.stdout + proc.stderr
    assert "FAIL  nova client: [nova] (no cloud, auth_url or OS_* variables)" in proc.stdout
    assert proc.stdout.splitlines()[-1] == "check-config: FAILED"
    assert "Traceback" not in proc.stdout + proc.stderr


def test_replay_help_shows_the_replay_command_with_config_file() -> None:
    proc = alias_cli("kronos-replay", "--help")
    assert proc.returncode == 0, proc.stderr
    assert alias_cli("kronos-replay", "-h").stdout == proc.stdout  # as `kronos replay -h`
    assert proc.stdout.startswith("Usage: kronos-replay [OPTIONS] SNAPSHOT")
    assert "original kronos-replay" in proc.stdout
    assert "--config, --config-file TEXT" in proc.stdout
    assert "-v, --verbose" in proc.stdout and "--log-file PATH" in proc.stdout  # the group's, as kronos -v


def test_the_groups_logging_options_work_under_an_alias(tmp_path: Path) -> None:
    log = tmp_path / "kronos.log"
    proc = alias_cli("kronos-replay", EXAMPLE, "-vv", "--log-file", str(log), "-o", str(tmp_path / "p.json"))
    assert proc.returncode == 0, proc.stderr
    assert log.exists()  # opened by kronos.logs.configure, as under `kronos -vv --log-file`
    bad = alias_cli("kronos-replay", EXAMPLE, "--log-file", str(tmp_path / "no" / "k.log"))
    assert bad.returncode == 74 and "--log-file" in bad.stderr and "Traceback" not in bad.stderr


def test_replay_reads_the_planner_options_of_config_file(tmp_path: Path) -> None:
    conf = _conf(tmp_path, "[engine]\nmin_load = 0.99\n")
    proc = alias_cli("kronos-replay", EXAMPLE, "--config-file", str(conf), "-o", "-")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["steps"] == []
    assert all("min_load" in a["skipped"] for a in doc["summary"]["aggregates"].values())


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("kronos-engine", ["--once"]),
        ("kronos-executor", [EXAMPLE]),
        ("kronos-test-config", []),
        ("kronos-record", ["-o", "snap.json"]),
        ("kronos-replay", [EXAMPLE]),
    ],
)
def test_a_missing_config_file_is_exit_66_naming_it(name: str, args: list[str], tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.conf"
    proc = alias_cli(name, "--config-file", str(missing), *args)
    assert proc.returncode == 66, proc.stdout + proc.stderr
    assert f"{missing}: no such file" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_the_original_executors_queue_flags_say_what_to_do_instead(tmp_path: Path) -> None:
    for flag in ("--aggregate", "--unassigned", "--aggregate=agg-01"):
        proc = alias_cli("kronos-executor", "--config-file", "kronos.conf", flag)
        assert proc.returncode == 64
        assert "no queue: it carries out a plan file" in proc.stderr and "docs/migration.md" in proc.stderr
        assert "Traceback" not in proc.stderr


def test_bad_usage_is_exit_64_under_the_alias_name() -> None:
    proc = alias_cli("kronos-record", "--config-file", "kronos.conf", "/tmp/snapshot")
    assert proc.returncode == 64
    assert "Usage: kronos-record [OPTIONS]" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_the_migration_page_maps_every_alias_and_only_keys_kronos_has() -> None:
    from kronos.adapters import config

    page = (ROOT / "docs" / "migration.md").read_text(encoding="utf-8")
    for name, sub in aliases.ALIASES.items():
        assert re.search(rf"^\| `{name} [^|]*\| `kronos {sub}[ `]", page, re.MULTILINE), name
    sections = re.split(r"^### `\[(\w+)\]`\n", page, flags=re.MULTILINE)
    assert [sections[i] for i in range(1, len(sections), 2)] == [
        "engine", "prometheus", "nova", "messaging", "executor"
    ]  # fmt: skip
    for section, text in zip(sections[1::2], sections[2::2], strict=True):
        for cells, verdict in re.findall(r"^\| (`[^|]+`) \| (\w[^|]*) \|$", text, re.MULTILINE):
            keys = re.findall(r"`(\w+)`", cells)
            if verdict.startswith("honoured"):
                assert set(keys) <= set(config._KEYS[section]), (section, keys)
            else:
                assert verdict.startswith("not applicable") and section not in config._SECTIONS
