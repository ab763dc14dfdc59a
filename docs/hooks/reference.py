"""MkDocs hooks: the configuration reference, rendered from the code at build time.

A page that holds the line ``<!-- kronos:config-reference -->`` gets, in its
place, a table per ``[section]`` of kronos.conf (the attrs classes of
:mod:`kronos.adapters.config`) and one of the planner options
(:mod:`kronos.core.options`): each key's type, default, range or choices
and the ``#:`` comment above its field. Nothing is written by hand, so the
page cannot drift from the code. And the API reference's docstrings lose
the Sphinx role names mkdocstrings leaves in.
"""

from __future__ import annotations

import inspect
import math
import re
import types
import typing
from collections.abc import Sequence
from typing import Any

import attrs

MARKER = "<!-- kronos:config-reference -->"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """The MkDocs event: replace the marker, leave every other page alone."""
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, render())


def on_page_content(html: str, page: Any, config: Any, files: Any) -> str:
    """Sphinx roles in docstrings (``:func:`x```), which mkdocstrings keeps: the role goes, the code stays."""
    return re.sub(r":(?:mod|func|class|meth|attr|data|exc|obj):(?=<code>)", "", html)


def field_docs(cls: type) -> dict[str, str]:
    """Each field's ``#:`` comment lines (the ones right above it), joined."""
    names = {a.name for a in attrs.fields(cls)}
    docs: dict[str, str] = {}
    pending: list[str] = []
    for line in inspect.getsource(cls).splitlines()[1:]:
        text = line.strip()
        if text.startswith("#:"):
            pending.append(text[2:].strip())
            continue
        m = re.match(r"(\w+)\s*:", text)
        if m and m.group(1) in names and pending:
            docs[m.group(1)] = " ".join(pending)
        pending = []
    return docs


def _markdown(text: str) -> str:
    """reST-isms of the comments as Markdown: ``x`` and :role:`x` become `x`; FORMATS §N links."""
    text = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", text)
    text = re.sub(r"``([^`]+)``", r"`\1`", text)
    text = re.sub(r"FORMATS (§\d+)", r"[FORMATS \1](contract.md)", text)
    return text.replace("|", "\\|")


def _type(hint: Any) -> str:
    from kronos.adapters.config import Secret

    args = typing.get_args(hint)
    if type(None) in args:
        inner = next(a for a in args if a is not type(None))
        return f"{_type(inner)} or none"
    if hint is Secret:
        return "secret"
    if typing.get_origin(hint) is tuple:
        return "list (comma-separated)"
    return {bool: "boolean", int: "integer", float: "number", str: "string"}.get(hint, str(hint))


def _value(value: Any) -> str:
    if value is None:
        return "*none*"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float):
        return f"`{value:g}`"
    if value == "":
        return "*empty*"
    return f"`{value}`"


def _range(low: float, high: float, open_low: bool) -> str:
    if math.isinf(high):
        return f"{'>' if open_low else '≥'} {low:.10g}"
    return f"{'(' if open_low else '['}{low:.10g}, {high:.10g}]"


def _option_range(name: str, hint: Any) -> str:
    """A number option's range as :func:`make_options` checks it, found by asking it."""
    from kronos.core.options import MAX_SECONDS, make_options
    from kronos.errors import UsageError

    whole = hint is int or int in typing.get_args(hint)

    def accepts(value: float) -> bool:
        try:
            make_options({name: str(int(value) if whole else value)}, alone=True)
        except UsageError:
            return False
        return True

    high = 1.0 if not accepts(2) else MAX_SECONDS if not accepts(2 * MAX_SECONDS) else math.inf
    shown = _range(0, high, not accepts(0))
    return f"{shown} or -1" if accepts(-1) else shown


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def config_sections() -> str:
    from kronos.adapters import config

    out: list[str] = []
    for section, cls in config._SECTIONS.items():
        docs = field_docs(cls)
        hints = typing.get_type_hints(cls, vars(types) | vars(config))
        rows = []
        for a in attrs.fields(cls):
            if a.name == "options":
                continue
            hint = hints[a.name]
            if a.name in config._RANGES:
                values = _range(*config._RANGES[a.name])
            elif hint in (int, float):
                values = "≥ 0"
            else:
                values = ""
            kind = f"{_type(hint)}, {_value(a.default)}"
            rows.append((f"`{a.name}`", kind, values, _markdown(docs.get(a.name, ""))))
        env = f"{config.ENV_PREFIX}{section.upper()}_"
        first = attrs.fields(cls)[0].name
        out.append(f"## `[{section}]`\n")
        also = " It also takes every [planner option](#planner-options)." if section == "engine" else ""
        out.append(f"From the environment: `{env}<KEY>`, e.g. `{env}{first.upper()}`.{also}\n")
        out.append(_table(("key", "type, default", "range", "what it is"), rows) + "\n")
    return "\n".join(out)


def planner_options() -> str:
    from kronos.core import options

    out = ["## Planner options\n"]
    phase_names = {"": "every phase"}
    for phase, cls in options.SECTIONS.items():
        docs = field_docs(cls)
        hints = typing.get_type_hints(cls, vars(types))
        rows = []
        for a in attrs.fields(cls):
            if a.name not in options.OPTION_NAMES:  # internal knobs: not --set keys
                continue
            choices = options._CHOICES.get(a.name)
            values = ", ".join(f"`{c}`" for c in choices) if choices else ""
            hint = hints[a.name]
            if hint in (int, float, int | None, float | None):
                values = _option_range(a.name, hint)
            kind = f"{_type(hint)}, {_value(a.default)}"
            rows.append((f"`{a.name}`", kind, values, _markdown(docs.get(a.name, ""))))
        title = phase_names.get(phase, f"the {phase} phase")
        out.append(f"### Read by {title}\n")
        doc = cls.__dict__.get("__doc__")  # its own only: inspect.getdoc would inherit object's
        if doc:
            out.append(_markdown(inspect.cleandoc(doc)) + "\n")
        out.append(_table(("option", "type, default", "range or values", "what it is"), rows) + "\n")
    return "\n".join(out)


def render() -> str:
    return config_sections() + "\n" + planner_options()
