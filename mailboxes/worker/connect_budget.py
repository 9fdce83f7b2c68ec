"""The connect budget: which due connects a worker starts, on threads of their own.

Opening a connection is the one step a broken server can stretch: it may accept and never
greet, or greet and never answer the login. Each phase has a deadline
(``mailboxes.imap.client``), and connects run on their own threads (``IMAP_CONNECT_THREADS``),
apart from the pool that syncs and keeps sessions idling, so a hung server can hold a connect
thread for seconds and never a sync thread. Within that budget:

- **best first**: accounts that connected before go first, then new ones, then those whose
  last connect failed (after a worker restart, every healthy account is back before the
  first broken one is tried again);
- **servers prove themselves**: connects to a server (host:port) that has not answered this
  worker yet may hold at most half of the threads at once, so that on a first start a few
  hung servers cannot take them all while a healthy one waits (one answer proves a server);
- **a suspect lane**: accounts whose last connect failed, or whose server's did, may hold at
  most a quarter of the threads, so accounts on broken servers never take them all;
- **stalled servers wait**: while two connects to one server have been waiting longer than
  ``STALL_AFTER`` and none to it has answered for as long, no further connect to it starts
  (the ones in flight find out whether it is slow or gone), so a server that hangs later
  costs two threads, not all of them. A server that keeps answering is slow, not hung: on
  a loaded machine at 10,000 accounts its logins took seconds each, and holding back every
  connect while two were over 2 s cut a first start to 1-3 connects a second;
- **paced per server**: at most ``IMAP_CONNECTS_PER_SECOND`` connects start per second to one
  server (host:port), with a burst of one second's worth (a token bucket per server; 0 turns
  pacing off). A worker starting with 10,000 accounts on one server opens them over a few
  minutes instead of all at once, which a server (and its login processes, its auth backend,
  its per-IP limits) takes as an attack; the worker logs how long it took until every account
  it took was connected (``mailboxes.worker.imap_worker``);
- **no faster than the pool syncs**: a connect ends logged in, and the session waits for a
  pool thread to sync it and put it in IDLE; until then the server keeps it busy (Dovecot: an
  ``imap`` process each, which imap-hibernate cannot take). Connects in flight plus sessions
  logged in and not idling yet stay under ``settle_limit``, so a worker whose first index
  runs slower than the pace (35 queries a new account, a loaded database) does not pile up
  thousands of waiting sessions: at 10,000 new accounts on a 2-core machine it had 1,766
  ``imap`` processes for 351 accounts connected three minutes in, and the server slowed to a
  few logins a second.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from mailboxes.worker.connection import FAILING

# A connect in flight longer than this is "stalled" (a healthy server answers in well under
# a second); two stalled connects to one server hold back the others to it.
STALL_AFTER = 2.0
STALLED_PER_SERVER = 2

Endpoint = tuple[str, int] | None
Due = tuple[int, int, float, Endpoint]  # (pk, health, due at, endpoint)


@dataclass(frozen=True)
class _InFlight:
    endpoint: Endpoint
    started: float
    suspect: bool
    unproven: bool


class _Pace:
    """A token bucket: ``rate`` connects a second, at most ``rate`` (and at least one) saved up."""

    __slots__ = ("rate", "burst", "tokens", "at")

    def __init__(self, rate: float, now: float):
        self.rate = rate
        self.burst = max(1.0, rate)
        self.tokens = self.burst
        self.at = now

    def available(self, now: float) -> int:
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        return int(self.tokens)

    def take(self) -> None:
        self.tokens -= 1


class ConnectBudget:
    def __init__(self, threads: int, per_second: float = 0.0, settle_limit: int | None = None):
        self.threads = threads
        self.per_second = per_second
        # Connects in flight + sessions logged in and not idling yet (None: no such bound).
        self.settle_limit = settle_limit
        self._paces: dict[Endpoint, _Pace] = {}
        self.suspect_lane = max(1, threads // 4)
        self.unproven_lane = max(1, threads // 2)
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="imap-connect")
        self.in_flight: dict[int, _InFlight] = {}
        # server -> whether its last connect got an answer (None: not tried by this worker)
        self.answers: dict[Endpoint, bool] = {}
        self.answered_at: dict[Endpoint, float] = {}  # server -> when a connect last answered
        self.answers_version = 0  # counts changes of ``answers`` (which ``rank`` reads)

    def choose(self, due: Iterable[Due], settling: int = 0, endpoints: int | None = None,
               ranked: bool = False) -> list[int]:
        """Of ``due`` connects ``(pk, health, due_at, endpoint)``, those to start now;
        ``settling``: sessions logged in that have not reached IDLE yet. ``ranked``: ``due``
        is in ``rank``'s order already; ``endpoints``: how many servers ``due`` names (the
        look ends once each is held back, rather than going through thousands of accounts of
        a server whose pace is spent)."""
        free = self.room(settling)
        if free <= 0:
            return []
        now = time.monotonic()
        flights = self.in_flight.values()
        suspects = sum(1 for f in flights if f.suspect)
        unproven = sum(1 for f in flights if f.unproven)
        stalled = Counter(f.endpoint for f in flights
                          if f.endpoint is not None and now - f.started > STALL_AFTER
                          and now - self.answered_at.get(f.endpoint, -STALL_AFTER) > STALL_AFTER)
        chosen = []
        paced: dict[Endpoint, int] = {}  # connects each server may still start now
        # Servers none of whose due connects may start now: what holds one back (stalled, its
        # pace spent, the lane of servers not proven yet full) holds all of its connects back
        # until this call ends.
        held: set[Endpoint] = set()
        for pk, health, _, endpoint in (due if ranked else self.rank(due)):
            if len(chosen) >= free or (endpoints is not None and len(held) >= endpoints):
                break
            if endpoint in held:
                continue
            if endpoint is not None and stalled[endpoint] >= STALLED_PER_SERVER:
                held.add(endpoint)
                continue
            if self.per_second > 0:
                if endpoint not in paced:
                    paced[endpoint] = self._pace(endpoint, now).available(now)
                if paced[endpoint] <= 0:
                    held.add(endpoint)
                    continue
            suspect = self._rank(health, endpoint) >= FAILING
            fresh = endpoint not in self.answers
            if suspect and suspects >= self.suspect_lane:
                if self.answers.get(endpoint) is False:
                    held.add(endpoint)
                    continue
                break  # in rank order: every connect after this one is suspect too
            if fresh and unproven >= self.unproven_lane:
                held.add(endpoint)
                continue
            suspects += suspect
            unproven += fresh
            if self.per_second > 0:
                paced[endpoint] -= 1
                self._paces[endpoint].take()
            chosen.append(pk)
        return chosen

    def rank(self, due: Iterable[Due]) -> list[Due]:
        """``due`` connects best first: proven accounts, then new ones, then failing ones (or
        on a server whose last connect failed); within each, the longest due first."""
        return sorted(due, key=lambda d: (self._rank(d[1], d[3]), d[2]))

    def room(self, settling: int = 0) -> int:
        """How many connects may start now at most (before pacing and lanes)."""
        free = self.threads - len(self.in_flight)
        if self.settle_limit is not None:
            free = min(free, self.settle_limit - settling - len(self.in_flight))
        return free

    def _pace(self, endpoint: Endpoint, now: float) -> _Pace:
        pace = self._paces.get(endpoint)
        if pace is None:
            pace = self._paces[endpoint] = _Pace(self.per_second, now)
        return pace

    def _rank(self, health: int, endpoint: Endpoint) -> int:
        return FAILING if self.answers.get(endpoint) is False else health

    def started(self, pk: int, endpoint: Endpoint, health: int) -> None:
        self.in_flight[pk] = _InFlight(endpoint, time.monotonic(),
                                       self._rank(health, endpoint) >= FAILING,
                                       endpoint not in self.answers)

    def finished(self, pk: int, answered: bool | None = None) -> None:
        """A connect ended; ``answered``: whether its server answered (logged in or refused
        the login: it works) or not (unreachable, timed out), None when it says nothing."""
        flight = self.in_flight.pop(pk, None)
        if flight is not None and answered is not None and flight.endpoint is not None:
            if self.answers.get(flight.endpoint) is not answered:
                self.answers_version += 1  # ranks changed
            self.answers[flight.endpoint] = answered
            if answered:
                self.answered_at[flight.endpoint] = time.monotonic()

    def shutdown(self) -> None:
        """Do not wait for connects in flight: each ends within its phase deadlines, and one
        that logs in after the stop logs out at once (``ImapWorker._done``)."""
        self.pool.shutdown(wait=False, cancel_futures=True)
