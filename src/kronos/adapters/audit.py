"""The audit log: who changed the cloud or the state, when, and to what.

An operator asks "why did this VM move at 03:12, and who let it?" long
after the logs rotated. Every decision that changes the cloud or the state
(a plan the engine emitted, a step started and finished, a cooldown or a
quarantine set, one released by hand) is one JSON line in ``[engine]
audit_file`` (``--audit-file`` for ``kronos state``): appended, flushed and
fsynced before the action it records goes on, never rewritten. Each line
says who: the user, the host and the process (and, once engines run in a
group, the member). Redacted like every other sink.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from kronos.adapters.executor import iso
from kronos.adapters.journal import append_line, close_appended, open_append
from kronos.redact import redact_data


def who(member: str | None = None) -> dict[str, Any]:
    """The acting user, host and process (and engine group member, when there is one)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container's arbitrary uid)
        user = str(os.getuid())
    out: dict[str, Any] = {"user": user, "host": socket.gethostname(), "pid": os.getpid()}
    if member is not None:
        out["member"] = member
    return out


def _plain(x: Any) -> str:
    """Times as every other Kronos timestamp (UTC, Z); anything else as text."""
    return iso(x) if isinstance(x, datetime) else str(x)


class Audit:
    """Append-only, fsynced JSON lines: ``{"ts", "event", "who", ...}``."""

    def __init__(
        self,
        path: str | Path,
        label: str = "[engine] audit_file",
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        member: str | None = None,
    ) -> None:
        self.clock = clock
        self.who = who(member)
        self._lock = threading.Lock()
        self._label = label
        self._out: IO[str] | None = open_append(path, label)

    def __call__(self, event: str, **fields: Any) -> None:
        line = {"ts": iso(self.clock()), "event": event, "who": self.who, **fields}
        text = json.dumps(redact_data(line), sort_keys=True, default=_plain)
        with self._lock:
            if self._out is None:
                return  # closed by a second signal: the journal's results still say what happened
            append_line(self._out, text, self._label)

    def close(self) -> None:
        with self._lock:
            if self._out is not None:
                close_appended(self._out)
                self._out = None
