"""A name made of control characters is shown on the operator's terminal, never obeyed."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kronos.adapters.executor import StepResult
from kronos.logs import configure
from kronos.progress import Progress
from kronos.terminal import printable
from tests.conftest import kronos_cli

EXAMPLE = Path(__file__).parent.parent / "examples" / "snapshot.json"
#: BEL, a clear-screen sequence, a carriage return, DEL, C1's CSI and a right-to-left override
EVIL = "evil\x07\x1b[2J\rred\x7f\x9b\u202e"
#: what no byte of terminal output may be
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def test_control_characters_are_spelled_and_the_rest_is_kept() -> None:
    assert printable(EVIL) == "evil\\u0007\\u001b[2J\\u000dred\\u007f\\u009b\\u202e"
    assert printable("été\tcmp-01 → 東京\n") == "été\tcmp-01 → 東京\n"


def test_json_made_printable_reads_back_the_same() -> None:
    doc = {"name": EVIL, "list": [EVIL, "plain"]}
    text = printable(json.dumps(doc, ensure_ascii=False, indent=2))
    assert not RAW.search(text)
    assert json.loads(text) == doc


@pytest.fixture(scope="module")
def evil_snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    doc = json.loads(EXAMPLE.read_text())
    (vm,) = [v for v in doc["vms"] if v["name"] == "vm-000234"]  # the first step of examples/plan.txt
    vm["name"] = EVIL
    path = tmp_path_factory.mktemp("evil") / "snapshot.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize(
    "args",
    [
        ("plan",),
        ("plan", "-f", "csv"),
        ("plan", "-f", "json"),
        ("plan", "-o", "-"),
        ("explain", "--vm", EVIL),
        ("explain", "--vm", EVIL, "-o", "-"),
        ("explain", "--vm", EVIL + "x"),
    ],
    ids=["table", "csv", "json-rows", "plan-document", "explain", "explain-records", "error"],
)
def test_no_command_writes_a_raw_control_character(evil_snapshot: Path, args: tuple[str, ...]) -> None:
    out = kronos_cli(args[0], str(evil_snapshot), *args[1:])
    shown = out.stdout + out.stderr
    assert not RAW.search(shown), shown
    if out.returncode == 0:
        assert "evil\\u0007" in out.stdout
    if "json" in args or "-o" in args:  # the data keeps the name as it was
        assert EVIL in set(_strings(json.loads(out.stdout)))


def test_a_vm_name_with_a_line_break_or_a_tab_stays_on_its_line(tmp_path: Path) -> None:
    """A VM's name is its owner's free text and stays in the data as it is; shown, a line break
    in it forged a row of the plan's table and of `-f value`, and a tab split a row's columns."""
    doc = json.loads(EXAMPLE.read_text())
    (vm,) = [v for v in doc["vms"] if v["name"] == "vm-000234"]  # the first step of examples/plan.txt
    vm["name"] = "web\nFAKE-LINE\tx"
    path = tmp_path / "snapshot.json"
    path.write_text(json.dumps(doc))
    shown = "web\\u000aFAKE-LINE\\u0009x"
    table = kronos_cli("plan", str(path))
    assert (
        table.returncode == 0
        and shown in table.stdout
        and not any(line.startswith("FAKE-LINE") for line in table.stdout.splitlines())
    ), table.stdout
    rows = kronos_cli("plan", str(path), "-f", "value", "-c", "seq", "-c", "name")
    assert rows.stdout.splitlines()[0] == f"1 {shown}", rows.stdout
    document = kronos_cli("plan", str(path), "-o", "-")
    assert json.loads(document.stdout)["steps"][0]["name"] == "web\nFAKE-LINE\tx"
    why = kronos_cli("explain", str(path), "--vm", vm["id"])
    assert why.returncode == 0 and f"VM {shown} (" in why.stdout, why.stdout


def _strings(doc: object) -> Iterator[str]:
    if isinstance(doc, str):
        yield doc
    elif isinstance(doc, dict):
        for value in doc.values():
            yield from _strings(value)
    elif isinstance(doc, list):
        for item in doc:
            yield from _strings(item)


def test_execute_progress_shows_a_name_and_an_error_from_nova() -> None:
    t = "2026-11-21T10:00:00.000000Z"
    result = StepResult(1, 1, EVIL, "live-migrate", "cmp-1", "cmp-2", "Failed", 1, t, t, 1.5, f"no {EVIL}")
    out = io.StringIO()
    Progress(1, out, tty=True)(result)
    # the bar's own control sequence (erase the line) is the only one
    assert not RAW.search(out.getvalue().replace("\r\x1b[2K", "")), out.getvalue()
    assert "Failed           evil\\u0007" in out.getvalue()


def test_a_log_line_shows_a_name(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    kept = list(root.handlers), root.level, logging.getLogger("kronos").level
    try:
        configure()
        logging.getLogger("kronos.test").warning("moving %s", EVIL)
    finally:
        root.handlers[:] = kept[0]
        root.setLevel(kept[1])
        logging.getLogger("kronos").setLevel(kept[2])
        logging.captureWarnings(False)
    err = capsys.readouterr().err
    assert "moving evil\\u0007" in err and not RAW.search(err), err


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full (every write: ENOSPC)")
@pytest.mark.parametrize(
    "args", [("plan", str(EXAMPLE)), ("plan", str(EXAMPLE), "-o", "-"), ("plan", "--help")]
)
def test_standard_output_on_a_full_disk_is_exit_74_naming_it(args: tuple[str, ...]) -> None:
    """It was a traceback and "internal error (a bug)" (70)."""
    with Path("/dev/full").open("w") as full:
        out = subprocess.run(
            [sys.executable, "-c", "from kronos.cli import main; main()", *args],
            stdout=full, stderr=subprocess.PIPE, text=True, check=False,
        )  # fmt: skip
    assert out.returncode == 74, out.stderr
    assert out.stderr == "kronos: error: standard output: cannot write: No space left on device\n"


def test_a_reader_that_closes_the_pipe_early_ends_it_quietly() -> None:
    """``kronos generate -o - | head -1``: the rest (2.5 MB, far over a pipe's buffer) is not
    wanted, and that is no error."""
    argv = [sys.executable, "-c", "from kronos.cli import main; main()", "generate", "--seed", "1", "-o", "-"]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.read(1) == b"{"
        proc.stdout.close()
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=120) == 0 and err == "", err


def _kronos_sh(args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``kronos ARGS`` through sh, for redirections subprocess cannot spell (``>&-``)."""
    command = f"{shlex.quote(sys.executable)} -c 'from kronos.cli import main; main()' {args}"
    return subprocess.run(
        ["sh", "-c", command], capture_output=True, text=True, check=False, env={**os.environ, **(env or {})}
    )


def test_a_terminal_without_arrows_gets_them_spelled() -> None:
    """A Latin-1 terminal has no → or …: every command failed with UnicodeEncodeError (70)."""
    out = _kronos_sh(f"plan {shlex.quote(str(EXAMPLE))}", {"PYTHONIOENCODING": "latin-1"})
    assert out.returncode == 0, out.stderr
    assert "cmp-007 \\u2192 cmp-005" in out.stdout and "sha256:a1f5439097f8\\u2026" in out.stdout


#: an emoji (beyond the BMP), an accent Latin-1 has, an arrow it has not
FACE = "face-\U0001f600-été-\u2192"


@pytest.mark.parametrize("args", [("-f", "json"), ("-o", "-")], ids=["json-rows", "plan-document"])
def test_json_on_a_terminal_without_an_emoji_reads_back_the_same_name(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    """It was written ``\\U0001f600`` (backslashreplace), which is no JSON escape: the output
    did not parse. JSON spells it as a UTF-16 surrogate pair."""
    doc = json.loads(EXAMPLE.read_text())
    (vm,) = [v for v in doc["vms"] if v["name"] == "vm-000234"]  # the first step of examples/plan.txt
    vm["name"] = FACE
    snapshot = tmp_path / "snapshot.json"
    snapshot.write_text(json.dumps(doc))
    argv = [sys.executable, "-c", "from kronos.cli import main; main()", "plan", str(snapshot), *args]
    env = {**os.environ, "PYTHONIOENCODING": "latin-1"}
    out = subprocess.run(argv, capture_output=True, env=env, check=False)
    assert out.returncode == 0, out.stderr
    assert b"\\ud83d\\ude00" in out.stdout
    assert FACE in set(_strings(json.loads(out.stdout.decode("latin-1"))))


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full (every write: ENOSPC)")
def test_standard_error_that_refuses_keeps_the_exit_code() -> None:
    """With nowhere to say it, the code still says it: 66 was 1 (an error about the error)."""
    assert _kronos_sh("plan no-such-snapshot.json 2>/dev/full").returncode == 66


@pytest.mark.parametrize(
    ("args", "code", "said"),
    [
        ("plan no-such-snapshot.json >&-", 66, "no-such-snapshot.json: no such file"),
        ("--help >&-", 0, ""),
        ("plan - <&-", 66, "<stdin>: standard input is closed"),
        (f"--jit always plan {shlex.quote(str(EXAMPLE))} 2>&-", 0, ""),  # stderr.isatty() met None
    ],
)
def test_a_closed_standard_stream_is_no_traceback(args: str, code: int, said: str) -> None:
    out = _kronos_sh(args)
    assert out.returncode == code and said in out.stderr and "Traceback" not in out.stderr, out.stderr


def test_progress_on_a_stream_that_refuses_gives_up_and_lets_the_steps_go_on() -> None:
    """A full disk under ``kronos execute``'s stdout raised out of the step's report: the
    execution stopped mid-wave for a display."""

    class Full(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError(28, "No space left on device")

    t = "2026-11-21T10:00:00.000000Z"
    progress = Progress(2, Full(), tty=True)
    for seq in (1, 2):
        progress(StepResult(seq, 1, f"vm-{seq}", "live-migrate", "a", "b", "Succeeded", 1, t, t, 1.0, None))
    progress.finish()
    assert progress.counts["Succeeded"] == 2 and progress.stream is None
