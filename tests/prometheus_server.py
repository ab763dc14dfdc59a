"""A real Prometheus for the adapter tests: history imported, then served on loopback.

The history is written as OpenMetrics, turned into TSDB blocks with
``promtool tsdb create-blocks-from openmetrics`` *before* the server starts
(blocks added to a running server show up only after about a minute), and
served by ``prometheus`` from Debian's package with its own data directory
and no scrape jobs. Retention is set far out because the data sits at a
fixed past time (reproducible queries) that default retention would delete.

When the server cannot start the tests skip locally and fail under
``CI=true``: CI must never pass by not testing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests


def unavailable(why: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"real Prometheus required under CI=true: {why}", pytrace=False)
    pytest.skip(f"no real Prometheus: {why} (apt-get install prometheus)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def import_history(text: str, workdir: Path) -> Path:
    """OpenMetrics text → a TSDB data directory (promtool), returned."""
    promtool = shutil.which("promtool")
    if promtool is None:
        unavailable("promtool not found")
    source = workdir / "history.om"
    source.write_text(text, encoding="utf-8")
    data = workdir / "data"
    proc = subprocess.run(
        [str(promtool), "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0:
        unavailable(f"promtool failed: {proc.stderr[-500:]}")
    source.unlink()
    return data


@contextmanager
def serve(data: Path, workdir: Path) -> Iterator[str]:
    """Run prometheus over ``data`` on 127.0.0.1; yields its URL; stops it by PID."""
    exe = shutil.which("prometheus")
    if exe is None:
        unavailable("prometheus not found")
    config = workdir / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1h\n", encoding="utf-8")
    log = workdir / "prometheus.log"
    for _attempt in range(3):  # another process may take the port between probe and bind
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        with log.open("w") as out:
            proc = subprocess.Popen(
                [
                    str(exe),
                    f"--config.file={config}",
                    f"--storage.tsdb.path={data}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--storage.tsdb.retention.time=100y",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        if _wait_ready(url, proc):
            break
        proc.kill()
        proc.wait()
    else:
        unavailable(f"prometheus did not become ready: {log.read_text()[-800:]}")
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_ready(url: str, proc: subprocess.Popen[bytes], limit: float = 30.0) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            if requests.get(f"{url}/-/ready", timeout=1).status_code == 200:
                return True
        except requests.ConnectionError:
            pass
        time.sleep(0.05)
    return False


@contextmanager
def serve_history(text: str, workdir: Path) -> Iterator[str]:
    """OpenMetrics history → a Prometheus serving it on 127.0.0.1; yields its URL."""
    with serve(import_history(text, workdir), workdir) as url:
        yield url
