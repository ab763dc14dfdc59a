"""The original Kronos's command names, as thin aliases of ``kronos`` subcommands.

The original shipped five console scripts that took ``--config-file``.
Each function here is one of them: it runs the matching ``kronos``
subcommand, whose own ``--config`` option is also spelled ``--config-file``
(a second name added to that option, not a second definition), so options,
help, checks and exit codes are the subcommand's; the ``kronos`` group's
logging options (``-v``, ``--debug``, ``--log-file``) are taken too. What differs from the
original (no message queue: the executor carries out a plan file; record
writes one snapshot file) is in ``docs/migration.md``.
"""

from __future__ import annotations

import copy
import sys
from typing import Any, Final

import click

from kronos.terminal import echo

#: the original's console script → the ``kronos`` subcommand it runs
ALIASES: Final = {
    "kronos-engine": "run",
    "kronos-executor": "execute",
    "kronos-test-config": "check-config",
    "kronos-record": "record",
    "kronos-replay": "replay",
}

#: the original's flags that have no counterpart, and what to do instead (exit 64, no parsing)
_GONE: Final = {
    "kronos-executor": {
        "--aggregate": "the original executor consumed an aggregate's RabbitMQ queue",
        "--unassigned": "the original executor consumed the unassigned pool's RabbitMQ queue",
    },
}
_INSTEAD: Final = {
    "kronos-executor": "Kronos has no queue: it carries out a plan file, "
    "kronos-executor --config-file kronos.conf PLAN (docs/migration.md)",
}


def command(name: str) -> click.Command:
    """The subcommand behind the alias ``name``, its ``--config`` also spelled ``--config-file``.

    A copy: ``kronos <subcommand>`` itself is left as it is.
    """
    from kronos.cli import cli

    original = cli.commands[ALIASES[name]]
    assert original.callback is not None and cli.callback is not None
    sub, group = original.callback, cli.callback
    # the group's own options (-v, --debug, --log-file; not --version), which `kronos -v SUB` gives
    shared = [p for p in cli.params if p.name != "version"]
    names = [p.name for p in shared]

    def callback(**kwargs: Any) -> Any:
        group(**{n: kwargs.pop(n) for n in names})  # what `kronos` does before any subcommand
        return sub(**kwargs)

    cmd = copy.copy(original)
    cmd.params = [*(_also_config_file(p) for p in original.params), *shared]
    cmd.callback = callback
    # `kronos SUB -h` gets -h from the group; a command run on its own needs it said
    cmd.context_settings = {**original.context_settings, "help_option_names": ["-h", "--help"]}
    return cmd


def _also_config_file(param: click.Parameter) -> click.Parameter:
    if not isinstance(param, click.Option) or "--config" not in param.opts:
        return param
    widened = copy.copy(param)
    widened.opts = [*param.opts, "--config-file"]
    return widened


def _gone(name: str, argv: list[str]) -> str | None:
    for arg in argv:
        if arg == "--":
            break
        flag = arg.partition("=")[0]
        why = _GONE.get(name, {}).get(flag)
        if why:
            return f"{name}: {flag}: {why}; {_INSTEAD[name]}"
    return None


def _run(name: str) -> None:
    from kronos.cli import main

    argv = sys.argv[1:]
    gone = _gone(name, argv)
    if gone:
        echo(gone, err=True)
        sys.exit(64)
    main(argv, command(name), name)


def engine() -> None:
    """``kronos-engine``: ``kronos run``, the engine loop."""
    _run("kronos-engine")


def executor() -> None:
    """``kronos-executor``: ``kronos execute PLAN``."""
    _run("kronos-executor")


def check_config() -> None:
    """``kronos-test-config``: ``kronos check-config`` (configuration, then Prometheus and Nova)."""
    _run("kronos-test-config")


def record() -> None:
    """``kronos-record``: ``kronos record -o SNAPSHOT``."""
    _run("kronos-record")


def replay() -> None:
    """``kronos-replay``: ``kronos replay SNAPSHOT`` (= ``kronos plan``)."""
    _run("kronos-replay")
