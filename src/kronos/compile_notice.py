"""Saying so when the first run compiles: a minute of silence reads as a hang.

Kronos's kernels are compiled by numba on first use and cached on disk;
after that a run loads them in about a second of CPU. :class:`CompileNotice`
wraps that load: when the process has spent more than ``delay`` seconds of
CPU in it, it must be compiling (wall time would cry wolf on a loaded
machine), so it says on stderr what is happening, how long it usually takes
and how to do it ahead (``kronos warm``); on a terminal it counts the
seconds in place. A warm run prints nothing.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import TextIO

#: CPU seconds of loading from the cache stay well below this; a compile goes far beyond
DELAY = 3.0


class CompileNotice:
    def __init__(
        self,
        stream: TextIO,
        tty: bool,
        delay: float = DELAY,
        what: str = "the planner's kernels",
        usual: str = "30-60 s",
    ) -> None:
        """``usual``: how long it takes on the project's 2-core machine (docs/benchmarks.md)."""
        self.stream = stream
        self.usual = usual
        self.tty = tty
        self.delay = delay
        self.what = what
        self.shown = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._t0 = self._cpu0 = 0.0

    def __enter__(self) -> CompileNotice:
        self._t0, self._cpu0 = time.monotonic(), time.process_time()
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._done.set()
        self._thread.join()
        if self.shown:
            took = time.monotonic() - self._t0
            end = "\r\x1b[2K" if self.tty else ""
            state = "compiled" if kind is None else "compiling stopped"
            self.stream.write(f"{end}kronos: {state} in {took:.0f} s; later runs load them from the cache\n")
            self.stream.flush()

    def _watch(self) -> None:
        while time.process_time() - self._cpu0 <= self.delay:
            if self._done.wait(0.2):
                return  # loaded from the cache: nothing to say
        self.shown = True
        self.stream.write(
            f"kronos: compiling {self.what} once (usually {self.usual} on two cores; "
            "`kronos warm` does it ahead, e.g. when building an image)\n"
        )
        self.stream.flush()
        while self.tty and not self._done.wait(1.0):
            self.stream.write(f"\r\x1b[2K  compiling... {time.monotonic() - self._t0:.0f} s")
            self.stream.flush()
