"""Kronos's own cost of a Nova read and a recording, on a canned 1 000-host, 20 000-server cloud.

The canned answers (tests/canned_nova.py) take no time, so this measures what
Kronos adds on top of Nova's and Placement's response times: walking the
pages, parsing servers, building and checking the snapshot. The number of
calls (356 for 100 hosts in scope, 10 with a vGPU child) is asserted in tests/test_nova_faults.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.canned_nova import CannedCloud

from kronos.adapters.nova import NovaReader
from kronos.adapters.record import build_snapshot
from kronos.adapters.scores import PolicyReading
from kronos.core.model import Policy

AT = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


def test_read_and_build_1000_hosts_20000_servers(benchmark: Any) -> None:
    cloud = CannedCloud(hosts=1000, servers=20000)
    policy = Policy(name="cpu", mode="spread", weight=1.0, threshold=0.05)
    readings = {"cpu": PolicyReading(policy, {h: (0.1 + (i % 70) / 100,) for i, h in enumerate(cloud.hosts)})}

    def cycle() -> int:
        world = NovaReader(cloud).read(lambda a: True)
        snap = build_snapshot(world, [policy], readings, {}, AT)
        return len(snap.vms)

    assert benchmark.pedantic(cycle, rounds=5, iterations=1) == 20000
