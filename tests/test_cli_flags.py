"""Command-line flags that crashed (exit 70) or were silently accepted: now clean usage and I/O errors.

Each case is a command line from the issue-17 sweep (or of the same kind found
across every command) run through the real ``kronos`` entry point; each must
exit with its sysexits code, name the flag and the value, print no traceback,
and — where a network call used to come first — make none.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

import kronos
from tests.conftest import ROOT, kronos_cli
from tests.fault_proxy import FaultProxy, proxied

EXAMPLE = str(ROOT / "examples" / "snapshot.json")
EXAMPLE_PLAN = str(ROOT / "examples" / "plan.json")
POLICIES = (ROOT / "etc" / "kronos" / "policies.yaml.sample").read_text()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def proxy() -> Iterator[FaultProxy]:
    """Stands in for Prometheus and Nova: a test asserts it was never asked anything."""
    with proxied(f"http://127.0.0.1:{_closed_port()}") as p:
        yield p


@pytest.fixture
def conf(tmp_path: Path, proxy: FaultProxy) -> Path:
    (tmp_path / "policies.yaml").write_text(POLICIES)
    path = tmp_path / "kronos.conf"
    path.write_text(
        f"[engine]\naggregates = agg-01\n[prometheus]\nurl = {proxy.url}\nretries = 0\n"
        f"[nova]\nauth_type = admin_token\ntoken = admin\ncompute_endpoint_override = {proxy.url}/v2.1\n"
    )
    return path


def _fresh_plan(folder: Path) -> Path:
    """A plan of the example made now, saved in ``folder`` (execute refuses the stale example's)."""
    plan = folder / "plan.json"
    assert kronos_cli("plan", EXAMPLE, "-o", str(plan)).returncode == 0
    return plan


def usage_error(*args: str, code: int = 64) -> str:
    proc = kronos_cli(*args)
    assert proc.returncode == code, (args, proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    return proc.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["generate", "--seed", "-1"], "Invalid value for '--seed': -1 is not in the range x>=0"),
        (["generate", "--skew", "inf"], "Invalid value for '--skew': inf is not in the range 0<=x<=10"),
        (["generate", "--skew", "400"], "Invalid value for '--skew': 400.0 is not in the range 0<=x<=10"),
        (["generate", "--fill", "nan"], "Invalid value for '--fill': 'nan' is not a finite number"),
        (["generate", "--unmovable", "nan"], "'--unmovable': 'nan' is not a finite number"),
        (["generate", "--policies", "cpu,mem,cpu"], "--policies 'cpu,mem,cpu': 'cpu' given twice"),
        (
            ["report", EXAMPLE, EXAMPLE_PLAN, "--png", "-"],
            "--png names a folder for the PNG files; - (standard",
        ),
        (
            ["generate", "--vms", "2300000"],
            "Invalid value for '--vms': 2300000 is not in the range 0<=x<=1000000",
        ),
        (
            ["plan", EXAMPLE, "--budget", "9223372036854775808"],
            "--budget 9223372036854775808: must be below 2**63",
        ),
        (["plan", EXAMPLE, "-f", "csv", "--noindent"], "--noindent puts -f json on one line; this is -f csv"),
        (["show", EXAMPLE_PLAN, "-f", "json", "--no-reasons"], "--no-reasons shortens the table; with -f"),
        (["plan", EXAMPLE, "--aggregate", ""], "Invalid value for '--aggregate': must not be empty"),
        (["plan", EXAMPLE, "--drain", " "], "Invalid value for '--drain': must not be empty"),
        (["drain", EXAMPLE, "--host", ""], "Invalid value for '--host': must not be empty"),
        (
            ["evacuate", EXAMPLE, "--host", "cmp-001", "--tag", ""],
            "Invalid value for '--tag': must not be empty",
        ),
        (
            ["plan", EXAMPLE, "--now", "10000-01-01T00:00:00Z"],
            "--now '10000-01-01T00:00:00Z': not an RFC 3339 time",
        ),
        (
            ["plan", EXAMPLE, "--now", "9999-12-31T23:59:59-01:00"],
            "--now '9999-12-31T23:59:59-01:00': not an RFC",
        ),
        (
            ["state", "show", "--now", "0001-01-01T00:00:00+01:00"],
            "--now '0001-01-01T00:00:00+01:00': not an RFC",
        ),
        (["state", "release", ""], "Invalid value for 'INSTANCE': must not be empty"),
        (
            ["plan", EXAMPLE, "--set", "min-gain=0.1", "--set", "min_gain=0.2"],
            "--set 'min_gain': given twice",
        ),
        # the empty string is no path (the OS would read it as the current folder)
        (["state", "show", "--state", ""], "Invalid value for '--state': '' names nothing"),
        (["plan", EXAMPLE, "--state", " "], "Invalid value for '--state': ' ' names nothing"),
        (["plans", ""], "Invalid value for '[DIR]': '' names nothing"),
        (["execute", EXAMPLE, "--config", "k.conf", "--state", ""], "Invalid value for '--state': '' names"),
        (["execute", EXAMPLE, "--config", "k.conf", "--results", ""], "Invalid value for '--results': ''"),
        (["run", "--config", "k.conf", "--log", ""], "Invalid value for '--log': '' names nothing"),
        (
            ["state", "record-result", "--instance", "", "--outcome", "Succeeded"],
            "Invalid value for '--instance': must not be empty",
        ),
        (
            ["state", "record-result", "--instance", "vm-1", "--outcome", "Succeeded", "--at", "nonsense"],
            "--at 'nonsense': not an RFC 3339 time",
        ),
    ],
)
def test_bad_flags_are_usage_errors_naming_the_flag(tmp_path: Path, args: list[str], words: str) -> None:
    out = str(tmp_path / "out.json")
    extra = ["-o", out] if args[0] == "generate" else ["--state", out] if args[0] == "state" else []
    err = usage_error(*args[:2], *extra, *args[2:]) if args[0] == "state" else usage_error(*args, *extra)
    assert words in err
    assert not Path(out).exists()


