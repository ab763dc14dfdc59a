"""Slow, obviously-correct references for the planner, written from FORMATS.md.

Nothing here imports kronos.core.arrays or kernels: it works on the Snapshot
objects directly with dicts and loops, so it can catch mistakes in the array
encoding as well as in the kernels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from kronos.core.model import EXTRA_SPEC_PREFIX, UNASSIGNED, Host, Snapshot

EPS = 1e-9

#: the rules of kronos.core.rules.RULES, written out again in the table's order
VM_RULES = (
    "vm.status", "vm.task_state", "vm.migratable", "vm.devices", "vm.cooldown", "vm.quarantine", "vm.profile",
    "vm.moved", "source.up",
)  # fmt: skip
MOVE_RULES = (
    "host.enabled", "host.up", "host.leaving", "source.load", "az", "extra_specs", "traits.required",
    "traits.forbidden", "cpu_compat", "capacity", "numa", "max_host_score", "group.affinity",
    "group.anti-affinity", "group.soft-affinity", "group.soft-anti-affinity",
)  # fmt: skip
NOT_CPU_FEATURES = {"HW_CPU_HYPERTHREADING", "HW_CPU_X86_AMD_SEV", "HW_CPU_X86_AMD_SEV_ES", "HW_CPU_X86_SGX"}


def cpu_features(traits: tuple[str, ...] | None) -> set[str]:
    """A host's guest CPU features: its HW_CPU_* traits less those that are not features (FORMATS §4)."""
    return {t for t in traits or () if t.startswith("HW_CPU_")} - NOT_CPU_FEATURES


def pstdev(xs: list[float]) -> float:
    if not xs:
        return 0.0
    m = sum(xs) / len(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / len(xs))


