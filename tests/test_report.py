"""``kronos report``: the HTML page's content, the PNG charts, the CLI, and a real browser.

The browser tests drive Debian's headless Chromium over the DevTools protocol
on a pipe (no extra package): they load the written file, count elements
through the DOM, take a screenshot and collect every console error,
uncaught exception, error log entry and network request. Without Chromium
they skip locally and fail under ``CI=true``: CI must never pass by not
testing.
"""

from __future__ import annotations

import base64
import fcntl
import io
import json
import os
import select
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, ClassVar

import attrs
import numpy as np
import pytest

import kronos
from kronos.core.explain import not_movable
from kronos.core.reasons import render_all
from kronos.report import build_report, render_html, render_pngs, write_pngs
from kronos.report.figures import LABELLED_HOSTS_MAX
from tests.conftest import ROOT, kronos_cli

AFTER_BLUE = (0x2B, 0x6C, 0xB0)  # the "score after" bars of both renderers


# -- fixtures: generated clouds and their plans ------------------------------


@pytest.fixture(scope="module")
def spread() -> tuple[kronos.Snapshot, kronos.Plan]:
    snap = kronos.generate(hosts=24, vms=600, groups=20, aggregates=2, disabled=1, seed=1)
    return snap, kronos.plan(snap)


@pytest.fixture(scope="module")
def evacuation() -> tuple[kronos.Snapshot, kronos.Plan]:
    """Two failed hosts, a tag selector: steps, one unplaced VM, VMs not selected, fence first."""
    snap = kronos.generate(hosts=30, vms=900, groups=30, down=2, fill=0.85, unmovable=0.1, seed=4)
    down = [h.name for h in snap.hosts if not h.up]
    plan = kronos.evacuate(snap, down, tags=("automatic-recovery",))
    assert plan.steps and plan.summary.unplaced and plan.summary.not_selected
    return snap, plan


@pytest.fixture(scope="module")
def large() -> tuple[kronos.Snapshot, kronos.Plan]:
    snap = kronos.generate(hosts=1000, vms=6000, groups=20, down=2, seed=3)
    return snap, kronos.plan(snap, budget=40)


# -- a small DOM of the page, for counting (stdlib parser) --------------------


@attrs.define
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node] = attrs.Factory(list)
    text: str = ""

    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def all(self, tag: str | None = None, cls: str | None = None) -> list[Node]:
        out = []
        for c in self.children:
            if (tag is None or c.tag == tag) and (cls is None or cls in c.classes()):
                out.append(c)
            out += c.all(tag, cls)
        return out

    def all_text(self) -> str:
        return self.text + "".join(c.all_text() for c in self.children)


class _TreeBuilder(HTMLParser):
    VOID: ClassVar[set[str]] = {
        "meta",
        "br",
        "hr",
        "img",
        "input",
        "link",
        "col",
        "area",
        "base",
        "source",
        "wbr",
    }

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs_: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs_})
        self.stack[-1].children.append(node)
        if tag not in self.VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs_: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, {k: v or "" for k, v in attrs_}))

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        assert self.stack[-1].tag == tag, f"</{tag}> closes <{self.stack[-1].tag}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].text += data


def parse(page: str) -> Node:
    builder = _TreeBuilder()
    builder.feed(page)
    builder.close()
    assert builder.stack == [builder.root], "unclosed elements"
    return builder.root


def aggregate_hosts(snap: kronos.Snapshot, name: str) -> list[str]:
    return next(list(a.hosts) for a in snap.aggregates if a.name == name)


# -- content of the HTML ------------------------------------------------------


