"""kronos.conf: the daemon settings, INI as in the original Kronos.

One loader for the file, the environment (``KRONOS_<SECTION>_<OPTION>``, as
the load-leveller seed configured everything) and nothing else: the core
never reads either, the CLI calls :func:`load_config` once and hands the
result on. Everything is checked up front and every problem is reported at
once (exit 78), naming the file, line, section and key (or the variable),
and for an unknown key the nearest valid one. A file that is missing or
cannot be read is exit 66, as for every other input file.

Secrets live in :class:`Secret`, whose ``repr`` and ``str`` never show the
value, so a logged or printed config is safe; no message quotes a secret's
value or a line the file could not parse (it may be a password), and URLs
pass through :func:`kronos.redact.redact` before they are shown.
"""

from __future__ import annotations

import configparser
import importlib.metadata
import math
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlparse, urlsplit

import attrs
from attrs import field, frozen

from kronos.core.model import UNASSIGNED, Policy
from kronos.core.options import (
    MAX_SECONDS,
    OPTION_NAMES,
    PlannerOptions,
    coerce,
    did_you_mean,
    make_options,
    nearest,
)
from kronos.errors import ConfigError, DataError, KronosError, KronosIOError, NoInputError, problem_list
from kronos.files import read_bounded, shared_file, unmakeable_folder, unwritable_file
from kronos.redact import redact

ENV_PREFIX = "KRONOS_"
#: ``[nova:NAME]``: the Nova of cloud NAME, for the cross-cloud steps of a federation plan
CLOUD_PREFIX = "nova:"
DAY = 86400.0


@frozen
class Secret:
    """A password or token: usable by adapters, invisible in output."""

    value: str = field(repr=False)

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


@frozen
class EngineConfig:
    #: ``kronos run``: seconds between two cycles
    evaluation_interval: float = 60.0
    #: the ``kronos run`` loop only plans (logs the plan) unless this is false
    dry_run: bool = True
    #: the policies (YAML; relative paths: from this file's folder)
    policies_file: str = "policies.yaml"
    #: also manage ``_unassigned_``, the hosts in no aggregate (with or instead of ``aggregates``)
    include_unassigned_hosts: bool = False
    #: ``kronos run``: cooldowns and quarantines between cycles (relative paths: from this file's folder)
    state_file: str = "kronos-state.json"
    #: ``kronos run``: held while running, so two engines never act on the same aggregates
    lock_file: str = "kronos.lock"
    #: ``kronos run``: JSON log lines (empty: standard output)
    log_file: str = ""
    #: ``kronos run``: step outcomes as ``kronos execute --results`` writes them (empty: none)
    results_file: str = ""
    #: ``kronos run`` in dry run: every plan with steps is saved here, one file per aggregate and
    #: cycle, for an operator to read (``kronos plans``) and approve (``kronos execute FILE``)
    plan_dir: str = ""
    #: ``kronos run`` and ``kronos execute``: append-only, fsynced JSON lines of every decision that
    #: changes the cloud or the state (plans, steps, cooldowns, quarantines), with who (empty: none)
    audit_file: str = ""
    #: FORMATS §5: seconds of each policy's score (and VM profile) history the recorder reads
    #: (one range query per policy and kind, ending at the snapshot's time; 0: no history)
    history_window: float = 1800.0
    #: seconds between two history samples; history_window must be a multiple of it
    history_step: float = 60.0
    #: every planner option (aggregates, cooldowns, min_load, ...), same names as ``--set``
    options: PlannerOptions = field(factory=PlannerOptions)


def _shown(url: str | None) -> str:
    """A URL field's repr: its user-info may be a password."""
    return repr(redact(url) if url else url)


@frozen
class PrometheusConfig:
    #: the Prometheus HTTP API's base URL
    url: str = field(default="http://localhost:9090", repr=_shown)
    #: seconds per HTTP request
    timeout: float = 10.0
    #: verify the server's TLS certificate
    verify: bool = True
    #: a CA bundle to verify it with (empty: the system's)
    ca_file: str | None = None
    #: a file holding a bearer token (not with username)
    bearer_token_file: str | None = None
    #: basic auth: give both username and password, or neither
    username: str | None = None
    #: basic auth's password (a secret: never shown)
    password: Secret | None = None
    #: connection errors are retried this many times, backoff doubling from retry_backoff seconds
    retries: int = 3
    #: seconds before the first retry of a connection error
    retry_backoff: float = 0.5
    #: a host whose newest sample (policy freshness_query) is older than this is stale
    max_sample_age: float = 180.0
    #: fraction of an aggregate's up hosts that must have valid data, else the aggregate is skipped
    min_host_coverage: float = 1.0


