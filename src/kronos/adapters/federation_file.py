"""federation.yaml: which VMs may leave their cloud, when, how many, and where they may go.

Read like policies.yaml: ruamel's round-trip loader for line numbers, every
problem reported at once with ``file:line: path = value: why`` (exit 78),
a misspelled key named with the nearest known one. ``data`` has no default:
it is the operator's statement of where the VMs' disks live (replicated
volumes or a stateless image), which Kronos cannot check and must not guess.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

from kronos.core.federation_policy import PRECONDITIONS, Budget, Eligible, FederationPolicy, Receive, Trigger
from kronos.core.options import INT64, did_you_mean
from kronos.errors import ConfigError, DataError, problem_list
from kronos.files import parse_yaml, read_text

_TOP = ("eligible", "trigger", "budget", "receive", "networks", "data")
_SECTIONS: dict[str, tuple[str, ...]] = {
    "eligible": ("tags", "metadata", "projects"),
    "trigger": ("load_difference", "max_load", "target_difference"),
    "budget": ("moves", "memory_gb"),
}
_RECEIVE = ("aggregates", "availability_zones")


def _line(node: Any, key: str | None = None) -> int | None:
    lc = getattr(node, "lc", None)
    if lc is None:
        return None
    try:
        return int(lc.key(key)[0] if key is not None else lc.line) + 1
    except (KeyError, IndexError, TypeError, AttributeError):
        return int(lc.line) + 1


class _Reader:
    """Collects every problem with its line; each getter returns a placeholder after one."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.problems: list[str] = []

    def fail(self, node: Any, key: str | None, path: str, why: str, value: Any = ...) -> None:
        line = _line(node, key)
        where = f"{self.name}:{line}" if line else self.name
        shown = "" if value is ... else f" = {value!r}"
        self.problems.append(f"{where}: {path}{shown}: {why}")

    def mapping(self, node: Any, key: str, path: str, known: tuple[str, ...] | None) -> dict[str, Any]:
        value = node.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(node, key, path, "expected a mapping", value)
            return {}
        for k in value:
            if not isinstance(k, str):
                self.fail(value, None, f"{path}.{k}", "keys must be strings")
            elif known is not None and k not in known:
                self.fail(value, k, f"{path}.{k}", f"unknown key{did_you_mean(k, known)}")
        return value  # ruamel's mapping: it keeps the lines of its keys

    def strings(self, node: dict[str, Any], key: str, path: str) -> tuple[str, ...] | None:
        value = node.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(x, str) and x.strip() for x in value):
            self.fail(node, key, f"{path}.{key}", "expected a list of non-empty strings", value)
            return None
        return tuple(value)

    def text_map(self, node: dict[str, Any], key: str, path: str) -> dict[str, str]:
        value = self.mapping(node, key, f"{path}{key}", None)
        for k, v in value.items():
            if not isinstance(v, str) or not v.strip():
                self.fail(node[key], k, f"{path}{key}.{k}", "expected a non-empty string", v)
        return {str(k): str(v) for k, v in value.items()}

    def number(
        self, node: dict[str, Any], key: str, path: str, ok: Callable[[float], bool], rule: str
    ) -> float | None:
        value = node.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.fail(node, key, f"{path}.{key}", "expected a number", value)
            return None
        if not ok(float(value)):
            self.fail(node, key, f"{path}.{key}", rule, value)
            return None
        return float(value)


