"""nox sessions: tests, lint, typecheck (default); tests-cli-process, bench, fuzz, sweep, simulate and
docs on demand."""

import os

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.default_venv_backend = "venv"


@nox.session
def tests(session: nox.Session) -> None:
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session(name="tests-cli-process")
def tests_cli_process(session: nox.Session) -> None:
    """The suite with every ``kronos`` command line in a process of its own, as an operator runs
    it (tests/conftest.py: kronos_cli runs them in the test process by default, ~1 s a call less)."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", *session.posargs, env={"TESTS_CLI_PROCESS": "1"})


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", "src", "tests", "benchmarks", "examples", "docs/hooks", "noxfile.py")
    session.run(
        "ruff", "format", "--check", "src", "tests", "benchmarks", "examples", "docs/hooks", "noxfile.py"
    )


@nox.session
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".[dev]")
    session.run("mypy")


@nox.session
def bench(session: nox.Session) -> None:
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", "benchmarks", "--benchmark-only", "-n", "0", *session.posargs)


@nox.session
def fuzz(session: nox.Session) -> None:
    """The document-loader fuzz suite at length: 3 000 examples per test (FUZZ_EXAMPLES to change)."""
    session.install("-e", ".[test]")
    examples = os.environ.get("FUZZ_EXAMPLES", "3000")
    session.run(
        "python",
        "-m",
        "pytest",
        "tests/test_fuzz_documents.py",
        "-n",
        "0",
        *session.posargs,
        env={"FUZZ_EXAMPLES": examples},
    )


@nox.session
def sweep(session: nox.Session) -> None:
    """The planner sweep at length: 3 000 generated snapshots in every mode (SWEEP_SNAPSHOTS to change).

    About 20 minutes on one core (0.3-0.4 s a snapshot); SWEEP_FIRST starts elsewhere than snapshot 0.
    """
    session.install("-e", ".[test]")
    snapshots = os.environ.get("SWEEP_SNAPSHOTS", "3000")
    session.run(
        "python",
        "-m",
        "pytest",
        "tests/test_sweep.py",
        "-s",
        "-n",
        "0",
        *session.posargs,
        env={"SWEEP_SNAPSHOTS": snapshots},
    )


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site, built as CI builds it (warnings are errors); ``-- serve`` to preview."""
    session.install("-e", ".[docs]")
    if session.posargs[:1] == ["serve"]:
        session.run("mkdocs", "serve", *session.posargs[1:])
    else:
        session.run("mkdocs", "build", "--strict", *session.posargs)


@nox.session
def simulate(session: nox.Session) -> None:
    """The reference table of docs/benchmarks.md ("Planning over time"): a simulated day, 3 seeds.

    About six minutes on one core; extra arguments go to ``python -m benchmarks.simulate``
    (``--config``, ``--scenario key=value``, ``--per-seed``).
    """
    session.install("-e", ".")
    args = session.posargs or [
        "--config",
        "off",
        "--config",
        "instant",
        "--config",
        "time-aware",
        "--config",
        "hindsight=2",
        "--config",
        "hindsight=3",
        "--config",
        "hindsight=2,sustained=1200",
        "--config",
        "hindsight=2,sustained=600",
        "--config",
        "hindsight=3,sustained=1200",
    ]
    session.run("python", "-m", "benchmarks.simulate", "--seeds", "3", *args)


@nox.session
def engines(session: nox.Session) -> None:
    """docs/benchmarks.md's engine table: one cycle over 200 aggregates × 50 hosts, 1, 2 and 4
    engines on a real etcd (Debian's etcd-server on PATH); extra arguments go to
    ``python -m benchmarks.engines``."""
    session.install("-e", ".[test,ha]")
    session.run("python", "-m", "benchmarks.engines", *session.posargs)