@frozen
class NovaConfig:
    #: a clouds.yaml entry (openstacksdk's convention); or the explicit fields below
    cloud: str | None = None
    #: explicit auth: password, v3password, v3applicationcredential, admin_token or token
    auth_type: str = "password"
    #: Keystone's URL (explicit auth; not with cloud)
    auth_url: str | None = field(default=None, repr=_shown)
    #: with password, for the password auth types
    username: str | None = None
    #: a secret: never shown
    password: Secret | None = None
    #: the project to scope the token to
    project_name: str | None = None
    #: the user's domain
    user_domain_name: str = "Default"
    #: the project's domain
    project_domain_name: str = "Default"
    #: with application_credential_secret, for v3applicationcredential
    application_credential_id: str | None = None
    #: a secret: never shown
    application_credential_secret: Secret | None = None
    #: for auth_type = admin_token / token
    token: Secret | None = None
    #: the region of the service catalog to use
    region_name: str | None = None
    #: the catalog endpoint interface: public, internal or admin
    interface: str = "public"
    #: skip the service catalog (split networks, or a Nova without Keystone)
    compute_endpoint_override: str | None = field(default=None, repr=_shown)
    #: likewise for Placement
    placement_endpoint_override: str | None = field(default=None, repr=_shown)
    #: a CA bundle to verify Keystone, Nova and Placement with
    cacert: str | None = None
    #: verify their TLS certificates
    verify: bool = True
    #: seconds per HTTP request; a Nova that does not answer in time counts as a transient failure
    timeout: float = 30.0
    #: servers carrying this tag are never moved (``migratable: false``)
    pinned_tag: str = "kronos:pinned"
    #: YAML of host NUMA cells and the cells each guest occupies (not in Nova's API; empty: none)
    numa_topology_file: str = ""

    @property
    def configured(self) -> bool:
        return self.cloud is not None or self.auth_url is not None or self.auth_type == "admin_token"


@frozen
class ExecutorConfig:
    #: at most this many migrations of a wave at once
    max_concurrent_migrations: int = 2
    #: seconds a migration may run before it is a ``MigrationTimeout``
    migration_timeout: float = 600.0
    #: a failed step is retried at most this many times
    max_retries: int = 3
    #: seconds between the starts of two migrations of a wave
    stagger_seconds: float = 30.0
    #: abort (exit 75) when more than this fraction of a plan's VMs changed since its snapshot
    max_drift: float = 0.10
    #: refuse plans older than this many seconds
    max_plan_age: float = 900.0
    #: seconds between reads of a running migration's record
    poll_interval: float = 2.0
    #: a failed step is retried after retry_backoff, 2 x retry_backoff, ... seconds
    retry_backoff: float = 5.0
    #: with a ``[coordination] backend_url``: at most this many migrations in flight across every
    #: engine of the group (0: no cloud-wide limit, only each engine's max_concurrent_migrations)
    max_concurrent_migrations_cloud: int = 0


@frozen
class CoordinationConfig:
    #: a tooz backend every ``kronos run`` of the cloud shares, e.g. ``etcd3+http://127.0.0.1:2379``
    #: (``pip install kronos-planner[ha]``; the scheme names an installed tooz driver, checked at
    #: load); empty: one engine, guarded by ``[engine] lock_file``
    backend_url: str = ""
    #: this engine's name in the group (empty: ``HOSTNAME-PID``)
    member_id: str = ""
    #: the group the engines join; engines of one group divide its aggregates among them
    group: str = "kronos"
    #: seconds without a heartbeat after which a member, its aggregates' locks and its migration
    #: slots are released to the others (the backend's lease time)
    heartbeat_timeout: float = 30.0


