"""How ``kronos execute`` shows progress: a bar on a terminal, one plain line per step otherwise.

On a terminal the bar is redrawn in place and only steps that did not
succeed get a line of their own (above the bar), so a long plan stays
readable; piped into a file or a log collector, every outcome is one line.
"""

from __future__ import annotations

from collections import Counter
from typing import TextIO

from kronos.adapters.executor import StepResult
from kronos.terminal import printable

WIDTH = 30


class Progress:
    def __init__(self, total: int, stream: TextIO, tty: bool) -> None:
        self.total = total
        self.stream: TextIO | None = stream
        self.tty = tty
        self.counts: Counter[str] = Counter()

    def __call__(self, result: StepResult) -> None:
        self.counts[result.outcome] += 1
        line = printable(describe(result, self.total))
        if not self.tty:
            self._show(line + "\n")
        else:
            self._show(
                ("\r\x1b[2K" + line + "\n" if result.outcome != "Succeeded" else "")
                + "\r\x1b[2K"
                + self.bar()
            )

    def _show(self, text: str) -> None:
        """Write and flush; a stream that refuses (a full disk, a closed pipe) is given up: the
        results log, not this display, is the record, and the steps go on."""
        if self.stream is None:
            return
        try:
            self.stream.write(text)
            self.stream.flush()
        except OSError:
            self.stream = None

    def bar(self) -> str:
        done = sum(self.counts.values())
        filled = WIDTH * done // self.total if self.total else WIDTH
        tally = "  ".join(f"{k} {n}" for k, n in sorted(self.counts.items()))
        return f"[{'#' * filled}{'.' * (WIDTH - filled)}] {done}/{self.total}  {tally}"

    def finish(self) -> None:
        if self.tty and self.counts:
            self._show("\n")


def describe(result: StepResult, total: int) -> str:
    return (
        f"[{result.seq}/{total}] {result.outcome:<16} {result.instance} "
        f"{result.source} -> {result.destination} ({result.attempts} attempt(s), {result.seconds:.1f}s)"
        + (f": {result.error}" if result.error else "")
        + (" [reconciled]" if result.reconciled else "")
    )
