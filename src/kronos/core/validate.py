"""What the documents mean, checked in one place: snapshot, plan and state.

Every problem becomes an :class:`Issue` with the JSON path of the offending
value, and all of them are reported at once: an operator fixing a recorded
snapshot should not have to run the validator ten times to find ten problems.
Warnings (for instance hosts already over capacity, which real clouds with
overcommit have) are reported but do not make a snapshot unusable; the
planner never "fixes" them.

The checks here judge values, not types: :mod:`kronos.core.convert` reads a
document strictly and then runs these on what it read, so both kinds of
problem arrive together. Each check must therefore cope with the stand-ins
the reader puts where a value was unreadable (NaN numbers, empty names).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from functools import partial
from itertools import chain, compress, repeat
from operator import is_
from typing import TYPE_CHECKING, Any, Literal, get_args

from attrs import frozen

from kronos.core.model import (
    MAX_AMOUNT,
    MAX_CELLS,
    NOVA_STATUSES,
    OUTCOMES,
    RESOURCES,
    UNASSIGNED,
    VM,
    VM_PROFILE_LABEL_TYPES,
    Action,
    AggregateSummary,
    Plan,
    Snapshot,
    State,
    Step,
)
from kronos.core.options import MAX_MOVE_COST, MAX_SECONDS, MIN_SECONDS, nearest
from kronos.core.phases import MODES

if TYPE_CHECKING:
    from kronos.core.facts import Columns, Sizes

GROUP_POLICIES = ("affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity")
FALLBACKS = ("host_average", "skip")
ACTIONS: tuple[str, ...] = get_args(Action)
GROUP_RULES = ("max_server_per_host",)
#: anti-affinity limits live in int32 arrays; Nova's own column is a 32-bit integer too
MAX_SERVER_PER_HOST = 2**31 - 1
POST_DRAIN_ACTIONS = ("none", "disable")
OPTIMALITY_STATUSES = ("optimal", "feasible", "timeout")
OBJECTIVE_KINDS = ("hosts", "cost", "combined")
#: os-traits spelling: upper case, digits and underscores (``HW_CPU_X86_AVX2``, ``CUSTOM_GOLD``)
_TRAIT = re.compile(r"[A-Z][A-Z0-9_]*")
_NUMBERS = (int, float)
_PLAIN_KEY = re.compile(r"[^.\[\]\"\s]+")
_NUMBERS_SET = frozenset(_NUMBERS)
_INTS = frozenset({int})
_STATUSES = frozenset(NOVA_STATUSES)
_IS_NONE = partial(is_, None)


class _NoValue:
    def __repr__(self) -> str:
        return "NO_VALUE"


#: an Issue's ``value`` when the problem has no value to show (a missing key)
NO_VALUE: Any = _NoValue()


@frozen
class Issue:
    """One problem in a document: where, what value, why it is wrong."""

    path: str
    message: str
    value: Any = NO_VALUE
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        prefix = "warning: " if self.severity == "warning" else ""
        if self.value is NO_VALUE:
            return f"{prefix}{self.path}: {self.message}"
        return f"{prefix}{self.path} = {show(self.value)}: {self.message}"


def key_path(path: str, key: str | int) -> str:
    """``path`` extended by a list index or a mapping key, as every message spells paths."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    if _PLAIN_KEY.fullmatch(key) and key.isprintable():
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key)}]"


def show(value: Any, limit: int = 80) -> str:
    """A value as a message shows it: short, printable, never a 5 000-digit integer."""
    text = _brief(value, 3)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _brief(value: Any, depth: int) -> str:
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int):
        if value.bit_length() > 200:
            return f"<an integer of {int(value.bit_length() * math.log10(2)) + 1} digits>"
        return str(value)
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else str(value)
    if isinstance(value, str):
        return repr(value[:200])
    if isinstance(value, list | tuple):
        if depth == 0:
            return f"[... {len(value)} items]"
        return (
            "[" + ", ".join(_brief(v, depth - 1) for v in value[:8]) + (", ...]" if len(value) > 8 else "]")
        )
    if isinstance(value, dict):
        if depth == 0:
            return f"{{... {len(value)} keys}}"
        items = list(value.items())[:8]
        inner = ", ".join(f"{_brief(k, 0)}: {_brief(v, depth - 1)}" for k, v in items)
        return "{" + inner + (", ...}" if len(value) > 8 else "}")
    return f"<{type(value).__name__}>"


def check_format(fmt: str, kind: str, path: str = "format") -> list[Issue]:
    """``kind/1`` and ``kind/1.x`` are readable; another name or major is not."""
    name, _, version = fmt.partition("/")
    if name != kind:
        return [Issue(path, f"expected {kind}/1", fmt)]
    if version.split(".")[0] != "1":
        return [Issue(path, f"unknown major version of {kind} (this Kronos reads 1)", fmt)]
    return []


def _bad_unit(x: Any) -> bool:
    return not isinstance(x, int | float) or math.isnan(x) or x < 0.0 or x > 1.0


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _amount(x: Any) -> bool:
    """A capacity, size, amount or cost: a number from 0 to :data:`MAX_AMOUNT`."""
    return _finite(x) and 0 <= x <= MAX_AMOUNT


def _capacity_scale(x: Any) -> bool:
    """A score_capacity: load divides by it, so 1e-310 made scores infinite (from 1e-15 to 1e15)."""
    return _finite(x) and 1 / MAX_AMOUNT <= x <= MAX_AMOUNT


#: what a score_capacity out of :func:`_capacity_scale`'s range is told
SCALE_RANGE = f"must be a number from {1 / MAX_AMOUNT:g} to {MAX_AMOUNT:g}"

#: what an amount out of :func:`_amount`'s range is told
AMOUNT_RANGE = f"must be a number from 0 to {MAX_AMOUNT:g}"


def _blank(s: Any) -> bool:
    return not isinstance(s, str) or not s or s.isspace()


#: C0 (tab and line break among them), DEL and C1: no id or host name Nova gives holds one, and
#: a host named with a line break forged a line of its own in every table and listing (a VM's
#: name is its owner's free text: shown escaped, :func:`kronos.terminal.one_line`)
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_CONTROL_SAID = "must not hold a control character (a tab, a line break): Nova's never do"


