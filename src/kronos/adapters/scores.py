"""Host scores and VM profiles from Prometheus, and the data-health verdict.

Planning on half the hosts moves VMs onto hosts whose load is unknown, so
every doubt about the data is reported per policy and per host, never
silently fixed: a host missing from the result, NaN or Inf, a score outside
[0, 1], two series for one host, a stale sample, a failed query, and,
when a history window is read (:mod:`kronos.adapters.history`), a host
whose history is more than half gaps. An aggregate whose host data is not
trustworthy (by default: any bad host) is skipped for the cycle with the
reason. VM profile gaps are not fatal: a VM without a weight follows its
policy's ``vm_profile_fallback``, and one without a usable profile history
is forecast to stay where it is.

Reading (:func:`read_policy`, :func:`read_vm_weights`) is the only part that
talks to Prometheus: per policy one instant query (plus the freshness query)
and, with a window, one range query for the hosts and one for the VMs.
:func:`assess` is a pure function of what was read.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

import numpy as np
from attrs import field, frozen

from kronos.adapters import history as hist
from kronos.adapters.config import PrometheusConfig
from kronos.adapters.history import History, Window
from kronos.adapters.prometheus import PrometheusClient, QueryFailed, Series
from kronos.core.model import Policy


@frozen
class Problem:
    """One data-health finding: which policy, which host or VM, what is wrong."""

    policy: str
    kind: str  # query | missing | nan | inf | range | duplicate | stale | history | label | gaps | vm-*
    detail: str
    subject: str | None = None  # a host name or an instance UUID

    def __str__(self) -> str:
        who = f"{self.subject}: " if self.subject else ""
        return f"{self.policy}: {who}{self.detail}"


@frozen
class PolicyReading:
    """One policy's host data at one instant, for every host Prometheus reported."""

    policy: Policy
    values: dict[str, tuple[float, ...]]  # host → the value of each series carrying it
    newest: dict[str, float] | None = None  # host → newest sample time (None: no freshness_query)
    error: str | None = None
    unlabeled: int = 0  # series without the host label
    #: host → its history over ``window`` (hosts of ``values`` only); None: no window read
    history: dict[str, History] | None = None
    window: Window | None = None

    @property
    def hosts(self) -> set[str]:
        return set(self.values)


def read_policy(
    client: PrometheusClient, policy: Policy, at: datetime, window: Window | None = None
) -> PolicyReading:
    """Run the policy's imbalance (and freshness) query once, for all hosts; with a
    ``window`` (ending at ``at``), also the imbalance query as one range query."""
    label = policy.host_label or "host"
    if not policy.imbalance_query:
        return PolicyReading(policy, {}, error="policy has no imbalance_query")
    try:
        samples = client.query(policy.imbalance_query, at)
    except QueryFailed as exc:
        return PolicyReading(policy, {}, error=str(exc))
    newest = None
    if policy.freshness_query:
        try:
            fresh = client.query(policy.freshness_query, at)
        except QueryFailed as exc:  # named: the imbalance query is the one an operator suspects
            return PolicyReading(policy, {}, error=f"freshness_query: {exc}")
        newest = {s.labels[label]: s.value for s in fresh if label in s.labels and math.isfinite(s.value)}
    values: dict[str, list[float]] = defaultdict(list)
    unlabeled = 0
    for s in samples:
        if label in s.labels:
            values[s.labels[label]].append(s.value)
        else:
            unlabeled += 1
    histories = None
    if window is not None:
        try:
            series = client.query_range(policy.imbalance_query, window.start, window.end, window.step)
        except QueryFailed as exc:
            return PolicyReading(policy, {}, error=f"history ({window}): {exc}", window=window)
        by_host = hist.group(series, lambda labels: labels.get(label))
        grid = hist.on_grid(by_host, {h: _usable(v) for h, v in values.items()}, window)
        histories = {h: grid.history(i) for i, h in enumerate(grid.keys)}
    return PolicyReading(
        policy, {h: tuple(v) for h, v in values.items()}, newest, None, unlabeled, histories, window
    )


