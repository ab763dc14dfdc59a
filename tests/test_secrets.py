"""No secret in any output: every message path, with distinctive secret values.

Each configuration below carries secrets no other text could contain
(passwords, tokens, an application credential, a URL's user-info); each test
drives one path by which text leaves Kronos — a config error, a Prometheus
or Nova failure, ``check-config``, ``scores``, the engine log, the results
and state files, the snapshot, an internal error — and asserts that none of
the values appears in stdout, stderr or any file the run wrote. Failures the
real servers will not produce on demand come from tests/fault_proxy.py.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kronos import cli
from kronos.adapters.config import Config, PrometheusConfig
from kronos.adapters.executor import StepResult
from kronos.adapters.journal import Journal
from kronos.adapters.nova import NovaReader
from kronos.adapters.policies import parse_policies
from kronos.adapters.prometheus import PrometheusClient
from kronos.adapters.record import record
from kronos.redact import redact
from tests.canned_nova import CannedCloud
from tests.conftest import ROOT, kronos_cli
from tests.fault_proxy import FaultProxy, proxied
from tests.test_prometheus_faults import Canned

PROM_PASS = "Pr0m-PASS-7f3a"
NOVA_PASS = "N0va-PASS-91c2"
TOKEN = "T0ken-SECRET-55e1"
APP_SECRET = "AppCred-SECRET-0b7d"
USERINFO = "UserInfo-PASS-aa12"
SECRETS = (PROM_PASS, NOVA_PASS, TOKEN, APP_SECRET, USERINFO)
POLICIES = (ROOT / "etc" / "kronos" / "policies.yaml.sample").read_text()


def assert_hidden(*texts: str, folder: Path | None = None) -> None:
    """No secret in ``texts`` nor in any file under ``folder`` except kronos.conf itself."""
    files = [p for p in folder.rglob("*") if p.is_file() and p.name != "kronos.conf"] if folder else []
    for name, text in [(f"output {i}", t) for i, t in enumerate(texts)] + [
        (str(p), p.read_text(errors="replace")) for p in files
    ]:
        for secret in SECRETS:
            assert secret not in text, f"{secret} leaked in {name}: {text[-600:]}"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _with_userinfo(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://kronos:{USERINFO}@{rest}"


def write_conf(tmp: Path, prometheus: str, nova: str, extra: str = "") -> Path:
    """kronos.conf with a secret in every place one can be: [prometheus] and [nova]."""
    (tmp / "policies.yaml").write_text(POLICIES)
    conf = tmp / "kronos.conf"
    conf.write_text(
        "[engine]\naggregates = agg-a\n"
        f"[prometheus]\nurl = {_with_userinfo(prometheus)}\nusername = kronos\npassword = {PROM_PASS}\n"
        "retries = 0\ntimeout = 2\n"
        f"[nova]\nauth_type = admin_token\ntoken = {TOKEN}\n"
        f"compute_endpoint_override = {_with_userinfo(nova)}\ntimeout = 5\n{extra}"
    )
    return conf


@pytest.fixture
def proxy() -> Iterator[FaultProxy]:
    """A fault proxy in front of nothing: every request gets the injected answer."""
    with proxied(f"http://127.0.0.1:{_closed_port()}") as p:
        yield p


# -- the rule itself -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("Prometheus at http://u:pw1@h:9090/x unreachable", "Prometheus at http://***@h:9090/x unreachable"),
        ("https://tok3n@h/", "https://***@h/"),
        ("etcd3+http://u:p@w@h:2379 refused", "etcd3+http://***@h:2379 refused"),
        ("http://h:9090/q?to=a@b", None),
        ("password = correct horse battery\nnext", "password = ***\nnext"),
        ("[nova] application_credential_secret=abc, then", "[nova] application_credential_secret=***, then"),
        ('{"os_password": "pw", "x": 1}', '{"os_password": "***", "x": 1}'),
        ("{'token': 'abc', 'a': 'b'}", "{'token': '***', 'a': 'b'}"),
        ("GET /v3?api_key=abc&x=1", "GET /v3?api_key=***&x=1"),
        ("headers={'Authorization': 'Bearer tok-123'}", "headers={'Authorization': '***'}"),
        ("X-Auth-Token: gAAAAB", "X-Auth-Token: ***"),
        ("$KRONOS_NOVA_PASSWORD = 'x y'", "$KRONOS_NOVA_PASSWORD = '***'"),
        # names that only look secret keep their values: files, ids, types, and our own sentences
        ("[prometheus] bearer_token_file = '/etc/token': no such file", None),
        ("application_credential_id = 1a2b", None),
        ("[nova] auth_type = admin_token: also give token and compute_endpoint_override", None),
        ("[prometheus] username and password: give both for basic auth, or neither", None),
    ],
)
def test_redact_blanks_values_and_keeps_the_rest(text: str, shown: str | None) -> None:
    assert redact(text) == (text if shown is None else shown)
    assert redact(redact(text)) == redact(text)


_word = st.text(st.characters(categories=["L", "N"], max_codepoint=0x2FF), min_size=1, max_size=12)


@given(
    st.dictionaries(st.sampled_from(["password", "token", "x_secret", "name", "host"]), _word, min_size=1),
    st.sampled_from(["http", "https"]),
    _word,
)
def test_a_redacted_json_line_is_still_json_and_holds_no_secret(
    fields: dict[str, str], scheme: str, password: str
) -> None:
    doc = {**fields, "url": f"{scheme}://user:{password}@h:1/p", "error": f"password={password} failed"}
    out = json.loads(redact(json.dumps(doc, sort_keys=True)))
    assert set(out) == set(doc) and out["url"] == f"{scheme}://***@h:1/p"
    for key, value in fields.items():
        assert out[key] == ("***" if key in ("password", "token", "x_secret") else value)
    assert out["error"] == "password=*** failed"


# -- kronos.conf errors ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("conf", "env", "words"),
    [
        (f"[prometheus]\npassword {PROM_PASS}\n", {}, "kronos.conf:4: expected 'key = value'"),
        (f"[nova]\npassword =\n{NOVA_PASS}\n", {}, "kronos.conf:5: expected 'key = value'"),
        (f"password = {NOVA_PASS}\n[nova]\n", {}, "kronos.conf:1: a setting before the first [section]"),
        (f"[nova]\npassword = {NOVA_PASS}\npassword = {NOVA_PASS}\n", {}, "[nova] password a second time"),
        (f"[prometheus]\nurl = ftp://u:{USERINFO}@prom\n", {}, "url = 'ftp://***@prom': expected http(s)"),
        (
            f"[nova]\nauth_url = http://k:5000/v3\nusername = u\npassword = {NOVA_PASS}\nretries = 2\n",
            {"KRONOS_NOVA_APPLICATION_CREDENTIAL_SECRET": APP_SECRET, "KRONOS_NOVA_TOKEN_X": TOKEN},
            "$KRONOS_NOVA_TOKEN_X: [nova] token_x: unknown option",
        ),
        (
            "[prometheus]\nusername = u\n",
            {"KRONOS_PROMETHEUS_PASSWORD": PROM_PASS, "KRONOS_PROMETHEUS_TIMEOUT": "inf"},
            "[prometheus] timeout = 'inf': must be a finite number",
        ),
        ("", {"KRONOS_PROMETHEUS_URL": f"gopher://x:{USERINFO}@prom"}, "url = 'gopher://***@prom'"),
    ],
)
def test_config_errors_never_show_a_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, conf: str, env: dict[str, str], words: str
) -> None:
    (tmp_path / "policies.yaml").write_text(POLICIES)
    path = tmp_path / "kronos.conf"
    path.write_text(conf if conf.startswith("password") else "[engine]\naggregates = a\n" + conf)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for command in (["check-config"], ["scores"]):
        proc = kronos_cli(*command, "--config", str(path))
        assert proc.returncode == 78, proc.stderr
        assert words in proc.stdout + proc.stderr
        assert_hidden(proc.stdout, proc.stderr, folder=tmp_path)


# -- Prometheus errors -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fault", "code", "words"),
    [
        ("refused", 69, "unreachable after 1 attempt(s)"),
        ("401", 77, "answered 401"),
        ("403", 77, "answered 403"),
        ("503", 0, "HTTP 503 error: injected"),
        ("tls", 69, "TLS verification failed"),
    ],
)
def test_prometheus_errors_never_show_a_secret(
    tmp_path: Path, proxy: FaultProxy, fault: str, code: int, words: str
) -> None:
    url = proxy.url
    if fault == "refused":
        url = f"http://127.0.0.1:{_closed_port()}"
    elif fault == "tls":
        url = url.replace("http://", "https://")
    else:
        proxy.add("POST", "/api/v1/query", fault, times=100)
    conf = write_conf(tmp_path, url, f"http://127.0.0.1:{_closed_port()}/v2.1")
    scores = kronos_cli("scores", "--config", str(conf), "-o", "-")
    assert scores.returncode == code, scores.stderr
    assert words in scores.stdout + scores.stderr
    if code == 0:  # the report itself, with the URL and Prometheus's words per policy
        assert json.loads(scores.stdout)["aggregates"][0]["policies"][0]["problems"]
        table = kronos_cli("scores", "--config", str(conf))
        assert table.returncode == 0 and "Prometheus http://***@127.0.0.1:" in table.stdout
        assert_hidden(table.stdout, table.stderr)
        rows = kronos_cli("scores", "--config", str(conf), "-f", "value", "-c", "problem")
        assert rows.returncode == 0 and words in rows.stdout  # the rows carry Prometheus's words too
        assert_hidden(rows.stdout, rows.stderr)
    check = kronos_cli("check-config", "--config", str(conf))
    assert check.returncode != 0 and "FAIL  prometheus:" in check.stdout
    assert_hidden(scores.stdout, scores.stderr, check.stdout, check.stderr, folder=tmp_path)


# -- Nova errors -----------------------------------------------------------------------------------
@pytest.mark.parametrize("fault", ["refused", "401", "503"])
def test_nova_errors_never_show_a_secret(tmp_path: Path, proxy: FaultProxy, fault: str) -> None:
    nova = f"http://127.0.0.1:{_closed_port()}/v2.1"
    if fault != "refused":
        nova = proxy.url + "/v2.1"
        proxy.add("GET", ".", fault, times=1000)
    conf = write_conf(tmp_path, f"http://127.0.0.1:{_closed_port()}", nova)
    out = tmp_path / "snap.json"
    rec = kronos_cli("record", "--config", str(conf), "-o", str(out))
    assert rec.returncode in (69, 77), rec.stderr
    assert "Traceback" not in rec.stderr and not out.exists()
    check = kronos_cli("check-config", "--config", str(conf))
    assert "FAIL  nova aggregates:" in check.stdout and check.returncode in (69, 77)
    assert_hidden(rec.stdout, rec.stderr, check.stdout, check.stderr, folder=tmp_path)


def test_password_auth_against_an_unreachable_keystone(tmp_path: Path) -> None:
    (tmp_path / "policies.yaml").write_text(POLICIES)
    conf = tmp_path / "kronos.conf"
    conf.write_text(
        "[engine]\naggregates = agg-a\n[nova]\n"
        f"auth_url = http://admin:{USERINFO}@127.0.0.1:{_closed_port()}/v3\n"
        f"username = kronos\npassword = {NOVA_PASS}\nproject_name = service\n"
    )
    proc = kronos_cli("record", "--config", str(conf), "-o", str(tmp_path / "s.json"))
    assert proc.returncode == 69, proc.stderr
    assert_hidden(proc.stdout, proc.stderr, folder=tmp_path)


# -- the engine log, the results and state files, the snapshot -------------------------------------
def test_the_engine_log_never_shows_a_secret(tmp_path: Path, proxy: FaultProxy) -> None:
    proxy.add("GET", ".", "503", times=1000)
    conf = write_conf(tmp_path, f"http://127.0.0.1:{_closed_port()}", proxy.url + "/v2.1")
    log = tmp_path / "engine.jsonl"
    proc = kronos_cli("run", "--config", str(conf), "--once", "--log", str(log))
    assert proc.returncode == 69, proc.stderr
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [line["event"] for line in lines] == ["aggregate", "cycle"]
    assert "http://***@127.0.0.1:" in lines[0]["error"]
    assert_hidden(proc.stdout, proc.stderr, folder=tmp_path)


def test_results_state_and_progress_lines_never_show_a_secret(tmp_path: Path) -> None:
    shown: list[str] = []
    journal = Journal(
        tmp_path / "results.jsonl", tmp_path / "state.json", {}, also=lambda r: shown.append(str(r))
    )
    error = f"Nova at http://kronos:{USERINFO}@nova:8774 said: {{'auth': {{'password': '{NOVA_PASS}'}}}}"
    journal(StepResult(1, 1, "vm-1", "live-migrate", "a", "b", "MigrationFailed", 3, "t0", "t1", 1.0, error))
    journal.close()
    row = json.loads((tmp_path / "results.jsonl").read_text())
    assert row["error"] == "Nova at http://***@nova:8774 said: {'auth': {'password': '***'}}"
    assert_hidden(*shown, folder=tmp_path)


def test_a_recorded_snapshot_never_shows_a_secret(tmp_path: Path) -> None:
    url = f"https://kronos:{USERINFO}@prom.example:9090"
    config = Config(
        source="kronos.conf", prometheus=PrometheusConfig(url=url), policies=parse_policies(POLICIES, "p")
    )
    empty = {"status": "success", "data": {"resultType": "vector", "result": []}}
    client = PrometheusClient(url, session=Canned(200, empty))
    snap = record(
        config,
        NovaReader(CannedCloud(3, 3, per_aggregate=3)),
        client,
        datetime(2026, 1, 1, tzinfo=UTC),
        ["agg-0"],
    )
    assert (snap.source or {})["prometheus"] == "https://***@prom.example:9090"
    assert_hidden(json.dumps(snap.source))


# -- the CLI's own last words ----------------------------------------------------------------------
def test_usage_errors_never_show_a_secret() -> None:
    for args in (
        ["scores", "--at", f"http://u:{USERINFO}@x"],
        ["generate", "--seed", f"password={PROM_PASS}"],
        ["plan", "x.json", "--set", f"token={TOKEN}"],
    ):
        proc = kronos_cli(*args)
        assert proc.returncode in (64, 66), proc.stderr
        assert_hidden(proc.stdout, proc.stderr)


def test_an_internal_error_traceback_never_shows_a_secret(capsys: pytest.CaptureFixture[str]) -> None:
    def bug(**_: Any) -> None:
        raise RuntimeError(f"connect(auth={{'password': '{NOVA_PASS}'}}, url='http://u:{USERINFO}@h')")

    assert cli.run(bug, []) == 70
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError" in err and "'password': '***'" in err
    assert_hidden(err)


def test_the_rule_knows_every_secret_setting_of_kronos_conf_and_no_other() -> None:
    """The config's Secret fields and the redaction rule's names are one definition seen twice."""
    import attrs

    from kronos.adapters.config import NovaConfig, Secret
    from kronos.redact import is_secret_name

    for cls in (PrometheusConfig, NovaConfig):
        for f in attrs.fields(cls):
            assert is_secret_name(f.name) == (f.type in (Secret | None, "Secret | None")), f.name


# -- --debug -------------------------------------------------------------------------------------
def test_debug_logs_show_the_http_and_no_secret(tmp_path: Path, proxy: FaultProxy) -> None:
    """``--debug`` opens the SDK's and urllib3's HTTP logs, and Kronos's own; all redacted."""
    proxy.add("GET", ".", "503", times=1000)
    conf = write_conf(tmp_path, f"http://127.0.0.1:{_closed_port()}", proxy.url + "/v2.1")
    log = tmp_path / "debug.log"
    scores = kronos_cli("--debug", "--log-file", str(log), "scores", "--config", str(conf))
    assert scores.returncode == 69, scores.stderr
    record = kronos_cli(
        "--debug", "--log-file", str(log), "record", "--config", str(conf), "-o", str(tmp_path / "s.json")
    )
    assert record.returncode != 0
    text = log.read_text()
    assert "DEBUG: kronos.adapters.prometheus: /api/v1/query {" in text  # Kronos's own
    assert "DEBUG: urllib3.connectionpool:" in text  # the HTTP layer's
    assert "DEBUG: keystoneauth" in text or "DEBUG: openstack" in text  # the SDK's
    quiet = kronos_cli("scores", "--config", str(conf))
    assert "/api/v1/query" not in quiet.stderr  # without -v/--debug: warnings only
    assert_hidden(scores.stdout, scores.stderr, record.stdout, record.stderr, quiet.stderr, folder=tmp_path)
