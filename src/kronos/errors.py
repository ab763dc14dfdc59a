"""Every error Kronos raises on purpose, each carrying its sysexits code.

The CLI turns a ``KronosError`` into its message on stderr and its exit code;
anything else escaping is a bug (exit 70, traceback shown).

    KronosError                      exit 70 unless a subclass says otherwise
    ├── UsageError                   64  the command line is wrong
    ├── DataError                    65  an input document is wrong
    │   └── ValidationError          65  ... with the full list of problems
    ├── NoInputError                 66  an input file does not exist or cannot be read
    ├── UnavailableError             69  a service (Prometheus, Nova) cannot be reached
    ├── NotImplementedKronosError    70  a documented feature not built yet
    ├── KronosIOError                74  reading or writing a file failed
    ├── TemporaryFailure             75  try again later (e.g. the world drifted)
    ├── PermissionDenied             77  credentials lack a permission
    └── ConfigError                  78  kronos.conf / policies.yaml is wrong
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from kronos.core.validate import Issue


#: the problems a message lists: a document with thousands (a generated snapshot gone wrong)
#: would bury the first screenful, which is where the cause usually is
PROBLEMS_LISTED = 50


def problem_list(source: str, problems: Sequence[object]) -> str:
    """``source: N problem(s)`` and the first :data:`PROBLEMS_LISTED` of them, a line each."""
    lines = [f"{source}: {len(problems)} problem(s)", *(f"  {p}" for p in problems[:PROBLEMS_LISTED])]
    if len(problems) > PROBLEMS_LISTED:
        lines.append(f"  … and {len(problems) - PROBLEMS_LISTED} more")
    return "\n".join(lines)


class KronosError(Exception):
    """Base class; ``exit_code`` follows sysexits.h."""

    exit_code: ClassVar[int] = 70


class UsageError(KronosError):
    exit_code = 64


class UnknownAggregate(UsageError):
    """An aggregate to plan that the snapshot does not have; the caller knows who named it
    (a flag: 64; kronos.conf: the CLI says so, 78)."""


class DataError(KronosError):
    exit_code = 65


class ValidationError(DataError):
    """A document failed validation; ``issues`` holds every problem found (the message, the first
    :data:`PROBLEMS_LISTED`)."""

    def __init__(self, source: str, issues: Sequence[Issue]) -> None:
        self.source = source
        self.issues = list(issues)
        super().__init__(problem_list(source, self.issues))


class NoInputError(KronosError):
    exit_code = 66


class UnavailableError(KronosError):
    exit_code = 69


class NotImplementedKronosError(KronosError):
    exit_code = 70


class KronosIOError(KronosError):
    exit_code = 74


class TemporaryFailure(KronosError):
    exit_code = 75


class PermissionDenied(KronosError):
    exit_code = 77


class ConfigError(KronosError):
    exit_code = 78