def test_a_time_whose_cooldown_arithmetic_overflows_is_a_usage_error(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    for args in (
        ["plan", EXAMPLE, "--state", str(state), "--now", "9999-12-31T23:59:59Z"],
        ["state", "record-result", "--state", str(state), "--instance", "vm-1", "--outcome", "MigrationFailed",
         "--at", "9999-12-31T23:59:59Z"],
    ):  # fmt: skip
        flag = args[-2]
        err = usage_error(*args)
        assert f"{flag} '9999-12-31T23:59:59Z': must be a time between 1970-01-01 and 9000-01-01" in err
    assert not state.exists()
    ok = kronos_cli("plan", EXAMPLE, "--now", "8999-01-01T00:00:00Z", "-o", "-")  # no state kept
    assert ok.returncode == 0 and json.loads(ok.stdout)["created_at"].startswith("8999"), ok.stderr


def test_a_time_without_an_offset_is_utc_whatever_the_machine_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/cli.md: no offset means UTC, as Nova takes changes-since, never local time."""
    import time

    monkeypatch.setenv("TZ", "Asia/Tokyo")  # UTC+9 all year: a local reading would be 9 h off
    time.tzset()
    try:
        made = {
            when: json.loads(kronos_cli("plan", EXAMPLE, "--now", when, "-o", "-").stdout)["created_at"]
            for when in ("2026-11-21T10:00", "2026-11-21T10:00:00Z", "2026-11-21T11:00:00+01:00")
        }
    finally:
        monkeypatch.undo()
        time.tzset()
    assert set(made.values()) == {"2026-11-21T10:00:00Z"}, made


def test_plan_reads_a_kronos_conf_without_the_policies_file_it_never_uses(tmp_path: Path) -> None:
    """plan --config took the [engine] options but demanded policies.yaml (66), whose policies it
    never reads: they come with the snapshot."""
    conf = tmp_path / "kronos.conf"
    conf.write_text("[engine]\nmin_load = 0.1\n")
    r = kronos_cli("plan", EXAMPLE, "--config", str(conf), "-o", "-")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["options"]["min_load"] == 0.1


def test_a_state_is_never_judged_ahead_of_the_clock(tmp_path: Path) -> None:
    """record-result --at 2027 dropped a live quarantine (pruned as over by then) and plan --now
    far ahead wrote cooldowns months long; a snapshot dated ahead did the same through --now's
    default. Each is refused, the state untouched; a time that has come works as before."""
    from datetime import UTC, datetime, timedelta

    from kronos.core.convert import format_time

    state = tmp_path / "state.json"
    failed = ("state", "record-result", "--state", str(state), "--instance", "vm-failed", "--outcome")
    assert kronos_cli(*failed, "MigrationFailed").returncode == 0
    before = state.read_text()
    later = format_time(datetime.now(UTC) + timedelta(days=30))
    err = usage_error(*failed[:-2], "vm-other", "--outcome", "Succeeded", "--at", later)
    assert f"--at {later} is " in err and "ahead of this machine's clock" in err
    err = usage_error("plan", EXAMPLE, "--state", str(state), "--now", later)
    assert f"--now {later} is " in err and "drop every quarantine" in err
    ahead = tmp_path / "ahead.json"
    snap = kronos.load_snapshot(EXAMPLE)
    kronos.dump(attrs.evolve(snap, taken_at=datetime.now(UTC) + timedelta(days=30)), ahead)
    proc = kronos_cli("plan", str(ahead), "--state", str(state))
    assert proc.returncode == 65 and f"{ahead}: taken_at " in proc.stderr, proc.stderr
    assert state.read_text() == before and "vm-failed" in kronos.load_state(state).quarantined_until
    assert kronos_cli("plan", str(ahead), "-o", "-").returncode == 0  # no state kept: a what-if
    fine = kronos_cli(*failed[:-2], "vm-other", "--outcome", "Succeeded")
    assert fine.returncode == 0 and "vm-failed" in kronos.load_state(state).quarantined_until


@pytest.mark.parametrize(
    ("at", "words"),
    [
        ("1e30", "--at '1e30': Unix seconds must name a time between 1970-01-01 and 9000-01-01"),
        ("inf", "--at 'inf': Unix seconds must name a time"),
        ("-1", "--at '-1': Unix seconds must name a time"),
        ("9999-12-31T23:59:59Z", "--at '9999-12-31T23:59:59Z': must be a time between"),
        ("soon", "--at 'soon': not an RFC 3339 time or Unix seconds"),
    ],
)
def test_at_is_checked_before_prometheus_is_asked(conf: Path, proxy: FaultProxy, at: str, words: str) -> None:
    for command in ("scores", "record"):
        assert words in usage_error(
            command, "--config", str(conf), "--at", at, *(["-o", "-"] * (command == "record"))
        )
    assert proxy.log == []


def test_scores_aggregate_without_snapshot_is_64_before_any_network_call(
    conf: Path, proxy: FaultProxy, tmp_path: Path
) -> None:
    err = usage_error("scores", "--config", str(conf), "--aggregate", "agg-01")
    assert "--aggregate needs --snapshot FILE" in err
    missing = kronos_cli("scores", "--config", str(conf), "--snapshot", str(tmp_path / "none.json"))
    assert missing.returncode == 66 and "none.json: no such file" in missing.stderr
    wrong = usage_error("scores", "--config", str(conf), "--snapshot", EXAMPLE, "--aggregate", "agg-1")
    assert "unknown aggregate 'agg-1' (did you mean agg-01?)" in wrong
    doc = json.loads(Path(EXAMPLE).read_text())
    doc["source"] = {**(doc.get("source") or {}), "excluded_members": {"agg-01": "cmp-001"}}
    odd = tmp_path / "odd.json"
    odd.write_text(json.dumps(doc))
    bad = kronos_cli("scores", "--config", str(conf), "--snapshot", str(odd))
    assert bad.returncode == 65 and "Traceback" not in bad.stderr, bad.stderr
    assert (
        f"{odd}: source.excluded_members = {{'agg-01': 'cmp-001'}}: expected {{aggregate: [host]}}"
        in bad.stderr
    )
    assert proxy.log == []  # neither Prometheus nor Nova was asked anything


def test_output_paths_that_cannot_be_written_are_74_naming_them(
    conf: Path, proxy: FaultProxy, tmp_path: Path
) -> None:
    plan = _fresh_plan(tmp_path)
    folder = tmp_path / "a-directory"
    folder.mkdir()
    for args, words in (
        (["execute", str(plan), "--results", str(folder), "--dry-run"], f"--results '{folder}': cannot read it"),
        (["run", "--once", "--log", str(tmp_path / "gone" / "log.jsonl")],
         f"--log '{tmp_path / 'gone' / 'log.jsonl'}': cannot append to it: directory '{tmp_path / 'gone'}' does not exist"),
        (["run", "--once", "--log", str(folder)], f"--log '{folder}': cannot append to it: Is a directory"),
        (["record", "-o", str(folder)], f"-o '{folder}': is a directory, expected a file"),
        (["record", "-o", str(tmp_path / "gone" / "s.json")], f"-o '{tmp_path / 'gone' / 's.json'}': directory"),
    ):  # fmt: skip
        assert words in usage_error(*args, "--config", str(conf), code=74)
    base = conf.read_text()
    gone = tmp_path / "gone" / "results.jsonl"
    for setting, words in (
        (f"state_file = {folder}", f"[engine] state_file '{folder}': is a directory, expected a file"),
        (f"results_file = {gone}", f"[engine] results_file '{gone}': cannot append to it: directory"),
    ):
        conf.write_text(base.replace("aggregates = agg-01\n", f"aggregates = agg-01\n{setting}\n"))
        assert words in usage_error("run", "--once", "--config", str(conf), code=74)
    assert proxy.log == []
    # planning commands find an output they cannot write before any is written (the plan was
    # written, then --state failed; an evacuation's fenced snapshot stayed behind a failed -o)
    written, fenced = tmp_path / "written.json", tmp_path / "fenced.json"
    gone = tmp_path / "gone" / "x.json"
    for args, words in (
        (["plan", EXAMPLE, "--state", str(gone), "-o", str(written)], f"--state '{gone}': directory"),
        (["drain", EXAMPLE, "--host", "cmp-001", "--state", str(folder), "-o", str(written)],
         f"--state '{folder}': is a directory, expected a file"),
        (["evacuate", EXAMPLE, "--host", "cmp-001", "--assume-fenced", "--fenced-snapshot", str(fenced),
          "-o", str(gone)], f"-o '{gone}': directory"),
    ):  # fmt: skip
        assert words in usage_error(*args, code=74)
        assert not written.exists() and not fenced.exists()
    through = tmp_path / "no-such" / ".." / "through.json"  # the folder it names is tmp_path
    assert (
        kronos_cli("plan", EXAMPLE, "-o", str(through)).returncode == 0
        and (tmp_path / "through.json").exists()
    )


def _rows_of(plan: kronos.Plan) -> Callable[..., str]:
    """A results-log line of ``plan``'s step ``seq``, as kronos writes it, changed by ``fields``."""
    from kronos.adapters.executor import plan_id

    steps = {s.seq: s for s in plan.steps}

    def row(seq: Any, outcome: str = "Succeeded", **fields: Any) -> str:
        instance = steps[seq].instance if seq in steps and type(seq) is int else None
        written = {"plan": plan_id(plan), "seq": seq, "instance": instance, "outcome": outcome}
        return json.dumps({**written, **fields}) + "\n"

    return row


def test_execute_results_lines_from_a_foreign_file_are_not_trusted(tmp_path: Path) -> None:
    from kronos.adapters.journal import done_steps

    plan = kronos.load_plan(EXAMPLE_PLAN)
    row = _rows_of(plan)
    results = tmp_path / "results.jsonl"
    results.write_text(
        row(2) + '[1]\n"x"\n' + row(3, plan="another plan") + row(5, "Interrupted")
        + row(4)[:30] + row(6)  # cut by a kill
    )  # fmt: skip
    assert done_steps(results, plan) == {2}


def test_rows_of_another_plan_of_the_same_snapshot_are_not_its(tmp_path: Path) -> None:
    """A plan's id was its created_at and snapshot digest, which a spread and a drain of one
    snapshot share: one's rows were read as the other's (a step skipped as done, or 65)."""
    from kronos.adapters.executor import plan_id
    from kronos.adapters.journal import done_steps

    spread, drain = tmp_path / "spread.json", tmp_path / "drain.json"
    assert kronos_cli("plan", EXAMPLE, "-o", str(spread)).returncode == 0
    assert kronos_cli("drain", EXAMPLE, "--host", "cmp-001", "-o", str(drain)).returncode == 0
    one, other = kronos.load_plan(spread), kronos.load_plan(drain)
    assert (one.created_at, one.snapshot_digest) == (other.created_at, other.snapshot_digest)
    assert plan_id(one) != plan_id(other)
    results = tmp_path / "results.jsonl"
    results.write_text(_rows_of(one)(1) + _rows_of(one)(2))
    assert done_steps(results, one) == {1, 2} and done_steps(results, other) == set()


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"outcome": "Succeded"}, "outcome = 'Succeded': expected one of Succeeded, PreFlightError, "),
        ({"seq": 99}, "seq = 99: the plan has no such step"),
        ({"seq": "1"}, "seq = '1': the plan has no such step"),
        ({"seq": True}, "seq = True: the plan has no such step"),
        ({"instance": "vm-x"}, "instance = 'vm-x': step 1 moves '886e9cef-"),
        ({"instance": None}, "instance = None: step 1 moves "),
    ],
)
def test_a_row_of_the_plan_not_as_kronos_writes_it_is_refused(
    tmp_path: Path, change: dict[str, Any], said: str
) -> None:
    """A mistyped outcome made execute skip the step as done (exit 0, "1 already done"), as did a
    row with no instance or another VM's; a seq the plan does not have counted as a step done."""
    from kronos.adapters.journal import done_steps
    from kronos.errors import DataError

    plan = kronos.load_plan(EXAMPLE_PLAN)
    row = _rows_of(plan)
    results = tmp_path / "results.jsonl"
    results.write_text(row(2) + row(**{"seq": 1, **change}))
    with pytest.raises(DataError) as err:
        done_steps(results, plan)
    assert f"--results '{results}':2: {said}" in str(err.value)
    assert "is trusted only as kronos wrote it: correct or remove the line" in str(err.value)


