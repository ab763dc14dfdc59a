"""Cross-object validation of a snapshot, in one place.

Every problem becomes an :class:`Issue` with the JSON path of the offending
value, and all of them are reported at once: an operator fixing a recorded
snapshot should not have to run the validator ten times to find ten problems.
Warnings (for instance hosts already over capacity, which real clouds with
overcommit have) are reported but do not make a snapshot unusable; the
planner never "fixes" them.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from typing import Any, Literal

from attrs import frozen

from kronos.core.model import RESOURCES, UNASSIGNED, Snapshot

GROUP_POLICIES = ("affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity")
MODES = ("spread", "pack")
FALLBACKS = ("host_average", "skip")
_MISSING = object()


@frozen
class Issue:
    """One problem in a document: where, what value, why it is wrong."""

    path: str
    message: str
    value: Any = _MISSING
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        prefix = "warning: " if self.severity == "warning" else ""
        if self.value is _MISSING:
            return f"{prefix}{self.path}: {self.message}"
        return f"{prefix}{self.path} = {_show(self.value)}: {self.message}"


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return str(value)


def check_format(fmt: str, kind: str, path: str = "format") -> list[Issue]:
    """``kind/1`` and ``kind/1.x`` are readable; another name or major is not."""
    name, _, version = fmt.partition("/")
    if name != kind:
        return [Issue(path, f"expected {kind}/1", fmt)]
    if version.split(".")[0] != "1":
        return [Issue(path, f"unknown major version of {kind} (this Kronos reads 1)", fmt)]
    return []


def _bad_unit(x: float) -> bool:
    return not isinstance(x, int | float) or math.isnan(x) or x < 0.0 or x > 1.0


def _duplicates(names: Iterable[str]) -> set[str]:
    return {n for n, c in Counter(names).items() if c > 1}


def validate(snapshot: Snapshot) -> list[Issue]:
    """Return every problem in ``snapshot``; errors first in document order."""
    issues: list[Issue] = check_format(snapshot.format, "kronos.snapshot")
    issues += validate_policies(snapshot)
    issues += _hosts(snapshot)
    issues += _aggregates(snapshot)
    issues += _vms(snapshot)
    issues += _groups(snapshot)
    issues += _capacity_warnings(snapshot)
    return issues


def validate_policies(s: Snapshot) -> list[Issue]:
    out: list[Issue] = []
    dup = _duplicates(p.name for p in s.policies)
    for i, p in enumerate(s.policies):
        at = f"policies[{i}]"
        if p.name in dup:
            out.append(Issue(f"{at}.name", "duplicate policy name", p.name))
        if p.mode not in MODES:
            out.append(Issue(f"{at}.mode", "mode must be spread or pack", p.mode))
        if _bad_unit(p.weight):
            out.append(Issue(f"{at}.weight", "weights must be in [0, 1]", p.weight))
        if not p.threshold >= 0.0:
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
        if p.max_migrations_per_cycle is not None and p.max_migrations_per_cycle < 0:
            out.append(Issue(f"{at}.max_migrations_per_cycle", "must be >= 0", p.max_migrations_per_cycle))
    enabled = s.enabled_policies
    if enabled:
        total = sum(p.weight for p in enabled)
        if not abs(total - 1.0) <= 1e-6:
            out.append(Issue("policies", f"enabled policy weights sum to {total:.6g}, not 1.0"))
        modes = sorted({p.mode for p in enabled})
        if len(modes) > 1:
            out.append(Issue("policies", f"enabled policies mix modes {', '.join(modes)}"))
    return out


def _hosts(s: Snapshot) -> list[Issue]:
    out: list[Issue] = []
    dup = _duplicates(h.name for h in s.hosts)
    names = [p.name for p in s.enabled_policies]
    for i, h in enumerate(s.hosts):
        at = f"hosts[{i}]"
        if h.name in dup:
            out.append(Issue(f"{at}.name", "duplicate host name", h.name))
        for r in RESOURCES:
            v = getattr(h.capacity, r)
            if not (math.isfinite(v) and v >= 0):
                out.append(Issue(f"{at}.capacity.{r}", "capacity must be >= 0", v))
        for p in names:
            if p not in h.scores:
                if h.up:
                    out.append(Issue(f"{at}.scores.{p}", "missing score of an enabled policy"))
            elif _bad_unit(h.scores[p]):
                out.append(Issue(f"{at}.scores.{p}", "scores must be in [0, 1]", h.scores[p]))
        for p, v in h.score_capacity.items():
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                out.append(Issue(f"{at}.score_capacity.{p}", "must be > 0", v))
    return out


def _aggregates(s: Snapshot) -> list[Issue]:
    out: list[Issue] = []
    known = {h.name for h in s.hosts}
    dup = _duplicates(a.name for a in s.aggregates)
    az_of: dict[str, tuple[str, str]] = {}
    for i, a in enumerate(s.aggregates):
        at = f"aggregates[{i}]"
        if a.name in dup:
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


def _vms(s: Snapshot) -> list[Issue]:
    out: list[Issue] = []
    known = {h.name for h in s.hosts}
    dup = _duplicates(v.id for v in s.vms)
    for i, v in enumerate(s.vms):
        at = f"vms[{i}]"
        if v.id in dup:
            out.append(Issue(f"{at}.id", "duplicate VM id", v.id))
        if v.host not in known:
            out.append(Issue(f"{at}.host", "unknown host", v.host))
        for r in RESOURCES:
            x = getattr(v.flavor, r)
            if not (math.isfinite(x) and x >= 0):
                out.append(Issue(f"{at}.flavor.{r}", "flavor sizes must be >= 0", x))
        for p, w in v.weights.items():
            if _bad_unit(w):
                out.append(Issue(f"{at}.weights.{p}", "weights must be in [0, 1]", w))
    return out


def _groups(s: Snapshot) -> list[Issue]:
    out: list[Issue] = []
    known = {v.id for v in s.vms}
    dup = _duplicates(g.id for g in s.server_groups)
    owner: dict[str, str] = {}
    for i, g in enumerate(s.server_groups):
        at = f"server_groups[{i}]"
        if g.id in dup:
            out.append(Issue(f"{at}.id", "duplicate server group id", g.id))
        if g.policy not in GROUP_POLICIES:
            out.append(Issue(f"{at}.policy", f"must be one of {', '.join(GROUP_POLICIES)}", g.policy))
        msph = g.rules.get("max_server_per_host")
        if msph is not None and not (isinstance(msph, int) and msph >= 1):
            out.append(Issue(f"{at}.rules.max_server_per_host", "must be an integer >= 1", msph))
        for j, m in enumerate(g.members):
            if m not in known:
                out.append(Issue(f"{at}.members[{j}]", "member is not a VM of the snapshot", m))
            elif m in owner and owner[m] != g.id:
                out.append(Issue(f"{at}.members[{j}]", f"VM is already in server group {owner[m]}", m))
            else:
                owner[m] = g.id
    return out


def _capacity_warnings(s: Snapshot) -> list[Issue]:
    used: dict[str, list[float]] = {h.name: [0.0, 0.0, 0.0] for h in s.hosts}
    for v in s.vms:
        u = used.get(v.host)
        if u is not None:
            u[0] += v.flavor.vcpus
            u[1] += v.flavor.memory_mb
            u[2] += v.flavor.disk_gb
    out: list[Issue] = []
    for i, h in enumerate(s.hosts):
        for k, r in enumerate(RESOURCES):
            cap = getattr(h.capacity, r)
            if used[h.name][k] > cap + 1e-9:
                out.append(
                    Issue(
                        f"hosts[{i}].capacity.{r}",
                        f"host {h.name} is already over capacity ({used[h.name][k]:g} used); "
                        "it receives no VM until it is not",
                        cap,
                        severity="warning",
                    )
                )
    return out


def errors_only(issues: Iterable[Issue]) -> list[Issue]:
    return [i for i in issues if i.severity == "error"]