def name_problem(s: Any) -> str | None:
    """What is wrong with an id or a host's or an aggregate's name, or None."""
    if _blank(s):
        return "must not be blank"
    return _CONTROL_SAID if _CONTROL.search(s) else None


def _duplicates(names: Iterable[str]) -> set[str]:
    return {n for n, c in Counter(names).items() if c > 1}


def _unknown_name(path: str, name: str, known: Collection[str], what: str) -> Issue:
    near = nearest(name, known)
    hint = f"; did you mean {near}?" if near else ""
    return Issue(path, f"no {what} of this name{hint}")


def validate(document: Snapshot | Plan | State) -> list[Issue]:
    """Every problem in a snapshot, plan or state; errors first in document order."""
    if isinstance(document, Plan):
        return validate_plan(document)
    if isinstance(document, State):
        return validate_state(document)
    return validate_snapshot(document)


def validate_snapshot(snapshot: Snapshot, sizes: Sizes | None = None) -> list[Issue]:
    """``sizes``: :func:`kronos.core.facts.capacity` of this snapshot, when the caller has it
    (planning builds it anyway; 100 000 VMs' sizes cost a tenth of a second)."""
    issues: list[Issue] = check_format(snapshot.format, "kronos.snapshot")
    issues += validate_policies(snapshot)
    issues += _time_fields(snapshot)
    issues += _hosts(snapshot)
    issues += _aggregates(snapshot)
    from kronos.core.facts import columns

    found = sizes if sizes is not None else _capacity_if(snapshot)
    cols = found.columns if found is not None else columns(snapshot.vms)
    index = found.vm_index if found is not None else None  # capacity has the ids
    id_set: Collection[Any] = index if index is not None else set(cols.ids)
    issues += _vms(snapshot, found, cols, id_set)
    issues += _groups(snapshot, id_set)
    issues += _capacity_warnings(snapshot, sizes or found)
    return issues


def _capacity_if(snapshot: Snapshot) -> Sizes | None:
    """:func:`kronos.core.facts.capacity` of a snapshot it can read (the VM checks use it)."""
    from kronos.core.facts import capacity

    try:
        return capacity(snapshot)
    except Exception:  # a value that is not a number, an unknown host: reported below
        return None


def validate_policies(s: Snapshot) -> list[Issue]:
    out: list[Issue] = []
    dup = _duplicates(p.name for p in s.policies)
    for i, p in enumerate(s.policies):
        at = f"policies[{i}]"
        if _blank(p.name):
            out.append(Issue(f"{at}.name", "must not be blank", p.name))
        elif p.name in dup:
            out.append(Issue(f"{at}.name", "duplicate policy name", p.name))
        if p.mode not in MODES:
            out.append(Issue(f"{at}.mode", "mode must be spread or pack", p.mode))
        if _bad_unit(p.weight):
            out.append(Issue(f"{at}.weight", "weights must be in [0, 1]", p.weight))
        if not (_finite(p.threshold) and p.threshold >= 0.0):
            out.append(Issue(f"{at}.threshold", "threshold must be >= 0", p.threshold))
        if _bad_unit(p.max_host_score):
            out.append(Issue(f"{at}.max_host_score", "must be in [0, 1]", p.max_host_score))
        if p.vm_profile_fallback not in FALLBACKS:
            out.append(
                Issue(
                    f"{at}.vm_profile_fallback",
                    "must be host_average or skip",
                    p.vm_profile_fallback,
                )
            )
        label_type = p.vm_profile_label_type
        if label_type is not None and label_type not in VM_PROFILE_LABEL_TYPES:
            why = f"must be one of {', '.join(VM_PROFILE_LABEL_TYPES)}"
            out.append(Issue(f"{at}.vm_profile_label_type", why, label_type))
        if p.max_migrations_per_cycle is not None and p.max_migrations_per_cycle < 0:
            out.append(Issue(f"{at}.max_migrations_per_cycle", "must be >= 0", p.max_migrations_per_cycle))
    enabled = s.enabled_policies
    if s.policies and not enabled:  # every mode plans against one (validate said OK; plan said 65)
        out.append(Issue("policies", "no policy is enabled: there is nothing to plan against"))
    if enabled and not any(_bad_unit(p.weight) for p in enabled):  # a bad weight is reported above
        total = sum(p.weight for p in enabled)
        if not abs(total - 1.0) <= 1e-6:
            out.append(Issue("policies", f"enabled policy weights sum to {total:.6g}, not 1.0"))
    if enabled:
        modes = sorted({p.mode for p in enabled})
        if len(modes) > 1:
            out.append(Issue("policies", f"enabled policies mix modes {', '.join(modes)}"))
    return out


def _time_fields(s: Snapshot) -> list[Issue]:
    """FORMATS §5: the spacing of score histories and the horizon of weight forecasts."""
    out: list[Issue] = []
    wanted = {
        "history_step_seconds": (s.history_step_seconds, any(h.score_history for h in s.hosts)),
        "forecast_horizon_seconds": (s.forecast_horizon_seconds, any([v.weights_forecast for v in s.vms])),
    }
    for name, (value, needed) in wanted.items():
        if value is None:
            if needed:
                user = "hosts[].score_history" if name.startswith("history") else "vms[].weights_forecast"
                out.append(Issue(name, f"required when {user} is present"))
        elif not (_finite(value) and MIN_SECONDS <= value <= MAX_SECONDS):  # (1e-310 overflowed)
            why = f"must be a number of seconds from {MIN_SECONDS:g} to {MAX_SECONDS:g}"
            out.append(Issue(name, why, value))
    return out


def _plain_weights(weights: Mapping[str, Any], known: set[str]) -> bool:
    """Every weight a known policy's number in [0, 1] (the common case, checked without paths)."""
    try:
        return all(p in known and 0.0 <= x <= 1.0 for p, x in weights.items())
    except TypeError:  # a value that is not a number: the full check says which
        return False


def _policy_keyed(
    at: str, values: Mapping[str, Any], known: Collection[str], check: Any, message: str
) -> list[Issue]:
    """Per-policy values: each key a policy of the snapshot, each value passing ``check``."""
    out: list[Issue] = []
    for p, v in values.items():
        if p not in known:
            out.append(_unknown_name(key_path(at, p), p, known, "policy"))
        elif not check(v):
            out.append(Issue(key_path(at, p), message, v))
    return out


