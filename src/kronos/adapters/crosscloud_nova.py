"""The Nova calls a cross-cloud move makes, in one cloud: find, stop, start, delete, create.

Beside :class:`kronos.adapters.nova_actions.Compute` (whose reads it
inherits) because a cross-cloud move is made of ordinary server calls, not
of a migration, and needs other microversions: 2.74 to create a server on a
named host, 2.35 for Nova's image and network proxies (gone from 2.36), so
that Kronos keeps talking to Nova alone, as :mod:`kronos.adapters.nova`
does for images. The failure rules are the executor's: 4xx refused
(definitive), 5xx or a lost connection transient; a 404 is :class:`Gone`,
the one refusal that is an answer ("no such server").
"""

from __future__ import annotations

import contextlib
import re
from typing import Any
from urllib.parse import quote

from kronos.adapters.nova_actions import MICROVERSION, Compute, Refused, Transient, _fault

#: server create with a requested ``host`` and no availability zone
CREATE_MICROVERSION = "2.74"
#: the last microversion with Nova's proxies of Glance (``/images``) and Neutron (``/os-networks``)
PROXY_MICROVERSION = "2.35"
#: how many servers one list call asks for (Nova's default max_limit is 1000)
PAGE = 1000
#: statuses of a server that is on its way out, never a copy of anything
DYING = frozenset({"DELETED", "SOFT_DELETED"})


class Gone(Refused):
    """404: the server (or image) is not there."""


class CloudCompute(Compute):
    """One cloud of a federation, named as the plan names it (``name`` goes into every message)."""

    def __init__(self, conn: Any, name: str) -> None:
        super().__init__(conn)
        self.name = name

    def _call(
        self, method: str, path: str, body: dict[str, Any] | None = None, mv: str = MICROVERSION
    ) -> Any:
        from keystoneauth1 import exceptions as ksa

        what = f"{self.name}: {method.upper()} {path}"
        try:
            proxy = self.conn.compute
            resp = getattr(proxy, method)(path, json=body, microversion=mv, raise_exc=False)
        except ksa.ClientException as exc:
            raise Transient(f"{what}: {str(exc).splitlines()[0][:300]}") from None
        if resp.status_code >= 500:
            raise Transient(f"{what}: HTTP {resp.status_code}")
        if resp.status_code == 404:
            raise Gone(f"{what}: HTTP 404: {_fault(resp)}")
        if resp.status_code >= 400:
            raise Refused(f"{what}: HTTP {resp.status_code}: {_fault(resp)}")
        if not resp.content:
            return None
        try:
            return resp.json()
        except ValueError:
            raise Transient(f"{what}: answer is not JSON") from None

    # -- reads --------------------------------------------------------------------------------
    def find(self, instance: str) -> dict[str, Any] | None:
        """The server, or None when Nova says it does not exist (or is being deleted)."""
        try:
            server = self.server(instance)
        except Gone:
            return None
        return None if server.get("status") in DYING else server

    def marked(self, key: str, value: str, *, name: str | None, host: str | None) -> list[dict[str, Any]]:
        """Every server of any project whose metadata ``key`` is ``value``, oldest first.

        Nova filters no list by metadata, so the list is narrowed by the
        server's name (a regular expression to Nova: escaped) or, when the
        name is unknown, by its host, and the metadata is compared here. Servers
        not yet scheduled (build requests) are listed too.
        """
        query = "all_tenants=1"
        if name is not None:
            query += f"&name={quote('^' + re.escape(name) + '$', safe='')}"
        elif host is not None:
            query += f"&host={quote(host, safe='')}"
        found: list[dict[str, Any]] = []
        marker = None
        while True:
            page_query = query + f"&limit={PAGE}" + (f"&marker={marker}" if marker else "")
            page = self._call("get", f"/servers/detail?{page_query}")["servers"]
            found += page
            if len(page) < PAGE:
                break
            marker = page[-1]["id"]
        mine = [
            s for s in found if (s.get("metadata") or {}).get(key) == value and s.get("status") not in DYING
        ]
        return sorted(mine, key=lambda s: (s.get("created") or "", s.get("id") or ""))

    def flavor_id(self, name: str) -> str | None:
        """The id of the flavor called ``name`` (public or private), None when there is none."""
        for f in self._call("get", "/flavors/detail?is_public=None")["flavors"]:
            if f.get("name") == name:
                return str(f["id"])
        return None

    def has_image(self, image: str) -> bool:
        try:
            self._call("get", f"/images/{quote(image, safe='')}", mv=PROXY_MICROVERSION)
        except Gone:
            return False
        return True

    def networks(self) -> dict[str, list[str]]:
        """Network name → the ids of the networks so named (Neutron through Nova's proxy)."""
        out: dict[str, list[str]] = {}
        for net in self._call("get", "/os-networks", mv=PROXY_MICROVERSION)["networks"]:
            out.setdefault(str(net.get("label")), []).append(str(net["id"]))
        return out

    def attachments(self, instance: str) -> list[dict[str, Any]]:
        """The server's volume attachments (``volumeId``, ``device``)."""
        return list(self._call("get", f"/servers/{instance}/os-volume_attachments")["volumeAttachments"])

    # -- changes ------------------------------------------------------------------------------
    def create(self, server: dict[str, Any]) -> str:
        return str(self._call("post", "/servers", {"server": server}, mv=CREATE_MICROVERSION)["server"]["id"])

    def stop(self, instance: str) -> None:
        self._call("post", f"/servers/{instance}/action", {"os-stop": None})

    def start(self, instance: str) -> None:
        self._call("post", f"/servers/{instance}/action", {"os-start": None})

    def delete(self, instance: str) -> None:
        self._call("delete", f"/servers/{instance}")

    def set_metadata(self, instance: str, items: dict[str, str]) -> None:
        """Add or replace these keys, keeping the others."""
        self._call("post", f"/servers/{instance}/metadata", {"metadata": items})

    def unset_metadata(self, instance: str, key: str) -> None:
        with contextlib.suppress(Gone):  # not there: nothing to remove
            self._call("delete", f"/servers/{instance}/metadata/{quote(key, safe='')}")
