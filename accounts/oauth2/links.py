"""Signed, single-use connect links (``POST /v1/authentication/form``).

A link carries its parameters in the clear, ``data`` = base64url(JSON), and ``sig`` =
HMAC-SHA256 over ``data`` under a key derived from ``EMAILAPI_SECRET`` for this purpose only.
Changing one byte of either is refused, so nobody can retarget a link at another tenant,
account or redirect URL. The payload holds the tenant, a random ``nonce``, and ``exp``.

Single use: finishing the flow claims the nonce in Redis (SET NX, kept until the link would
have expired anyway), so a second completion with the same link is refused. Opening the page
again does not use the link up: a user who reloads or goes back can still finish.

Few attempts: each password attempt logs in to the servers typed into the form, so a link
would otherwise be a free password-guessing (or port-probing) tool for its whole lifetime.
``attempt`` counts the sign-in attempts of one link per minute (a Redis counter per link that
lives a minute from its first attempt); beyond ``EMAILAPI_CONNECT_ATTEMPTS_PER_MINUTE`` the
page answers 429 with Retry-After.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import time

from django.conf import settings

from emailapi.lib.redis import get_redis

MAX_DATA = 8192
ATTEMPT_WINDOW = 60  # seconds


class InvalidLink(Exception):
    """Tampered with, malformed, expired or already used; ``code`` says which."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code


@functools.lru_cache(maxsize=4)
def _key(secret: str) -> bytes:
    return hashlib.sha256(b"emailapi connect links\0" + secret.encode()).digest()


def _sign(data: str) -> str:
    mac = hmac.new(_key(settings.EMAILAPI_SECRET), data.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def make(payload: dict) -> tuple[str, str]:
    """Return ``(data, sig)`` for a payload that already has ``nonce`` and ``exp``."""
    raw = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    data = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return data, _sign(data)


def read(data: str, sig: str, now: float | None = None) -> dict:
    """The payload of a genuine, unexpired, unused link; ``InvalidLink`` otherwise."""
    if not data or not sig or len(data) > MAX_DATA or len(sig) > 100:
        raise InvalidLink("This link is incomplete.", "InvalidLink")
    # As bytes: compare_digest refuses str with non-ASCII characters (a TypeError, a 500).
    if not hmac.compare_digest(_sign(data).encode(), sig.encode("utf-8", "replace")):
        raise InvalidLink("This link is not valid.", "InvalidSignature")
    try:
        payload = json.loads(base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)))
    except ValueError:
        raise InvalidLink("This link is not valid.", "InvalidLink") from None
    if (now or time.time()) > payload["exp"]:
        raise InvalidLink("This link has expired. Ask for a new one.", "LinkExpired")
    if get_redis().exists(_used_key(payload["nonce"])):
        raise InvalidLink("This link was already used. Ask for a new one.", "LinkUsed")
    return payload


def use(payload: dict) -> None:
    """Claim the link for this completion; ``InvalidLink`` if another one got there first."""
    ttl = max(60, int(payload["exp"] - time.time()) + 60)
    if not get_redis().set(_used_key(payload["nonce"]), "1", nx=True, ex=ttl):
        raise InvalidLink("This link was already used. Ask for a new one.", "LinkUsed")


def release(payload: dict) -> None:
    """Give the link back after a completion that failed before saving anything."""
    get_redis().delete(_used_key(payload["nonce"]))


def attempt(payload: dict) -> int:
    """Count one sign-in attempt with this link; return 0 when allowed, else the seconds
    until the next one is. The window is the minute from the first counted attempt."""
    key = f"{settings.EMAILAPI_REDIS_PREFIX}:connect-attempts:{payload['nonce']}"
    pipe = get_redis().pipeline()  # MULTI: the three happen together
    pipe.set(key, 0, ex=ATTEMPT_WINDOW, nx=True)
    pipe.incr(key)
    pipe.ttl(key)
    _, count, ttl = pipe.execute()
    if count <= settings.EMAILAPI_CONNECT_ATTEMPTS_PER_MINUTE:
        return 0
    return max(1, ttl)


def _used_key(nonce: str) -> str:
    return f"{settings.EMAILAPI_REDIS_PREFIX}:connect-link-used:{nonce}"
