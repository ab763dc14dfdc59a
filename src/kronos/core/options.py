"""Planner options: a frozen class per phase, parsed the same way from every source.

Each field is a keyword of ``kronos.plan``, an ``[engine]`` key of
kronos.conf and a ``kronos plan --set KEY=VALUE``; all three go through
:func:`make_options`, so a value means the same thing wherever it is given.
Names are unique across the classes, so the outside sees one flat set.
"""

from __future__ import annotations

import difflib
import math
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any

import attrs
from attrs import frozen

from kronos.core.phases import AFFINITY, PACK, SPREAD
from kronos.errors import UsageError

#: every integer a document holds is below this in magnitude (FORMATS: integers fit 64 bits;
#: a reader in another language takes no more)
INT64 = 2**63


@frozen
class CommonOptions:
    """What every phase reads."""

    #: aggregates to plan (None: every aggregate, plus ``_unassigned_`` when some host is in none)
    aggregates: tuple[str, ...] | None = None
    #: at most this many steps in one wave (None: no cap)
    max_parallel: int | None = None
    #: seconds an aggregate rests after a plan moved something in it
    cooldown: float = 600.0
    #: seconds a moved VM is left alone
    instance_cooldown: float = 900.0
    #: seconds a VM whose migration definitively failed is left alone (-1: until released)
    instance_quarantine_seconds: float = 3600.0
    #: a live migration's destination must have every HW_CPU_* trait of its source (FORMATS §4)
    require_cpu_compatibility: bool = False


@frozen
class SpreadOptions:
    #: do nothing when the busiest host's combined score is below this
    min_load: float = 0.0
    #: do nothing when busiest / least busy − 1 is below this
    min_diff_ratio: float = 0.0
    #: stop when the best move lowers the combined imbalance by less than this
    min_improvement: float = 1e-6
    #: stop once every policy is within its threshold
    stop_below_threshold: bool = True
    #: where no single move helps, try two together (a swap, or one VM making room for
    #: another: :mod:`kronos.core.pairs`); both count against the budget
    pair_moves: bool = True
    #: full scans instead of the exact bound: a test knob (``kronos.plan(prune=False)``),
    #: never a ``--set`` key nor in a plan file
    prune: bool = attrs.field(default=True, metadata={"internal": True})
    #: ``solver=exact``: CP-SAT's seconds per aggregate (:mod:`kronos.core.exact_spread`),
    #: 0 for the greedy alone; set from ``solver`` and ``time_limit``, never given itself
    exact_seconds: float = attrs.field(default=0.0, metadata={"internal": True})
    #: FORMATS §5. Seconds ahead to forecast host scores (Theil–Sen over ``score_history``,
    #: :mod:`kronos.core.trend`) and VM weights (``weights_forecast``); 0: off
    forecast_horizon: float = 0.0
    #: ``current`` scores, the ``forecast`` at ``forecast_horizon``, or per host and policy the
    #: ``max`` of the two (a host that is rising counts as loaded now)
    plan_on: str = "current"
    #: seconds an aggregate's imbalance must have stayed above a threshold at every history
    #: sample before it is balanced (0: off); "not sustained" otherwise
    min_sustained: float = 0.0
    #: the smallest relative cut of the planned-on combined imbalance worth a plan (0: off)
    min_gain: float = 0.0
    #: the imbalance one GiB of migrated memory costs: a move must cut the combined
    #: imbalance by more than ``move_cost`` × its VM's memory in GiB (0: off)
    move_cost: float = 0.0


@frozen
class AffinityOptions:
    #: repair violations of hard server groups (affinity, anti-affinity) before balancing (affinity phase)
    enforce_hard_affinity: bool = False
    #: likewise for the soft variants (soft-affinity, soft-anti-affinity)
    enforce_soft_affinity: bool = False


