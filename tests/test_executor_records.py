"""Which of Nova's migration records belong to a plan's step (the executor's reconcile/adopt rule)."""

from __future__ import annotations

from datetime import UTC, datetime

from kronos.adapters.executor import ours
from kronos.core.model import Plan, Step

PLAN = Plan(
    datetime(2026, 11, 21, 10, 0, 0, 500000, tzinfo=UTC),
    "sha256:x",
    steps=(Step(1, 1, "spread", "live-migrate", "vm", "cmp-3", "cmp-1", "agg", "r", 0.0),),
)
STEP = PLAN.steps[0]


def _m(uuid: str, status: str, dest: str | None, created: str) -> dict[str, object]:
    return {"uuid": uuid, "status": status, "dest_compute": dest, "created_at": created}


def test_a_live_migration_not_yet_scheduled_has_no_destination_and_is_still_ours() -> None:
    # what Nova lists in the first half second of a live migration (status accepted)
    assert ours(STEP, PLAN, [_m("a", "accepted", None, "2026-11-21T10:00:00.900000")])["uuid"] == "a"  # type: ignore[index]


def test_records_before_the_plan_elsewhere_or_failed_are_not() -> None:
    assert ours(STEP, PLAN, [_m("old", "completed", "cmp-1", "2026-11-21T09:59:59.000000")]) is None
    assert ours(STEP, PLAN, [_m("else", "running", "cmp-2", "2026-11-21T10:00:01.000000")]) is None
    failed_last = [
        _m("1", "completed", "cmp-1", "2026-11-21T10:00:01.000000"),
        _m("2", "error", "cmp-1", "2026-11-21T10:00:05.000000"),
    ]
    assert ours(STEP, PLAN, failed_last) is None  # the newest decides: move again
    # Nova's seconds vs the plan's: the same second counts (clocks compared to the second)
    assert ours(STEP, PLAN, [_m("s", "completed", "cmp-1", "2026-11-21T10:00:00.100000")]) is not None
