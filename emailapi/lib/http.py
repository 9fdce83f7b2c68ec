"""HTTP requests to a tenant-chosen URL, safely: checked address, pinned connection, bounded.

Webhook deliveries and OAuth2 back-channel requests (token, refresh, revocation) go through
here, because both send to URLs a tenant chose:

* The host is resolved and checked (``netguard``) right before the request, and the
  connection goes to that very address; the URL's host travels in ``Host``, TLS SNI and the
  certificate check. DNS cannot swap in an internal address between check and connect.
* Redirects are never followed (a 3xx is an answer like any other): a redirect could point
  anywhere, including inside our network.
* Connect and each read wait at most ``timeout`` seconds, and the whole request (connect,
  TLS, sending, the answer, and the one retry below) ends within ``TOTAL_TIMEOUTS`` times
  ``timeout``: a server dripping its answer a byte every few seconds never trips a read
  timeout, and would otherwise hold the thread (a webhook dispatcher slot shared by every
  tenant) for as long as it liked, and outlive the delivery's lease. At most ``max_bytes`` of
  the answer are read, so a server streaming forever cannot hold a thread either.
* Connections are kept alive and reused per (scheme, checked address, port, host): a new TCP
  (and TLS) connection per request would cost more than the request itself. A connection
  goes back to the pool only when its answer was read to the end; a kept connection the
  server closed meanwhile is noticed before use, and one that closes as the request goes
  out, with no answer, is retried once on a fresh one.
* The wire work is ``http_wire``'s (a lean HTTP/1.1 client: urllib3 cost a webhook delivery
  more CPU than everything else it does); TLS checks certificates and host names against
  the system's trust store.
* Failures are described in our words (``RequestFailed``), never with text the server sent;
  an answer the wire code trips over in a way not foreseen is a failure too (logged with its
  traceback), not an exception: a webhook lane would otherwise stop without recording the
  attempt and send the delivery again at each lease's end, for ever.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from emailapi.lib import netguard
from emailapi.lib.http_wire import ConnectFailed, Connection, Incomplete, NotHttp, request_bytes
from emailapi.lib.netguard import Target

logger = logging.getLogger(__name__)

# The whole of one request lasts at most this many ``timeout``s. Two: what a legitimate server
# may use anyway (a connect and an answer, each just within the timeout), and what a webhook
# delivery's lease allows an attempt (``webhooks.delivery_state.lease_seconds``).
TOTAL_TIMEOUTS = 2
POOLS_KEPT = 256  # servers with idle connections kept; the least recently used beyond are closed
CONNECTIONS_PER_POOL = 32  # kept idle per server; more may open, and close after use


class RequestFailed(Exception):
    """No answer came (refused, unreachable, timed out, TLS failed, not HTTP); the message
    is ours, safe to show."""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]  # case-insensitive
    body: bytes  # at most ``max_bytes`` of it


def request(method: str, url: str, body: bytes | None, headers: dict[str, str], *,
            timeout: float, allow_private: bool, max_bytes: int) -> Answer:
    """One request to ``url``: parsed, resolved and checked, sent to the checked address.
    Raises ``netguard.UnsafeTarget``, ``netguard.Unresolvable`` or ``RequestFailed``."""
    deadline = time.monotonic() + TOTAL_TIMEOUTS * timeout
    target = netguard.parse_url(url)
    address = netguard.resolve(target.host, target.port, allow_private, timeout)[0]
    return send(target, address, method, body, headers, timeout=timeout, max_bytes=max_bytes,
                deadline=deadline)


def send(target: Target, address: str, method: str, body: bytes | None,
         headers: dict[str, str], *, timeout: float, max_bytes: int,
         deadline: float | None = None) -> Answer:
    """``method`` to ``target`` at the checked ``address``; ``RequestFailed`` if no answer
    within ``TOTAL_TIMEOUTS * timeout``, or by ``deadline`` (``time.monotonic()``) when the
    request began earlier (with the lookup of its host name)."""
    if deadline is None:
        deadline = time.monotonic() + TOTAL_TIMEOUTS * timeout
    headers = {**headers, "Host": target.host_header}
    headers.setdefault("Accept-Encoding", "identity")
    if body is not None:
        headers["Content-Length"] = str(len(body))
    try:
        wire = request_bytes(method, target.path, headers, body)
    except ValueError:
        raise RequestFailed("Invalid request header (line break or colon in it)") from None
    key = (target.scheme, address, target.port, target.host, timeout)
    connection = _take(key)
    try:
        if connection is None:
            connection = _open(target, address, timeout, deadline)
        try:
            answer = connection.exchange(wire, head_only=method == "HEAD", max_bytes=max_bytes,
                                         deadline=deadline)
        except (Incomplete, ConnectionError) as exc:
            # A kept-alive connection the server closed meanwhile (it answered nothing):
            # once more on a fresh one.
            if not connection.requests or (isinstance(exc, Incomplete) and not exc.nothing_read):
                raise
            connection.close()
            connection = _open(target, address, timeout, deadline)
            answer = connection.exchange(wire, head_only=method == "HEAD", max_bytes=max_bytes,
                                         deadline=deadline)
    except Exception as exc:
        if connection is not None:
            connection.close()
        if not isinstance(exc, (ConnectFailed, NotHttp, Incomplete, OSError)):
            logger.exception("unexpected error in a request to %s", target.host)
        raise RequestFailed(describe(exc)) from None
    status, answer_headers, answer_body, reusable = answer
    if reusable:
        _give_back(key, connection)
    else:
        connection.close()
    return Answer(status, answer_headers, answer_body)


@lru_cache(maxsize=1)
def tls_context() -> ssl.SSLContext:
    """Certificates checked against the system's trust store, host names checked."""
    return ssl.create_default_context()


