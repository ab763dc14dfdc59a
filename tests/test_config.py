"""kronos.conf and policies.yaml: what loads, and errors that say what to fix."""

from __future__ import annotations

import importlib.metadata
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kronos.adapters.config import Secret, load_config, unwritable
from kronos.adapters.policies import load_policies, parse_policies
from kronos.errors import ConfigError, NoInputError
from tests.conftest import ROOT, kronos_cli

SAMPLES = ROOT / "etc" / "kronos"


def _write(tmp: Path, conf: str, policies: str | None = None) -> Path:
    (tmp / "policies.yaml").write_text(policies or (SAMPLES / "policies.yaml.sample").read_text())
    path = tmp / "kronos.conf"
    path.write_text(conf)
    return path


def test_the_samples_load_as_documented(tmp_path: Path) -> None:
    config = load_config(str(_write(tmp_path, (SAMPLES / "kronos.conf.sample").read_text())))
    assert config.engine.dry_run is True and config.engine.options.aggregates == ("my-aggregate",)
    assert config.engine.options.instance_quarantine_seconds == 3600.0
    assert config.nova.cloud == "mycloud" and config.executor.max_drift == pytest.approx(0.10)
    assert [p.name for p in config.policies] == ["cpu-spread", "memory-spread"]
    assert [p.weight for p in config.policies] == [0.3, 0.7]
    assert config.policies[0].freshness_query and config.policies[1].vm_profile_fallback == "skip"
    assert (config.engine.history_window, config.engine.history_step) == (1800.0, 60.0)
    assert config.engine.options.forecast_horizon == 0.0


def test_environment_overrides_the_file_and_feeds_planner_options(tmp_path: Path) -> None:
    conf = _write(tmp_path, "[engine]\naggregates = a\nmin_load = 0.1\n[prometheus]\nurl = http://p:9090\n")
    env = {
        "KRONOS_ENGINE_MIN_LOAD": "0.4",
        "KRONOS_ENGINE_INCLUDE_UNASSIGNED_HOSTS": "yes",
        "KRONOS_PROMETHEUS_URL": "https://prom.example:443/prefix",
        "KRONOS_EXECUTOR_MAX_PLAN_AGE": "60",
        "KRONOS_ENGINE_HISTORY_STEP": "30",
        "KRONOS_CONFIG": "ignored: not a setting",
        "OTHER_ENGINE_MIN_LOAD": "9",
    }
    config = load_config(str(conf), env)
    assert config.engine.options.min_load == 0.4
    assert config.scope == ("a", "_unassigned_")
    assert config.prometheus.url == "https://prom.example:443/prefix"
    assert config.executor.max_plan_age == 60.0
    assert (config.engine.history_window, config.engine.history_step) == (1800.0, 30.0)
    # no file at all: everything from the environment (the load-leveller way)
    (tmp_path / "sub").mkdir()
    env_only = {
        "KRONOS_ENGINE_AGGREGATES": "x, y",
        "KRONOS_ENGINE_POLICIES_FILE": str(tmp_path / "policies.yaml"),
    }
    assert load_config(None, env_only).engine.options.aggregates == ("x", "y")


def test_every_problem_is_reported_with_file_line_key_and_value(tmp_path: Path) -> None:
    conf = _write(
        tmp_path,
        "[engine]\n"
        "aggregates = a\n"
        "min_lod = 3\n"
        "cooldown = -5\n"
        "post_drain_action = reboot\n"
        "[prometheus]\n"
        "url = ftp://x\n"
        "timeout = soon\n"
        "min_host_coverage = 1.5\n"
        "[executr]\n"
        "x = 1\n",
    )
    with pytest.raises(ConfigError) as err:
        load_config(
            str(conf),
            {
                "KRONOS_EXECUTOR_MAX_DRFT": "2",
                "KRONOS_PROMETHEUS_CA_FILE": "/nope",
                "KRONOS_PROMETHEUS_BEARER_TOKEN_FILE": "/tmp",
            },
        )
    text = str(err.value)
    assert err.value.exit_code == 78
    for expected in (
        f"{conf}: 10 problem(s)",
        f"{conf}:3: [engine] min_lod: unknown option (did you mean min_load?)",
        f"{conf}:4: [engine] option cooldown = '-5': must be >= 0",
        f"{conf}:5: [engine] option post_drain_action = 'reboot': must be one of none, disable",
        f"{conf}:8: [prometheus] timeout = 'soon'",
        f"{conf}:9: [prometheus] min_host_coverage = '1.5': must be in [0, 1]",
        "[executr]: unknown section (did you mean executor?)",
        "$KRONOS_EXECUTOR_MAX_DRFT: [executor] max_drft: unknown option (did you mean max_drift?)",
        f"{conf}:7: [prometheus] url = 'ftp://x': expected http(s)://HOST[:PORT][/PATH]",
        "$KRONOS_PROMETHEUS_CA_FILE: [prometheus] ca_file = '/nope': no such file",
        "$KRONOS_PROMETHEUS_BEARER_TOKEN_FILE: [prometheus] bearer_token_file = '/tmp': a folder, not a file",
    ):
        assert expected in text, expected


def test_secrets_never_show(tmp_path: Path) -> None:
    conf = _write(
        tmp_path,
        "[engine]\naggregates = a\n[prometheus]\nusername = k\npassword = hunter2\n"
        "[nova]\nauth_url = http://keystone:5000/v3\nusername = kronos\npassword = s3cret%x\n",
    )
    config = load_config(str(conf))
    assert isinstance(config.nova.password, Secret) and config.nova.password.value == "s3cret%x"
    assert "s3cret" not in repr(config) and "hunter2" not in repr(config) and "hunter2" not in str(config)
    # a wrong value next to a secret: the error must not echo the secret either
    conf.write_text(conf.read_text().replace("username = k\n", "username = k\nretries = many\n"))
    with pytest.raises(ConfigError) as err:
        load_config(str(conf), {"KRONOS_NOVA_APPLICATION_CREDENTIAL_SECRET": "topsecret"})
    assert "retries = 'many'" in str(err.value)
    assert not any(s in str(err.value) for s in ("hunter2", "s3cret", "topsecret"))


