"""What Nova and Placement say about the hosts in scope, read in a bounded number of calls.

Kronos must see the cloud the way Nova's scheduler does: aggregates and
their metadata (availability zone, AggregateInstanceExtraSpecsFilter keys),
the compute services' enabled/up/forced_down, each server with the flavor
embedded as Nova stored it at boot (2.47+, extra specs included), the
properties of the images servers boot from (``trait:*``, ``hw_*``), the
server groups of every project, and what Placement has: every resource
provider's inventories and traits, and what each consumer holds.

Every Nova read is a list call (paginated where Nova paginates), never one
call per server. Placement has no list of inventories, traits or
allocations, so those cost three calls per resource provider in scope (a
compute node and its nested children: vGPU, SR-IOV, bandwidth providers),
made a few at a time. Per-provider allocations
(``GET /resource_providers/{uuid}/allocations``) give every consumer on a
host in one call where ``GET /allocations/{instance}`` would cost one per
server: 20 000 calls on a 20 000-server cloud instead of 300 for 100 hosts.

The reader takes an ``openstack.connection.Connection`` built elsewhere
(:func:`connect`): tests hand in one pointed at a local Nova, operators one
from clouds.yaml. It returns plain data (:class:`NovaWorld`); turning that
into a snapshot is :mod:`kronos.adapters.record`'s job.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from attrs import field, frozen

from kronos.adapters.config import NovaConfig
from kronos.core.model import RESOURCE_ALIASES, RESOURCES, Aggregate, Capacity
from kronos.errors import ConfigError, DataError, PermissionDenied, UnavailableError
from kronos.redact import redact

#: the newest field the reader needs: server group ``policy``/``rules`` (2.64);
#: also carries embedded flavors (2.47), tags (2.26), UUID ids (2.53), forced_down (2.11)
COMPUTE_MICROVERSION = "2.64"
#: nested resource providers: ``root_provider_uuid`` in the provider list (1.14)
PLACEMENT_MICROVERSION = "1.14"
#: Nova's image API (a proxy of Glance's) answers up to 2.35 and carries image properties
IMAGES_MICROVERSION = "2.35"
PAGE = 1000
#: Placement provider reads in flight at once
PARALLEL_READS = 8

#: what the reader needs, per call, for a 403 to say which permission is missing
NEEDS = {
    "/os-aggregates": "os_compute_api:os-aggregates:index (admin)",
    "/os-services": "os_compute_api:os-services:list (admin)",
    "/os-hypervisors/detail": "os_compute_api:os-hypervisors:list-detail (admin)",
    "/servers/detail": "os_compute_api:servers:detail:get_all_tenants (admin)",
    "/os-server-groups": "os_compute_api:os-server-groups:index:all_projects (admin)",
    "/images/detail": "Glance get_images (through Nova's image API)",
    "/resource_providers": "placement:resource_providers:list (admin)",
    "inventories": "placement:resource_providers:inventories:list (admin)",
    "traits": "placement:resource_providers:traits:list (admin)",
    "allocations": "placement:resource_providers:allocations:list (admin)",
}


@frozen
class Service:
    host: str
    enabled: bool
    up: bool
    forced_down: bool
    disabled_reason: str | None = None


@frozen
class Server:
    id: str
    name: str
    host: str
    instance_name: str | None
    status: str
    task_state: str | None
    flavor: dict[str, Any]  # name, vcpus, memory_mb, disk_gb, extra_specs (the snapshot's shape)
    project_id: str | None
    tags: tuple[str, ...] = ()
    metadata: dict[str, str] = field(factory=dict)
    image: str | None = None  # None: booted from volume


@frozen
class ServerGroup:
    id: str
    name: str
    policy: str
    rules: dict[str, Any]
    members: tuple[str, ...]
    project_id: str | None = None


@frozen
class Placement:
    """Placement's view of some compute hosts, each with its nested providers folded in."""

    capacity: dict[str, Capacity]  # host → schedulable capacity of every class
    traits: dict[str, tuple[str, ...]]  # host → the traits of its providers, sorted
    allocations: dict[str, dict[str, dict[str, float]]]  # host → consumer → class → amount held


