"""What reaches an operator's terminal: text whose control characters are shown, not obeyed.

Names come from Nova and from snapshot files. Nova refuses a name with
control characters, but a hand-made or edited snapshot does not, and a VM
named with ESC ``[2J`` or BEL would clear or ring the terminal of whoever
runs ``kronos explain`` on it; a carriage return or a bidi override makes a
line read as something it is not. click strips ANSI escapes only when its
stream is not a terminal, and never BEL. So every line the CLI prints passes
:func:`printable` once, at the edge, and the core's records keep the names
as they are.

The escape is JSON's own ``\\uXXXX``: JSON output stays valid JSON that
reads back to the same text (``json.dumps`` already escapes C0 itself; DEL,
C1 and the bidi controls it writes raw with ``ensure_ascii=False``).
"""

from __future__ import annotations

import re
from typing import Any

#: C0 but tab and newline, DEL, C1, and the bidi embeddings, overrides and isolates
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` with each control character spelled ``\\uXXXX``."""
    return _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def echo(message: Any = None, **kwargs: Any) -> None:
    """:func:`click.echo`, with text passed through :func:`printable` first."""
    import click  # the command line's: the library (`kronos.dump` to "-") uses printable alone

    click.echo(printable(message) if isinstance(message, str) else message, **kwargs)