def parse_federation(text: str, name: str) -> FederationPolicy:
    """A federation policy from the text of a federation.yaml; ``name`` prefixes every error."""
    try:
        doc = parse_yaml(text, name, typ="rt")
    except DataError as exc:
        raise ConfigError(str(exc)) from exc
    if not isinstance(doc, dict):
        raise ConfigError(f"{name}: expected a mapping with {', '.join(_TOP)}")
    r = _Reader(name)
    for k in doc:
        if k not in _TOP:
            r.fail(doc, k, str(k), f"unknown top-level key{did_you_mean(k, _TOP)}")
    el = r.mapping(doc, "eligible", "eligible", _SECTIONS["eligible"])
    eligible = Eligible(
        tags=r.strings(el, "tags", "eligible") or (),
        metadata=r.text_map(el, "metadata", "eligible.") if el else {},
        projects=r.strings(el, "projects", "eligible") or (),
    )
    if not (eligible.tags or eligible.metadata or eligible.projects):
        r.fail(
            doc,
            "eligible" if "eligible" in doc else None,
            "eligible",
            "opt VMs in by tags, metadata or projects: with none, no VM may leave its cloud",
        )
    tr = r.mapping(doc, "trigger", "trigger", _SECTIONS["trigger"])
    # loads are capacity-normalised shares: at 1 or above (85 meant as 85 %) nothing ever triggers
    share = "a share of capacity: above 0 and below 1 (0.85 for 85 %)"
    trigger = Trigger(
        load_difference=r.number(tr, "load_difference", "trigger", lambda x: 0 < x < 1, share)
        if "load_difference" in tr
        else Trigger().load_difference,
        max_load=r.number(tr, "max_load", "trigger", lambda x: 0 < x < 1, share),
        target_difference=r.number(
            tr,
            "target_difference",
            "trigger",
            lambda x: 0 <= x < 1,
            "a share of capacity: 0 or more, below 1",
        ),
    )
    if "load_difference" in tr and tr["load_difference"] is None and tr.get("max_load") is None:
        r.fail(doc, "trigger", "trigger", "give load_difference or max_load: with neither, nothing triggers")
    if (
        trigger.target_difference is not None
        and trigger.load_difference is not None
        and trigger.target_difference > trigger.load_difference
    ):
        r.fail(
            tr,
            "target_difference",
            "trigger.target_difference",
            f"must not exceed load_difference ({trigger.load_difference:g})",
            trigger.target_difference,
        )
    bu = r.mapping(doc, "budget", "budget", _SECTIONS["budget"])
    moves = bu.get("moves", Budget().moves)
    if isinstance(moves, bool) or not isinstance(moves, int) or not 0 <= moves < INT64:
        r.fail(bu, "moves", "budget.moves", "expected an integer >= 0 (and below 2**63)", moves)
        moves = 0
    budget = Budget(
        moves=moves, memory_gb=r.number(bu, "memory_gb", "budget", lambda x: x > 0, "must be above 0")
    )
    receive: dict[str, Receive] = {}
    for cloud, spec in r.mapping(doc, "receive", "receive", None).items():
        if not isinstance(spec, dict):
            r.fail(doc["receive"], cloud, f"receive.{cloud}", "expected a mapping", spec)
            continue
        for k in spec:
            if k not in _RECEIVE:
                r.fail(spec, k, f"receive.{cloud}.{k}", f"unknown key{did_you_mean(k, _RECEIVE)}")
        receive[str(cloud)] = Receive(
            aggregates=r.strings(spec, "aggregates", f"receive.{cloud}"),
            availability_zones=r.strings(spec, "availability_zones", f"receive.{cloud}"),
        )
    networks = r.text_map(doc, "networks", "")
    data = doc.get("data")
    if data is None:
        live = " or ".join(PRECONDITIONS)
        r.fail(doc, None, "data", f"missing: declare where the VMs' disks live ({live})")
    elif data not in PRECONDITIONS:
        r.fail(doc, "data", "data", f"must be one of {', '.join(PRECONDITIONS)}", data)
    if r.problems:
        raise ConfigError(problem_list(name, r.problems))
    return FederationPolicy(
        eligible=eligible,
        trigger=trigger,
        budget=budget,
        receive=receive,
        networks=networks,
        data=str(data),
    )


def load_federation(path: str | os.PathLike[str]) -> FederationPolicy:
    """Read a federation.yaml (missing: exit 66; any problem in it: exit 78)."""
    try:
        text, name = read_text(path)
    except DataError as exc:
        raise ConfigError(str(exc)) from None
    return parse_federation(text, name)
