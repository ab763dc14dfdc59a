"""The pages stay true: docs/rules.md lists the rule table and the decisions as they are."""

from __future__ import annotations

import re
from pathlib import Path

from kronos.core.reasons import DECISIONS, known
from kronos.core.rules import RULE, RULES

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _table_names(text: str) -> list[str]:
    """The backquoted name in the first cell of each table row."""
    return re.findall(r"^\| `([^`]+)` \|", text, re.MULTILINE)


def test_the_rules_page_lists_every_rule_in_table_order_and_every_decision() -> None:
    names = _table_names((DOCS / "rules.md").read_text(encoding="utf-8"))
    assert len(names) == len(set(names)), "a name listed twice"
    assert [n for n in names if n in RULE] == [r.name for r in RULES]
    assert [d for d in DECISIONS if d not in names] == []
    assert [n for n in names if not known(n)] == [], "the page names what kronos no longer has"
