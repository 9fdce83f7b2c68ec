"""One HTTP POST to a webhook receiver, safely: checked address, pinned connection, bounded.

The receiver's host is checked by ``urlguard`` right before the request and the request goes
to that very address through ``emailapi.egress.http`` (shared with the OAuth2 back channel):
redirects are never followed (a 3xx is just a non-2xx answer), connect and each read wait at
most ``timeout`` seconds, at most ``MAX_RESPONSE_BYTES`` of the answer are read, and
connections are kept alive per receiver and checked address.
No Django here: callers pass settings in.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from emailapi.egress import http
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
        answer = http.send(target, address, "POST", body, headers, timeout=timeout,
                           max_bytes=MAX_RESPONSE_BYTES)
    except (urlguard.UnsafeURL, urlguard.Unresolvable, http.RequestFailed) as exc:
        return outcome(None, str(exc))
    if 200 <= answer.status < 300:
        return outcome(answer.status, None, answer.body)
    error = f"HTTP {answer.status}"
    if 300 <= answer.status < 400 and answer.headers.get("Location"):
        error += " (redirects are not followed)"
    return outcome(answer.status, error, answer.body)
