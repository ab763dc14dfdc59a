"""The commands that talk to the cloud: ``record``, ``replay``, ``check-config``.

Kept apart from :mod:`kronos.cli` (the offline commands) so each module has
one job; :mod:`kronos.cli` registers them on the ``kronos`` group.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import click

from kronos.errors import ConfigError, KronosError, UsageError

OS_CLOUD = click.option(
    "--os-cloud", "os_cloud", envvar="OS_CLOUD", help="clouds.yaml entry (overrides [nova] cloud)"
)


def _config(path: str | None, require_scope: bool) -> Any:
    from kronos.adapters.config import load_config

    return load_config(path, os.environ, require_scope=require_scope)


def _at(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    from kronos.core.convert import parse_time

    try:
        return datetime.fromtimestamp(float(text), UTC)
    except ValueError:
        pass
    try:
        return parse_time(text)
    except ValueError as exc:
        raise UsageError(f"--at {text!r}: not an RFC 3339 time or Unix seconds") from exc


@click.command()
@click.option("--config", "config_path", required=True, help="kronos.conf")
@click.option(
    "--aggregate", "aggregates", multiple=True, help="record this aggregate (default: [engine] aggregates)"
)
@click.option("--at", "at_text", help="evaluation time, RFC 3339 or Unix seconds (default: now)")
@OS_CLOUD
@click.option("-o", "--output", required=True, help="snapshot file (.json/.yaml, - for stdout)")
def record(
    config_path: str, aggregates: tuple[str, ...], at_text: str | None, os_cloud: str | None, output: str
) -> None:
    """Read Nova and Prometheus at one instant and write a snapshot.

    Hosts with untrustworthy Prometheus data are left out (with their VMs) and
    aggregates below [prometheus] min_host_coverage are marked skipped; both
    are recorded with the reasons in the snapshot's ``source``.
    """
    import kronos
    from kronos.adapters.nova import NovaReader, connect
    from kronos.adapters.prometheus import PrometheusClient
    from kronos.adapters.record import record as take

    config = _config(config_path, require_scope=not aggregates)
    at = _at(at_text)
    reader = NovaReader(connect(config.nova, os_cloud))
    snap = take(config, reader, PrometheusClient.from_config(config.prometheus), at, aggregates or None)
    kronos.dump(snap, output)
    src = snap.source or {}
    click.echo(
        f"recorded {len(snap.aggregates)} aggregate(s), {len(snap.hosts)} hosts, {len(snap.vms)} VMs, "
        f"{len(snap.server_groups)} server groups ({src.get('nova_calls')} Nova/Placement calls)",
        err=True,
    )
    for host, why in (src.get("excluded_hosts") or {}).items():
        click.echo(f"  left out {host}: {why}", err=True)
    for agg, why in (src.get("skip_aggregates") or {}).items():
        click.echo(f"  skipped {agg}: bad data: {why}", err=True)


class Checks:
    """The pass/fail list ``check-config`` prints; the first failure decides the exit code."""

    def __init__(self) -> None:
        self.code = 0

    def run(self, name: str, check: Callable[[], str]) -> Any:
        try:
            detail = check()
        except KronosError as exc:
            click.echo(f"FAIL  {name}: {exc}")
            self.code = self.code or exc.exit_code
            return False
        click.echo(f"PASS  {name}: {detail}")
        return True


@click.command("check-config")
@click.option("--config", "config_path", required=True, help="kronos.conf")
@click.option(
    "--at", "at_text", help="query Prometheus at this time, RFC 3339 or Unix seconds (default: now)"
)
@OS_CLOUD
def check_config(config_path: str, at_text: str | None, os_cloud: str | None) -> None:
    """Validate kronos.conf and policies.yaml, reach Prometheus and Nova, check permissions.

    Admin rights (needed to migrate when [engine] dry_run = false) are
    inferred from admin-only reads; nothing is migrated to find out.
    """
    checks = Checks()
    holder: dict[str, Any] = {}

    def config() -> str:
        holder["config"] = c = _config(config_path, require_scope=True)
        pols = ", ".join(p.name for p in c.policies if p.enabled)
        return f"{c.source} and its policies ({pols}); aggregates {', '.join(c.scope)}"

    if not checks.run("configuration", config):
        raise SystemExit(checks.code)
    c = holder["config"]

    def prometheus() -> str:
        from kronos.adapters.prometheus import PrometheusClient
        from kronos.adapters.scores import read_policies

        readings = read_policies(PrometheusClient.from_config(c.prometheus), c.policies, _at(at_text))
        failed = [f"{n}: {r.error}" for n, r in readings.items() if r.error]
        failed += [f"{n}: the query returned no host series" for n, r in readings.items() if not r.values]
        if failed:
            raise ConfigError("; ".join(failed))
        return f"{c.prometheus.url}: " + ", ".join(f"{n} {len(r.hosts)} hosts" for n, r in readings.items())

    checks.run("prometheus", prometheus)

    from kronos.adapters.nova import NovaReader, connect

    reader = NovaReader(connect(c.nova, os_cloud))

    def aggregates() -> str:
        found = {a.name: a for a in reader.aggregates()}
        missing = [a for a in (c.engine.options.aggregates or ()) if a not in found]
        if missing:
            raise ConfigError(
                f"aggregate {missing[0]!r} not in Nova (known: {', '.join(sorted(found)) or 'none'})"
            )
        return f"{len(found)} aggregate(s) readable, the configured ones present"

    def services() -> str:
        s = reader.services()
        return f"{len(s)} compute services ({sum(1 for v in s.values() if v.up)} up)"

    def hypervisors() -> str:
        return f"{len(reader.capacity())} compute hosts with Placement inventories"

    def groups() -> str:
        return f"{len(reader.server_groups())} server groups visible"

    ok = all(
        [
            checks.run("nova aggregates", aggregates),
            checks.run("nova compute services", services),
            checks.run("nova hypervisors + placement", hypervisors),
            checks.run("nova server groups", groups),
        ]
    )
    if ok:
        need = (
            "needed: [engine] dry_run = false" if not c.engine.dry_run else "not needed while dry_run = true"
        )
        click.echo(
            f"PASS  admin: inferred from the admin-only reads above, nothing migrated to find out ({need})"
        )
    elif not c.engine.dry_run:
        click.echo(
            "FAIL  admin: not inferred (an admin-only read failed); [engine] dry_run = false needs admin"
        )
    click.echo("check-config: " + ("passed" if checks.code == 0 else "FAILED"))
    if checks.code:
        raise SystemExit(checks.code)
