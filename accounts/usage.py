"""A tenant's API calls, counted in Redis: this minute's (the rate limit's window) and
today's (UTC), for the throttle (``emailapi.api.throttling``) and the dashboard's usage.

Counting is best effort, like the limit: when Redis is unreachable a request is let through
and not counted, and the dashboard shows the usage as unknown.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from emailapi.lib.redis import get_redis

logger = logging.getLogger(__name__)
WINDOW = 60  # seconds: the rate limit's fixed window
DAY = 86400


def _minute_key(tenant_id: int, window: int) -> str:
    return f"emailapi:rate:{tenant_id}:{window}"


def _day_key(tenant_id: int, day: int) -> str:
    return f"emailapi:calls:{tenant_id}:{day}"


def count_call(tenant_id: int, api_call: bool = True, now: float | None = None) -> int:
    """Count one request in this minute's window (and, for an ``api_call``, in today's);
    returns the window's count so far (Redis errors propagate: the caller decides)."""
    now = time.time() if now is None else now
    minute = _minute_key(tenant_id, int(now) // WINDOW)
    pipe = get_redis().pipeline()
    pipe.incr(minute)
    pipe.expire(minute, WINDOW * 2)
    if api_call:
        day = _day_key(tenant_id, int(now) // DAY)
        pipe.incr(day)
        pipe.expire(day, DAY * 2)
    return pipe.execute()[0]


@dataclass(frozen=True)
class Calls:
    this_minute: int
    today: int


def calls(tenant_id: int, now: float | None = None) -> Calls | None:
    """The tenant's API calls this minute and today (UTC); None when Redis does not answer."""
    now = time.time() if now is None else now
    try:
        minute, day = get_redis().mget([_minute_key(tenant_id, int(now) // WINDOW),
                                        _day_key(tenant_id, int(now) // DAY)])
    except Exception as exc:  # noqa: BLE001 - usage is shown as unknown
        logger.warning("usage of tenant %s unknown, Redis unavailable: %s", tenant_id, exc)
        return None
    return Calls(int(minute or 0), int(day or 0))
