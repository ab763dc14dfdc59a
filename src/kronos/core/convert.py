"""Converting between the model and plain JSON-shaped data.

Reading is one reader per model class, derived from its attrs fields and type
hints, so a field added to :mod:`kronos.core.model` is known to every loader
at once (there is no second list of keys to keep in step). A reader is
strict, because a planner must not guess: ``"false"`` is not a boolean,
``"1.7"`` is not a number, a key the model does not know is an error naming
the nearest known one (FORMATS: except ``x_`` keys and inside the top-level
``source``), numbers are finite and integers fit 64 bits, text is valid
Unicode and times are RFC 3339 with a UTC offset. It is also patient: a bad
value is recorded with its path and replaced by a placeholder, and reading
goes on, so one run reports every problem, and the semantic checks of
:mod:`kronos.core.validate` run on the result too (their findings at or under
a structurally bad path are dropped as echoes of it).

Writing uses cattrs (one converter, built once by :func:`make_converter`, never
cattrs' global one). Optional fields that are ``None`` are left out, so written
documents stay small and round-trip to equal objects.

Measured on a 100 000-VM snapshot with the garbage collector paused (as the
loaders do): these closures take 0.93 s where the cattrs-generated functions
they replaced took 0.74 s (whose strict scalar hooks were Python calls per
value too); they iterate over the keys a mapping has rather than over the
model's fields, since most optional fields are absent.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
import types
import typing
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import attrs
import cattrs
from cattrs.gen import make_dict_unstructure_fn, override

from kronos.core.model import (
    RESOURCE_ALIASES,
    RESOURCES,
    STANDARD_RESOURCE_CLASSES,
    VM,
    Capacity,
    Plan,
    Snapshot,
    State,
)
from kronos.core.options import INT64, nearest
from kronos.core.validate import NO_VALUE, Issue, check_format, key_path, validate
from kronos.errors import ValidationError

T = TypeVar("T")

#: deepest nesting a document may have (the model needs 6; free-form ``source`` gets the rest)
MAX_DEPTH = 64
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)")
_CUSTOM_CLASS = re.compile(r"CUSTOM_[A-Z0-9_]+")


def parse_time(text: str) -> datetime:
    """RFC 3339 → aware UTC datetime; naive input is taken as UTC (command-line convenience)."""
    if not isinstance(text, str):
        raise ValueError(f"expected an RFC 3339 time string, got {text!r}")
    stripped = text.strip()
    if stripped[-1:] in ("Z", "z"):  # RFC 3339 §5.6 allows either for UTC
        stripped = stripped[:-1] + "+00:00"
    t = datetime.fromisoformat(stripped)
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC)


def format_time(t: datetime) -> str:
    t = t.astimezone(UTC)
    spec = "%Y-%m-%dT%H:%M:%S.%fZ" if t.microsecond else "%Y-%m-%dT%H:%M:%SZ"
    return t.strftime(spec)


class DuplicateKeys(dict[str, Any]):
    """A parsed JSON object that named some key more than once (the parser's last value kept).

    The JSON reader builds these instead of failing, so the problem is reported
    with its path, beside every other problem of the document.
    """

    duplicates: dict[str, int]


# --------------------------------------------------------------------- reading

#: where a value is: keys and list indexes from the document's root
Path = tuple[Any, ...]
#: a value's reader: (value, path of its parent, its key there, problems so far) -> model value
Reader = Callable[[Any, Path, Any, "_Problems"], Any]


class _Invalid:
    """What a reader returns for a value it could not read (the problem is already recorded)."""


INVALID: Any = _Invalid()


def render_path(path: Iterable[str | int]) -> str:
    out = ""
    for key in path:
        out = key_path(out, key)
    return out or "(document)"


class _Problems:
    """The structural problems found so far, and the paths they make unreliable."""

    __slots__ = ("above", "bad", "issues")

    def __init__(self) -> None:
        self.issues: list[Issue] = []
        self.bad: set[str] = set()
        self.above: set[str] = set()  # every path that contains a bad one

    def fail(self, path: Path, message: str, value: Any = NO_VALUE) -> Any:
        where = render_path(path)
        self.issues.append(Issue(where, message, value))
        self.bad.add(where)
        self.above.update(where[:i] for i, c in enumerate(where) if c in ".[")
        return INVALID

    def covers(self, path: str) -> bool:
        """Is a finding at ``path`` an echo of a bad value (at, under or containing it)?

        A check at a containing path (``policies``: the weights' sum) judged
        the stand-in, not what the document said.
        """
        if path in self.bad or path in self.above:
            return True
        return any(path[:i] in self.bad for i, c in enumerate(path) if c in ".[")

    def duplicates(self, mapping: Any, here: Path) -> None:
        for key, count in getattr(mapping, "duplicates", {}).items():
            self.fail((*here, key), f"key given {count} times (only one is allowed)")

    def unknown(self, mapping: dict[Any, Any], known: Iterable[str], here: Path) -> None:
        names = sorted(known)
        for key in mapping:
            if isinstance(key, str) and (key in names or key.startswith("x_")):
                continue
            if not isinstance(key, str):
                self.fail(here, "keys must be strings", key)
            else:
                near = nearest(key, names)
                hint = f"did you mean {near}?" if near else f"known keys: {', '.join(names)}"
                self.fail((*here, key), f"unknown key; {hint}")


def _mapping(v: Any, here: Path, p: _Problems, what: str) -> bool:
    """Is ``v`` a JSON object? (records the problem, and any duplicate keys, if not)."""
    if type(v) is dict:
        return True
    if isinstance(v, dict):
        p.duplicates(v, here)
        return True
    p.fail(here, f"expected {what}", v)
    return False


def _valid_text(s: str) -> bool:
    if s.isascii():
        return True
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _str(v: Any, parent: Path, key: Any, p: _Problems) -> Any:
    if type(v) is str and (v.isascii() or _valid_text(v)):
        return v
    if isinstance(v, str):
        return p.fail((*parent, key), "not valid Unicode text (a lone surrogate)", v)
    return p.fail((*parent, key), "expected a string", v)


def _float(v: Any, parent: Path, key: Any, p: _Problems) -> Any:
    t = type(v)
    if t is float:
        if v - v == 0.0:  # neither NaN nor infinite
            return v
        return p.fail((*parent, key), "must be a finite number", v)
    if t is int:
        try:
            return float(v)
        except OverflowError:
            return p.fail((*parent, key), "number out of range", v)
    return p.fail((*parent, key), "expected a number", v)


def _int(v: Any, parent: Path, key: Any, p: _Problems) -> Any:
    t = type(v)
    if t is int:
        if -INT64 <= v < INT64:
            return v
        return p.fail((*parent, key), "integer out of range (it must fit in 64 bits)", v)
    if t is float and v.is_integer():
        if -INT64 <= v < INT64:
            return int(v)
        return p.fail((*parent, key), "integer out of range (it must fit in 64 bits)", v)
    return p.fail((*parent, key), "expected an integer", v)


def _bool(v: Any, parent: Path, key: Any, p: _Problems) -> Any:
    if v is True or v is False:
        return v
    return p.fail((*parent, key), "expected true or false", v)


def _time(v: Any, parent: Path, key: Any, p: _Problems) -> Any:
    if not isinstance(v, str):
        return p.fail((*parent, key), "expected an RFC 3339 time string", v)
    if not _RFC3339.fullmatch(v):
        why = "expected an RFC 3339 time with a UTC offset, e.g. 2026-11-21T10:00:00Z"
        return p.fail((*parent, key), why, v)
    try:
        t = datetime.fromisoformat(v.upper().replace("Z", "+00:00"))
        return t.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        return p.fail((*parent, key), f"not a valid time ({exc})", v)


def _json(v: Any, parent: Path, key: Any, p: _Problems) -> Any:
    """Free-form data (``source``, plan ``options``): anything JSON can say, not too deep."""
    ok = True
    stack: list[tuple[Any, Path]] = [(v, (*parent, key))]
    while stack:
        x, at = stack.pop()
        t = type(x)
        if x is None or t is bool or t is int:
            continue
        if t is str or t is float:
            ok = (_str if t is str else _float)(x, at[:-1], at[-1], p) is not INVALID and ok
        elif len(at) >= MAX_DEPTH:
            p.fail(at, f"nested more than {MAX_DEPTH} levels deep")
            ok = False
        elif t is list:
            stack.extend((y, (*at, i)) for i, y in enumerate(x))
        elif isinstance(x, dict):
            p.duplicates(x, at)
            for k, y in x.items():
                if isinstance(k, str) and _valid_text(k):
                    stack.append((y, (*at, k)))
                else:
                    p.fail(at, "keys must be strings of valid Unicode", k)
                    ok = False
        else:
            p.fail(at, "not a JSON value", x)
            ok = False
    return v if ok else INVALID


def _optional(inner: Reader) -> Reader:
    def read(v: Any, parent: Path, key: Any, p: _Problems) -> Any:
        return None if v is None else inner(v, parent, key, p)

    return read


def _tuple(item: Reader, placeholder: Any) -> Reader:
    def read(v: Any, parent: Path, key: Any, p: _Problems) -> Any:
        here: Path = (*parent, key)
        if type(v) is not list:
            return p.fail(here, "expected a list", v)
        out = []
        for i, x in enumerate(v):
            y = item(x, here, i, p)
            out.append(placeholder if y is INVALID else y)
        return tuple(out)

    return read


def _dict(value: Reader, keys: Callable[[str], str | None] | None = None) -> Reader:
    """A JSON object keyed by data (policy names, hosts); ``keys`` renames or refuses keys."""

    def read(v: Any, parent: Path, key: Any, p: _Problems) -> Any:
        here: Path = (*parent, key)
        if not _mapping(v, here, p, "a mapping"):
            return INVALID
        out = {}
        for k, x in v.items():
            if not (type(k) is str and (k.isascii() or _valid_text(k))):
                p.fail(here, "keys must be strings of valid Unicode", k)
                continue
            name = k
            if keys is not None:
                if k.startswith("x_"):  # a producer's extension, not data
                    _json(x, here, k, p)
                    continue
                renamed = keys(k)
                if renamed is None:
                    p.fail((*here, k), f"unknown resource class; {_class_hint(k)}")
                    continue
                if renamed in out:
                    p.fail((*here, k), f"{renamed} given twice (by its two names)")
                    continue
                name = renamed
            y = value(x, here, k, p)
            if y is not INVALID:
                out[name] = y
        return out

    return read


def _text_dict(v: Any, parent: Path, key: Any, p: _Problems) -> Any:
    """Metadata and extra specs are strings in Nova; numbers and booleans are kept as their text."""
    here: Path = (*parent, key)
    if not _mapping(v, here, p, "a mapping of strings"):
        return INVALID
    out: dict[str, str] = {}
    for k, x in v.items():
        if not (isinstance(k, str) and _valid_text(k)):
            p.fail(here, "keys must be strings of valid Unicode", k)
            continue
        if isinstance(x, bool):
            x = "true" if x else "false"
        elif type(x) is int or (type(x) is float and math.isfinite(x)):
            x = str(x)
        y = _str(x, here, k, p)
        if y is not INVALID:
            out[k] = y
    return out


def _resource_class(name: str) -> str | None:
    """The model's name for a resource class key (FORMATS §4), or None if it is not one."""
    if name in RESOURCES or name in STANDARD_RESOURCE_CLASSES or _CUSTOM_CLASS.fullmatch(name):
        return name
    return RESOURCE_ALIASES.get(name)


def _class_hint(name: str) -> str:
    known = [*RESOURCES, *RESOURCE_ALIASES, *STANDARD_RESOURCE_CLASSES]
    near = nearest(name, known)
    return (
        f"did you mean {near}?"
        if near
        else "expected vcpus, memory_mb, disk_gb, a Placement class or CUSTOM_*"
    )


_resources = _dict(_float, keys=_resource_class)


def _capacity(v: Any, parent: Path, key: Any, p: _Problems) -> Any:
    """``capacity``: the three legacy keys (or their Placement aliases) and other classes, flat."""
    amounts = _resources(v, parent, key, p)
    if amounts is INVALID:
        return INVALID
    given = {_resource_class(k) for k in v if isinstance(k, str)}
    for r in RESOURCES:
        if r not in amounts:
            if r not in given:  # (present but bad is reported already)
                p.fail((*parent, key, r), "missing required key")
            amounts[r] = math.nan  # a stand-in; its path is reported
    classes = {k: x for k, x in amounts.items() if k not in RESOURCES}
    return Capacity(amounts["vcpus"], amounts["memory_mb"], amounts["disk_gb"], classes=classes or None)


#: readers for the one class and the one field whose JSON shape is not their attrs shape
_CLASS_READERS: dict[type, Reader] = {Capacity: _capacity}
_FIELD_READERS: dict[tuple[type, str], Reader] = {(VM, "resources"): _optional(_resources)}


@functools.cache
def reader_for(tp: Any) -> Reader:
    """The reader of a model type (cached: the model's types are fixed)."""
    simple: dict[Any, Reader] = {str: _str, float: _float, int: _int, bool: _bool, datetime: _time}
    if tp in simple:
        return simple[tp]
    if tp is Any:
        return _json
    if tp in _CLASS_READERS:
        return _CLASS_READERS[tp]
    if attrs.has(tp):
        return _class_reader(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in args if a is not type(None)]
        return _optional(reader_for(inner))
    if origin is tuple:
        return _tuple(reader_for(args[0]), placeholder(args[0]))
    if origin is dict:
        return _text_dict if args[1] is str else _dict(reader_for(args[1]))
    raise TypeError(f"no reader for {tp!r}")  # a model type this module does not know: a bug


@functools.cache
def placeholder(tp: Any) -> Any:
    """A stand-in for a value that could not be read, so reading (and validating) can go on."""
    simple = {str: "", float: math.nan, int: 0, bool: False, datetime: _EPOCH}
    if tp in simple:
        return simple[tp]
    if tp is Capacity:
        return Capacity(math.nan, math.nan, math.nan)
    if attrs.has(tp):
        hints = typing.get_type_hints(tp)
        need = {
            a.name: placeholder(hints[a.name])
            for a in attrs.fields(tp)
            if a.init and a.default is attrs.NOTHING
        }
        return tp(**need)
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType) or tp is Any:
        return None
    return {tuple: (), dict: {}}[origin]


def _class_reader(cls: type) -> Reader:
    hints = typing.get_type_hints(cls)
    fields = {
        a.name: _FIELD_READERS.get((cls, a.name)) or reader_for(hints[a.name])
        for a in attrs.fields(cls)
        if a.init
    }
    required = tuple(
        (a.name, placeholder(hints[a.name]))
        for a in attrs.fields(cls)
        if a.init and a.default is attrs.NOTHING
    )
    what = f"a mapping ({cls.__name__})"

    def read(v: Any, parent: Path, key: Any, p: _Problems) -> Any:
        here: Path = parent if key is None else (*parent, key)
        if type(v) is not dict and not _mapping(v, here, p, what):
            return INVALID
        kwargs = {}
        unknown = False
        for k, x in v.items():  # the keys given, not every field: most optional ones are absent
            read_field = fields.get(k)
            if read_field is None:
                if type(k) is str and k.startswith("x_"):  # an extension: any JSON value
                    _json(x, here, k, p)
                else:
                    unknown = True
                continue
            y = read_field(x, here, k, p)
            if y is not INVALID:
                kwargs[k] = y
        if unknown:
            p.unknown(v, fields, here)
        for name, stand_in in required:
            if name not in kwargs:
                if name not in v:
                    p.fail((*here, name), "missing required key")
                kwargs[name] = stand_in
        return cls(**kwargs)

    return read


_KINDS: dict[type, str] = {
    Snapshot: "kronos.snapshot",
    Plan: "kronos.plan",
    State: "kronos.state",
}


def structure(data: Any, cls: type[T], source: str) -> T:
    """Build ``cls`` from parsed JSON/YAML, or raise ValidationError naming every problem.

    Plans and states are also checked for meaning here (a loader is their only
    gate); a snapshot's meaning is :func:`kronos.validate`'s, which callers run
    anyway and which also gives warnings. When the structure is bad, the
    semantic errors of what could be read are reported with it.
    """
    kind = _KINDS[cls]
    if not isinstance(data, dict):
        raise ValidationError(source, [Issue("(document)", f"expected a {kind} object", data)])
    problems = _Problems()
    fmt = data.get("format")
    if fmt is None:
        problems.fail(("format",), f'missing required key (expected "{kind}/1")')
    elif not isinstance(fmt, str):
        raise ValidationError(source, [Issue("format", "must be a string", fmt)])
    elif wrong := check_format(fmt, kind):
        raise ValidationError(source, wrong)
    obj = reader_for(cast(Any, cls))(data, (), None, problems)
    if problems.issues or cls is not Snapshot:
        meaning = [i for i in validate(obj) if i.severity == "error" and not problems.covers(i.path)]
        if problems.issues or meaning:
            raise ValidationError(source, problems.issues + meaning)
    return obj  # type: ignore[no-any-return]


# --------------------------------------------------------------------- writing


def _unstructure_capacity(c: Capacity) -> dict[str, float]:
    return {"vcpus": c.vcpus, "memory_mb": c.memory_mb, "disk_gb": c.disk_gb, **(c.classes or {})}


@functools.cache
def make_converter() -> cattrs.Converter:
    """The one converter that writes documents: built once, since cattrs generates (and
    compiles) a hook per class on first use, which cost more than the writing itself."""
    conv = cattrs.Converter()
    conv.register_unstructure_hook(datetime, format_time)

    def omit_none_factory(cls: type) -> Any:
        hidden: dict[str, Any] = {a.name: override(omit=True) for a in attrs.fields(cls) if not a.init}
        base: Callable[[Any], dict[str, Any]] = make_dict_unstructure_fn(cls, conv, **hidden)
        optional = {a.name for a in attrs.fields(cls) if a.default is None}

        def unstructure(obj: Any) -> dict[str, Any]:
            d: dict[str, Any] = base(obj)
            for name in optional:
                if d.get(name, 0) is None:
                    del d[name]
            return d

        return unstructure

    conv.register_unstructure_hook_factory(attrs.has, omit_none_factory)
    conv.register_unstructure_hook(Capacity, _unstructure_capacity)
    return conv


def unstructure(obj: Any, conv: cattrs.Converter | None = None) -> Any:
    return (conv or make_converter()).unstructure(obj)


def canonical_json(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def digest_of(data: Any) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(data)).hexdigest()


def snapshot_digest(snapshot: Snapshot, conv: cattrs.Converter | None = None) -> str:
    """sha256 over the canonical JSON form (sorted keys, no spaces) of the snapshot.

    A loaded snapshot carries the digest of the document it was read from
    (the same canonical form, as ``check.py`` computes it).
    """
    if snapshot.digest is not None:
        return snapshot.digest
    return digest_of(unstructure(snapshot, conv))