def test_one_chart_per_aggregate_and_policy_with_a_bar_pair_per_host_sorted(spread: Any) -> None:
    snap, plan = spread
    doc = parse(render_html(build_report(snap, plan)))
    sections = doc.all("section", "aggregate")
    assert [s.attrs["data-aggregate"] for s in sections] == list(plan.summary.aggregates)
    policies = [p.name for p in snap.enabled_policies]
    for section in sections:
        hosts = aggregate_hosts(snap, section.attrs["data-aggregate"])
        charts = section.all("figure", "chart")
        assert [c.attrs["data-policy"] for c in charts] == policies
        for chart in charts:
            before, after = chart.all("rect", "bb"), chart.all("rect", "ba")
            assert len(before) == len(after) == len(hosts)
            labels = [t.all_text() for t in chart.all("text") if "rotate" in t.attrs.get("transform", "")]
            assert sorted(labels) == sorted(hosts)
            heights = [float(r.attrs["height"]) for r in before]
            assert heights == sorted(heights, reverse=True)  # highest score before first
            assert len(chart.all("rect", "band")) == 1 and len(chart.all("line", "max")) == 1
        # the disabled host is drawn, marked as outside the std-dev
    disabled = {h.name for h in snap.hosts if not h.enabled}
    off = {t.all_text() for t in doc.all("text", "off")}
    assert disabled and off == disabled


def test_steps_are_grouped_by_wave_in_order(spread: Any) -> None:
    snap, plan = spread
    doc = parse(render_html(build_report(snap, plan)))
    waves = doc.all("tbody", "wave")
    assert [int(w.attrs["data-wave"]) for w in waves] == sorted({s.wave for s in plan.steps})
    by_seq = {s.seq: s for s in plan.steps}
    seen = []
    for w in waves:
        for row in w.all("tr", "step"):
            step = by_seq[int(row.attrs["data-seq"])]
            assert step.wave == int(w.attrs["data-wave"])
            assert f"{step.source} → {step.destination}" in row.all_text()
            assert step.reason in row.all_text()
            seen.append(step.seq)
    assert sorted(seen) == sorted(by_seq) and len(seen) == len(plan.steps)


def test_summary_figures_match_the_plan(spread: Any) -> None:
    snap, plan = spread
    doc = parse(render_html(build_report(snap, plan)))
    rows = doc.all("tr", "agg-row")
    assert len(rows) == len(plan.summary.aggregates)
    for row, (name, s) in zip(rows, plan.summary.aggregates.items(), strict=True):
        text = row.all_text()
        assert name in text and f"{s.combined_before:.4f} → {s.combined_after:.4f}" in text
        assert str(s.migrations) in text


@pytest.mark.parametrize(
    "case",
    ["heterogeneous", "missing-weights", "overlapping", "evacuate", "drain", "pack"],
)
def test_scores_after_replay_reproduce_the_plans_imbalance(case: str) -> None:
    """The bars after the plan give the plan's own std-devs: the replay moves load as the planner did."""
    kw: dict[str, Any] = {"hosts": 30, "vms": 900, "groups": 30, "seed": 7}
    kw.update(
        {
            "heterogeneous": {"heterogeneous": True, "aggregates": 3},
            "missing-weights": {"missing_weights": 0.3},
            "overlapping": {"aggregates": 3, "overlapping": True, "unassigned": 2},
            "evacuate": {"down": 2, "heterogeneous": True},
            "drain": {"heterogeneous": True},
            "pack": {"mode": "pack", "fill": 0.3, "heterogeneous": True},
        }[case]
    )
    snap = kronos.generate(**kw)
    if case == "evacuate":
        plan = kronos.evacuate(snap, [h.name for h in snap.hosts if not h.up])
    elif case == "drain":
        plan = kronos.drain(snap, [snap.hosts[0].name])
    else:
        plan = kronos.plan(snap, budget="unlimited" if case == "pack" else 15)
    assert plan.steps
    report = build_report(snap, plan)
    for agg in report.aggregates:
        for chart in agg.charts:
            assert chart.std_before == pytest.approx(agg.summary.imbalance_before[chart.policy], abs=1e-9)
            assert chart.std_after == pytest.approx(agg.summary.imbalance_after[chart.policy], abs=1e-9)
    # no host a step does not touch changes; all touched do, unless the load moved is unknown
    # (an evacuated VM of a failed host without weights counts 0: FORMATS.md)
    touched = {s.source for s in plan.steps} | {s.destination for s in plan.steps}
    changed = {
        h for a in report.aggregates for c in a.charts for h, b, x in zip(c.hosts, c.before, c.after, strict=True)
        if b != x
    }  # fmt: skip
    assert changed <= touched
    if case != "evacuate":
        assert changed == touched