@frozen
class Config:
    source: str
    engine: EngineConfig = field(factory=EngineConfig)
    prometheus: PrometheusConfig = field(factory=PrometheusConfig)
    nova: NovaConfig = field(factory=NovaConfig)
    executor: ExecutorConfig = field(factory=ExecutorConfig)
    coordination: CoordinationConfig = field(factory=CoordinationConfig)
    policies: tuple[Policy, ...] = ()
    #: federation: one ``[nova:NAME]`` section per cloud a cross-cloud plan names (``[nova]``'s keys)
    clouds: dict[str, NovaConfig] = field(factory=dict)

    def path(self, name: str) -> Path | None:
        """A file named in the config: relative to the config file's folder; None when empty."""
        if not name:
            return None
        p = Path(name)
        return p if p.is_absolute() or self.source == "(environment)" else Path(self.source).parent / p

    @property
    def scope(self) -> tuple[str, ...]:
        """The aggregates this engine owns, ``_unassigned_`` included when asked for."""
        names = self.engine.options.aggregates or ()
        return (*names, UNASSIGNED) if self.engine.include_unassigned_hosts else names


_SECTIONS: dict[str, type] = {
    "engine": EngineConfig,
    "prometheus": PrometheusConfig,
    "nova": NovaConfig,
    "executor": ExecutorConfig,
    "coordination": CoordinationConfig,
}
_ENGINE_OWN = tuple(a.name for a in attrs.fields(EngineConfig) if a.name != "options")
_KEYS: dict[str, tuple[str, ...]] = {
    name: tuple(a.name for a in attrs.fields(cls)) for name, cls in _SECTIONS.items()
}
_KEYS["engine"] = (*_ENGINE_OWN, *OPTION_NAMES)
#: every setting as an environment variable, for "did you mean" on a mistyped one
ENV_NAMES = tuple(f"{ENV_PREFIX}{s.upper()}_{k.upper()}" for s, keys in _KEYS.items() for k in keys)
_HINTS = {name: typing.get_type_hints(cls, vars(types) | globals()) for name, cls in _SECTIONS.items()}
#: every number's documented range: (lowest, highest, lowest excluded)
_RANGES: dict[str, tuple[float, float, bool]] = {
    "evaluation_interval": (0, MAX_SECONDS, True),
    "timeout": (0, DAY, True),
    "retries": (0, 10, False),
    "retry_backoff": (0, 3600, False),
    "max_sample_age": (0, MAX_SECONDS, True),
    "min_host_coverage": (0, 1, False),
    "max_concurrent_migrations": (1, 1000, False),
    "migration_timeout": (0, 7 * DAY, True),
    "max_retries": (0, 10, False),
    "stagger_seconds": (0, DAY, False),
    "max_drift": (0, 1, False),
    "max_plan_age": (0, MAX_SECONDS, True),
    "poll_interval": (0, 3600, True),
    "history_window": (0, 7 * DAY, False),
    "history_step": (1, DAY, False),
    "max_concurrent_migrations_cloud": (0, 100_000, False),
    "heartbeat_timeout": (1, 3600, False),
}
#: Prometheus refuses a range query whose (end - start) / step is more than this (it returns
#: one sample more: both ends count)
MAX_POINTS = 11_000
_AUTH_TYPES = ("password", "v3password", "v3applicationcredential", "admin_token", "token")
_INTERFACES = ("public", "internal", "admin")
_URLS = {
    "prometheus": ("url",),
    "nova": ("auth_url", "compute_endpoint_override", "placement_endpoint_override"),
}


@frozen
class _Value:
    raw: str
    where: str  # "kronos.conf:12" or "$KRONOS_ENGINE_MIN_LOAD"


def _lines(text: str) -> dict[tuple[str, str], int]:
    """(section, key) → 1-based line, for error messages (configparser keeps none); a section's
    header is (section, "")."""
    out: dict[tuple[str, str], int] = {}
    section = ""
    for n, line in enumerate(text.splitlines(), 1):
        m = re.match(r"\s*\[([^\]]+)\]", line)
        if m:
            section = m.group(1).strip()
            out.setdefault((section, ""), n)
            continue
        m = re.match(r"\s*([^#;=:\s][^=:]*?)\s*[=:]", line)
        if m and section:
            out.setdefault((section, m.group(1).strip().lower()), n)
    return out


