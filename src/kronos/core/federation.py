"""Federation (phase ``federation``): move load between independent clouds.

Each snapshot is one cloud. The clouds' loads are compared first, as one
number each: per policy, the sum over active hosts of score × score
capacity divided by the sum of score capacity (how full the cloud is, big
hosts counting for more), then the policies' weighted mean. When the
clouds' loads differ by more than ``load_difference``, or one is above
``max_load`` while another is below it, VMs move one at a time from the most
loaded cloud to the least loaded one, each time the move that brings the
two loads closest, until the trigger no longer holds or the budget (moves,
GiB of memory) is used.

A VM may leave its cloud only if the operator opted it in (``eligible``)
and nothing ties it to its hypervisor or its cloud: no server group (a
group's members cannot be split between clouds; Nova knows no group across
them), no passthrough device, ``migratable``, ACTIVE with no task, on an up
host. Its destination keeps every host and move rule of the destination
cloud's table (:mod:`kronos.core.rules`: capacity in every resource class,
extra specs, traits, NUMA cells, ``max_host_score``) and is one of the hosts
``receive`` allows. The availability-zone rule of a migration (stay in your
zone) does not apply: the twin is created in the zone of the destination
host, which ``receive`` chose. The CPU-model rule does not either: the twin
boots anew.

Rules are checked in the destination cloud's own world, to which every
eligible VM of the other clouds is added on one inactive stand-in host
(:data:`ELSEWHERE`) with its absolute load; a VM leaving a cloud moves to
that cloud's stand-in. Among the moves that bring the loads equally close,
the one that leaves the two clouds' own imbalance lowest wins, and its
destination is the allowed host that leaves the receiving cloud's imbalance
lowest.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import attrs
import numpy as np
from attrs import frozen

from kronos.core import kernels, rules
from kronos.core.arrays import (
    BUSY,
    COOLDOWN,
    NO_PROFILE,
    NOT_ACTIVE,
    NOT_MIGRATABLE,
    QUARANTINE,
    SHUTOFF,
    World,
    build_world,
    weighted,
)
from kronos.core.convert import digest_of
from kronos.core.federation_policy import (
    PRECONDITIONS,
    FederationPolicy,
    Receive,
    Trigger,
)
from kronos.core.model import (
    VM,
    Capacity,
    CloudSummary,
    Host,
    Plan,
    PlanSummary,
    Reason,
    Snapshot,
    State,
    Step,
)
from kronos.core.planner import prepare
from kronos.core.reasons import render, render_all
from kronos.errors import DataError

PHASE = "federation"
ACTION = "cross-cloud-migrate"
#: the stand-in host of a cloud's world that holds the other clouds' candidates and takes
#: its own departures (never active, in no aggregate)
ELSEWHERE = "kronos:elsewhere"
#: the zone of a host in no zone-bearing aggregate, as Nova names it
DEFAULT_ZONE = "nova"
#: candidates (by how close they bring the loads) whose rules are walked per move, and how many
#: feasible ones are compared by their effect on the clouds' own imbalance
SHORTLIST = 48
COMPARED = 6
#: weight of the two clouds' own imbalance change against the load difference
OWN_IMBALANCE = 0.5
_STUCK = NOT_ACTIVE | BUSY | NOT_MIGRATABLE | COOLDOWN | QUARANTINE | SHUTOFF | NO_PROFILE


@attrs.define
class _Cloud:
    """One cloud while planning: its world (with the stand-in) and what may leave it."""

    name: str
    snapshot: Snapshot
    digest: str
    world: World
    real: np.ndarray  # host indices of the cloud's own hosts
    elsewhere: int  # the stand-in's host index
    eligible: np.ndarray  # V b1 over this world's VMs: its own VMs that may leave
    receivers: np.ndarray  # host indices that may take arrivals
    zone: np.ndarray  # per receiving host, its zone id (the world's, or -1)
    arrival: dict[tuple[str, int], int]  # (other cloud, its VM index) -> index here
    departures: int = 0
    arrivals: int = 0
    moved_mb: float = 0.0

    def load(self) -> float:
        w = self.world
        act = self.real[w.active[self.real]]
        if act.size == 0:
            return 0.0
        per = (w.score[act] * w.sc[act]).sum(axis=0) / w.sc[act].sum(axis=0)
        return float(weighted(per, w.pw) / w.pw.sum())

    def capacity(self) -> np.ndarray:
        """Per policy, the sum of score capacity over the active hosts (what a load divides by)."""
        w = self.world
        act = self.real[w.active[self.real]]
        return np.asarray(w.sc[act].sum(axis=0))

    def imbalance(self, host: np.ndarray | None = None, delta: np.ndarray | None = None) -> np.ndarray:
        """The cloud's combined imbalance (its active hosts as one set), for each row of
        ``delta`` (score change) applied to the matching ``host``; without them, as it is."""
        w = self.world
        act = self.real[w.active[self.real]]
        s = w.score[act]
        n = max(act.size, 1)
        tot, sq = s.sum(axis=0), (s * s).sum(axis=0)
        if host is None or delta is None:
            var = sq / n - (tot / n) ** 2
            return np.array([weighted(np.sqrt(np.maximum(var, 0.0)), w.pw)])
        cur = w.score[host]
        live = w.active[host][:, None]
        t2 = tot[None, :] + np.where(live, delta, 0.0)
        q2 = sq[None, :] + np.where(live, 2 * cur * delta + delta * delta, 0.0)
        var = q2 / n - (t2 / n) ** 2
        return weighted(np.sqrt(np.maximum(var, 0.0)), w.pw)


@frozen
class Federated:
    """A federation plan and, per cloud, the cloud as it will be after its steps.

    ``after``: each cloud's snapshot once the cross-cloud steps are done
    (departures gone; arrivals on their hosts, ``migratable: false`` because
    their twins get new ids in Nova, marked ``kronos:federated_from``).
    ``spread``: each cloud's ordinary spread plan on that snapshot, when asked:
    single-cloud plans, carried out with the cloud's own ``[nova]`` after the
    cross-cloud ones, each checkable against its ``after`` snapshot.
    """

    plan: Plan
    after: dict[str, Snapshot]
    spread: dict[str, Plan] | None = None


def federate(snapshots: Mapping[str, Snapshot], policy: FederationPolicy) -> Plan:
    """Plan cross-cloud moves between the clouds of ``snapshots`` (name → snapshot).

    Pure: the plan's ``created_at`` is the newest snapshot's ``taken_at``.
    Raises :class:`DataError` when the clouds cannot be compared (fewer than
    two, different policies) or ``policy`` names what a cloud does not have.
    """
    return federate_all(snapshots, policy).plan


def federate_all(
    snapshots: Mapping[str, Snapshot],
    policy: FederationPolicy,
    *,
    then_spread: bool = False,
    budget: int | str | None = None,
    state: State | None = None,
    now: datetime | None = None,
    validate_input: bool = True,
) -> Federated:
    """:func:`federate`, with each cloud after the arrivals and, ``then_spread``, its spread plan
    (``budget``: per aggregate, as :func:`kronos.plan`'s). ``state``: cooldowns and quarantines
    (one state for all clouds: its keys are server ids) hold VMs, judged at ``now`` (default:
    the newest ``taken_at``). ``validate_input=False``: the caller validated the snapshots."""
    if len(snapshots) < 2:
        raise DataError(f"federation needs two clouds or more, got {len(snapshots)}")
    _check(snapshots, policy, then_spread)
    now = now or max(s.taken_at for s in snapshots.values())
    ready = {
        name: prepare(snap, state, now, validate_input=validate_input) for name, snap in snapshots.items()
    }
    base = {name: r.world for name, r in ready.items()}
    leaving = {name: _may_leave(r.snapshot, r.world, policy) for name, r in ready.items()}
    clouds = {
        name: _cloud(name, r.snapshot, r.digest, base, leaving, snapshots, policy, state, now)
        for name, r in ready.items()
    }
    before = {c.name: (c.load(), float(c.imbalance()[0])) for c in clouds.values()}
    steps: list[Step] = []
    notes: list[Reason] = []
    memory_left = None if policy.budget.memory_gb is None else policy.budget.memory_gb * 1024.0
    while True:
        loads = {c.name: c.load() for c in clouds.values()}
        pairs = _pairs(loads, policy.trigger, started=bool(steps))
        if not pairs:
            notes.append(_settled(loads, policy.trigger, bool(steps)))
            break
        if len(steps) >= policy.budget.moves:
            notes.append(Reason("federation.budget", detail="moves", limit=policy.budget.moves))
            break
        chosen, why = None, pairs[0][2]
        # a cloud gives or takes in one plan, never both: no load sent back, and every
        # destination only gains, so the steps need no order
        gave = {s.source_cloud for s in steps}
        took = {s.destination_cloud for s in steps}
        for giver, taker, reason in pairs:
            if giver in took or taker in gave:
                continue
            overshoot = policy.trigger.target() or 0.0
            chosen, why = _best_move(clouds[giver], clouds[taker], loads, memory_left, overshoot), reason
            if chosen is not None:
                break
            notes.append(Reason("federation.no_move", detail=f"{giver}→{taker}"))
        if chosen is None:
            break
        giver_c, taker_c, v, b = chosen
        step = _apply(giver_c, taker_c, v, b, why, loads, clouds, len(steps) + 1, policy)
        steps.append(step)
        if memory_left is not None:
            memory_left -= float(giver_c.world.size[v, 1])
    summary = {
        c.name: CloudSummary(
            load_before=before[c.name][0],
            load_after=c.load(),
            imbalance_before=before[c.name][1],
            imbalance_after=float(c.imbalance()[0]),
            departures=c.departures,
            arrivals=c.arrivals,
            moved_memory_mb=c.moved_mb,
        )
        for c in clouds.values()
    }
    digests = {c.name: c.digest for c in clouds.values()}
    options = {
        "mode": "federate",
        "clouds": list(clouds),
        "snapshot_digests": digests,
        "trigger": attrs.asdict(policy.trigger),
        "budget": attrs.asdict(policy.budget),
        "networks": dict(policy.networks),
        "data": policy.data,
    }
    plan = Plan(
        created_at=max(s.taken_at for s in snapshots.values()),
        snapshot_digest=digest_of(digests),
        options=options,
        steps=tuple(steps),
        summary=PlanSummary(clouds=summary, notes=tuple(render(x) for x in dict.fromkeys(notes)) or None),
    )
    after = {c.name: _after(c, clouds) for c in clouds.values()}
    if not then_spread:
        return Federated(plan, after)
    from kronos.core.planner import plan as plan_cloud

    # the state holds a cloud's own VMs in its spread plan as in the cross-cloud one
    spread = {
        name: plan_cloud(snap, mode="spread", budget=budget, state=state, now=now)
        for name, snap in after.items()
    }
    return Federated(plan, after, spread)


def _after(cloud: _Cloud, clouds: Mapping[str, _Cloud]) -> Snapshot:
    """The cloud's snapshot as its world stands: departures gone, arrivals on their hosts with
    their weights in the units of their new host's scores, scores moved with them."""
    from kronos.core.moves import cells_taken

    w, snap = cloud.world, cloud.snapshot
    pols = w.policy_names
    own = np.arange(len(snap.vms))
    gone = w.vm_host[own] == cloud.elsewhere
    came = [(key, u) for key, u in cloud.arrival.items() if w.vm_host[u] != cloud.elsewhere]
    changed = {int(h) for h in w.home[own][gone]} | {int(w.vm_host[u]) for _, u in came}

    def moved_on(h: int, old: Host) -> Host:
        if h not in changed:
            return old
        scores = {**old.scores, **{p: min(max(float(w.score[h, j]), 0.0), 1.0) for j, p in enumerate(pols)}}
        history = (
            {p: (*xs[:-1], scores[p]) for p, xs in old.score_history.items()} if old.score_history else None
        )
        return attrs.evolve(old, scores=scores, score_history=history)

    arrivals = []
    for (other, k), u in came:
        vm, b = clouds[other].snapshot.vms[k], int(w.vm_host[u])
        arrivals.append(
            attrs.evolve(
                vm,
                host=snap.hosts[b].name,
                weights={p: float(w.load[u, j] / w.sc[b, j]) for j, p in enumerate(pols)},
                migratable=False,
                metadata={**(vm.metadata or {}), "kronos:federated_from": f"{other}/{vm.id}"},
                numa_cells=cells_taken(w, u),
                weights_forecast=None,
            )
        )
    return attrs.evolve(
        snap,
        hosts=tuple(moved_on(h, old) for h, old in enumerate(snap.hosts)),
        vms=(*(vm for k, vm in enumerate(snap.vms) if not gone[k]), *arrivals),
    )


def _check(snapshots: Mapping[str, Snapshot], policy: FederationPolicy, then_spread: bool) -> None:
    if policy.data not in PRECONDITIONS:
        raise DataError(f"data = {policy.data!r}: must be one of {', '.join(PRECONDITIONS)}")
    names = {c: tuple(sorted((p.name, p.weight) for p in s.enabled_policies)) for c, s in snapshots.items()}
    first = next(iter(snapshots))
    for c, pols in names.items():
        if pols != names[first]:
            said = ", ".join(f"{n} {w:g}" for n, w in pols) or "none"
            theirs = ", ".join(f"{n} {w:g}" for n, w in names[first]) or "none"
            raise DataError(
                f"cloud {c}: enabled policies and weights {said} differ from cloud {first}'s ({theirs}): "
                "clouds' loads are compared as the same weighted mean"
            )
    if then_spread:  # arrivals keep their ids in the clouds after: one id in two clouds is ambiguous
        seen: dict[str, str] = {}
        for c, snap in snapshots.items():
            for vm in snap.vms:
                if seen.setdefault(vm.id, c) != c:
                    raise DataError(
                        f"VM id {vm.id!r} is in cloud {seen[vm.id]} and in cloud {c}: the clouds after "
                        "the arrivals (then_spread) name arrivals by their ids"
                    )
    for c, rec in policy.receive.items():
        if c not in snapshots:
            raise DataError(f"receive.{c}: no such cloud (clouds: {', '.join(snapshots)})")
        snap = snapshots[c]
        known = {a.name for a in snap.aggregates}
        for a in rec.aggregates or ():
            if a not in known:
                raise DataError(f"receive.{c}.aggregates: {a!r} is not an aggregate of cloud {c}")
        zones = {a.metadata.get("availability_zone") for a in snap.aggregates} - {None}
        for z in rec.availability_zones or ():
            if z not in zones | {DEFAULT_ZONE}:
                raise DataError(f"receive.{c}.availability_zones: {z!r} is not a zone of cloud {c}")


def _may_leave(snap: Snapshot, world: World, policy: FederationPolicy) -> np.ndarray:
    """Own VMs that may leave: opted in, in no group, no devices, free to move, on an active host
    (a VM on a disabled host counts in no load: moving it would balance nothing)."""
    out = np.zeros(len(snap.vms), dtype=np.bool_)
    for k, vm in enumerate(snap.vms):
        out[k] = (
            world.group[k] < 0
            and not vm.devices
            and vm.status == "ACTIVE"
            and not (world.blocked[k] & _STUCK)
            and bool(world.active[world.vm_host[k]])
            and policy.eligible.matches(vm)
        )
    return out


def _cloud(
    name: str,
    snap: Snapshot,
    digest: str,
    base: Mapping[str, World],
    leaving: Mapping[str, np.ndarray],
    snapshots: Mapping[str, Snapshot],
    policy: FederationPolicy,
    state: State | None,
    now: datetime,
) -> _Cloud:
    """The cloud's world with every other cloud's leavers on its stand-in host (``leaving``: each
    cloud's own VMs that may leave, from its world before the stand-in; the state is the same)."""
    pols = [p.name for p in snap.enabled_policies]
    extra: list[VM] = []
    keys: list[tuple[str, int]] = []
    for other, osnap in snapshots.items():
        if other == name:
            continue
        ow = base[other]
        for k in np.flatnonzero(leaving[other]):
            vm = osnap.vms[k]
            load = {p: float(ow.load[k, ow.policy_names.index(p)]) for p in pols}
            extra.append(
                attrs.evolve(
                    vm,
                    id=f"{other}/{vm.id}",
                    host=ELSEWHERE,
                    weights=load,
                    numa_cells=None,
                    weights_forecast=None,
                )
            )
            keys.append((other, int(k)))
    stand_in = Host(
        ELSEWHERE,
        Capacity(0, 0, 0),
        enabled=False,
        up=False,
        scores=dict.fromkeys(pols, 0.0),
        score_capacity=dict.fromkeys(pols, 1.0),
    )
    grown = attrs.evolve(snap, hosts=(*snap.hosts, stand_in), vms=(*snap.vms, *extra))
    world = build_world(grown, state, now)
    H, V = len(snap.hosts), len(snap.vms)
    for j, (other, at) in enumerate(keys):  # NUMA placement is per host; the world drops it off cells
        cells = snapshots[other].vms[at].numa_cells
        world.vm_n[V + j] = len(cells) if cells else 0
    eligible = np.zeros(len(world.vm_ids), dtype=np.bool_)
    eligible[:V] = leaving[name]
    rec = policy.receive.get(name, Receive())
    receivers = _receivers(snap, world, rec)
    return _Cloud(
        name=name,
        snapshot=snap,
        digest=digest,
        world=world,
        real=np.arange(H, dtype=np.int64),
        elsewhere=H,
        eligible=eligible,
        receivers=receivers,
        zone=world.az[receivers].copy(),
        arrival={key: V + j for j, key in enumerate(keys)},
    )


def _receivers(snap: Snapshot, world: World, rec: Receive) -> np.ndarray:
    H = len(snap.hosts)
    ok = world.enabled[:H] & world.up[:H]
    if rec.aggregates is not None:
        inside = np.zeros(H, dtype=np.bool_)
        for a in rec.aggregates:
            inside[world.aggregates[a]] = True
        ok &= inside
    if rec.availability_zones is not None:
        zones = [world.az_names[z] if z >= 0 else DEFAULT_ZONE for z in world.az[:H]]
        ok &= np.array([z in rec.availability_zones for z in zones], dtype=np.bool_)
    return np.flatnonzero(ok).astype(np.int64)


def _pairs(loads: Mapping[str, float], trigger: Trigger, started: bool) -> list[tuple[str, str, Reason]]:
    """(giver, taker, why) for every pair of clouds the trigger fires on, widest gap first;
    once ``started``, the difference goes down to the trigger's target."""
    limit = trigger.target() if started else trigger.load_difference
    out: list[tuple[float, str, str, Reason]] = []
    for g, lg in loads.items():
        for t, lt in loads.items():
            if g == t or lg <= lt:
                continue
            gap = lg - lt
            if limit is not None and gap > limit:
                why = Reason(
                    "federation.difference" if not started else "federation.target",
                    detail=f"{g}→{t}",
                    before=lg,
                    after=lt,
                    value=gap,
                    limit=limit,
                )
            elif trigger.max_load is not None and lg > trigger.max_load > lt:
                why = Reason("federation.max_load", detail=f"{g}→{t}", value=lg, limit=trigger.max_load)
            else:
                continue
            out.append((gap, g, t, why))
    out.sort(key=lambda x: (-x[0], x[1], x[2]))
    return [(g, t, why) for _, g, t, why in out]


def _settled(loads: Mapping[str, float], trigger: Trigger, started: bool) -> Reason:
    gap = max(loads.values()) - min(loads.values())
    return Reason(
        "federation.settled",
        value=gap,
        limit=trigger.target() if started else trigger.load_difference,
        need=trigger.max_load,
        detail=", ".join(f"{c} {x:.3f}" for c, x in loads.items()),
    )


def _deltas(giver: _Cloud, taker: _Cloud, vs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How much each VM's leaving lowers the giver's load, and its arrival raises the taker's."""
    w = giver.world
    share = w.pw / w.pw.sum()
    cg, ct = giver.capacity(), taker.capacity()
    load = w.load[vs]
    return weighted(load / cg, share), weighted(load / np.where(ct > 0, ct, np.inf), share)


def _best_move(
    giver: _Cloud, taker: _Cloud, loads: Mapping[str, float], memory_left: float | None, overshoot: float
) -> tuple[_Cloud, _Cloud, int, int] | None:
    """The VM of ``giver`` and host of ``taker`` that bring their loads closest, if any does,
    never turning the gap around by more than ``overshoot`` (the trigger's target)."""
    if taker.receivers.size == 0:
        return None
    gw, tw = giver.world, taker.world
    vs = np.flatnonzero(giver.eligible & ~gw.moved).astype(np.int64)
    if memory_left is not None:
        vs = vs[gw.size[vs, 1] <= memory_left + 1e-9]
    if vs.size == 0:
        return None
    gap = loads[giver.name] - loads[taker.name]
    down, up = _deltas(giver, taker, vs)
    left = gap - down - up
    after = np.abs(left)
    keep = (after < gap - 1e-12) & (left >= -overshoot)
    vs, after, down = vs[keep], after[keep], down[keep]
    if vs.size == 0:
        return None
    busy = weighted(gw.score[gw.vm_host[vs]], gw.pw)  # ties: relieve the busiest host first
    order = np.lexsort((vs, -busy, np.round(after, 9)))[:SHORTLIST]
    base = giver.imbalance()[0] + taker.imbalance()[0]
    best: tuple[float, int, int] | None = None
    seen = 0
    out = np.empty(taker.receivers.size, dtype=np.int64)
    tarr = tw.arrays()
    for i in order:
        v = int(vs[i])
        u = taker.arrival[(giver.name, v)]
        ok = _fits(taker, u, out, tarr)
        if not ok.any():
            continue
        hosts = taker.receivers[ok]
        d_t = tw.load[u][None, :] / tw.sc[hosts]
        own_t = taker.imbalance(hosts, d_t)
        j = int(np.argmin(own_t))
        a = int(gw.vm_host[v])
        own_g = giver.imbalance(np.array([a]), -(gw.load[v] / gw.sc[a])[None, :])[0]
        value = float(after[i]) + OWN_IMBALANCE * (own_g + own_t[j] - base)
        if best is None or value < best[0] - 1e-12:
            best = (value, v, int(hosts[j]))
        seen += 1
        if seen >= COMPARED:
            break
    if best is None:
        return None
    return giver, taker, best[1], best[2]


def _fits(taker: _Cloud, u: int, out: np.ndarray, arrays: object) -> np.ndarray:
    """Which receiving hosts VM ``u`` (on the stand-in) may land on, zone by zone: the stand-in
    takes each destination zone in turn, so the zone rule of a migration never refuses."""
    w = taker.world
    ok = np.zeros(taker.receivers.size, dtype=np.bool_)
    for z in np.unique(taker.zone):
        sel = taker.zone == z
        w.az[taker.elsewhere] = z
        hosts = taker.receivers[sel]
        res = out[: hosts.size]
        rules.walk_hosts(u, taker.elsewhere, hosts, -1, rules.EMPTYING, False, res, arrays)
        ok[sel] = res == rules.PASS
    w.az[taker.elsewhere] = -1
    return ok


def _apply(
    giver: _Cloud,
    taker: _Cloud,
    v: int,
    b: int,
    why: Reason,
    loads: Mapping[str, float],
    clouds: Mapping[str, _Cloud],
    seq: int,
    policy: FederationPolicy,
) -> Step:
    gw, tw = giver.world, taker.world
    vm = giver.snapshot.vms[v]
    a = int(gw.vm_host[v])
    u = taker.arrival[(giver.name, v)]
    kernels.apply_move(v, giver.elsewhere, gw.arrays())
    kernels.apply_move(u, b, tw.arrays())
    mb = float(gw.size[v, 1])
    giver.departures += 1
    taker.arrivals += 1
    giver.moved_mb += mb
    taker.moved_mb += mb
    after = {c.name: c.load() for c in clouds.values()}
    spread = max(after.values()) - min(after.values())
    gain = Reason(
        "federation.gain",
        detail=f"{giver.name}→{taker.name}",
        before=loads[giver.name] - loads[taker.name],
        after=after[giver.name] - after[taker.name],
    )
    records = (why, gain)
    return Step(
        seq=seq,
        wave=1,
        phase=PHASE,
        action=ACTION,
        instance=vm.id,
        source=giver.snapshot.hosts[a].name,
        destination=taker.snapshot.hosts[b].name,
        aggregate=_aggregate_of(taker, b, policy),
        reason=render_all(records),
        combined_after=spread,
        name=vm.name,
        why=records,
        source_cloud=giver.name,
        destination_cloud=taker.name,
        precondition=policy.data,
    )


def _aggregate_of(taker: _Cloud, b: int, policy: FederationPolicy) -> str:
    """The destination aggregate a step names: the first allowed one holding the host."""
    allowed = policy.receive.get(taker.name, Receive()).aggregates
    for a in taker.snapshot.aggregates:
        if (allowed is None or a.name in allowed) and b in taker.world.aggregates[a.name]:
            return a.name
    return "_unassigned_"
