"""Several ``kronos run`` engines on one cloud, coordinated through a tooz backend (etcd).

Without ``[coordination] backend_url`` an engine is alone: it owns every
aggregate of its scope and ``[engine] lock_file`` keeps a second one out
(:class:`Alone`). With one, every engine joins one tooz group and:

- **divides the aggregates** with tooz's consistent-hash partitioner
  (:meth:`Group.owns`): N engines each plan and execute about 1/N of the
  aggregates; when a member leaves or its lease runs out (``heartbeat_timeout``)
  the others' rings drop it and its aggregates move to them;
- **locks an aggregate** for the whole of a cycle's plan and execution
  (:meth:`Group.hold`), so two engines whose rings disagree for a moment
  (one has seen a member join, the other not yet) never act on it at once;
- **counts migrations cloud-wide** (:meth:`Group.slot`): ``[executor]
  max_concurrent_migrations_cloud`` slots, each a backend lock, so the
  limit holds across engines and a dead engine's slots expire with its lease;
- **fails closed** (:meth:`Group.healthy`): before a migration starts, the
  backend must answer and this engine must still hold the aggregate's lock;
  otherwise no migration starts (running ones are polled to their end);
- **shares the state** (:class:`EtcdState`): cooldowns, quarantines and
  results live in one etcd key updated by compare-and-swap, so the engine
  that inherits an aggregate honours the cooldowns its previous owner set.

Locks are the backend's (etcd leases and transactions through tooz): no
consensus is written here.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import attrs
from attrs import frozen

import kronos
from kronos.adapters.config import CoordinationConfig, backend_url_problem
from kronos.core.model import State
from kronos.errors import ConfigError, KronosError, PermissionDenied, TemporaryFailure
from kronos.files import render
from kronos.redact import redact

log = logging.getLogger(__name__)

#: seconds between two looks for a free cloud-wide migration slot
SLOT_POLL = 1.0


class Coordinator(Protocol):
    member: str

    def owns(self, aggregate: str) -> bool: ...
    def hold(self, aggregate: str) -> contextlib.AbstractContextManager[bool]: ...
    def slot(
        self, stop: threading.Event, busy: Callable[[], int] | None = None
    ) -> contextlib.AbstractContextManager[bool]: ...
    def healthy(self, aggregate: str | None = None) -> bool: ...
    def may_start(self, aggregate: str) -> bool | None: ...
    def close(self) -> None: ...


def default_member() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Alone:
    """One engine: it owns every aggregate, locks nothing (``[engine] lock_file`` does), no cloud limit."""

    def __init__(self, member: str = "") -> None:
        self.member = member or default_member()

    def owns(self, aggregate: str) -> bool:
        return True

    @contextlib.contextmanager
    def hold(self, aggregate: str) -> Iterator[bool]:
        yield True

    @contextlib.contextmanager
    def slot(self, stop: threading.Event, busy: Callable[[], int] | None = None) -> Iterator[bool]:
        yield True

    def healthy(self, aggregate: str | None = None) -> bool:
        return True

    def may_start(self, aggregate: str) -> bool | None:
        return True

    def close(self) -> None:
        pass


def backend_url(config: CoordinationConfig) -> str:
    """The URL tooz gets: ``heartbeat_timeout`` becomes the driver's ``timeout`` unless the URL sets one."""
    parts = urlsplit(config.backend_url)
    query = dict(parse_qsl(parts.query))
    query.setdefault("timeout", str(max(1, round(config.heartbeat_timeout))))
    return urlunsplit(parts._replace(query=urlencode(query)))


def _shown(config: CoordinationConfig) -> str:
    """The setting as messages quote it (its user-info may be a password)."""
    return f"[coordination] backend_url = {redact(config.backend_url)!r}"