@pytest.mark.parametrize(
    ("conf", "expected"),
    [
        ("[prometheus]\nusername = k\n", "username and password: give both"),
        (
            "[prometheus]\nbearer_token_file = /nonexistent/token\n",
            "bearer_token_file = '/nonexistent/token': no such",
        ),
        (  # it said "no such file"; reading it would never end
            "[prometheus]\nbearer_token_file = /dev/zero\n",
            "bearer_token_file = '/dev/zero': not a regular file",
        ),
        ("[nova]\ncloud = c\nauth_url = http://k:5000/v3\nusername=u\npassword=p\n", "not both"),
        ("[nova]\nauth_url = http://k:5000/v3\n", "also give username and password"),
        ("[messaging]\ntransport_url = rabbit://x\n", "not used (plans are files; no RabbitMQ)"),
        (
            "[engine]\nevaluation_interval = 0\naggregates = a\n",
            "evaluation_interval = '0': must be in (0, 315360000]",
        ),
        ("[engine]\ndry_run = maybe\naggregates = a\n", "dry_run = 'maybe': expected true or false"),
        ("[engine]\nkey without value\n", "kronos.conf:3: expected 'key = value', a [section] header"),
        (
            "[engine]\naggregates = a\naggregates = b\n",
            "kronos.conf:3: [engine] aggregates a second time: give each setting once",
        ),
        (  # configparser's own words, and no line, before
            "[engine]\naggregates = a\n[prometheus]\n[engine]\n",
            "kronos.conf:4: [engine] a second time: give each section once",
        ),
        (  # options that do not go together are named with their lines
            "[engine]\naggregates = a\nplan_on = max\nmin_gain = 0.1\n",
            "kronos.conf:3: [engine] option plan_on = 'max' needs a forecast",
        ),
        (
            "[engine]\nplan_on = later\n",
            "[engine] option plan_on = 'later': must be one of current, forecast, max",
        ),
    ],
)
def test_config_rules(tmp_path: Path, conf: str, expected: str) -> None:
    if "aggregates" not in conf:
        conf = "[engine]\naggregates = a\n" + conf.replace("[engine]\n", "")
    with pytest.raises(ConfigError, match=None) as err:
        load_config(str(_write(tmp_path, conf)))
    assert expected in str(err.value)


def test_time_options_go_together_in_the_file(tmp_path: Path) -> None:
    conf = "[engine]\naggregates = a\nplan_on = max\nforecast_horizon = 900\nmin_sustained = 600\n"
    options = load_config(str(_write(tmp_path, conf))).engine.options
    assert (options.plan_on, options.forecast_horizon, options.min_sustained) == ("max", 900.0, 600.0)


def test_scope_is_required_for_an_engine(tmp_path: Path) -> None:
    conf = _write(tmp_path, "[prometheus]\nurl = http://p:9090\n")
    with pytest.raises(ConfigError, match="set aggregates = NAME"):
        load_config(str(conf))
    assert load_config(str(conf), require_scope=False).scope == ()


def test_missing_files(tmp_path: Path) -> None:
    with pytest.raises(NoInputError, match="no such file"):
        load_config(str(tmp_path / "nope.conf"))
    conf = tmp_path / "kronos.conf"
    conf.write_text("[engine]\naggregates = a\npolicies_file = gone.yaml\n")
    with pytest.raises(NoInputError, match=r"gone\.yaml: no such file \(\[engine\] policies_file\)"):
        load_config(str(conf))


GOOD = """\
policies:
  - name: cpu
    mode: spread
    weight: 0.5
    threshold: 0.05
    imbalance_query: up
    host_label: nodename
  - name: mem
    mode: spread
    weight: 0.5
    threshold: 0.1
    imbalance_query: up
    host_label: nodename
    vm_profile_query: up
    vm_profile_label: instance_id
"""


