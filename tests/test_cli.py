"""The command line: outputs, exit codes, state file handling, no tracebacks."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import threading
from pathlib import Path

import attrs
import pytest

import kronos
from tests.conftest import ROOT, kronos_cli


def test_plan_writes_file_prints_table_and_times(tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    proc = kronos_cli("plan", str(ROOT / "examples" / "snapshot.json"), "-o", str(out), "--time")
    assert proc.returncode == 0, proc.stderr
    plan = kronos.load_plan(out)
    assert plan.steps and "combined" in proc.stdout
    for phase in ("load", "validate", "compile/arrays", "plan", "write"):
        assert f"time {phase}" in proc.stderr
    shown = kronos_cli("show", str(out))
    assert shown.returncode == 0
    assert plan.steps[0].reason in shown.stdout


def test_plan_to_stdout_is_the_document(small: kronos.Snapshot, tmp_path: Path) -> None:
    snap = tmp_path / "s.yaml"
    kronos.dump(small, snap)
    proc = kronos_cli("plan", str(snap), "-o", "-", "--budget", "2")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["format"] == "kronos.plan/1" and len(doc["steps"]) == 2
    assert doc["options"]["budget"] == 2


def test_plan_with_state_file_sets_cooldowns(small: kronos.Snapshot, tmp_path: Path) -> None:
    snap, state = tmp_path / "s.json", tmp_path / "state.json"
    kronos.dump(small, snap)
    first = kronos_cli("plan", str(snap), "--state", str(state), "-o", str(tmp_path / "p1.json"))
    assert first.returncode == 0, first.stderr
    st = kronos.load_state(state)
    assert "agg-01" in st.aggregate_cooldown_until
    second = kronos_cli("plan", str(snap), "--state", str(state), "-o", "-")
    assert json.loads(second.stdout)["steps"] == []
    assert "cooldown" in json.loads(second.stdout)["summary"]["aggregates"]["agg-01"]["skipped"]


def test_usage_errors_exit_64_without_traceback(small: kronos.Snapshot, tmp_path: Path) -> None:
    snap = tmp_path / "s.json"
    kronos.dump(small, snap)
    for args, fragment in [
        (("plan", str(snap), "--set", "min_lod=1"), "did you mean min_load"),
        (("plan", str(snap), "--set", "min_load"), "expected KEY=VALUE"),
        (("plan", str(snap), "--budget", "lots"), "budget"),
        (("plan", str(snap), "--aggregate", "nope"), "not in the snapshot"),
        (("plan", str(snap), "--set", "stop_below_threshold=maybe"), "true or false"),
        (("plan", str(snap), "--set", "exact_seconds=5"), "unknown option 'exact_seconds'"),
        (("plan", str(snap), "--set", "prune=false"), "unknown option 'prune'"),
        (
            ("plan", str(snap), "--set", "mode=pack"),
            "--set mode: not a planner option but this command's --mode",
        ),
        (("drain", str(snap), "--host", "cmp-001", "--set", "mode=pack"), "--set 'mode': unknown option"),
        (("plan", str(snap), "--set", "max_parallel=0"), "at least 1 step a wave"),
        (("plan",), "Missing argument"),
        (("generate", "--vms", "99999999999999999999"), "not in the range"),
        (("generate", "--hosts", "3", "--down", "4"), "more than the 3 host(s)"),
        (("generate", "--hosts", "3", "--evacuable", "3"), "fewer failed hosts"),
        (("generate", "--packable", "3", "--tight"), "--packable and --tight"),
        (("generate", "--bytedance-like", "--hosts", "10"), "uses --seed only: --hosts would be ignored"),
        (("generate", "--tight", "--fill", "0.5", "--mode", "pack"), "--fill, --mode would be ignored"),
        (("generate", "--clouds", "2", "--history", "3", "-o", str(tmp_path)), "--history would be ignored"),
        (("generate", "--pinned", "0", "--pcpu-hosts", "0.3"), "give --pinned > 0"),
        (("generate", "--bytedance-like", "--down", "60"), "--down would be ignored"),
        (("plan", str(snap), "--time-limit", "5"), "give --solver exact too"),
        (("plan", str(snap), "--cold-migrate-stopped"), "give --drain HOST too"),
    ]:
        proc = kronos_cli(*args)
        assert proc.returncode == 64, (args, proc.stderr)
        assert fragment in proc.stderr and "Traceback" not in proc.stderr


def test_a_snapshot_with_no_enabled_policy_is_named(small: kronos.Snapshot, tmp_path: Path) -> None:
    snap = tmp_path / "off.json"
    kronos.dump(
        attrs.evolve(small, policies=tuple(attrs.evolve(p, enabled=False) for p in small.policies)), snap
    )
    for command in ("plan", "validate"):  # validate said OK to what plan refused
        proc = kronos_cli(command, str(snap))
        said = "policies: no policy is enabled: there is nothing to plan against"
        assert proc.returncode == 65 and str(snap) in proc.stderr and said in proc.stderr, proc.stderr


def test_unwritable_output_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    proc = kronos_cli("plan", str(ROOT / "examples" / "snapshot.json"), "-o", str(tmp_path / "no" / "p.json"))
    assert proc.returncode == 74
    assert "does not exist" in proc.stderr and "Traceback" not in proc.stderr


def test_a_folder_that_cannot_be_made_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    """``generate --clouds`` makes its folder; under a file it cannot (74, naming the folder)."""
    a_file = tmp_path / "taken"
    a_file.write_text("")
    proc = kronos_cli("generate", "--clouds", "2", "-o", str(a_file / "clouds"))
    assert proc.returncode == 74, proc.stderr
    assert f"{a_file / 'clouds'}: cannot make the folder" in proc.stderr and "Traceback" not in proc.stderr


def test_a_refused_write_exits_74_naming_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file the operating system will not let us write is an I/O error (74): 77 is the
    cloud refusing our credentials (FORMATS §2). /sys refuses even root (EACCES, or EROFS in
    a container); the permission path itself is injected, since root may write anywhere else."""
    proc = kronos_cli("plan", str(ROOT / "examples" / "snapshot.json"), "-o", "/sys/kronos-plan.json")
    assert proc.returncode == 74 and "/sys/kronos-plan.json: " in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    import tempfile

    from kronos.errors import KronosIOError
    from kronos.files import write_atomic

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(
        KronosIOError, match=f"{tmp_path / 'p.json'}: cannot write \\(Permission denied\\)"
    ) as err:
        write_atomic(tmp_path / "p.json", "{}")
    assert err.value.exit_code == 74