def reason(exc: BaseException) -> str:
    """What went wrong, for a message: the exception's text, else its class name and its innermost
    cause's text (etcd3gw raises ``ConnectionFailedError()`` with an empty text: the refused
    connection is its cause). Redacted: a library's text may quote a URL."""
    text = str(exc).strip()
    if text:
        return redact(text)
    detail, seen, cause = "", {id(exc)}, exc.__cause__ or exc.__context__
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        detail = str(cause).strip() or detail
        cause = cause.__cause__ or cause.__context__
    if detail.startswith("[Errno"):
        detail = detail.split("] ", 1)[-1]
    return redact(f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__)


def _unreachable(config: CoordinationConfig, what: str, exc: BaseException) -> TemporaryFailure:
    return TemporaryFailure(f"{_shown(config)}: {what}: {reason(exc)}")


def _tooz() -> Any:
    """tooz's coordination module (ConfigError without it: load_config leaves that to here)."""
    try:
        from tooz import coordination
    except ImportError:
        raise ConfigError("[coordination] backend_url needs tooz: pip install 'kronos-planner[ha]'") from None
    return coordination


def _coordinator(coordination: Any, config: CoordinationConfig, member: str) -> Any:
    """tooz's coordinator for the backend (not started); a URL no driver takes is a ConfigError.

    :func:`kronos.adapters.config.load_config` refuses such a URL already; this
    is for a :class:`CoordinationConfig` built by hand.
    """
    try:
        return coordination.get_coordinator(backend_url(config), member.encode())
    except (RuntimeError, ValueError, TypeError) as exc:  # stevedore's NoMatches: no such driver
        raise ConfigError(
            f"{_shown(config)}: {backend_url_problem(config.backend_url) or reason(exc)}"
        ) from None


