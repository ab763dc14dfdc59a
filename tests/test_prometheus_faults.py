"""Network faults the real server will not produce on demand: injected, as the only mocks."""

from __future__ import annotations

import contextlib
import io
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import urllib3

from kronos.adapters.config import load_config
from kronos.adapters.history import Window
from kronos.adapters.prometheus import PrometheusClient
from kronos.adapters.scores import VMRef, read_policy, read_vm_weights
from kronos.core.model import Policy
from kronos.errors import ConfigError, PermissionDenied, UnavailableError

AT = datetime(2026, 1, 1, tzinfo=UTC)
POLICY = Policy("cpu", imbalance_query="up", host_label="nodename")


def _raw(body: bytes) -> urllib3.HTTPResponse:
    """A body as requests' adapter leaves it for a streamed answer."""
    return urllib3.HTTPResponse(body=io.BytesIO(body), preload_content=False)


class Canned(requests.Session):
    """Answers every POST with one canned response and keeps what was sent."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__()
        self.status, self.body = status, body
        self.calls: list[dict[str, Any]] = []

    def post(self, url: str, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.calls.append({"url": url, **kwargs})
        resp = requests.Response()
        resp.status_code = self.status
        resp.raw = _raw(json.dumps(self.body).encode() if not isinstance(self.body, bytes) else self.body)
        resp.reason = "canned"
        return resp


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _listening(accepted: Callable[[socket.socket], None]) -> Iterator[str]:
    """A local server handing each connection it accepts to ``accepted``: its URL."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()

    def loop() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            accepted(conn)

    threading.Thread(target=loop, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.getsockname()[1]}"
    finally:
        srv.close()


@pytest.fixture
def silent_server() -> Iterator[tuple[str, list[socket.socket]]]:
    """Accepts connections and never answers (a hung Prometheus)."""
    conns: list[socket.socket] = []
    with _listening(conns.append) as url:
        yield url, conns
    for c in conns:
        c.close()


def test_refused_connections_are_retried_then_unavailable() -> None:
    port = _closed_port()
    slept: list[float] = []
    client = PrometheusClient(f"http://127.0.0.1:{port}", retries=2, backoff=0.1, sleep=slept.append)
    with pytest.raises(UnavailableError) as err:
        client.query("up", AT)
    assert slept == [0.1, 0.2]
    assert f"http://127.0.0.1:{port} unreachable after 3 attempt(s)" in str(err.value)
    assert "refused" in str(err.value).lower() and err.value.exit_code == 69
    with pytest.raises(UnavailableError):  # not a data problem: the whole cycle cannot run
        read_policy(client, POLICY, AT)


def test_a_hung_server_times_out_once_and_is_not_retried(
    silent_server: tuple[str, list[socket.socket]],
) -> None:
    url, accepted = silent_server
    client = PrometheusClient(url, timeout=0.3, retries=3, sleep=lambda _: None)
    reading = read_policy(client, POLICY, AT)
    assert reading.error == "no answer within 0.3s ([prometheus] timeout)"
    assert len(accepted) == 1