def _hosts(s: Snapshot) -> list[Issue]:
    out: list[Issue] = []
    dup = _duplicates(h.name for h in s.hosts)
    policies = [p.name for p in s.policies]
    names = [p.name for p in s.enabled_policies]
    for i, h in enumerate(s.hosts):
        at = f"hosts[{i}]"
        if problem := name_problem(h.name):
            out.append(Issue(f"{at}.name", problem, h.name))
        elif h.name in dup:
            out.append(Issue(f"{at}.name", "duplicate host name", h.name))
        for r in RESOURCES:
            v = getattr(h.capacity, r)
            if not _amount(v):
                out.append(Issue(f"{at}.capacity.{r}", f"capacity {AMOUNT_RANGE}", v))
        for r, v in (h.capacity.classes or {}).items():
            if not _amount(v):
                out.append(Issue(key_path(f"{at}.capacity", r), f"capacity {AMOUNT_RANGE}", v))
        for p in names:
            if p not in h.scores and h.up:
                out.append(Issue(key_path(f"{at}.scores", p), "missing score of an enabled policy"))
        out += _policy_keyed(
            f"{at}.scores", h.scores, policies, lambda x: not _bad_unit(x), "scores must be in [0, 1]"
        )
        out += _policy_keyed(f"{at}.score_capacity", h.score_capacity, policies, _capacity_scale, SCALE_RANGE)
        if h.cost_per_hour is not None and not _amount(h.cost_per_hour):
            out.append(Issue(f"{at}.cost_per_hour", AMOUNT_RANGE, h.cost_per_hour))
        out += _host_facts(at, h.traits, h.numa_cells)
        for p, history in (h.score_history or {}).items():
            out += _history(key_path(f"{at}.score_history", p), p, history, h.scores, policies)
    return out


def _host_facts(at: str, traits: Any, cells: Any) -> list[Issue]:
    """FORMATS §4 facts about a host: accepted (they bind nothing alone), checked for shape."""
    out = _traits(f"{at}.traits", traits)
    if cells and len(cells) > MAX_CELLS:
        out.append(
            Issue(f"{at}.numa_cells", f"Kronos plans hosts of up to {MAX_CELLS} NUMA cells", len(cells))
        )
    if cells and _plain_cells(cells):
        return out
    seen: set[int] = set()
    for j, c in enumerate(cells or ()):
        if not (isinstance(c.id, int) and c.id >= 0) or c.id in seen:
            out.append(Issue(f"{at}.numa_cells[{j}].id", "cell ids must be distinct integers >= 0", c.id))
        seen.add(c.id)
        for r in ("vcpus", "memory_mb"):
            x = getattr(c, r)
            if not _amount(x):
                out.append(Issue(f"{at}.numa_cells[{j}].{r}", AMOUNT_RANGE, x))
    return out


def _plain_cells(cells: Any) -> bool:
    """The common case of a host's NUMA cells: distinct integer ids >= 0, sizes from 0 to MAX_AMOUNT."""
    try:
        ids = [c.id for c in cells]
        sizes = [x for c in cells for x in (c.vcpus, c.memory_mb)]
        return (
            _INTS.issuperset(map(type, ids))
            and min(ids) >= 0
            and len(set(ids)) == len(ids)
            and _NUMBERS_SET.issuperset(map(type, sizes))
            and all(0 <= x <= MAX_AMOUNT for x in sizes)
        )
    except (TypeError, ValueError):
        return False


def _traits(at: str, traits: Any) -> list[Issue]:
    return [
        Issue(f"{at}[{j}]", "a trait is upper case, digits and underscores", t)
        for j, t in enumerate(traits or ())
        if not (isinstance(t, str) and _TRAIT.fullmatch(t))
    ]


def _history(
    at: str, policy: str, history: Any, scores: Mapping[str, float], known: Collection[str]
) -> list[Issue]:
    """FORMATS §5: equal steps, oldest first, each in [0, 1] or null, the last = the score."""
    if policy not in known:
        return [_unknown_name(at, policy, known, "policy")]
    if not history:
        return [Issue(at, "a history needs at least its last sample (the current score)")]
    out = [
        Issue(f"{at}[{k}]", "must be in [0, 1] or null", x)
        for k, x in enumerate(history)
        if x is not None and _bad_unit(x)
    ]
    last = history[-1]
    if last is None:
        out.append(Issue(f"{at}[{len(history) - 1}]", "the last sample is the score at taken_at; never null"))
    elif policy in scores and not _bad_unit(last) and abs(last - scores[policy]) > 1e-9:
        out.append(
            Issue(
                f"{at}[{len(history) - 1}]",
                f"the last sample must equal the score ({scores[policy]:g})",
                last,
            )
        )
    return out


def _aggregates(s: Snapshot) -> list[Issue]:
    out: list[Issue] = []
    known = {h.name for h in s.hosts}
    dup = _duplicates(a.name for a in s.aggregates)
    az_of: dict[str, tuple[str, str]] = {}
    for i, a in enumerate(s.aggregates):
        at = f"aggregates[{i}]"
        if problem := name_problem(a.name):
            out.append(Issue(f"{at}.name", problem, a.name))
        elif a.name in dup:
            out.append(Issue(f"{at}.name", "duplicate aggregate name", a.name))
        if a.name == UNASSIGNED:
            out.append(Issue(f"{at}.name", "reserved for hosts in no aggregate", a.name))
        az = a.metadata.get("availability_zone")
        for j, hn in enumerate(a.hosts):
            if hn not in known:
                out.append(Issue(f"{at}.hosts[{j}]", "unknown host", hn))
            if az is not None:
                seen = az_of.setdefault(hn, (az, a.name))
                if seen[0] != az:
                    out.append(
                        Issue(
                            f"{at}.hosts[{j}]",
                            f"host is in availability zone {seen[0]} through aggregate "
                            f"{seen[1]} and {az} here",
                            hn,
                        )
                    )
    return out


