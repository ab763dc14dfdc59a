"""Plain-text tables of plans for people; documents stay the machine interface."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from kronos.core.model import Plan, Reason, State, Step
from kronos.core.validate import NO_VALUE, Issue, show
from kronos.listing import Listing
from kronos.terminal import one_line

if TYPE_CHECKING:
    from kronos.adapters.scores import AggregateReport, PolicyReport
    from kronos.core.explain import HostExplanation, VMExplanation


#: a name column grows to its longest name up to this, then longer names wrap inside it
WIDEST = 32


def _wrapped(text: str, width: int) -> list[str]:
    """``text`` in pieces of at most ``width``: a long name continues on the next line, in its column."""
    return textwrap.wrap(text, width, break_long_words=True, break_on_hyphens=False) or [""]


def budget_said(options: Mapping[str, Any]) -> str:
    """A plan's budget per aggregate in words (table header and HTML report alike)."""
    if "balance_budget" in options:  # plan --drain: the drain has no budget, the balancing this
        balance = options["balance_budget"]
        return f"drain unlimited, then {'unlimited' if balance is None else balance}"
    budget = options.get("budget")
    return "unlimited" if budget is None else str(budget)


def plan_table(plan: Plan, reasons: bool = True) -> str:
    lines = []
    opts = plan.options
    budget = opts.get("budget")
    if plan.summary.clouds is not None:  # federation: the budget is the cycle's, in moves and GiB
        cap = budget or {}
        gib = cap.get("memory_gb")
        said = f"{cap.get('moves')} moves" + ("" if gib is None else f", {gib:g} GiB")
        lines.append(
            f"plan {plan.snapshot_digest[:19]}…  mode federate  budget {said} per cycle  "
            f"{len(plan.steps)} step(s)  data {opts.get('data')}"
        )
    else:
        lines.append(
            f"plan {plan.snapshot_digest[:19]}…  mode {opts.get('mode')}  "
            f"budget {budget_said(opts)} per aggregate  "
            f"{len(plan.steps)} step(s) in {len({s.wave for s in plan.steps})} wave(s)"
        )
    fence = plan.summary.fence_first
    if fence:
        assumed = opts.get("assumed_fenced")
        lines.append(
            f"FENCE FIRST: power off {', '.join(fence)} before any step runs "
            "(an evacuated VM must never run twice)"
            + (f"; planned assuming {', '.join(assumed)} already down" if assumed else "")
        )
    if plan.steps:
        lines.append("")
        names = [one_line(s.name) if s.name else s.instance[:13] for s in plan.steps]
        width = min(max(14, *map(len, names)), WIDEST)
        pw = max(9, *(len(s.phase) for s in plan.steps))  # federation's are longer than the others'
        aw = max(13, *(len(s.action) for s in plan.steps))
        lines.append(f"{'seq':>4} {'wave':>4}  {'phase':<{pw}} {'action':<{aw}} {'instance':<{width}} move")
        for s, who in zip(plan.steps, names, strict=True):
            first, *rest = _wrapped(who, width)
            if s.source_cloud is not None:
                move = (
                    f"{s.source_cloud}/{s.source} → {s.destination_cloud}/{s.destination}  "
                    f"[{s.aggregate}] load gap {s.combined_after:.4f}"
                )
            else:
                move = f"{s.source} → {s.destination}  [{s.aggregate}] combined {s.combined_after:.4f}"
            lines.append(f"{s.seq:>4} {s.wave:>4}  {s.phase:<{pw}} {s.action:<{aw}} {first:<{width}} {move}")
            lines += [f"{'':>{pw + aw + 13}}{part}" for part in rest]  # under the instance column
            if reasons:
                lines.append(f"{'':>11}{one_line(s.reason)}")  # (it may name the VM)
                if s.repeat_reason:
                    lines.append(f"{'':>11}moves again: {one_line(s.repeat_reason)}")
    lines.append("")
    if plan.summary.clouds is not None:
        lines += _clouds_table(plan)
        if not plan.summary.aggregates:
            return "\n".join(lines) + "\n"
        lines.append("")
    wide = min(max(16, 0, *map(len, plan.summary.aggregates)), WIDEST)
    lines.append(f"{'aggregate':<{wide}} {'hosts':>5} {'moves':>5}  {'combined':<17} per policy / skipped")
    for full, a in plan.summary.aggregates.items():
        name, *more = _wrapped(full, wide)
        comb = f"{a.combined_before:.4f} → {a.combined_after:.4f}"
        pol = ", ".join(
            f"{p} {a.imbalance_before[p]:.4f} → {a.imbalance_after.get(p, 0.0):.4f}"
            for p in a.imbalance_before
        )
        hosts = "" if a.hosts is None else str(a.hosts)
        lines.append(f"{name:<{wide}} {hosts:>5} {a.migrations:>5}  {comb:<17} {pol}")
        lines += more
        if a.skipped:
            lines.append(f"{'':<18}skipped: {a.skipped}")
        for note in a.unrepaired or ():
            lines.append(f"{'':<18}not repaired: {note}")
        for note in a.notes or ():
            lines.append(f"{'':<18}{note}")
        if a.hosts_emptied:
            lines.append(f"{'':<18}emptied: {', '.join(a.hosts_emptied)}")
        then = sorted({act for act in (a.post_drain or {}).values() if act != "none"})
        for act in then:
            hosts_then = [h for h, x in (a.post_drain or {}).items() if x == act]
            lines.append(f"{'':<18}then {act}: {', '.join(hosts_then)}")
    if plan.summary.hosts_to_enable:
        lines.append("")
        lines.append(f"enable these hosts (short of capacity): {', '.join(plan.summary.hosts_to_enable)}")
    if plan.summary.unplaced:
        lines.append("")
        lines.append(f"unplaced ({len(plan.summary.unplaced)}):")
        for u in plan.summary.unplaced:
            lines.append(f"  {u.instance}: {u.reason}")
    if plan.summary.not_selected:
        lines.append("")
        lines.append(f"not selected, left where they are ({len(plan.summary.not_selected)}):")
        for u in plan.summary.not_selected:
            lines.append(f"  {u.instance}: {u.reason}")
    return "\n".join(lines) + "\n"


