"""Engines sharing a cloud through a real etcd (issue 22): who owns which aggregate, locks,
the cloud-wide migration slots, the shared state, and what an outage does.

One etcd for the module (tests/etcd_server.py); each test its own group, so
members of one test never see another's.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

import kronos
from kronos.adapters.config import CoordinationConfig, load_config
from kronos.adapters.coordination import Alone, Group, connect, probe, status
from kronos.errors import ConfigError, TemporaryFailure
from kronos.testing import DEFAULT_TAKEN_AT
from tests.conftest import ROOT, kronos_cli
from tests.etcd_server import Etcd

AGGREGATES = [f"agg-{i:02d}" for i in range(12)]
#: the etcd lease time of these tests' members (etcd's own minimum is about 2 s)
TIMEOUT = 3.0


def _config(etcd: Etcd, group: str, member: str) -> CoordinationConfig:
    return CoordinationConfig(
        backend_url=etcd.backend_url, member_id=member, group=group, heartbeat_timeout=TIMEOUT
    )


def _owners(groups: list[Group]) -> dict[str, list[str]]:
    return {agg: [g.member for g in groups if g.owns(agg)] for agg in AGGREGATES}


def _settle(groups: list[Group], want: int, deadline: float = 15.0) -> None:
    """Until every member sees ``want`` members."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if all(len(g.members()) == want for g in groups):
            return
        time.sleep(0.2)
    raise AssertionError(f"members never settled at {want}: {[g.members() for g in groups]}")


def test_without_a_backend_one_engine_owns_everything() -> None:
    alone = connect(CoordinationConfig())
    assert isinstance(alone, Alone)
    assert all(alone.owns(a) for a in AGGREGATES) and alone.healthy("agg-00")
    with alone.hold("agg-00") as held, alone.slot(threading.Event()) as slot:
        assert held and slot


def test_three_engines_divide_the_aggregates_and_a_leaver_s_are_taken_over(etcd: Etcd) -> None:
    groups = [Group(_config(etcd, "divide", m)) for m in ("a", "b", "c")]
    try:
        _settle(groups, 3)
        owners = _owners(groups)
        assert all(len(o) == 1 for o in owners.values()), owners
        counts = {g.member: sum(o == [g.member] for o in owners.values()) for g in groups}
        assert all(counts[m] >= 1 for m in counts), counts  # 12 aggregates over 3: nobody idle
        for agg, (member,) in owners.items():  # every member agrees on every owner
            assert all(g.owner(agg) == member for g in groups)
        seen = status(_config(etcd, "divide", "observer"), tuple(AGGREGATES))  # kronos status
        assert seen.members == ("a", "b", "c")
        assert seen.owners == {agg: member for agg, (member,) in owners.items()}
        groups[2].close()
        rest = groups[:2]
        _settle(rest, 2)
        after = _owners(rest)
        assert all(len(o) == 1 for o in after.values()), after
        for agg, (member,) in owners.items():  # consistent hashing: only c's aggregates moved
            if member != "c":
                assert after[agg] == [member]
    finally:
        for g in groups[:2]:
            g.close()


MEMBER = """
import sys, time
from kronos.adapters.config import CoordinationConfig, load_config
from kronos.adapters.coordination import Group
g = Group(CoordinationConfig(backend_url=sys.argv[1], member_id="doomed", group="killed", heartbeat_timeout=3))
with g.hold("agg-00") as held:
    print("holding" if held else "not held", flush=True)
    time.sleep(600)
"""


def test_a_killed_engine_s_aggregates_and_locks_pass_on_within_the_heartbeat_timeout(etcd: Etcd) -> None:
    doomed = subprocess.Popen(
        [sys.executable, "-c", MEMBER, etcd.backend_url], stdout=subprocess.PIPE, text=True
    )
    survivor = Group(_config(etcd, "killed", "survivor"))
    try:
        assert doomed.stdout is not None and doomed.stdout.readline().strip() == "holding"
        _settle([survivor], 2)
        with survivor.hold("agg-00") as held:
            assert not held  # the doomed engine's lock
        doomed.send_signal(signal.SIGKILL)
        doomed.wait()
        killed_at = time.monotonic()
        while not all(survivor.owns(a) for a in AGGREGATES):
            assert time.monotonic() - killed_at < 2 * TIMEOUT + 5, survivor.members()
            time.sleep(0.2)
        while True:
            with survivor.hold("agg-00") as held:
                if held:
                    break
            assert time.monotonic() - killed_at < 2 * TIMEOUT + 5
            time.sleep(0.2)
        took = time.monotonic() - killed_at
        assert took < 2 * TIMEOUT + 5, took
    finally:
        doomed.kill()
        doomed.wait()
        if doomed.stdout is not None:
            doomed.stdout.close()
        survivor.close()


