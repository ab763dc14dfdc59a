"""Whether the kernels run compiled by numba or as the plain Python they are written in.

The kernels are ordinary Python over numpy arrays; numba makes them fast.
That pays on a big world and costs on a small one: importing numba and
loading the cached kernels takes ~0.8 s of CPU on the project's 2-core
machine, and the very first run compiles for ~30 s, while the interpreter
plans the bundled example (24 hosts, 480 VMs) in ~0.15 s. Both ways give the
same plan, byte for byte (``tests/test_jit.py``).

The choice is made once per process, at the edge, before the first kernel
module is imported: the decorator below is applied at import time, so a
module compiled one way stays that way. The library default is compiled.
"""

from __future__ import annotations

import sys
from typing import Any

from kronos.errors import ConfigError

#: the modules whose functions :func:`njit` decorates
KERNEL_MODULES = ("kronos.core.kernels", "kronos.core.rules", "kronos.core.placement")

_interpreted = False


def interpret(on: bool = True) -> None:
    """Run the kernels as plain Python (``on``) or compiled, for the rest of the process.

    Raises RuntimeError once a kernel module has been imported the other way:
    silently keeping the old mode would make the choice a lie.
    """
    global _interpreted
    if on != _interpreted and imported():
        raise RuntimeError("kronos.core.jit.interpret() after the kernels were imported")
    _interpreted = on


def interpreted() -> bool:
    return _interpreted


def imported() -> bool:
    """Whether a kernel module is imported already (the mode is then fixed for this process)."""
    return any(m in sys.modules for m in KERNEL_MODULES)


def njit(**options: Any) -> Any:
    """``numba.njit(**options)``, or the function itself when interpreting (numba is not imported).

    Typed ``Any`` as numba's own is: the kernels are untyped (numba infers their types).
    """
    if _interpreted:
        return lambda f: f
    try:
        import numba
    except ValueError as exc:  # numba checks its NUMBA_* variables on import (NUMBA_NUM_THREADS=0)
        raise ConfigError(f"numba refuses to start: {exc} (see the NUMBA_* environment variables)") from None

    return numba.njit(**options)