def _clouds_table(plan: Plan) -> list[str]:
    clouds = plan.summary.clouds or {}
    wide = min(max(8, 0, *map(len, clouds)), WIDEST)
    lines = [f"{'cloud':<{wide}} {'out':>4} {'in':>4} {'GiB':>7}  {'load':<15}  own imbalance"]
    for name, c in clouds.items():
        lines.append(
            f"{name:<{wide}} {c.departures:>4} {c.arrivals:>4} {c.moved_memory_mb / 1024:>7.0f}  "
            f"{c.load_before:.3f} → {c.load_after:.3f}  {c.imbalance_before:.4f} → {c.imbalance_after:.4f}"
        )
    lines += [f"  {note}" for note in plan.summary.notes or ()]
    return lines


STEP_COLUMNS = (
    "seq", "wave", "phase", "action", "instance", "name", "source", "destination", "aggregate",
    "combined_after", "numa_cells", "reason",
)  # fmt: skip


def plan_rows(plan: Plan) -> Listing:
    """A plan's steps as rows (``-f``/``-c``): the step's fields, in the contract's names."""
    columns: tuple[str, ...] = STEP_COLUMNS
    if any(s.source_cloud is not None for s in plan.steps):
        columns = (*columns, "source_cloud", "destination_cloud", "precondition")
    return Listing(columns, tuple(tuple(_field(s, c) for c in columns) for s in plan.steps))


def _field(step: Step, column: str) -> object:
    value = getattr(step, column)
    return list(value) if isinstance(value, tuple) else value


def state_rows(state: State, at: Callable[[datetime], str]) -> Listing:
    """What is held: aggregates and VMs in cooldown, VMs in quarantine (``None``: until released)."""
    rows: list[tuple[str, str, str | None]]
    rows = [("aggregate cooldown", k, at(t)) for k, t in state.aggregate_cooldown_until.items()]
    rows += [("instance cooldown", k, at(t)) for k, t in state.instance_cooldown_until.items()]
    rows += [("quarantine", k, None if t is None else at(t)) for k, t in state.quarantined_until.items()]
    return Listing(("kind", "id", "until"), tuple(sorted(rows, key=lambda r: (r[0], r[1]))))


def issue_rows(issues: Sequence[Issue]) -> Listing:
    """A document's problems: severity, where, the value found (shown as text), why."""
    return Listing(
        ("severity", "path", "value", "message"),
        tuple(
            (i.severity, i.path, None if i.value is NO_VALUE else show(i.value), i.message) for i in issues
        ),
    )