@dataclass
class NaiveWorld:
    snap: Snapshot
    host: dict[str, str] = field(default_factory=dict)  # vm -> host
    score: dict[str, dict[str, float]] = field(default_factory=dict)
    used: dict[str, dict[str, float]] = field(default_factory=dict)  # host -> resource class -> used
    load: dict[str, dict[str, float]] = field(default_factory=dict)  # absolute
    moved: set[str] = field(default_factory=set)
    #: require_cpu_compatibility: live migrations keep every HW_CPU_* feature of the source
    cpu_compat: bool = False

    def __post_init__(self) -> None:
        s = self.snap
        self.pols = [p for p in s.policies if p.enabled]
        self.hosts = {h.name: h for h in s.hosts}
        self.vms = {v.id: v for v in s.vms}
        self.aggs: dict[str, list[str]] = {}
        self.meta: dict[str, dict[str, set[str]]] = {h.name: {} for h in s.hosts}
        self.az: dict[str, str | None] = {h.name: None for h in s.hosts}
        for a in s.aggregates:
            self.aggs[a.name] = [h.name for h in s.hosts if h.name in set(a.hosts)]
            for hn in a.hosts:
                for k, v in a.metadata.items():
                    self.meta[hn].setdefault(k, set()).add(v)
                if "availability_zone" in a.metadata:
                    self.az[hn] = a.metadata["availability_zone"]
        loose = [h.name for h in s.hosts if not any(h.name in a.hosts for a in s.aggregates)]
        if loose:
            self.aggs[UNASSIGNED] = loose
        count = {h.name: 0 for h in s.hosts}
        for v in s.vms:
            count[v.host] += 1
        alias = {"VCPU": "vcpus", "MEMORY_MB": "memory_mb", "DISK_GB": "disk_gb"}
        self.cap: dict[str, dict[str, float]] = {}
        self.cells: dict[str, dict[int, list[float]]] = {}  # host -> cell id -> [vcpus, MiB] capacity
        self.cell_used: dict[str, dict[int, list[float]]] = {}
        for h in s.hosts:
            self.score[h.name] = {p.name: h.scores.get(p.name, 0.0) for p in self.pols}
            c = h.capacity
            self.cap[h.name] = {"vcpus": c.vcpus, "memory_mb": c.memory_mb, "disk_gb": c.disk_gb}
            self.cap[h.name].update({alias.get(k, k): x for k, x in (c.classes or {}).items()})
            self.used[h.name] = {}
            self.cells[h.name] = {cell.id: [cell.vcpus, cell.memory_mb] for cell in h.numa_cells or ()}
            self.cell_used[h.name] = {cid: [0.0, 0.0] for cid in self.cells[h.name]}
        self.res: dict[str, dict[str, float]] = {}
        self.vm_cells: dict[str, list[int]] = {}  # a NUMA-placed VM's cells on its host now
        self.n_cells: dict[str, int] = {}  # how many cells it spans (0: host level)
        self.need: dict[str, tuple[float, float]] = {}  # vCPUs incl. PCPU, MiB: split over its cells
        for v in s.vms:
            self.host[v.id] = v.host
            if v.resources is not None:
                self.res[v.id] = {alias.get(k, k): x for k, x in v.resources.items()}
            else:
                self.res[v.id] = {
                    "vcpus": v.flavor.vcpus,
                    "memory_mb": v.flavor.memory_mb,
                    "disk_gb": v.flavor.disk_gb,
                }
            for k, x in self.res[v.id].items():
                self.used[v.host][k] = self.used[v.host].get(k, 0.0) + x
            r = self.res[v.id]
            self.need[v.id] = (r.get("vcpus", 0.0) + r.get("PCPU", 0.0), r.get("memory_mb", 0.0))
            self.n_cells[v.id] = len(v.numa_cells) if v.numa_cells and self.cells[v.host] else 0
            self.vm_cells[v.id] = list(v.numa_cells or ()) if self.n_cells[v.id] else []
            for cid in self.vm_cells[v.id]:
                for d in (0, 1):
                    self.cell_used[v.host][cid][d] += self.need[v.id][d] / self.n_cells[v.id]
            sc = self.hosts[v.host].score_capacity
            self.load[v.id] = {}
            for p in self.pols:
                w = v.weights.get(p.name)
                if w is None:
                    w = self.score[v.host][p.name] / max(1, count[v.host])
                self.load[v.id][p.name] = w * sc.get(p.name, 1.0)
        self.group_of = {}
        for g in s.server_groups:
            for m in g.members:
                self.group_of[m] = g

    def sc(self, h: str, p: str) -> float:
        return self.hosts[h].score_capacity.get(p, 1.0)

    def active(self, h: str) -> bool:
        return self.hosts[h].enabled and self.hosts[h].up

    def imbalance(self, agg: str) -> tuple[dict[str, float], float]:
        hs = [h for h in self.aggs[agg] if self.active(h)]
        per = {p.name: pstdev([self.score[h][p.name] for h in hs]) for p in self.pols}
        return per, sum(p.weight * per[p.name] for p in self.pols)

    def group_measure(self, g, moved: str | None = None, to: str | None = None) -> int:  # type: ignore[no-untyped-def]
        cnt: dict[str, int] = {}
        for m in g.members:
            h = to if m == moved else self.host[m]
            cnt[h] = cnt.get(h, 0) + 1
        if not cnt:
            return 0
        if g.policy in ("affinity", "soft-affinity"):
            return sum(cnt.values()) - max(cnt.values())
        lim = g.max_server_per_host if g.policy == "anti-affinity" else 1
        return sum(max(0, c - lim) for c in cnt.values())

    # -- the VM rules, one method each (names as in kronos.core.rules) --------------

    def vm_rule_holds(
        self,
        rule: str,
        vid: str,
        phase: str = "spread",
        *,
        cold: bool = False,
        cooldown: frozenset[str] = frozenset(),
        quarantine: frozenset[str] = frozenset(),
    ) -> bool:
        """May vid move in ``phase`` as far as VM rule ``rule`` goes (FORMATS.md §1)."""
        v = self.vms[vid]
        evacuating = phase == "evacuate"
        if rule == "vm.status":
            allowed = (
                ("ACTIVE", "SHUTOFF", "ERROR")
                if evacuating
                else ("ACTIVE", "SHUTOFF")
                if cold
                else ("ACTIVE",)
            )
            return v.status in allowed
        if rule == "vm.task_state":
            return evacuating or v.task_state is None
        if rule == "vm.migratable":
            return v.migratable
        if rule == "vm.devices":  # a cold migration or an evacuation takes devices along
            cold_move = evacuating or (cold and v.status == "SHUTOFF")
            return not v.devices or bool(v.live_migratable_devices) or cold_move
        if rule == "vm.cooldown":
            return evacuating or vid not in cooldown
        if rule == "vm.quarantine":
            return vid not in quarantine
        if rule == "vm.profile":
            balancing = phase in ("affinity", "spread", "pack")
            return not balancing or all(
                p.vm_profile_fallback != "skip" or p.name in v.weights for p in self.pols
            )
        if rule == "vm.moved":
            return vid not in self.moved
        if rule == "source.up":
            up = self.hosts[self.host[vid]].up
            return not up if evacuating else up
        raise KeyError(rule)

    def movable(self, vid: str, cooldown: frozenset[str] = frozenset(), profile: bool = True) -> bool:
        """May vid live-migrate (``profile``: a VM without a weight under fallback ``skip`` stays)."""
        phase = "spread" if profile else "drain"
        return all(self.vm_rule_holds(r, vid, phase, cooldown=cooldown) for r in VM_RULES)

    # -- the host and move rules, one method each -----------------------------------

    def rule_holds(
        self, rule: str, vid: str, src: str, dst: str, leaving: frozenset[str] = frozenset()
    ) -> bool:
        """Does the move of vid from src to dst keep ``rule``? (the VM counted on src)"""
        v = self.vms[vid]
        if rule == "host.enabled":
            return self.hosts[dst].enabled
        if rule == "host.up":
            return self.hosts[dst].up
        if rule == "host.leaving":
            return dst not in leaving
        if rule == "source.load":  # a down host reports no scores: nothing to judge
            return not self.hosts[src].up or all(
                self.score[src][p.name] - self.load[vid][p.name] / self.sc(src, p.name) >= -EPS
                for p in self.pols
            )
        if rule == "az":
            return self.az[dst] == self.az[src]
        if rule == "extra_specs":
            return all(
                val in self.meta[dst].get(k[len(EXTRA_SPEC_PREFIX) :], set())
                for k, val in v.flavor.extra_specs.items()
                if k.startswith(EXTRA_SPEC_PREFIX)
            )
        if rule == "traits.required":
            return set(v.required_traits or ()) <= set(self.hosts[dst].traits or ())
        if rule == "traits.forbidden":
            return not set(v.forbidden_traits or ()) & set(self.hosts[dst].traits or ())
        if rule == "cpu_compat":
            if not self.cpu_compat or not self.hosts[src].up or v.status == "SHUTOFF":
                return True
            return cpu_features(self.hosts[src].traits) <= cpu_features(self.hosts[dst].traits)
        if rule == "capacity":
            return all(
                self.used[dst].get(k, 0.0) + x <= self.cap[dst].get(k, 0.0) + EPS
                for k, x in self.res[vid].items()
                if x > 0
            )
        if rule == "numa":
            return self.n_cells[vid] == 0 or not self.cells[dst] or self.choose_cells(vid, dst) is not None
        if rule == "max_host_score":
            for p in self.pols:
                d = self.load[vid][p.name] / self.sc(dst, p.name)
                if d > 0 and self.score[dst][p.name] + d > p.max_host_score + EPS:
                    return False
            return True
        if rule.startswith("group."):
            g = self.group_of.get(vid)
            if g is None or g.policy != rule.removeprefix("group."):
                return True
            return self.group_measure(g, vid, dst) <= self.group_measure(g)
        raise KeyError(rule)

    def cells_with_room(self, vid: str, dst: str) -> list[int]:
        """dst's cells with room for an even share of vid."""
        n = self.n_cells[vid]
        share = (self.need[vid][0] / n, self.need[vid][1] / n)
        out = []
        for cid, cap in sorted(self.cells[dst].items()):
            used = self.cell_used[dst][cid]
            if all(used[d] + share[d] <= cap[d] + EPS for d in (0, 1)):
                out.append(cid)
        return out

    def choose_cells(self, vid: str, dst: str) -> list[int] | None:
        """Nova's fitting: n distinct cells with room (its own at home, else the tightest); None if none."""
        n = self.n_cells[vid]
        room = self.cells_with_room(vid, dst)
        home = self.vms[vid]
        if dst == home.host and home.numa_cells and set(home.numa_cells) <= set(room):
            return sorted(home.numa_cells)
        if len(room) < n:
            return None
        share = (self.need[vid][0] / n, self.need[vid][1] / n)

        def left(cid: int) -> float:
            cap, used = self.cells[dst][cid], self.cell_used[dst][cid]
            return sum((cap[d] - used[d] - share[d]) / max(cap[d], EPS) for d in (0, 1))

        return sorted(sorted(room, key=lambda c: (left(c), c))[:n])

    def why_not(
        self,
        vid: str,
        dst: str,
        agg: str,
        soft_hard: bool = True,
        *,
        placing: bool = False,
        leaving: frozenset[str] = frozenset(),
    ) -> str | None:
        """The first host or move rule a move of vid to dst (within agg) breaks, or None.

        ``placing``: vid is not counted anywhere (a from-scratch packing), so
        its own host is a destination like any other. "no-op" and "aggregate"
        are not rules of the table: a move to itself is no move, and searches
        only look at the aggregate's hosts.
        """
        src = self.host[vid]
        if dst == src and not placing:
            return "no-op"
        if dst not in self.aggs[agg] or src not in self.aggs[agg]:
            return "aggregate"
        for rule in MOVE_RULES:
            if rule.startswith("group.soft") and not soft_hard:
                continue
            if rule == "source.load" and (placing or not soft_hard):
                continue  # a VM placed from scratch takes nothing off a host; emptying hosts ignores it
            if not self.rule_holds(rule, vid, src, dst, leaving):
                return rule
        return None

    def apply(self, vid: str, dst: str, cells: list[int] | tuple[int, ...] | None = None) -> None:
        """Move vid to dst; a NUMA-placed VM takes ``cells`` there (default: :meth:`choose_cells`)."""
        src = self.host[vid]
        for k, x in self.res[vid].items():
            self.used[src][k] = self.used[src].get(k, 0.0) - x
            self.used[dst][k] = self.used[dst].get(k, 0.0) + x
        n = self.n_cells[vid]
        if n:
            for cid in self.vm_cells[vid]:
                for d in (0, 1):
                    self.cell_used[src][cid][d] -= self.need[vid][d] / n
            taken = (
                list(cells)
                if cells is not None
                else (self.choose_cells(vid, dst) if self.cells[dst] else None)
            )
            self.vm_cells[vid] = taken or []
            for cid in self.vm_cells[vid]:
                for d in (0, 1):
                    self.cell_used[dst][cid][d] += self.need[vid][d] / n
        for p in self.pols:
            self.score[src][p.name] -= self.load[vid][p.name] / self.sc(src, p.name)
            self.score[dst][p.name] += self.load[vid][p.name] / self.sc(dst, p.name)
        self.host[vid] = dst
        self.moved.add(vid)