def test_every_document_string_is_escaped(spread: Any) -> None:
    snap, _ = spread
    evil_vm = '<script>alert("vm")</script>'
    evil_agg = "<img src=x onerror=alert(1)>&"
    first = snap.aggregates[0]
    snap = attrs.evolve(
        snap,
        vms=(
            attrs.evolve(snap.vms[0], name=evil_vm, migratable=False),  # listed as not movable
            *(attrs.evolve(v, name=evil_vm) for v in snap.vms[1:]),
        ),
        aggregates=(attrs.evolve(first, name=evil_agg), *snap.aggregates[1:]),
    )
    plan = kronos.plan(snap)
    assert any(s.aggregate == evil_agg for s in plan.steps)
    page = render_html(build_report(snap, plan))
    doc = parse(page)
    assert not doc.all("script") and not doc.all("img")
    assert "<script>" not in page and "<img" not in page
    (held,) = doc.all("section", "not-movable")
    assert evil_vm in held.all_text()
    assert "&lt;script&gt;alert(&quot;vm&quot;)&lt;/script&gt;" in page
    names = [r.all_text() for r in doc.all("tr", "step")]
    assert names and all(evil_vm in n for n in names)  # shown as text, intact
    assert evil_agg in {s.attrs["data-aggregate"] for s in doc.all("section", "aggregate")}


def test_page_refers_to_nothing_outside_itself(evacuation: Any) -> None:
    page = render_html(build_report(*evacuation))
    doc = parse(page)
    assert "http:" not in page and "https:" not in page and "//" not in page.replace("://", "")
    for node in doc.all():
        assert not {"src", "href", "xlink:href"} & set(node.attrs), node
    assert not doc.all("script") and not doc.all("link") and not doc.all("img")


def test_unplaced_not_selected_and_fence_first_are_listed(evacuation: Any) -> None:
    snap, plan = evacuation
    doc = parse(render_html(build_report(snap, plan)))
    host_of = {v.id: v.host for v in snap.vms}
    for cls, items in (("unplaced", plan.summary.unplaced), ("not-selected", plan.summary.not_selected)):
        (section,) = doc.all("section", cls)
        rows = section.all("tr", "vm")
        assert len(rows) == len(items)
        for row, u in zip(rows, items, strict=True):
            text = row.all_text()
            assert u.instance in text and u.reason in text and host_of[u.instance] in text
    (fence,) = doc.all("p", "fence")
    assert all(h in fence.all_text() for h in plan.summary.fence_first)


def test_not_movable_lists_what_the_rule_table_holds(spread: Any) -> None:
    snap, plan = spread
    held = not_movable(snap, plan)
    assert held  # the generator leaves a few VMs unmovable
    (section,) = parse(render_html(build_report(snap, plan))).all("section", "not-movable")
    found = section.all("tr", "vm")
    assert [r.all_text() for r in found] == [f"{x.name}{x.instance}{x.host}{render_all(x.why)}" for x in held]


def test_a_thousand_host_aggregate_is_drawn_as_curves_of_bounded_size(large: Any) -> None:
    snap, plan = large
    page = render_html(build_report(snap, plan))
    doc = parse(page)
    (section,) = doc.all("section", "aggregate")
    charts = section.all("figure", "chart")
    assert len(charts) == len(snap.enabled_policies) and len(snap.hosts) > LABELLED_HOSTS_MAX
    for chart in charts:
        (svg,) = chart.all("svg")
        assert "curves" in svg.classes() and not chart.all("rect", "bb")
        assert len(svg.all()) < 40  # a fixed few elements, whatever the host count
        labels = {t.all_text() for t in svg.all("text")}
        assert not labels & {h.name for h in snap.hosts}  # no per-host axis
        assert len(svg.all("path")) == 2
        assert len(chart.all("table", "stats")) == 1
    assert len(page) < 200_000  # the steps table dominates, not the charts