def test_an_output_named_for_another_format_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    """``-o plan.xml`` used to get JSON under an XML name. Each command names what it writes;
    a name without a suffix (a device, a pipe) and any case of a right one are fine."""
    example = str(ROOT / "examples" / "snapshot.json")
    for args, said in [
        (("generate", "-o", str(tmp_path / "s.xml")), ".json, .yaml or .yml files, not .xml"),
        (("plan", example, "-o", str(tmp_path / "p.txt")), ".json, .yaml or .yml files, not .txt"),
        (("explain", example, "--vm", "x", "-o", str(tmp_path / "e.csv")), "not .csv"),
        (("report", example, example, "-o", str(tmp_path / "r.pdf")), ".html or .htm files, not .pdf"),
        (("scores", "-o", str(tmp_path / "s.yaml")), ".json files, not .yaml"),
        (
            ("plan", example, "-o", ""),
            "'': name a file, or - for standard output",
        ),  # was "Is a directory", 74
        (("report", example, example, "-o", " "), "' ': name a file"),
    ]:
        proc = kronos_cli(*args)
        assert proc.returncode == 64 and said in proc.stderr, (args, proc.stderr)
    assert not list(tmp_path.iterdir())
    for plain in ("tmp.qpNXvBEo2L", "plan-2026.12.03", "plan.bak"):  # mktemp, dated, backup: names
        proc = kronos_cli("plan", example, "-o", str(tmp_path / plain))
        assert proc.returncode == 0 and json.loads((tmp_path / plain).read_text())["steps"], proc.stderr
    upper = tmp_path / "P.YML"
    assert kronos_cli("plan", example, "-o", str(upper)).returncode == 0
    assert kronos.load_plan(upper).steps == kronos.plan(kronos.load_snapshot(example)).steps
    assert not upper.read_text().lstrip().startswith("{")  # YAML, as the name says
    assert kronos_cli("generate", "--clouds", "2", "-o", str(tmp_path / "clouds.d")).returncode == 0


def test_one_file_named_as_two_of_a_commands_files_is_refused(tmp_path: Path) -> None:
    """``replay s.json -o s.json`` replaced the snapshot with its plan, ``-o x --state x`` kept
    the state alone; a read-only --state that is missing planned, unsaid, as if no VM were held."""
    snap = tmp_path / "s.json"
    snap.write_text((ROOT / "examples" / "snapshot.json").read_text())
    before = snap.read_text()
    for args, said in [
        (("replay", str(snap), "-o", str(snap)), f"-o {snap}: the same file as SNAPSHOT {snap}"),
        (("plan", str(snap), "-o", str(tmp_path / "x.json"), "--state", str(tmp_path / "x.json")),
         f"-o {tmp_path / 'x.json'}: the same file as --state"),
        (("explain", str(snap), "--vm", "x", "-o", str(snap)), "the same file as SNAPSHOT"),
    ]:  # fmt: skip
        proc = kronos_cli(*args)
        assert proc.returncode == 64 and said in proc.stderr, (args, proc.stderr)
    assert snap.read_text() == before and not (tmp_path / "x.json").exists()
    devnull = kronos_cli("plan", str(snap), "-o", "/dev/null", "--state", str(tmp_path / "st.json"))
    assert devnull.returncode == 0, devnull.stderr  # a device is no file: nothing to clash with
    missing = kronos_cli("explain", str(snap), "--vm", "x", "--state", str(tmp_path / "Q.json"))
    assert f"--state {tmp_path / 'Q.json'}: no such file yet: no VM or aggregate is held" in missing.stderr
    nowhere = kronos_cli("explain", str(snap), "--vm", "x", "--state", str(tmp_path / "no" / "Q.json"))
    assert nowhere.returncode == 66 and "no such file, nor folder" in nowhere.stderr