def _vms(s: Snapshot, sizes: Sizes | None, cols: Columns, id_set: Collection[Any]) -> list[Issue]:
    """Every VM's own fields. A snapshot of 100 000 VMs is validated before each plan, so
    the VMs are first tested column by column, in C loops, for the common case
    (:func:`_suspects`); only a VM that may fail it is tested alone (:func:`_plain`), and
    one that fails that is gone through field by field, for the messages."""
    out: list[Issue] = []
    known = {h.name for h in s.hosts}
    policies = [p.name for p in s.policies]
    known_policies = set(policies)
    cells = {h.name: ({c.id for c in h.numa_cells} if h.numa_cells else None) for h in s.hosts}
    dup = _duplicates(cols.ids) if len(id_set) < len(cols.ids) else set()
    unit = lambda x: not _bad_unit(x)  # noqa: E731
    suspects: Iterable[int]
    try:
        suspects = _suspects(s, sizes, cols, dup, known, known_policies, cells)
    except Exception:  # a value of an unusual type: each VM is tested alone
        suspects = range(len(s.vms))
    vms = s.vms
    for i in suspects:
        v = vms[i]
        if not _plain(v, known, dup, known_policies, cells):
            out += _vm_issues(f"vms[{i}]", v, known, dup, policies, known_policies, cells, unit)
    return out


def _plain(
    v: VM, known: set[str], dup: set[str], known_policies: set[str], cells: dict[str, set[int] | None]
) -> bool:
    """The common case: a VM whose fields need no message."""
    f, w = v.flavor, v.weights
    try:  # a value of the wrong type: the full check says which
        return bool(
            v.id
            and not v.id.isspace()
            and not _CONTROL.search(v.id)
            and v.id not in dup
            and (v.name is None or (v.name and not v.name.isspace()))
            and v.host in known
            and v.status in _STATUSES
            and v.task_state is None
            and f.name
            and not f.name.isspace()
            and 0 <= f.vcpus <= MAX_AMOUNT
            and 0 <= f.memory_mb <= MAX_AMOUNT
            and 0 <= f.disk_gb <= MAX_AMOUNT
            and (not v.tags or all(t and not t.isspace() for t in v.tags))
            and not v.weights_forecast
            and known_policies.issuperset(w)
            # in [0, 1]; a NaN makes the sum NaN, which compares false
            and (not w or (min(w.values()) >= 0.0 and max(w.values()) <= 1.0 and sum(w.values()) >= 0.0))
            and (
                not (v.resources or v.required_traits or v.forbidden_traits or v.numa_cells or v.devices)
                or _plain_facts(v, cells)
            )
        )
    except (TypeError, ValueError):
        return False


def _suspects(
    s: Snapshot,
    sizes: Sizes | None,
    cols: Columns,
    dup: set[str],
    known: set[str],
    known_policies: set[str],
    cells: dict[str, set[int] | None],
) -> list[int]:
    """The VMs that may fail :func:`_plain`, in order: every other VM passes it. Each field
    is tested for all VMs at once (one C loop, or numpy); where a test fails, the VMs it may
    have failed on are found one by one."""
    import numpy as np

    from kronos.core.facts import flavor_sizes

    vms, ids = s.vms, cols.ids
    V = len(vms)
    odd = np.zeros(V, dtype=np.bool_)
    if not _all_text(ids, control=True):
        odd[[i for i, x in enumerate(ids) if name_problem(x)]] = True
    if dup:
        odd[[i for i, x in enumerate(ids) if x in dup]] = True
    names = cols.names
    if not _all_text(names, optional=True):
        odd[[i for i, x in enumerate(names) if x is not None and _blank(x)]] = True
    if sizes is None:  # (capacity found every VM's host)
        hosts = cols.hosts
        if not known.issuperset(hosts):
            odd[[i for i, h in enumerate(hosts) if h not in known]] = True
    statuses = cols.statuses
    if not _STATUSES.issuperset(statuses):
        odd[[i for i, x in enumerate(statuses) if x not in _STATUSES]] = True
    # (a task state is a message only when blank; a forecast is checked VM by VM)
    odd[[i for i, t in enumerate(cols.tasks) if t is not None and _blank(t)]] = True
    odd[[i for i, f in enumerate(cols.forecasts) if f]] = True
    blank = {x for x in {f.name for f in cols.flavors} if _blank(x)}  # a few flavors' names
    if blank:
        odd[[i for i, f in enumerate(cols.flavors) if f.name in blank]] = True
    amounts = sizes.flavor if sizes is not None else flavor_sizes(cols.flavors)
    odd |= ~((amounts >= 0.0) & (amounts <= MAX_AMOUNT)).all(axis=1)
    tags = cols.tags
    flat = list(chain.from_iterable(tags))
    if flat and not _all_text(flat):
        odd[[i for i, t in enumerate(tags) if t and not _all_text(list(t))]] = True
    table = sizes.weights if sizes is not None else None
    if not (
        table is not None
        and table.numbers
        and known_policies.issuperset(table.policies)
        and bool(((table.table >= 0.0) & (table.table <= 1.0)).all())
    ):
        odd[[i for i, w in enumerate(cols.weights) if not _plain_weights(w, known_policies)]] = True
    if cols.special:
        odd[_odd_facts(cols, cells, sizes is not None and sizes.held_ok)] = True
    return np.flatnonzero(odd).tolist()


def _all_text(values: list[Any], optional: bool = False, control: bool = False) -> bool:
    """Every value a string, neither empty nor blank (``optional``: or None) nor, with ``control``
    (ids: not a VM's name, a tag or a device, which are free text), holding a control character;
    in C loops."""
    try:
        if optional and not all(values):
            given = list(filter(None, values))  # without None and ""
            nones = sum(map(_IS_NONE, values))
            plain = len(given) + nones == len(values) and not any(map(str.isspace, given))
        else:
            given = values
            plain = all(values) and not any(map(str.isspace, values))
        return bool(plain and not (control and _CONTROL.search(" ".join(given))))
    except TypeError:  # not a string
        return False


