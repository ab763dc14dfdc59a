"""The pages stay true: docs/rules.md lists the rule table and the decisions as they are, and
the terminal sessions shown in the docs print what they show."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from kronos.core.reasons import DECISIONS, known
from kronos.core.rules import RULE, RULES

DOCS = Path(__file__).resolve().parent.parent / "docs"
#: pages whose ```console blocks are run, in order, in one fresh directory per page
SESSIONS = ("explain.md", "spread.md", "federation.md")


def _table_names(text: str) -> list[str]:
    """The backquoted name in the first cell of each table row."""
    return re.findall(r"^\| `([^`]+)` \|", text, re.MULTILINE)


def test_the_rules_page_lists_every_rule_in_table_order_and_every_decision() -> None:
    names = _table_names((DOCS / "rules.md").read_text(encoding="utf-8"))
    assert len(names) == len(set(names)), "a name listed twice"
    assert [n for n in names if n in RULE] == [r.name for r in RULES]
    assert [d for d in DECISIONS if d not in names] == []
    assert [n for n in names if not known(n)] == [], "the page names what kronos no longer has"


def _commands(page: str) -> list[tuple[str, list[str]]]:
    """Each ``$ command`` of the page's console blocks with the lines shown after it."""
    text = (DOCS / page).read_text(encoding="utf-8")
    out: list[tuple[str, list[str]]] = []
    for block in re.findall(r"^```console\n(.*?)^```", text, re.MULTILINE | re.DOTALL):
        for line in block.splitlines():
            if line.startswith("$ "):
                out.append((line[2:], []))
            else:
                out[-1][1].append(line)
    return out


def _shown(lines: list[str]) -> re.Pattern[str]:
    """What the page shows as a pattern: a line ``...`` stands for any number of lines."""
    parts = ["(?:.*\n)*?" if line == "..." else re.escape(line) + "\n" for line in lines]
    return re.compile("".join(parts))


@pytest.mark.parametrize("page", SESSIONS)
def test_each_session_runs_and_prints_what_the_page_shows(page: str, tmp_path: Path) -> None:
    commands = _commands(page)
    assert commands, f"{page} shows no session"
    for command, shown in commands:
        argv = shlex.split(command)
        assert argv[0] == "kronos", command
        run = subprocess.run(
            [sys.executable, "-c", "from kronos.cli import main; main()", *argv[1:]],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
        )
        assert run.returncode == 0, f"{page}: {command}\n{run.stderr}"
        printed = run.stdout if run.stdout.endswith("\n") or not run.stdout else run.stdout + "\n"
        assert _shown(shown).fullmatch(printed), f"{page}: {command} printed\n{printed}"


def test_the_contract_page_is_formats_md_verbatim_below_its_note() -> None:
    """docs/contract.md is the shared FORMATS.md as it is: copy it again when the contract changes."""
    shared = DOCS.parent.parent / "shared" / "FORMATS.md"
    if not shared.exists():
        pytest.skip(f"{shared} is not beside this checkout")
    page = (DOCS / "contract.md").read_text(encoding="utf-8")
    contract = shared.read_text(encoding="utf-8")
    assert page.endswith(contract), "docs/contract.md differs from FORMATS.md"
    assert page[: -len(contract)].startswith('!!! note "The contract Kronos implements"')


def test_every_setting_has_the_comment_the_configuration_reference_shows() -> None:
    """The site's configuration page is rendered from the code (docs/hooks/reference.py): each
    kronos.conf key and planner option needs its ``#:`` comment there, or the page shows a blank."""
    import importlib.util

    import attrs

    from kronos.adapters import config
    from kronos.core import options

    spec = importlib.util.spec_from_file_location("reference", DOCS / "hooks" / "reference.py")
    assert spec is not None and spec.loader is not None
    reference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reference)
    classes = [*config._SECTIONS.values(), *options.SECTIONS.values()]
    blank = [
        f"{cls.__name__}.{a.name}"
        for cls in classes
        for a in attrs.fields(cls)
        if a.name != "options" and not a.metadata.get("internal") and a.name not in reference.field_docs(cls)
    ]
    assert blank == []
    page = reference.render()
    keys = [a.name for cls in config._SECTIONS.values() for a in attrs.fields(cls) if a.name != "options"]
    assert [n for n in (*keys, *options.OPTION_NAMES) if f"| `{n}` |" not in page] == []