def test_policies_defaults() -> None:
    cpu, mem = parse_policies(GOOD, "p.yaml")
    assert cpu.enabled and cpu.max_host_score == 1.0 and cpu.vm_profile_fallback == "host_average"
    assert cpu.vm_profile_label_type is None and mem.vm_profile_label_type == "nova_instance_uuid"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("weight: 0.5\n    threshold: 0.1", "weight: 0.6\n    threshold: 0.1"),
            "p.yaml:1: policies: enabled policy weights sum to 1.1",
        ),
        (
            (
                "mode: spread\n    weight: 0.5\n    threshold: 0.1",
                "mode: pack\n    weight: 0.5\n    threshold: 0.1",
            ),
            "mix modes pack, spread",
        ),
        (("name: mem", "name: cpu"), "p.yaml:8: policies[1].name = 'cpu': duplicate policy name"),
        (
            ("weight: 0.5\n    threshold: 0.05", "weight: 1.7\n    threshold: 0.05"),
            "p.yaml:4: policies[0].weight = 1.7: weights must be in [0, 1]",
        ),
        (
            ("weight: 0.5\n    threshold: 0.05", "weight: half\n    threshold: 0.05"),
            "p.yaml:4: policies[0].weight = 'half': expected a number",
        ),
        (
            (
                "imbalance_query: up\n    host_label: nodename\n  -",
                "imbalance_query: '  '\n    host_label: nodename\n  -",
            ),
            "p.yaml:6: policies[0].imbalance_query: query must not be empty",
        ),
        (
            ("    host_label: nodename\n  -", "    host_lable: nodename\n  -"),
            "p.yaml:7: policies[0].host_lable: unknown field (did you mean host_label?)",
        ),
        (("    threshold: 0.05\n", ""), "policies[0].threshold: missing required field"),
        (
            ("vm_profile_label: instance_id", "vm_profile_label_type: uuid"),
            "policies[1].vm_profile_label: required with vm_profile_query",
        ),
        (
            ("vm_profile_label: instance_id", "vm_profile_label: id\n    vm_profile_label_type: uuid"),
            "p.yaml:16: policies[1].vm_profile_label_type = 'uuid': must be one of",
        ),
        (
            ("    threshold: 0.1\n", "    threshold: 0.1\n    enabled: 'no'\n"),
            "policies[1].enabled = 'no': expected true or false",
        ),
        (
            ("policies:", "polices:"),
            "p.yaml: 2 problem(s)\n  p.yaml: expected a top-level 'policies:' list\n"
            "  p.yaml:1: 'polices': unknown top-level key (did you mean policies?)",
        ),
        (
            (
                "    threshold: 0.05\n",
                "    threshold: 0.05\n    max_migrations_per_cycle: 9223372036854775808\n",
            ),
            "policies[0].max_migrations_per_cycle = 9223372036854775808: integer out of range (it must fit",
        ),
        (("policies:\n", "policies: []\nextra:\n"), "p.yaml:2: 'extra': unknown top-level key"),
        (
            ("policies:\n", "policis: 1\npolicies:\n"),
            "p.yaml:1: 'policis': unknown top-level key (did you mean policies?)",
        ),
        (("name: cpu\n", "name: cpu\n   bad: [indent\n"), "p.yaml: invalid YAML"),
    ],
)
def test_policy_errors_name_file_line_field_and_value(change: tuple[str, str], expected: str) -> None:
    old, new = change
    assert old in GOOD
    with pytest.raises(ConfigError) as err:
        parse_policies(GOOD.replace(old, new, 1), "p.yaml")
    assert expected in str(err.value)
    assert err.value.exit_code == 78


def test_all_policy_problems_at_once() -> None:
    bad = GOOD.replace("weight: 0.5", "weight: 2", 1).replace("host_label: nodename", "host_labl: x", 1)
    bad = bad.replace("mode: spread", "mode: sideways", 1)
    with pytest.raises(ConfigError) as err:
        parse_policies(bad, "p.yaml")
    assert "3 problem(s)" in str(err.value) or "problem(s)" in str(err.value)
    for fragment in ("host_labl: unknown field", "policies[0].host_label: missing required field"):
        assert fragment in str(err.value)


def test_disabled_policies_do_not_count_towards_the_weights() -> None:
    text = GOOD.replace(
        "weight: 0.5\n    threshold: 0.1", "weight: 0.5\n    threshold: 0.1\n    enabled: false"
    )
    with pytest.raises(ConfigError, match=r"sum to 0\.5"):
        parse_policies(text, "p.yaml")
    only = GOOD.replace("weight: 0.5", "weight: 1.0", 1).replace(
        "weight: 0.5\n    threshold: 0.1", "weight: 0.5\n    threshold: 0.1\n    enabled: false"
    )
    assert [p.enabled for p in parse_policies(only, "p.yaml")] == [True, False]


def test_the_cli_reports_config_errors_without_traceback(tmp_path: Path) -> None:
    conf = _write(
        tmp_path, "[engine]\naggregates = a\n", policies=GOOD.replace("weight: 0.5", "weight: 0.9", 1)
    )
    proc = kronos_cli("scores", "--config", str(conf))
    assert proc.returncode == 78
    assert "policies.yaml:1: policies: enabled policy weights sum to 1.4" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert load_policies(SAMPLES / "policies.yaml.sample")  # the sample itself is valid


def test_kronos_plan_takes_engine_options_from_the_config(tmp_path: Path) -> None:
    example = str(ROOT / "examples" / "snapshot.json")
    conf = _write(tmp_path, "[engine]\nmin_load = 0.99\n")
    quiet = kronos_cli("plan", example, "--config", str(conf), "-o", "-")
    assert quiet.returncode == 0, quiet.stderr
    doc = json.loads(quiet.stdout)
    assert doc["steps"] == [] and all(
        "min_load" in a["skipped"] for a in doc["summary"]["aggregates"].values()
    )
    loud = kronos_cli("plan", example, "--config", str(conf), "--set", "min_load=0", "-o", "-")
    assert json.loads(loud.stdout)["steps"]  # --set wins over the file
    conf.write_text("[engine]\nmin_lod = 1\n")
    bad = kronos_cli("plan", example, "--config", str(conf))
    assert bad.returncode == 78 and "did you mean min_load?" in bad.stderr


