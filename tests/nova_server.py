"""Start the real Nova of tests/nova_cloud.py in its own process and talk to it.

The Nova environment lives in its own virtualenv (``.nova-venv`` in the
repository, made by ``.ci/run``; or ``NOVA_TEST_PYTHON``). Each test module
gets a fresh cloud: the fake cloud slows down over hundreds of operations.
Without the environment the tests skip locally and fail under ``CI=true``.

Setup helpers drive Nova through its REST API with openstacksdk, exactly as
an operator's tooling would; boots go one at a time (``BOOTS_IN_FLIGHT``):
Nova's test fixtures deadlock under concurrency. At 4, two CI runs in a row
had a cloud's API stop answering for 120 s in the middle of a boot; at 2,
one CI run on two test workers did: two conductor threads building servers,
one holding the cell fixture's read lock while it waited for the database
fixture's write lock, the other waiting for the cell fixture's write lock
to recheck quotas, and every API read queued behind that writer (the cell
fixture's readers now pass a waiting writer: ``tests/nova_cloud.py``).
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

IMAGE = "155d900f-4e14-4e4c-a73d-069cbf4541e6"  # the Glance fixture's first image
MV = "2.74"  # server create with a requested host
BOOTS_IN_FLIGHT = 1
#: [nova] timeout for the tests: the fake cloud on a busy 2-core machine can take tens of seconds
SLOW = 120
#: one poll of a server's status: a cloud that has not answered in this long is asked for its
#: threads' stacks (into its nova.log) and asked again, until the wait's own limit
POLL_TIMEOUT = 30.0
#: the fake clouds running now (their pids), for :func:`dump_stacks`
_RUNNING: set[int] = set()


def unavailable(why: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"real Nova required under CI=true: {why}", pytrace=False)
    pytest.skip(
        f"no real Nova: {why} (python3 -m venv .nova-venv && "
        ".nova-venv/bin/pip install -r tests/nova-requirements.txt -c tests/nova-constraints.txt)"
    )


def nova_python() -> Path:
    chosen = os.environ.get("NOVA_TEST_PYTHON")
    exe = Path(chosen) if chosen else ROOT / ".nova-venv" / "bin" / "python"
    if not exe.exists():
        unavailable(f"{exe} not found")
    return exe


@dataclass
class Cloud:
    compute: str
    placement: str

    def connect(self, token: str = "admin") -> Any:
        from kronos.adapters.config import NovaConfig, Secret
        from kronos.adapters.nova import connect

        return connect(
            NovaConfig(
                auth_type="admin_token",
                token=Secret(token),
                compute_endpoint_override=self.compute,
                placement_endpoint_override=self.placement,
                timeout=SLOW,
            )
        )

    def conf(
        self, token: str = "admin", compute: str | None = None, section: str = "nova", **nova: object
    ) -> str:
        """The [nova] section of a kronos.conf for this cloud (``compute``: e.g. a proxy in front;
        ``section``: e.g. ``nova:alpha``, one cloud of a federation)."""
        nova.setdefault("timeout", SLOW)
        return (
            f"[{section}]\nauth_type = admin_token\n"
            f"token = {token}\ncompute_endpoint_override = {compute or self.compute}\n"
            f"placement_endpoint_override = {self.placement}\n"
            + "".join(f"{k} = {v}\n" for k, v in nova.items())
        )


@contextmanager
def serve(
    hosts: Sequence[str], workdir: Path, limit: float = 120.0, migration_delay: float = 0.0
) -> Iterator[Cloud]:
    """``migration_delay``: seconds every live migration takes (instant by default)."""
    exe = nova_python()
    tmp = workdir / "tmp"
    tmp.mkdir(exist_ok=True)
    log = workdir / "nova.log"
    env = {
        **os.environ,
        "OS_NOVA_DISABLE_EVENTLET_PATCHING": "1",
        "TMPDIR": str(tmp),
        "KRONOS_TEST_MIGRATION_DELAY": str(migration_delay),
    }
    with log.open("w") as err:
        proc = subprocess.Popen(
            [str(exe), str(ROOT / "tests" / "nova_cloud.py"), *hosts],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            env=env,
            cwd=workdir,
            text=True,
        )
    assert proc.stdout is not None and proc.stdin is not None
    line = ""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and proc.poll() is None:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            line = proc.stdout.readline()
            if line.startswith("READY ") or not line:
                break
    if not line.startswith("READY "):
        proc.kill()
        proc.wait()
        unavailable(f"nova_cloud.py did not become ready: {log.read_text()[-1500:]}")
    _, compute, placement = line.split()
    _RUNNING.add(proc.pid)
    try:
        yield Cloud(compute, placement)
    finally:
        _RUNNING.discard(proc.pid)
        proc.stdin.close()  # the cloud exits when its stdin closes
        proc.stdout.close()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def serve_all(clouds: Sequence[Sequence[str]], workdir: Path, limit: float = 120.0) -> Iterator[list[Cloud]]:
    """Several clouds, each its own Nova and Placement (``clouds``: the hosts of each), started
    at once rather than one after the other; all stop on exit. A cloud that cannot start skips or
    fails the caller as :func:`serve` does."""
    import threading

    ready: list[Cloud | BaseException | None] = [None] * len(clouds)
    started = [threading.Event() for _ in clouds]
    leave = threading.Event()

    def run(i: int, hosts: Sequence[str]) -> None:
        folder = workdir / f"cloud-{i}"
        folder.mkdir(exist_ok=True)
        try:
            with serve(hosts, folder, limit) as cloud:
                ready[i] = cloud
                started[i].set()
                leave.wait()
        except BaseException as exc:  # pytest's skip and fail are BaseExceptions: hand them over
            ready[i] = exc
            started[i].set()

    threads = [threading.Thread(target=run, args=(i, h), daemon=True) for i, h in enumerate(clouds)]
    for t in threads:
        t.start()
    try:
        for event in started:
            event.wait()
        for r in ready:
            if isinstance(r, BaseException):
                raise r
        yield [r for r in ready if isinstance(r, Cloud)]
    finally:
        leave.set()
        for t in threads:
            t.join(timeout=30)


# -- building a world through the API ---------------------------------------------------------------
def dump_stacks() -> None:
    """Every running fake cloud writes its threads' stacks to its nova.log (SIGUSR1)."""
    for pid in list(_RUNNING):
        try:
            os.kill(pid, signal.SIGUSR1)
        except ProcessLookupError:
            _RUNNING.discard(pid)


