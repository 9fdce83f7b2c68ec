"""A fast webhook receiver on loopback: one asyncio loop, keep-alive, answers 200 at once.

``webhook_receiver.WebhookReceiver`` spends a thread and ``http.server``'s parsing on every
request (about 350 requests/s here), so it, not the dispatcher, would be what a throughput
benchmark measured. This one parses just enough HTTP/1.1 (request line, headers,
``Content-Length`` body) to record each request and answer it, several thousand a second on
one core. For benchmarks and tests that need volume; it cannot fail or delay requests.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass

ANSWER = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n"
          b'{"ok":true}')


@dataclass(frozen=True)
class Arrival:
    at: float  # time.monotonic() when the whole request was read
    headers: dict[str, str]
    body: bytes


class _Protocol(asyncio.Protocol):
    def __init__(self, receiver: FastReceiver):
        self.receiver = receiver
        self.buffer = bytearray()
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            headers = {}
            for line in head[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length") or 0)
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4:end + 4 + length])
            del self.buffer[:end + 4 + length]
            self.receiver._arrived(Arrival(time.monotonic(), headers, body))
            self.transport.write(ANSWER)


class FastReceiver:
    def __init__(self):
        self.arrivals: list[Arrival] = []
        self._changed = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._server = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> FastReceiver:
        self._server = self._loop.run_until_complete(self._loop.create_server(
            lambda: _Protocol(self), "127.0.0.1", 0, backlog=1024))
        self._thread.start()
        return self

    def stop(self) -> None:
        async def close():
            self._server.close()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/hook"

    def _arrived(self, arrival: Arrival) -> None:
        with self._changed:
            self.arrivals.append(arrival)
            self._changed.notify_all()

    def clear(self) -> None:
        with self._changed:
            self.arrivals.clear()

    def wait_count(self, count: int, timeout: float) -> list[Arrival]:
        """Block until ``count`` requests have arrived; return them in arrival order."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.arrivals) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"fast receiver: {len(self.arrivals)} of {count} requests arrived")
                self._changed.wait(left)
            return list(self.arrivals)

    def wait_for(self, predicate, timeout: float):
        """Block until ``predicate(arrivals)`` is true (checked as requests arrive, at most
        every 50 ms); return its value."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not (value := predicate(list(self.arrivals))):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"fast receiver: timed out with {len(self.arrivals)} requests")
                self._changed.wait(min(left, 0.05))
            return value