def test_a_plan_for_another_snapshot_is_refused() -> None:
    snap = kronos.generate(hosts=6, vms=60, groups=2, seed=1)
    other = kronos.generate(hosts=6, vms=60, groups=2, seed=2)
    with pytest.raises(kronos.errors.DataError, match="made for snapshot sha256:"):
        build_report(other, kronos.plan(snap))


# -- the command --------------------------------------------------------------


@pytest.fixture(scope="module")
def matplotlib_or_fail() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("matplotlib (the png extra, in dev) required under CI=true", pytrace=False)
        pytest.skip("matplotlib not installed (pip install -e '.[png]')")


@pytest.mark.usefixtures("matplotlib_or_fail")
def test_cli_writes_the_page_and_the_pngs(spread: Any, tmp_path: Path) -> None:
    snap, plan = spread
    s, p, out, pngs = tmp_path / "s.json", tmp_path / "p.json", tmp_path / "r.html", tmp_path / "png"
    kronos.dump(snap, s)
    kronos.dump(plan, p)
    proc = kronos_cli("report", str(s), str(p), "-o", str(out), "--png", str(pngs))
    assert proc.returncode == 0, proc.stderr
    loaded = kronos.load_snapshot(s), kronos.load_plan(p)
    assert out.read_text() == render_html(build_report(*loaded))
    files = sorted(pngs.iterdir())
    assert [f.name for f in files] == sorted(render_pngs(build_report(*loaded)))
    assert len(files) == len(plan.summary.aggregates) * len(snap.enabled_policies)
    assert not [f for f in tmp_path.rglob(".*.tmp")]  # atomic writes leave no temporary file
    (tmp_path / "note.txt").write_text("a file, not a folder")
    on_a_file = kronos_cli(
        "report", str(s), str(p), "-o", str(tmp_path / "r2.html"), "--png", str(tmp_path / "note.txt")
    )
    assert on_a_file.returncode == 74 and "not a folder" in on_a_file.stderr, on_a_file.stderr
    assert not (tmp_path / "r2.html").exists()  # the bad folder is found before the page is written
    same = str(tmp_path / "same")
    twice = kronos_cli("report", str(s), str(p), "-o", same, "--png", same)
    assert twice.returncode == 64 and "the same file as -o" in twice.stderr and not Path(same).exists()
    unnamed = kronos_cli("report", str(s), str(p), "--png", "")
    assert unnamed.returncode == 64 and "names nothing" in unnamed.stderr, unnamed.stderr


def test_cli_refuses_a_plan_for_another_snapshot_naming_both_digests(tmp_path: Path) -> None:
    a = kronos.generate(hosts=6, vms=60, groups=2, seed=1)
    b = kronos.generate(hosts=6, vms=60, groups=2, seed=2)
    sa, sb, p, out = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "p.json", tmp_path / "r.html"
    kronos.dump(a, sa)
    kronos.dump(b, sb)
    kronos.dump(kronos.plan(kronos.load_snapshot(sa)), p)
    proc = kronos_cli("report", str(sb), str(p), "-o", str(out))
    assert proc.returncode == 65, proc.stderr
    digests = kronos.load_plan(p).snapshot_digest, kronos.load_snapshot(sb).digest
    assert all(d and d in proc.stderr for d in digests) and str(p) in proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()