@frozen
class NovaWorld:
    aggregates: tuple[Aggregate, ...]
    services: dict[str, Service]  # compute host → its nova-compute service
    capacity: dict[str, Capacity]  # compute host → schedulable capacity (Placement)
    servers: tuple[Server, ...]  # on the hosts read
    groups: tuple[ServerGroup, ...]
    calls: int = 0  # API calls made, for the bounded-calls promise
    traits: dict[str, tuple[str, ...]] = field(factory=dict)  # host → Placement traits
    allocations: dict[str, dict[str, dict[str, float]]] = field(factory=dict)  # host → consumer → held
    images: dict[str, dict[str, str]] = field(factory=dict)  # image id → its properties
    compute_hosts: frozenset[str] = frozenset()  # every compute service's host, in scope or not


def connect(
    nova: NovaConfig, os_cloud: str | None = None, os_region: str | None = None, *, envvars: bool = True
) -> Any:
    """An openstacksdk Connection from ``--os-cloud``, ``[nova]``, or OS_* variables.

    Nothing is contacted here (openstacksdk authenticates lazily), so a
    wrong password surfaces at the first read, as exit 77. ``envvars=False``
    (a ``[nova:<cloud>]`` section with explicit auth): no OS_* variable is
    read, since one shell's variables name one cloud and would leak into
    every other. A section naming a clouds.yaml entry keeps them: openstacksdk
    then takes only that entry (and finds clouds.yaml by OS_CLIENT_CONFIG_FILE).
    """
    import openstack  # slow to import; only the commands that talk to Nova need it
    import openstack.exceptions
    from keystoneauth1.exceptions.auth_plugins import AuthPluginException

    envvars = envvars or bool(os_cloud or nova.cloud)
    kwargs: dict[str, Any] = {"app_name": "kronos", "load_envvars": envvars, "api_timeout": nova.timeout}
    if nova.compute_endpoint_override:
        kwargs["compute_endpoint_override"] = nova.compute_endpoint_override
    if nova.placement_endpoint_override:
        kwargs["placement_endpoint_override"] = nova.placement_endpoint_override
    if nova.cacert:
        kwargs["cacert"] = nova.cacert
    if not nova.verify:
        kwargs["verify"] = False
    if os_region or nova.region_name:
        kwargs["region_name"] = os_region or nova.region_name
    cloud = os_cloud or nova.cloud
    try:
        if cloud:
            return openstack.connect(cloud=cloud, **kwargs)
        if nova.auth_url or nova.auth_type in ("admin_token", "token"):
            auth = _auth(nova)
            return openstack.connect(auth_type=nova.auth_type, auth=auth, interface=nova.interface, **kwargs)
        return openstack.connect(**kwargs)  # OS_CLOUD / OS_AUTH_URL ... as openstacksdk reads them
    except (openstack.exceptions.ConfigException, AuthPluginException) as exc:
        # AuthPluginException: keystoneauth's "requires parameters which were not given: auth_url"
        # when nothing at all says how to authenticate
        where = f"clouds.yaml cloud {cloud!r}" if cloud else "[nova] (no cloud, auth_url or OS_* variables)"
        raise ConfigError(f"{where}: {redact(str(exc))}") from None


def _auth(nova: NovaConfig) -> dict[str, Any]:
    if nova.auth_type in ("admin_token", "token"):
        token = nova.token.value if nova.token else ""
        endpoint = nova.compute_endpoint_override or nova.auth_url
        return (
            {"endpoint": endpoint, "token": token}
            if nova.auth_type == "admin_token"
            else {
                "auth_url": nova.auth_url,
                "token": token,
                "project_name": nova.project_name,
                "project_domain_name": nova.project_domain_name,
            }
        )
    if nova.auth_type == "v3applicationcredential":
        return {
            "auth_url": nova.auth_url,
            "application_credential_id": nova.application_credential_id,
            "application_credential_secret": nova.application_credential_secret.value
            if nova.application_credential_secret
            else None,
        }
    return {
        "auth_url": nova.auth_url,
        "username": nova.username,
        "password": nova.password.value if nova.password else None,
        "project_name": nova.project_name,
        "user_domain_name": nova.user_domain_name,
        "project_domain_name": nova.project_domain_name,
    }


