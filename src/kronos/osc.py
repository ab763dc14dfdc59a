"""``openstack kronos …``: Kronos as a python-openstackclient plugin (the ``osc`` extra).

Operators live in the ``openstack`` client; Watcher ships ``openstack
optimize …``. Each command here is the ``kronos`` command of the same name,
run in the client's process with the same arguments, so there is one
implementation and one set of options: ``openstack kronos plan SNAPSHOT -f
value -c instance`` is ``kronos plan SNAPSHOT -f value -c instance``. The
client's ``--os-cloud`` and ``--os-region-name`` (and ``OS_CLOUD``,
``OS_REGION_NAME``) reach the commands that talk to the cloud; Kronos makes
its own connection, so the client authenticates nothing itself.
"""

from __future__ import annotations

import argparse
from typing import Any, ClassVar

from osc_lib.command import command

#: the plugin interface python-openstackclient reads (``openstack.cli.extension``)
API_NAME = "kronos"
API_VERSION_OPTION = "os_kronos_api_version"
DEFAULT_API_VERSION = "1"
API_VERSIONS = ("1",)


def make_client(instance: Any) -> None:
    """No client object: every command runs Kronos's own code, which connects itself."""
    return None


def build_option_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    return parser


class _Passthrough(argparse.ArgumentParser):
    """Hands every argument to the ``kronos`` command untouched; its help is that command's."""

    def __init__(self, prog: str, kronos_args: tuple[str, ...]) -> None:
        super().__init__(prog=prog, add_help=False)
        self.kronos_args = kronos_args

    def parse_args(self, args: Any = None, namespace: Any = None) -> Any:
        return argparse.Namespace(args=list(args or ()))

    def format_help(self) -> str:
        from click.testing import CliRunner

        from kronos.cli import cli

        shown = CliRunner().invoke(
            cli,
            [*self.kronos_args, "--help"],
            prog_name=self.prog.removesuffix(" ".join(self.kronos_args)).strip() or "kronos",
        )
        return shown.output


class _Kronos(command.Command):
    """Base: run ``kronos <kronos_args> ARGS`` in this process; its exit code is the command's."""

    auth_required = False  # Kronos connects itself, with the client's --os-cloud/--os-region-name
    kronos_args: ClassVar[tuple[str, ...]] = ()
    #: the command reads the cloud: it takes --os-cloud and --os-region-name
    cloud: ClassVar[bool] = False

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        return _Passthrough(prog_name, self.kronos_args)

    def take_action(self, parsed_args: argparse.Namespace) -> int:
        from kronos.cli import embedded

        argv = [*self.kronos_args, *parsed_args.args]
        if self.cloud:
            options = self.app.options
            for flag, value in (
                ("--os-cloud", getattr(options, "cloud", None)),
                ("--os-region-name", getattr(options, "region_name", None)),
            ):
                given = any(a == flag or a.startswith(f"{flag}=") for a in argv)  # the user's wins
                if value and not given:
                    argv += [flag, value]
        return embedded(argv)


def _command(name: str, doc: str, *, cloud: bool = False) -> type[_Kronos]:
    args = tuple(name.split())
    return type(
        name.title().replace(" ", "").replace("-", ""),
        (_Kronos,),
        {"__doc__": doc, "__module__": __name__, "kronos_args": args, "cloud": cloud},
    )


Plan = _command("plan", "Plan migrations for SNAPSHOT (kronos plan)")
Evacuate = _command("evacuate", "Plan rebuilding the VMs of failed hosts elsewhere (kronos evacuate)")
Drain = _command("drain", "Plan live-migrating every movable VM off hosts (kronos drain)")
Explain = _command("explain", "Why a VM moved or stayed, why a host was chosen (kronos explain)")
Show = _command("show", "Print a plan's steps and summary (kronos show)")
Plans = _command("plans", "List the plans a dry-run engine saved (kronos plans)")
Validate = _command("validate", "Check a snapshot against the contract (kronos validate)")
Record = _command("record", "Read Nova and Prometheus and write a snapshot (kronos record)", cloud=True)
Execute = _command("execute", "Carry out a plan through Nova (kronos execute)", cloud=True)
CheckConfig = _command(
    "check-config", "Validate kronos.conf, reach Prometheus and Nova (kronos check-config)", cloud=True
)
Scores = _command("scores", "Host scores and imbalance from Prometheus, per aggregate (kronos scores)")
StateShow = _command("state show", "List VMs and aggregates in cooldown or quarantine (kronos state show)")
StateRelease = _command("state release", "Lift a VM's quarantine and cooldown (kronos state release)")
StateRecordResult = _command(
    "state record-result", "Feed back a migration outcome (kronos state record-result)"
)
