"""The file names a command is given: what format an output may be named for, and that no
file is named twice.

Both guard against mistakes that used to pass in silence: ``-o plan.xml`` got JSON under an
XML name; ``replay s.json -o s.json`` replaced the snapshot with its plan.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from kronos.errors import UsageError

#: suffixes that say a format: a name ending in one the command does not write is a mistake;
#: any other suffix (``plan.bak``, ``plan-2026.12.03``, a mktemp name) is just a name
FORMAT_SUFFIXES = frozenset({".json", ".jsonl", ".yaml", ".yml", ".html", ".htm", ".xml", ".txt", ".csv",
                             ".tsv", ".toml", ".ini", ".conf", ".md", ".pdf", ".png", ".svg"})  # fmt: skip
DOCUMENT_SUFFIXES = (".json", ".yaml", ".yml")


def misnamed(output: str | None, suffixes: tuple[str, ...]) -> str | None:
    """Why ``output`` is named for a format this command does not write (or names nothing), or None."""
    if output is not None and not output.strip():
        return f"{output!r}: name a file, or - for standard output"
    suffix = Path(output).suffix.lower() if output not in (None, "-") else ""
    if suffix in FORMAT_SUFFIXES and suffix not in suffixes:
        kinds = " or ".join([", ".join(suffixes[:-1]), suffixes[-1]] if len(suffixes) > 1 else suffixes)
        return f"{output!r}: this writes {kinds} files, not {Path(str(output)).suffix}"
    return None


def refuse_blank(why: Callable[[str], str]) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """Click callback refusing a blank value (each of a repeatable option's too), saying ``why``."""

    def check(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        for item in value if isinstance(value, tuple) else (value,):
            if isinstance(item, str) and not item.strip():
                raise click.BadParameter(why(item), ctx, param)
        return value

    return check


#: a name (``--instance ''``) that would match nothing, silently
nonblank = refuse_blank(lambda _: "must not be empty")


def an_id(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Click callback for a VM's id: not blank, no control character (``--instance "$(cat id)"``
    from a CRLF file: a state holding it could not be read back, by any engine)."""
    from kronos.core.validate import name_problem

    nonblank(ctx, param, value)
    problem = name_problem(value) if isinstance(value, str) else None
    if problem:
        raise click.BadParameter(problem, ctx, param)
    return value


#: a file or folder: the OS would read '' as the current folder, and ``--state "$UNSET"`` would pass
a_path = refuse_blank(lambda v: f"{v!r} names nothing: give a path")


def written_as(*suffixes: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """Click callback for ``-o``: see :func:`misnamed`."""

    def check(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        problem = misnamed(value, suffixes)
        if problem:
            raise click.BadParameter(problem, ctx, param)
        return value

    return check


DOCUMENT = written_as(*DOCUMENT_SUFFIXES)


def distinct_files(*named: tuple[str, str | None]) -> None:
    """Refuse one file named twice among a command's inputs and outputs (``-o x --state x``
    kept the state alone); devices and pipes (``/dev/null`` for both) may repeat."""
    from kronos.files import shared_file

    found = shared_file((f"{flag} {path}", path) for flag, path in named)
    if found is not None:
        raise UsageError(f"{found[0]}: the same file as {found[1]}; each must be its own")
