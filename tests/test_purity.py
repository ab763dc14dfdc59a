"""kronos.core must stay free of I/O libraries: it is the h11-style pure part."""

import subprocess
import sys


def test_core_imports_no_io_library() -> None:
    code = (
        "import sys, kronos.core.planner, kronos.testing;"
        "bad = [m for m in ('requests', 'openstack', 'click', 'urllib3', 'keystoneauth1')"
        " if m in sys.modules]; print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_kronos_help_does_not_load_numba() -> None:
    code = "import sys, kronos.cli; print('numba' in sys.modules, 'numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