def _odd_facts(cols: Columns, cells: dict[str, set[int] | None], amounts_ok: bool) -> list[int]:
    """Of the VMs with §4 fields, those that may fail :func:`_plain_facts` (a pinned fifth of
    100 000: each field of them at once, and their traits once a pair). ``amounts_ok``: capacity
    found every allocation's amounts ints or floats from 0 to MAX_AMOUNT."""
    import numpy as np

    special = cols.special
    odd = np.zeros(len(special), dtype=np.bool_)
    held = cols.held
    given = list(filter(None, held))
    if given and not amounts_ok:
        amounts = list(chain.from_iterable(map(dict.values, given)))
        if not (_NUMBERS_SET.issuperset(map(type, amounts)) and _amounts(amounts)):
            odd[list(compress(range(len(special)), held))] = True
    required, forbidden = cols.required, cols.forbidden
    if any(required) or any(forbidden):
        wrong = {pair for pair in set(zip(required, forbidden, strict=True)) if not _plain_traits(*pair)}
        if wrong:
            odd[[j for j, pair in enumerate(zip(required, forbidden, strict=True)) if pair in wrong]] = True
    numa = cols.cells
    if any(numa):
        hosts = [cols.hosts[k] for k in compress(special, numa)]
        odd[_odd_cells(hosts, numa, cells)] = True
    devices = cols.devices
    flat = list(chain.from_iterable(filter(None, devices)))
    if flat and not _all_text(flat):
        odd[list(compress(range(len(special)), devices))] = True
    found: list[int] = np.array(special, dtype=np.int64)[odd].tolist()
    return found


def _amounts(values: list[float]) -> bool:
    """Every value (an int or a float) from 0 to MAX_AMOUNT."""
    import numpy as np

    try:
        x = np.fromiter(values, dtype=np.float64, count=len(values))
    except OverflowError:
        return False
    return bool(((x >= 0.0) & (x <= MAX_AMOUNT)).all())


def _plain_traits(required: Any, forbidden: Any) -> bool:
    """:func:`_plain_facts`'s test of a VM's traits."""
    try:
        return not (required or forbidden) or bool(
            all(isinstance(t, str) and _TRAIT.fullmatch(t) for t in required or ())
            and all(isinstance(t, str) and _TRAIT.fullmatch(t) for t in forbidden or ())
            and not set(required or ()) & set(forbidden or ())
        )
    except TypeError:
        return False


