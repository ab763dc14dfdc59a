"""The same snapshot gives the same plan, byte for byte, whatever the CPU.

numpy's matrix products go to OpenBLAS, which picks a kernel for the CPU at
start-up, and its kernels sum in different orders: plans differed in the
last bit of their figures between an AVX-512 machine and an AVX2 one, and a
generated world's seed gave another world. ``OPENBLAS_CORETYPE`` makes one
machine run another CPU's kernels, so the difference is testable here.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kronos.core.arrays import weighted

ROOT = Path(__file__).resolve().parent.parent
#: kernels every x86-64 CPU runs (SSE3), and those of AVX2 and AVX-512 machines where this one can
CORETYPES = ("Prescott", "Haswell", "SkylakeX")
NEEDS = {"Prescott": "sse3", "Haswell": "avx2", "SkylakeX": "avx512f"}

#: a generated world (the generator's own means went through np.dot too) and its plans in two modes
SCRIPT = """
import hashlib, kronos
from kronos.files import render
snap = kronos.generate(hosts=40, vms=1500, groups=30, seed=5, aggregates=3, heterogeneous=True, overlapping=True)
out = [render(snap)]
for mode in ("spread", "pack"):
    out.append(render(kronos.plan(snap, mode=mode, budget=kronos.UNLIMITED)))
print(hashlib.sha256("".join(out).encode()).hexdigest())
"""


def _coretypes() -> list[str]:
    if platform.machine() != "x86_64":
        return []
    flags = set(Path("/proc/cpuinfo").read_text().split()) if Path("/proc/cpuinfo").exists() else set()
    return [c for c in CORETYPES if NEEDS[c] in flags]


def test_plans_do_not_depend_on_the_blas_kernel() -> None:
    kinds = _coretypes()
    if len(kinds) < 2:
        pytest.skip("needs an x86-64 CPU with AVX2 (OPENBLAS_CORETYPE picks another CPU's kernels)")
    digests = {}
    for kind in kinds:
        env = {**os.environ, "OPENBLAS_CORETYPE": kind}
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT], env=env, cwd=ROOT, capture_output=True, text=True, check=True
        )
        digests[kind] = done.stdout.strip()
    assert len(set(digests.values())) == 1, digests


@pytest.mark.parametrize("shape", [(3,), (7, 2), (50, 3), (4, 6, 5)])
def test_weighted_is_the_sum_in_index_order(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(len(shape))
    x = rng.uniform(0, 1, shape)
    w = rng.uniform(0, 1, shape[-1])
    got = weighted(x, w)
    want = np.zeros(shape[:-1])
    for index in np.ndindex(*shape[:-1]):
        total = 0.0
        for j in range(shape[-1]):
            total += float(x[index][j]) * float(w[j])
        want[index] = total
    assert got.shape == want.shape
    assert hashlib.sha256(got.tobytes()).digest() == hashlib.sha256(want.tobytes()).digest()
