"""The few Nova calls the executor makes: read one server and one service, move, poll.

Separate from :mod:`kronos.adapters.nova` (the bulk reader) because these
are per-instance calls with different failure rules: a 400/409 is Nova
refusing the move (definitive), a 5xx or a lost connection may pass
(retried). Microversions: 2.30 live migration to a named host with
``block_migration: auto``, 2.56 cold migration to a named host, 2.29
evacuation to a named host, 2.59 migrations filtered by instance.
"""

from __future__ import annotations

from typing import Any

from kronos.errors import KronosError

MICROVERSION = "2.59"
ACTIONS = {
    "live-migrate": lambda dest: {"os-migrateLive": {"host": dest, "block_migration": "auto"}},
    "cold-migrate": lambda dest: {"migrate": {"host": dest}},
    "evacuate": lambda dest: {"evacuate": {"host": dest}},
}


#: a migration record in one of these states holds nothing any more
OVER = frozenset({"completed", "done", "confirmed", "finished", "error", "failed", "cancelled", "reverted"})


class Refused(KronosError):
    """Nova said no (4xx): retrying the same request cannot help."""

    exit_code = 65


class Transient(KronosError):
    """5xx, timeout, lost connection: the same request may succeed later."""

    exit_code = 75


class Compute:
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        from keystoneauth1 import exceptions as ksa

        try:
            proxy = self.conn.compute
            resp = getattr(proxy, method)(path, json=body, microversion=MICROVERSION, raise_exc=False)
        except ksa.ClientException as exc:
            raise Transient(f"{method.upper()} {path}: {str(exc).splitlines()[0][:300]}") from None
        if resp.status_code >= 500:
            raise Transient(f"{method.upper()} {path}: HTTP {resp.status_code}")
        if resp.status_code >= 400:
            raise Refused(f"{method.upper()} {path}: HTTP {resp.status_code}: {_fault(resp)}")
        if not resp.content:
            return None
        try:
            return resp.json()
        except ValueError:
            raise Transient(f"{method.upper()} {path}: answer is not JSON") from None

    def server(self, instance: str) -> dict[str, Any]:
        return dict(self._call("get", f"/servers/{instance}")["server"])

    def service(self, host: str) -> dict[str, Any] | None:
        found = self._call("get", f"/os-services?binary=nova-compute&host={host}")["services"]
        return dict(found[0]) if found else None

    def act(self, action: str, instance: str, destination: str) -> None:
        self._call("post", f"/servers/{instance}/action", ACTIONS[action](destination))

    def confirm_resize(self, instance: str) -> None:
        self._call("post", f"/servers/{instance}/action", {"confirmResize": None})

    def migrations_in_flight(self, since: str) -> int:
        """How many migrations of the whole cloud, changed since ``since`` (ISO 8601), are not over:
        what a cloud-wide limit counts beyond the engines' own slots (an engine killed mid-step
        leaves its migration running in Nova)."""
        found = self._call("get", f"/os-migrations?changes-since={since}")["migrations"]
        return sum(1 for m in found if m.get("status") not in OVER)

    def migrations(self, instance: str) -> list[dict[str, Any]]:
        """The instance's migration records, oldest first."""
        found = self._call("get", f"/os-migrations?instance_uuid={instance}")["migrations"]
        return sorted(found, key=lambda m: (m.get("created_at") or "", m.get("id") or 0))


def _fault(resp: Any) -> str:
    try:
        body = resp.json()
        inner = next(iter(body.values())) if isinstance(body, dict) and body else body
        return str(inner.get("message", inner))[:300] if isinstance(inner, dict) else str(inner)[:300]
    except (ValueError, AttributeError):
        return str(resp.text)[:300]