def test_a_dry_run_refuses_the_state_and_results_files_the_run_would(
    conf: Path, proxy: FaultProxy, tmp_path: Path
) -> None:
    """--dry-run listed the steps, exit 0, for a --state that was a snapshot (the run: 65), a
    folder, or a file in a folder not there (the run: 74)."""
    plan = _fresh_plan(tmp_path)
    gone = tmp_path / "gone"
    for flag, path, code, said in (
        ("--state", EXAMPLE, 65, "expected kronos.state/1"),
        ("--state", str(tmp_path), 74, "is a directory, expected a file"),
        ("--state", str(gone / "s.json"), 74, f"directory '{gone}' does not exist"),
        ("--results", str(gone / "r.jsonl"), 74, f"directory '{gone}' does not exist"),
    ):
        out = kronos_cli("execute", str(plan), "--config", str(conf), flag, path, "--dry-run")
        assert out.returncode == code and said in out.stderr and "would live-migrate" not in out.stdout, (
            flag, path, out.returncode, out.stderr)  # fmt: skip
    fine = kronos_cli(
        "execute", str(plan), "--config", str(conf), "--state", str(tmp_path / "s.json"), "--dry-run"
    )
    assert "would live-migrate" in fine.stdout and not (tmp_path / "s.json").exists() and proxy.log == []


