"""The web server ``manage.py serve`` runs: daphne, with the rules of the HTTP edge that must
hold before any application code runs.

``python -m emailapi.server`` takes daphne's arguments (``-b/-p`` or ``--fd``, then
``emailapi.asgi:application``) and differs from ``python -m daphne`` in three ways:

* **Request bodies are bounded while they arrive.** daphne (Twisted) reads a whole body, into
  memory or a temporary file, before the application sees any of it, so a limit the application
  enforces (``emailapi.api.asgi_limits``) bounds nothing: a 200 MiB upload would be read in full
  and only then refused. Here a declared ``Content-Length`` over ``EMAILAPI_MAX_BODY_SIZE`` is
  answered ``413`` as soon as the headers are in, without a ``100 Continue``, and a chunked body
  is refused the moment it passes the limit. What the client still sends is read and dropped,
  for at most ``LINGER_SECONDS`` and twice the limit, so that a client that writes its whole
  body before reading (most do) reads the 413 instead of a reset; then the connection is cut.
* **The client is the peer**, unless the peer is in ``EMAILAPI_TRUSTED_PROXIES``
  (``emailapi.proxies``): daphne's ``--proxy-headers`` believes ``X-Forwarded-For`` from anyone.
* **The access log** names the client as resolved above, shows URLs with tokens replaced by
  ``***``, escapes control characters (``emailapi.lib.logsafe``) and is written line by line.
* **A stop lets the requests in progress finish.** On SIGTERM (``serve`` stopping) daphne
  cancels every application at once: a request whose view was waiting on a mail server lost
  its answer, though its view still ran to the end on its thread. Here the process stops
  accepting connections, gives the requests it is serving up to ``DRAIN_SECONDS`` to finish,
  closes its connections once their answers are written, and only then cancels what is left:
  the live streams and WebSockets (which never finish; their clients reconnect elsewhere) and
  a request still running at the deadline.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import weakref

import daphne.server  # installs Twisted's asyncio reactor: first, before anything uses Twisted
from daphne.access import AccessLogGenerator
from daphne.cli import CommandLineInterface
from daphne.http_protocol import HTTPFactory, WebRequest
from twisted.internet import reactor
from twisted.internet.defer import Deferred

from emailapi import proxies
from emailapi.api.error_shape import error_body
from emailapi.lib import logsafe
from emailapi.lib.process_exit import skip_final_collection
from webhooks.api.stream_asgi import streamed

logger = logging.getLogger("emailapi.server")  # run as __main__

# As long as nginx waits for more of a body it has refused (lingering_timeout): a busy
# machine still reads a small remainder in time; a client that keeps sending is cut anyway.
LINGER_SECONDS = 5.0
# How long a stopping process lets its requests in progress finish and their answers reach
# the client: ``serve`` kills a child still running 10 s after its SIGTERM, and the process
# still has to exit after this (a request cut at the deadline has its thread joined first).
DRAIN_SECONDS = 5.0


def payload_too_large(max_bytes: int) -> bytes:
    """The 413 body, in the API error shape (as ``emailapi.api.asgi_limits`` answers it)."""
    return json.dumps(error_body(f"Request body is larger than the {max_bytes} bytes allowed",
                                 "PayloadTooLarge", 413, {"maxBytes": max_bytes})).encode()


class EdgeRequest(WebRequest):
    """daphne's request, with its body counted as it arrives (Twisted calls ``gotLength`` once
    the headers are read, then ``handleContentChunk`` for each piece of the body)."""

    refused = False
    body_bytes = 0
    dropped_bytes = 0
    _linger = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.server.channels.add(self.channel)  # its connection, closed when stopping

    def gotLength(self, length):
        if length is not None and length > self.server.max_body_size:
            self.content = io.BytesIO()  # never written: nothing of the body is kept
            self.refuse_body()
        else:
            super().gotLength(length)

    def handleContentChunk(self, data):
        if self.refused:
            self.dropped_bytes += len(data)
            if self.dropped_bytes > 2 * self.server.max_body_size:
                self.hang_up()
            return
        self.body_bytes += len(data)
        if self.body_bytes > self.server.max_body_size:
            self.refuse_body()
        else:
            super().handleContentChunk(data)

    def refuse_body(self):
        """Answer 413 now, keep nothing more of the body, and hang up after the linger."""
        self.refused = True
        self.content.close()
        self.content = io.BytesIO()
        # Twisted answers "Expect: 100-continue" right after gotLength: the answer is no.
        self.requestHeaders.removeHeader(b"expect")
        body = payload_too_large(self.server.max_body_size)
        self.channel.transport.write(
            b"HTTP/1.1 413 Payload Too Large\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n"
            % len(body) + body)
        self._linger = reactor.callLater(LINGER_SECONDS, self.hang_up)
        self._log_refusal(len(body))

    def hang_up(self):
        if self._linger is not None and self._linger.active():
            self._linger.cancel()
        if self.channel is not None and self.channel.transport is not None:
            self.channel.transport.loseConnection()

    def process(self):
        if self.refused:  # the whole refused body came within the linger: done
            self.hang_up()
            return None
        return super().process()

    def connectionLost(self, reason):
        if self._linger is not None and self._linger.active():
            self._linger.cancel()
        super().connectionLost(reason)

    def _log_refusal(self, size: int):
        # The request line is parsed but not yet handed to the request (Twisted does that
        # once the body is complete): read it from the channel.
        method = getattr(self.channel, "_command", b"-").decode("ascii", "replace")
        path = getattr(self.channel, "_path", b"-").decode("ascii", "replace")
        peer = self.channel.transport.getPeer()
        host, port = getattr(peer, "host", None), getattr(peer, "port", 0)
        headers = [(name, value) for name, values in self.requestHeaders.getAllRawHeaders()
                   for value in values]
        client, _, forwarded = proxies.resolve(host, "http", headers, self.server.trusted_proxies)
        self.server.log_action("http", "complete", {
            "path": path, "status": 413, "method": method, "size": size, "time_taken": 0,
            "client": f"{client}:{0 if forwarded else port}" if client else None,
        })


class EdgeHTTPFactory(HTTPFactory):
    def buildProtocol(self, addr):
        protocol = super().buildProtocol(addr)
        protocol.requestFactory = EdgeRequest
        return protocol


class AccessLog(AccessLogGenerator):
    """daphne's access log, one flushed line per entry (it is read live, through a pipe)."""

    def write_entry(self, *args, **kwargs):
        super().write_entry(*args, **kwargs)
        self.stream.flush()