@pytest.fixture
def streaming_server() -> Iterator[str]:
    """Answers 200 and then sends its body forever: ``/trickle`` a byte every 0.1 s, ``/flood``
    64 KiB at a time (a Prometheus behind a broken proxy)."""

    def serve(conn: socket.socket) -> None:
        with conn:
            path = conn.recv(65536).split(b" ")[1]
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{")
            chunk, pause = (b" ", 0.1) if path.endswith(b"/trickle/api/v1/query") else (b" " * 65536, 0.0)
            try:
                while True:
                    conn.sendall(chunk)
                    time.sleep(pause)
            except OSError:  # the client hung up
                return

    with _listening(lambda conn: threading.Thread(target=serve, args=(conn,), daemon=True).start()) as url:
        yield url


def test_an_answer_that_trickles_or_never_ends_is_cut_off(
    streaming_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """requests' timeout bounds each read: a byte every 0.1 s held a 1-s query for as long as
    the server went on, and an endless body filled memory (17 GB in a minute)."""
    import kronos.adapters.prometheus as prometheus

    slow = PrometheusClient(f"{streaming_server}/trickle", timeout=1.0, sleep=lambda _: None)
    started = time.monotonic()
    assert read_policy(slow, POLICY, AT).error == "no whole answer within 1s ([prometheus] timeout)"
    assert time.monotonic() - started < 5
    monkeypatch.setattr(prometheus, "MAX_ANSWER_BYTES", 1 << 20)
    flood = PrometheusClient(f"{streaming_server}/flood", timeout=30.0, sleep=lambda _: None)
    assert read_policy(flood, POLICY, AT).error == "the answer is over 1048576 bytes: refused unread"


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            503,
            {"status": "error", "errorType": "unavailable", "error": "too many queries"},
            "HTTP 503 unavailable: too many queries",
        ),
        (502, b"<html>bad gateway</html>", "HTTP 502 error: <html>bad gateway</html>"),
        (
            422,
            {"status": "error", "errorType": "execution", "error": "many-to-many"},
            "HTTP 422 execution: many-to-many",
        ),
        (
            200,
            {"status": "success", "data": {"resultType": "scalar", "result": [0, "1"]}},
            "the query returned a scalar; expected an instant vector",
        ),
    ],
)
def test_server_errors_become_one_policy_problem_without_retry(status: int, body: Any, expected: str) -> None:
    session = Canned(status, body)
    reading = read_policy(PrometheusClient("http://prom:9090", session=session), POLICY, AT)
    assert reading.error == expected and reading.values == {}
    assert len(session.calls) == 1


@pytest.mark.parametrize("status", [401, 403])
def test_auth_failures_are_permission_errors(status: int) -> None:
    with pytest.raises(PermissionDenied, match=f"answered {status}: check"):
        PrometheusClient("http://prom:9090", session=Canned(status, {})).query("up", AT)


def _prometheus_conf(tmp_path: Path, prometheus: str) -> Path:
    """kronos.conf with this [prometheus] section and a one-policy policies.yaml beside it."""
    (tmp_path / "policies.yaml").write_text(
        "policies:\n  - {name: c, mode: spread, weight: 1, threshold: 0, imbalance_query: up, host_label: h}\n"
    )
    conf = tmp_path / "kronos.conf"
    conf.write_text(f"[engine]\naggregates = a\n[prometheus]\n{prometheus}")
    return conf