# -- hardening (issue 17): crashes become clean errors, nothing is silently accepted ---------------
def test_a_non_utf8_file_is_a_config_error_naming_file_line_and_byte(tmp_path: Path) -> None:
    conf = _write(tmp_path, "")
    conf.write_bytes(b"[engine]\naggregates = caf\xe9\n")
    proc = kronos_cli("scores", "--config", str(conf))
    assert proc.returncode == 78, proc.stderr
    assert f"{conf}:2: not UTF-8 text (byte offset 25" in proc.stderr and "Traceback" not in proc.stderr
    conf.write_text("[engine]\naggregates = a\n")
    (tmp_path / "policies.yaml").write_bytes(GOOD.encode().replace(b"name: cpu", b"name: cp\xff"))
    with pytest.raises(ConfigError, match=r"policies\.yaml: not UTF-8 text .*at byte 22"):
        load_config(str(conf))
    conf.write_bytes(b"\xef\xbb\xbf[engine]\naggregates = a\n")  # a BOM, as some editors write it, is fine
    (tmp_path / "policies.yaml").write_text(GOOD)
    assert load_config(str(conf)).scope == ("a",)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("[prometheus]\ntimeout = inf", "[prometheus] timeout = 'inf': must be a finite number"),
        ("[prometheus]\ntimeout = -inf", "[prometheus] timeout = '-inf': must be a finite number"),
        ("[prometheus]\ntimeout = nan", "[prometheus] timeout = 'nan': NaN is not a value"),
        ("[prometheus]\ntimeout = 0", "[prometheus] timeout = '0': must be in (0, 86400]"),
        ("[prometheus]\ntimeout = -3", "[prometheus] timeout = '-3': must be in (0, 86400]"),
        ("[prometheus]\ntimeout = 1e400", "[prometheus] timeout = '1e400': must be a finite number"),
        ("[prometheus]\nretries = 1e3", "[prometheus] retries = '1e3': expected a whole number"),
        ("[prometheus]\nretries = " + "9" * 5000, "[prometheus] retries = '999"),
        ("[prometheus]\nretries = 64", "[prometheus] retries = '64': must be in [0, 10]"),
        ("[nova]\ntimeout = inf", "[nova] timeout = 'inf': must be a finite number"),
        (
            "[executor]\nmax_concurrent_migrations = 0",
            "max_concurrent_migrations = '0': must be in [1, 1000]",
        ),
        ("[executor]\nretry_backoff = 1e9", "[executor] retry_backoff = '1e9': must be in [0, 3600]"),
        ("[engine]\nevaluation_interval = 1e300", "evaluation_interval = '1e300': must be in (0, 315360000]"),
        ("[engine]\ncooldown = inf", "[engine] option cooldown = 'inf': must be a finite number"),
        ("[engine]\ncooldown = 1e12", "[engine] option cooldown = '1e12': must be at most 315360000 seconds"),
        ("[engine]\nmin_load = inf", "[engine] option min_load = 'inf': must be a finite number"),
        (
            "[engine]\nmax_parallel = 9223372036854775808",
            "[engine] option max_parallel = '9223372036854775808': must be below 2**63",
        ),
        ("[nova]\ninterface = privat", "[nova] interface = 'privat': one of public, internal, admin"),
        ("[nova]\npinned_tag =", "[nova] pinned_tag is empty"),
        ("[engine]\npolicies_file =", "[engine] policies_file is empty"),
        (
            "[nova]\ncompute_endpoint_override = nova:8774",
            "compute_endpoint_override = 'nova:8774': expected http",
        ),
        ("[prometheus]\nurl = http://[::1", "url = 'http://[::1': expected http(s)://HOST"),
        ("[prometheus]\nurl = http://prom:99999", "url = 'http://prom:99999': expected http(s)://HOST"),
        # requests refused these at the first query (a traceback); the query would precede the API path
        ("[prometheus]\nurl = http://prom :9090", "url = 'http://prom :9090': expected http(s)://HOST"),
        (
            "[prometheus]\nurl = http://prom:9090/p?x=1",
            "url = 'http://prom:9090/p?x=1': expected http(s)://HOST",
        ),
        ("[nova]\nauth_url = http://k:5000/v3#x", "auth_url = 'http://k:5000/v3#x': expected http(s)://HOST"),
        ("[engine]\nhistory_window = -60", "[engine] history_window = '-60': must be in [0, 604800]"),
        ("[engine]\nhistory_window = 30m", "[engine] history_window = '30m': expected a number"),
        # the planner options said int()'s and float()'s own words ("invalid literal for int()")
        ("[engine]\nmax_parallel = 2.5", "[engine] option max_parallel = '2.5': expected a whole number"),
        ("[engine]\nmin_load = abc", "[engine] option min_load = 'abc': expected a number"),
        ("[engine]\nhistory_step = 0", "[engine] history_step = '0': must be in [1, 86400]"),
        ("[engine]\nhistory_step = inf", "[engine] history_step = 'inf': must be a finite number"),
        (
            "[engine]\nhistory_window = 1000",
            "[engine] history_window = 1000: must be a whole number of history_step = 60 seconds",
        ),
        (
            "[engine]\nhistory_window = 604800\nhistory_step = 1",
            "604800 steps per series, Prometheus answers at most 11000: raise history_step",
        ),
        (
            "[engine]\nhistory_window = 11001\nhistory_step = 1",
            "11001 steps per series, Prometheus answers at most 11000: raise history_step",
        ),
        (
            "[engine]\nhistory_window = 0\nforecast_horizon = 900",
            "[engine] history_window = 0: forecast_horizon = 900 needs a history to forecast from",
        ),
    ],
)
def test_values_outside_their_documented_range_name_key_and_value(
    tmp_path: Path, line: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(
            str(_write(tmp_path, "[engine]\naggregates = a\n" + line.replace("[engine]\n", "") + "\n"))
        )
    assert expected in str(err.value) and err.value.exit_code == 78


def test_timeout_inf_through_the_cli_is_78_not_a_traceback(tmp_path: Path) -> None:
    conf = _write(tmp_path, "[engine]\naggregates = a\n[prometheus]\ntimeout = inf\n")
    for command in ("scores", "check-config", "record"):
        proc = kronos_cli(command, "--config", str(conf), *(["-o", "-"] if command == "record" else []))
        assert (
            proc.returncode == 78 and "timeout = 'inf': must be a finite number" in proc.stdout + proc.stderr
        )


def test_unreadable_or_missing_files_are_66_for_the_config_and_the_policies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from kronos import cli

    conf = _write(tmp_path, "[engine]\naggregates = a\n")
    real_open = Path.open

    def denied(name: str) -> Callable[..., object]:
        def open_(path: Path, *args: Any, **kwargs: Any) -> object:
            if path.name == name:  # root reads anything: inject EACCES
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(path, *args, **kwargs)

        return open_

    monkeypatch.setattr(Path, "open", denied("kronos.conf"))
    assert cli.run(cli.cli.main, ["scores", "--config", str(conf)]) == 66
    assert f"{conf}: not readable: permission denied (--config)" in capsys.readouterr().err
    monkeypatch.setattr(Path, "open", denied("policies.yaml"))
    assert cli.run(cli.cli.main, ["scores", "--config", str(conf)]) == 66
    assert (
        "policies.yaml: not readable (permission denied) ([engine] policies_file)" in capsys.readouterr().err
    )
    monkeypatch.setattr(Path, "open", real_open)
    assert kronos_cli("scores", "--config", str(tmp_path)).returncode == 66  # a directory
    assert kronos_cli("scores", "--config", str(tmp_path / "none.conf")).returncode == 66
    (tmp_path / "policies.yaml").unlink()
    gone = kronos_cli("scores", "--config", str(conf))
    assert gone.returncode == 66 and "policies.yaml: no such file ([engine] policies_file)" in gone.stderr


def test_a_test_harness_variable_is_not_a_setting_and_a_setting_variable_says_so(tmp_path: Path) -> None:
    conf = _write(tmp_path, "[engine]\naggregates = a\n")
    env = {"NOVA_TEST_PYTHON": "/opt/nova/bin/python", "KRONOS_SCRATCH": "/tmp/scratch"}
    assert load_config(str(conf), env).scope == ("a",)  # not ours: left alone
    with pytest.raises(ConfigError) as err:
        load_config(str(conf), {"KRONOS_NOVA_PYTHON": "/opt/nova/bin/python"})
    assert "$KRONOS_NOVA_PYTHON: [nova] python: unknown option (did you mean KRONOS_NOVA_" in str(err.value)
    assert "every KRONOS_<SECTION>_<OPTION> variable is read as a kronos.conf setting" in str(err.value)
    with pytest.raises(
        ConfigError, match=r"\$KRONOS_PROMETEUS_URL: not a setting \(did you mean KRONOS_PROMETHEUS_URL\?\)"
    ):
        load_config(str(conf), {"KRONOS_PROMETEUS_URL": "http://p:9090"})


def test_the_nova_test_environment_is_chosen_by_nova_test_python(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from tests import nova_server

    monkeypatch.setenv("NOVA_TEST_PYTHON", sys.executable)
    monkeypatch.setenv("KRONOS_NOVA_PYTHON", "/nonexistent/python")  # the old name means nothing now
    assert nova_server.nova_python() == Path(sys.executable)


@pytest.mark.parametrize(
    ("conf", "env", "expected"),
    [
        ("\n[enigne]\n", {}, "kronos.conf:4: [enigne]: unknown section (did you mean engine?)"),
        ("[nova]\npasword = x\n", {}, "[nova] pasword: unknown option (did you mean password?)"),
        ("[engine]\ncooldwn = 5\n", {}, "[engine] cooldwn: unknown option (did you mean cooldown?)"),
        (
            "",
            {"KRONOS_NOVA_REGION": "r"},
            "$KRONOS_NOVA_REGION: [nova] region: unknown option (did you mean region_name?)",
        ),
        ("", {"KRONOS_EXECUTER_MAX_RETRIES": "2"}, "(did you mean KRONOS_EXECUTOR_MAX_RETRIES?)"),
        ("[engine]\nhistory_windw = 600", {}, "history_windw: unknown option (did you mean history_window?)"),
        (
            "",
            {"KRONOS_ENGINE_HISTORY_STPE": "30"},
            "$KRONOS_ENGINE_HISTORY_STPE: [engine] history_stpe: unknown option (did you mean history_step?)",
        ),
    ],
)
def test_every_unknown_key_names_the_nearest_known_one(
    tmp_path: Path, conf: str, env: dict[str, str], expected: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(str(_write(tmp_path, "[engine]\naggregates = a\n" + conf.replace("[engine]\n", ""))), env)
    assert expected in str(err.value)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("name: cpu", "name: ''"), "p.yaml:2: policies[0].name = '': must not be empty"),
        (("host_label: nodename", "host_label: ' '"), "policies[0].host_label = ' ': must not be empty"),
        (
            ("vm_profile_label: instance_id", "vm_profile_label: ''"),
            "policies[1].vm_profile_label = '': must not",
        ),
        (
            (
                "    mode: spread\n",
                "    mode: spread\n    treshold: 1\n",
            ),
            "policies[0].treshold: unknown field (did you mean threshold?)",
        ),
        (("mode: spread", "mode: spraed"), "policies[0].mode = 'spraed': mode must be spread or pack"),
        # a label name Prometheus cannot have never matches a series: every host 'missing'
        (
            ("host_label: nodename", "host_label: ' instance'"),
            "p.yaml:7: policies[0].host_label = ' instance': a Prometheus label name",
        ),
        (
            ("vm_profile_label: instance_id", "vm_profile_label: instance-id"),
            "policies[1].vm_profile_label = 'instance-id': a Prometheus",
        ),
        # read by nothing without a query: a profile the operator believes is in use
        (
            (
                "    host_label: nodename\n  - name: mem",
                "    host_label: nodename\n    vm_profile_label: uuid\n  - name: mem",
            ),
            "p.yaml:8: policies[0].vm_profile_label = 'uuid': only with vm_profile_query",
        ),
    ],
)
def test_policy_names_labels_and_keys(change: tuple[str, str], expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_policies(GOOD.replace(*change, 1), "p.yaml")
    assert expected in str(err.value)


def test_a_policies_file_with_no_policy_enabled_is_a_configuration_error() -> None:
    """Every cycle of kronos run ended 65 ('no enabled policy'): say it once, at load (78)."""
    one_off = GOOD.replace("name: cpu\n", "name: cpu\n    enabled: false\n").replace(
        "weight: 0.5\n    threshold: 0.1", "weight: 1.0\n    threshold: 0.1"
    )
    assert [p.enabled for p in parse_policies(one_off, "p.yaml")] == [False, True]
    with pytest.raises(ConfigError, match=r"p\.yaml:1: policies: no policy is enabled: enable one"):
        parse_policies(one_off.replace("name: mem\n", "name: mem\n    enabled: false\n"), "p.yaml")


def test_a_bearer_token_file_that_is_empty_or_unreadable(tmp_path: Path) -> None:
    from kronos.adapters.prometheus import PrometheusClient
    from kronos.errors import NoInputError

    token = tmp_path / "token"
    token.write_text("\n")
    conf = _write(tmp_path, f"[engine]\naggregates = a\n[prometheus]\nbearer_token_file = {token}\n")
    with pytest.raises(ConfigError, match=r"bearer_token_file = '.*token': the file is empty"):
        PrometheusClient.from_config(load_config(str(conf)).prometheus)
    token.write_bytes(b"\xff\xfe")
    with pytest.raises(NoInputError, match="cannot read: not UTF-8 text"):
        PrometheusClient.from_config(load_config(str(conf)).prometheus)


def test_a_bearer_token_file_too_large_for_a_header_is_refused_unread(tmp_path: Path) -> None:
    """It was read whole, and 64 KiB of NULs went out as the token (a header line may hold them)."""
    from kronos.adapters.prometheus import MAX_TOKEN_BYTES, PrometheusClient

    token = tmp_path / "token"
    token.write_bytes(b"\0" * (MAX_TOKEN_BYTES + 1))
    conf = _write(tmp_path, f"[engine]\naggregates = a\n[prometheus]\nbearer_token_file = {token}\n")
    with pytest.raises(ConfigError, match=r"bearer_token_file = '.*token': more than 65536 bytes") as err:
        PrometheusClient.from_config(load_config(str(conf)).prometheus)
    assert err.value.exit_code == 78
    token.write_bytes(b"t" * MAX_TOKEN_BYTES)
    assert PrometheusClient.from_config(load_config(str(conf)).prometheus)._headers


def test_os_cloud_and_os_region_name_choose_the_cloud_as_openstack_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kronos.adapters.config import NovaConfig
    from kronos.adapters.nova import connect

    clouds = tmp_path / "clouds.yaml"
    clouds.write_text(
        "clouds:\n  lab:\n    auth:\n      auth_url: http://127.0.0.1:9/v3\n      username: u\n"
        "      password: p\n      project_name: x\n    regions: [RegionOne, RegionTwo]\n"
    )
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))
    assert connect(NovaConfig(), "lab", "RegionTwo").config.region_name == "RegionTwo"
    assert connect(NovaConfig(region_name="RegionOne"), "lab").config.region_name == "RegionOne"
    helped = kronos_cli("execute", "--help").stdout + kronos_cli("record", "--help").stdout
    assert helped.count("--os-region-name") == 2 and helped.count("--os-cloud") == 2


