"""Cooldown and quarantine: the state transitions and what the planner makes of them."""

from __future__ import annotations

import json
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import kronos
from kronos.errors import KronosIOError
from kronos.testing import DEFAULT_TAKEN_AT
from tests.conftest import ROOT, kronos_cli


@given(
    seed=st.integers(0, 10_000),
    picks=st.lists(st.integers(0, 10_000), max_size=20),
    minutes=st.integers(0, 120),
    outcome=st.sampled_from(["MigrationFailed", "MigrationTimeout", "PreFlightError", "Succeeded"]),
    mode=st.sampled_from(["spread", "pack"]),
)
def test_vms_in_cooldown_or_quarantine_never_move_until_expiry(
    seed: int, picks: list[int], minutes: int, outcome: str, mode: str, checker
) -> None:  # type: ignore[no-untyped-def]
    fill = 0.3 if mode == "pack" else 0.65
    snap = kronos.generate(hosts=8, vms=120, groups=4, seed=seed, mode=mode, fill=fill, unmovable=0.0)
    t0 = snap.taken_at
    state = None
    held = {snap.vms[i % len(snap.vms)].id for i in picks}
    for vid in sorted(held):
        state = kronos.record_result(state, vid, outcome, at=t0)
    now = t0 + timedelta(minutes=minutes)
    plan = kronos.plan(snap, budget="unlimited", state=state, now=now)
    moved = {s.instance for s in plan.steps}
    window = 3600 if outcome in ("MigrationFailed", "MigrationTimeout") else 900
    if minutes * 60 < window:
        assert not moved & held
    else:  # expired: ordinary VMs again, and pruned from the next state
        assert plan.steps == kronos.plan(snap, budget="unlimited").steps
        nxt = kronos.next_state(state, plan, now=now)
        assert nxt.quarantined_until == {} and nxt.instance_cooldown_until.keys() <= moved
    if state is not None and minutes == 0:  # check.py judges cooldowns at taken_at
        with tempfile.TemporaryDirectory() as d:
            kronos.dump(state, Path(d) / "state.json")
            checker(snap, plan, "--state", str(Path(d) / "state.json"))


def test_record_result_semantics() -> None:
    snap = kronos.generate(hosts=4, vms=10, groups=0, seed=1)
    t = snap.taken_at
    s = kronos.record_result(None, "a", "MigrationFailed", at=t, error="boom")
    assert s.quarantined_until == {"a": t + timedelta(hours=1)}
    s = kronos.record_result(s, "b", "MigrationTimeout", at=t, instance_quarantine_seconds=-1)
    assert s.quarantined_until["b"] is None
    s = kronos.record_result(s, "c", "PreFlightError", at=t)
    assert "c" not in s.quarantined_until and s.instance_cooldown_until["c"] == t + timedelta(seconds=900)
    assert [r.outcome for r in s.results] == ["MigrationFailed", "MigrationTimeout", "PreFlightError"]
    later = kronos.record_result(s, "d", "Succeeded", at=t + timedelta(days=1))
    assert set(later.quarantined_until) == {"b"}  # expired entries pruned, manual one kept
    assert set(later.instance_cooldown_until) == {"d"}
    assert "b" not in kronos.release(later, "b").quarantined_until
    with pytest.raises(kronos.errors.UsageError):
        kronos.record_result(s, "x", "Exploded", at=t)


def test_a_new_failure_never_shortens_a_quarantine() -> None:
    """A second failure wrote its own hour over a quarantine until released by hand (which then
    ended by itself) or over a longer one; the later end is kept, by hand the latest of all."""
    t = DEFAULT_TAKEN_AT
    by_hand = kronos.record_result(None, "a", "MigrationFailed", at=t, instance_quarantine_seconds=-1)
    again = kronos.record_result(by_hand, "a", "MigrationTimeout", at=t + timedelta(minutes=5))
    assert again.quarantined_until == {"a": None}
    long = kronos.record_result(None, "b", "MigrationFailed", at=t, instance_quarantine_seconds=86_400)
    short = kronos.record_result(long, "b", "MigrationFailed", at=t + timedelta(hours=1))
    assert short.quarantined_until == {"b": t + timedelta(days=1)}
    longer = kronos.record_result(
        short, "b", "MigrationFailed", at=t + timedelta(hours=2), instance_quarantine_seconds=90_000
    )
    assert longer.quarantined_until == {"b": t + timedelta(hours=2, seconds=90_000)}
    forever = kronos.record_result(longer, "b", "MigrationFailed", at=t, instance_quarantine_seconds=-1)
    assert forever.quarantined_until == {"b": None}
    assert [r.outcome for r in again.results] == ["MigrationFailed", "MigrationTimeout"]  # still recorded


