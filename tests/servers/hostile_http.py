"""A loopback HTTP server that answers with a script: the hostile or broken peer a webhook
receiver or an OAuth2 token endpoint may be (a tenant chooses those URLs).

Each connection reads one request (head and ``Content-Length`` body), records it, and then
sends what the script yields, in order: ``bytes`` are sent at once, a ``Pause(seconds)``
waits (on the server's stop event, so stopping never waits for it). The connection closes
when the script ends, when the client hangs up, or when the server stops. Scripts are
generator functions of no argument; the helpers below make the usual ones:

* ``once(data)``: one answer, then close;
* ``drip(data, every, first=b"")``: ``first`` at once, then ``data`` one byte at a time,
  ``every`` seconds apart (slow loris: each byte comes well within a read timeout, the whole
  never does);
* ``repeat(head, unit, times, tail)``: ``head``, ``unit`` ``times`` over, then ``tail`` (an
  endless run of informational answers or trailer lines, made finite so that a client that
  does not bound it still ends, and its test fails instead of hanging).

127.0.0.1 only; no Django here.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from tests.servers.net import LOOPBACK

Script = Callable[[], Iterator["bytes | Pause"]]


@dataclass(frozen=True)
class Pause:
    seconds: float


@dataclass
class Exchange:
    request: bytes  # head and body, as read
    hung_up_at: float | None = None  # time.monotonic() when the client closed, if it did


def once(data: bytes) -> Script:
    def script():
        yield data
    return script


def drip(data: bytes, every: float, *, first: bytes = b"") -> Script:
    def script():
        if first:
            yield first
        for index in range(len(data)):
            if index:
                yield Pause(every)
            yield data[index:index + 1]
    return script


def repeat(head: bytes, unit: bytes, times: int, tail: bytes = b"") -> Script:
    def script():
        yield head
        batch = max(1, 65536 // max(1, len(unit)))
        for start in range(0, times, batch):
            yield unit * min(batch, times - start)
        if tail:
            yield tail
    return script


class HostileHttpServer:
    """Serves every connection with ``script`` (see the module doc); ``exchanges`` records
    each request and when its client hung up."""

    def __init__(self, script: Script):
        self.script = script
        self.exchanges: list[Exchange] = []
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self.sock = socket.create_server((LOOPBACK, 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path: str = "/hook") -> str:
        return f"http://{LOOPBACK}:{self.port}{path}"

    def stop(self) -> None:
        self._stop.set()
        self.sock.close()
        for conn in list(self._conns):
            try:
                conn.close()
            except OSError:
                pass

    def wait_for(self, predicate, timeout: float = 20.0):
        """Block until ``predicate(exchanges)`` is true; return its value."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not (value := predicate(list(self.exchanges))):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"hostile server: timed out with {self.exchanges!r}")
                self._changed.wait(min(left, 0.05))
            return value

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _read_request(self, conn: socket.socket) -> bytes | None:
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            data = conn.recv(65536)
            if not data:
                return None
            buffer += data
        head, _, body = buffer.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(body) < length:
            data = conn.recv(65536)
            if not data:
                return None
            body += data
        return head + b"\r\n\r\n" + body

    def _serve(self, conn: socket.socket) -> None:
        exchange = None
        try:
            request = self._read_request(conn)
            if request is None:
                return
            exchange = Exchange(request)
            with self._changed:
                self.exchanges.append(exchange)
                self._changed.notify_all()
            for step in self.script():
                if self._stop.is_set():
                    return
                if isinstance(step, Pause):
                    if self._stop.wait(step.seconds):
                        return
                    continue
                conn.sendall(step)
            conn.shutdown(socket.SHUT_WR)
            while conn.recv(65536):  # until the client hangs up
                pass
        except OSError:
            pass  # the client hung up
        finally:
            if exchange is not None:
                with self._changed:
                    exchange.hung_up_at = time.monotonic()
                    self._changed.notify_all()
            conn.close()
