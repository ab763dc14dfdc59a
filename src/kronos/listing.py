"""Rows on the terminal the way the ``openstack`` client prints them.

Every command that lists records (a plan's steps, state entries, a
snapshot's problems) builds a :class:`Listing` and hands it to
:func:`render` with what the user asked for (:class:`Shape`):
``-f table|json|yaml|value|csv``, ``-c COLUMN`` (repeatable),
``--sort-column`` and ``--noindent``, as cliff's formatters take them, so
scripts written against ``openstack server list -f value -c ID`` work the
same way here. A document (``-o FILE``) is never shaped: it is the
contract's, unchanged.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import textwrap
from collections.abc import Callable, Sequence
from typing import Any

import click
from attrs import frozen

from kronos.errors import UsageError
from kronos.terminal import one_line

FORMATS = ("table", "json", "yaml", "value", "csv")
#: a table never gets narrower than this, whatever the terminal says
MIN_WIDTH = 60


@frozen
class Listing:
    """Named columns and rows of plain values (str, int, float, bool, None, lists)."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]


@frozen
class Shape:
    """What the user asked the rows to look like."""

    fmt: str = "table"
    columns: tuple[str, ...] = ()
    sort: tuple[str, ...] = ()
    noindent: bool = False

    @property
    def asked(self) -> bool:
        """Did the user ask for rows at all (else a command prints its own human view)?"""
        return self.fmt != "table" or bool(self.columns) or bool(self.sort)


def options(default: str = "table") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The click options of :class:`Shape`; the command receives ``shape``."""

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        for opt in reversed(
            [
                click.option("-f", "--format", "fmt", type=click.Choice(FORMATS), default=default,
                             show_default=True, help="how to print the rows (as the openstack client)"),
                click.option("-c", "--column", "columns", multiple=True, metavar="COLUMN",
                             help="print only this column (repeatable, in this order)"),
                click.option("--sort-column", "sort", multiple=True, metavar="COLUMN",
                             help="sort the rows by this column (repeatable)"),
                click.option("--noindent", is_flag=True, help="-f json: one line"),
            ]
        ):  # fmt: skip
            f = opt(f)
        return f

    return decorate


def shape_of(kw: dict[str, Any]) -> Shape:
    """Take the :func:`options` keywords out of a command's ``kw``."""
    shape = Shape(kw.pop("fmt"), tuple(kw.pop("columns")), tuple(kw.pop("sort")), bool(kw.pop("noindent")))
    if shape.noindent and shape.fmt != "json":  # a flag that would change nothing is a mistake to name
        raise UsageError(f"--noindent puts -f json on one line; this is -f {shape.fmt}")
    return shape


def check_output(shape: Shape, output: str | None) -> None:
    """``-o -`` puts the whole document on stdout, where the rows asked for would go: they were
    dropped in silence (``plan s.json -o - -c seq`` printed the plan)."""
    from kronos.files import is_stdout

    if output is not None and shape.asked and is_stdout(output):
        raise UsageError(
            f"-o {output} writes the whole document to stdout; -f, -c and --sort-column shape the listing "
            "shown without it: give one or the other (or -o FILE and the listing)"
        )


def select(listing: Listing, shape: Shape) -> Listing:
    """The rows sorted and the columns chosen; an unknown column is a usage error that lists them."""
    known = listing.columns
    for flag, names in (("-c", shape.columns), ("--sort-column", shape.sort)):
        unknown = [n for n in names if n not in known]
        if unknown:
            raise UsageError(f"{flag} {unknown[0]}: no such column (columns: {', '.join(known)})")
    rows = list(listing.rows)
    for name in reversed(shape.sort):  # stable sorts, last key first
        i = known.index(name)

        def by(row: tuple[Any, ...], i: int = i) -> tuple[int, Any]:
            return _sort_key(row[i])

        rows.sort(key=by)
    chosen = shape.columns or known
    index = [known.index(n) for n in chosen]
    return Listing(tuple(chosen), tuple(tuple(r[i] for i in index) for r in rows))


def _sort_key(x: Any) -> tuple[int, Any]:
    """None first, then numbers, then text: mixed columns sort without a TypeError."""
    if x is None:
        return (0, 0)
    if isinstance(x, bool | int | float):
        return (1, float(x))
    return (2, _text(x))


def render(listing: Listing, shape: Shape, width: int | None = None) -> str:
    """The rows of ``listing`` as ``shape`` asks, ending with a newline (empty for no rows in
    value and csv formats, as cliff prints)."""
    out = select(listing, shape)
    if shape.fmt == "json":
        dicts = [dict(zip(out.columns, r, strict=True)) for r in out.rows]
        return json.dumps(dicts, indent=None if shape.noindent else 2, ensure_ascii=False) + "\n"
    if shape.fmt == "yaml":
        from ruamel.yaml import YAML

        yaml = YAML()  # round-trip: the columns keep their order
        yaml.default_flow_style = False
        yaml.version = (1, 1)  # as documents are (kronos.files.render): PyYAML reads it alike
        buf = io.StringIO()
        # plain JSON values: numpy's float64 (a plan's figures) is JSON's float, no type YAML's knows
        rows = json.loads(json.dumps([dict(zip(out.columns, r, strict=True)) for r in out.rows]))
        yaml.dump(rows, buf)
        return buf.getvalue()
    if shape.fmt == "value":
        return "".join(" ".join(_text(x) for x in r) + "\n" for r in out.rows)
    if shape.fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n")
        writer.writerow(out.columns)
        writer.writerows([[_csv(x) for x in r] for r in out.rows])
        return buf.getvalue()
    return table(out, width or shutil.get_terminal_size((120, 24)).columns)


def _text(x: Any) -> str:
    if x is None:
        return ""
    if isinstance(x, list | tuple):
        return ",".join(map(_text, x))
    if isinstance(x, float):
        return f"{x:.6g}"
    return one_line(str(x))  # a cell is one line: a name's line break would forge a row


def _csv(x: Any) -> Any:
    return x if isinstance(x, int | float) and not isinstance(x, bool) else _text(x)


def table(listing: Listing, width: int) -> str:
    """A bordered table that fits ``width``: the widest columns wrap instead of misaligning."""
    cells = [[_text(x) for x in r] for r in listing.rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(listing.columns)]
    room = max(width, MIN_WIDTH) - (3 * len(widths) + 1)
    while sum(widths) > room and max(widths) > 8:
        widest = widths.index(max(widths))
        widths[widest] = max(8, widths[widest] - max(1, sum(widths) - room))
    line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def row(values: Sequence[str]) -> list[str]:
        wrapped = [
            textwrap.wrap(v, w, break_long_words=True) or [""] for v, w in zip(values, widths, strict=True)
        ]
        height = max(len(x) for x in wrapped)
        return [
            "| "
            + " | ".join((x[k] if k < len(x) else "").ljust(w) for x, w in zip(wrapped, widths, strict=True))
            + " |"
            for k in range(height)
        ]

    out = [line, *row(listing.columns), line]
    for r in cells:
        out += row(r)
    out.append(line)
    return "\n".join(out) + "\n"
