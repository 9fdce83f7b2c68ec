"""The tracking spool: fetches of a tracking image or link that PostgreSQL could not record when
they happened (an outage), kept in Redis until it can.

Why Redis, when Redis is otherwise only coordination and cache: the reader already has the image
or the redirect, and the database, where the event belongs, is the thing that failed; the fetch
exists nowhere else. Redis holds it for the length of the outage, and only then: a fetch recorded
directly (the database up) never touches it.

Three keys, under ``EMAILAPI_REDIS_PREFIX``:

* ``tracking-spool``: the fetches waiting, newest on the left. ``keep`` pushes one unless the
  list holds ``EMAILAPI_TRACKING_SPOOL_MAX`` already (one script: the check and the push are one
  step): someone fetching links in a loop during an outage cannot fill Redis. One past the cap
  is dropped, and the caller logs it.
* ``tracking-spool:taken``: what a drainer is recording right now. ``drain`` moves the oldest
  fetch there (``LMOVE``), hands it to ``write`` and removes it only once ``write`` returned (the
  event committed, or the fetch found to record nothing). A drainer that dies in between leaves
  it there, and the next drain takes it first.
* ``tracking-spool:lock``: one drainer at a time (a redis-py ``Lock``, renewed after each fetch);
  a dead drainer's lock lapses after ``LOCK_SECONDS``. The lock only saves work: two drainers at
  once (a lock that lapsed under a slow database) may hand the same fetch to ``write`` twice,
  and ``write`` records it once (``mailboxes.tracking_events.write``: each fetch carries the id
  its event gets).

What the spool holds is only as durable as Redis: a Redis restarted without persistence during
the outage loses what it held (README, "Open and click tracking").
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable

from django.conf import settings
from redis.exceptions import LockError

from emailapi.lib.redis import get_redis

LOCK_SECONDS = 30  # a dead drainer's lock lapses this long after its last renewal
POLL_INTERVAL = 2.0  # seconds between looks at the spool (one EXISTS) in the dispatcher

logger = logging.getLogger(__name__)

# KEYS[1] the spool; ARGV[1] the fetch, ARGV[2] the cap. 1 when kept, 0 when full.
_KEEP = """
if redis.call('LLEN', KEYS[1]) >= tonumber(ARGV[2]) then
    return 0
end
redis.call('LPUSH', KEYS[1], ARGV[1])
return 1
"""


def spool_key() -> str:
    return f"{settings.EMAILAPI_REDIS_PREFIX}:tracking-spool"


def taken_key() -> str:
    return f"{settings.EMAILAPI_REDIS_PREFIX}:tracking-spool:taken"


def lock_key() -> str:
    return f"{settings.EMAILAPI_REDIS_PREFIX}:tracking-spool:lock"


def keep(item: dict) -> bool:
    """Spool ``item`` (JSON); False, and nothing kept, when the spool is full. Raises Redis's
    errors (Redis down too: the caller says the fetch is lost)."""
    kept = get_redis().eval(_KEEP, 1, spool_key(), json.dumps(item),
                            settings.TRACKING_SPOOL_MAX)
    return bool(kept)


def waiting() -> int:
    """Fetches in the spool, those being recorded included."""
    client = get_redis()
    return client.llen(spool_key()) + client.llen(taken_key())


def drain(write: Callable[[dict], None], stop: threading.Event | None = None) -> int:
    """Hand every spooled fetch to ``write``, oldest first (what a dead drainer left first),
    until the spool is empty or ``stop`` is set; return how many were taken off. Nothing is
    done (0) when the spool is empty, one EXISTS being the whole cost, or another drainer holds
    the lock.

    ``write`` returns once the fetch's event is committed, or once it decided the fetch records
    nothing (the fetch is then removed either way); it raises when the database cannot serve it
    (the fetch stays taken, and the error ends this drain for the caller to retry later). A
    fetch that is not JSON (written by hand?) is logged and removed: it would block the spool."""
    client = get_redis()
    if not client.exists(spool_key(), taken_key()):
        return 0
    lock = client.lock(lock_key(), timeout=LOCK_SECONDS)
    if not lock.acquire(blocking=False):
        return 0
    done = 0
    try:
        for raw in reversed(client.lrange(taken_key(), 0, -1)):  # oldest first
            if stop is not None and stop.is_set():
                break
            _one(client, raw, write)
            done += 1
            lock.reacquire()
        while stop is None or not stop.is_set():
            raw = client.lmove(spool_key(), taken_key(), "RIGHT", "LEFT")
            if raw is None:
                break
            _one(client, raw, write)
            done += 1
            lock.reacquire()
    except LockError:  # lapsed (a slow database): another drainer may be at it now
        logger.warning("tracking spool: this drainer's lock lapsed; another drains the rest")
    finally:
        try:
            lock.release()
        except LockError:
            pass  # lapsed already
    return done


def _one(client, raw: bytes, write: Callable[[dict], None]) -> None:
    try:
        item = json.loads(raw)
    except ValueError:
        logger.error("tracking spool: dropped an entry that is not JSON: %r", raw[:200])
    else:
        write(item)
    client.lrem(taken_key(), -1, raw)  # the one taken (from the right: the oldest copy)