def test_credentials_and_time_are_sent(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("tok-123\n")
    conf = _prometheus_conf(
        tmp_path, f"url = https://prom:9090/\nbearer_token_file = {token}\nverify = false\ntimeout = 3\n"
    )
    ok = {
        "status": "success",
        "data": {"resultType": "vector", "result": [{"metric": {"h": "x"}, "value": [0, "0.5"]}]},
    }
    session = Canned(200, ok)
    client = PrometheusClient.from_config(load_config(str(conf)).prometheus, session=session)
    [sample] = client.query("up", AT)
    assert sample.labels == {"h": "x"} and sample.value == 0.5
    call = session.calls[0]
    assert call["url"] == "https://prom:9090/api/v1/query"
    assert call["headers"] == {"Authorization": "Bearer tok-123"}
    assert call["data"] == {"query": "up", "time": f"{AT.timestamp():.3f}"}
    assert call["verify"] is False and call["timeout"] == 3.0
    basic = PrometheusClient("http://p", session=session, basic_auth=("u", "pw"))
    basic.query("up", AT)
    assert session.calls[1]["auth"] == ("u", "pw") and session.calls[1]["headers"] == {}


class Routed(Canned):
    """Instant queries answered well (host ``x`` at 0.5, VM ``v`` at 0.1); range queries with the canned answer."""

    def post(self, url: str, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if url.endswith("/api/v1/query_range"):
            return super().post(url, **kwargs)
        self.calls.append({"url": url, **kwargs})
        labels = {"h": "x", "uuid": "v"}
        value = "0.1" if kwargs["data"]["query"] == "vm" else "0.5"
        body = {
            "status": "success",
            "data": {"resultType": "vector", "result": [{"metric": labels, "value": [0, value]}]},
        }
        resp = requests.Response()
        resp.status_code, resp.raw = 200, _raw(json.dumps(body).encode())
        return resp


HISTORY = Window(AT, 300, 60)  # 6 samples
VM_POLICY = Policy(
    "cpu", imbalance_query="up", host_label="h", vm_profile_query="vm", vm_profile_label="uuid", weight=1.0
)


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            503,
            {"status": "error", "errorType": "unavailable", "error": "too many queries"},
            "history (300s at 60s steps): HTTP 503 unavailable: too many queries",
        ),
        (
            200,
            {"status": "success", "data": {"resultType": "vector", "result": []}},
            "history (300s at 60s steps): the query returned a vector; expected a range vector (matrix)",
        ),
    ],
)
def test_a_failed_range_query_is_a_failed_query_of_the_policy_and_of_the_vm_forecast(
    status: int, body: Any, expected: str
) -> None:
    client = PrometheusClient("http://prom:9090", session=Routed(status, body))
    reading = read_policy(client, VM_POLICY, AT, HISTORY)
    assert reading.error == expected and reading.values == {}
    weights = read_vm_weights(client, VM_POLICY, AT, [VMRef("v")], HISTORY, horizon=600)
    assert weights.weights == {"v": 0.1} and weights.forecasts == {} and weights.horizon is None
    [problem] = [p for p in weights.problems if p.kind == "vm-history"]
    assert problem.detail == f"VM profile history ({HISTORY}) failed: {expected.split(': ', 1)[1]}"


def test_unreadable_range_points_are_gaps_and_the_range_is_sent_aligned() -> None:
    start = HISTORY.start.timestamp()
    values = [[start, "0.2"], [start + 60, "soon"], ["when", "0.3"], [start + 180], [start + 240, "0.4"]]
    body = {
        "status": "success",
        "data": {"resultType": "matrix", "result": [{"metric": {"h": "x"}, "values": values}]},
    }
    session = Routed(200, body)
    reading = read_policy(PrometheusClient("http://prom:9090", session=session), VM_POLICY, AT, HISTORY)
    assert reading.error is None and reading.history is not None
    assert reading.history["x"].samples == (0.2, None, None, None, 0.4, 0.5)
    # no time: nowhere to put it (sample 2 is missing); a time without a readable value: NaN
    assert reading.history["x"].gaps == {"missing": 1, "nan": 2}
    assert session.calls[-1]["data"] == {
        "query": "up",
        "start": f"{start:.3f}",
        "end": f"{AT.timestamp():.3f}",
        "step": "60.0",
    }


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"status": "success", "data": {"resultType": "vector", "result": [1, 2]}}, "not a list of series"),
        ({"status": "success", "data": [1]}, "the answer's data is not an object"),
        (
            {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {"h": ["x"]}}]}},
            "not a list of series with string labels",
        ),
    ],
)
def test_an_answer_not_shaped_as_prometheus_is_a_failed_query_not_a_crash(body: Any, expected: str) -> None:
    """A proxy or another service answering JSON: it was an AttributeError, and kronos run died."""
    reading = read_policy(PrometheusClient("http://prom:9090", session=Canned(200, body)), POLICY, AT)
    assert reading.error is not None and expected in reading.error and reading.values == {}


@pytest.mark.parametrize(
    ("status", "body"), [(404, b"404 page not found\n"), (200, b"<html>\n<title>Grafana</title></html>")]
)
def test_a_url_that_is_no_prometheus_api_names_the_setting(status: int, body: bytes) -> None:
    """…/prometheus or a login page: every query 'failed' and kronos run skipped every cycle, exit 0."""
    with pytest.raises(
        ConfigError, match=r"\[prometheus\] url = 'http://prom:9090/graph': /api/v1/query answered"
    ):
        PrometheusClient("http://prom:9090/graph", session=Canned(status, body)).query("up", AT)


