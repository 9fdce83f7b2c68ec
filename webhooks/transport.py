"""One HTTP POST to a webhook receiver, safely: checked address, pinned connection, bounded.

* The host is resolved and checked by ``urlguard`` right before the request, and the
  connection goes to that very address (the URL's host travels in ``Host``, TLS SNI and the
  certificate check), so DNS cannot swap in an internal address between check and connect.
* Redirects are never followed (a 3xx is just a non-2xx answer): a redirect could point
  anywhere, including inside our network.
* Connect and each read wait at most ``timeout`` seconds; at most ``MAX_RESPONSE_BYTES`` of
  the answer are read, so a receiver streaming forever cannot hold a delivery thread.
No Django here: callers pass settings in.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import urllib3
from urllib3.exceptions import HTTPError

from webhooks import urlguard

MAX_RESPONSE_BYTES = 64 * 1024


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
    pool = _pool(target, address, timeout)
    try:
        response = pool.urlopen(
            "POST", target.path, body=body,
            headers={**headers, "Host": target.host_header, "Content-Length": str(len(body))},
            redirect=False, retries=False, preload_content=False, assert_same_host=False,
            timeout=urllib3.Timeout(connect=timeout, read=timeout),
        )
        try:
            answer = response.read(MAX_RESPONSE_BYTES, decode_content=False)
        finally:
            response.close()
    except HTTPError as exc:
        return outcome(None, _describe(exc))
    except OSError as exc:
        return outcome(None, f"Connection failed: {exc}")
    finally:
        pool.close()
    if 200 <= response.status < 300:
        return outcome(response.status, None, answer)
    error = f"HTTP {response.status}"
    if 300 <= response.status < 400 and response.headers.get("Location"):
        error += " (redirects are not followed)"
    return outcome(response.status, error, answer)


def _pool(target: urlguard.Target, address: str, timeout: float):
    if target.scheme == "https":
        return urllib3.HTTPSConnectionPool(
            address, target.port, maxsize=1, server_hostname=target.host,
            assert_hostname=target.host, cert_reqs="CERT_REQUIRED", timeout=timeout)
    return urllib3.HTTPConnectionPool(address, target.port, maxsize=1, timeout=timeout)


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
