"""A real etcd for the coordination tests: Debian's ``etcd-server``, on loopback ports, its own data dir.

:class:`Etcd` can be stopped and started again on the same ports and data
(the outage tests). When it cannot start, the tests skip locally and fail
under ``CI=true``: CI must never pass by not testing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import IO

import pytest
import requests


def unavailable(why: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"real etcd required under CI=true: {why}", pytrace=False)
    pytest.skip(f"no real etcd: {why}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Etcd:
    def __init__(self, workdir: Path) -> None:
        try:
            import etcd3gw  # noqa: F401
            import tooz  # noqa: F401
        except ImportError:
            unavailable("tooz or etcd3gw not installed (pip install -e '.[ha]')")
        exe = shutil.which("etcd")
        if exe is None:
            unavailable("etcd not found (apt-get install etcd-server)")
        self.exe = str(exe)
        self.workdir = workdir
        self.client_port, self.peer_port = _free_port(), _free_port()
        self.url = f"http://127.0.0.1:{self.client_port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def backend_url(self) -> str:
        return f"etcd3+{self.url}"

    def start(self) -> None:
        peer = f"http://127.0.0.1:{self.peer_port}"
        self._log = log = (self.workdir / "etcd.log").open("ab")
        self.proc = subprocess.Popen(
            [
                self.exe,
                "--name", "kronos-test",
                "--data-dir", str(self.workdir / "data"),
                "--listen-client-urls", self.url,
                "--advertise-client-urls", self.url,
                "--listen-peer-urls", peer,
                "--initial-advertise-peer-urls", peer,
                "--initial-cluster", f"kronos-test={peer}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                unavailable(f"etcd exited: {(self.workdir / 'etcd.log').read_text()[-800:]}")
            try:
                if requests.get(f"{self.url}/health", timeout=1).json().get("health") == "true":
                    return
            except (requests.RequestException, ValueError):
                pass
            time.sleep(0.2)
        self.stop()
        unavailable("etcd did not become healthy within 30 s")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