def _read_file(path: str) -> tuple[dict[str, dict[str, _Value]], list[str]]:
    text = _read_text(path)
    parser = configparser.ConfigParser(interpolation=None, strict=True, default_section="\0")
    try:
        parser.read_string(text, source=path)
    except configparser.MissingSectionHeaderError as exc:
        raise ConfigError(f"{path}:{exc.lineno}: a setting before the first [section] header") from None
    except configparser.ParsingError as exc:  # the lines are not shown: one may be a password
        what = (
            "expected 'key = value', a [section] header or a comment (line not shown: it may hold a secret)"
        )
        bad = [f"{path}:{n}: {what}" for n, _ in exc.errors]
        raise ConfigError(problem_list(path, bad)) from None
    except configparser.DuplicateSectionError as exc:
        raise ConfigError(
            f"{path}:{exc.lineno}: [{exc.section}] a second time: give each section once"
        ) from None
    except configparser.DuplicateOptionError as exc:  # names only, never the values
        raise ConfigError(
            f"{path}:{exc.lineno}: [{exc.section}] {exc.option} a second time: give each setting once"
        ) from None
    except configparser.Error as exc:
        raise ConfigError(f"{path}: {redact(exc.message)}") from None
    lines = _lines(text)
    values: dict[str, dict[str, _Value]] = {}
    problems: list[str] = []
    for section in parser.sections():
        if section.startswith(CLOUD_PREFIX):
            name = section[len(CLOUD_PREFIX) :].strip()
            if not name:
                where = f"{path}:{lines.get((section.strip(), ''), '?')}"
                problems.append(f"{where}: [{section}]: name the cloud: [{CLOUD_PREFIX}NAME]")
                continue
            for key, raw in parser.items(section):
                where = f"{path}:{lines.get((section, key), '?')}"
                values.setdefault(CLOUD_PREFIX + name, {})[key] = _Value(raw, where)
            continue
        if section not in _SECTIONS:
            where = f"{path}:{lines.get((section.strip(), ''), '?')}"
            if section == "messaging":
                problems.append(f"{where}: [messaging]: not used (plans are files; no RabbitMQ): remove it")
            else:
                hint = did_you_mean(section, _SECTIONS)
                if section.startswith("nova"):
                    hint += f" (one cloud of a federation plan: [{CLOUD_PREFIX}NAME])"
                problems.append(f"{where}: [{section}]: unknown section{hint}")
            continue
        for key, raw in parser.items(section):
            values.setdefault(section, {})[key] = _Value(raw, f"{path}:{lines.get((section, key), '?')}")
    return values, problems


#: the largest kronos.conf read: a few KiB are usual; it is decoded whole (its errors name
#: the line), so ``--config /dev/urandom`` is refused after this much, not after a GiB
MAX_CONFIG_BYTES = 16 << 20


def _read_text(path: str) -> str:
    """The file's text; missing or unreadable is exit 66, not UTF-8 exit 78 with where it broke."""
    try:
        with Path(path).open("rb") as fh:
            data = read_bounded(fh, path, MAX_CONFIG_BYTES)
    except FileNotFoundError:
        raise NoInputError(f"{path}: no such file (--config)") from None
    except IsADirectoryError:
        raise NoInputError(f"{path}: is a directory, expected a file (--config)") from None
    except PermissionError:
        raise NoInputError(f"{path}: not readable: permission denied (--config)") from None
    except OSError as exc:
        raise KronosIOError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except DataError as exc:
        raise ConfigError(f"{exc} (--config)") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{path}:{line}: not UTF-8 text (byte offset {exc.start}: {exc.reason}); save it as UTF-8"
        ) from None


def _read_env(environ: Mapping[str, str]) -> tuple[dict[str, dict[str, _Value]], list[str]]:
    """``KRONOS_<SECTION>_<OPTION>`` settings, and a problem for a near miss of one.

    A ``KRONOS_`` variable that is no section's and looks like no setting
    (``KRONOS_HOME``) is not ours and is left alone; one that nearly
    names a setting (``KRONOS_PROMETEUS_URL``) is a typo, never ignored.
    """
    values: dict[str, dict[str, _Value]] = {}
    problems: list[str] = []
    for var, raw in sorted(environ.items()):
        if not var.startswith(ENV_PREFIX):
            continue
        rest = var[len(ENV_PREFIX) :].lower()
        section = next((s for s in _SECTIONS if rest.startswith(s + "_")), None)
        if section is None:
            near = nearest(var, ENV_NAMES, cutoff=0.8)
            if near:
                problems.append(f"${var}: not a setting (did you mean {near}?){_ENV_NOTE}")
            continue
        key = rest[len(section) + 1 :]
        values.setdefault(section, {})[key] = _Value(raw, f"${var}")
    return values, problems


_ENV_NOTE = "; every KRONOS_<SECTION>_<OPTION> variable is read as a kronos.conf setting"


