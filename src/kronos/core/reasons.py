"""Text from :class:`~kronos.core.model.Reason` records, one sentence per name.

The planner decides with records; people read sentences. Rules of the
placement table carry their own sentence (:mod:`kronos.core.rules`); the
planner's decisions (why an aggregate was skipped, why a search stopped,
what a step is for) have theirs here. :func:`render` is the only way a
record becomes text: the plan's ``reason``, ``skipped``, ``notes`` and
``unrepaired`` strings, the CLI's tables and ``kronos explain`` all use it.

Keyword options are named as a library caller spells them
(``cold_migrate_stopped``); the CLI turns them into its flags.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from kronos.core.model import Reason


def _g(x: float | None) -> str:
    return "?" if x is None else f"{x:g}"


def _int(x: float | None) -> str:
    return "?" if x is None else str(int(x))


def _iso(x: Reason) -> str:
    return "?" if x.until is None else x.until.strftime("%Y-%m-%dT%H:%M:%SZ")


def _sci(x: float | None) -> str:
    return "?" if x is None else f"{x:.3g}"


def _f3(x: float | None) -> str:
    return "?" if x is None else f"{x:.3f}"


def _f4(x: float | None) -> str:
    return "?" if x is None else f"{x:.4f}"


def _pct(x: float | None) -> str:
    return "?" if x is None else f"{100 * x:.3g} %"


def _not_sustained(x: Reason) -> str:
    window = f"min_sustained {_g(x.limit)} s"
    if x.detail == "no score_history":
        return f"not sustained: no score_history to show the imbalance lasted {window}"
    if x.detail == "short":
        return f"not sustained: the score_history covers {_g(x.value)} s of {window}"
    if x.detail == "gaps":
        return f"not sustained: every sample of the {window} window has a gap"
    return (
        f"not sustained: {_g(x.value)} s ago every policy was within its threshold "
        f"({x.policy} {_f3(x.before)} ≤ {_g(x.need)}; {window})"
    )


def _vms(n: int | None) -> str:
    return f"{n} VM{'' if n == 1 else 's'}"


def _names(x: Reason) -> str:
    return ", ".join(x.hosts or ())


def _repair(x: Reason) -> str:
    kind = x.rule.removeprefix("repair.")
    if kind in ("anti-affinity", "soft-anti-affinity"):
        text = f"{kind} group {x.group} has {x.count} members on {x.host} (max {_int(x.limit)})"
    else:
        text = f"{kind} group {x.group} is spread over {x.count} hosts; gathering on {x.host}"
    cause = _REPAIR_CAUSES.get(x.detail or "")
    return text if cause is None else f"{text}: {cause(x)}"


_REPAIR_CAUSES: dict[str, Callable[[Reason], str]] = {
    "budget": lambda x: "budget exhausted",
    "no_host": lambda x: "no movable member has a feasible host with room in the group",
    "stuck": lambda x: f"{_int(x.value)} member(s) not movable or do not fit there",
}

DECISIONS: dict[str, Callable[[Reason], str]] = {
    # why an aggregate was not planned
    "aggregate.too_few_hosts": lambda x: "fewer than two enabled, up hosts",
    "aggregate.balanced": lambda x: "balanced: every policy within its threshold",
    "aggregate.min_load": lambda x: (
        f"below min_load: busiest host's combined score {x.value:.3f} < {_g(x.limit)}"
    ),
    "aggregate.min_diff_ratio": lambda x: (
        f"below min_diff_ratio: busiest/least busy − 1 = {x.value:.3f} < {_g(x.limit)}"
    ),
    "aggregate.not_sustained": lambda x: _not_sustained(x),
    "aggregate.min_gain": lambda x: (
        f"gain below min_gain: the plan would cut the combined imbalance {_f4(x.before)} → "
        f"{_f4(x.after)}, by {_pct(x.value)} < {_pct(x.limit)}"
    ),
    "aggregate.no_movable": lambda x: "no movable VMs",
    "aggregate.budget_zero": lambda x: "budget is 0",
    "aggregate.cooldown": lambda x: f"in cooldown until {_iso(x)}",
    "aggregate.bad_data": lambda x: f"bad data: {x.detail}",
    "aggregate.nothing_to_move": lambda x: "nothing to move here",
    "aggregate.nothing_to_empty": lambda x: "nothing to empty within the rules and the budget",
    # why a search stopped
    "spread.stop_budget": lambda x: "spread stopped: budget used",
    "spread.stop_no_gain": lambda x: (
        "spread stopped: no feasible move lowers the combined imbalance by min_improvement"
        if not x.limit
        else "spread stopped: no feasible move lowers the combined imbalance by more than it costs "
        f"(move_cost {_g(x.limit)} per GiB of memory)"
    ),
    "spread.stop_balanced": lambda x: "spread stopped: every policy within its threshold",
    # what a step is for
    "spread.no_history": lambda x: (
        f"plan_on {x.detail}: no host here has a score_history, so its scores are today's"
    ),
    "spread.gain": lambda x: f"combined {x.before:.4f} → {x.after:.4f}",
    "spread.together": lambda x: (
        f"one of {x.count} moves made together (with {x.detail}): they gain more than "
        f"{x.count} single moves could"
        + (f"; together combined {x.before:.4f} → {x.after:.4f}" if x.after is not None else "")
    ),
    "spread.again": lambda x: (
        "moved earlier in this plan; moving it on lowers the imbalance more than any other VM's first move"
    ),
    "repair.affinity": _repair,
    "repair.anti-affinity": _repair,
    "repair.soft-affinity": _repair,
    "repair.soft-anti-affinity": _repair,
    "repair.outside": lambda x: (
        f"{x.detail} group {x.group} has members outside aggregate {x.aggregate}; "
        "migrations never cross aggregates"
    ),
    "pack.relieve": lambda x: f"relieve {x.host} ({x.policy} {x.value:.3f} > {_g(x.limit)})",
    "pack.empty": lambda x: f"empty {x.host} ({x.count} VM{'s' if x.count != 1 else ''})",
    "pack.make_room": lambda x: f"make room on {x.host} (exact target: it keeps VMs, others arrive)",
    "pack.park": lambda x: (
        f"parked for now: VMs bound for {x.host} cannot go until it leaves, "
        f"and {x.detail}, its exact target, has no room yet"
    ),
    "pack.unpark": lambda x: f"parked on {x.host} earlier in this plan; now to its exact target",
    "evacuate.failed": lambda x: f"evacuate failed host {x.host} (fence it first)",
    "drain.maintenance": lambda x: f"drain {x.host} for maintenance",
    "leaving.soft_worse": lambda x: (
        f"{x.detail} group {x.group} made worse: no host that keeps it can take the VM"
    ),
    # pack notes
    "pack.ha_reserve": lambda x: f"ha_reserve {x.count}: {_names(x)} untouched",
    "pack.relief_budget": lambda x: (
        f"budget used relieving hosts over max_host_score; still over: {_names(x)}"
    ),
    "pack.over": lambda x: (
        f"{_names(x)} over max_host_score and no enabled host can take the excess: enable {x.detail}"
        if x.detail
        else f"{_names(x)} over max_host_score; no enabled host can take the excess, none to enable"
    ),
    "pack.short": lambda x: "nothing emptied while the aggregate is short of capacity",
    "pack.hosts_in_use": lambda x: (
        f"hosts in use {_int(x.before)} → {_int(x.after)}, lower bound {_int(x.limit)}"
    ),
    "pack.budget_used": lambda x: "budget used",
    "spread.exact": lambda x: (
        f"exact spread ({x.detail}): combined {x.value:.4f} (greedy {x.before:.4f}), bound {x.limit:.4f}"
    ),
    "spread.exact_skipped": lambda x: f"exact spread not run: {x.detail}; the greedy's plan stands",
    "spread.exact_dropped": lambda x: (
        f"exact target: {_int(x.count)} move{'s' if x.count != 1 else ''} could not be ordered "
        "validly (each step within the rules, none above the starting imbalance) and were left out"
    ),
    "spread.exact_target": lambda x: "a move of the exact solver's target placement",
    "pack.exact": lambda x: (
        f"exact pack ({x.detail}): objective {_g(x.value)} (greedy {_g(x.before)}), bound {_g(x.limit)}"
    ),
    "pack.exact_skipped": lambda x: f"exact pack not run: {x.detail}; the greedy's plan stands",
    "pack.exact_neighbourhoods": lambda x: (
        f"too large to model whole (more than {_int(x.limit)} (VM, host) pairs): "
        f"{_int(x.count)} neighbourhoods of the plan solved (up to {_int(x.need)} hosts each), "
        f"{_int(x.value)} proven optimal, {_int(x.after)} taken"
    ),
    "pack.exact_dropped": lambda x: (
        f"exact target: the moves off {_names(x)} could not be ordered validly; "
        + ("the greedy's plan stands" if x.detail == "greedy" else "those hosts keep their VMs")
    ),
    "pack.budget_below": lambda x: (
        f"budget {_int(x.limit)}"
        + (f" (left after {_int(x.count)} relief move{'s' if x.count != 1 else ''})" if x.count else "")
        + f" is below the fewest VMs on an emptiable host ({_int(x.need)})"
    ),
    # evacuate and drain
    "leaving.placed": lambda x: (
        f"{x.detail}: {x.count} of {_int(x.need)} instances placed"
        + (f", {int(x.need or 0) - int(x.count or 0)} not" if (x.need or 0) > (x.count or 0) else "")
    ),
    "leaving.budget": lambda x: f"{x.detail} budget {_int(x.limit)} used; plan again to continue",
    "vm.not_selected": lambda x: f"not selected: matches no {x.detail}",
    "vm.out_of_scope": lambda x: "none of its host's aggregates is being planned (aggregates)",
    "aggregate.no_other_host": lambda x: f"no other host in aggregate {x.aggregate}",
    "leaving.no_host": lambda x: "no host satisfies every rule at once",
    "data.weight_over_score": lambda x: (
        f"{_vms(x.count)} {'weighs' if x.count == 1 else 'weigh'} more than "
        f"{'its' if x.count == 1 else 'their'} host's score (e.g. {x.detail}; on {_names(x)}): "
        f"balancing leaves {'it' if x.count == 1 else 'them'}; check the policies' VM profiles"
    ),
    # federation: why load moves between clouds, and why it stopped
    "federation.difference": lambda x: (
        f"cloud loads {x.detail} {_f3(x.before)} vs {_f3(x.after)} differ by {_f3(x.value)} "
        f"> load_difference {_g(x.limit)}"
    ),
    "federation.target": lambda x: (
        f"cloud loads {x.detail} {_f3(x.before)} vs {_f3(x.after)} still differ by {_f3(x.value)} "
        f"> target_difference {_g(x.limit)}"
    ),
    "federation.max_load": lambda x: f"cloud load {x.detail} {_f3(x.value)} > max_load {_g(x.limit)}",
    "federation.gain": lambda x: f"{x.detail} load gap {_f3(x.before)} → {_f3(x.after)}",
    "federation.settled": lambda x: (
        f"clouds within the trigger: loads {x.detail} differ by {_f3(x.value)}"
        + (f" ≤ {_g(x.limit)}" if x.limit is not None else "")
        + (f", none above max_load {_g(x.need)} while another is below" if x.need is not None else "")
    ),
    "federation.budget": lambda x: f"cross-cloud budget used: {_g(x.limit)} {x.detail}",
    "federation.no_move": lambda x: (
        f"{x.detail}: no eligible VM narrows the load gap on a receiving host that satisfies "
        "every rule (within the memory budget)"
    ),
    # kronos explain: what a plan did with a VM or a host
    "explain.moved": lambda x: f"moved by step {x.count} ({x.detail}) to {x.host}",
    "explain.unplaced": lambda x: f"unplaced: {x.detail}",
    "explain.not_movable": lambda x: "it may not move",
    "explain.out_of_scope": lambda x: "none of its host's aggregates was planned",
    "explain.host_out_of_scope": lambda x: f"none of {x.host}'s aggregates was planned",
    "explain.skipped": lambda x: f"aggregate {x.aggregate} was skipped",
    "explain.host_kept": lambda x: f"its host {x.host} was not emptied (explain the host for why)",
    "explain.no_host": lambda x: f"after the plan no host of {x.aggregate} can take it",
    "explain.no_gain": lambda x: (
        f"no move of it lowers {x.aggregate}'s combined imbalance: "
        f"its best (to {x.host}) raises it by {_sci(x.value)}"
    ),
    "explain.small_gain": lambda x: (
        f"its best move (to {x.host}) would lower {x.aggregate}'s combined imbalance by "
        f"{_sci(x.value)} < min_improvement {_g(x.limit)}"
    ),
    "explain.not_chosen": lambda x: (
        f"its best move (to {x.host}) would lower {x.aggregate}'s combined imbalance by {_sci(x.value)}, "
        "but the plan stopped first"
    ),
    "explain.emptied": lambda x: f"{x.host} is emptied: {_vms(x.count)} leave it",
    "explain.departures": lambda x: f"{_vms(x.count)} leave {x.host}",
    "explain.destination": lambda x: f"{x.host} receives {_vms(x.count)}",
    "explain.ha_reserve": lambda x: (
        f"{x.host} is kept empty as failover capacity (ha_reserve) of {x.aggregate}"
    ),
    "explain.pinned": lambda x: f"{x.host} keeps {_vms(x.count)} that may not move",
    "explain.not_emptied": lambda x: (
        f"pack found no room elsewhere for all {_vms(x.count)} of {x.host} within the rules and the budget"
    ),
    "explain.not_chosen_host": lambda x: (
        f"{x.host}: combined score {_f3(x.value)}, mean of {x.aggregate} {_f3(x.limit)}"
        + (
            " (above the mean: load moved here raises the imbalance)"
            if (x.value or 0) > (x.limit or 0)
            else ""
        )
        + f"; {_vms(x.count)} of {x.aggregate} could move here"
    ),
    "explain.ruled_out": lambda x: f"{x.detail} rules {x.host} out for {_vms(x.count)}",
}


def render(x: Reason) -> str:
    """One record as a sentence; a record grouping several hosts says how many."""
    from kronos.core.rules import rule_named

    rule = rule_named(x.rule)
    if rule is None:
        return DECISIONS[x.rule](x)
    text = rule.text(x)
    if x.hosts is not None and len(x.hosts) > 1 and rule.scope != "vm":
        return f"{x.rule} rules out {len(x.hosts)} hosts, nearest: {text}"
    return text


def render_all(records: Iterable[Reason], sep: str = "; ") -> str:
    return sep.join(render(x) for x in records)


def known(name: str) -> bool:
    """Is ``name`` a rule or a decision that :func:`render` can say?"""
    from kronos.core.rules import rule_named

    return rule_named(name) is not None or name in DECISIONS
