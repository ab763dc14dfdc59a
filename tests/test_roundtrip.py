"""load → dump → load gives equal objects, in JSON and YAML, for all three documents."""

from __future__ import annotations

import io
import os
import stat
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import kronos
from kronos.core.convert import snapshot_digest

names = st.text(alphabet="abcdefghij-0123456789", min_size=1, max_size=8)
unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
size = st.floats(min_value=0.0, max_value=1e6, allow_nan=False)
times = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC))


@st.composite
def snapshots(draw: st.DrawFn) -> kronos.Snapshot:
    pols = draw(st.lists(names, min_size=1, max_size=3, unique=True))
    hosts = draw(st.lists(names, min_size=1, max_size=5, unique=True))
    host_objs = tuple(
        kronos.Host(
            name=h,
            capacity=kronos.Capacity(draw(size), draw(size), draw(size)),
            enabled=draw(st.booleans()),
            up=draw(st.booleans()),
            scores={p: draw(unit) for p in pols},
            score_capacity=draw(st.dictionaries(st.sampled_from(pols), st.floats(1, 1e12))),
            cost_per_hour=draw(st.none() | st.floats(0, 10)),
        )
        for h in hosts
    )
    vms = tuple(
        kronos.VM(
            id=f"vm-{i}",
            host=draw(st.sampled_from(hosts)),
            flavor=kronos.Flavor(
                draw(names),
                draw(size),
                draw(size),
                draw(size),
                draw(st.dictionaries(names, names, max_size=2)),
            ),
            name=draw(st.none() | names),
            status=draw(st.sampled_from(["ACTIVE", "SHUTOFF", "ERROR"])),
            task_state=draw(st.none() | st.just("migrating")),
            weights=draw(st.dictionaries(st.sampled_from(pols), unit)),
            tags=tuple(draw(st.lists(names, max_size=2))),
            migratable=draw(st.booleans()),
        )
        for i in range(draw(st.integers(0, 6)))
    )
    groups = tuple(
        kronos.ServerGroup(
            id=f"g{i}",
            policy=draw(
                st.sampled_from(["affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity"])
            ),
            members=(v.id,),
            rules=draw(st.sampled_from([{}, {"max_server_per_host": 2}])),
        )
        for i, v in enumerate(vms[:2])
    )
    return kronos.Snapshot(
        taken_at=draw(times),
        policies=tuple(
            kronos.Policy(
                name=p,
                weight=1.0 / len(pols),
                threshold=draw(unit),
                max_migrations_per_cycle=draw(st.none() | st.integers(0, 9)),
            )
            for p in pols
        ),
        aggregates=(kronos.Aggregate("agg", tuple(hosts[:2]), {"availability_zone": "az1"}),),
        hosts=host_objs,
        vms=vms,
        server_groups=groups,
    )


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
@given(snap=snapshots())
def test_snapshot_roundtrip(
    snap: kronos.Snapshot, suffix: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = tmp_path_factory.mktemp("rt") / f"s{suffix}"
    kronos.dump(snap, path)
    again = kronos.load_snapshot(path)
    assert again == snap
    assert snapshot_digest(again) == snapshot_digest(snap)


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_plan_and_state_roundtrip(tmp_path: Path, small: kronos.Snapshot, suffix: str) -> None:
    plan = kronos.plan(small, budget=4)
    assert plan.steps
    kronos.dump(plan, tmp_path / f"p{suffix}")
    assert kronos.load_plan(tmp_path / f"p{suffix}") == plan
    now = small.taken_at
    state = kronos.next_state(None, plan, now=now)
    state = kronos.State(
        aggregate_cooldown_until=state.aggregate_cooldown_until,
        instance_cooldown_until=state.instance_cooldown_until,
        quarantined_until={"x": None, "y": now + timedelta(hours=1)},
        results=(kronos.Result("x", "MigrationFailed", now, "boom"),),
    )
    kronos.dump(state, tmp_path / f"st{suffix}")
    assert kronos.load_state(tmp_path / f"st{suffix}") == state


def test_dump_to_stream_and_load_from_stream(small: kronos.Snapshot) -> None:
    buf = io.StringIO()
    kronos.dump(small, buf)
    assert kronos.load_snapshot(io.StringIO(buf.getvalue())) == small


def test_atomic_write_leaves_old_file_on_failure(tmp_path: Path, small: kronos.Snapshot) -> None:
    target = tmp_path / "plan.json"
    target.write_text("old")

    class Boom:
        pass

    with pytest.raises(Exception):  # noqa: B017 - any failure while rendering
        kronos.dump(Boom(), target)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["plan.json"]


def test_a_write_goes_through_a_symlink_and_keeps_the_files_mode(
    tmp_path: Path, small: kronos.Snapshot
) -> None:
    """Renaming over the path would replace the link with a file and reset the mode to 0644:
    the operator's link and a private file's 0600 must survive a write."""
    target = tmp_path / "real.json"
    target.write_text("old")
    target.chmod(0o600)
    link = tmp_path / "link.json"
    link.symlink_to(target.name)
    kronos.dump(small, link)
    assert link.is_symlink()
    assert kronos.load_snapshot(target) == small
    assert target.stat().st_mode & 0o777 == 0o600


def test_a_write_to_a_pipe_goes_into_it(tmp_path: Path, small: kronos.Snapshot) -> None:
    """``-o /dev/null`` or a FIFO: a device or a pipe is written into, never replaced by a file."""
    fifo = tmp_path / "plan.fifo"
    os.mkfifo(fifo)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()), daemon=True)
    reader.start()
    kronos.dump(small, fifo)
    reader.join(timeout=10)
    assert got, "the reader of the pipe got nothing: the write went elsewhere"
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert kronos.load_snapshot(io.StringIO(got[0])) == small


def test_generated_snapshot_roundtrips_through_yaml(tmp_path: Path) -> None:
    snap = kronos.generate(hosts=6, vms=60, groups=4, seed=11, heterogeneous=True, down=1)
    kronos.dump(snap, tmp_path / "s.yaml")
    assert kronos.load_snapshot(tmp_path / "s.yaml") == snap


def test_yaml_documents_read_the_same_in_pyyaml(small: kronos.Snapshot, tmp_path: Path) -> None:
    """Written as YAML 1.2, a plan's `min_improvement: 1e-06` was a string to PyYAML (YAML 1.1,
    Ansible's reader) and a VM named `yes` a boolean; every reader now gets what JSON says."""
    import json

    import attrs
    import yaml as pyyaml

    from kronos.files import render

    snap = attrs.evolve(small, vms=(attrs.evolve(small.vms[0], name="yes"), *small.vms[1:]))
    plan = kronos.plan(snap)
    for document in (snap, plan):
        text = render(document, yaml=True)
        assert pyyaml.safe_load(text) == json.loads(render(document)), text[:300]
    kronos.dump(snap, tmp_path / "s.yaml")
    assert kronos.load_snapshot(tmp_path / "s.yaml") == snap  # and Kronos reads what it wrote
