"""A tenant's API calls: this minute's (the rate limit's window) and today's (UTC), for the
throttle (``emailapi.api.throttling``) and the dashboard's usage.

Counted in this process first and added to Redis every ``FLUSH_SECONDS`` by one background
thread (issue 19): a Redis round trip on every request was the largest item left on an API
request's path, and on a busy machine (web, PostgreSQL, Redis and workers sharing two cores)
it cost as much as the listing's own query. A request is judged on what Redis said at the last
flush (every process's calls) plus this process's calls since: exact within one process, and
across processes short by at most what the others served in the last ``FLUSH_SECONDS``.
When Redis is unreachable the calls stay counted here (the limit still holds per process) and
are added once it answers; usage read meanwhile is unknown.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from dataclasses import dataclass

from emailapi.lib.redis import get_redis

logger = logging.getLogger(__name__)
WINDOW = 60  # seconds: the rate limit's fixed window
DAY = 86400
FLUSH_SECONDS = 0.05


def _minute_key(tenant_id: int, window: int) -> str:
    return f"emailapi:rate:{tenant_id}:{window}"


def _day_key(tenant_id: int, day: int) -> str:
    return f"emailapi:calls:{tenant_id}:{day}"


# One round trip per flush: each tenant's counts added and their expiry set by a script (a
# key's expiry is set when the key is made: a window's key is never used after its window,
# nor a day's after its day).
_ADD = """
local count = redis.call('INCRBY', KEYS[1], ARGV[1])
if count == tonumber(ARGV[1]) then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
if tonumber(ARGV[2]) > 0 then
  if redis.call('INCRBY', KEYS[2], ARGV[2]) == tonumber(ARGV[2]) then
    redis.call('EXPIRE', KEYS[2], ARGV[4])
  end
end
return count
"""


class _Calls:
    """This process's calls not yet in Redis (``pending``), those being added (``sending``),
    both by (tenant, minute) as [calls, API calls], and each window's count as Redis last gave
    it (``known``)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.flushing = threading.Lock()
        self.pending: dict[tuple[int, int], list[int]] = {}
        self.sending: dict[tuple[int, int], list[int]] = {}
        self.known: dict[tuple[int, int], int] = {}
        self.wake = threading.Event()
        self.pid = os.getpid()
        self.script = None
        threading.Thread(target=self._run, name="usage-flush", daemon=True).start()

    def add(self, tenant_id: int, api_call: bool, now: float) -> int:
        window = (tenant_id, int(now) // WINDOW)
        with self.lock:
            counts = self.pending.setdefault(window, [0, 0])
            counts[0] += 1
            counts[1] += api_call
            count = (self.known.get(window, 0) + counts[0]
                     + self.sending.get(window, (0, 0))[0])
        self.wake.set()
        return count

    def _run(self) -> None:
        while True:
            self.wake.wait()
            time.sleep(FLUSH_SECONDS)  # gather a few requests' calls into one round trip
            self.wake.clear()
            try:
                self.flush()
            except Exception as exc:  # noqa: BLE001 - kept, added at the next flush
                logger.warning("API call counts not added yet, Redis unavailable: %s", exc)
                self.wake.set()
                time.sleep(1)

    def flush(self) -> None:
        """Add what is pending to Redis (raises what Redis raises; the calls stay pending)."""
        with self.flushing:
            with self.lock:
                self.sending, self.pending = self.pending, {}
            if not self.sending:
                return
            try:
                added = self._send(list(self.sending.items()))
            except BaseException:
                with self.lock:
                    for window, (calls, api_calls) in self.sending.items():
                        counts = self.pending.setdefault(window, [0, 0])
                        counts[0] += calls
                        counts[1] += api_calls
                    self.sending = {}
                raise
            oldest = int(time.time()) // WINDOW - 1
            with self.lock:
                self.sending = {}
                self.known = {window: count for window, count in {**self.known, **added}.items()
                              if window[1] >= oldest}

    def _send(self, sending: list) -> dict[tuple[int, int], int]:
        client = get_redis()
        if self.script is None or self.script.registered_client is not client:
            self.script = client.register_script(_ADD)
        pipe = client.pipeline(transaction=False)
        for (tenant_id, minute), (calls, api_calls) in sending:
            self.script(keys=[_minute_key(tenant_id, minute),
                              _day_key(tenant_id, minute * WINDOW // DAY)],
                        args=[calls, api_calls, WINDOW * 2, DAY * 2], client=pipe)
        counts = pipe.execute()
        return {window: int(count) for (window, _), count in zip(sending, counts, strict=True)}


_calls: _Calls | None = None
_made = threading.Lock()


def _process_calls() -> _Calls:
    """This process's counter (a forked child makes its own: the parent's thread is gone)."""
    global _calls
    calls = _calls
    if calls is None or calls.pid != os.getpid():
        with _made:
            if _calls is None or _calls.pid != os.getpid():
                _calls = _Calls()
            calls = _calls
    return calls


def count_call(tenant_id: int, api_call: bool = True, now: float | None = None) -> int:
    """Count one request in this minute's window (and, for an ``api_call``, in today's);
    returns the window's count as far as this process knows (see the module's docstring)."""
    return _process_calls().add(tenant_id, api_call, time.time() if now is None else now)


def flush() -> None:
    """Add this process's counted calls to Redis now (Redis errors propagate)."""
    if _calls is not None and _calls.pid == os.getpid():
        _calls.flush()


@atexit.register
def _flush_at_exit() -> None:
    try:
        flush()
    except Exception as exc:  # noqa: BLE001 - the process is ending
        logger.warning("API call counts of this process lost at exit: %s", exc)


@dataclass(frozen=True)
class Calls:
    this_minute: int
    today: int


def calls(tenant_id: int, now: float | None = None) -> Calls | None:
    """The tenant's API calls this minute and today (UTC), this process's own included; None
    when Redis does not answer."""
    now = time.time() if now is None else now
    try:
        flush()
        minute, day = get_redis().mget([_minute_key(tenant_id, int(now) // WINDOW),
                                        _day_key(tenant_id, int(now) // DAY)])
    except Exception as exc:  # noqa: BLE001 - usage is shown as unknown
        logger.warning("usage of tenant %s unknown, Redis unavailable: %s", tenant_id, exc)
        return None
    return Calls(int(minute or 0), int(day or 0))