class Group:
    """One engine of a tooz group (see the module's docstring)."""

    def __init__(self, config: CoordinationConfig, cloud_limit: int = 0) -> None:
        coordination = _tooz()
        self._errors = _backend_errors(coordination)
        self.member = config.member_id or default_member()
        self.group = config.group.encode()
        self.cloud_limit = cloud_limit
        self._coord = _coordinator(coordination, config, self.member)
        try:
            self._coord.start(start_heart=True)
            # weight 1: the capability tooz's partitioner reads; ring_owner gives every member one
            self._coord.join_group_create(self.group, capabilities={"weight": 1})
        except self._errors as exc:
            with contextlib.suppress(Exception):  # its heartbeat thread
                self._coord.stop()
            raise _unreachable(config, f"cannot join group {config.group!r}", exc) from None
        self._held: dict[str, Any] = {}
        self._mutex = threading.Lock()

    # -- who owns what ------------------------------------------------------------------------
    def refresh(self) -> frozenset[bytes]:
        """The group's members now; join again if the backend forgot us (our lease ran out while it
        was unreachable)."""
        members = frozenset(self._coord.get_members(self.group).get())
        if self.member.encode() not in members:
            log.warning("coordination: %s is no longer in group %s; joining again", self.member, self.group)
            self._coord.join_group(self.group, capabilities={"weight": 1}).get()
            members = frozenset(self._coord.get_members(self.group).get())
        return members

    def members(self) -> list[str]:
        return sorted(m.decode() for m in self.refresh())

    def owner(self, aggregate: str) -> str:
        """The member the ring gives ``aggregate`` to (as this engine sees the group now)."""
        return ring_owner(self.refresh(), aggregate)

    def owns(self, aggregate: str) -> bool:
        """Does the ring give ``aggregate`` to this engine? False when the backend is unreachable.

        The ring is tooz's (:class:`tooz.hashring.HashRing`, as its partitioner
        builds it) over the members the backend lists at this moment, not one
        kept up to date by membership events: every engine, and ``kronos
        status``, computes the same owner from the same member list.
        """
        try:
            return ring_owner(self.refresh(), aggregate) == self.member
        except self._errors as exc:
            log.warning("coordination: backend unreachable, acting on nothing: %s", reason(exc))
            return False

    # -- locks ---------------------------------------------------------------------------------
    @contextlib.contextmanager
    def hold(self, aggregate: str) -> Iterator[bool]:
        """The aggregate's lock for the block (False: another engine has it, or no backend)."""
        lock = self._coord.get_lock(_lock_key(self.group, b"aggregate/" + aggregate.encode()))
        try:
            got = bool(lock.acquire(blocking=False))
        except self._errors as exc:
            log.warning("coordination: cannot lock aggregate %s: %s", aggregate, reason(exc))
            got = False
        if got:
            with self._mutex:
                self._held[aggregate] = lock
        try:
            yield got
        finally:
            if got:
                with self._mutex:
                    self._held.pop(aggregate, None)
                self._release(lock)

    @contextlib.contextmanager
    def slot(self, stop: threading.Event, busy: Callable[[], int] | None = None) -> Iterator[bool]:
        """One of ``cloud_limit`` migration slots, waited for until ``stop`` (False then).

        Each slot is a lock of its own; a dead engine's expire with its lease,
        while Nova carries its running migration on. ``busy``: the migrations
        the cloud has in flight (Nova's records): a slot is only kept while
        they are fewer than the limit, so such an orphan still counts.
        """
        if not self.cloud_limit:
            yield True
            return
        lock, said = None, False
        while lock is None and not stop.is_set():
            for k in range(self.cloud_limit):
                candidate = self._coord.get_lock(_lock_key(self.group, b"migration-slot/%d" % k))
                try:
                    if candidate.acquire(blocking=False):
                        lock = candidate
                        break
                except self._errors as exc:
                    if not said:
                        log.warning("coordination: cannot take a migration slot, waiting: %s", reason(exc))
                        said = True
                    break
            if lock is not None and busy is not None and not self._room(busy):
                self._release(lock)
                lock = None
            if lock is None:
                stop.wait(SLOT_POLL)
        try:
            yield lock is not None
        finally:
            if lock is not None:
                self._release(lock)

    def _room(self, busy: Callable[[], int]) -> bool:
        """Fewer migrations in flight than the limit (an unanswered count is no room: fail closed)."""
        try:
            return busy() < self.cloud_limit
        except KronosError as exc:
            log.warning("coordination: cannot count the migrations in flight, waiting: %s", exc)
            return False

    def _release(self, lock: Any) -> None:
        try:
            lock.release()
        except self._errors as exc:  # its lease expires anyway
            log.warning("coordination: could not release %s: %s", lock.name, reason(exc))

    def may_start(self, aggregate: str) -> bool | None:
        """May a migration in ``aggregate`` start now? True: go. False: the backend does not
        answer (wait for it). None: it answers, but the aggregate's lock is no longer ours (its
        lease ran out while the backend was unreachable for longer than heartbeat_timeout, and
        another engine may hold it now): give the plan up.
        """
        try:
            self._coord.get_members(self.group).get()
            with self._mutex:
                lock = self._held.get(aggregate)
            return True if lock is not None and lock_alive(lock) else None
        except self._errors as exc:
            log.warning("coordination: backend unreachable: %s", reason(exc))
            return False

    def healthy(self, aggregate: str | None = None) -> bool:
        """The backend answers (and, for ``aggregate``, its lock is still ours)."""
        if aggregate is not None:
            return self.may_start(aggregate) is True
        try:
            self._coord.get_members(self.group).get()
            return True
        except self._errors as exc:
            log.warning("coordination: backend unreachable: %s", reason(exc))
            return False

    def close(self) -> None:
        with contextlib.suppress(*self._errors):
            self._coord.leave_group(self.group).get()
        with contextlib.suppress(*self._errors):
            self._coord.stop()

    # -- shared state ---------------------------------------------------------------------------
    def state_store(self) -> EtcdState:
        return _etcd_state(self._coord, self.group, self._errors)


