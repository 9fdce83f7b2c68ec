"""HTTP requests to a tenant-chosen URL, safely: checked address, pinned connection, bounded.

Webhook deliveries and OAuth2 back-channel requests (token, refresh, revocation) go through
here, because both send to URLs a tenant chose:

* The host is resolved and checked (``netguard``) right before the request, and the
  connection goes to that very address; the URL's host travels in ``Host``, TLS SNI and the
  certificate check. DNS cannot swap in an internal address between check and connect.
* Redirects are never followed (a 3xx is an answer like any other): a redirect could point
  anywhere, including inside our network.
* Connect and each read wait at most ``timeout`` seconds; at most ``max_bytes`` of the answer
  are read, so a server streaming forever cannot hold a thread.
* Connections are kept alive and reused per (scheme, checked address, port, host): a new TCP
  (and TLS) connection per request would cost more than the request itself. A connection
  goes back to the pool only when its answer was read to the end; a reused connection the
  server had meanwhile closed is retried once on a fresh one.
* Failures are described in our words (``RequestFailed``), never with text the server sent.
"""

from __future__ import annotations

import http.client
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

import urllib3
from urllib3.exceptions import HTTPError

from emailapi.lib import netguard
from emailapi.lib.netguard import Target

POOLS_KEPT = 256  # servers with a live pool; the least recently used beyond are closed
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
    target = netguard.parse_url(url)
    address = netguard.resolve(target.host, target.port, allow_private)[0]
    return send(target, address, method, body, headers, timeout=timeout, max_bytes=max_bytes)


def send(target: Target, address: str, method: str, body: bytes | None,
         headers: dict[str, str], *, timeout: float, max_bytes: int) -> Answer:
    """``method`` to ``target`` at the checked ``address``; ``RequestFailed`` if no answer."""
    try:
        try:
            return _exchange(target, address, method, body, headers, timeout, max_bytes)
        except urllib3.exceptions.ProtocolError:  # a kept-alive connection closed meanwhile
            return _exchange(target, address, method, body, headers, timeout, max_bytes)
    except HTTPError as exc:
        raise RequestFailed(describe(exc)) from None
    except OSError as exc:
        raise RequestFailed(f"Connection failed: {exc.strerror or type(exc).__name__}") \
            from None


def _exchange(target: Target, address: str, method: str, body: bytes | None,
              headers: dict[str, str], timeout: float, max_bytes: int) -> Answer:
    headers = {**headers, "Host": target.host_header}
    if body is not None:
        headers["Content-Length"] = str(len(body))
    response = _pool(target, address, timeout).urlopen(
        method, target.path, body=body, headers=headers,
        redirect=False, retries=False, preload_content=False, assert_same_host=False,
        release_conn=False, timeout=urllib3.Timeout(connect=timeout, read=timeout),
    )
    complete = False
    try:
        answer = response.read(max_bytes, decode_content=False)
        complete = len(answer) < max_bytes or not response.read(1, decode_content=False)
    finally:
        if not complete:  # unread bytes left (or an error): this connection cannot be reused
            response.close()
        response.release_conn()
    return Answer(response.status, response.headers, answer)


_pools: OrderedDict[tuple, urllib3.HTTPConnectionPool] = OrderedDict()
_pools_lock = threading.Lock()


def _pool(target: Target, address: str, timeout: float) -> urllib3.HTTPConnectionPool:
    """The kept-alive pool for this server at this checked address."""
    key = (target.scheme, address, target.port, target.host, timeout)
    with _pools_lock:
        pool = _pools.get(key)
        if pool is not None:
            _pools.move_to_end(key)
            return pool
        if target.scheme == "https":
            pool = urllib3.HTTPSConnectionPool(
                address, target.port, maxsize=CONNECTIONS_PER_POOL, server_hostname=target.host,
                assert_hostname=target.host, cert_reqs="CERT_REQUIRED", timeout=timeout)
        else:
            pool = urllib3.HTTPConnectionPool(address, target.port,
                                              maxsize=CONNECTIONS_PER_POOL, timeout=timeout)
        _pools[key] = pool
        while len(_pools) > POOLS_KEPT:
            _pools.popitem(last=False)[1].close()
        return pool


def describe(exc: HTTPError) -> str:
    """A short description of a failed request, in our words: no secret, and nothing the
    server sent (a non-HTTP server's banner would otherwise come back as a "status line")."""
    reason = getattr(exc, "reason", None) or exc
    if isinstance(exc, urllib3.exceptions.ReadTimeoutError) or isinstance(
            reason, urllib3.exceptions.ReadTimeoutError):
        return "Timed out waiting for the answer"
    # Before ConnectTimeoutError: in urllib3 2.x NewConnectionError (refused, unreachable)
    # subclasses it, so a refused connection would read "Timed out connecting".
    if isinstance(exc, urllib3.exceptions.NewConnectionError) or isinstance(
            reason, urllib3.exceptions.NewConnectionError):
        return "Connection refused or unreachable"
    if isinstance(exc, urllib3.exceptions.ConnectTimeoutError) or isinstance(
            reason, urllib3.exceptions.ConnectTimeoutError):
        return "Timed out connecting"
    if isinstance(exc, urllib3.exceptions.SSLError):
        return f"TLS error: {getattr(_ssl_cause(exc), 'reason', None) or 'handshake failed'}"
    if isinstance(exc, urllib3.exceptions.ProtocolError):
        cause = exc.args[1] if len(exc.args) > 1 else None
        if isinstance(cause, http.client.BadStatusLine) and not isinstance(
                cause, http.client.RemoteDisconnected):
            return "The server's answer is not HTTP"
        return "The connection closed before a complete answer"
    return f"Request failed ({type(exc).__name__})"


def _ssl_cause(exc: BaseException):
    """The ``ssl.SSLError`` under urllib3's wrapper (its ``reason`` is a fixed code name such
    as CERTIFICATE_VERIFY_FAILED)."""
    for candidate in (*exc.args, exc.__cause__, exc.__context__):
        if hasattr(candidate, "reason") and hasattr(candidate, "library"):
            return candidate
    return None