def test_cli_stdout_usage_and_missing_input(spread: Any, tmp_path: Path) -> None:
    snap, plan = spread
    s, p = tmp_path / "s.json", tmp_path / "p.json"
    kronos.dump(snap, s)
    kronos.dump(plan, p)
    stdout = kronos_cli("report", str(s), str(p), "-o", "-")
    assert stdout.returncode == 0 and stdout.stdout.startswith("<!DOCTYPE html>")
    assert stdout.stdout.rstrip().endswith("</html>")
    nothing = kronos_cli("report", str(s), str(p))
    assert nothing.returncode == 64 and "-o FILE" in nothing.stderr
    missing = kronos_cli("report", str(tmp_path / "nope.json"), str(p), "-o", str(tmp_path / "r.html"))
    assert missing.returncode == 66 and "nope.json" in missing.stderr


def test_png_without_matplotlib_is_unavailable_69_and_writes_nothing(spread: Any, tmp_path: Path) -> None:
    snap, plan = spread
    s, p, out = tmp_path / "s.json", tmp_path / "p.json", tmp_path / "r.html"
    kronos.dump(snap, s)
    kronos.dump(plan, p)
    hide = "import sys; sys.modules['matplotlib'] = None; from kronos.cli import main; main()"
    proc = subprocess.run(
        [sys.executable, "-c", hide, "report", str(s), str(p), "-o", str(out), "--png", str(tmp_path / "d")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 69, proc.stderr
    assert "kronos-planner[png]" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists() and not (tmp_path / "d").exists()


# -- the PNG charts -----------------------------------------------------------


def _pixels(png: bytes) -> np.ndarray:
    from PIL import Image

    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(io.BytesIO(png)) as img:
        img.verify()
    with Image.open(io.BytesIO(png)) as img:
        return np.asarray(img.convert("RGB"))


def _colours(px: np.ndarray) -> int:
    """How many distinct colours (RGB packed into one integer: np.unique over rows is slow)."""
    rgb = px.astype(np.int32)
    return len(np.unique((rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]))


def _has_colour(px: np.ndarray, rgb: tuple[int, int, int], at_least: int) -> bool:
    return int((np.abs(px.astype(int) - rgb).sum(axis=2) <= 6).sum()) >= at_least


@pytest.mark.usefixtures("matplotlib_or_fail")
@pytest.mark.parametrize("which", ["spread", "large"])
def test_pngs_one_per_aggregate_and_policy_and_drawn(which: str, request: pytest.FixtureRequest) -> None:
    snap, plan = request.getfixturevalue(which)
    files = render_pngs(build_report(snap, plan))
    expected = [f"{a}--{p.name}.png" for a in plan.summary.aggregates for p in snap.enabled_policies]
    assert list(files) == expected
    for data in files.values():
        px = _pixels(data)
        assert px.shape[1] >= 600 and px.shape[0] >= 300
        assert _colours(px) > 20  # not blank
        assert _has_colour(px, AFTER_BLUE, 200)  # the "after" bars or curve are there
        assert _has_colour(px, (0xC5, 0x30, 0x30), 100)  # the max_host_score line


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        (  # (the plan's loader counts each aggregate's steps against its migrations)
            lambda d, a: (
                [x.update(migrations=0) for x in d["summary"]["aggregates"].values()] and d.update(steps=[])
            ),
            "summary.aggregates.{a}.imbalance_after.cpu-spread = ",
        ),
        (
            lambda d, a: d["summary"]["aggregates"][a]["imbalance_after"].update({"cpu-spread": -1}),
            "summary.aggregates.{a}.imbalance_after.cpu-spread = -1: the plan's steps, replayed on the",
        ),
        (
            lambda d, a: d["summary"]["aggregates"][a]["imbalance_after"].update({"bogus": 7}),
            "summary.aggregates.{a}.imbalance_after.bogus: no enabled policy of the snapshot",
        ),
        (
            lambda d, a: d["summary"]["aggregates"][a].update(combined_before=0.5),
            "combined_before = 0.5: the",
        ),
    ],
)
def test_a_summary_its_steps_do_not_give_is_refused(
    tmp_path: Path, edit: Callable[[dict[str, Any], str], Any], said: str
) -> None:
    """The page's table said the plan's figures and its charts the replayed ones: a plan edited
    by hand (steps removed, figures kept) drew a report that contradicted itself, exit 0."""
    snapshot = ROOT / "examples" / "snapshot.json"
    doc = json.loads((ROOT / "examples" / "plan.json").read_text())
    aggregate = doc["steps"][0]["aggregate"]
    edit(doc, aggregate)
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(doc))
    out = kronos_cli("report", str(snapshot), str(plan), "-o", str(tmp_path / "r.html"))
    assert out.returncode == 65 and said.format(a=aggregate) in out.stderr, out.stderr
    assert not (tmp_path / "r.html").exists()


