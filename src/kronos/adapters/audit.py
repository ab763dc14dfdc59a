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
from kronos.adapters.journal import MAX_ROW_BYTES, append_line, close_appended, open_append
from kronos.errors import DataError
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


def _must_be_an_audit_log(path: Path, label: str) -> None:
    """A file that is there must already be an audit log: one whose first line is an event, or
    a line cut as it was written. ``--audit-file plan.json`` appended a line to the plan, and
    no command could read it again (65, before anything is written)."""
    try:
        if not path.is_file() or path.stat().st_size == 0:
            return  # a new log, or a device (/dev/stdout): nothing to check
        with path.open("rb") as fh:
            first = fh.readline(MAX_ROW_BYTES + 1).rstrip(b"\r\n")
    except OSError:
        return  # open_append says why it cannot be written
    try:
        event = json.loads(first)
    except ValueError:  # (UnicodeDecodeError too) the first event, cut by a kill, is still a log
        event = {"event": "cut"} if first.startswith(b'{"') and len(first) <= MAX_ROW_BYTES else None
    document = isinstance(event, dict) and "format" in event
    if not document and isinstance(event, dict) and "event" in event:
        return
    what = f"a {event['format']} document" if document else "no event"
    raise DataError(
        f"{label} {str(path)!r}: line 1 is {what}: an audit log has one JSON event per line, "
        "as kronos appends them (name a new file to start one)"
    )


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
        _must_be_an_audit_log(Path(path), label)
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