def test_an_aggregate_lock_is_held_by_one_engine_at_a_time(etcd: Etcd) -> None:
    a, b = Group(_config(etcd, "locks", "a")), Group(_config(etcd, "locks", "b"))
    try:
        with a.hold("agg-01") as first, a.slot(threading.Event()):
            assert first and a.healthy("agg-01")
            assert status(_config(etcd, "locks", "observer"), ("agg-01",)).locked == ("agg-01",)
            with b.hold("agg-01") as second:
                assert not second and not b.healthy("agg-01")
        with b.hold("agg-01") as again:
            assert again and b.healthy("agg-01")
        assert not b.healthy("agg-01")  # released: no longer ours to migrate in
    finally:
        a.close()
        b.close()


LIMIT_HERE = 2


def test_the_cloud_wide_limit_counts_migrations_across_engines(etcd: Etcd) -> None:
    groups = [Group(_config(etcd, "slots", m), cloud_limit=LIMIT_HERE) for m in ("a", "b", "c")]
    stop = threading.Event()
    inside, most, lock = 0, 0, threading.Lock()

    def migrate(g: Group) -> None:
        nonlocal inside, most
        for _ in range(3):
            with g.slot(stop) as got:
                assert got
                with lock:
                    inside += 1
                    most = max(most, inside)
                time.sleep(0.3)
                with lock:
                    inside -= 1

    try:
        threads = [threading.Thread(target=migrate, args=(g,)) for g in groups for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert most == 2  # six would-be migrations at once, two slots
        with groups[0].slot(stop) as a, groups[1].slot(stop) as b:
            assert a and b
            assert status(_config(etcd, "slots", "observer"), ()).migrations_in_flight == 2
            stop.set()
            with groups[2].slot(stop) as c:
                assert not c  # none free and told to stop: gives up, starts nothing
        # a migration Nova still runs for an engine that died holds no slot, but counts
        orphan, waited = threading.Event(), []

        def one_running() -> int:
            waited.append(1)
            if len(waited) >= 3:
                orphan.set()  # give up after a few looks: nothing would ever free it
            return LIMIT_HERE

        with groups[0].slot(orphan, busy=one_running) as d:
            assert not d and len(waited) >= 3
        with groups[0].slot(threading.Event(), busy=lambda: LIMIT_HERE - 1) as e:
            assert e
    finally:
        for g in groups:
            g.close()


def test_the_shared_state_takes_every_engine_s_writes(etcd: Etcd) -> None:
    a, b = Group(_config(etcd, "state", "a")), Group(_config(etcd, "state", "b"))
    try:
        stores = [a.state_store(), b.state_store()]
        assert stores[0].load() is None

        def cool(store_index: int, k: int) -> None:
            stores[store_index].update(
                lambda s: kronos.record_result(
                    s, f"vm-{store_index}-{k}", "Succeeded", at=DEFAULT_TAKEN_AT,
                    instance_cooldown=600, instance_quarantine_seconds=3600,
                )
            )  # fmt: skip

        threads = [threading.Thread(target=cool, args=(i, k)) for i in (0, 1) for k in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        state = stores[1].load()
        assert state is not None
        assert set(state.instance_cooldown_until) == {f"vm-{i}-{k}" for i in (0, 1) for k in range(5)}
    finally:
        a.close()
        b.close()


def test_an_etcd_outage_stops_new_migrations_and_they_resume_after_it(etcd: Etcd, tmp_path: Path) -> None:
    g = Group(_config(etcd, "outage", "a"), cloud_limit=1)
    try:
        store = g.state_store()
        with g.hold("agg-02") as held:
            assert held and g.healthy("agg-02")
            etcd.stop()
            try:
                assert not g.healthy("agg-02") and not g.healthy()
                assert not g.owns("agg-02")
                with pytest.raises(TemporaryFailure, match="cannot read the shared state"):
                    store.load()
            finally:
                etcd.start()
        end = time.monotonic() + 20
        while not (g.healthy() and g.owns("agg-02")):
            assert time.monotonic() < end, "never recovered"
            time.sleep(0.3)
        with g.hold("agg-02") as held:
            assert held and g.healthy("agg-02")
    finally:
        g.close()


def test_kronos_status_and_the_check_config_probe_read_the_group(etcd: Etcd, tmp_path: Path) -> None:
    (tmp_path / "policies.yaml").write_text((ROOT / "etc" / "kronos" / "policies.yaml.sample").read_text())
    conf = tmp_path / "kronos.conf"
    conf.write_text(
        "[engine]\naggregates = agg-00, agg-01, agg-02\n"
        f"[coordination]\nbackend_url = {etcd.backend_url}\ngroup = shown\n"
        "[executor]\nmax_concurrent_migrations_cloud = 3\n"
    )
    a, b = Group(_config(etcd, "shown", "a")), Group(_config(etcd, "shown", "b"))
    try:
        _settle([a, b], 2)
        with a.hold("agg-01"):
            rows = json.loads(kronos_cli("status", "--config", str(conf), "-f", "json").stdout)
            text = kronos_cli("status", "--config", str(conf)).stdout
        assert [(r["aggregate"], r["owner"], r["acting"]) for r in rows] == [
            (agg, a.owner(agg), agg == "agg-01") for agg in ("agg-00", "agg-01", "agg-02")
        ]
        assert "group 'shown': 2 member(s): a, b" in text and "in flight cloud-wide: 0 of 3" in text
        said = probe(CoordinationConfig(backend_url=etcd.backend_url, group="shown"))
        assert said.endswith("group 'shown' has 2 member(s)")
        assert a.members() == ["a", "b"]  # the probe joined a group of its own, not this one
    finally:
        a.close()
        b.close()
    alone = tmp_path / "alone.conf"
    alone.write_text("[engine]\naggregates = agg-00\n")
    out = kronos_cli("status", "--config", str(alone))
    assert out.returncode == 78 and "[coordination] backend_url is empty" in out.stderr


def test_a_cloud_wide_limit_without_a_backend_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "policies.yaml").write_text((ROOT / "etc" / "kronos" / "policies.yaml.sample").read_text())
    conf = tmp_path / "kronos.conf"
    conf.write_text("[engine]\naggregates = a\n[executor]\nmax_concurrent_migrations_cloud = 2\n")
    with pytest.raises(
        ConfigError, match="max_concurrent_migrations_cloud needs \\[coordination\\] backend_url"
    ):
        load_config(str(conf))


def test_kronos_state_reads_and_changes_the_engines_shared_state_without_joining(
    etcd: Etcd, tmp_path: Path
) -> None:
    conf = tmp_path / "kronos.conf"
    conf.write_text(f"[coordination]\nbackend_url = {etcd.backend_url}\ngroup = by-hand\n")
    engine = Group(_config(etcd, "by-hand", "engine-a"))
    try:
        store = engine.state_store()
        held = {"at": DEFAULT_TAKEN_AT, "instance_quarantine_seconds": -1}
        store.update(lambda s: kronos.record_result(s, "vm-held", "MigrationFailed", **held))
        now = "2026-11-20T12:00:00Z"
        rows = json.loads(
            kronos_cli("state", "show", "--config", str(conf), "--now", now, "-f", "json").stdout
        )
        assert [(r["kind"], r["id"], r["until"]) for r in rows] == [("quarantine", "vm-held", None)]
        released = kronos_cli("state", "release", "--config", str(conf), "vm-held")
        assert released.returncode == 0, released.stderr
        after = store.load()
        assert after is not None and "vm-held" not in after.quarantined_until
        fed = kronos_cli("state", "record-result", "--config", str(conf), "--instance", "vm-new",
                         "--outcome", "Succeeded", "--at", now)  # fmt: skip
        assert fed.returncode == 0, fed.stderr
        cooled = store.load()
        assert cooled is not None and "vm-new" in cooled.instance_cooldown_until
        assert engine.members() == ["engine-a"]  # the commands never joined the engines' group
    finally:
        engine.close()


def test_kronos_state_with_a_config_and_no_backend_uses_the_engine_s_state_file(tmp_path: Path) -> None:
    """[engine] state_file beside the conf (not the working directory), with the engines' holds."""
    (tmp_path / "etc").mkdir()
    conf = tmp_path / "etc" / "kronos.conf"
    conf.write_text("[engine]\nstate_file = engine-state.json\ninstance_quarantine_seconds = 60\n")
    at = "2026-11-20T12:00:00Z"
    out = kronos_cli("state", "record-result", "--config", str(conf), "--instance", "vm-1",
                     "--outcome", "MigrationFailed", "--at", at)  # fmt: skip
    assert out.returncode == 0, out.stderr
    written = kronos.load_state(tmp_path / "etc" / "engine-state.json")
    assert written.quarantined_until["vm-1"] == datetime(2026, 11, 20, 12, 1, tzinfo=UTC)  # 60 s
    both = kronos_cli("state", "show", "--config", str(conf), "--state", str(tmp_path / "x.json"))
    assert both.returncode == 64 and "give one" in both.stderr


def _closed_port() -> int:
    """A loopback port nothing listens on (bound for a moment by us, then let go)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_backend_is_a_temporary_failure_naming_the_url_and_the_reason(tmp_path: Path) -> None:
    """etcd3gw raises ConnectionFailedError() with an empty text: the message says its class and
    the refused connection behind it, and the URL without its password."""
    pytest.importorskip("etcd3gw")
    (tmp_path / "policies.yaml").write_text((ROOT / "etc" / "kronos" / "policies.yaml.sample").read_text())
    port = _closed_port()
    conf = tmp_path / "kronos.conf"
    conf.write_text(
        "[engine]\naggregates = agg-00\n"
        f"[coordination]\nbackend_url = etcd3+http://kronos:s3cret@127.0.0.1:{port}\n"
        "[nova]\nauth_type = admin_token\ntoken = t\n"  # run --once: a Nova it never reaches first
        f"compute_endpoint_override = http://127.0.0.1:{port}/v2.1\n"
    )
    said = f"[coordination] backend_url = 'etcd3+http://***@127.0.0.1:{port}'"
    for command, what in [
        (("status",), "cannot read group 'kronos'"),
        (("state", "show"), "cannot reach the backend"),
        (("state", "release", "vm-1"), "cannot reach the backend"),
        (("run", "--once"), "cannot join group 'kronos'"),
    ]:
        out = kronos_cli(*command, "--config", str(conf))
        assert out.returncode == 75, (command, out.stderr)
        assert f"{said}: {what}: ConnectionFailedError: Connection refused" in out.stderr, out.stderr
        assert "s3cret" not in out.stderr and "Traceback" not in out.stderr


def test_a_backend_url_no_driver_takes_is_a_config_error_when_built_by_hand() -> None:
    """load_config refuses it (tests/test_config.py); a CoordinationConfig built in code too."""
    pytest.importorskip("tooz")
    config = CoordinationConfig(backend_url="foo://x")
    with pytest.raises(ConfigError, match="backend_url = 'foo://x': no tooz driver for scheme 'foo'"):
        Group(config)
    with pytest.raises(ConfigError, match="no tooz driver for scheme 'foo'"):
        status(config, ())


def test_status_of_a_file_backend_no_engine_used_creates_nothing(tmp_path: Path) -> None:
    """tooz's file driver makes its folder when it connects: a read-only ``kronos status`` on a
    mistyped or unused folder made one. Once an engine has used the folder, status reads it."""
    folder = tmp_path / "coordination"
    config = CoordinationConfig(backend_url=f"file://{folder}", group="files", member_id="a")
    seen = status(config, ("agg-00",))
    assert (seen.members, seen.owners) == ((), {"agg-00": ""}) and not folder.exists()
    conf = tmp_path / "kronos.conf"  # and the shared state, which needs etcd, is refused first
    conf.write_text(f"[coordination]\nbackend_url = file://{folder}\ngroup = files\n")
    shown = kronos_cli("state", "show", "--config", str(conf))
    assert shown.returncode == 78 and "needs an etcd3+http(s) backend, not 'file://" in shown.stderr
    assert not folder.exists()
    engine = Group(config)
    try:
        deadline = time.monotonic() + 30
        while status(config, ("agg-00",)).members != ("a",):
            assert time.monotonic() < deadline, "the member never showed"
            time.sleep(0.2)
        assert status(config, ("agg-00",)).owners == {"agg-00": "a"} and folder.is_dir()
    finally:
        engine.close()