class NovaReader:
    """Reads the compute side of a snapshot through one Connection; counts its calls."""

    def __init__(self, conn: Any, parallel: int = PARALLEL_READS, page: int = PAGE) -> None:
        self.conn = conn
        self.parallel = parallel
        self.page = page
        self.calls = 0
        self._counting = threading.Lock()  # provider reads run in threads

    # -- transport ---------------------------------------------------------------------------
    def _get(
        self, service: str, path: str, params: dict[str, Any] | None = None, version: str | None = None
    ) -> Any:
        from keystoneauth1 import exceptions as ksa

        version = version or (COMPUTE_MICROVERSION if service == "compute" else PLACEMENT_MICROVERSION)
        with self._counting:
            self.calls += 1
        proxy = None
        try:  # the first use of a proxy runs version discovery: already a request
            proxy = self.conn.compute if service == "compute" else self.conn.placement
            resp = proxy.get(path, params=params, microversion=version, raise_exc=False)
        except ksa.Unauthorized as exc:
            raise PermissionDenied(f"Nova: authentication failed ({_short(exc)})") from None
        except (ksa.ConnectFailure, ksa.ConnectTimeout, ksa.DiscoveryFailure, ksa.EndpointNotFound) as exc:
            raise UnavailableError(f"{service}: cannot reach {_where(proxy, path)}: {_short(exc)}") from None
        except ksa.ClientException as exc:  # timeouts, SSL, catalog problems
            raise UnavailableError(f"{service}: {path}: {_short(exc)}") from None
        if resp.status_code in (401, 403):
            need = NEEDS.get(path) or NEEDS.get(path.rsplit("/", 1)[-1], "admin")
            what = "authentication failed" if resp.status_code == 401 else f"permission denied, needs {need}"
            raise PermissionDenied(f"{service}: GET {path}: HTTP {resp.status_code}: {what}")
        if resp.status_code >= 500:
            raise UnavailableError(f"{service}: GET {_where(proxy, path)}: HTTP {resp.status_code}")
        if resp.status_code >= 400:
            raise DataError(f"{service}: GET {path}: HTTP {resp.status_code}: {redact(resp.text[:300])}")
        try:
            return resp.json()
        except ValueError:
            raise UnavailableError(f"{service}: GET {path}: answer is not JSON") from None

    def _pages(
        self, path: str, key: str, params: dict[str, Any], version: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every item of a Nova list, following ``<key>_links`` by marker."""
        params = {**params, "limit": self.page}
        while True:
            body = self._get("compute", path, params, version)
            items = body.get(key) or []
            yield from items
            nxt = [link for link in body.get(f"{key}_links") or [] if link.get("rel") == "next"]
            if not nxt or not items:
                return
            params = {**params, "marker": items[-1]["id"]}

    # -- reads ---------------------------------------------------------------------------------
    def aggregates(self) -> tuple[Aggregate, ...]:
        body = self._get("compute", "/os-aggregates")
        return tuple(
            Aggregate(
                a["name"],
                tuple(a.get("hosts") or ()),
                {str(k): str(v) for k, v in (a.get("metadata") or {}).items()},
            )
            for a in body.get("aggregates") or []
        )

    def services(self) -> dict[str, Service]:
        body = self._get("compute", "/os-services", {"binary": "nova-compute"})
        out = {}
        for s in body.get("services") or []:
            out[s["host"]] = Service(
                s["host"],
                s.get("status") == "enabled",
                s.get("state") == "up",
                bool(s.get("forced_down")),
                s.get("disabled_reason"),
            )
        return out

    def capacity(self, hosts: Iterable[str] | None = None) -> dict[str, Capacity]:
        """Each host's schedulable capacity (``check-config`` reads every provider this way)."""
        return self.placement(hosts).capacity

    def placement(self, hosts: Iterable[str] | None = None) -> Placement:
        """Placement's view of ``hosts`` (None: every hypervisor), nested providers folded in.

        Hypervisor ids are the compute nodes' UUIDs since 2.53, which are the
        root resource providers' UUIDs; one list of every provider gives each
        root's tree (1.14). A child's inventories, traits and allocations
        count for its root's host, as a host with several nodes (Ironic)
        counts all of them.
        """
        wanted = None if hosts is None else set(hosts)
        nodes: list[tuple[str, str]] = []
        for hv in self._pages("/os-hypervisors/detail", "hypervisors", {}):
            host = (hv.get("service") or {}).get("host")
            if host and (wanted is None or host in wanted):
                nodes.append((host, hv["id"]))
        tree: dict[str, list[str]] = {}
        for rp in self._get("placement", "/resource_providers").get("resource_providers") or []:
            if rp.get("root_provider_uuid") and rp["uuid"] != rp["root_provider_uuid"]:
                tree.setdefault(rp["root_provider_uuid"], []).append(rp["uuid"])
        providers = [(host, uuid) for host, root in nodes for uuid in (root, *tree.get(root, ()))]
        with ThreadPoolExecutor(self.parallel) as pool:
            reads = list(pool.map(self._provider, [uuid for _, uuid in providers]))
        usable: dict[str, dict[str, float]] = {host: {} for host, _ in nodes}
        traits: dict[str, set[str]] = {host: set() for host, _ in nodes}
        held: dict[str, dict[str, dict[str, float]]] = {host: {} for host, _ in nodes}
        for (host, _), (inventories, names, allocations) in zip(providers, reads, strict=True):
            for rc, inv in inventories.items():
                usable[host][rc] = usable[host].get(rc, 0.0) + _usable(inv)
            traits[host].update(names)
            for consumer, resources in allocations.items():
                mine = held[host].setdefault(consumer, {})
                for rc, amount in resources.items():
                    mine[rc] = mine.get(rc, 0.0) + float(amount)
        return Placement(
            {host: _capacity(classes) for host, classes in usable.items()},
            {host: tuple(sorted(names)) for host, names in traits.items()},
            held,
        )

    def _provider(self, uuid: str) -> tuple[dict[str, Any], list[str], dict[str, dict[str, float]]]:
        """One provider's inventories, traits and every consumer's allocation on it."""
        base = f"/resource_providers/{uuid}"
        inventories = self._get("placement", f"{base}/inventories").get("inventories") or {}
        traits = self._get("placement", f"{base}/traits").get("traits") or []
        allocations = self._get("placement", f"{base}/allocations").get("allocations") or {}
        return (
            inventories,
            [str(t) for t in traits],
            {str(c): dict(a.get("resources") or {}) for c, a in allocations.items()},
        )

    def images(self) -> dict[str, dict[str, str]]:
        """Every image's properties (Nova's image API, as the admin sees Glance): one paginated list."""
        return {
            str(image["id"]): {str(k): str(v) for k, v in (image.get("metadata") or {}).items()}
            for image in self._pages("/images/detail", "images", {}, IMAGES_MICROVERSION)
        }

    def servers(self, hosts: Iterable[str]) -> tuple[Server, ...]:
        """Servers of all projects on ``hosts``: one paginated list, filtered here."""
        wanted = set(hosts)
        out = []
        for s in self._pages("/servers/detail", "servers", {"all_tenants": 1}):
            host = s.get("OS-EXT-SRV-ATTR:host")
            if host in wanted:
                out.append(_server(s, host))
        return tuple(out)

    def server_groups(self) -> tuple[ServerGroup, ...]:
        out = []
        for g in self._pages("/os-server-groups", "server_groups", {"all_projects": True}):
            out.append(
                ServerGroup(
                    g["id"],
                    g.get("name") or g["id"],
                    g.get("policy") or (g.get("policies") or ["?"])[0],
                    dict(g.get("rules") or {}),
                    tuple(g.get("members") or ()),
                    g.get("project_id"),
                )
            )
        return tuple(out)

    def read(self, in_scope: Callable[[Aggregate], bool], include_unassigned: bool = False) -> NovaWorld:
        """Everything a snapshot needs about the aggregates ``in_scope`` selects."""
        every = self.aggregates()
        aggregates = tuple(a for a in every if in_scope(a))
        services = self.services()
        hosts = {h for a in aggregates for h in a.hosts}
        if include_unassigned:
            hosts |= set(services) - {h for a in every for h in a.hosts}
        hosts &= set(services)  # an aggregate may list a host whose service was deleted
        placement = self.placement(hosts)
        servers = self.servers(hosts)
        images = self.images()
        groups = self.server_groups()
        return NovaWorld(
            aggregates,
            {h: services[h] for h in sorted(hosts)},
            placement.capacity,
            servers,
            groups,
            self.calls,
            traits=placement.traits,
            allocations=placement.allocations,
            images=images,
            compute_hosts=frozenset(services),
        )


def _usable(inv: dict[str, Any] | None) -> float:
    if not inv:
        return 0.0
    usable = (inv.get("total", 0) - inv.get("reserved", 0)) * inv.get("allocation_ratio", 1.0)
    return float(math.floor(usable + 1e-9))  # Placement compares integers


def _capacity(classes: dict[str, float]) -> Capacity:
    """Placement's classes as the snapshot spells them: the legacy three by name, others beside."""
    legacy = {RESOURCE_ALIASES[rc]: x for rc, x in classes.items() if rc in RESOURCE_ALIASES}
    other = {rc: x for rc, x in sorted(classes.items()) if rc not in RESOURCE_ALIASES}
    return Capacity(**{r: legacy.get(r, 0.0) for r in RESOURCES}, classes=other or None)


def local_disk_gb(root_gb: int, ephemeral_gb: int, swap_mb: int, boot_from_volume: bool) -> int:
    """The DISK_GB Nova asks Placement for: no root disk when booted from volume, swap rounded up."""
    return (0 if boot_from_volume else root_gb) + ephemeral_gb + math.ceil(swap_mb / 1024)


def _server(s: dict[str, Any], host: str) -> Server:
    f = s.get("flavor") or {}
    image = s.get("image") or None  # "" when booted from volume
    flavor = {
        "name": f.get("original_name") or f.get("id") or "?",
        "vcpus": f.get("vcpus", 0),
        "memory_mb": f.get("ram", 0),
        "disk_gb": local_disk_gb(f.get("disk") or 0, f.get("ephemeral") or 0, f.get("swap") or 0, not image),
        "extra_specs": {str(k): str(v) for k, v in (f.get("extra_specs") or {}).items()},
    }
    return Server(
        s["id"],
        s.get("name") or "",
        host,
        s.get("OS-EXT-SRV-ATTR:instance_name"),
        s.get("status") or "UNKNOWN",
        s.get("OS-EXT-STS:task_state"),
        flavor,
        s.get("tenant_id") or s.get("project_id"),
        tuple(s.get("tags") or ()),
        {str(k): str(v) for k, v in (s.get("metadata") or {}).items()},
        str(image["id"]) if isinstance(image, dict) and image.get("id") else None,
    )


def _where(proxy: Any, path: str) -> str:
    if proxy is None:
        return path
    try:
        base = proxy.get_endpoint()
    except Exception:
        base = None
    return redact(f"{base.rstrip('/')}{path}") if base else path


def _short(exc: BaseException) -> str:
    """The first line of a transport error, user-info and credentials blanked (keystoneauth quotes URLs)."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return redact(text)[:300]
