"""kronos.conf and policies.yaml: what loads, and errors that say what to fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kronos.adapters.config import Secret, load_config
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


def test_environment_overrides_the_file_and_feeds_planner_options(tmp_path: Path) -> None:
    conf = _write(tmp_path, "[engine]\naggregates = a\nmin_load = 0.1\n[prometheus]\nurl = http://p:9090\n")
    env = {
        "KRONOS_ENGINE_MIN_LOAD": "0.4",
        "KRONOS_ENGINE_INCLUDE_UNASSIGNED_HOSTS": "yes",
        "KRONOS_PROMETHEUS_URL": "https://prom.example:443/prefix",
        "KRONOS_EXECUTOR_MAX_PLAN_AGE": "60",
        "KRONOS_CONFIG": "ignored: not a setting",
        "OTHER_ENGINE_MIN_LOAD": "9",
    }
    config = load_config(str(conf), env)
    assert config.engine.options.min_load == 0.4
    assert config.scope == ("a", "_unassigned_")
    assert config.prometheus.url == "https://prom.example:443/prefix"
    assert config.executor.max_plan_age == 60.0
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
        load_config(str(conf), {"KRONOS_EXECUTOR_MAX_DRFT": "2"})
    text = str(err.value)
    assert err.value.exit_code == 78
    for expected in (
        f"{conf}: 8 problem(s)",
        f"{conf}:3: [engine] min_lod: unknown option (did you mean min_load?)",
        f"{conf}:4: [engine] option cooldown = '-5': must be >= 0",
        f"{conf}:5: [engine] option post_drain_action = 'reboot': must be one of none, disable",
        f"{conf}:8: [prometheus] timeout = 'soon'",
        f"{conf}:9: [prometheus] min_host_coverage = '1.5': must be in [0, 1]",
        "[executr]: unknown section (did you mean executor?)",
        "$KRONOS_EXECUTOR_MAX_DRFT: [executor] max_drft: unknown option (did you mean max_drift?)",
        "[prometheus] url = 'ftp://x': expected http(s)://HOST[:PORT][/PATH]",
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
        ("[nova]\ncloud = c\nauth_url = http://k:5000/v3\nusername=u\npassword=p\n", "not both"),
        ("[nova]\nauth_url = http://k:5000/v3\n", "also give username and password"),
        ("[messaging]\ntransport_url = rabbit://x\n", "not used (plans are files; no RabbitMQ)"),
        ("[engine]\nevaluation_interval = 0\naggregates = a\n", "evaluation_interval = '0': must be > 0"),
        ("[engine]\ndry_run = maybe\naggregates = a\n", "dry_run = 'maybe': expected true or false"),
        ("[engine]\nkey without value\n", "kronos.conf: Source contains parsing errors"),
        (
            "[engine]\naggregates = a\naggregates = b\n",
            "option 'aggregates' in section 'engine' already exists",
        ),
    ],
)
def test_config_rules(tmp_path: Path, conf: str, expected: str) -> None:
    if "aggregates" not in conf:
        conf = "[engine]\naggregates = a\n" + conf.replace("[engine]\n", "")
    with pytest.raises(ConfigError, match=None) as err:
        load_config(str(_write(tmp_path, conf)))
    assert expected in str(err.value)


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
    with pytest.raises(ConfigError, match=r"gone\.yaml: no such file \(policies_file\)"):
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
        (("policies:", "policy:"), "p.yaml: expected a top-level 'policies:' list"),
        (("policies:\n", "policies: []\nextra:\n"), "unknown top-level key 'extra'"),
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
    quiet = kronos_cli("plan", example, "--config", str(conf), "--format", "json")
    assert quiet.returncode == 0, quiet.stderr
    doc = json.loads(quiet.stdout)
    assert doc["steps"] == [] and all(
        "min_load" in a["skipped"] for a in doc["summary"]["aggregates"].values()
    )
    loud = kronos_cli("plan", example, "--config", str(conf), "--set", "min_load=0", "--format", "json")
    assert json.loads(loud.stdout)["steps"]  # --set wins over the file
    conf.write_text("[engine]\nmin_lod = 1\n")
    bad = kronos_cli("plan", example, "--config", str(conf))
    assert bad.returncode == 78 and "did you mean min_load?" in bad.stderr
