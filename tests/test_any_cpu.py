"""The same snapshot gives the same plan, byte for byte, whatever the CPU.

numpy's matrix products go to OpenBLAS, which picks a kernel for the CPU at
start-up, and its kernels sum in different orders: plans differed in the
last bit of their figures between an AVX-512 machine and an AVX2 one, and a
generated world's seed gave another world. numpy picks its own code by CPU
too (its AVX-512 ``exp`` differs from libm's in the last bit).
``OPENBLAS_CORETYPE`` and ``NPY_DISABLE_CPU_FEATURES`` make one machine run
another CPU's code, so the differences are testable here.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kronos.core.arrays import weighted
from tests.conftest import ROOT

#: kernels every x86-64 CPU runs (SSE3), and those of AVX2 and AVX-512 machines where this one can
CORETYPES = ("Prescott", "Haswell", "SkylakeX")
NEEDS = {"Prescott": "sse3", "Haswell": "avx2", "SkylakeX": "avx512f"}

#: a generated world (the generator's own means went through np.dot, its host heat through exp)
#: and its plans in two modes
SCRIPT = """
import hashlib, kronos
from kronos.files import render
from kronos.testing import with_history
snap = kronos.generate(hosts=40, vms=1500, groups=30, seed=5, aggregates=3, heterogeneous=True,
                       overlapping=True, skew=0.8)
snap = with_history(snap, 31, 5)
out = [render(snap)]
for mode in ("spread", "pack"):
    out.append(render(kronos.plan(snap, mode=mode, budget=kronos.UNLIMITED)))
print(hashlib.sha256("".join(out).encode()).hexdigest())
"""


def _numpy_avx512() -> str:
    """numpy's AVX-512 code paths this CPU runs, as NPY_DISABLE_CPU_FEATURES names them ("": none)."""
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    return " ".join(
        f for f in __cpu_dispatch__ if __cpu_features__.get(f) and ("AVX512" in f or f == "X86_V4")
    )


def _digest(env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env={**os.environ, **env}, cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def _coretypes() -> list[str]:
    if platform.machine() != "x86_64":
        return []
    flags = set(Path("/proc/cpuinfo").read_text().split()) if Path("/proc/cpuinfo").exists() else set()
    return [c for c in CORETYPES if NEEDS[c] in flags]


def test_plans_do_not_depend_on_the_blas_kernel() -> None:
    kinds = _coretypes()
    if len(kinds) < 2:
        pytest.skip("needs an x86-64 CPU with AVX2 (OPENBLAS_CORETYPE picks another CPU's kernels)")
    digests = {kind: _digest({"OPENBLAS_CORETYPE": kind}) for kind in kinds}
    assert len(set(digests.values())) == 1, digests


def test_plans_do_not_depend_on_numpys_avx512_code() -> None:
    avx512 = _numpy_avx512()
    if not avx512:
        pytest.skip("needs a CPU on which numpy runs AVX-512 code")
    assert _digest({}) == _digest({"NPY_DISABLE_CPU_FEATURES": avx512})


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
    assert got.tobytes() == want.tobytes()  # bit for bit