def _convert(section: str, key: str, value: _Value) -> Any:
    hint = _HINTS[section][key]
    if hint == Secret | None:
        return Secret(value.raw) if value.raw else None
    try:
        result = coerce(key, value.raw, hint)
    except ValueError as exc:  # int("many"), float("soon"): say what is expected instead
        if str(exc).startswith(("invalid literal", "could not convert", "Exceeds the limit")):
            raise ValueError("expected a whole number" if hint is int else "expected a number") from None
        raise
    if isinstance(result, int | float) and not isinstance(result, bool):
        _check_number(key, result)
    return result


def _check_number(key: str, value: float) -> None:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    low, high, open_low = _RANGES.get(key, (0, math.inf, False))
    if value < low or (open_low and value == low) or value > high:
        shown = f"{'(' if open_low else '['}{low:.10g}, {high:.10g}]" if high < math.inf else ""
        raise ValueError(f"must be in {shown}" if shown else f"must be >= {low:g}")


def _build(values: dict[str, dict[str, _Value]], problems: list[str]) -> dict[str, Any]:
    built: dict[str, Any] = {}
    for section in _SECTIONS:
        fields: dict[str, Any] = {}
        options: dict[str, str] = {}
        for key, value in values.get(section, {}).items():
            label = f"{value.where}: [{section}] {key}"
            if key not in _KEYS[section]:
                near = did_you_mean(key, _KEYS[section])
                if value.where.startswith("$"):
                    near = near or did_you_mean(value.where[1:], ENV_NAMES)
                    near += _ENV_NOTE
                problems.append(f"{label}: unknown option{near}")
                continue
            secret = _HINTS[section].get(key) == Secret | None
            shown = "***" if secret else repr(redact(value.raw))
            try:
                if section == "engine" and key in OPTION_NAMES:
                    make_options({key: value.raw}, alone=True)  # the planner option's own checks
                    options[key] = value.raw
                else:
                    fields[key] = _convert(section, key, value)
            except KronosError as exc:  # the planner option's own message names it
                problems.append(f"{value.where}: [engine] {redact(str(exc))}")
            except (TypeError, ValueError) as exc:
                problems.append(f"{label} = {shown}: {exc}")
        if options:
            try:
                fields["options"] = make_options(options)
            except KronosError as exc:  # options that do not go together: at the first one named
                given = values[section]
                named = [k for k in options if f"option {k} " in str(exc)] or list(options)
                problems.append(f"{given[named[0]].where}: [engine] {redact(str(exc))}")
                fields["options"] = make_options({k: v for k, v in options.items() if k not in named})
        built[section] = fields
    return built


def _build_clouds(values: dict[str, dict[str, _Value]], problems: list[str]) -> dict[str, NovaConfig]:
    """The ``[nova:NAME]`` sections, each read and checked as ``[nova]`` is (file only: an
    environment variable cannot name a cloud)."""
    clouds: dict[str, NovaConfig] = {}
    for section, given in values.items():
        if not section.startswith(CLOUD_PREFIX):
            continue
        fields: dict[str, Any] = {}
        for key, value in given.items():
            label = f"{value.where}: [{section}] {key}"
            if key not in _KEYS["nova"]:
                problems.append(f"{label}: unknown option{did_you_mean(key, _KEYS['nova'])}")
                continue
            shown = "***" if _HINTS["nova"].get(key) == Secret | None else repr(redact(value.raw))
            try:
                fields[key] = _convert("nova", key, value)
            except (TypeError, ValueError) as exc:
                problems.append(f"{label} = {shown}: {exc}")
        clouds[section[len(CLOUD_PREFIX) :]] = NovaConfig(**fields)
    return clouds