def _odd_cells(hosts: list[Any], numa: list[Any], cells: dict[str, set[int] | None]) -> list[int]:
    """Of the VMs with ``numa`` cells (on ``hosts``), those whose cells may not be distinct
    integers, all cells of their host (each VM's cells a bitmask, tested against its host's)."""
    import numpy as np

    at = list(compress(range(len(numa)), numa))
    members = list(compress(numa, numa))
    flat = list(chain.from_iterable(members))
    if set(map(type, flat)) != {int}:
        return at
    try:
        ids = np.fromiter(flat, dtype=np.int64, count=len(flat))
    except OverflowError:
        return at
    if not ((ids >= 0) & (ids < 63)).all():
        return at
    counts = np.fromiter(map(len, members), dtype=np.int64, count=len(members))
    starts = np.zeros(len(members), dtype=np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    bits = np.bitwise_or.reduceat(np.left_shift(np.int64(1), ids), starts)
    masks = {name: _cell_mask(have) for name, have in cells.items() if have}
    host_bits = np.fromiter(map(masks.get, hosts, repeat(0)), dtype=np.int64, count=len(members))
    ok = (_popcount(bits) == counts) & ((host_bits & bits) == bits)
    wrong: list[int] = np.array(at, dtype=np.int64)[~ok].tolist()
    return wrong


def _cell_mask(ids: set[int]) -> int:
    """The cell ids from 0 to 62 of a host, as a bitmask."""
    return sum(1 << c for c in ids if type(c) is int and 0 <= c < 63)


def _popcount(x: Any) -> Any:
    """The bits set in each of an int64 array's values."""
    import numpy as np

    table = np.array([bin(b).count("1") for b in range(256)], dtype=np.int64)
    return table[np.ascontiguousarray(x).view(np.uint8).reshape(-1, 8)].sum(axis=1)


def _vm_issues(
    at: str,
    v: VM,
    known: set[str],
    dup: set[str],
    policies: list[str],
    known_policies: set[str],
    cells: dict[str, set[int] | None],
    unit: Any,
) -> list[Issue]:
    out: list[Issue] = []
    if problem := name_problem(v.id):
        out.append(Issue(f"{at}.id", problem, v.id))
    elif v.id in dup:
        out.append(Issue(f"{at}.id", "duplicate VM id", v.id))
    if v.name is not None and _blank(v.name):
        out.append(Issue(f"{at}.name", "must not be blank (leave it out instead)", v.name))
    if v.host not in known:
        out.append(Issue(f"{at}.host", "unknown host", v.host))
    if v.status not in NOVA_STATUSES:
        near = nearest(str(v.status).upper(), NOVA_STATUSES)
        hint = f"; did you mean {near}?" if near else ""
        out.append(Issue(f"{at}.status", f"not a Nova server status{hint}", v.status))
    if v.task_state is not None and _blank(v.task_state):
        out.append(Issue(f"{at}.task_state", "must be null or a task state", v.task_state))
    if _blank(v.flavor.name):
        out.append(Issue(f"{at}.flavor.name", "must not be blank", v.flavor.name))
    for r in RESOURCES:
        x = getattr(v.flavor, r)
        if not _amount(x):
            out.append(Issue(f"{at}.flavor.{r}", f"flavor sizes {AMOUNT_RANGE}", x))
    for j, tag in enumerate(v.tags):
        if _blank(tag):
            out.append(Issue(f"{at}.tags[{j}]", "a tag must not be blank", tag))
    if not _plain_weights(v.weights, known_policies):
        out += _policy_keyed(f"{at}.weights", v.weights, policies, unit, "weights must be in [0, 1]")
    if v.weights_forecast:
        out += _policy_keyed(
            f"{at}.weights_forecast", v.weights_forecast, policies, unit, "forecasts must be in [0, 1]"
        )
    out += _placement_facts(at, v, cells)
    return out


def _plain_facts(v: VM, cells: dict[str, set[int] | None]) -> bool:
    """The VM's §4 fields in the common case, checked without paths (one cloud may pin
    a fifth of its 100 000 guests)."""
    held, required, forbidden, numa, devices = (
        v.resources,
        v.required_traits,
        v.forbidden_traits,
        v.numa_cells,
        v.devices,
    )
    if not (held or required or forbidden or numa or devices):
        return True
    try:
        if held and not all(type(x) in _NUMBERS and 0 <= x <= MAX_AMOUNT for x in held.values()):
            return False
        if (required or forbidden) and not (
            all(isinstance(t, str) and _TRAIT.fullmatch(t) for t in required or ())
            and all(isinstance(t, str) and _TRAIT.fullmatch(t) for t in forbidden or ())
            and not set(required or ()) & set(forbidden or ())
        ):
            return False
        if numa:
            known = cells.get(v.host)
            if not (
                known
                and known.issuperset(numa)
                and len(set(numa)) == len(numa)
                and all(type(c) is int for c in numa)
            ):
                return False
        return not devices or not any(_blank(d) for d in devices)
    except TypeError:  # a value that is not a number: the full check says which
        return False


def _placement_facts(at: str, v: VM, cells: dict[str, set[int] | None]) -> list[Issue]:
    """The VM's FORMATS §4 fields: amounts, trait names, cells that exist on its host, devices."""
    out: list[Issue] = []
    if not (v.resources or v.required_traits or v.forbidden_traits or v.numa_cells or v.devices):
        return out  # most VMs: nothing to check (validate runs before every plan of 100 000 VMs)
    for r, x in (v.resources or {}).items():
        if not _amount(x):
            out.append(Issue(key_path(f"{at}.resources", r), f"amounts {AMOUNT_RANGE}", x))
    for name in ("required_traits", "forbidden_traits"):
        out += _traits(f"{at}.{name}", getattr(v, name))
    both = set(v.required_traits or ()) & set(v.forbidden_traits or ())
    if both:
        out.append(Issue(f"{at}.forbidden_traits", "also required: no host can take it", sorted(both)))
    if v.numa_cells:
        have = cells.get(v.host)
        if not _distinct_ids(v.numa_cells):
            out.append(Issue(f"{at}.numa_cells", "cell ids must be distinct integers >= 0", v.numa_cells))
        elif have is None:
            out.append(Issue(f"{at}.numa_cells", f"its host {v.host} has no numa_cells", v.numa_cells))
        elif not set(v.numa_cells) <= have:
            known = ", ".join(map(str, sorted(have)))
            out.append(Issue(f"{at}.numa_cells", f"not cells of its host {v.host} ({known})", v.numa_cells))
    for j, d in enumerate(v.devices or ()):
        if _blank(d):
            out.append(Issue(f"{at}.devices[{j}]", "a device must not be blank", d))
    return out


def _groups(s: Snapshot, known: Collection[Any] | None = None) -> list[Issue]:
    """``known``: the VMs' ids, when the caller has them."""
    out: list[Issue] = []
    known = {v.id for v in s.vms} if known is None else known
    dup = _duplicates(g.id for g in s.server_groups)
    owner: dict[str, str] = {}
    for i, g in enumerate(s.server_groups):
        at = f"server_groups[{i}]"
        if problem := name_problem(g.id):
            out.append(Issue(f"{at}.id", problem, g.id))
        elif g.id in dup:
            out.append(Issue(f"{at}.id", "duplicate server group id", g.id))
        if g.name is not None and _blank(g.name):
            out.append(Issue(f"{at}.name", "must not be blank (leave it out instead)", g.name))
        if g.policy not in GROUP_POLICIES:
            out.append(Issue(f"{at}.policy", f"must be one of {', '.join(GROUP_POLICIES)}", g.policy))
        for rule in g.rules:
            if rule not in GROUP_RULES:
                out.append(
                    _unknown_name(key_path(f"{at}.rules", rule), rule, GROUP_RULES, "server group rule")
                )
        msph = g.rules.get("max_server_per_host")
        if msph is not None and not (
            isinstance(msph, int) and not isinstance(msph, bool) and 1 <= msph <= MAX_SERVER_PER_HOST
        ):
            why = f"must be an integer from 1 to {MAX_SERVER_PER_HOST}"
            out.append(Issue(f"{at}.rules.max_server_per_host", why, msph))
        for j, m in enumerate(g.members):
            if m not in known:
                out.append(Issue(f"{at}.members[{j}]", "member is not a VM of the snapshot", m))
            elif m in owner and owner[m] != g.id:
                out.append(Issue(f"{at}.members[{j}]", f"VM is already in server group {owner[m]}", m))
            else:
                owner[m] = g.id
    return out


def _capacity_warnings(s: Snapshot, sizes: Sizes | None) -> list[Issue]:
    """Hosts already over capacity in some resource class (their VMs' allocations, else flavors)."""
    import numpy as np  # here: `kronos --help` and the CLI's argument errors load no numpy

    from kronos.core.facts import capacity_or_none

    sizes = sizes or capacity_or_none(s)
    if sizes is None:  # an unknown host or a value the VM checks report
        return []
    names, cap, used = sizes.names, sizes.cap, sizes.used
    out: list[Issue] = []
    for i, r in zip(*np.nonzero(used > cap + 1e-9), strict=True):
        h, name = s.hosts[int(i)], names[int(r)]
        out.append(
            Issue(
                f"hosts[{i}].capacity.{name}",
                f"host {h.name} is already over capacity ({used[i, r]:g} used); "
                "it receives no VM until it is not",
                float(cap[i, r]),
                severity="warning",
            )
        )
    return out


# --------------------------------------------------------------------- plan


#: a cloud's name: in ``[nova:<cloud>]``, and a file name under ``federate --then-spread``
CLOUD_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _cloud_issues(at: str, name: Any, clouds: Any) -> list[Issue]:
    """A step's cloud: a cloud's name, and one of the plan's ``options.clouds`` when it lists them."""
    if _blank(name):
        return []  # (said above)
    if not CLOUD_NAME.fullmatch(name):
        return [Issue(at, "a cloud's name is letters, digits and . _ -", name)]
    if isinstance(clouds, list) and name not in clouds:
        return [
            Issue(at, f"not one of the plan's clouds (options.clouds: {', '.join(map(str, clouds))})", name)
        ]
    return []


def validate_plan(plan: Plan) -> list[Issue]:
    """What a consumer of a plan relies on: known actions, one step per ``seq``, finite figures."""
    out = check_format(plan.format, "kronos.plan")
    digest = plan.snapshot_digest
    if not (isinstance(digest, str) and digest.startswith("sha256:") and len(digest) > len("sha256:")):
        out.append(Issue("snapshot_digest", "expected sha256:<hex digest of the snapshot>", digest))
    dup = _duplicates(str(s.seq) for s in plan.steps)
    clouds = plan.options.get("clouds")
    for i, s in enumerate(plan.steps):
        at = f"steps[{i}]"
        if not (isinstance(s.seq, int) and s.seq >= 1):
            out.append(Issue(f"{at}.seq", "must be an integer >= 1", s.seq))
        elif str(s.seq) in dup:
            out.append(Issue(f"{at}.seq", "another step has this seq", s.seq))
        if not (isinstance(s.wave, int) and s.wave >= 1):
            out.append(Issue(f"{at}.wave", "must be an integer >= 1", s.wave))
        if _blank(s.phase):
            out.append(Issue(f"{at}.phase", "must be a phase name", s.phase))
        if s.action not in ACTIONS:
            out.append(Issue(f"{at}.action", f"must be one of {', '.join(ACTIONS)}", s.action))
        for name in ("instance", "source", "destination", "aggregate"):
            if problem := name_problem(getattr(s, name)):
                out.append(Issue(f"{at}.{name}", problem, getattr(s, name)))
        if not _finite(s.combined_after):
            out.append(Issue(f"{at}.combined_after", "must be a finite number", s.combined_after))
        if s.repeat_reason is not None and _blank(s.repeat_reason):
            out.append(Issue(f"{at}.repeat_reason", "must say why the VM moves again", s.repeat_reason))
        if s.action == "cross-cloud-migrate":
            for name in ("source_cloud", "destination_cloud", "precondition"):
                if _blank(getattr(s, name)):
                    out.append(Issue(f"{at}.{name}", "a cross-cloud step must name it", getattr(s, name)))
            for name in ("source_cloud", "destination_cloud"):
                out += _cloud_issues(f"{at}.{name}", getattr(s, name), clouds)
            if s.source_cloud is not None and s.source_cloud == s.destination_cloud:
                same = "must differ from source_cloud"
                out.append(Issue(f"{at}.destination_cloud", same, s.destination_cloud))
        else:
            for name in ("source_cloud", "destination_cloud", "precondition"):
                if getattr(s, name) is not None:
                    said = f"only a cross-cloud-migrate step has it (this one is {s.action})"
                    out.append(Issue(f"{at}.{name}", said, getattr(s, name)))
        if s.numa_cells is not None and not _distinct_ids(s.numa_cells):
            out.append(Issue(f"{at}.numa_cells", "cell ids must be distinct integers >= 0", s.numa_cells))
        if s.action != "cross-cloud-migrate" and not _blank(s.source) and s.source == s.destination:
            out.append(
                Issue(f"{at}.destination", "must differ from source (a move to where it is)", s.destination)
            )
    out += _out_of_order(plan.steps)
    out += _repeated_moves(plan.steps)
    out += _plan_options(plan.options)
    steps_in = Counter(s.aggregate for s in plan.steps)
    for name, summary in plan.summary.aggregates.items():
        at = key_path("summary.aggregates", name)
        out += _aggregate_summary(at, summary)
        if isinstance(summary.migrations, int) and summary.migrations != steps_in[name]:
            # a hand-edited plan: what it reports would not be what it does
            said = f"the plan has {steps_in[name]} step(s) in this aggregate"
            out.append(Issue(f"{at}.migrations", said, summary.migrations))
    for field in ("unplaced", "not_selected"):
        for i, u in enumerate(getattr(plan.summary, field) or ()):
            if _blank(u.instance):
                out.append(Issue(f"summary.{field}[{i}].instance", "must not be blank", u.instance))
    return out


def _out_of_order(steps: tuple[Step, ...]) -> list[Issue]:
    """The file's order, ``seq`` order and the waves' order are one. The executor runs a plan by
    (wave, seq); report, explain and the dry run replay it as written: a hand-edited plan whose
    orders differ would show one sequence and carry out another. The first break is enough."""
    for i in range(1, len(steps)):
        before, s = steps[i - 1], steps[i]
        if not all(isinstance(x, int) for x in (before.seq, s.seq, before.wave, s.wave)):
            continue  # reported as such already
        if s.seq < before.seq:
            return [
                Issue(
                    f"steps[{i}].seq", f"steps are written in seq order: it follows seq {before.seq}", s.seq
                )
            ]
        if s.wave < before.wave:
            said = f"waves run in seq order: seq {before.seq}, before it, is in wave {before.wave}"
            return [Issue(f"steps[{i}].wave", said, s.wave)]
    return []


def _repeated_moves(steps: tuple[Step, ...]) -> list[Issue]:
    """A VM moves once a plan unless a later step says why it moves again (FORMATS §2), and never
    twice in one wave: the executor runs a wave's steps at once, so their order would be Nova's."""
    out = []
    first: dict[str, int] = {}
    waves: dict[tuple[str, int], int] = {}
    runs = sorted(range(len(steps)), key=lambda i: (_int_or(steps[i].wave), _int_or(steps[i].seq)))
    for i in runs:  # in the order the executor runs them, whatever the file's order
        s = steps[i]
        if _blank(s.instance) or not isinstance(s.wave, int):  # reported as such already
            continue
        at = f"steps[{i}]"
        if (s.instance, s.wave) in waves:
            j = waves[s.instance, s.wave]
            out.append(Issue(f"{at}.wave", f"steps[{j}] moves this VM in the same wave", s.wave))
        elif s.instance in first and _blank(s.repeat_reason):
            j = first[s.instance]
            out.append(
                Issue(
                    f"{at}.instance", f"steps[{j}] moves it already; a repeat needs repeat_reason", s.instance
                )
            )
        first.setdefault(s.instance, i)
        waves.setdefault((s.instance, s.wave), i)
    return out


def _int_or(x: Any) -> int:
    return x if isinstance(x, int) else 0


def _host_names(x: Any) -> bool:
    return isinstance(x, list) and all(isinstance(h, str) and not _blank(h) for h in x)


def _budget(x: Any) -> bool:
    return x is None or (isinstance(x, int) and not isinstance(x, bool) and x >= 0)


#: what a plan's ``options`` record besides the planner options: how the plan was asked for
#: (a federation plan: its policy); each with the test its value must pass and what that says
PLAN_RECORDS: dict[str, tuple[Any, str]] = {
    "mode": (lambda x: x in (*MODES, "evacuate", "drain", "federate"), "must be a mode"),
    "budget": (lambda x: _budget(x) or isinstance(x, dict), "must be an integer >= 0 or null"),
    "balance_budget": (_budget, "must be an integer >= 0 or null"),
    "drain": (_host_names, "must be a list of host names"),
    "evacuate": (_host_names, "must be a list of host names"),
    "assumed_fenced": (lambda x: x is None or _host_names(x), "must be a list of host names or null"),
    "clouds": (_host_names, "must be a list of cloud names"),
    "snapshot_digests": (lambda x: isinstance(x, dict), "must be an object"),
    "trigger": (lambda x: isinstance(x, dict), "must be an object"),
    "networks": (lambda x: isinstance(x, dict), "must be an object"),
    "data": (lambda x: isinstance(x, str), "must be a string"),
}


#: options older plans record that are no option now (``prune``: spread's test knob, recorded
#: until it left the plan); read as the records they were, never as a misspelling
RETIRED_OPTIONS = frozenset({"prune"})


def _plan_options(options: Mapping[str, Any]) -> list[Issue]:
    """A plan's options are read back (explain, report, execute): a misspelled key or a value
    of the wrong JSON type would be read as the default, so each is checked as the planner's
    own options are (``kronos.core.options``), types strictly: JSON, not a config file's text."""
    from kronos.core.options import HINTS, OPTION_NAMES, make_options
    from kronos.errors import UsageError

    out: list[Issue] = []
    for key, value in options.items():
        at = key_path("options", key)
        if key.startswith("x_") or key in RETIRED_OPTIONS:  # FORMATS §0 extensions; older plans
            continue
        if key == "max_parallel" and value == 0:  # 0.1.0 took 0 for one step a wave
            continue
        if key == "move_cost" and isinstance(value, int | float) and MAX_MOVE_COST < value < math.inf:
            continue  # taken before the cap (no move either way): the plan stands as it was made
        if key in PLAN_RECORDS:
            test, said = PLAN_RECORDS[key]
            if not test(value):
                out.append(Issue(at, said, value))
            continue
        if key not in OPTION_NAMES:
            out.append(_unknown_name(at, key, (*OPTION_NAMES, *PLAN_RECORDS), "option"))
            continue
        kind = _json_kind(HINTS[key], value)
        if kind:
            out.append(Issue(at, kind, value))
            continue
        try:
            make_options({key: value}, alone=True)
        except UsageError as exc:
            out.append(Issue(at, str(exc).partition(": ")[2] or str(exc), value))
    return out


def _json_kind(hint: Any, value: Any) -> str:
    """What is wrong with ``value``'s JSON type for an option of type ``hint`` ("" if nothing)."""
    args = get_args(hint)
    if value is None:
        return "" if type(None) in args else "must not be null"
    kind = next((a for a in args if a is not type(None)), hint) if args and type(None) in args else hint
    if kind is bool:
        return "" if isinstance(value, bool) else "must be true or false"
    if kind in (int, float):
        number = isinstance(value, int | float) and not isinstance(value, bool)
        return (
            ""
            if number and (kind is float or isinstance(value, int))
            else f"must be a{'n integer' if kind is int else ' number'}"
        )
    if kind is str:
        return "" if isinstance(value, str) else "must be a string"
    return (
        ""
        if isinstance(value, list) and all(isinstance(x, str) for x in value)
        else "must be a list of names"
    )


def _distinct_ids(ids: Iterable[Any]) -> bool:
    seen = list(ids)
    return all(isinstance(x, int) and x >= 0 for x in seen) and len(set(seen)) == len(seen)


def _aggregate_summary(at: str, a: AggregateSummary) -> list[Issue]:
    out: list[Issue] = []
    for name in ("imbalance_before", "imbalance_after"):
        for p, x in getattr(a, name).items():
            if not _finite(x):
                out.append(Issue(key_path(f"{at}.{name}", p), "must be a finite number", x))
    for name in ("combined_before", "combined_after", "combined_forecast_before", "combined_forecast_after"):
        x = getattr(a, name)
        if x is not None and not _finite(x):
            out.append(Issue(f"{at}.{name}", "must be a finite number", x))
    if a.moved_memory_mb is not None and not (_finite(a.moved_memory_mb) and a.moved_memory_mb >= 0):
        out.append(Issue(f"{at}.moved_memory_mb", "must be a number >= 0", a.moved_memory_mb))
    if a.migrations < 0:
        out.append(Issue(f"{at}.migrations", "must be >= 0", a.migrations))
    for host, action in (a.post_drain or {}).items():
        if action not in POST_DRAIN_ACTIONS:
            out.append(Issue(key_path(f"{at}.post_drain", host), "must be none or disable", action))
    o = a.optimality
    if o is not None:
        if o.status not in OPTIMALITY_STATUSES:
            out.append(
                Issue(f"{at}.optimality.status", f"must be one of {', '.join(OPTIMALITY_STATUSES)}", o.status)
            )
        if o.objective_kind not in OBJECTIVE_KINDS:
            why = f"must be one of {', '.join(OBJECTIVE_KINDS)}"
            out.append(Issue(f"{at}.optimality.objective_kind", why, o.objective_kind))
        if _blank(o.solver):
            out.append(Issue(f"{at}.optimality.solver", "must name the solver", o.solver))
        for name in ("objective", "bound"):
            if not _finite(getattr(o, name)):
                out.append(Issue(f"{at}.optimality.{name}", "must be a finite number", getattr(o, name)))
        for name in ("gap", "seconds"):
            x = getattr(o, name)
            if not (_finite(x) and x >= 0):
                out.append(Issue(f"{at}.optimality.{name}", "must be a number >= 0", x))
    return out


# --------------------------------------------------------------------- state


def validate_state(state: State) -> list[Issue]:
    """What the planner reads back: named entries and outcomes it knows."""
    out = check_format(state.format, "kronos.state")
    for name in ("aggregate_cooldown_until", "instance_cooldown_until", "quarantined_until"):
        for key in getattr(state, name):
            if _blank(key):
                out.append(Issue(key_path(name, key), "keys must not be blank"))
    for i, r in enumerate(state.results):
        # (a control character is refused where an id is typed: one in a state made it unreadable)
        if _blank(r.instance):
            out.append(Issue(f"results[{i}].instance", "must not be blank", r.instance))
        if r.outcome not in OUTCOMES:
            out.append(Issue(f"results[{i}].outcome", f"must be one of {', '.join(OUTCOMES)}", r.outcome))
    return out


def errors_only(issues: Iterable[Issue]) -> list[Issue]:
    return [i for i in issues if i.severity == "error"]