def test_json_nested_deeper_than_python_recurses_is_no_prometheus_answer() -> None:
    """json.loads raised RecursionError, a traceback and exit 70; it is an answer that is not
    Prometheus's, as any other body that is not its JSON."""
    deep = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(ConfigError, match=r"\[prometheus\] url = 'http://prom:9090': /api/v1/query answered"):
        PrometheusClient("http://prom:9090", session=Canned(200, deep)).query("up", AT)


def test_json_that_is_not_utf8_is_a_failed_query_and_a_latin1_page_a_wrong_url() -> None:
    """Prometheus's JSON in other bytes (a label value in Latin-1) was "answered HTTP 200 without
    Prometheus's JSON: name Prometheus's root", exit 78, for a URL that was right."""
    body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": []}})
    garbled = body.replace('"result"', '"r\xe9sult"').encode("latin-1")
    reading = read_policy(PrometheusClient("http://prom:9090", session=Canned(200, garbled)), POLICY, AT)
    assert (
        reading.error is not None
        and "the answer is JSON but not UTF-8 (byte b'\\xe9' at offset" in reading.error
    )
    page = "<html><title>Connexion refusée</title></html>".encode("latin-1")
    with pytest.raises(ConfigError, match=r"/api/v1/query answered HTTP 200 without Prometheus's JSON"):
        PrometheusClient("http://prom:9090", session=Canned(200, page)).query("up", AT)


def test_credentials_that_cannot_go_in_a_header_are_config_errors_that_never_show_them(
    tmp_path: Path,
) -> None:
    """requests raised InvalidHeader with the token in its text: a traceback printing the secret."""
    token = tmp_path / "token"
    token.write_text("secret-one\nsecret-two\n")
    conf = _prometheus_conf(tmp_path, f"url = http://prom:9090\nbearer_token_file = {token}\n")
    with pytest.raises(ConfigError, match="the token must be one line") as err:
        PrometheusClient.from_config(load_config(str(conf)).prometheus, session=Canned(200, {}))
    assert "secret" not in str(err.value)
    conf = _prometheus_conf(tmp_path, "url = http://prom:9090\nusername = u\npassword = pässw€rd\n")
    with pytest.raises(ConfigError, match=r"\[prometheus\] password: must be one line") as err:
        PrometheusClient.from_config(load_config(str(conf)).prometheus, session=Canned(200, {}))
    assert "pässw" not in str(err.value)
    client = PrometheusClient("http://u:p%E2%82%ACss@prom:9090", session=requests.Session(), retries=0)
    with pytest.raises(ConfigError, match="credentials cannot be sent in an HTTP header") as err:
        client.query("up", AT)  # the safety net: requests fails before any connection
    assert "p€ss" not in str(err.value) and "E2%82" not in str(err.value)


def test_a_failed_freshness_query_is_named_as_such() -> None:
    """It read as the imbalance query's failure ('load: query failed: …')."""

    class FreshnessFails(Canned):
        def post(self, url: str, **kwargs: Any) -> requests.Response:  # type: ignore[override]
            if kwargs["data"]["query"] == "up":
                self.status, self.body = (
                    200,
                    {"status": "success", "data": {"resultType": "vector", "result": []}},
                )
            else:
                self.status, self.body = (
                    400,
                    {"status": "error", "errorType": "bad_data", "error": "parse error"},
                )
            return super().post(url, **kwargs)

    policy = Policy("cpu", imbalance_query="up", host_label="nodename", freshness_query="timestamp(up")
    reading = read_policy(PrometheusClient("http://prom:9090", session=FreshnessFails(200, {})), policy, AT)
    assert reading.error == "freshness_query: HTTP 400 bad_data: parse error"
