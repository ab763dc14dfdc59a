"""The kernels interpreted (plain Python) and compiled by numba give the same plans, byte for byte.

``kronos`` runs small snapshots interpreted (kronos.core.jit): loading numba
costs more than such a plan. That is only sound if nothing in a plan depends
on the way the kernels ran; this holds both ways to the sweep's snapshots and
modes (tests/test_sweep.py), every mode and FORMATS §4–5 field included.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

import kronos
from kronos.cli import cli, run
from kronos.core import jit
from kronos.files import render
from tests.test_sweep import case, modes, without_thresholds

ROOT = Path(__file__).resolve().parent.parent
#: the sweep's snapshots 0-11 but 4, an evacuable one whose plans took 9 of the 20 s interpreted;
#: the sweep's evacuable 57 (same shape: two aggregates, two failed hosts, slack 0.3) and 100 (no
#: slack) take its place in well under a second
CASES = (*range(4), *range(5, 12), 57, 100)

#: plans every case in every mode, as tests/test_sweep.py would, with the kernels interpreted
INTERPRETED = """
import json, random, sys
from kronos.core import jit
jit.interpret()
from kronos.files import render
from tests.test_sweep import case, modes, without_thresholds
out = {}
for i in json.loads(sys.argv[1]):
    snap = case(i).snapshot()
    for k, mode in enumerate(modes(snap, random.Random(f"kronos-sweep-options-{i}"))):
        out[f"{i}/{k}"] = render(mode.run(without_thresholds(snap) if mode.zero_thresholds else snap))
out["numba imported"] = "numba" in sys.modules
print(json.dumps(out))
"""


def _compiled() -> dict[str, str]:
    out = {}
    for i in CASES:
        snap = case(i).snapshot()
        for k, mode in enumerate(modes(snap, random.Random(f"kronos-sweep-options-{i}"))):
            out[f"{i}/{k}"] = render(mode.run(without_thresholds(snap) if mode.zero_thresholds else snap))
    return out


def test_interpreted_kernels_plan_what_compiled_ones_plan_and_never_load_numba() -> None:
    assert not jit.interpreted()
    # the interpreted plans in a process of their own while this one plans compiled beside it
    proc = subprocess.Popen(
        [sys.executable, "-c", INTERPRETED, json.dumps(list(CASES))],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        compiled = _compiled()
    finally:
        stdout, stderr = proc.communicate()
    assert proc.returncode == 0, stderr
    interpreted = json.loads(stdout)
    assert interpreted.pop("numba imported") is False
    assert len(compiled) > 8 * len(CASES)
    different = [key for key in compiled if interpreted.get(key) != compiled[key]]
    assert not different, f"plans differ between interpreted and compiled kernels: {different[:10]}"


def test_switching_after_the_kernels_are_imported_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    import kronos.core.kernels  # noqa: F401  (this process plans compiled)

    with pytest.raises(RuntimeError, match="after the kernels were imported"):
        jit.interpret()
    jit.interpret(False)  # the mode they have: fine
    code = run(cli.main, ["--jit", "never", "plan", str(ROOT / "examples/snapshot.json")])
    assert code == 64
    assert "--jit never: the kernels are already loaded the other way here" in capsys.readouterr().err


@pytest.mark.parametrize(("args", "numba"), [((), False), (("--jit", "always"), True)])
def test_auto_runs_the_example_without_numba_and_always_compiles(
    tmp_path: Path, args: tuple[str, ...], numba: bool
) -> None:
    out = tmp_path / "plan.json"
    probe = (
        "import atexit, sys; atexit.register(lambda: print('numba' in sys.modules, file=sys.stderr)); "
        "from kronos.cli import main; main(sys.argv[1:])"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, *args, "plan", str(ROOT / "examples/snapshot.json"), "-o", str(out)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1] == str(numba)
    snap = kronos.load_snapshot(ROOT / "examples/snapshot.json")
    assert json.loads(out.read_text()) == json.loads(render(kronos.plan(snap)))


#: every mode planned once in a fresh process; prints each kernel's compiled signatures
SIGNATURES = """
import json, numba, kronos
from kronos.core import kernels, placement, rules
snap = kronos.generate(hosts=12, vms=200, groups=8, seed=3, down=1, pinned=0.2, numa=2, traits=0.3)
up = [h.name for h in snap.hosts if h.up]
kronos.plan(snap, mode="spread", budget="unlimited", enforce_hard_affinity=True, enforce_soft_affinity=True)
kronos.plan(snap, mode="pack", budget="unlimited")
kronos.evacuate(snap, hosts=[h.name for h in snap.hosts if not h.up])
kronos.drain(snap, hosts=up[:1], cold_migrate_stopped=True)
print(json.dumps({
    f"{m.__name__}.{name}": [str(s) for s in f.signatures]
    for m in (kernels, rules, placement)
    for name, f in vars(m).items()
    if isinstance(f, numba.core.registry.CPUDispatcher)
}))
"""


def test_every_kernel_compiles_one_signature_whatever_the_mode() -> None:
    """Each extra signature is a second compile of the kernel on a first run (issue 21). A fresh
    process: the tests of single kernels call them with other argument types on purpose."""
    done = subprocess.run([sys.executable, "-c", SIGNATURES], capture_output=True, text=True, check=True)
    signatures = json.loads(done.stdout)
    assert sum(bool(s) for s in signatures.values()) >= 10  # the modes ran compiled
    assert {name: s for name, s in signatures.items() if len(s) > 1} == {}


def test_numba_refusing_its_environment_is_a_configuration_error() -> None:
    """NUMBA_NUM_THREADS=0 made numba's import raise ValueError: "internal error (a bug)" (70)."""
    import os

    done = subprocess.run(
        [sys.executable, "-c", "from kronos.cli import main; main()", "--jit", "always", "plan",
         str(ROOT / "examples/snapshot.json")],
        capture_output=True, text=True, env={**os.environ, "NUMBA_NUM_THREADS": "0"},
    )  # fmt: skip
    assert done.returncode == 78, done.stderr
    assert "numba refuses to start: Number of threads specified must be > 0" in done.stderr
    assert "NUMBA_*" in done.stderr and "Traceback" not in done.stderr