def _backend_errors(coordination: Any) -> tuple[type[BaseException], ...]:
    """What a backend that does not answer raises: tooz's errors, and the etcd3 gateway
    client's own, which tooz does not translate when it connects."""
    errors: tuple[type[BaseException], ...] = (coordination.ToozError, OSError)
    try:
        from etcd3gw.exceptions import Etcd3Exception
    except ImportError:
        return errors
    return (*errors, Etcd3Exception)


#: why a backend other than etcd cannot hold the engines' shared state
NOT_ETCD = (
    "[coordination] backend_url: the shared state (cooldowns, quarantines) needs an etcd3+http(s) backend"
)


def _etcd_state(coord: Any, group: bytes, errors: tuple[type[BaseException], ...]) -> EtcdState:
    """The group's shared state on ``coord``'s etcd client (ConfigError for another backend)."""
    client = getattr(coord, "client", None)
    if client is None or not hasattr(client, "replace"):
        raise ConfigError(NOT_ETCD)
    return EtcdState(client, f"/kronos/{group.decode()}/state", errors)


@contextlib.contextmanager
def shared_state(config: CoordinationConfig) -> Iterator[EtcdState]:
    """The engines' shared state, for ``kronos state`` to read and change by hand: connected
    without joining their group (joining would hand this command a share of the aggregates)."""
    if not urlsplit(config.backend_url).scheme.startswith("etcd3"):
        # before connecting: tooz's file driver makes its folder first
        raise ConfigError(f"{NOT_ETCD}, not {redact(config.backend_url)!r}")
    coordination = _tooz()
    errors = _backend_errors(coordination)
    coord = _coordinator(coordination, config, f"state-{default_member()}")
    try:
        coord.start(start_heart=False)
    except errors as exc:
        raise _unreachable(config, "cannot reach the backend", exc) from None
    try:
        yield _etcd_state(coord, config.group.encode(), errors)
    finally:
        with contextlib.suppress(Exception):
            coord.stop()


@functools.lru_cache(maxsize=8)
def _ring(members: frozenset[bytes]) -> Any:
    from tooz import hashring, partitioner

    return hashring.HashRing(sorted(members), partitions=partitioner.Partitioner.DEFAULT_PARTITION_NUMBER)


def ring_owner(members: frozenset[bytes], aggregate: str) -> str:
    """The member tooz's consistent-hash ring gives ``aggregate`` ("" in an empty group)."""
    if not members:
        return ""
    return str(next(iter(_ring(members).get_nodes(aggregate.encode()))).decode())


def lock_alive(lock: Any) -> bool:
    """Whether a tooz etcd3gw lock's lease still lives (tooz refreshes it, but never says it expired)."""
    lease = getattr(lock, "_lease", None)
    if lease is None:
        return bool(lock.acquired)
    return bool(lock.acquired) and int(lease.ttl()) > 0


class EtcdState:
    """The ``kronos.state/1`` document in one etcd key, changed only by compare-and-swap."""

    def __init__(self, client: Any, key: str, errors: tuple[type[BaseException], ...]) -> None:
        self.client = client
        self.key = key
        self.label = f"etcd key {key}"
        self._errors = errors

    def _read(self) -> tuple[str | None, State | None]:
        try:
            values = self.client.get(self.key)
        except self._errors as exc:
            raise TemporaryFailure(f"{self.label}: cannot read the shared state: {reason(exc)}") from None
        if not values:
            return None, None
        raw = values[0].decode() if isinstance(values[0], bytes) else str(values[0])
        stream = io.StringIO(raw)
        stream.name = self.label
        return raw, kronos.load_state(stream)

    def load(self) -> State | None:
        return self._read()[1]

    def update(self, change: Callable[[State | None], State]) -> State:
        """Apply ``change`` to the current state and store it, again on a fresh read if another
        engine wrote in between (compare-and-swap on the whole document)."""
        while True:
            raw, current = self._read()
            new = change(current)
            text = render(new)
            try:
                if raw is None:
                    done = self.client.create(self.key, text)
                else:
                    done = self.client.replace(self.key, raw, text)
            except self._errors as exc:
                raise TemporaryFailure(
                    f"{self.label}: cannot write the shared state: {reason(exc)}"
                ) from None
            if done:
                return new


