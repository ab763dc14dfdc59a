from __future__ import annotations

from pathlib import Path

import pytest

import kronos

CASES = {
    "50x5000": {"hosts": 50, "vms": 5000, "groups": 100, "seed": 42},
    "200x20000-het-4agg": {
        "hosts": 200,
        "vms": 20000,
        "groups": 100,
        "seed": 42,
        "heterogeneous": True,
        "aggregates": 4,
    },
    "1000x100000": {"hosts": 1000, "vms": 100000, "groups": 100, "seed": 42},
    # FORMATS §4: two NUMA cells a host, a fifth of the VMs pinned (PCPU) on one or two of them
    "1000x100000-numa": {"hosts": 1000, "vms": 100000, "groups": 100, "seed": 42, "numa": 2, "pinned": 0.2},
    # pack: a low-density cloud (a third full) that consolidation can shrink
    # (few pinned VMs: with the defaults nearly every host holds one that may not move)
    "pack-50x5000": {
        "hosts": 50,
        "vms": 5000,
        "groups": 20,
        "seed": 42,
        "mode": "pack",
        "fill": 0.35,
        "unmovable": 0.0,
    },
    "pack-1000x100000": {
        "hosts": 1000,
        "vms": 100000,
        "groups": 200,
        "seed": 42,
        "mode": "pack",
        "fill": 0.35,
        "unmovable": 0.0,
    },
    # evacuate: one failed host (about 100 VMs) in the big cloud
    "evac-1000x100000": {"hosts": 1000, "vms": 100000, "groups": 100, "seed": 42, "down": 1},
}
BUDGETS = {"50x5000": 20, "200x20000-het-4agg": 20, "1000x100000": 50, "1000x100000-numa": 50}


@pytest.fixture(scope="session")
def snapshot_file(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    cache: dict[str, Path] = {}

    def get(case: str) -> Path:
        if case not in cache:
            path = tmp_path_factory.mktemp("bench") / f"{case}.json"
            kronos.dump(kronos.generate(**CASES[case]), path)  # type: ignore[arg-type]
            cache[case] = path
        return cache[case]

    return get