def test_a_backend_url_no_tooz_driver_takes_is_78_naming_file_key_value_and_the_schemes(
    tmp_path: Path,
) -> None:
    """Not exit 70 with stevedore's NoMatches when a command first connects: at load, listing the
    schemes of the drivers installed; check-config fails at its configuration line."""
    pytest.importorskip("tooz")
    conf = _write(tmp_path, "[engine]\naggregates = a\n[coordination]\nbackend_url = http://127.0.0.1:9\n")
    said = (
        f"{conf}: 1 problem(s)\n  {conf}:4: [coordination] backend_url = 'http://127.0.0.1:9': "
        "no tooz driver for scheme 'http' (the installed ones take: "
    )
    for command in (("status",), ("check-config",), ("state", "show"), ("run", "--once")):
        out = kronos_cli(*command, "--config", str(conf))
        assert out.returncode == 78, (command, out.stdout + out.stderr)
        assert said in out.stdout + out.stderr and "Traceback" not in out.stderr
        assert "etcd3+http" in out.stdout + out.stderr and "PASS" not in out.stdout
    for url, expected in [
        ("foo://x", "backend_url = 'foo://x': no tooz driver for scheme 'foo' (the installed ones take: "),
        ("etcd3+http://h:99999", "backend_url = 'etcd3+http://h:99999': not a URL: Port out of range"),
        ("etcd3+http://u:s3cret@h:x", "backend_url = 'etcd3+http://***@h:x': not a URL: Port could not"),
    ]:
        conf.write_text(f"[engine]\naggregates = a\n[coordination]\nbackend_url = {url}\n")
        with pytest.raises(ConfigError) as err:
            load_config(str(conf))
        assert expected in str(err.value) and "s3cret" not in str(err.value)