@frozen
class PackOptions:
    #: enabled, empty hosts kept untouched per aggregate as failover capacity
    ha_reserve: int = 0
    #: what the executor or operator should do with an emptied host
    post_drain_action: str = "none"
    #: ``greedy`` (the heuristics alone) or ``exact``: then OR-Tools CP-SAT (the ``exact``
    #: extra) models each aggregate's target placement, starts from the greedy's, keeps the
    #: better of the two and proves a bound (FORMATS §6 ``optimality``; docs/exact.md);
    #: pack and spread read it (spread through ``exact_seconds``)
    solver: str = "greedy"
    #: seconds CP-SAT may search per aggregate (``solver=exact``): a solver parameter, so the
    #: core itself still reads no clock
    time_limit: float = 10.0
    #: what pack minimises and the exact solver proves: ``hosts`` in use, or their summed
    #: ``cost_per_hour`` (``cost``; the greedy already empties the dearest first)
    objective_kind: str = "hosts"


#: every options class by the phase that reads it ("" for all of them)
SECTIONS: dict[str, type] = {
    "": CommonOptions,
    SPREAD: SpreadOptions,
    AFFINITY: AffinityOptions,
    PACK: PackOptions,
}
_FIELDS = {
    name: [a for a in attrs.fields(cls) if not a.metadata.get("internal")] for name, cls in SECTIONS.items()
}


@frozen
class PlannerOptions:
    """Every option, each in its phase's class; built by :func:`make_options`.

    Flat to the outside (keywords, ``--set``, ``[engine]``, :meth:`as_dict`),
    sectioned inside, so a phase sees its own options only and a plan
    records the options of the phases it ran (:meth:`for_plan`).
    """

    common: CommonOptions = CommonOptions()
    spread: SpreadOptions = SpreadOptions()
    affinity: AffinityOptions = AffinityOptions()
    pack: PackOptions = PackOptions()

    def __getattr__(self, name: str) -> Any:
        """``options.min_load``: an option by its flat name, from its phase's class."""
        phase = _SECTION_OF.get(name)
        if phase is None:
            raise AttributeError(name)
        return getattr(self.section(phase), name)

    def section(self, phase: str) -> Any:
        return getattr(self, phase or "common")

    def as_dict(self) -> dict[str, Any]:
        """Every option by its flat name."""
        return {k: v for phase in SECTIONS for k, v in self._dict(phase).items()}

    def for_plan(self, *phases: str) -> dict[str, Any]:
        """What a plan records: the common options and those of ``phases``."""
        return {k: v for phase in ("", *phases) if phase in SECTIONS for k, v in self._dict(phase).items()}

    def _dict(self, phase: str) -> dict[str, Any]:
        section = self.section(phase)
        d = {a.name: getattr(section, a.name) for a in _FIELDS[phase]}
        if d.get("aggregates") is not None:
            d["aggregates"] = list(d["aggregates"])
        return d


OPTION_NAMES = tuple(a.name for fields in _FIELDS.values() for a in fields)
_SECTION_OF = {a.name: phase for phase, fields in _FIELDS.items() for a in fields}
#: the longest duration any setting may take (ten years): longer ones overflow clocks and dates
MAX_SECONDS = 3650 * 86400.0
#: the finest time step a snapshot may state (history, forecast): Prometheus's resolution, 1 ms
MIN_SECONDS = 0.001
#: the dearest ``move_cost`` per GiB: no move cuts a combined imbalance (a standard deviation
#: of scores) by a thousand, so a dearer one means the same (no move) and only overflows
MAX_MOVE_COST = 1000.0
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
        try:  # int()'s own words ("invalid literal for int() with base 10") are Python's, not ours
            return int(str(value).strip()) if isinstance(value, str) else int(value)
        except (TypeError, ValueError, OverflowError):  # (int(inf) overflows)
            raise ValueError("expected a whole number") from None
    if typ is float:
        if isinstance(value, bool):
            raise ValueError("expected a number")
        try:
            x = float(value)
        except (TypeError, ValueError):
            raise ValueError("expected a number") from None
        if math.isnan(x):
            raise ValueError("NaN is not a value")
        return x
    if typ is str:
        return str(value).strip()
    raise TypeError(f"{name}: unsupported option type {typ!r}")  # pragma: no cover - a bug


#: each option's type (internal knobs included): how a value is read here and checked in a plan
HINTS = {
    name: hint for cls in SECTIONS.values() for name, hint in typing.get_type_hints(cls, vars(types)).items()
}
_CHOICES = {
    "post_drain_action": ("none", "disable"),
    "solver": ("greedy", "exact"),
    "objective_kind": ("hosts", "cost"),
    "plan_on": ("current", "forecast", "max"),
}
_SECONDS = (
    "cooldown",
    "instance_cooldown",
    "instance_quarantine_seconds",
    "forecast_horizon",
    "min_sustained",
)