def test_a_hold_recorded_over_already_says_so(tmp_path: Path) -> None:
    """record-result --at in the past printed "quarantined until <then>" for a hold that was
    over, which `state show` then did not list: the line says it is over."""
    state = str(tmp_path / "state.json")
    for vm, outcome, hold in (("vm-1", "MigrationFailed", "quarantined until 2020-01-01T01:00:00Z"),
                              ("vm-2", "PreFlightError", "in cooldown until 2020-01-01T00:15:00Z")):  # fmt: skip
        r = kronos_cli("state", "record-result", "--state", state, "--instance", vm, "--outcome", outcome,
                       "--at", "2020-01-01T00:00:00Z")  # fmt: skip
        assert r.returncode == 0 and r.stdout == f"{vm}: {outcome}; {hold} (over already)\n", (
            r.stdout + r.stderr
        )
    r = kronos_cli(
        "state", "record-result", "--state", state, "--instance", "vm-3", "--outcome", "MigrationFailed"
    )
    assert r.returncode == 0 and "quarantined until" in r.stdout and "over already" not in r.stdout, r.stdout


def test_state_commands(tmp_path: Path) -> None:
    st = tmp_path / "state.json"
    at = "--at=2026-11-21T10:00:00Z"
    assert (
        kronos_cli(
            "state",
            "record-result",
            "--state",
            str(st),
            "--instance",
            "vm-1",
            "--outcome",
            "MigrationFailed",
            at,
        ).returncode
        == 0
    )
    shown = kronos_cli("state", "show", "--state", str(st), "--now", "2026-11-21T10:30:00Z")
    assert "quarantine" in shown.stdout and "vm-1" in shown.stdout
    header, row = (line.split("|")[1:-1] for line in shown.stdout.splitlines()[1:4:2])
    assert [c.strip() for c in header] == ["kind", "id", "until"]  # the table `-f table` names
    assert [c.strip() for c in row] == ["quarantine", "vm-1", "2026-11-21T11:00:00Z"]
    assert kronos_cli("state", "release", "--state", str(st), "vm-1").returncode == 0
    assert kronos.load_state(st).quarantined_until == {}
    bad = kronos_cli("state", "release", "--state", str(st), "vm-1")
    assert bad.returncode == 64 and "neither quarantined" in bad.stderr