def _usable(values: Sequence[float]) -> float | None:
    """The one value of a host (or VM) that is a good score, else None."""
    return values[0] if len(values) == 1 and 0.0 <= values[0] <= 1.0 else None


def read_policies(
    client: PrometheusClient, policies: Iterable[Policy], at: datetime, window: Window | None = None
) -> dict[str, PolicyReading]:
    return {p.name: read_policy(client, p, at, window) for p in policies if p.enabled}


def host_problem(reading: PolicyReading, host: str, at: float, max_sample_age: float) -> Problem | None:
    """What is wrong with ``host``'s score under this policy, if anything."""
    name = reading.policy.name
    values = reading.values.get(host)
    if not values:
        return Problem(name, "missing", "missing from the query result", host)
    if len(values) > 1:
        shown = ", ".join(f"{v:.4g}" for v in values)
        return Problem(name, "duplicate", f"{len(values)} series for one host ({shown})", host)
    v = values[0]
    if math.isnan(v):
        return Problem(name, "nan", "score is NaN", host)
    if math.isinf(v):
        return Problem(name, "inf", f"score is {'+' if v > 0 else '-'}Inf", host)
    if not 0.0 <= v <= 1.0:
        return Problem(name, "range", f"score {v:.6g} outside [0, 1]", host)
    if reading.newest is not None:
        newest = reading.newest.get(host)
        if newest is None:
            return Problem(name, "stale", "no sample time from freshness_query", host)
        age = at - newest
        if age > max_sample_age:
            why = f"newest sample {age:.0f}s old (max_sample_age {max_sample_age:g}s)"
            return Problem(name, "stale", why, host)
    history = reading.history.get(host) if reading.history is not None else None
    if history is not None and history.mostly_missing:
        why = f"history over the last {reading.window}: {history.describe()}, more than half"
        return Problem(name, "history", why, host)
    return None


def gaps_note(reading: PolicyReading, hosts: Iterable[str]) -> Problem | None:
    """The gaps in good hosts' histories, counted: kept as ``null``, reported, not fatal."""
    gappy = {x: h for x in hosts if reading.history and (h := reading.history.get(x)) and h.nulls}
    if not gappy:
        return None
    counts: dict[str, int] = defaultdict(int)
    for h in gappy.values():
        for kind, n in h.gaps.items():
            counts[kind] += n
    names = sorted(gappy)
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    why = (
        f"history: {sum(counts.values())} null sample(s) ({hist.why(counts)}) on {len(names)} host(s) "
        f"({shown}), kept as gaps"
    )
    return Problem(reading.policy.name, "gaps", why)


@frozen
class PolicyReport:
    policy: str
    weight: float
    threshold: float
    scores: dict[str, float]  # the good hosts' scores
    values: dict[str, tuple[float, ...]]  # what was read for every host of the aggregate
    problems: tuple[Problem, ...]
    imbalance: float | None  # population std over good hosts; None when the data is not usable
    #: each host's history over the window read (gaps None); empty when none was read
    history: dict[str, tuple[float | None, ...]] = field(factory=dict)

    @property
    def exceeded(self) -> bool | None:
        return None if self.imbalance is None else self.imbalance > self.threshold


@frozen
class AggregateReport:
    name: str
    hosts: tuple[str, ...]
    policies: tuple[PolicyReport, ...]
    skipped: str | None

    @property
    def combined(self) -> float | None:
        if any(p.imbalance is None for p in self.policies):
            return None
        return sum(p.weight * (p.imbalance or 0.0) for p in self.policies)

    @property
    def problems(self) -> tuple[Problem, ...]:
        return tuple(x for p in self.policies for x in p.problems)


#: the ``[prometheus]`` defaults: data judged as a kronos.conf without the section would
DEFAULT_LIMITS = PrometheusConfig()


