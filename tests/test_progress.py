"""``kronos execute``'s progress: a bar redrawn in place on a terminal, plain lines otherwise."""

from __future__ import annotations

import io

from kronos.adapters.executor import StepResult
from kronos.progress import Progress


def _result(seq: int, outcome: str, error: str | None = None) -> StepResult:
    t = "2026-11-21T10:00:00.000000Z"
    return StepResult(seq, 1, f"vm-{seq}", "live-migrate", "cmp-1", "cmp-2", outcome, 1, t, t, 1.5, error)


def test_piped_output_is_one_plain_line_per_outcome() -> None:
    out = io.StringIO()
    p = Progress(3, out, tty=False)
    p(_result(1, "Succeeded"))
    p(_result(2, "PreFlightError", "moved: on cmp-4"))
    p.finish()
    lines = out.getvalue().splitlines()
    assert lines == [
        "[1/3] Succeeded        vm-1 cmp-1 -> cmp-2 (1 attempt(s), 1.5s)",
        "[2/3] PreFlightError   vm-2 cmp-1 -> cmp-2 (1 attempt(s), 1.5s): moved: on cmp-4",
    ]
    assert "\r" not in out.getvalue()


def test_a_terminal_gets_a_bar_redrawn_in_place_and_lines_only_for_trouble() -> None:
    out = io.StringIO()
    p = Progress(4, out, tty=True)
    p(_result(1, "Succeeded"))
    p(_result(2, "MigrationFailed", "migration x ended error"))
    p(_result(3, "Succeeded"))
    text = out.getvalue()
    last = text.rsplit("\r\x1b[2K", 1)[1]
    assert last == "[" + "#" * 22 + "." * 8 + "] 3/4  MigrationFailed 1  Succeeded 2"
    assert "vm-1" not in text  # successes only move the bar
    assert "\r\x1b[2K[2/4] MigrationFailed  vm-2 cmp-1 -> cmp-2 (1 attempt(s), 1.5s): migration x" in text
    p(_result(4, "Succeeded"))
    p.finish()
    assert out.getvalue().endswith("] 4/4  MigrationFailed 1  Succeeded 3\n")