def _nova_problems(label: str, n: NovaConfig) -> list[str]:
    """``[nova]``'s checks, for it and for each ``[nova:NAME]`` (``label``: the section as written)."""
    problems = []
    for key in _URLS["nova"]:
        value = getattr(n, key)
        if value is not None and not _is_http_url(value):
            problems.append(f"{label} {key} = {redact(value)!r}: expected http(s)://HOST[:PORT][/PATH]")
    if n.cloud and n.auth_url:
        problems.append(f"{label} cloud and auth_url: use a clouds.yaml entry or explicit auth, not both")
    if n.auth_type not in _AUTH_TYPES:
        problems.append(f"{label} auth_type = {n.auth_type!r}: one of {', '.join(_AUTH_TYPES)}")
    if n.interface not in _INTERFACES:
        problems.append(f"{label} interface = {n.interface!r}: one of {', '.join(_INTERFACES)}")
    if not n.pinned_tag:
        problems.append(
            f"{label} pinned_tag is empty: name the tag that pins a server (default kronos:pinned)"
        )
    if n.auth_type == "admin_token" and not (n.token and n.compute_endpoint_override):
        problems.append(f"{label} auth_type = admin_token: also give token and compute_endpoint_override")
    elif n.auth_url and n.auth_type != "token":
        has_password = n.username is not None and n.password is not None
        has_app_cred = n.application_credential_id is not None and n.application_credential_secret is not None
        if not (has_password or has_app_cred):
            problems.append(
                f"{label} auth_url is set: also give username and password "
                "(or application_credential_id and application_credential_secret)"
            )
    return problems


def _check(config: Config, problems: list[str], require_scope: bool) -> None:
    p, e = config.prometheus, config.engine
    for key in _URLS["prometheus"]:
        value = getattr(p, key)
        if value is not None and not _is_http_url(value):
            problems.append(f"[prometheus] {key} = {redact(value)!r}: expected http(s)://HOST[:PORT][/PATH]")
    if (p.username is None) != (p.password is None):
        problems.append("[prometheus] username and password: give both for basic auth, or neither")
    if p.bearer_token_file and p.username:
        problems.append("[prometheus] bearer_token_file and username: choose one way to authenticate")
    for key in ("ca_file", "bearer_token_file"):
        name = getattr(p, key)
        if name and not Path(name).is_file():
            what = (
                "a folder, not a file"
                if Path(name).is_dir()
                else "not a regular file"  # a device (/dev/zero never ends) or a pipe
                if Path(name).exists()
                else "no such file"
            )
            problems.append(f"[prometheus] {key} = {name!r}: {what}")
    problems += _nova_problems("[nova]", config.nova)
    for name, cloud in config.clouds.items():
        problems += _nova_problems(f"[{CLOUD_PREFIX}{name}]", cloud)
        if not cloud.configured:
            problems.append(
                f"[{CLOUD_PREFIX}{name}]: say how to reach this cloud: cloud = <clouds.yaml entry>, "
                "or auth_url with credentials, or auth_type = admin_token (never the OS_* variables: "
                "they would point every cloud at the same one)"
            )
    if not e.policies_file:
        problems.append("[engine] policies_file is empty: name the policies file (default policies.yaml)")
    problems += _shared_files(config)
    problems += _history_problems(e)
    problems += _coordination_problems(config)
    if require_scope and not e.options.aggregates and not e.include_unassigned_hosts:
        problems.append(
            "[engine]: set aggregates = NAME[, NAME...] and/or include_unassigned_hosts = true "
            "(the aggregates this engine manages)"
        )


#: the files an engine writes: one lines appended to another (the audit log to the state) broke it
_WRITTEN = ("state_file", "results_file", "audit_file", "log_file", "lock_file")


def _shared_files(config: Config) -> list[str]:
    """Two of the engine's written files that are one (``audit_file = kronos-state.json``)."""
    written = [k for k in written_keys(config) if k != "plan_dir"]
    found = shared_file((key, config.path(getattr(config.engine, key))) for key in written)
    if found is None:
        return []
    key, earlier = found
    return [f"[engine] {key} = {getattr(config.engine, key)!r}: the same file as {earlier}"]


#: what ``kronos run`` in a group does not write: the state is in the backend, and the
#: backend's locks keep a second engine off, not the lock file
_NOT_IN_A_GROUP = ("state_file", "lock_file")


def written_keys(config: Config) -> list[str]:
    """The ``[engine]`` keys naming a file or folder ``kronos run`` writes."""
    keys = [k for k in (*_WRITTEN, "plan_dir") if getattr(config.engine, k)]
    return [k for k in keys if not (k in _NOT_IN_A_GROUP and config.coordination.backend_url)]