def naive_greedy(
    snap: Snapshot, agg: str, budget: int, min_improvement: float, move_cost: float = 0.0
) -> list[tuple[str, str, float]]:
    """Exhaustive best single move per round, full recomputation of every candidate.

    A VM moved by an earlier round may move again (Kronos tidies such runs).
    ``move_cost``: a move is worth its imbalance cut less this much per GiB of memory.
    """
    w = NaiveWorld(snap)
    gib = {vid: res.get("memory_mb", 0.0) / 1024 for vid, res in w.res.items()}
    out = []
    _, cur = w.imbalance(agg)
    movable = {v.id for v in snap.vms if w.host[v.id] in w.aggs[agg] and w.movable(v.id)}
    for _ in range(budget):
        best = None
        for v in snap.vms:
            if v.id not in movable:
                continue
            for h in w.aggs[agg]:
                if w.why_not(v.id, h, agg) is not None:
                    continue
                src = w.host[v.id]
                w.apply(v.id, h)
                _, val = w.imbalance(agg)
                w.apply(v.id, src)
                w.moved.discard(v.id)
                if best is None or val + move_cost * gib[v.id] < best[0]:
                    best = (val + move_cost * gib[v.id], v.id, h, val)
        if best is None or best[0] > cur - min_improvement:
            break
        w.apply(best[1], best[2])
        cur = best[3]
        out.append((best[1], best[2], cur))
    return out