def scores_table(reports: Sequence[AggregateReport], url: str, at: str) -> str:
    """The original Kronos M1 dry-run view: scores, imbalance vs threshold, data health."""
    lines = [f"Prometheus {url} at {at}"]
    for rep in reports:
        combined = rep.combined
        head = f"aggregate {rep.name}: {len(rep.hosts)} host(s)"
        head += f", combined imbalance {combined:.4f}" if combined is not None else ""
        lines += ["", head + (f"  SKIPPED ({rep.skipped})" if rep.skipped else "")]
        lines.append(f"  {'policy':<20} {'weight':>6} {'imbalance':>9} {'threshold':>9}  exceeded")
        for p in rep.policies:
            imb = "-" if p.imbalance is None else f"{p.imbalance:.4f}"
            exceeded = {None: "unknown", True: "yes", False: "no"}[p.exceeded]
            lines.append(f"  {p.policy:<20} {p.weight:>6.2f} {imb:>9} {p.threshold:>9.4f}  {exceeded}")
        width = max([14, *(len(p.policy) for p in rep.policies)])
        lines.append(f"  {'host':<20} " + " ".join(f"{p.policy:>{width}}" for p in rep.policies))
        bad = {x.subject for x in rep.problems}
        for host in rep.hosts:
            cells = [_score_cell(p.values.get(host, ())) for p in rep.policies]
            flag = "  !" if host in bad else ""
            lines.append(f"  {host:<20} " + " ".join(f"{c:>{width}}" for c in cells) + flag)
        if rep.problems:
            lines.append("  problems:")
            lines += [f"    {x}" for x in rep.problems]
    return "\n".join(lines) + "\n"


SCORE_COLUMNS = (
    "aggregate", "host", "policy", "score", "health", "problem", "imbalance", "threshold", "exceeded",
    "skipped",
)  # fmt: skip


def scores_rows(reports: Sequence[AggregateReport], down: Collection[str] = ()) -> Listing:
    """One row per aggregate, host and policy, in the table's order (``-f``/``-c``).

    A host's row says whether its score counts in the policy's imbalance
    (``health`` ``ok``) or why not, so ``--sort-column health`` gathers the
    hosts to look at. ``score`` is the value read when it is one finite
    number, else empty (``health`` says what was read). The imbalance,
    threshold and why the aggregate is skipped repeat on each of its rows,
    as the openstack client repeats a server's fields, so one row is enough
    to act on. Every problem is on one row: a problem about no one host (a
    failed query, unlabelled series, history gaps) on a row of its own with
    no host after the aggregate's hosts, so a failed query is never an empty
    listing. Each policy's history is in the document (``-o``), not in rows.
    """
    rows: list[tuple[object, ...]] = []
    for rep in reports:
        for host in rep.hosts:
            for p in rep.policies:
                values = p.values.get(host, ())
                score = values[0] if len(values) == 1 and math.isfinite(values[0]) else None
                health, problem = _health(p, host, down)
                rows.append(
                    (rep.name, host, p.policy, score, health, problem, p.imbalance, p.threshold, p.exceeded,
                     rep.skipped)
                )  # fmt: skip
        for p in rep.policies:
            rows += [
                (rep.name, None, p.policy, None, x.kind, x.detail, p.imbalance, p.threshold, p.exceeded,
                 rep.skipped)
                for x in p.problems
                if x.subject is None
            ]  # fmt: skip
    return Listing(SCORE_COLUMNS, tuple(rows))


def _health(p: PolicyReport, host: str, down: Collection[str]) -> tuple[str, str | None]:
    """``ok`` when the host's score counts, else the kinds of its problems and their details
    (a failed query's words are on the policy's own row)."""
    if host in p.scores:
        return "ok", None
    if host in down:  # a dead host exports nothing: no problem, and no part in the imbalance
        return "down", None
    mine = [x for x in p.problems if x.subject == host]
    if mine:
        return ",".join(x.kind for x in mine), "; ".join(x.detail for x in mine)
    return ("query", None) if any(x.kind == "query" for x in p.problems) else ("not counted", None)


def _score_cell(values: tuple[float, ...]) -> str:
    if not values:
        return "missing"
    if len(values) > 1:
        return f"{len(values)} series"
    v = values[0]
    return "NaN" if math.isnan(v) else ("+Inf" if v == math.inf else "-Inf" if v == -math.inf else f"{v:.4f}")


def _names(hosts: Sequence[str], most: int = 6) -> str:
    shown = ", ".join(hosts[:most])
    return shown + (f" and {len(hosts) - most} more" if len(hosts) > most else "")


def _walk_order(name: str) -> float:
    """Where a rule comes in the planner's walk, so grouped lines read in the table's order."""
    from kronos.core.rules import rule_named, walk_position

    rule = rule_named(name)
    return walk_position(rule.index) if rule is not None and rule.index >= 0 else -1.0


def _nearness(x: Reason) -> float:
    """Lower is nearer to passing: the most room free, the least over a score limit."""
    if x.free is not None:
        return -x.free
    return x.value if x.value is not None and x.rule == "max_host_score" else 0.0