@pytest.mark.usefixtures("matplotlib_or_fail")
def test_a_name_the_font_cannot_draw_is_no_warning(spread: Any) -> None:
    """matplotlib warned once per glyph its font lacks (a host named in Japanese, an emoji), each
    line with its own source path, on the operator's stderr; the chart draws them as boxes."""
    snap, _ = spread
    aggregate = snap.aggregates[0]
    named = attrs.evolve(aggregate, name="東京-🙂")
    snap = attrs.evolve(snap, aggregates=(named, *snap.aggregates[1:]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (the suite's own filters make a warning fail the test too)
        files = render_pngs(build_report(snap, kronos.plan(snap)))
    assert len(files) == len(snap.enabled_policies) * len(snap.aggregates) and all(files.values())


# -- a real browser -----------------------------------------------------------

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
)


class DevTools:
    """Chromium driven over the DevTools protocol on fds 3 (commands in) and 4 (replies out)."""

    def __init__(self, exe: str, profile: Path) -> None:
        cmd_r, cmd_w = os.pipe()
        out_r, out_w = os.pipe()
        # copies above 10 (close-on-exec), so the child's dup2 onto 3 and 4 cannot clobber them
        hi_r = fcntl.fcntl(cmd_r, fcntl.F_DUPFD_CLOEXEC, 10)
        hi_w = fcntl.fcntl(out_w, fcntl.F_DUPFD_CLOEXEC, 10)
        for fd in (cmd_r, out_w):
            os.close(fd)

        def wire() -> None:
            os.dup2(hi_r, 3)
            os.dup2(hi_w, 4)

        self.log = profile / "chromium.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                close_fds=False,
                preexec_fn=wire,  # only dup2 in the child; the test process forks no threads
            )
        os.close(hi_r)
        os.close(hi_w)
        self._out, self._in = cmd_w, out_r
        self._buf = b""
        self._id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> Any:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._out, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + 60
        while True:
            reply = self._next(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, method: str, session: str) -> dict[str, Any]:
        deadline = time.monotonic() + 60
        while True:
            for e in self.events:
                if e.get("method") == method and e.get("sessionId") == session:
                    return e
            self.events.append(self._next(deadline))

    def _next(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._in], [], [], left)[0]:
                raise TimeoutError(f"no answer from Chromium (see {self.log})")
            chunk = os.read(self._in, 1 << 20)
            if not chunk:
                raise RuntimeError(f"Chromium exited ({self.proc.poll()}); see {self.log}")
            self._buf += chunk
        raw, _, self._buf = self._buf.partition(b"\0")
        return json.loads(raw)  # type: ignore[no-any-return]

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (OSError, RuntimeError, TimeoutError):
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._out)
        os.close(self._in)


@attrs.frozen
class Loaded:
    counts: dict[str, int]
    scroll_width: int
    pixels: np.ndarray
    errors: list[str]
    requests: list[str]