def call(
    conn: Any,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    mv: str = MV,
    timeout: float | None = None,
) -> Any:
    extra = {} if timeout is None else {"timeout": timeout}
    resp = getattr(conn.compute, method)(path, json=body, microversion=mv, raise_exc=False, **extra)
    if resp.status_code >= 400:
        raise AssertionError(f"{method.upper()} {path}: HTTP {resp.status_code}: {resp.text[:400]}")
    return resp.json() if resp.content else None


def flavor(
    conn: Any, name: str, vcpus: int, ram: int, disk: int, extra_specs: dict[str, str] | None = None
) -> str:
    fid = call(
        conn, "post", "/flavors", {"flavor": {"name": name, "vcpus": vcpus, "ram": ram, "disk": disk}}
    )["flavor"]["id"]
    if extra_specs:
        call(conn, "post", f"/flavors/{fid}/os-extra_specs", {"extra_specs": extra_specs})
    return str(fid)


def aggregate(conn: Any, name: str, hosts: Sequence[str], az: str | None = None, **metadata: str) -> int:
    agg = call(conn, "post", "/os-aggregates", {"aggregate": {"name": name, "availability_zone": az}})
    aid = agg["aggregate"]["id"]
    for h in hosts:
        call(conn, "post", f"/os-aggregates/{aid}/action", {"add_host": {"host": h}})
    if metadata:
        call(conn, "post", f"/os-aggregates/{aid}/action", {"set_metadata": {"metadata": metadata}})
    return int(aid)


def server_group(conn: Any, name: str, policy: str, rules: dict[str, int] | None = None) -> str:
    body: dict[str, Any] = {"name": name, "policy": policy}
    if rules:
        body["rules"] = rules
    return str(call(conn, "post", "/os-server-groups", {"server_group": body})["server_group"]["id"])


@dataclass
class Boot:
    name: str
    flavor: str
    host: str | None = None
    group: str | None = None
    tags: tuple[str, ...] = ()
    metadata: dict[str, str] | None = None
    az: str | None = None
    image: str = IMAGE
    #: Nova's ``networks``: "none", "auto" or [{"uuid": ...}]
    networks: Any = "none"
    #: boot from this volume (block_device_mapping_v2, boot_index 0) instead of the image
    volume: str | None = None
    user_data: str | None = None  # base64


def boot(conn: Any, boots: Sequence[Boot], limit: float = 120.0) -> dict[str, str]:
    """Boot every server (at most BOOTS_IN_FLIGHT at a time); name → id once all are ACTIVE."""
    ids: dict[str, str] = {}
    pending = list(boots)
    while pending:
        batch, pending = pending[:BOOTS_IN_FLIGHT], pending[BOOTS_IN_FLIGHT:]
        for b in batch:
            server: dict[str, Any] = {
                "name": b.name,
                "imageRef": "" if b.volume else b.image,
                "flavorRef": b.flavor,
                "networks": b.networks,
                "tags": list(b.tags),
                "metadata": b.metadata or {},
            }
            if b.volume:
                server["block_device_mapping_v2"] = [
                    {"uuid": b.volume, "source_type": "volume", "destination_type": "volume", "boot_index": 0}
                ]
            if b.user_data:
                server["user_data"] = b.user_data
            if b.host:
                server["host"] = b.host
            if b.az:
                server["availability_zone"] = b.az
            body: dict[str, Any] = {"server": server}
            if b.group:
                body["os:scheduler_hints"] = {"group": b.group}
            ids[b.name] = call(conn, "post", "/servers", body)["server"]["id"]
        for b in batch:
            wait_status(conn, ids[b.name], "ACTIVE", limit)
    return ids


def wait_status(conn: Any, server_id: str, status: str, limit: float = 120.0) -> dict[str, Any]:
    from keystoneauth1.exceptions import ConnectTimeout

    deadline = time.monotonic() + limit
    while True:
        try:  # a GET may be asked again: a stalled answer costs POLL_TIMEOUT, not the whole limit
            s = call(conn, "get", f"/servers/{server_id}", timeout=POLL_TIMEOUT)["server"]
        except ConnectTimeout:
            dump_stacks()
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"the cloud did not answer GET /servers/{server_id} for {limit}s "
                    "(every thread's stack is in its nova.log)"
                ) from None
            continue
        if s["status"] == status and not s.get("OS-EXT-STS:task_state"):
            return dict(s)
        if s["status"] == "ERROR" and status != "ERROR":
            raise AssertionError(f"server {server_id} went to ERROR: {s.get('fault')}")
        if time.monotonic() > deadline:
            raise AssertionError(f"server {server_id} not {status} after {limit}s: {s['status']}")
        time.sleep(0.25)  # each poll is an API call the fake cloud serves among the boots


if __name__ == "__main__":  # manual: python -m tests.nova_server cmp-1 cmp-2
    with serve(sys.argv[1:] or ["cmp-1"], Path.cwd()) as cloud:
        print(cloud)
        input("serving; press Enter to stop ")