def assess(
    readings: Mapping[str, PolicyReading],
    aggregates: Mapping[str, Sequence[str]],
    at: datetime,
    *,
    down: Iterable[str] = (),
    limits: PrometheusConfig = DEFAULT_LIMITS,
) -> list[AggregateReport]:
    """The health verdict per aggregate: good scores, problems, and whether to skip it.

    Hosts in ``down`` export nothing when dead, so their absence is no problem
    and they take no part in the imbalance (the snapshot treats them alike).
    ``limits``: the ``[prometheus]`` section, whose ``max_sample_age`` and
    ``min_host_coverage`` judge the data (one argument, so every caller judges alike).
    """
    max_sample_age, min_host_coverage = limits.max_sample_age, limits.min_host_coverage
    gone = set(down)
    t = at.timestamp()
    reports = []
    for agg, members in aggregates.items():
        live = [h for h in members if h not in gone]
        policies, reasons = [], []
        for reading in readings.values():
            name = reading.policy.name
            values = {h: reading.values[h] for h in members if h in reading.values}
            if reading.error is not None:
                problems: list[Problem] = [Problem(name, "query", f"query failed: {reading.error}")]
                good: dict[str, float] = {}
                reasons.append(f"{name}: query failed")
            else:
                problems = [p for h in live if (p := host_problem(reading, h, t, max_sample_age))]
                bad = {p.subject for p in problems}
                good = {h: reading.values[h][0] for h in live if h not in bad}
                if reading.unlabeled:
                    label = reading.policy.host_label
                    problems.append(
                        Problem(name, "label", f"{reading.unlabeled} series without the {label!r} label")
                    )
                if note := gaps_note(reading, good):
                    problems.append(note)
            covered = reading.error is None and len(good) >= min_host_coverage * len(live) - 1e-9
            if reading.error is None and not covered:
                reasons.append(
                    f"{name}: data of {len(live) - len(good)} of {len(live)} hosts not trustworthy "
                    f"(min_host_coverage {min_host_coverage:g})"
                )
            imbalance = statistics.pstdev(good.values()) if covered and good else None
            policies.append(
                PolicyReport(
                    name,
                    reading.policy.weight,
                    reading.policy.threshold,
                    good,
                    values,
                    tuple(problems),
                    imbalance,
                    {h: x.samples for h in members if (x := (reading.history or {}).get(h))},
                )
            )
        skipped = "bad data: " + "; ".join(reasons) if reasons else None
        reports.append(AggregateReport(agg, tuple(members), tuple(policies), skipped))
    return reports


@frozen
class VMRef:
    """What Prometheus exporters may call a VM by, besides its UUID."""

    id: str
    name: str | None = None
    instance_name: str | None = None  # the libvirt domain name, ``instance-0000abcd``


@frozen
class VMWeights:
    policy: str
    weights: dict[str, float]  # instance UUID → share of its host's score
    missing: tuple[str, ...]  # UUIDs with no usable profile: they follow vm_profile_fallback
    problems: tuple[Problem, ...]
    #: UUID → the weight forecast ``horizon`` seconds ahead (VMs of ``weights`` only)
    forecasts: dict[str, float] = field(factory=dict)
    horizon: float | None = None


def _keys(label_type: str, vms: Sequence[VMRef]) -> tuple[dict[str, str], set[str]]:
    """Label value → UUID, and the label values that name several VMs."""
    keyed: dict[str, str] = {}
    ambiguous: set[str] = set()
    attribute = {"nova_instance_uuid": "id", "libvirt_domain_name": "instance_name", "server_name": "name"}
    for vm in vms:
        key = getattr(vm, attribute[label_type])
        if key is None:
            continue
        if key in keyed and keyed[key] != vm.id:
            ambiguous.add(key)
        keyed[key] = vm.id
    return keyed, ambiguous