def replay(
    snap: Snapshot, steps, cooldown: frozenset[str] = frozenset(), cpu_compat: bool = False
) -> list[str]:  # type: ignore[no-untyped-def]
    """Apply plan steps in order; return every contract violation found (empty = clean)."""
    w = NaiveWorld(snap, cpu_compat=cpu_compat)
    problems = []
    for s in steps:
        if s.instance not in w.vms:
            problems.append(f"step {s.seq}: unknown instance")
            continue
        if w.host[s.instance] != s.source:
            problems.append(f"step {s.seq}: source mismatch")
        soft_hard = s.phase not in ("evacuate", "drain")
        again = bool(getattr(s, "repeat_reason", None))  # FORMATS §2: a later move says why
        if s.action == "live-migrate":
            phase = "spread" if soft_hard else "drain"
            held = [r for r in VM_RULES if not w.vm_rule_holds(r, s.instance, phase, cooldown=cooldown)]
            if held and (held != ["vm.moved"] or not again):
                problems.append(f"step {s.seq}: VM not movable ({', '.join(held)})")
        if s.action == "evacuate":
            v = w.vms[s.instance]
            ok = v.status in ("ACTIVE", "SHUTOFF", "ERROR") and v.migratable and not w.hosts[s.source].up
            if not ok or s.instance in w.moved or s.instance in cooldown:
                problems.append(f"step {s.seq}: VM not evacuable")
        if s.action == "cold-migrate":
            if not all(
                w.vm_rule_holds(r, s.instance, s.phase, cold=True, cooldown=cooldown) for r in VM_RULES
            ):
                problems.append(f"step {s.seq}: VM not cold-migratable")
        why = w.why_not(s.instance, s.destination, s.aggregate, soft_hard)
        if why is not None:
            problems.append(f"step {s.seq}: {why}")
        cells = getattr(s, "numa_cells", None)
        if w.n_cells[s.instance] and w.cells[s.destination]:  # FORMATS §4: the step names its cells
            room = w.cells_with_room(s.instance, s.destination)
            if cells is None or len(set(cells)) != w.n_cells[s.instance] or not set(cells) <= set(room):
                problems.append(f"step {s.seq}: numa_cells {cells} (cells with room: {room})")
        w.apply(s.instance, s.destination, cells)
        _, comb = w.imbalance(s.aggregate)
        if abs(comb - s.combined_after) > 1e-6:
            problems.append(f"step {s.seq}: combined_after {s.combined_after} != {comb}")
    return problems


