"""Signed, single-use connect links (``POST /v1/authentication/form``).

A link carries its parameters in the clear, signed with ``django.core.signing`` (its own salt,
under ``SECRET_KEY``, which is derived from ``EMAILAPI_SECRET``): ``signing.dumps`` gives
``<base64url(JSON)>:<timestamp>:<signature>``; the first part travels as ``data``, the rest as
``sig``. Changing one byte of either is refused, so nobody can retarget a link at another
tenant, account or redirect URL. The payload holds the tenant and a random ``nonce``; a link
expires ``EMAILAPI_CONNECT_LINK_TTL`` seconds after it was made (``max_age``).

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

from django.conf import settings
from django.core import signing

from accounts.errors import (
    LinkExpired,
    LinkIncomplete,
    LinkInvalid,
    LinkSignatureInvalid,
    LinkUsed,
)
from emailapi.lib.redis import get_redis

MAX_DATA = 8192
ATTEMPT_WINDOW = 60  # seconds
LOOKUPS_PER_MINUTE = 30  # MX lookups of /connect/autoconfig per link
SALT = "emailapi.connect-link"


def make(payload: dict) -> tuple[str, str]:
    """Return ``(data, sig)`` for a payload that already has its ``nonce``."""
    data, sig = signing.dumps(payload, salt=SALT).split(":", 1)
    return data, sig


def read(data: str, sig: str) -> dict:
    """The payload of a genuine, unexpired, unused link; one of ``accounts.errors.LINK_ERRORS`` otherwise."""
    if not data or not sig or len(data) > MAX_DATA or len(sig) > 100:
        raise LinkIncomplete()
    try:
        payload = signing.loads(f"{data}:{sig}", salt=SALT,
                                max_age=settings.EMAILAPI_CONNECT_LINK_TTL)
    except signing.SignatureExpired:
        raise LinkExpired() from None
    except signing.BadSignature:
        raise LinkSignatureInvalid() from None
    except ValueError:  # signed by us, yet not our JSON: cannot happen short of a key leak
        raise LinkInvalid() from None
    if get_redis().exists(_used_key(payload["nonce"])):
        raise LinkUsed()
    return payload


def use(payload: dict) -> None:
    """Claim the link for this completion; ``LinkUsed`` if another one got there first."""
    ttl = max(60, settings.EMAILAPI_CONNECT_LINK_TTL + 60)
    if not get_redis().set(_used_key(payload["nonce"]), "1", nx=True, ex=ttl):
        raise LinkUsed()


def release(payload: dict) -> None:
    """Give the link back after a completion that failed before saving anything."""
    get_redis().delete(_used_key(payload["nonce"]))


def attempt(payload: dict) -> int:
    """Count one sign-in attempt with this link; return 0 when allowed, else the seconds
    until the next one is. The window is the minute from the first counted attempt."""
    return _counted(f"{settings.EMAILAPI_REDIS_PREFIX}:connect-attempts:{payload['nonce']}",
                    settings.EMAILAPI_CONNECT_ATTEMPTS_PER_MINUTE)


def lookup(payload: dict) -> int:
    """Count one DNS lookup made for this link's page (``/connect/autoconfig``); 0 when
    allowed, else the seconds until the next one is. Typing an address makes a few; a script
    holding a link could otherwise have this service resolve names without end, each lookup
    holding a web thread for up to 5 s."""
    return _counted(f"{settings.EMAILAPI_REDIS_PREFIX}:connect-lookups:{payload['nonce']}",
                    LOOKUPS_PER_MINUTE)


def _counted(key: str, limit: int) -> int:
    pipe = get_redis().pipeline()  # MULTI: the three happen together
    pipe.set(key, 0, ex=ATTEMPT_WINDOW, nx=True)
    pipe.incr(key)
    pipe.ttl(key)
    _, count, ttl = pipe.execute()
    if count <= limit:
        return 0
    return max(1, ttl)


def _used_key(nonce: str) -> str:
    return f"{settings.EMAILAPI_REDIS_PREFIX}:connect-link-used:{nonce}"
