"""Converting between the model and plain JSON-shaped data.

One converter per call of :func:`make_converter` (never cattrs' global one),
with strict scalar hooks: cattrs would otherwise turn the string ``"false"``
into ``True`` or ``"1.7"`` into a float, and a planner must not guess.
Optional fields that are ``None`` are left out when unstructuring, so written
documents stay small and round-trip to equal objects.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_unstructure_fn, override

from kronos.core.model import Plan, Snapshot, State
from kronos.core.validate import Issue, check_format
from kronos.errors import ValidationError

T = TypeVar("T")


def parse_time(text: str) -> datetime:
    """RFC 3339 → aware UTC datetime; naive input is taken as UTC."""
    if not isinstance(text, str):
        raise ValueError(f"expected an RFC 3339 time string, got {text!r}")
    t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC)


def format_time(t: datetime) -> str:
    t = t.astimezone(UTC)
    spec = "%Y-%m-%dT%H:%M:%S.%fZ" if t.microsecond else "%Y-%m-%dT%H:%M:%SZ"
    return t.strftime(spec)


def _strict_float(value: Any, _: type) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)


def _strict_int(value: Any, _: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise TypeError(f"expected an integer, got {value!r}")
    return value


def _strict_bool(value: Any, _: type) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected true or false, got {value!r}")
    return value


def _strict_str(value: Any, _: type) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def _scalar_dict(value: Any, _: type) -> dict[str, str]:
    """Metadata and extra specs are strings in Nova; numbers are accepted and kept as text."""
    if not isinstance(value, dict):
        raise TypeError(f"expected a mapping, got {value!r}")
    out: dict[str, str] = {}
    for k, v in value.items():
        if isinstance(v, bool):
            v = "true" if v else "false"
        if not isinstance(v, str | int | float):
            raise TypeError(f"{k}: expected a string, got {v!r}")
        out[str(k)] = str(v)
    return out


def make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=False, detailed_validation=True)
    conv.register_structure_hook(float, _strict_float)
    conv.register_structure_hook(int, _strict_int)
    conv.register_structure_hook(bool, _strict_bool)
    conv.register_structure_hook(str, _strict_str)
    conv.register_structure_hook_func(lambda t: t == dict[str, str], _scalar_dict)
    conv.register_structure_hook(datetime, lambda v, _: parse_time(v))
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
    return conv


def _cattrs_issues(exc: Exception) -> list[Issue]:
    out = []
    for msg in cattrs.transform_error(exc, path="$"):
        text, _, where = msg.rpartition(" @ ")
        path = where.removeprefix("$").removeprefix(".") or "(document)"
        out.append(Issue(path, text or msg))
    return out


_KINDS: dict[type, str] = {
    Snapshot: "kronos.snapshot",
    Plan: "kronos.plan",
    State: "kronos.state",
}


def structure(data: Any, cls: type[T], source: str, conv: cattrs.Converter | None = None) -> T:
    """Build ``cls`` from parsed JSON/YAML, or raise ValidationError naming every bad field."""
    kind = _KINDS[cls]
    if not isinstance(data, dict):
        raise ValidationError(source, [Issue("(document)", f"expected a {kind} object")])
    fmt = data.get("format", f"{kind}/1")
    if not isinstance(fmt, str):
        raise ValidationError(source, [Issue("format", "must be a string", fmt)])
    problems = check_format(fmt, kind)
    if problems:
        raise ValidationError(source, problems)
    conv = conv or make_converter()
    try:
        return conv.structure(data, cls)
    except (cattrs.BaseValidationError, ValueError, TypeError, KeyError) as exc:
        raise ValidationError(source, _cattrs_issues(exc)) from exc


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