def test_a_backend_url_tooz_would_refuse_on_first_use_is_78_at_load(tmp_path: Path) -> None:
    """A timeout that is no whole number (tooz's int() ValueError at the first connection) and a
    file:// folder that cannot be one (``kronos status`` said "0 member(s)" and exit 0 for ever)."""
    pytest.importorskip("tooz")
    (tmp_path / "plain").write_text("")
    (tmp_path / "folder").mkdir()
    conf = _write(tmp_path, "")
    for url, expected in [
        (
            "etcd3+http://h:2379?timeout=abc",
            "timeout = 'abc': expected a whole number of seconds, at least 1",
        ),
        ("etcd3+http://h:2379?lock_timeout=0", "lock_timeout = '0': expected a whole number of seconds"),
        (f"file://{tmp_path}/plain", f"'{tmp_path}/plain' is not a folder"),
        (f"file://{tmp_path}/plain/g", f"'{tmp_path}/plain/g' cannot be a folder: '{tmp_path}/plain' is not"),
    ]:
        conf.write_text(f"[engine]\naggregates = a\n[coordination]\nbackend_url = {url}\n")
        with pytest.raises(ConfigError) as err:
            load_config(str(conf))
        assert f"{conf}:4: [coordination] backend_url = '{url}': {expected}" in str(err.value)
    out = kronos_cli("status", "--config", str(conf))
    assert out.returncode == 78 and "Traceback" not in out.stderr, out.stderr
    for url in (
        f"file://{tmp_path}/folder?timeout=5",
        f"file://{tmp_path}/not-yet/g",
        "etcd3+http://h:2379?timeout=30",
    ):
        conf.write_text(f"[engine]\naggregates = a\n[coordination]\nbackend_url = {url}\n")
        assert load_config(str(conf)).coordination.backend_url == url


