"""When each account's folders were last polled, kept in Redis so the poll's schedule outlives
the session that kept it.

A session watches one folder with IDLE; the other folders are looked at by the safety-net poll
(a LIST-STATUS of every folder) every ``IMAP_POLL_INTERVAL`` seconds. A new session used to
poll before its first IDLE whatever the schedule said, so a failover or a worker restart cost
every account a LIST-STATUS of every folder in the middle of a login storm, often seconds after
the last one: on Dovecot that poll and its index reads are about a third of a reconnect's cost
to the whole machine. Now a reconnect keeps the schedule: it syncs the watched folder, and
polls the others when their poll is due, as an idling session would. A change in another
folder is therefore seen within the poll interval, reconnect or not.

The schedule of a session that ended in this worker is its connection's own ``last_poll``;
one that ended in another worker (a dead one's, a rebalanced one's, the last run's) is here:
a key per account whose value is the account's settings version at the poll and whose time to
live is what was left of the interval, so its remaining TTL says when the next poll is due on
any machine without comparing clocks. Workers record their polls on each claim tick, in one
round trip. Losing a record (Redis restarted, a worker killed before its tick) costs one
early poll, never a missed change; a record of other settings is ignored.
"""

from __future__ import annotations

import threading
import time

import redis

PREFIX = "emailapi:polled:"


class PollSchedule:
    def __init__(self, client: redis.Redis):
        self.redis = client
        self._lock = threading.Lock()
        # account: (settings version, when polled, poll interval); not written to Redis yet
        self._polled: dict[int, tuple[int, float, float]] = {}

    @staticmethod
    def key(account_pk: int) -> str:
        return f"{PREFIX}{account_pk}"

    def note(self, account_pk: int, config_version: int, at: float, interval: float) -> None:
        """The account's folders were polled at ``at`` (``time.monotonic()``) with these
        settings, and its session polls every ``interval`` seconds (longer where NOTIFY works).
        Called from the pool's threads; written by the next ``flush``."""
        with self._lock:
            self._polled[account_pk] = (config_version, at, interval)

    def flush(self) -> int:
        """Write the polls noted since the last flush, each to expire when its next poll is
        due (its interval after it). Returns how many were written. Raises what Redis raises
        (those polls are then not recorded: their accounts poll early if they move)."""
        with self._lock:
            polled, self._polled = self._polled, {}
        if not polled:
            return 0
        now = time.monotonic()
        pipe = self.redis.pipeline(transaction=False)
        written = 0
        for pk, (version, at, interval) in polled.items():
            left_ms = int((at + interval - now) * 1000)
            if left_ms > 0:
                pipe.set(self.key(pk), version, px=left_ms)
                written += 1
        if written:
            pipe.execute()
        return written

    def due_in(self, account_pks: list[int], chunk: int = 1000) -> dict[int, tuple[int, float]]:
        """For the accounts polled within their interval: the settings version they were polled
        with, and the seconds until their next poll is due. One round trip per ``chunk``."""
        found: dict[int, tuple[int, float]] = {}
        for start in range(0, len(account_pks), chunk):
            part = account_pks[start:start + chunk]
            pipe = self.redis.pipeline(transaction=False)
            for pk in part:
                pipe.get(self.key(pk))
                pipe.pttl(self.key(pk))
            answers = pipe.execute()
            for i, pk in enumerate(part):
                version, left_ms = answers[2 * i], answers[2 * i + 1]
                if version is not None and left_ms is not None and left_ms > 0:
                    try:
                        found[pk] = (int(version), left_ms / 1000)
                    except ValueError:  # not ours: poll
                        continue
        return found
