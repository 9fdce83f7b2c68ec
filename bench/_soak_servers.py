"""Servers the soak (``bench/soak.py``) needs beyond ``tests/servers/``: a webhook receiver
that can be taken down and brought back on the same port.

Not a benchmark itself (``bench/run.py`` skips files starting with an underscore).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

from tests.servers.fast_receiver import FastReceiver, _Protocol
from tests.servers.net import LOOPBACK, find_free_port


@dataclass(frozen=True)
class Delivery:
    """One webhook request as the soak needs it."""

    at: float  # time.time() when the request was read
    event_id: str
    event: str
    account: str
    path: str
    message_id: str | None


class _TrackedProtocol(_Protocol):
    def connection_made(self, transport):
        super().connection_made(transport)
        self.receiver._opened(self)

    def connection_lost(self, exc):
        self.receiver._closed(self)


class SwitchableReceiver(FastReceiver):
    """``FastReceiver`` on a fixed port that can go down (listener closed and every open
    connection cut, so the dispatcher meets refused connections) and come back up.

    Keeps, per request, what the soak counts: the event id (duplicates), and for
    ``messageNew`` the Message-ID (lost events). ``open_connections`` is how many connections
    the dispatcher holds right now: each carries at most one request at a time, so it bounds
    the requests in flight at a kill.
    """

    def __init__(self):
        super().__init__()
        self.port = find_free_port()
        self.deliveries: list[Delivery] = []
        self._protocols: set[_TrackedProtocol] = set()

    def start(self) -> SwitchableReceiver:
        self._thread.start()
        self.up()
        return self

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/hook"

    def up(self) -> None:
        async def listen():
            return await self._loop.create_server(
                lambda: _TrackedProtocol(self), LOOPBACK, self.port, backlog=1024,
                reuse_address=True)

        self._server = asyncio.run_coroutine_threadsafe(listen(), self._loop).result(timeout=10)

    def down(self) -> None:
        async def close():
            if self._server is not None:
                self._server.close()
                self._server = None
            for protocol in list(self._protocols):
                protocol.transport.abort()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)

    def stop(self) -> None:
        self.down()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def open_connections(self) -> int:
        return len(self._protocols)

    def _opened(self, protocol) -> None:
        self._protocols.add(protocol)

    def _closed(self, protocol) -> None:
        self._protocols.discard(protocol)

    def _arrived(self, arrival) -> None:
        try:
            payload = json.loads(arrival.body)
            data = payload.get("data") or {}
            delivery = Delivery(time.time(), str(payload.get("id")), str(payload.get("event")),
                                str(payload.get("account") or ""),
                                str(payload.get("path") or data.get("path") or ""),
                                data.get("messageId"))
        except (ValueError, AttributeError):
            delivery = Delivery(time.time(), "unparsable", "unparsable", "", "", None)
        with self._changed:
            self.deliveries.append(delivery)
            self._changed.notify_all()