def apply_plan(snap: Snapshot, plan) -> Snapshot:  # type: ignore[no-untyped-def]
    """The snapshot as it would look after the plan: VMs moved, scores and weights carried.

    Scores are the contract's estimate, unclamped but for float noise (within
    1e-9 of [0, 1]): a plan that drives a score out of range shows it.
    """
    import attrs

    w = NaiveWorld(snap)
    for s in plan.steps:
        w.apply(s.instance, s.destination)

    def noise(x: float) -> float:
        return 0.0 if -1e-9 < x < 0 else 1.0 if 1 < x < 1 + 1e-9 else x

    def moved_on(h: Host) -> Host:
        """``h`` with its scores after the plan; its history's last sample is now that score
        (FORMATS §5: the history ends at the snapshot's time)."""
        if not h.scores:
            return h
        scores = {p: noise(x) for p, x in w.score[h.name].items()}
        history = {p: (*xs[:-1], scores[p]) for p, xs in h.score_history.items()} if h.score_history else None
        return attrs.evolve(h, scores=scores, score_history=history)

    hosts = tuple(moved_on(h) for h in snap.hosts)
    vms = tuple(
        attrs.evolve(
            v,
            host=w.host[v.id],
            weights={p: w.load[v.id][p] / w.sc(w.host[v.id], p) for p in v.weights},
        )
        for v in snap.vms
    )
    return attrs.evolve(snap, hosts=hosts, vms=vms)


def utilisation(w: NaiveWorld, vid: str, host: str) -> float:
    """A VM's size as one number on ``host``: shares of capacity and of max score, summed."""
    v = w.vms[vid]
    cap = w.hosts[host].capacity
    share = v.flavor.vcpus / cap.vcpus + v.flavor.memory_mb / cap.memory_mb + v.flavor.disk_gb / cap.disk_gb
    return share + sum(w.load[vid][p.name] / (w.sc(host, p.name) * p.max_host_score) for p in w.pols)


