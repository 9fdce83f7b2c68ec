"""Failed sign-ins counted in Redis, per email address and per client address.

After ``MAX_PER_EMAIL`` failures for one address (or ``MAX_PER_IP`` from one client) within
``WINDOW`` seconds, sign-in is refused with one message, whether or not the account exists, so
the limit reveals nothing about who has an account. Redis down means no limit (it is a brake on
guessing, the password hash is the lock), logged once per failure.
"""

from __future__ import annotations

import hashlib
import logging

from django.conf import settings

from emailapi import proxies
from emailapi.lib.redis import get_redis

logger = logging.getLogger(__name__)

WINDOW = 15 * 60
MAX_PER_EMAIL = 5
MAX_PER_IP = 30


def client_address(request) -> str:
    """The client a sign-in comes from: ``REMOTE_ADDR`` only. A forwarded header is whatever
    the client says unless a proxy we trust sets it, and that is decided before a view runs."""
    return proxies.client_address(request) or "unknown"


def _keys(email: str, ip: str) -> list[tuple[str, int]]:
    digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
    prefix = settings.EMAILAPI_REDIS_PREFIX
    return [(f"{prefix}:login-fail:email:{digest}", MAX_PER_EMAIL),
            (f"{prefix}:login-fail:ip:{ip}", MAX_PER_IP)]


def blocked(email: str, ip: str) -> bool:
    keys = _keys(email, ip)
    try:
        values = get_redis().mget([key for key, _ in keys])
    except Exception as exc:  # noqa: BLE001 - fail open, see the module docstring
        logger.warning("sign-in limit skipped, Redis unavailable: %s", exc)
        return False
    return any(int(value or 0) >= limit for value, (_, limit) in zip(values, keys, strict=True))


def record_failure(email: str, ip: str) -> None:
    try:
        pipe = get_redis().pipeline()
        for key, _ in _keys(email, ip):
            pipe.incr(key)
            pipe.expire(key, WINDOW, nx=True)
        pipe.execute()
    except Exception as exc:  # noqa: BLE001
        logger.warning("sign-in failure not counted, Redis unavailable: %s", exc)


def clear(email: str) -> None:
    """A successful sign-in forgives the address's failures (not the client's)."""
    try:
        get_redis().delete(_keys(email, "-")[0][0])
    except Exception:  # noqa: BLE001
        pass