class EdgeServer(daphne.server.Server):
    def __init__(self, *args, action_logger=None, **kwargs):
        from django.conf import settings  # configured: the application is imported by now

        if isinstance(action_logger, AccessLogGenerator):
            action_logger = AccessLog(action_logger.stream)
        super().__init__(*args, action_logger=action_logger, **kwargs)
        # Never daphne's own reading of X-Forwarded-*, which believes anyone.
        self.proxy_forwarded_address_header = None
        self.proxy_forwarded_port_header = None
        self.proxy_forwarded_proto_header = None
        self.trusted_proxies = settings.EMAILAPI_TRUSTED_PROXIES
        self.max_body_size = settings.EMAILAPI_MAX_BODY_SIZE

    def run(self):
        self.ports = []  # what we listen on, closed first when stopping
        self.channels = weakref.WeakSet()  # HTTP connections that had a request (HTTPChannel)
        # daphne's run() builds its HTTP factory from this module-level name.
        daphne.server.HTTPFactory = EdgeHTTPFactory
        super().run()

    def listen_success(self, port):
        self.ports.append(port)
        super().listen_success(port)

    def create_application(self, protocol, scope):
        """Every HTTP request and WebSocket starts here: decide who the client is once."""
        scope = proxies.client_scope(scope, self.trusted_proxies)
        protocol.client_addr = scope.get("client")  # what the access log names
        # A stop does not wait for what never finishes by itself.
        protocol.long_lived = scope["type"] != "http" or streamed(scope)
        return super().create_application(protocol, scope)

    def kill_all_applications(self):
        """Twisted's shutdown (SIGTERM, SIGINT) waits for this before it drops every
        connection: let the requests in progress finish first, then cancel the rest."""
        for port in self.ports:
            port.stopListening()
        drained = Deferred.fromFuture(asyncio.ensure_future(self.drain(DRAIN_SECONDS)))
        drained.addErrback(lambda failure: logger.error(
            "Stopping: could not wait for the requests in progress: %s", failure.value))
        drained.addBoth(lambda _: super(EdgeServer, self).kill_all_applications())
        return drained

    async def drain(self, seconds: float) -> None:
        """Wait (at most ``seconds``) for the requests being served, then close the HTTP
        connections once what was written to them is sent."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        serving = [application for protocol, details in self.connections.items()
                   if (application := details.get("application_instance")) is not None
                   and not application.done() and not getattr(protocol, "long_lived", False)]
        if serving:
            logger.info("Stopping: finishing %d request%s in progress (at most %g s)",
                        len(serving), "" if len(serving) == 1 else "s", seconds)
            _, late = await asyncio.wait(serving, timeout=seconds)
            if late:
                logger.warning("Stopping: %d request%s still running after %g s; cancelled",
                               len(late), "" if len(late) == 1 else "s", seconds)
        # Twisted closes a connection when its written data is sent; its own stop, next,
        # drops them with whatever is still unsent.
        channels = [channel for channel in self.channels
                    if channel.transport is not None and channel.transport.connected]
        for channel in channels:
            channel.loseConnection()
        while any(channel.transport is not None and channel.transport.connected
                  for channel in channels) and loop.time() < deadline:
            await asyncio.sleep(0.02)

    def log_action(self, protocol, action, details):
        details = dict(details)
        if details.get("path") is not None:
            details["path"] = logsafe.escape_controls(logsafe.redact_url(str(details["path"])))
        for name in ("method", "client"):
            if details.get(name) is not None:
                details[name] = logsafe.escape_controls(str(details[name]))
        super().log_action(protocol, action, details)


class EdgeCommandLine(CommandLineInterface):
    description = "emailapi's web server (daphne with emailapi's HTTP edge)"
    server_class = EdgeServer


def main() -> None:
    skip_final_collection()  # a stopping process is gone in a fraction of a second
    EdgeCommandLine.entrypoint()


if __name__ == "__main__":
    main()