def _open(target: Target, address: str, timeout: float, deadline: float) -> Connection:
    if target.scheme == "https":
        return Connection.open(address, target.port, timeout, tls_host=target.host,
                               tls=tls_context(), deadline=deadline)
    return Connection.open(address, target.port, timeout, deadline=deadline)


# Idle kept-alive connections, by (scheme, checked address, port, host, timeout), most
# recently used server last; a connection is in here only while no request uses it.
_idle: OrderedDict[tuple, list[Connection]] = OrderedDict()
_idle_lock = threading.Lock()


def _take(key: tuple) -> Connection | None:
    while True:
        with _idle_lock:
            connections = _idle.get(key)
            if not connections:
                return None
            connection = connections.pop()
        if not connection.dropped():
            return connection
        connection.close()


def _give_back(key: tuple, connection: Connection) -> None:
    closing = []
    with _idle_lock:
        connections = _idle.setdefault(key, [])
        _idle.move_to_end(key)
        if len(connections) < CONNECTIONS_PER_POOL:
            connections.append(connection)
        else:
            closing.append(connection)
        while len(_idle) > POOLS_KEPT:
            closing.extend(_idle.popitem(last=False)[1])
    for extra in closing:
        extra.close()


def describe(exc: BaseException) -> str:
    """A short description of a failed request, in our words: no secret, and nothing the
    server sent (a non-HTTP server's banner would otherwise come back as a "status line")."""
    if isinstance(exc, ConnectFailed):
        return "Timed out connecting" if exc.timed_out else "Connection refused or unreachable"
    if isinstance(exc, ssl.SSLError):  # before OSError and TimeoutError: it is both
        if isinstance(exc, ssl.SSLCertVerificationError):
            return "TLS error: CERTIFICATE_VERIFY_FAILED"
        return f"TLS error: {getattr(exc, 'reason', None) or 'handshake failed'}"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "Timed out waiting for the answer"
    if isinstance(exc, NotHttp):
        return "The server's answer is not HTTP"
    if isinstance(exc, Incomplete | ConnectionError):
        return "The connection closed before a complete answer"
    if isinstance(exc, OSError):
        return f"Connection failed: {exc.strerror or type(exc).__name__}"
    return f"Request failed ({type(exc).__name__})"