def ffd_hosts(snap: Snapshot, agg: str) -> int:
    """Hosts First-Fit-Decreasing by combined utilisation fills with the aggregate's VMs.

    From scratch, ignoring where VMs are: every VM leaves, hosts keep their
    base load (score less their VMs' share), VMs that may not move are put
    back first, then the rest biggest first into the first host (snapshot
    order) where every rule of a move holds. Groups are not modelled, so
    use it on snapshots without server groups.
    """
    w = NaiveWorld(snap)
    hosts = [h for h in w.aggs[agg] if w.active(h)]
    items = [v.id for v in snap.vms if w.host[v.id] in hosts]
    may_move = {vid: w.movable(vid) for vid in items}
    for vid in items:  # empty every host, keeping its base load (no NUMA cells modelled)
        src = w.host[vid]
        for k, need in w.res[vid].items():
            w.used[src][k] -= need
        for p in w.pols:
            w.score[src][p.name] -= w.load[vid][p.name] / w.sc(src, p.name)
        w.host[vid] = "-"
    used: set[str] = set()
    pinned = [vid for vid in items if not may_move[vid]]
    rest = sorted((vid for vid in items if may_move[vid]), key=lambda vid: -utilisation(w, vid, hosts[0]))
    home = {v.id: v.host for v in snap.vms}
    for vid in pinned:
        _put(w, vid, home[vid])
        used.add(home[vid])
    for vid in rest:
        for h in hosts:
            w.host[vid] = home[vid]  # rules (AZ, specs) are judged from where it was
            if w.why_not(vid, h, agg, placing=True) is None:
                break
        else:
            raise AssertionError(f"FFD found no host for {vid}")
        _put(w, vid, h)
        used.add(h)
    return len(used)


def _put(w: NaiveWorld, vid: str, dst: str) -> None:
    for k, need in w.res[vid].items():
        w.used[dst][k] = w.used[dst].get(k, 0.0) + need
    for p in w.pols:
        w.score[dst][p.name] += w.load[vid][p.name] / w.sc(dst, p.name)
    w.host[vid] = dst


def ffd_empty(snap: Snapshot, agg: str, budget: int | None = None) -> list[tuple[str, str]]:
    """Hosts a naive First-Fit-Decreasing empties one by one, as moves (vm, destination).

    Hosts fewest VMs first (then least used), each emptied wholly or not at
    all, on the real world in plan order: every VM of the host, biggest first
    (:func:`utilisation`), goes to the first host of the aggregate (snapshot
    order) where every move rule holds, never to a host already emptied. A
    host whose VMs may not all move (or moved already) is passed over, and so
    is one whose VMs do not fit in what is left of ``budget``.
    """
    w = NaiveWorld(snap)
    hosts = [h for h in w.aggs[agg] if w.active(h)]
    core = ("vcpus", "memory_mb", "disk_gb")

    def fill(h: str) -> float:
        return sum(w.used[h].get(k, 0.0) / w.cap[h][k] for k in core if w.cap[h].get(k, 0.0) > 0)

    def on(h: str) -> list[str]:
        return [vid for vid, x in w.host.items() if x == h]

    def movable(vid: str) -> bool:  # pack cold-migrates SHUTOFF VMs
        return all(w.vm_rule_holds(r, vid, "spread", cold=w.vms[vid].status == "SHUTOFF") for r in VM_RULES)

    order = sorted((h for h in hosts if on(h)), key=lambda h: (len(on(h)), fill(h)))
    moves: list[tuple[str, str]] = []
    closed: set[str] = set()
    for h in order:
        mine = sorted(on(h), key=lambda vid: -utilisation(w, vid, h))
        if not all(movable(vid) for vid in mine):
            continue
        if budget is not None and len(moves) + len(mine) > budget:
            continue
        closed.add(h)
        done: list[tuple[str, list[int]]] = []
        for vid in mine:
            dst = next((d for d in hosts if d not in closed and w.why_not(vid, d, agg) is None), None)
            if dst is None:
                break
            done.append((vid, list(w.vm_cells[vid])))
            w.apply(vid, dst)
        if len(done) < len(mine):
            for vid, cells in reversed(done):
                w.apply(vid, h, cells)
                w.moved.discard(vid)
            closed.discard(h)
            continue
        moves += [(vid, w.host[vid]) for vid, _ in done]
    return moves