def test_a_tooz_driver_that_cannot_load_is_78_and_is_not_offered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A driver whose client library is missing (redis:// without redis): named with why, and left
    out of the schemes offered instead; without tooz at all, the URL is left to the commands."""
    pytest.importorskip("tooz")
    real = importlib.metadata.entry_points
    broken = importlib.metadata.EntryPoint("broken", "kronos_no_such_module:Driver", "tooz.backends")

    def entry_points(**kwargs: str) -> object:
        found = real(**kwargs)
        return [*found, broken] if kwargs.get("group") == "tooz.backends" else found

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    conf = _write(tmp_path, "[engine]\naggregates = a\n[coordination]\nbackend_url = broken://x\n")
    with pytest.raises(ConfigError) as err:
        load_config(str(conf))
    text = str(err.value)
    assert (
        "backend_url = 'broken://x': tooz's 'broken' driver cannot load "
        "(ModuleNotFoundError: No module named 'kronos_no_such_module'): install its client library, "
        "or use one of: " in text
    )
    offered = text.rpartition("or use one of: ")[2].split(", ")
    assert "etcd3+http" in offered and "broken" not in offered
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **kwargs: [])
    assert load_config(str(conf)).coordination.backend_url == "broken://x"


def test_a_check_across_settings_is_placed_at_the_setting_that_was_given(tmp_path: Path) -> None:
    """The check names a pair (username and password; history_window against history_step):
    the line is that of whichever of them the file gave, not of none."""
    conf = _write(tmp_path, "[prometheus]\npassword = p\n[engine]\naggregates = a\nhistory_step = 7\n")
    with pytest.raises(ConfigError) as err:
        load_config(str(conf))
    assert f"{conf}:2: [prometheus] username and password: give both" in str(err.value)
    assert f"{conf}:5: [engine] history_window = 1800: must be a whole number of history_step = 7" in str(
        err.value
    )


def test_check_config_lists_a_nova_client_it_cannot_make_and_says_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A clouds.yaml entry that is not there escaped the list as a bare error, with no FAIL line
    and no verdict; a configuration that fails said no verdict either."""
    conf = _write(tmp_path, "[engine]\naggregates = a\n[prometheus]\nurl = http://127.0.0.1:9\nretries = 0\n")
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(tmp_path / "clouds.yaml"))
    (tmp_path / "clouds.yaml").write_text("clouds: {}\n")
    out = kronos_cli("check-config", "--config", str(conf), "--os-cloud", "nosuch")
    lines = out.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "PASS  configuration",
        "PASS  files",
        "FAIL  prometheus",
        "FAIL  nova client",
        "check-config",
    ]
    assert lines[-1] == "check-config: FAILED" and out.returncode == 69 and "Traceback" not in out.stderr
    conf.write_text("[engine]\naggregates = a\nmin_lod = 1\n")
    bad = kronos_cli("check-config", "--config", str(conf))
    assert bad.returncode == 78 and bad.stdout.splitlines()[-1] == "check-config: FAILED"


def _nova_and_prometheus(tmp: Path, answered: dict[str, float], aggregates: str = "agg-a") -> tuple[Any, ...]:
    """check-config's view after its reads: the configuration, Nova's aggregates and compute
    services (agg-a: cmp-1, cmp-2 and gone-9, a host with no compute service left; agg-b: cmp-1,
    cmp-2; small: new-1), and each policy's answer, ``answered`` for every policy."""
    from kronos.adapters.nova import Service
    from kronos.adapters.scores import PolicyReading
    from kronos.core.model import Aggregate

    config = load_config(str(_write(tmp, f"[engine]\naggregates = {aggregates}\n")), {})
    found = (
        Aggregate("agg-a", ("cmp-1", "cmp-2", "gone-9")),
        Aggregate("agg-b", ("cmp-1", "cmp-2")),
        Aggregate("small", ("new-1",)),
    )
    services = {h: Service(h, True, True, False) for h in ("cmp-1", "cmp-2", "new-1")}
    readings = {p.name: PolicyReading(p, {h: (v,) for h, v in answered.items()}) for p in config.policies}
    return config, readings, found, services


