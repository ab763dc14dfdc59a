"""An HTTP proxy in front of the real Nova that fails chosen requests on purpose.

Fault injection is the one place mocks are allowed; this keeps even that
real: Kronos talks HTTP to the proxy exactly as to Nova, and every request
the proxy does not sabotage reaches the real Nova unchanged. A fault
matches a method and a regular expression on the path (query included)
and fires for ``times`` matching requests after letting ``after`` through:

- ``"500"``, ``"503"``, ...: answered with that status, Nova never sees it;
- ``"lost:502"``: forwarded (Nova acts), then answered 502 — the answer lost;
- ``"hang"``: held ``delay`` seconds, then the connection is closed unanswered.

``down = True`` answers every request 503, as a Nova API being restarted.
"""

from __future__ import annotations

import http.client
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


@dataclass
class Fault:
    method: str
    path: str
    kind: str
    times: int = 1
    delay: float = 0.0
    after: int = 0
    hits: int = 0
    passed: int = 0


@dataclass
class FaultProxy:
    upstream: str
    faults: list[Fault] = field(default_factory=list)
    #: every request seen: (method, path, what happened: a status or "hang")
    log: list[tuple[str, str, str]] = field(default_factory=list)
    url: str = ""
    down: bool = False

    def add(
        self, method: str, path: str, kind: str, times: int = 1, delay: float = 0.0, after: int = 0
    ) -> Fault:
        fault = Fault(method, path, kind, times, delay, after)
        self.faults.append(fault)
        return fault

    def _take(self, method: str, path: str) -> Fault | None:
        if self.down:
            return Fault(method, path, "503")
        for f in self.faults:
            if f.method == method and f.hits < f.times and re.search(f.path, path):
                if f.passed < f.after:
                    f.passed += 1
                    return None
                f.hits += 1
                return f
        return None

    def seen(self, method: str, path: str) -> list[str]:
        return [what for m, p, what in self.log if m == method and re.search(path, p)]


def _handler(proxy: FaultProxy, lock: threading.Lock) -> type[BaseHTTPRequestHandler]:
    up = urlsplit(proxy.upstream)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            with lock:
                fault = proxy._take(self.command, self.path)
            if fault is not None and fault.kind == "hang":
                proxy.log.append((self.command, self.path, "hang"))
                time.sleep(fault.delay)
                self.close_connection = True
                return
            if fault is not None and not fault.kind.startswith("lost:"):
                proxy.log.append((self.command, self.path, fault.kind))
                self._answer(
                    int(fault.kind), [("Content-Type", "application/json")], b'{"error": "injected"}'
                )
                return
            conn = http.client.HTTPConnection(up.hostname or "127.0.0.1", up.port or 80, timeout=120)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP | {"host"}}
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            conn.close()
            if fault is not None:  # "lost:NNN": Nova acted, the client hears NNN
                proxy.log.append((self.command, self.path, fault.kind))
                self._answer(int(fault.kind.split(":")[1]), [], b"")
                return
            proxy.log.append((self.command, self.path, str(resp.status)))
            kept = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP]
            self._answer(resp.status, kept, data)

        def _answer(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _handle  # noqa: N815 (http.server names)

    return Handler


@contextmanager
def proxied(upstream: str) -> Iterator[FaultProxy]:
    """A proxy for ``upstream`` (its path prefix kept in ``url``), stopped on exit."""
    proxy = FaultProxy(upstream)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(proxy, threading.Lock()))
    server.daemon_threads = True
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}{urlsplit(upstream).path}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