def explain_vm_text(x: VMExplanation, most: int = 5) -> str:
    """A VM's explanation in a screenful: hosts ruled out by the same rule share a line."""
    from kronos.core.reasons import render

    who = f"{one_line(x.name)} ({x.instance})" if x.name and x.name != x.instance else x.instance
    lines = [f"VM {who} on {x.host}, {x.phase}"]
    lines.append(
        "  may move"
        if not x.not_movable
        else "  may not move: " + "; ".join(render(r) for r in x.not_movable)
    )
    for view in x.aggregates:
        # before the plan; the decision below is after it, so its best host may differ
        lines.append(
            f"  aggregate {view.aggregate} before the plan (combined imbalance {view.combined_now:.4f}):"
        )
        feasible = sorted((h for h in view.hosts if h.why is None), key=lambda h: (h.combined_after, h.host))
        if feasible:
            best = ", ".join(f"{h.host} → {h.combined_after:.4f}" for h in feasible[:most])
            more = f" (+{len(feasible) - most} more)" if len(feasible) > most else ""
            lines.append(f"    {len(feasible)} host(s) would take it, best first: {best}{more}")
        groups: dict[str, list[Reason]] = {}
        for h in view.hosts:
            if h.why is not None:
                groups.setdefault(h.why.rule, []).append(h.why)
        for rule in sorted(groups, key=_walk_order):
            ruled = groups[rule]
            near = render(min(ruled, key=_nearness))
            lines.append(
                f"    {rule} rules out {len(ruled)}: {_names([r.host or '' for r in ruled])} (e.g. {near})"
            )
    lines.append("  decision:")
    lines += [f"    {render(r)}" for r in x.decision]
    return "\n".join(lines) + "\n"


def _amount(x: float) -> str:
    """A resource amount as people write it: whole numbers in full (1093632, not 1.09363e+06)."""
    return f"{x:.0f}" if float(x).is_integer() else f"{x:.6g}"


def explain_host_text(x: HostExplanation) -> str:
    from kronos.core.reasons import render

    state = ("enabled" if x.enabled else "disabled") + (", up" if x.up else ", down")
    lines = [f"host {x.host} ({state}) in {', '.join(x.aggregates) or 'no aggregate'}"]
    lines.append(f"  VMs {x.vms_before} → {x.vms_after}")
    for key, cap in x.capacity.items():
        lines.append(
            f"  {key:<10} {_amount(x.used_before[key])} → {_amount(x.used_after[key])} of {_amount(cap)}"
        )
    for pol, before in x.scores_before.items():
        lines.append(f"  {pol:<10} {before:.3f} → {x.scores_after[pol]:.3f}")
    if x.arrivals:
        lines.append(f"  arrivals: steps {', '.join(map(str, x.arrivals))}")
    if x.departures:
        lines.append(f"  departures: steps {', '.join(map(str, x.departures))}")
    lines.append("  decision:")
    lines += [f"    {render(r)}" for r in x.decision]
    return "\n".join(lines) + "\n"


EXPLAIN_COLUMNS = ("subject", "kind", "aggregate", "host", "rule", "combined_after", "reason")


def explain_rows(
    answers: Sequence[VMExplanation | HostExplanation], say: Callable[[str], str] = str
) -> Listing:
    """Each answer's records as rows (``-f``/``-c``), in the order the text shows them.

    ``subject`` is the VM's id or the host's name; ``kind`` the record's
    field: ``not_movable`` (a rule holding the VM), ``candidate`` (another
    host of its aggregate: ``rule`` is the first that rules it out, else
    ``combined_after`` what the move would leave) and ``decision`` (the
    plan's, for a VM or a host). ``reason`` is the rule's one sentence
    (:func:`kronos.core.reasons.render`); ``say`` lets the CLI name keyword
    options as its flags, as in its text. A host's numbers (capacity,
    scores before and after) are in the records (``-o``), not in rows.
    """
    from kronos.core.explain import VMExplanation
    from kronos.core.reasons import render

    rows: list[tuple[str, str, str | None, str | None, str | None, float | None, str | None]] = []

    def of(subject: str, kind: str, reasons: Sequence[Reason]) -> None:
        rows.extend((subject, kind, r.aggregate, r.host, r.rule, None, say(render(r))) for r in reasons)

    for x in answers:
        if not isinstance(x, VMExplanation):
            of(x.host, "decision", x.decision)
            continue
        of(x.instance, "not_movable", x.not_movable)
        for view in x.aggregates:
            for h in view.hosts:
                why = h.why
                rule, reason = (None, None) if why is None else (why.rule, say(render(why)))
                rows.append((x.instance, "candidate", view.aggregate, h.host, rule, h.combined_after, reason))
        of(x.instance, "decision", x.decision)
    return Listing(EXPLAIN_COLUMNS, tuple(rows))
