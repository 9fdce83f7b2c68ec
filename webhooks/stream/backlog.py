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

Downloads have the same problem with a body in parts: ``paced`` is the ``send`` that waits for
the client between them (``tests/mailboxes/test_slow_downloads.py`` proves it through a real
daphne as well).
"""

from __future__ import annotations

import asyncio
import logging
import time

logger = logging.getLogger(__name__)

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
        return cls.from_send((scope or {}).get(SCOPE_KEY))

    @classmethod
    def from_send(cls, send) -> Backlog:
        """The backlog of the connection behind the server's own ``send`` (daphne's is a
        partial of its protocol's ``handle_reply``)."""
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

    async def wait_taken(self, limit: int, stall: float) -> bool:
        """Wait until fewer than ``limit`` bytes are unsent, for as long as the client keeps
        taking some; False once it took none for ``stall`` seconds."""
        await asyncio.sleep(0)  # the reactor writes to the socket between our sends
        unsent = self.unsent_bytes()
        since = time.monotonic()
        delay = 0.01  # short while the client takes bytes (a fast one is not held back), up
        while unsent >= limit:  # to 50 ms while it takes none
            await asyncio.sleep(delay)
            now = self.unsent_bytes()
            if now < unsent:
                unsent, since, delay = now, time.monotonic(), 0.01
            elif time.monotonic() - since > stall:
                return False
            else:
                delay = min(delay * 2, 0.05)
        return True


def paced(send, limit: int, stall: float):
    """``send`` for an HTTP response whose body comes in parts (a download: an attachment, a
    message's source): after each part it waits until fewer than ``limit`` bytes are left
    unsent, so the next part is read (from the mail server) only as the client takes the
    last. Unpaced, a client that reads slowly or not at all had the server read the whole
    download into daphne's buffer at the mail server's pace: a few such requests for a large
    attachment held hundreds of MB of one web process. A client that takes nothing for
    ``stall`` seconds is cut off: its connection aborted, the response's sending cancelled
    (which closes the response, giving its mail server connection back)."""
    backlog = Backlog.from_send(send)

    async def paced_send(message):
        await send(message)
        if message.get("more_body") and message["type"] == "http.response.body":
            if not await backlog.wait_taken(limit, stall):
                logger.info("cut off a download whose client took nothing for %s s", stall)
                backlog.abort_later(0)
                raise asyncio.CancelledError

    return paced_send


def paced_bodies(app, limit: int, stall: float):
    """Wrap an ASGI app so that every HTTP response it streams is ``paced``."""

    async def pacing(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)
        return await app(scope, receive, paced(send, limit, stall))

    return pacing