def unwritable(config: Config) -> list[str]:
    """The files and the folder ``kronos run`` writes that it could not write (check-config's
    "files" line; not checked at load: a plan or a status never writes them). Files are written
    into their folder, which must be there; ``plan_dir`` is made when missing."""
    problems = []
    for key in written_keys(config):
        path = config.path(getattr(config.engine, key))
        assert path is not None  # (written_keys: the keys set)
        where = f"[engine] {key} = {getattr(config.engine, key)!r}"
        try:
            problem = unmakeable_folder(path) if key == "plan_dir" else unwritable_file(path)
        except OSError as exc:  # a folder on the way this user may not search (0700 /var/lib/kronos)
            problem = f"cannot look at {path}: {exc.strerror or exc}"
        if problem:
            problems.append(f"{where}: {problem}")
    return problems


def _coordination_problems(config: Config) -> list[str]:
    c = config.coordination
    if not c.backend_url:
        if config.executor.max_concurrent_migrations_cloud:
            return [
                "[executor] max_concurrent_migrations_cloud needs [coordination] backend_url "
                "(one engine alone: use max_concurrent_migrations)"
            ]
        return []
    scheme = c.backend_url.partition("://")[0]
    if not scheme or "://" not in c.backend_url:
        return [
            f"[coordination] backend_url = {redact(c.backend_url)!r}: expected DRIVER://…, e.g. etcd3+http://HOST:2379"
        ]
    problem = backend_url_problem(c.backend_url)
    if problem:
        return [f"[coordination] backend_url = {redact(c.backend_url)!r}: {problem}"]
    if not c.group:
        return ["[coordination] group is empty: name the group the engines join (default kronos)"]
    return []


#: the entry points of tooz's backend drivers: a backend_url's scheme names one
TOOZ_DRIVERS = "tooz.backends"


def _driver_fault(entry: importlib.metadata.EntryPoint) -> str:
    """Why tooz's driver ``entry`` cannot load ("": it loads), e.g. its client library is missing."""
    try:
        entry.load()
    except Exception as exc:  # ImportError mostly; whatever a driver's import raises, it is unusable
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return ""


def tooz_schemes() -> list[str]:
    """The backend_url schemes tooz accepts here: its drivers that load (their client library is
    installed), sorted."""
    drivers = importlib.metadata.entry_points(group=TOOZ_DRIVERS)
    return sorted({d.name for d in drivers if not _driver_fault(d)})


def backend_url_problem(url: str) -> str:
    """What keeps tooz from using ``url`` ("": nothing, or tooz is not installed, which
    :mod:`kronos.adapters.coordination` says when it is used): a scheme no installed driver
    takes, a driver that cannot load, a port that is no port."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is no number or out of range
    except ValueError as exc:
        return f"not a URL: {exc}"
    drivers = {d.name: d for d in importlib.metadata.entry_points(group=TOOZ_DRIVERS)}
    if not drivers:
        return ""
    driver = drivers.get(parts.scheme)
    fault = _driver_fault(driver) if driver is not None else ""
    if driver is not None and not fault:
        return _driver_option_problem(parts)
    schemes = ", ".join(tooz_schemes()) or "none"
    if driver is None:
        hint = f"; did you mean etcd3+{parts.scheme}://…?" if parts.scheme in ("http", "https") else ""
        return f"no tooz driver for scheme {parts.scheme!r} (the installed ones take: {schemes}){hint}"
    return (
        f"tooz's {parts.scheme!r} driver cannot load ({redact(fault)}): install its client library, "
        f"or use one of: {schemes}"
    )


#: the query options tooz's etcd3gw and file drivers read with ``int()`` (redis reads some with
#: ``float()``: other drivers' options are theirs to check)
_WHOLE_SECONDS = ("timeout", "lock_timeout", "membership_timeout")
_INT_DRIVERS = ("etcd3+http", "etcd3+https", "file")


def _driver_option_problem(parts: SplitResult) -> str:
    """What tooz would only say on first use, in its own words: an option that is no number
    (``int()``'s ValueError), a ``file://`` folder that cannot be one (a regular file on its path:
    ``kronos status`` would say "no members" for ever, ``kronos run`` fail at its first lock)."""
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        whole = value.isascii() and value.isdigit() and int(value) > 0
        if parts.scheme in _INT_DRIVERS and key in _WHOLE_SECONDS and not whole:
            return f"{key} = {value!r}: expected a whole number of seconds, at least 1"
    if parts.scheme == "file":
        folder = Path(parts.path)
        try:
            on_path = next((p for p in (folder, *folder.parents) if p.exists()), None)
        except OSError:  # a folder on the way this user may not search: tooz says so when it tries
            on_path = None
        if on_path is not None and not on_path.is_dir():
            named = "is" if on_path == folder else f"cannot be a folder: {str(on_path)!r} is"
            return f"{str(folder)!r} {named} not a folder"
    return ""


def _history_problems(e: EngineConfig) -> list[str]:
    """The history window against its step, Prometheus's point limit and the forecast that reads it."""
    window, step = e.history_window, e.history_step
    where = f"[engine] history_window = {window:g}"
    if window == 0:
        if e.options.spread.forecast_horizon > 0:
            return [
                f"{where}: forecast_horizon = {e.options.spread.forecast_horizon:g} needs a history "
                "to forecast from: set history_window > 0 (e.g. 1800) or forecast_horizon = 0"
            ]
        return []
    points = window / step
    if abs(points - round(points)) > 1e-9 * points:
        return [f"{where}: must be a whole number of history_step = {step:g} seconds"]
    if round(points) > MAX_POINTS:
        why = f"{round(points)} steps per series, Prometheus answers at most {MAX_POINTS}"
        return [f"{where} at history_step = {step:g}: {why}: raise history_step"]
    return []