def load(browser: DevTools, url: str, selectors: list[str], width: int = 1200, height: int = 1600) -> Loaded:
    """Open ``url`` in a new tab; count ``selectors``; screenshot; every error and request seen."""
    target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    try:
        for domain in ("Page", "Runtime", "Log", "Network"):
            browser.send(f"{domain}.enable", session=session)
        metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
        browser.send("Emulation.setDeviceMetricsOverride", metrics, session)
        browser.send("Page.navigate", {"url": url}, session)
        browser.wait_for("Page.loadEventFired", session)
        count = "s => [s, document.querySelectorAll(s).length]"
        js = (
            f"JSON.stringify({{counts: Object.fromEntries({json.dumps(selectors)}.map({count})),"
            " width: document.documentElement.scrollWidth})"
        )
        found = json.loads(browser.send("Runtime.evaluate", {"expression": js, "returnByValue": True}, session)[
            "result"
        ]["value"])  # fmt: skip
        shot = browser.send("Page.captureScreenshot", {"format": "png"}, session)["data"]
    finally:
        browser.send("Target.closeTarget", {"targetId": target})
    mine = [e for e in browser.events if e.get("sessionId") == session]
    browser.events = [e for e in browser.events if e.get("sessionId") != session]
    errors, requests = [], []
    for e in mine:
        m, p = e["method"], e["params"]
        if m == "Runtime.consoleAPICalled" and p["type"] in ("error", "assert", "warning"):
            errors.append(f"console.{p['type']}: {[a.get('value') for a in p['args']]}")
        elif m == "Runtime.exceptionThrown":
            details = p["exceptionDetails"]
            errors.append(f"{details.get('text')}: {details.get('exception', {}).get('description')}")
        elif m == "Log.entryAdded" and p["entry"]["level"] in ("error", "warning"):
            errors.append(f"log: {p['entry']['text']}")
        elif m == "Network.requestWillBeSent":
            requests.append(p["request"]["url"])
    return Loaded(found["counts"], found["width"], _pixels(base64.b64decode(shot)), errors, requests)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevTools]:
    """One headless Chromium for the module; tabs come and go per test."""

    def unavailable(why: str) -> None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"real Chromium required under CI=true: {why}", pytrace=False)
        pytest.skip(why)

    exe = shutil.which("chromium")
    if exe is None:
        unavailable("chromium not installed (apt-get install chromium)")
    assert exe is not None
    try:
        tools = DevTools(exe, tmp_path_factory.mktemp("chromium-profile"))
        tools.send("Browser.getVersion")
    except (OSError, RuntimeError, TimeoutError) as exc:
        unavailable(f"Chromium did not start: {exc}")
    yield tools
    tools.close()


def test_report_renders_in_chromium(browser: DevTools, evacuation: Any, spread: Any, tmp_path: Path) -> None:
    for snap, plan in (spread, evacuation):
        page = tmp_path / "report.html"
        page.write_text(render_html(build_report(snap, plan)))
        hosts = sum(len(aggregate_hosts(snap, a)) for a in plan.summary.aggregates if a != "_unassigned_")
        got = load(
            browser, page.as_uri(), ["figure.chart", "rect.ba", "tr.step", "tbody.wave", "section tr.vm"]
        )
        assert got.errors == []
        assert got.requests == [page.as_uri()]  # the page itself, nothing else
        assert got.counts == {
            "figure.chart": len(plan.summary.aggregates) * len(snap.enabled_policies),
            "rect.ba": hosts * len(snap.enabled_policies),
            "tr.step": len(plan.steps),
            "tbody.wave": len({s.wave for s in plan.steps}),
            "section tr.vm": len(plan.summary.unplaced)
            + len(plan.summary.not_selected or ())
            + len(not_movable(snap, plan)),
        }
        assert got.pixels.shape == (1600, 1200, 3)
        assert _colours(got.pixels) > 50  # not blank
        assert _has_colour(got.pixels, AFTER_BLUE, 1000)  # the bars were painted