@frozen
class Status:
    """What ``kronos status`` shows: the group as the backend has it now."""

    group: str
    members: tuple[str, ...]
    owners: dict[str, str]  # aggregate -> member the ring gives it to ("" with no member)
    locked: tuple[str, ...]  # aggregates a cycle is acting on now
    migrations_in_flight: int  # cloud-wide slots taken (only counted with a cloud-wide limit)


def _lock_key(group: bytes, name: bytes) -> bytes:
    return b"kronos/" + group + b"/" + name


def status(config: CoordinationConfig, aggregates: tuple[str, ...]) -> Status:
    """Read the group without joining it: members, the owner of each aggregate (the ring every
    member computes, :class:`tooz.partitioner.Partitioner`'s), locks and slots held."""
    parts = urlsplit(config.backend_url)
    try:
        never_used = parts.scheme == "file" and not Path(parts.path).exists()
    except OSError as exc:  # a folder on the way this user may not search
        raise PermissionDenied(
            f"{_shown(config)}: cannot look at {parts.path}: {exc.strerror or exc}"
        ) from None
    if never_used:
        # no engine ever used this folder; tooz's file driver would create it, and a read of
        # the group should leave the machine as it found it
        return Status(config.group, (), {a: "" for a in aggregates}, (), 0)
    coordination = _tooz()
    from tooz.drivers.etcd3gw import Etcd3Lock

    group = config.group.encode()
    errors = _backend_errors(coordination)
    coord = _coordinator(coordination, config, f"status-{default_member()}")
    try:
        coord.start(start_heart=False)
        try:
            members = sorted(coord.get_members(group).get())
        except coordination.GroupNotCreated:
            members = []
        owners = {a: ring_owner(frozenset(members), a) for a in aggregates}
        locked: list[str] = []
        slots = 0
        client = getattr(coord, "client", None)
        if client is not None:
            prefix = Etcd3Lock.LOCK_PREFIX + _lock_key(group, b"")
            for _value, meta in client.get_prefix(prefix.decode()):
                name = meta["key"].decode() if isinstance(meta["key"], bytes) else str(meta["key"])
                kind, _, what = name[len(prefix.decode()) :].partition("/")
                if kind == "aggregate":
                    locked.append(what)
                elif kind == "migration-slot":
                    slots += 1
        return Status(config.group, tuple(m.decode() for m in members), owners, tuple(sorted(locked)), slots)
    except errors as exc:
        raise _unreachable(config, f"cannot read group {config.group!r}", exc) from None
    finally:
        with contextlib.suppress(Exception):
            coord.stop()


def probe(config: CoordinationConfig) -> str:
    """``kronos check-config``: the backend answers, a member can join a group and take a lock.

    It joins a probe group beside the real one (joining the real one would
    hand it a share of the aggregates for a moment) and leaves it.
    """
    probe_config = attrs.evolve(config, group=f"{config.group}-check-config", member_id="")
    group = Group(probe_config)
    try:
        with group.hold("probe") as held:
            if not held:
                raise TemporaryFailure(
                    f"[coordination] backend_url: could not take a lock in {probe_config.group!r}"
                )
        members = len(status(config, ()).members)
        return (
            f"{redact(config.backend_url)}: joined and locked in a probe group; "
            f"group {config.group!r} has {members} member(s)"
        )
    finally:
        group.close()


def connect(config: CoordinationConfig, cloud_limit: int = 0) -> Coordinator:
    """The engine's coordinator: :class:`Group` with a backend, :class:`Alone` without."""
    if not config.backend_url:
        return Alone(config.member_id)
    return Group(config, cloud_limit)