def test_bundled_example_plan_matches_the_recorded_output() -> None:
    proc = kronos_cli("plan", str(ROOT / "examples" / "snapshot.json"))
    assert proc.stdout == (ROOT / "examples" / "plan.txt").read_text()


def test_a_plan_written_as_yaml_by_the_plain_python_kernels(tmp_path: Path) -> None:
    """Their figures are numpy float64, which YAML's safe representer refused (exit 70)."""
    out = tmp_path / "p.yaml"
    proc = kronos_cli("--jit", "never", "plan", str(ROOT / "examples" / "snapshot.json"), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    as_json = kronos_cli("plan", str(ROOT / "examples" / "snapshot.json"), "-o", "-")
    assert [s.instance for s in kronos.load_plan(out).steps] == [
        s["instance"] for s in json.loads(as_json.stdout)["steps"]
    ]


def test_output_to_dev_stdout_goes_down_the_pipe(tmp_path: Path) -> None:
    """Resolved, /dev/stdout names /proc/PID/fd/pipe:[N], which a rename cannot target (exit 74)."""
    proc = kronos_cli("generate", "--hosts", "3", "--vms", "5", "-o", "/dev/stdout", process=True)
    assert proc.returncode == 0, proc.stderr
    assert kronos.load_snapshot(io.StringIO(proc.stdout)).hosts


def test_a_document_to_dev_stdout_is_all_stdout_holds(tmp_path: Path) -> None:
    """``plan -o /dev/stdout`` printed the plan's JSON and then its table: neither could be read.
    It is ``-o -`` now, for every command that shows a listing after writing its document; the
    table still shows when the document goes to stderr."""
    example = str(ROOT / "examples" / "snapshot.json")
    plan = kronos_cli("plan", example, "-o", "/dev/stdout", process=True)
    assert plan.returncode == 0 and kronos.load_plan(io.StringIO(plan.stdout)).steps, plan.stderr
    saved = tmp_path / "plan.json"
    saved.write_text(plan.stdout)
    vm = kronos.load_plan(saved).steps[0].instance
    why = kronos_cli("explain", example, str(saved), "--vm", vm, "-o", "/dev/stdout", process=True)
    assert why.returncode == 0 and json.loads(why.stdout), why.stderr
    aside = kronos_cli("plan", example, "-o", "/dev/stderr", process=True)
    assert aside.stdout.startswith("plan sha256:") and kronos.load_plan(io.StringIO(aside.stderr)).steps
    rows = kronos_cli("plan", example, "-o", "/dev/stdout", "-c", "seq", process=True)
    assert rows.returncode == 64 and "-o /dev/stdout writes the whole document to stdout" in rows.stderr


def test_dev_stderr_on_the_same_terminal_is_not_stdout() -> None:
    """On a terminal, stdout and stderr are one device: judged by the file, ``-o /dev/stderr -c
    seq`` was refused as if the document went to stdout, and the table was not shown."""
    import pty
    import sys

    primary, secondary = pty.openpty()
    shown: list[bytes] = []

    def drain() -> None:  # a terminal nobody reads fills, and the writer waits
        with contextlib.suppress(OSError):
            while chunk := os.read(primary, 65536):
                shown.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        proc = subprocess.run(
            [sys.executable, "-c", "from kronos.cli import main; main()", "plan",
             str(ROOT / "examples" / "snapshot.json"), "-o", "/dev/stderr", "-c", "seq"],
            stdout=secondary, stderr=secondary, timeout=120, check=False,
        )  # fmt: skip
    finally:
        os.close(secondary)
        reader.join(timeout=10)
        os.close(primary)
    assert proc.returncode == 0, b"".join(shown)[-400:]


def test_a_yaml_suffix_in_capitals_writes_yaml(tmp_path: Path) -> None:
    upper = tmp_path / "plan.YAML"
    assert kronos_cli("plan", str(ROOT / "examples" / "snapshot.json"), "-o", str(upper)).returncode == 0
    assert not upper.read_text().startswith("{")  # YAML, not JSON
    assert kronos.load_plan(upper).steps