def test_a_cooldown_past_year_9999_ends_at_the_last_instant_a_document_can_say(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    import attrs

    from kronos.core.state import END_OF_TIME

    snap = kronos.generate(hosts=6, vms=60, groups=0, seed=1, skew=1.2)
    late = datetime(9999, 12, 31, 23, 59, 0, tzinfo=UTC)  # + 900 s of cooldown is past 9999
    snap = attrs.evolve(
        snap, taken_at=late, policies=tuple(attrs.evolve(p, threshold=0.0) for p in snap.policies)
    )
    plan = kronos.plan(snap, budget=2)
    state = kronos.next_state(None, plan, now=late)
    assert set(state.instance_cooldown_until.values()) == {END_OF_TIME}
    failed = kronos.record_result(state, plan.steps[0].instance, "MigrationFailed", at=late)
    assert failed.quarantined_until[plan.steps[0].instance] == END_OF_TIME
    kronos.dump(failed, tmp_path / "state.json")
    assert kronos.load_state(tmp_path / "state.json") == failed


def test_changes_by_hand_go_to_the_audit_log(tmp_path: Path) -> None:
    state, audit = tmp_path / "state.json", tmp_path / "audit.jsonl"
    failed = kronos_cli(
        "state", "record-result", "--state", str(state), "--instance", "vm-1", "--outcome", "MigrationFailed",
        "--error", "password=hunter2 rejected", "--audit-file", str(audit),
    )  # fmt: skip
    assert failed.returncode == 0, failed.stderr
    freed = kronos_cli(
        "state", "release", "--state", str(state), "vm-1", "--audit-file", str(audit), process=True
    )  # fmt: skip
    assert freed.returncode == 0, freed.stderr
    lines = [json.loads(x) for x in audit.read_text().splitlines()]
    assert [(x["event"], x["instance"]) for x in lines] == [("result_recorded", "vm-1"), ("released", "vm-1")]
    assert lines[0]["hold"] == "quarantine" and "hunter2" not in audit.read_text()
    assert lines[1]["who"]["pid"] != lines[0]["who"]["pid"]  # each line says which process acted


def _quarantine(instance: str, state: Path) -> tuple[str, ...]:
    """The command that quarantines ``instance`` in ``state`` (a failed migration by hand)."""
    return (
        "state",
        "record-result",
        "--state",
        str(state),
        "--instance",
        instance,
        "--outcome",
        "MigrationFailed",
    )


def test_release_in_a_state_whose_folder_is_not_there_is_66_as_show_says(tmp_path: Path) -> None:
    """`state show` said 66 "no such file, nor folder" and `state release` 64 "neither quarantined
    nor in cooldown" for the same mistyped path; a state not written yet holds nothing (64)."""
    gone = tmp_path / "gone" / "state.json"
    for command in (
        ("state", "show", "--state", str(gone)),
        ("state", "release", "--state", str(gone), "vm-1"),
    ):
        out = kronos_cli(*command)
        assert out.returncode == 66 and f"--state {gone}: no such file, nor folder" in out.stderr, out.stderr
    fresh = kronos_cli("state", "release", "--state", str(tmp_path / "state.json"), "vm-1")
    assert fresh.returncode == 64 and "no such file yet: no VM or aggregate is held" in fresh.stderr


def test_an_instance_with_a_control_character_is_refused_where_it_is_typed(tmp_path: Path) -> None:
    """``--instance "$(cat id)"`` from a CRLF file wrote 'vm\r' into the state, exit 0, and every
    command reading that state then failed (65); a state that holds one is still read."""
    state = tmp_path / "state.json"
    for command in (
        ("state", "record-result", "--state", str(state), "--instance", "vm-1\r", "--outcome", "Succeeded"),
        ("state", "release", "--state", str(state), "vm-1\t"),
    ):
        out = kronos_cli(*command)
        assert out.returncode == 64 and "must not hold a control character" in out.stderr, out.stderr
    assert not state.exists()
    state.write_text(json.dumps({"format": "kronos.state/1", "quarantined_until": {"vm\r": None},
                                 "results": [{"instance": "vm\r", "outcome": "Succeeded", "at": "2026-11-21T10:00:00Z"}]}))  # fmt: skip
    assert kronos_cli("state", "show", "--state", str(state)).returncode == 0


def test_an_audit_file_that_is_no_audit_log_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    """``--audit-file plan.json`` appended an event to the plan (exit 0), and the plan could not
    be read again; a log whose first event was cut by a kill is a log still."""
    state = tmp_path / "state.json"
    hold = _quarantine("vm-1", state)
    assert kronos_cli(*hold).returncode == 0
    held = state.read_text()
    plan = tmp_path / "plan.json"
    assert kronos_cli("plan", str(ROOT / "examples" / "snapshot.json"), "-o", str(plan)).returncode == 0
    compact = tmp_path / "compact.json"
    compact.write_text(json.dumps(json.loads(plan.read_text())) + "\n")
    for victim, what in ((plan, "no event"), (compact, "a kronos.plan/1 document")):
        before = victim.read_text()
        out = kronos_cli("state", "release", "--state", str(state), "vm-1", "--audit-file", str(victim))
        assert out.returncode == 65, out.stderr
        assert (
            f"--audit-file {str(victim)!r}: line 1 is {what}: an audit log has one JSON event" in out.stderr
        )
        assert victim.read_text() == before and state.read_text() == held
    cut = tmp_path / "audit.jsonl"
    cut.write_text('{"event": "released", "ts": "2026-')
    assert (
        kronos_cli("state", "release", "--state", str(state), "vm-1", "--audit-file", str(cut)).returncode
        == 0
    )
    assert json.loads(cut.read_text().splitlines()[1])["event"] == "released"


def test_an_audit_file_that_cannot_be_written_leaves_the_state_as_it_was(tmp_path: Path) -> None:
    """The state used to change first: the release was done, unlogged, and a retry said the VM
    was not held (64)."""
    state, folder = tmp_path / "state.json", tmp_path / "a-folder"
    folder.mkdir()
    failed = _quarantine("vm-1", state)
    refused = kronos_cli(*failed, "--audit-file", str(folder))
    assert refused.returncode == 74 and "--audit-file" in refused.stderr and not state.exists()
    assert kronos_cli(*failed).returncode == 0
    before = state.read_text()
    release = kronos_cli("state", "release", "--state", str(state), "vm-1", "--audit-file", str(folder))
    assert release.returncode == 74 and state.read_text() == before
    log = tmp_path / "audit.jsonl"  # a usage error is found before the audit log is made
    both = kronos_cli(
        "state", "release", "--state", str(state), "--config", str(state), "vm-1", "--audit-file", str(log)
    )
    assert both.returncode == 64 and not log.exists(), both.stderr


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full (every write: ENOSPC)")
def test_an_audit_log_that_fills_up_after_the_change_says_what_it_could_not_record(tmp_path: Path) -> None:
    """A full disk under the audit log was a traceback (70) that hid that the state had changed."""
    state = tmp_path / "state.json"
    full = kronos_cli(
        "state", "record-result", "--state", str(state), "--instance", "vm-1",
        "--outcome", "MigrationFailed", "--audit-file", "/dev/full",
    )  # fmt: skip
    assert full.returncode == 74, full.stderr
    assert "--audit-file '/dev/full': cannot append to it: No space left on device" in full.stderr
    assert "the state was changed all the same; unlogged: result_recorded instance=vm-1" in full.stderr
    assert "Traceback" not in full.stderr
    assert "vm-1" in kronos.load_state(str(state)).quarantined_until  # as the message says


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full (every write: ENOSPC)")
def test_a_results_log_that_fills_up_is_an_io_error_naming_it() -> None:
    from kronos.adapters.executor import StepResult
    from kronos.adapters.journal import Journal

    journal = Journal("/dev/full", None, {"instance_cooldown": 900, "instance_quarantine_seconds": -1})
    t = "2026-11-21T10:00:00.000000Z"
    with pytest.raises(KronosIOError, match="--results '/dev/full': cannot append to it: No space left"):
        journal(StepResult(1, 1, "vm-1", "live-migrate", "a", "b", "Succeeded", 1, t, t, 1.0, None))
    journal.close()  # the line it could not write is not tried again


def test_an_audit_log_may_not_be_the_state_or_the_configuration(tmp_path: Path) -> None:
    """``--audit-file`` naming the state file appended a JSON line to it: a broken state."""
    state, conf = tmp_path / "state.json", tmp_path / "kronos.conf"
    conf.write_text(f"[engine]\naggregates = a\nstate_file = {state}\n")
    kronos.dump(kronos.record_result(None, "vm-1", "MigrationFailed", at=DEFAULT_TAKEN_AT), str(state))
    before = state.read_text()
    for named, audit, said in (
        (("--state", str(state)), state, f"the state {state}"),
        (("--config", str(conf)), conf, f"--config {conf}"),
        (("--config", str(conf)), state, f"the state {state}"),  # the one kronos.conf names
    ):
        out = kronos_cli("state", "release", "vm-1", *named, "--audit-file", str(audit))
        assert out.returncode == 64, out.stderr
        assert f"--audit-file {audit}: the same file as {said}" in out.stderr, out.stderr
    assert state.read_text() == before
    conf.write_text(f"[engine]\naggregates = a\naudit_file = {state}\n")
    audited = kronos_cli(
        "execute", str(ROOT / "examples" / "plan.json"), "--config", str(conf), "--state", str(state)
    )
    assert (
        audited.returncode == 64
        and f"[engine] audit_file {state}: the same file as --state" in audited.stderr
    )
    assert state.read_text() == before


def test_record_result_refuses_a_set_it_would_not_read(tmp_path: Path) -> None:
    """Only the rest and hold times shape a recorded outcome: --set solver=exact was ignored."""
    proc = kronos_cli(
        "state", "record-result", "--state", str(tmp_path / "s.json"), "--instance", "vm-1",
        "--outcome", "Succeeded", "--set", "solver=exact",
    )  # fmt: skip
    assert proc.returncode == 64 and "reads only instance_cooldown" in proc.stderr, proc.stderr
    assert not (tmp_path / "s.json").exists()


def test_an_engine_reads_its_state_file_again_so_a_release_by_hand_holds(tmp_path: Path) -> None:
    """A running engine's journal re-reads the file each cycle: its next write keeps the release."""
    from kronos.adapters.journal import Journal

    path = tmp_path / "state.json"
    kronos.dump(kronos.record_result(None, "vm-q", "MigrationFailed", at=DEFAULT_TAKEN_AT), str(path))
    journal = Journal(None, path, {"instance_cooldown": 900, "instance_quarantine_seconds": -1})
    assert journal.state is not None and "vm-q" in journal.state.quarantined_until
    out = kronos_cli("state", "release", "--state", str(path), "vm-q")
    assert out.returncode == 0, out.stderr
    journal.refresh()  # the engine's cycle start
    assert journal.state is not None and "vm-q" not in journal.state.quarantined_until


def test_state_show_says_a_missing_file_and_refuses_a_missing_folder(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A mistyped --state read as "nothing held" in silence: the operator saw a clean state."""
    typo = tmp_path / "stat.json"
    shown = kronos_cli("state", "show", "--state", str(typo))
    assert shown.returncode == 0 and "nothing in cooldown or quarantine" in shown.stdout
    assert f"--state {typo}: no such file yet: no VM or aggregate is held" in shown.stderr
    assert not typo.exists()  # shown, not made
    gone = kronos_cli("state", "show", "--state", str(tmp_path / "nodir" / "state.json"))
    assert gone.returncode == 66 and "no such file, nor folder" in gone.stderr
    conf = tmp_path / "kronos.conf"  # the state the configuration's engines keep, not there yet
    conf.write_text("[engine]\naggregates = a\nstate_file = nodir/state.json\n")
    kept = kronos_cli("state", "show", "--config", str(conf))
    assert kept.returncode == 66 and "[engine] state_file" in kept.stderr