def nearest(name: object, known: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The one of ``known`` a mistyped ``name`` most likely meant, if any is close enough."""
    near = difflib.get_close_matches(str(name), list(known), n=1, cutoff=cutoff)
    return near[0] if near else None


def did_you_mean(name: object, known: Iterable[str]) -> str:
    """`` (did you mean X?)`` for the nearest of ``known`` to a mistyped ``name``, or nothing."""
    near = nearest(name, known)
    return f" (did you mean {near}?)" if near else ""


def unknown_option(name: str, known: tuple[str, ...] = OPTION_NAMES) -> str:
    return f"unknown option {name!r}{did_you_mean(name, known)}"


def make_options(
    values: Mapping[str, Any] | None = None, base: PlannerOptions | None = None, alone: bool = False
) -> PlannerOptions:
    """Validated options from ``values`` over ``base``; errors name the key and the value.

    ``alone``: check each value on its own only, not whether they go together (a
    configuration file is checked key by key, then as a whole).
    """
    base = base or PlannerOptions()
    changes: dict[str, dict[str, Any]] = {phase: {} for phase in SECTIONS}
    for key, raw in (values or {}).items():
        name = key.replace("-", "_")
        if name not in _SECTION_OF:  # internal knobs (prune, exact_seconds) are no option
            raise UsageError(unknown_option(name))
        try:
            value = coerce(name, raw, HINTS[name])
        except (TypeError, ValueError) as exc:
            raise UsageError(f"option {name} = {raw!r}: {exc}") from exc
        if name in _CHOICES and value not in _CHOICES[name]:
            raise UsageError(f"option {name} = {raw!r}: must be one of {', '.join(_CHOICES[name])}")
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if number and not math.isfinite(value):
            raise UsageError(f"option {name} = {raw!r}: must be a finite number")
        if isinstance(value, int) and not isinstance(value, bool) and value >= INT64:
            raise UsageError(f"option {name} = {raw!r}: must be below 2**63 (a plan's integers fit 64 bits)")
        if number and value < 0 and not (name == "instance_quarantine_seconds" and value == -1):
            raise UsageError(f"option {name} = {raw!r}: must be >= 0")
        if name in _SECONDS and value > MAX_SECONDS:
            raise UsageError(f"option {name} = {raw!r}: must be at most {MAX_SECONDS:.0f} seconds (10 years)")
        if name == "time_limit" and not 0 < value <= MAX_SECONDS:
            raise UsageError(f"option {name} = {raw!r}: must be > 0 seconds (and at most 10 years)")
        if name == "max_parallel" and value is not None and value < 1:
            raise UsageError(f"option {name} = {raw!r}: at least 1 step a wave (none: no cap)")
        if name == "forecast_horizon" and 0 < value < MIN_SECONDS:  # a snapshot could not state it
            raise UsageError(f"option {name} = {raw!r}: 0 (off), or at least {MIN_SECONDS:g} seconds")
        if name == "move_cost" and value > MAX_MOVE_COST:
            raise UsageError(
                f"option {name} = {raw!r}: at most {MAX_MOVE_COST:g} per GiB "
                "(no move cuts the imbalance by more)"
            )
        if name == "min_gain" and value > 1:
            raise UsageError(f"option {name} = {raw!r}: a relative gain, between 0 and 1")
        if name == "aggregates" and value == ():
            raise UsageError(f"option {name} = {raw!r}: name at least one aggregate (or none for all)")
        changes[_SECTION_OF[name]][name] = value
    made = PlannerOptions(*(attrs.evolve(base.section(phase), **changes[phase]) for phase in SECTIONS))
    if not alone and made.spread.plan_on != "current" and made.spread.forecast_horizon <= 0:
        raise UsageError(
            f"option plan_on = {made.spread.plan_on!r} needs a forecast: set forecast_horizon "
            "to the seconds ahead to plan for (it is 0, off)"
        )
    return made
