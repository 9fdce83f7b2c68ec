"""A real HTTP webhook receiver on loopback for tests: records every request it gets.

Behaviour is set per receiver: ``fail_next(n, status)`` answers ``status`` to the next ``n``
requests, ``sleep`` delays every answer, ``redirect_to`` answers 302, ``endless`` streams a
body that never ends. Each request handled on its own thread, so a sleeping answer does not
block the receiver itself.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .net import hang_up


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    status: int
    # Every header line as sent, repeats included (``headers`` keeps one value per name).
    header_lines: list[tuple[str, str]] = field(default_factory=list)

    @property
    def payload(self) -> dict:
        return json.loads(self.body)


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        """A sender that hung up before the answer (a delivery that timed out, a dispatcher
        stopped) is what several tests make happen: not printed as a traceback. Anything
        else is, as http.server does."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


@dataclass
class WebhookReceiver:
    sleep: float = 0.0
    redirect_to: str | None = None
    endless: bool = False
    requests: list[Received] = field(default_factory=list)
    _failures: list[int] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    connections_opened: int = 0
    _connections: set = field(default_factory=set)

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                with receiver._lock:
                    receiver._connections.add(self.connection)
                    receiver.connections_opened += 1

            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = receiver._next_status()
                if receiver.sleep:
                    time.sleep(receiver.sleep)
                with receiver._lock:
                    receiver.requests.append(Received(self.path, dict(self.headers.items()),
                                                      body, time.monotonic(), status,
                                                      list(self.headers.items())))
                if receiver.endless:
                    return self._endless()
                answer = b'{"ok":true}' if status < 300 else b'{"ok":false}'
                self.send_response(status)
                if receiver.redirect_to:
                    self.send_header("Location", receiver.redirect_to)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def _endless(self):
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                chunk = b"x" * 65536
                try:
                    for _ in range(10_000):  # 640 MB: far more than anyone should read
                        self.wfile.write(chunk)
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
        self.drop_connections()  # kept-alive ones too: a stopped receiver answers nothing

    def drop_connections(self) -> None:
        """Close every open connection from this side, as a receiver timing out idle
        keep-alive connections does."""
        with self._lock:
            hang_up(self._connections, close=False)
            self._connections.clear()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def fail_next(self, count: int, status: int = 500) -> None:
        with self._lock:
            self._failures.extend([status] * count)

    def recover(self) -> None:
        """Answer 2xx from now on: the failures still queued by ``fail_next`` are dropped."""
        with self._lock:
            self._failures.clear()

    def _next_status(self) -> int:
        if self.redirect_to:
            return 302
        with self._lock:
            return self._failures.pop(0) if self._failures else 200

    def accepted(self) -> list[Received]:
        """Requests answered 2xx, in arrival order."""
        with self._lock:
            return [r for r in self.requests if 200 <= r.status < 300]

    def wait_for(self, predicate, timeout: float = 60.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate(self)
            if value:
                return value
            time.sleep(0.02)
        raise AssertionError(f"receiver: timed out; got {len(self.requests)} requests")

    def wait_accepted(self, count: int, timeout: float = 60.0) -> list[Received]:
        return self.wait_for(lambda r: len(r.accepted()) >= count and r.accepted(), timeout)