def test_check_config_coverage_holds_prometheus_to_what_record_would_read(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from kronos.cli_cloud import _coverage
    from kronos.errors import DataError

    at = datetime(2026, 1, 1, tzinfo=UTC)
    good = {"cmp-1": 0.4, "cmp-2": 0.5}
    # gone-9 is listed in agg-a but has no compute service: record leaves it out, so no skip
    said = _coverage(*_nova_and_prometheus(tmp_path, good), at=at)
    assert said == "every policy has good data for the 2 up host(s) in scope"
    # overlapping aggregates count a host once
    said = _coverage(*_nova_and_prometheus(tmp_path, good, "agg-a, agg-b"), at=at)
    assert said.endswith("the 2 up host(s) in scope")
    # a scope whose one exporter is dead, other hosts answering under Nova's names: data (65)
    with pytest.raises(DataError) as data:
        _coverage(*_nova_and_prometheus(tmp_path, good, "small"), at=at)
    assert "kronos record would skip small: bad data:" in str(data.value)
    assert "new-1: missing from the query result" in str(data.value)
    # not one name in common with Nova's compute hosts: the label (78), every policy named
    fqdn = {f"{h}.example.org": v for h, v in good.items()}
    with pytest.raises(ConfigError) as label:
        _coverage(*_nova_and_prometheus(tmp_path, fqdn), at=at)
    said = str(label.value)
    assert "policy 'cpu-spread': host_label" in said and "policy 'memory-spread': host_label" in said
    assert "names cmp-1.example.org, cmp-2.example.org, none of them a Nova compute host" in said
    assert str(tmp_path / "policies.yaml") in said


def test_two_files_an_engine_writes_may_not_be_one(tmp_path: Path) -> None:
    """``audit_file`` naming the state file appended audit lines to the state: a broken state."""
    with pytest.raises(
        ConfigError, match=r"\[engine\] audit_file = 'kronos-state.json': the same file as state_file"
    ):
        load_config(str(_write(tmp_path, "[engine]\naggregates = a\naudit_file = kronos-state.json\n")))
    both = "[engine]\naggregates = a\nresults_file = /dev/stdout\nlog_file = /dev/stdout\n"
    assert load_config(str(_write(tmp_path, both))).engine.log_file == "/dev/stdout"  # a device: shared


def test_prometheus_files_are_found_beside_the_config_file_wherever_kronos_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ca_file and bearer_token_file were read from the working directory, unlike every other
    file kronos.conf names: `cd / && kronos scores --config /etc/kronos/kronos.conf` said 'no such
    file' of a token beside it."""
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "token").write_text("t0ken\n")
    (etc / "ca.pem").write_text("not checked here\n")
    conf = _write(
        etc, "[engine]\naggregates = a\n[prometheus]\nca_file = ca.pem\nbearer_token_file = token\n"
    )
    monkeypatch.chdir(tmp_path)
    config = load_config(str(conf))
    assert config.prometheus.bearer_token_file == str(etc / "token")
    assert config.prometheus.ca_file == str(etc / "ca.pem")
    (etc / "token").unlink()
    with pytest.raises(ConfigError, match=r"bearer_token_file = '.*etc/token': no such file"):
        load_config(str(conf))


def test_a_policies_file_that_is_a_pipe_or_a_device_is_refused_unread(tmp_path: Path) -> None:
    """A FIFO as policies_file hung check-config for ever (waiting for a writer); /dev/zero was
    read to the 1 GiB cap before it was refused."""
    import os

    os.mkfifo(tmp_path / "fifo.yaml")
    for name in (str(tmp_path / "fifo.yaml"), "/dev/zero"):
        conf = tmp_path / "kronos.conf"
        conf.write_text(f"[engine]\naggregates = a\npolicies_file = {name}\n")
        with pytest.raises(ConfigError, match=r"not a regular file \(\[engine\] policies_file\)"):
            load_config(str(conf))


def test_check_config_says_which_written_file_or_folder_kronos_run_could_not_write(tmp_path: Path) -> None:
    """plan_dir naming a regular file passed check-config; kronos run failed on its first dry-run
    plan. Nothing is made by the check: a plan_dir that is not there yet is fine, it is made."""
    (tmp_path / "plain").write_text("")
    (tmp_path / "folder").mkdir()
    settings = {
        "state_file": "folder",
        "log_file": "missing/kronos.log",
        "audit_file": "plain/audit.jsonl",
        "plan_dir": "plain/plans",
        "results_file": "results.jsonl",
    }
    conf = _write(
        tmp_path, "[engine]\naggregates = a\n" + "".join(f"{k} = {v}\n" for k, v in settings.items())
    )
    assert unwritable(load_config(str(conf))) == [
        f"[engine] state_file = 'folder': {tmp_path}/folder is a folder",
        f"[engine] audit_file = 'plain/audit.jsonl': no folder {tmp_path}/plain",
        f"[engine] log_file = 'missing/kronos.log': no folder {tmp_path}/missing",
        f"[engine] plan_dir = 'plain/plans': {tmp_path}/plain is not a folder",
    ]
    out = kronos_cli("check-config", "--config", str(conf))
    assert out.returncode == 74 and "FAIL  files: [engine] state_file = 'folder': " in out.stdout, out.stdout
    conf.write_text("[engine]\naggregates = a\nplan_dir = later/plans\n")
    assert unwritable(load_config(str(conf))) == [] and not (tmp_path / "later").exists()
    conf.write_text(
        "[engine]\naggregates = a\nstate_file = folder\nlock_file = folder\n"
        "[coordination]\nbackend_url = etcd3+http://h:2379\n"
    )
    assert unwritable(load_config(str(conf))) == []  # the state is in the backend, the lock too


def test_a_folder_this_user_may_not_search_is_said_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Path.exists() raises PermissionError under a 0700 folder of another user: loading a
    config with a file:// backend there, check-config's files line and kronos status were exit 70
    with a traceback (injected here: tests run as root, which may search anything)."""
    pytest.importorskip("tooz")
    hidden = tmp_path / "hidden"
    real_stat = Path.stat

    def stat(self: Path, **kwargs: Any) -> Any:
        if str(self).startswith(str(hidden)):
            raise PermissionError(13, "Permission denied", str(self))
        return real_stat(self, **kwargs)

    conf = _write(tmp_path, f"[engine]\naggregates = a\nplan_dir = {hidden}/plans\n"
                            f"[coordination]\nbackend_url = file://{hidden}/tooz\n")  # fmt: skip
    monkeypatch.setattr(Path, "stat", stat)
    config = load_config(str(conf))  # tooz says what it cannot do when it tries
    assert unwritable(config) == [
        f"[engine] plan_dir = '{hidden}/plans': cannot look at {hidden}/plans: Permission denied"
    ]
    out = kronos_cli("status", "--config", str(conf))
    assert out.returncode == 77 and f"cannot look at {hidden}/tooz: Permission denied" in out.stderr, (
        out.stderr
    )
