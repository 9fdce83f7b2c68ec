"""One HTTP POST to a webhook receiver, safely: checked address, pinned connection, bounded.

* The host is resolved and checked by ``urlguard`` right before the request, and the
  connection goes to that very address (the URL's host travels in ``Host``, TLS SNI and the
  certificate check), so DNS cannot swap in an internal address between check and connect.
* Redirects are never followed (a 3xx is just a non-2xx answer): a redirect could point
  anywhere, including inside our network.
* Connect and each read wait at most ``timeout`` seconds; at most ``MAX_RESPONSE_BYTES`` of
  the answer are read, so a receiver streaming forever cannot hold a delivery thread.
* Connections are kept alive and reused per (scheme, checked address, port, host): a new TCP
  (and TLS) connection per delivery would cost more than the delivery itself. A connection
  goes back to the pool only when its answer was read to the end; a reused connection the
  receiver had meanwhile closed is retried once on a fresh one (at least once allows it).
No Django here: callers pass settings in.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import urllib3
from urllib3.exceptions import HTTPError

from webhooks import urlguard

MAX_RESPONSE_BYTES = 64 * 1024
POOLS_KEPT = 256  # receivers with a live pool; the least recently used beyond are closed
CONNECTIONS_PER_POOL = 32  # kept idle per receiver; more may open, and close after use


@dataclass
class Outcome:
    status_code: int | None  # None when no answer came (refused, timeout, unsafe address)
    duration_ms: int
    error: str | None  # None on a 2xx
    body: bytes = b""

    @property
    def ok(self) -> bool:
        return self.error is None


def post(url: str, body: bytes, headers: dict[str, str], *, timeout: float,
         allow_private: bool) -> Outcome:
    started = time.monotonic()

    def outcome(status: int | None, error: str | None, answer: bytes = b"") -> Outcome:
        return Outcome(status, int((time.monotonic() - started) * 1000), error, answer)

    try:
        target = urlguard.parse(url)
        address = urlguard.resolve(target, allow_private)[0]
    except (urlguard.UnsafeURL, urlguard.Unresolvable) as exc:
        return outcome(None, str(exc))
    try:
        try:
            status, location, answer = _exchange(target, address, body, headers, timeout)
        except urllib3.exceptions.ProtocolError:  # a kept-alive connection closed meanwhile
            status, location, answer = _exchange(target, address, body, headers, timeout)
    except HTTPError as exc:
        return outcome(None, _describe(exc))
    except OSError as exc:
        return outcome(None, f"Connection failed: {exc}")
    if 200 <= status < 300:
        return outcome(status, None, answer)
    error = f"HTTP {status}"
    if 300 <= status < 400 and location:
        error += " (redirects are not followed)"
    return outcome(status, error, answer)


def _exchange(target: urlguard.Target, address: str, body: bytes, headers: dict[str, str],
              timeout: float) -> tuple[int, str | None, bytes]:
    """POST once; return (status, Location header, the start of the answer)."""
    response = _pool(target, address, timeout).urlopen(
        "POST", target.path, body=body,
        headers={**headers, "Host": target.host_header, "Content-Length": str(len(body))},
        redirect=False, retries=False, preload_content=False, assert_same_host=False,
        release_conn=False, timeout=urllib3.Timeout(connect=timeout, read=timeout),
    )
    complete = False
    try:
        answer = response.read(MAX_RESPONSE_BYTES, decode_content=False)
        complete = len(answer) < MAX_RESPONSE_BYTES or not response.read(1, decode_content=False)
    finally:
        if not complete:  # unread bytes left (or an error): this connection cannot be reused
            response.close()
        response.release_conn()
    return response.status, response.headers.get("Location"), answer


_pools: OrderedDict[tuple, urllib3.HTTPConnectionPool] = OrderedDict()
_pools_lock = threading.Lock()


def _pool(target: urlguard.Target, address: str, timeout: float) -> urllib3.HTTPConnectionPool:
    """The kept-alive pool for this receiver at this checked address."""
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


def _describe(exc: HTTPError) -> str:
    """A short, secret-free description of a failed request."""
    reason = getattr(exc, "reason", None) or exc
    if isinstance(reason, urllib3.exceptions.ReadTimeoutError) or isinstance(
            exc, urllib3.exceptions.ReadTimeoutError):
        return "Timed out waiting for the answer"
    if isinstance(reason, urllib3.exceptions.ConnectTimeoutError) or isinstance(
            exc, urllib3.exceptions.ConnectTimeoutError):
        return "Timed out connecting"
    if isinstance(exc, urllib3.exceptions.SSLError):
        return f"TLS error: {reason}"
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        return "Connection refused or unreachable"
    return f"{type(exc).__name__}: {reason}"[:500]
