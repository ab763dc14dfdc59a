"""The first run says it is compiling; a warm one says nothing; ``kronos warm`` fills the cache."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest

from kronos.compile_notice import CompileNotice
from tests.conftest import kronos_cli


def _busy(seconds: float) -> None:
    """Spend CPU as a compile does (the notice counts CPU, not wall time)."""
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_a_slow_load_is_announced_and_timed() -> None:
    out = io.StringIO()
    with CompileNotice(out, tty=False, delay=0.05):
        _busy(0.5)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("kronos: compiling the planner's kernels once (usually")
    assert "kronos warm" in lines[0]
    assert lines[1].startswith("kronos: compiled in ") and lines[1].endswith(
        "later runs load them from the cache"
    )


def test_a_terminal_sees_the_seconds_count() -> None:
    out = io.StringIO()
    with CompileNotice(out, tty=True, delay=0.05):
        _busy(1.5)
    assert "\r\x1b[2K  compiling... 1 s" in out.getvalue()


def test_a_fast_load_says_nothing_however_long_it_waits() -> None:
    out = io.StringIO()
    with CompileNotice(out, tty=True, delay=0.5):
        time.sleep(1.0)  # a loaded machine: wall time passes, little CPU
    assert out.getvalue() == ""


def test_kronos_warm_readies_the_phases_asked() -> None:
    proc = kronos_cli("warm", "--phase", "affinity", "--phase", "spread")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("kernels of affinity, spread ready in ")
    bad = kronos_cli("warm", "--phase", "balance")
    assert bad.returncode == 64 and "Invalid value for '--phase'" in bad.stderr


def test_kronos_warm_refuses_a_cache_folder_numba_would_pass_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """numba caches beside the code when NUMBA_CACHE_DIR cannot be used: warm said "ready (cache:
    FILE)", exit 0, and the image it was building had no cache where it was asked for."""
    (tmp_path / "plain").write_text("")
    for given in (tmp_path / "plain", tmp_path / "plain" / "numba"):
        monkeypatch.setenv("NUMBA_CACHE_DIR", str(given))
        proc = kronos_cli("warm", "--phase", "affinity")
        assert proc.returncode == 78, proc.stdout + proc.stderr
        assert f"NUMBA_CACHE_DIR = '{given}': not a folder, and cannot be made one: " in proc.stderr
    made = tmp_path / "new" / "numba"
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(made))
    proc = kronos_cli("warm", "--phase", "affinity")
    assert proc.returncode == 0 and made.is_dir() and f"(cache: {made})" in proc.stdout, proc.stderr
