"""A tenant's API calls, counted in Redis: this minute's (the rate limit's window) and
today's (UTC), for the throttle (``emailapi.api.throttling``) and the dashboard's usage.

Counting is best effort, like the limit: when Redis is unreachable a request is let through
and not counted, and the dashboard shows the usage as unknown.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import lru_cache

from emailapi.lib.redis import get_redis

logger = logging.getLogger(__name__)
WINDOW = 60  # seconds: the rate limit's fixed window
DAY = 86400


def _minute_key(tenant_id: int, window: int) -> str:
    return f"emailapi:rate:{tenant_id}:{window}"


def _day_key(tenant_id: int, day: int) -> str:
    return f"emailapi:calls:{tenant_id}:{day}"


# One round trip and one reply per request (issue 19): the counts and their expiry in a
# script, rather than a MULTI of two INCRs and two EXPIREs (six replies for the client to
# read). A key's expiry is set when the key is made; a window's key is never used again after
# its window, nor a day's after its day.
_COUNT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
if KEYS[2] then
  if redis.call('INCR', KEYS[2]) == 1 then redis.call('EXPIRE', KEYS[2], ARGV[2]) end
end
return count
"""


def count_call(tenant_id: int, api_call: bool = True, now: float | None = None) -> int:
    """Count one request in this minute's window (and, for an ``api_call``, in today's);
    returns the window's count so far (Redis errors propagate: the caller decides)."""
    now = time.time() if now is None else now
    keys = [_minute_key(tenant_id, int(now) // WINDOW)]
    if api_call:
        keys.append(_day_key(tenant_id, int(now) // DAY))
    return int(_count_script()(keys=keys, args=[WINDOW * 2, DAY * 2]))


@lru_cache(maxsize=4)
def _script_of(client):
    return client.register_script(_COUNT)


def _count_script():
    return _script_of(get_redis())


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