def test_a_thousand_host_report_fits_the_window_in_chromium(
    browser: DevTools, large: Any, tmp_path: Path
) -> None:
    snap, plan = large
    page = tmp_path / "large.html"
    page.write_text(render_html(build_report(snap, plan)))
    got = load(browser, page.as_uri(), ["figure.chart", "svg text", "svg path", "tr.step"], width=1200)
    assert got.errors == [] and got.requests == [page.as_uri()]
    assert got.scroll_width <= 1200  # no 1 000-bar axis stretching the page
    assert got.counts["figure.chart"] == len(snap.enabled_policies)
    assert got.counts["svg path"] == 2 * len(snap.enabled_policies)
    assert got.counts["svg text"] < 30 * len(snap.enabled_policies)
    assert got.counts["tr.step"] == len(plan.steps)
    assert _has_colour(got.pixels, AFTER_BLUE, 500)


def test_the_browser_check_sees_console_errors_and_requests(browser: DevTools, tmp_path: Path) -> None:
    """The error collector is not vacuous: a broken page is caught on every channel."""
    page = tmp_path / "broken.html"
    page.write_text(
        '<!DOCTYPE html><html><body><p>x</p><img src="missing.png">'
        "<script>console.error('boom'); undefinedFunction();</script></body></html>"
    )
    got = load(browser, page.as_uri(), ["p"])
    text = " | ".join(got.errors)
    assert "console.error: ['boom']" in text and "undefinedFunction is not defined" in text
    assert "ERR_FILE_NOT_FOUND" in text and "missing.png" in " ".join(got.requests)
    assert got.counts == {"p": 1}


def test_png_files_go_through_a_symlink_and_keep_their_mode(tmp_path: Path) -> None:
    """The charts are written as every other file is: a link the operator made into the folder
    stays a link, and a chart made private stays private when it is written again."""
    real = tmp_path / "kept.png"
    real.write_bytes(b"old")
    real.chmod(0o600)
    folder = tmp_path / "png"
    folder.mkdir()
    (folder / "a.png").symlink_to(real)
    written = write_pngs({"a.png": b"\x89PNG new", "b.png": b"\x89PNG b"}, folder)
    assert written == [folder / "a.png", folder / "b.png"]
    assert (folder / "a.png").is_symlink() and real.read_bytes() == b"\x89PNG new"
    assert real.stat().st_mode & 0o777 == 0o600
    assert (folder / "b.png").read_bytes() == b"\x89PNG b"


def test_png_file_names_of_long_names_fit_and_stay_apart(tmp_path: Path) -> None:
    """Aggregate and policy names of 300 characters made a file name the file system refused
    (74); two names alike in their first hundred characters must still be two charts."""
    from kronos.report.png import _file_name

    long_a, long_b = "a" * 299 + "1", "a" * 299 + "2"
    taken: dict[str, bytes] = {}
    for aggregate in (long_a, long_b, long_a):
        taken[_file_name(taken, aggregate, "p" * 300)] = b"\x89PNG"
    names = list(taken)
    assert len(set(names)) == 3 and all(len(n.encode()) <= 210 for n in names)
    assert names[0].startswith("a" * 91 + "~") and names[2] == names[0].removesuffix(".png") + "-2.png"
    assert _file_name({}, "agg-01", "cpu spread") == "agg-01--cpu_spread.png"  # short names kept
    assert _file_name({}, "\udcff" * 150 + "a" * 150, "p").endswith("--p.png")  # hashed all the same
    written = write_pngs(taken, tmp_path / "png")
    assert [p.read_bytes() for p in written] == [b"\x89PNG"] * 3


def test_a_names_bidi_and_control_characters_are_shown_not_obeyed(spread: Any) -> None:
    """A right-to-left override in a name reached the page raw and reversed what followed it
    (the figures of a caption, a UUID); it is shown as the terminal shows it, ``\\u202e``."""
    snap, _ = spread
    odd = "vm\u202eevil\x1b"
    snap = attrs.evolve(snap, vms=tuple(attrs.evolve(v, name=odd) for v in snap.vms))
    page = render_html(build_report(snap, kronos.plan(snap)))
    assert "\u202e" not in page and "\x1b" not in page
    assert "vm\\u202eevil\\u001b" in page