def test_execute_refuses_a_mistyped_outcome_before_asking_nova(
    conf: Path, proxy: FaultProxy, tmp_path: Path
) -> None:
    plan = _fresh_plan(tmp_path)
    results = tmp_path / "results.jsonl"
    results.write_text(_rows_of(kronos.load_plan(str(plan)))(1, "Succeded"))
    said = usage_error(
        "execute", str(plan), "--config", str(conf), "--results", str(results), "--dry-run", code=65
    )
    assert f"--results '{results}':1: outcome = 'Succeded': expected one of " in said and proxy.log == []


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ('{\n  "format": "kronos.plan/1",\n  "steps": []\n}\n', ":1: not a JSON object"),
        ("format: kronos.plan/1\nsteps: []\n", ":1: not a JSON object"),
        (
            '{"plan": "p", "seq": 1, "outcome": "Succeeded"}\n{"format": "kronos.snapshot/1"}\n',
            ":2: a kronos.snapshot/1 document",
        ),
    ],
)
def test_a_file_that_is_no_results_log_is_refused_before_a_run_appends_to_it(
    tmp_path: Path, text: str, said: str
) -> None:
    """``--results plan.json`` would have had a run append its lines to the plan."""
    from kronos.adapters.journal import done_steps
    from kronos.errors import DataError

    plan = kronos.load_plan(EXAMPLE_PLAN)
    results = tmp_path / "p.json"
    results.write_text(text)
    with pytest.raises(DataError, match=f"--results '{results}'{said}"):
        done_steps(results, plan)
    results.write_text('{"plan": "p", "se')  # a first line cut by a kill is a log still
    assert done_steps(results, plan) == set()


