"""A real Nova API on 127.0.0.1 with the fake virt driver (run in its own virtualenv).

Prototype for the Nova adapter's tests (issue #7), not yet used by them.
Run with the Nova environment's python, never inside pytest (Nova's test
base class patches openstacksdk, ``os.uname``, logging and global config):

    OS_NOVA_DISABLE_EVENTLET_PATCHING=1 nova-venv/bin/python tests/nova_cloud.py cmp-1 cmp-2 cmp-3

A host may name its fake driver, ``cmp-4=fake.MediumFakeDriverWithNestedCustomResources``
(a nested child provider with CUSTOM_MAGIC); the others run ``fake.MediumFakeDriver``.

Pinned guests: the fake driver reports no PCPU and no NUMA topology, so the
tests give hosts PCPU inventory and custom traits through the Placement API,
as an operator's tooling can, and Nova's scheduler decides from Placement as
it does for libvirt hosts. Two settings make that sound: the scheduler
never falls back to asking for VCPU when PCPU is asked for (the fallback
exists for clouds mid-upgrade from ``vcpu_pin_set``; without it a pinned
guest could land on a host without PCPU, which only the NUMATopologyFilter
would refuse), and the computes never re-read their providers from
Placement (the fake driver would otherwise put back its own three classes
over the PCPU inventory). Nova's libvirt fakes would report PCPU and NUMA
cells themselves, but need process-wide libvirt patching, a second driver
kind in the cloud and stubbed live migrations; what Kronos reads is
Placement either way.

It prints ``READY http://127.0.0.1:PORT/v2.1 http://127.0.0.1:PORT2`` (the
compute API and Placement) and serves until its parent dies or stdin closes. Tokens: ``admin`` (roles reader, member, admin) and
``member`` (reader, member), mapped by a tiny WSGI shim onto the headers
Nova's functional-test Keystone stub reads.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

os.environ.setdefault("OS_NOVA_DISABLE_EVENTLET_PATCHING", "1")

import nova.tests.functional  # noqa: F401  (first nova import: native threads)
from nova.tests.functional import integrated_helpers

PROJECT = "6f70656e737461636b20342065766572"
TOKENS = {"admin": ("admin", "reader,member,admin"), "member": ("demo", "reader,member")}


class Cloud(integrated_helpers.ProviderUsageBaseTestCase):
    compute_driver = "fake.MediumFakeDriver"

    def setUp(self) -> None:
        paste = Path(sys.prefix) / "etc" / "nova" / "api-paste.ini"
        self.flags(api_paste_config=str(paste), group="wsgi")
        super().setUp()

    def runTest(self) -> None:  # noqa: N802  (unittest's name)
        pass


def _shim(app):  # type: ignore[no-untyped-def]
    def wrapped(environ, start_response):  # type: ignore[no-untyped-def]
        user, roles = TOKENS.get(environ.get("HTTP_X_AUTH_TOKEN", ""), ("anonymous", ""))
        environ["HTTP_X_AUTH_USER"] = user
        environ["HTTP_X_USER_ID"] = user
        environ["HTTP_X_AUTH_PROJECT_ID"] = PROJECT
        environ["HTTP_X_ROLES"] = roles
        return app(environ, start_response)

    return wrapped


def _serve(app):  # type: ignore[no-untyped-def]
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    class Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = make_server("127.0.0.1", 0, app, server_class=Server, handler_class=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}"


def _orphaned() -> None:
    """Exit when the parent goes away (stdin closes), whatever the parent did."""
    sys.stdin.read()
    os._exit(0)


def _slow_live_migrations(seconds: float) -> None:
    """Every fake live migration takes ``seconds`` (the HA tests count migrations in flight at
    once, which instant ones never are). The wait runs in the compute's migration thread, while
    Nova's record says ``running``, as a real copy of memory would."""
    if seconds <= 0:
        return
    import time

    from nova.virt import fake

    original = fake.FakeDriver.live_migration

    def live_migration(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        time.sleep(seconds)
        return original(self, *args, **kwargs)

    fake.FakeDriver.live_migration = live_migration


def _quiet_logging() -> None:
    """Nova's test logging formats every DEBUG record (to catch bad format strings) and keeps
    every INFO one in memory for the life of the cloud; nobody reads them, and on 2 cores that
    is CPU the API and the computes wait for. Warnings and errors go to stderr (nova.log)."""
    import logging

    root = logging.getLogger()
    root.setLevel(logging.WARNING)
    handler = logging.StreamHandler(sys.__stderr__)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root.addHandler(handler)


def _stacks_on_sigusr1() -> None:
    """``kill -USR1`` writes every thread's stack to nova.log: the tests send it when the API
    stops answering, so a stalled cloud says where it is stuck."""
    import faulthandler
    import signal

    faulthandler.register(signal.SIGUSR1, file=sys.__stderr__, all_threads=True)


def _readers_never_wait_for_writers() -> None:
    """The CellDatabases fixture's lock lets a reader in while a writer only waits for it.

    The fixture guards its "last targeted cell" with a readers-writer lock
    that queues new readers behind a waiting writer. Under native threads a
    reader can hold the lock while it waits on another thread (a conductor
    inside ``target_cell`` waiting for the database fixture's write lock, or
    for a compute's RPC answer): the writer waits for that reader, every
    other reader for the writer, and the thread the first reader waits on
    is one of them. A CI run lost a cloud that way, every API read stuck
    for good (tests/nova_server.py's docstring says what its stacks
    showed). Readers that pass a waiting writer cannot close that circle;
    the writer still excludes them once it holds the lock, which is all
    the fixture needs.
    """
    import importlib

    nova_fixtures = importlib.import_module("nova.tests.fixtures.nova")

    class ReaderFirst(nova_fixtures.ReaderWriterLock):
        def _acquire_read_lock(self, me):  # type: ignore[no-untyped-def]
            if me in self._pending_writers:
                raise RuntimeError(
                    f"Writer {me} can not acquire a read lock while waiting for the write lock"
                )
            with self._cond:
                while not (self._writer is None or self._writer == me):
                    self._cond.wait()
                self._readers[me] = self._readers.get(me, 0) + 1

    nova_fixtures.ReaderWriterLock = ReaderFirst


def main(hosts: list[str]) -> None:
    from nova import quota
    from nova.api import wsgi
    from placement import deploy

    _stacks_on_sigusr1()
    _readers_never_wait_for_writers()
    cloud = Cloud()
    cloud.setUp()
    cloud.flags(driver="nova.quota.NoopQuotaDriver", group="quota")
    quota.QUOTAS._driver_cls = None  # re-read the driver
    cloud.flags(disable_fallback_pcpu_query=True, group="workarounds")
    cloud.flags(resource_provider_association_refresh=0, group="compute")
    # Nova's functional tests check every API answer against its schema (a quarter of a GET's
    # CPU here); checking Nova's answers is Nova's tests' job, here it only costs the tests time
    cloud.flags(response_validation="ignore", group="api")
    _slow_live_migrations(float(os.environ.get("KRONOS_TEST_MIGRATION_DELAY", "0")))
    _quiet_logging()
    for spec in hosts:
        host, _, driver = spec.partition("=")
        cloud.flags(compute_driver=driver or Cloud.compute_driver)
        cloud._start_compute(host)
    compute = _serve(_shim(wsgi.Loader().load_app("osapi_compute")))
    # the fixture's Placement (same database) over HTTP too: noauth2, token "admin" is admin
    placement = _serve(deploy.loadapp(cloud.placement.fixture.conf_fixture.conf))
    print(f"READY {compute}/v2.1 {placement}", flush=True)
    _orphaned()


if __name__ == "__main__":
    try:
        main(sys.argv[1:] or ["cmp-1", "cmp-2", "cmp-3"])
    except BaseException:  # Nova's fixtures capture stderr: report on the real one
        import traceback

        traceback.print_exc(file=sys.__stderr__)
        os._exit(1)
