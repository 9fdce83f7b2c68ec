"""How many bytes a stream client has not yet taken from the server: the slow-client signal.

Under daphne an ASGI ``send`` never waits: it hands the bytes to Twisted, which keeps whatever
the socket will not take in an unbounded buffer. A client that stops reading would therefore
make the server's memory grow without any ``await`` ever slowing down. The stream watches that
buffer instead: ``expose_send`` (wrapped around the ASGI app in ``emailapi.asgi``) puts the
server's own ``send`` into the scope, and ``Backlog`` finds the connection's Twisted transport
behind it and reads how much is still queued there.

This reads Twisted's ``FileDescriptor`` buffer fields (``dataBuffer``, ``offset``,
``_tempDataLen``), which are not public API: under another server, or if they change, the
backlog reads as 0 and only the per-client event queue bounds memory
(``tests/webhooks/test_stream.py`` drops a slow client through a real daphne, so a change shows).
"""

from __future__ import annotations

import asyncio
import time

SCOPE_KEY = "emailapi.server_send"


def expose_send(app, path: str = "/v1/stream"):
    """Wrap an ASGI app so requests to ``path`` carry the server's ``send`` in their scope."""

    async def exposing(scope, receive, send):
        if scope.get("path") == path:
            scope = {**scope, SCOPE_KEY: send}
        return await app(scope, receive, send)

    return exposing


class Backlog:
    def __init__(self, transport=None):
        self._transport = transport

    @classmethod
    def from_scope(cls, scope) -> Backlog:
        send = (scope or {}).get(SCOPE_KEY)
        protocol = (getattr(send, "args", None) or (None,))[0]
        return cls(getattr(protocol, "transport", None))

    def _socket_transport(self):
        transport = self._transport
        for _ in range(4):  # a TLS or policy wrapper keeps the socket's transport inside
            if transport is None or hasattr(transport, "_tempDataLen"):
                return transport
            transport = getattr(transport, "transport", None)
        return None

    def unsent_bytes(self) -> int:
        transport = self._socket_transport()
        if transport is None or not hasattr(transport, "dataBuffer"):
            return 0
        return len(transport.dataBuffer) - transport.offset + transport._tempDataLen

    def abort_later(self, seconds: float = 2.0) -> None:
        """Cut the connection if it is still open in ``seconds``: a client that does not read
        would otherwise keep its unsent bytes in memory for as long as TCP lets it."""
        transport = self._socket_transport()
        if transport is not None and hasattr(transport, "abortConnection"):
            asyncio.get_running_loop().call_later(seconds, transport.abortConnection)

    async def wait_drained(self, limit: int, patience: float, gone=lambda: False) -> bool:
        """Let the server flush, then wait (up to ``patience`` seconds) until fewer than
        ``limit`` bytes are unsent. False means the client is too slow (or ``gone()``)."""
        await asyncio.sleep(0)  # the reactor writes to the socket between our sends
        if self.unsent_bytes() < limit:
            return not gone()
        deadline = time.monotonic() + patience
        while time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            if gone():
                return False
            if self.unsent_bytes() < limit:
                return True
        return False