def read_vm_weights(
    client: PrometheusClient,
    policy: Policy,
    at: datetime,
    vms: Sequence[VMRef],
    window: Window | None = None,
    horizon: float = 0.0,
) -> VMWeights:
    """Run the policy's VM profile query once for all ``vms``; gaps follow the fallback.

    With a ``window`` and a ``horizon`` > 0, the profile query also runs once
    as a range query over the window, and each VM with a weight gets its
    forecast ``horizon`` seconds ahead (:func:`kronos.adapters.history.forecast`).
    """
    name = policy.name
    problems: list[Problem] = []
    weights: dict[str, float] = {}
    forecasts: dict[str, float] = {}
    if policy.vm_profile_query and policy.vm_profile_label:
        keyed, ambiguous = _keys(policy.vm_profile_label_type or "nova_instance_uuid", vms)
        try:
            samples = client.query(policy.vm_profile_query, at)
        except QueryFailed as exc:
            samples = []
            problems.append(Problem(name, "vm-query", f"VM profile query failed: {exc}"))
        seen: dict[str, list[float]] = defaultdict(list)
        for s in samples:
            key = s.labels.get(policy.vm_profile_label)
            if key is None or key not in keyed:
                continue  # another aggregate's VM, or not a Nova instance
            if key in ambiguous:
                problems.append(Problem(name, "vm-ambiguous", f"{key!r} names several servers", key))
                continue
            seen[keyed[key]].append(s.value)
        for uuid, values in seen.items():
            v = values[0]
            if len(values) > 1:
                problems.append(Problem(name, "vm-duplicate", f"{len(values)} profile series", uuid))
            elif not math.isfinite(v) or not 0.0 <= v <= 1.0:
                shown = "NaN" if math.isnan(v) else f"{v:.6g}"
                problems.append(Problem(name, "vm-value", f"weight {shown} not in [0, 1]", uuid))
            else:
                weights[uuid] = v
        if window is not None and horizon > 0 and weights:
            label = policy.vm_profile_label

            def uuid_of(labels: dict[str, str]) -> str | None:
                key = labels.get(label)
                return keyed[key] if key in keyed and key not in ambiguous else None

            try:
                series = client.query_range(policy.vm_profile_query, window.start, window.end, window.step)
            except QueryFailed as exc:
                problems.append(Problem(name, "vm-history", f"VM profile history ({window}) failed: {exc}"))
            else:
                forecasts = _forecasts(name, hist.group(series, uuid_of), weights, window, horizon, problems)
    missing = tuple(vm.id for vm in vms if vm.id not in weights)
    if missing:
        problems.append(
            Problem(
                name,
                "vm-gap",
                f"{len(missing)} of {len(vms)} VMs have no usable profile; "
                f"they follow vm_profile_fallback = {policy.vm_profile_fallback}",
            )
        )
    return VMWeights(name, weights, missing, tuple(problems), forecasts, horizon if forecasts else None)


def _forecasts(
    policy: str,
    by_vm: Mapping[str, Sequence[Series]],
    weights: Mapping[str, float],
    window: Window,
    horizon: float,
    problems: list[Problem],
) -> dict[str, float]:
    """Each weighted VM's forecast from its profile history; its gaps counted in one line."""
    grid = hist.on_grid(by_vm, weights, window)
    gappy = int((grid.kinds > 0).any(axis=1).sum())
    if gappy:
        codes = np.bincount(grid.kinds.ravel(), minlength=len(hist.KINDS) + 1).tolist()
        counts = {k: codes[j + 1] for j, k in enumerate(hist.KINDS) if codes[j + 1]}
        why = (
            f"VM profile history ({window}): {sum(counts.values())} null sample(s) ({hist.why(counts)}) "
            f"on {gappy} of {len(weights)} VMs"
        )
        thin = int(grid.mostly_missing.sum())
        if thin:
            why += f"; {thin} more than half missing, forecast at their current weight"
        problems.append(Problem(policy, "vm-history", why))
    values = hist.forecast(grid, window.step, horizon)
    return dict(zip(grid.keys, values.tolist(), strict=True))