def test_a_results_log_line_too_long_for_a_row_is_refused_unread(tmp_path: Path) -> None:
    """The log was read whole (a file of one endless line took all memory); a line over the
    cap was parsed, and a row it held trusted."""
    from kronos.adapters.journal import MAX_ROW_BYTES, done_steps
    from kronos.errors import DataError

    plan = kronos.load_plan(EXAMPLE_PLAN)
    row = _rows_of(plan)
    results = tmp_path / "results.jsonl"
    results.write_text(row(1) + row(2, x="x" * MAX_ROW_BYTES))
    with pytest.raises(
        DataError, match=f"--results '{results}':2: a line of more than {MAX_ROW_BYTES} bytes"
    ):
        done_steps(results, plan)
    results.write_text(row(1) * 3 + row(2))
    assert done_steps(results, plan) == {1, 2}
    # a line of exactly the cap, with its end, is a line (readline's cap + 1 took its newline)
    three = row(3, x="")
    results.write_text(row(1) + row(3, x="x" * (MAX_ROW_BYTES - len(three))) + row(4))
    assert done_steps(results, plan) == {1, 3, 4}


def test_a_results_log_that_is_a_device_is_not_read() -> None:
    """``results_file = /dev/stdout`` on a terminal waited for input; ``/dev/zero`` took all
    memory (here: a MemoryError under a 256 MiB limit). A device holds no earlier rows."""
    code = (
        "import resource; resource.setrlimit(resource.RLIMIT_AS, (256 << 20, 256 << 20))\n"
        "import kronos\n"
        "from kronos.adapters.journal import done_steps\n"
        f"assert done_steps('/dev/zero', kronos.load_plan({EXAMPLE_PLAN!r})) == set()"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr


def test_a_plan_with_a_drain_says_the_budget_its_balancing_had(tmp_path: Path) -> None:
    """plan --drain: the drain is unbudgeted, the balancing after it has --budget; the header
    said "budget unlimited" although the plan held the balancing to the budget."""
    proc = kronos_cli("plan", EXAMPLE, "--drain", "cmp-001", "--budget", "3")
    assert proc.returncode == 0, proc.stderr
    assert "budget drain unlimited, then 3 per aggregate" in proc.stdout.splitlines()[0]
    plan, page = tmp_path / "p.json", tmp_path / "r.html"
    assert kronos_cli("plan", EXAMPLE, "--drain", "cmp-001", "--budget", "3", "-o", str(plan)).returncode == 0
    assert kronos_cli("report", EXAMPLE, str(plan), "-o", str(page)).returncode == 0
    assert "budget drain unlimited, then 3 per aggregate" in page.read_text()  # the report says the same
    plain = kronos_cli("drain", EXAMPLE, "--host", "cmp-001")
    assert "budget unlimited per aggregate" in plain.stdout.splitlines()[0]


def test_a_log_cut_mid_line_gets_its_next_row_on_a_line_of_its_own(tmp_path: Path) -> None:
    """A kill or a full disk may cut the first row; the next run appended to it, and the glued
    line then hid that row (and, once refused as no log, every row)."""
    from kronos.adapters.journal import done_steps, open_append

    plan = kronos.load_plan(EXAMPLE_PLAN)
    row = _rows_of(plan)
    results = tmp_path / "results.jsonl"
    results.write_text(row(1)[:30])  # the first row, cut
    with open_append(results, "--results") as fh:
        fh.write(row(2))
    assert results.read_text().splitlines()[1] == row(2).strip()
    assert done_steps(results, plan) == {2}


def test_a_log_file_that_fills_up_says_so_once_and_the_command_goes_on() -> None:
    """logging's own handler printed a traceback on stderr for every line a full disk refused. A
    record that does not format (a bug, not the disk) keeps logging's own report."""
    script = (
        "import logging; from kronos.logs import configure\n"
        "configure(1, log_file='/dev/full')\n"
        "logging.getLogger('kronos.engine').warning('bad %d', 'x')\n"
        "for k in range(5): logging.getLogger('kronos.engine').warning('line %d', k)\n"
        "print('went on')\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout == "went on\n", proc.stderr
    bad, _, rest = proc.stderr.partition("Message: 'bad %d'")
    assert bad.startswith("--- Logging error ---") and "TypeError" in bad, proc.stderr
    said = "kronos: --log-file /dev/full: cannot write (No space left on device); its lines are lost from here on"
    assert rest.count("kronos: --log-file") == 1 and rest.endswith(said + "\n"), proc.stderr


def test_a_scope_is_given_once_and_kronos_conf_s_is_its_own_fault(tmp_path: Path) -> None:
    """--aggregate A --set aggregates=B planned A and dropped B unsaid; an aggregate kronos.conf
    names that the snapshot lacks was a usage error (64) naming neither the file nor the key."""
    err = usage_error("plan", EXAMPLE, "--aggregate", "agg-01", "--set", "aggregates=agg-02")
    assert "--aggregate and --set aggregates: give it once" in err
    err = usage_error("drain", EXAMPLE, "--host", "cmp-001", "--aggregate", "agg-01", "--set", "aggregates=x")
    assert "--aggregate and --set aggregates: give it once" in err
    err = usage_error("plan", EXAMPLE, "--solver", "exact", "--set", "solver=greedy")
    assert "--solver and --set solver: give it once" in err
    conf = tmp_path / "kronos.conf"
    conf.write_text(f"[engine]\naggregates = agg-99\npolicies_file = {ROOT / 'examples' / 'policies.yaml'}\n")
    proc = kronos_cli("plan", EXAMPLE, "--config", str(conf))
    said = f"{conf}: [engine] aggregates: aggregate 'agg-99' is not in the snapshot"
    assert proc.returncode == 78 and said in proc.stderr, proc.stderr
    flag = usage_error("plan", EXAMPLE, "--config", str(conf), "--aggregate", "agg-98")  # the flag's: 64
    assert "aggregate 'agg-98' is not in the snapshot" in flag
    ok = kronos_cli("plan", EXAMPLE, "--config", str(conf), "--aggregate", "agg-01", "-o", "-")
    assert ok.returncode == 0 and {s["aggregate"] for s in json.loads(ok.stdout)["steps"]} == {"agg-01"}
