"""Planner options: one frozen class, parsed the same way from every source.

Each field is a keyword of ``kronos.plan``, an ``[engine]`` key of
kronos.conf and a ``kronos plan --set KEY=VALUE``; all three go through
:func:`make_options`, so a value means the same thing wherever it is given.
"""

from __future__ import annotations

import difflib
import math
import types
import typing
from collections.abc import Mapping
from typing import Any

import attrs
from attrs import frozen

from kronos.errors import UsageError


@frozen
class PlannerOptions:
    #: aggregates to plan (None: every aggregate, plus ``_unassigned_`` when some host is in none)
    aggregates: tuple[str, ...] | None = None
    #: do nothing when the busiest host's combined score is below this
    min_load: float = 0.0
    #: do nothing when busiest / least busy − 1 is below this
    min_diff_ratio: float = 0.0
    #: stop when the best move lowers the combined imbalance by less than this
    min_improvement: float = 1e-6
    #: stop once every policy is within its threshold
    stop_below_threshold: bool = True
    #: at most this many steps in one wave (None: no cap)
    max_parallel: int | None = None
    #: repair hard / soft server-group violations before balancing (affinity phase)
    enforce_hard_affinity: bool = False
    enforce_soft_affinity: bool = False
    #: seconds an aggregate rests after a plan moved something in it
    cooldown: float = 600.0
    #: seconds a moved VM is left alone
    instance_cooldown: float = 900.0
    #: seconds a VM whose migration definitively failed is left alone (-1: until released)
    instance_quarantine_seconds: float = 3600.0
    #: pack: enabled, empty hosts kept untouched per aggregate as failover capacity
    ha_reserve: int = 0
    #: pack: what the executor or operator should do with an emptied host
    post_drain_action: str = "none"
    #: full scans instead of the exact bound (for tests and comparisons only)
    prune: bool = True

    def as_dict(self) -> dict[str, Any]:
        d = attrs.asdict(self)
        if d["aggregates"] is not None:
            d["aggregates"] = list(d["aggregates"])
        return d


OPTION_NAMES = tuple(a.name for a in attrs.fields(PlannerOptions))
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_NONE = {"none", "null", "unlimited", ""}


def coerce(name: str, value: Any, typ: Any) -> Any:
    """Turn a string (CLI, INI, env) or a Python value into the field's type."""
    args = typing.get_args(typ)
    optional = type(None) in args
    if optional:
        if value is None or (isinstance(value, str) and value.strip().lower() in _NONE):
            return None
        typ = next(a for a in args if a is not type(None))
    origin = typing.get_origin(typ)
    if origin is tuple:
        items = value.split(",") if isinstance(value, str) else list(value)
        return tuple(str(x).strip() for x in items if str(x).strip())
    if typ is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError("expected true or false")
    if typ is int:
        if isinstance(value, bool):
            raise ValueError("expected an integer")
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return int(str(value).strip()) if isinstance(value, str) else int(value)
    if typ is float:
        if isinstance(value, bool):
            raise ValueError("expected a number")
        x = float(value)
        if math.isnan(x):
            raise ValueError("NaN is not a value")
        return x
    if typ is str:
        return str(value).strip()
    raise TypeError(f"{name}: unsupported option type {typ!r}")  # pragma: no cover - a bug


_HINTS = typing.get_type_hints(PlannerOptions, vars(types))
_CHOICES = {"post_drain_action": ("none", "disable")}


def unknown_option(name: str, known: tuple[str, ...] = OPTION_NAMES) -> str:
    near = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {near[0]}?)" if near else ""
    return f"unknown option {name!r}{hint}"


def make_options(
    values: Mapping[str, Any] | None = None, base: PlannerOptions | None = None
) -> PlannerOptions:
    """Validated options from ``values`` over ``base``; errors name the key and the value."""
    base = base or PlannerOptions()
    changes: dict[str, Any] = {}
    for key, raw in (values or {}).items():
        name = key.replace("-", "_")
        if name not in _HINTS:
            raise UsageError(unknown_option(name))
        try:
            value = coerce(name, raw, _HINTS[name])
        except (TypeError, ValueError) as exc:
            raise UsageError(f"option {name} = {raw!r}: {exc}") from exc
        if name in _CHOICES and value not in _CHOICES[name]:
            raise UsageError(f"option {name} = {raw!r}: must be one of {', '.join(_CHOICES[name])}")
        negative = isinstance(value, int | float) and not isinstance(value, bool) and value < 0
        if negative and not (name == "instance_quarantine_seconds" and value == -1):
            raise UsageError(f"option {name} = {raw!r}: must be >= 0")
        changes[name] = value
    return attrs.evolve(base, **changes)