def _placed(problem: str, values: dict[str, dict[str, _Value]]) -> str:
    """A check of the whole configuration (``[prometheus] url = …: expected …``) prefixed, as the
    per-value ones are, with where the first setting it names was given (``kronos.conf:3``,
    ``$KRONOS_PROMETHEUS_URL``): ``username and password`` given as a password alone is placed
    at the password. A check of settings all left at their defaults has no place."""
    m = re.match(r"\[([^\]]+)\]", problem)
    given = values.get(m.group(1), {}) if m else {}
    where = (
        next((given[w] for w in re.findall(r"\w+", problem[m.end() :]) if w in given), None) if m else None
    )
    return f"{where.where}: {problem}" if where else problem


def _files_beside(config: Config) -> PrometheusConfig:
    """[prometheus]'s ca_file and bearer_token_file, relative to the config file's folder as every
    other file it names (they were taken from the working directory: cd / broke them)."""
    p = config.prometheus

    def beside(name: str | None) -> str | None:
        return str(config.path(name)) if name else name

    return attrs.evolve(p, ca_file=beside(p.ca_file), bearer_token_file=beside(p.bearer_token_file))


def _is_http_url(text: str) -> bool:
    """http(s)://HOST[:PORT][/PATH]: no blank or control character (urlparse keeps them, requests
    refuses them at the first query), no query or fragment (the API's path is appended)."""
    if any(c.isspace() or not c.isprintable() for c in text):
        return False
    try:
        url = urlparse(text)
        return (
            url.scheme in ("http", "https")
            and bool(url.hostname)
            and (url.port is None or url.port > 0)
            and not url.query
            and not url.fragment
            and not text.endswith(("?", "#"))
        )
    except ValueError:  # "http://[::1", "http://h:99999"
        return False


def load_config(
    path: str | None,
    environ: Mapping[str, str] | None = None,
    *,
    require_scope: bool = True,
    policies: bool = True,
) -> Config:
    """kronos.conf at ``path`` (None: defaults) overlaid with ``KRONOS_*`` from ``environ``.

    The policies file is read too (relative to the config file's folder), so
    a Config in hand is a configuration known to be usable; ``policies=False``
    for a command that never reads them (``kronos execute``: a federation.conf
    need not have a policies.yaml beside it).
    """
    values: dict[str, dict[str, _Value]] = {}
    problems: list[str] = []
    if path is not None:
        values, problems = _read_file(path)
    env, env_problems = _read_env(environ or {})
    problems += env_problems
    for section, items in env.items():
        values.setdefault(section, {}).update(items)
    built = _build(values, problems)
    clouds = _build_clouds(values, problems)
    source = path or "(environment)"
    config = Config(source=source, clouds=clouds, **{s: _SECTIONS[s](**f) for s, f in built.items()})
    config = attrs.evolve(config, prometheus=_files_beside(config))
    checked: list[str] = []
    _check(config, checked, require_scope)
    problems += [_placed(problem, values) for problem in checked]
    if problems:
        raise ConfigError(problem_list(source, problems))
    if not policies:
        return config
    from kronos.adapters.policies import load_policies

    policies_path = Path(config.engine.policies_file)
    if path is not None and not policies_path.is_absolute():
        policies_path = Path(path).parent / policies_path
    return attrs.evolve(config, policies=load_policies(policies_path))
