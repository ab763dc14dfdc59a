"""What reaches an operator's terminal: text whose control characters are shown, not obeyed.

Names come from Nova and from snapshot files. Nova refuses a name with
control characters, but a hand-made or edited snapshot does not, and a VM
named with ESC ``[2J`` or BEL would clear or ring the terminal of whoever
runs ``kronos explain`` on it; a carriage return or a bidi override makes a
line read as something it is not. click strips ANSI escapes only when its
stream is not a terminal, and never BEL. So every line the CLI prints passes
:func:`printable` once, at the edge, and the core's records keep the names
as they are.

A standard stream that refuses a write (stdout on a full disk) is exit 74
naming the stream, not a traceback; a closed pipe (``kronos plan | head``)
is the reader's choice and ends quietly.

The escape is JSON's own ``\\uXXXX``: JSON output stays valid JSON that
reads back to the same text (``json.dumps`` already escapes C0 itself; DEL,
C1 and the bidi controls it writes raw with ``ensure_ascii=False``). A
character the stream's encoding lacks gets the same escape, through the
``kronos.json`` error handler, and one beyond the BMP (an emoji) its UTF-16
surrogate pair: Python's ``\\U0001f600`` is no JSON escape, and a name
written so on a Latin-1 terminal did not read back.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kronos.errors import KronosIOError

#: C0 but tab and newline, DEL, C1, and the bidi embeddings, overrides and isolates
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


#: the error handler that writes what an encoding lacks as JSON escapes
UNENCODABLE = "kronos.json"


def _escape(char: str) -> str:
    """``char`` as JSON spells it: ``\\uXXXX``, a pair of them past the BMP."""
    code = ord(char)
    if code > 0xFFFF:
        code -= 0x10000
        return f"\\u{0xD800 | (code >> 10):04x}\\u{0xDC00 | (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


def _escape_unencodable(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    return "".join(map(_escape, exc.object[exc.start : exc.end])), exc.end


codecs.register_error(UNENCODABLE, _escape_unencodable)


def printable(text: str) -> str:
    """``text`` with each control character spelled ``\\uXXXX``."""
    return _CONTROL.sub(lambda m: _escape(m.group()), text)


#: what :func:`printable` leaves for the lines of a message, and a name must not hold
_BREAKS = re.compile("[\t\n]")


def one_line(text: str) -> str:
    """``text`` (a VM's name, its owner's free text) with its tabs and line breaks spelled as
    :func:`printable` spells the rest: a name with a line break forged a row of a table."""
    return _BREAKS.sub(lambda m: _escape(m.group()), text)


def echo(message: Any = None, **kwargs: Any) -> None:
    """:func:`click.echo`, with text passed through :func:`printable` first."""
    import click  # the command line's: the library (`kronos.dump` to "-") uses printable alone

    shown = printable(message) if isinstance(message, str) else message
    if kwargs.get("err"):
        with contextlib.suppress(OSError):  # standard error refused (2>/dev/full): nowhere to say so
            click.echo(shown, **kwargs)
        return
    with stdout_refusals():
        click.echo(shown, **kwargs)


@contextlib.contextmanager
def stdout_refusals() -> Iterator[None]:
    """Standard output refusing a write (a full disk) raised as exit 74 naming it; a closed
    pipe passes up as it is (the reader had enough)."""
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise unwritable("standard output", exc) from None


def prepare_streams() -> None:
    """Standard output and error as every command can use them: one started closed (``>&-``,
    ``2>&-``: Python leaves it None) writes to /dev/null, as Python's own print() ignores it;
    one whose encoding lacks a character (a Latin-1 locale has no → or …) shows it as
    ``\\u2192`` rather than fail."""
    if sys.stdout is None:
        sys.stdout = Path(os.devnull).open("w", encoding="utf-8")  # noqa: SIM115 - the process's, for good
    if sys.stderr is None:
        sys.stderr = Path(os.devnull).open("w", encoding="utf-8")  # noqa: SIM115
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper) and stream.errors == "strict":
            stream.reconfigure(errors=UNENCODABLE)


def unwritable(stream: str, exc: OSError) -> KronosIOError:
    """A standard stream that refused a write: what the exit (74) says."""
    return KronosIOError(f"{stream}: cannot write: {exc.strerror or exc}")


def settle_stdout() -> OSError | None:
    """Flush standard output; if it cannot take the rest (a full disk, a closed pipe), point it
    at /dev/null, so that the interpreter's own flush at exit does not fail a second time, and
    return why."""
    try:
        sys.stdout.flush()
        return None
    except OSError as exc:
        with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        return exc
