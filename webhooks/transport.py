"""Which webhook URLs we call, and one HTTP POST to a receiver: checked address, pinned
connection, bounded.

A webhook URL is chosen by a tenant, so without a check the dispatcher would make requests
into our own network for anyone (SSRF). The URL is checked (``emailapi.lib.netguard``) when a
subscription is saved *and* right before every request, because DNS may answer differently
later; the request then goes to that very address through ``emailapi.lib.http`` (shared with
the OAuth2 back channel): redirects are never followed (a 3xx is just a non-2xx answer),
connect and each read wait at most ``timeout`` seconds, at most ``MAX_RESPONSE_BYTES`` of the
answer are read, and connections are kept alive per receiver and checked address.
``WEBHOOKS_ALLOW_PRIVATE=true`` lifts the address rule (tests, on-premise receivers).
A URL may carry ``user:password@`` (``emailapi.lib.userinfo``): it is checked without it, and
callers send it as an ``Authorization`` header to the URL without it
(``webhooks.subscriptions.request_target``), as EmailEngine does.
No Django here: callers pass settings in.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from emailapi.lib import http, netguard, userinfo

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


def check_url(url: str, allow_private: bool) -> netguard.Target:
    """What saving a subscription checks: a userinfo HTTP Basic can carry
    (``userinfo.split``), then the rest (``netguard.check_url``, in webhook words)."""
    try:
        return netguard.check_url(userinfo.split(url)[0], allow_private)
    except netguard.InternalAddress as exc:
        raise _refused(exc) from None


def _refused(exc: netguard.InternalAddress) -> netguard.UnsafeTarget:
    return netguard.UnsafeTarget(f"{exc}; such webhooks are refused (WEBHOOKS_ALLOW_PRIVATE)")


def post(url: str, body: bytes, headers: dict[str, str], *, timeout: float,
         allow_private: bool) -> Outcome:
    started = time.monotonic()

    def outcome(status: int | None, error: str | None, answer: bytes = b"") -> Outcome:
        return Outcome(status, int((time.monotonic() - started) * 1000), error, answer)

    try:
        # The lookup and the request together end within ``http``'s bound (the claim's
        # lease counts on it).
        answer = http.request("POST", url, body, headers, timeout=timeout,
                              allow_private=allow_private, max_bytes=MAX_RESPONSE_BYTES)
    except netguard.InternalAddress as exc:  # ANY address the host resolves to is internal
        return outcome(None, str(_refused(exc)))
    except (netguard.UnsafeTarget, netguard.Unresolvable, http.RequestFailed) as exc:
        return outcome(None, str(exc))
    if 200 <= answer.status < 300:
        return outcome(answer.status, None, answer.body)
    error = f"HTTP {answer.status}"
    if 300 <= answer.status < 400 and answer.headers.get("Location"):
        error += " (redirects are not followed)"
    return outcome(answer.status, error, answer.body)
