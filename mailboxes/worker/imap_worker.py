"""The IMAP worker: many accounts' connections in one process.

One thread (``run``) owns a selector holding every idling connection's socket, the timers,
and the leases. Work that talks to a server or the database (connect, sync, leave and re-enter
IDLE) runs on a small thread pool, one step at a time per account. So 1,000 idling accounts
cost 1,000 sockets and small objects, not 1,000 threads.

Connects run on threads of their own (``mailboxes.worker.connect_budget``): a hung server holds a
connect thread for its phase timeouts, never a pool thread, and healthy accounts connect first.
After login, a command that works through a folder may take minutes on a huge mailbox
(``IMAP_READ_TIMEOUT``). A server that stays silent that long holds a pool thread, so once one
has (the account, or its server, timed out on such a command and has not synced since) its
timer steps take the slow lane: at most a third of the timer threads at once.

Each loop iteration does, in order (each a small method returning whether it did anything):
a slice of the claim tick (``_tick``: one every ``IMAP_CLAIM_INTERVAL``, and at once when
another worker is found gone; renew leases, drop accounts that were deleted,
paused or lost, rebalance to a fair share, claim free accounts; keep the database's record of
who holds what, and sweep accounts no live worker holds; about one round trip a slice, so the
sockets are read between them, and its database reads on a thread of their own, so the loop
never waits for PostgreSQL to answer them), ``handle_commands`` (account changes
announced on Redis pub/sub), ``collect_results`` (finished steps: register the socket or
schedule a retry), ``run_due`` (timers and due connects), then waits on the selector.

Neither the database nor Redis can stop the loop: a claim tick that cannot reach one skips what
needs it and tries again (``store_backoff()``), every account keeps its IMAP session, and steps
that fail on them park the session idling until they are back (``connection``). While Redis
is down the worker keeps the accounts it has (it cannot renew, but nobody else can take them
either) and claims none; when Redis is back it takes back the leases that lapsed meanwhile and
gives up only those another worker took.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import queue
import random
import selectors
import socket
import threading
import time
import uuid
from collections.abc import Callable, Generator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait

from django.conf import settings
from django.db import close_old_connections, connections
from django.utils import timezone

from accounts import state as account_state
from accounts.announcements import account_changes_channel
from accounts.models import EmailAccount
from emailapi.lib import metrics
from emailapi.lib.redis import get_redis
from mailboxes.worker import collector, eligible, holders, memory
from mailboxes.worker.connect_budget import ConnectBudget
from mailboxes.worker.connection import (
    CRASHED_STEP_RETRY,
    FAILING,
    PROVEN,
    UNKNOWN,
    AccountConnection,
    Closed,
    Connected,
    Idle,
    Retry,
    endpoint_of,
    store_backoff,
)
from mailboxes.worker.faults import STORE_ERRORS
from mailboxes.worker.leases import RENEW_CHUNK, Leases
from mailboxes.worker.poll_schedule import PollSchedule
from mailboxes.worker.timers import Timers

logger = logging.getLogger(__name__)
State = EmailAccount.State
# Due steps held back (the slow lane, a stalled server, the connect pace) are looked at again
# this often (seconds); a finishing step wakes the loop sooner.
HELD_BACK_WAIT = 0.2
# Freezing again (``_refreeze``): after this many sessions replaced or accounts let go (or a
# tenth of those held, if more), or after this many seconds if any were.
REFREEZE_CHURN = 100
REFREEZE_EVERY = 600.0
# A turn of the loop busy this long (seconds) without a look at the sockets is logged.
LOOP_STALL = 0.25
# Eligible accounts a claim slice of a worker short of its share looks at (``_reconcile``):
# which are free (one MGET), leased (SET NX pipelines) and taken. Taking a dead worker's
# 1,667 accounts from 15,000 in one slice held a survivor's loop for 1.0-1.5 s.
CLAIM_CHUNK = 1000
# Between claim ticks, the other workers' presence is looked at this often (seconds): one
# PUBSUB NUMSUB. A worker found gone starts a tick at once (``_gone_seen``).
PRESENCE_LOOK = 0.5


def _stored(function: Callable, *args):
    """``function(*args)`` on the store thread (``ImapWorker._off_loop``). Its database
    connection goes back to the pool after each call, as the pool threads' do after each
    step: a connection the store thread kept between ticks would be one fewer for them."""
    try:
        return function(*args)
    finally:
        connections.close_all()


def _gone_after() -> int:
    """``IMAP_WORKER_GONE_AFTER`` where workers judge each other by presence at all, else 0:
    one not under the lease TTL would only ever judge workers whose leases ran out anyway."""
    after = settings.IMAP_WORKER_GONE_AFTER
    return after if after < settings.IMAP_LEASE_TTL else 0


class Slot:
    """The worker loop's bookkeeping of one held account."""

    __slots__ = ("conn", "busy", "registered", "wake_at", "next_step", "release_after_close",
                 "pause_state", "timer_step", "sync_asked", "awaited", "slow_step",
                 "started", "settling")

    def __init__(self, conn: AccountConnection):
        self.conn = conn
        self.busy = False  # a step is running on the pool
        self.registered: socket.socket | None = None
        self.wake_at: float | None = None  # when next_step is due (the worker's timers)
        self.next_step = "connect"
        self.release_after_close = True
        self.pause_state: str | None = None
        self.timer_step = False  # the running step was started by a timer
        self.sync_asked = False  # PUT .../sync: poll every folder as soon as idle
        self.awaited = True  # taken, not idling yet: counted in the worker's connect wave
        self.slow_step = False  # the running step is in the slow lane
        self.started = 0.0  # when the running (or last) step was started
        self.settling = False  # logged in, not idling yet (bounds new connects)


def new_worker_id() -> str:
    """A worker's id: its host and process, and a few random characters (a pid is reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _timed_step(step: Callable[[], object], kind: str, submitted: float) -> object:
    """Run a step on its thread, noting how long it waited for one: the pool's share of a
    new mail's latency (``emailapi_imap_step_wait_seconds``)."""
    metrics.imap_step_waited(kind, time.monotonic() - submitted)
    return step()


class ImapWorker:
    def __init__(self, worker_id: str | None = None, max_accounts: int | None = None,
                 pool_size: int | None = None, connect_threads: int | None = None):
        self.worker_id = worker_id or new_worker_id()
        self.max_accounts = max_accounts or settings.IMAP_MAX_ACCOUNTS
        self.stop = threading.Event()
        self.leases = Leases(get_redis(), self.worker_id, settings.IMAP_LEASE_TTL)
        self.polls = PollSchedule(get_redis())  # when each account's folders were polled
        size = pool_size or settings.IMAP_POOL_SIZE
        threads = connect_threads or settings.IMAP_CONNECT_THREADS
        # New connects wait while this many are in flight or logged in and waiting for the
        # pool to sync them: the connect threads' worth plus two per pool thread keeps the
        # pool fed without sessions piling up on the server (``connect_budget``).
        self.connects = ConnectBudget(threads, settings.IMAP_CONNECTS_PER_SECOND,
                                      settle_limit=threads + 2 * size)
        # Timer work (connects, polls, IDLE renewals, history slices) may fill all but two
        # pool threads: a mailbox that just said "new mail" never queues behind a thousand
        # scheduled polls (that cost p99 latency of seconds at 1,000 accounts).
        self.max_timer_steps = max(1, size - 2)
        self.timer_steps = 0
        # The slow lane: timer steps of accounts whose last try timed out on a slow command,
        # or whose server (host, port) did and has not finished a sync since. Such a server
        # may keep each step silent for IMAP_READ_TIMEOUT; it gets only these threads at once.
        self.max_slow_steps = max(1, self.max_timer_steps // 3)
        self.slow_steps = 0
        self.slow_endpoints: set[tuple[str, int]] = set()
        self.pauses = collector.watch()
        self.gc_freeze = settings.IMAP_GC_FREEZE  # after each connect wave (``collector``)
        self.churn = 0  # sessions replaced and accounts let go since the last freeze
        self.frozen_at = time.monotonic()
        self.pool = ThreadPoolExecutor(max_workers=size,
                                       thread_name_prefix="imap")
        self.selector = selectors.DefaultSelector()
        self.slots: dict[int, Slot] = {}
        self.results: queue.SimpleQueue = queue.SimpleQueue()
        self.commands: queue.SimpleQueue = queue.SimpleQueue()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        # Never block a pool thread on a full wake buffer (a pending byte already wakes us).
        self._wake_w.setblocking(False)
        self.selector.register(self._wake_r, selectors.EVENT_READ, None)
        self.next_claim = 0.0
        self.workers: dict[str, bytes] = {}  # live workers' heartbeats, as of the last tick
        self.next_presence_look = 0.0
        self._ticked_for_gone: set[str] = set()  # gone workers an early tick was started for
        self._ticking: Generator[str, None, bool] | None = None  # the claim tick under way (``_tick``)
        # The tick's database reads run on a thread of their own (``_off_loop``); the one it
        # waits for, while the loop goes on.
        self._store = ThreadPoolExecutor(max_workers=1, thread_name_prefix="imap-store")
        self._awaited: Future | None = None
        self._slice: str | None = None  # what its last slice did (logged with a long turn)
        # Database side of the claim tick: retried after ``store_backoff()`` when it failed.
        self.store_failures = 0
        self.store_retry_at = 0.0
        self.store_ok_since = time.monotonic()  # the database answered every tick since
        self.last_beat: float | None = None  # our heartbeat row was last renewed
        self.next_sweep = 0.0
        # The sweep runs on a thread of its own (``_sweep``), one at a time.
        self._sweeper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sweep")
        self._sweeping: Future | None = None
        self._down: dict[str, float] = {}  # "database"/"Redis" -> unreachable since
        self._pubsub_thread: threading.Thread | None = None
        # The connect wave: accounts taken and not idling yet, since when (logged once all are).
        self.wave_waiting = 0
        self.wave_taken = 0
        self.wave_started = 0.0
        self.started_at = time.monotonic()
        # Timers (``timers``); what is due and not started yet (held back by the pool's or
        # the connect budget's limits), in the order it came due.
        self.timers = Timers()
        self._due_steps: dict[int, Slot] = {}
        self._due_connects: dict[int, Slot] = {}
        # The due connects in the budget's order (best first), rebuilt when more came due or
        # the budget's view of the servers changed; entries before _order_start were started.
        self._connect_order: list[tuple[int, int, float, tuple[str, int] | None]] = []
        self._order_start = 0
        self._order_stale = False
        self._order_answers = -1
        self._due_endpoints: dict[tuple[str, int] | None, int] = {}
        self._settling = 0  # sessions logged in and not idling yet

    # --- main loop ------------------------------------------------------------------------

    def run(self) -> None:
        logger.info("imapworker %s starting (max %d accounts)", self.worker_id, self.max_accounts)
        self._start_pubsub()
        try:
            while not self.stop.is_set():
                try:
                    self.step()
                except Exception:  # noqa: BLE001 - a bug in one iteration must not stop all
                    logger.exception("imapworker %s: loop iteration failed; going on",
                                     self.worker_id)
                    self.stop.wait(1.0)
        finally:
            self.shutdown()

    def step(self, timeout: float = 0.5) -> None:
        started = time.monotonic()
        if self._ticking is None and (started >= self.next_claim or self._gone_seen(started)):
            self._ticking = self._tick()
            # Set again by a command asking for a tick while this one runs (``added``).
            self.next_claim = math.inf
        slice_ = None
        if self._ticking is not None and not self._awaiting():
            self._tick_turn()
            slice_ = self._slice
        ticked = time.monotonic()
        self.handle_commands()
        self.collect_results()
        self.run_due()
        self.pauses.log_long()
        busy = time.monotonic() - started
        if busy >= LOOP_STALL:
            # Readable sockets wait for this: a new mail's latency grows by it.
            logger.info("imapworker %s: the loop was busy %.0f ms (claim tick %.0f ms%s) while "
                        "sockets waited", self.worker_id, busy * 1000,
                        (ticked - started) * 1000, f": {slice_}" if slice_ else "")
        if self._ticking is None:
            wait = min(timeout, max(0.0, self.next_claim - time.monotonic()), self._next_timer())
        elif self._awaiting():
            # Until the store thread's answer wakes the loop: a tick asked for meanwhile
            # (``next_claim`` 0) comes after this one and must not make the loop spin.
            wait = min(timeout, self._next_timer())
        else:
            wait = 0.0  # the tick's next slice
        for key, _ in self.selector.select(wait):
            if key.data is None:
                self._drain_wake()
            else:
                self._readable(key.data)

    # --- leases and claiming --------------------------------------------------------------

    def claim_tick(self) -> bool:
        """A whole claim tick at once (tests, tools; the loop runs one a slice per turn):
        the rest of one the loop began, then a new one. Returns whether the set of held
        accounts changed."""
        self.finish_tick()
        self._ticking = self._tick()
        return self.finish_tick()

    def finish_tick(self) -> bool:
        """Run the tick the loop began (if any) to its end, and the sweep it started; whether
        it changed the set of held accounts."""
        changed = False
        while self._ticking is not None:
            if self._awaited is not None:
                futures_wait([self._awaited])
            changed = self._tick_turn()
        self.wait_for_sweep()
        return changed

    def _awaiting(self) -> bool:
        """The running tick waits for the database's answer (``_off_loop``): no slice to run."""
        return self._awaited is not None and not self._awaited.done()

    def _off_loop(self, name: str, function: Callable, *args):
        """``function(*args)``'s result, from the worker's store thread: a slice (*name*)
        that ends when it is sent, the loop reading its sockets until the answer wakes it.

        Why: PostgreSQL busy with a failover's thousands of reconnects answered the tick's
        comparison of the held accounts with the eligible ones in up to 554 ms, and the loop,
        waiting for it, read no socket meanwhile: 4.3 s of a survivor's recovery, every new
        mail of its idling accounts waiting as long. Only reads and the worker's own
        heartbeat row go there; what records which accounts the worker holds (``_take``,
        ``_forget``, ``holders.restore``) stays on the loop, which owns ``slots``, so that
        no record is written from a look at them the loop has since changed (moving
        ``_take``'s writes too left its claim slices as long: they are Redis and the new
        sessions' own objects). A failure is raised here, on the loop, as the call's own
        would have been."""
        future = self._store.submit(_stored, function, *args)
        self._awaited = future
        future.add_done_callback(lambda _: self._wake())
        try:
            yield name
        finally:
            self._awaited = None
        return future.result()

    def _tick_turn(self) -> bool:
        """One slice of the running tick (``_tick``). Once it ended (or failed: a bug, which
        ``run`` logs), the next is due ``IMAP_CLAIM_INTERVAL`` after its end, not its start:
        at 10,000 accounts on a loaded machine a tick can outlast the interval, and ticks back
        to back left the loop no time to start connects or collect steps."""
        ticking, changed = self._ticking, False
        try:
            self._slice = next(ticking)
            return False
        except StopIteration as done:
            self._slice, changed = "the end", bool(done.value)
        finally:
            if ticking.gi_frame is None:  # ended, by a return or an exception
                self._ticking = None
                self.next_claim = min(self.next_claim,
                                      time.monotonic() + settings.IMAP_CLAIM_INTERVAL)
        return changed

    def _tick(self) -> Generator[str, None, bool]:
        """Renew, drop, rebalance, claim; returns whether the set of held accounts changed.

        A generator: each ``yield`` ends a slice of about one round trip to Redis or the
        database (a chunk of leases renewed, the comparison with the eligible accounts, a
        claim), naming it, and the loop reads its sockets and collects finished steps between
        slices. Run whole, a tick of a survivor renewing 6,667 leases and reading 20,000
        accounts while it connected a dead worker's accounts held the loop 250-1,600 ms (each
        round trip waits for the interpreter lock behind the pool's threads, and so does every
        5 ms of its own CPU), and every mail of its idling accounts waited as long. Between
        slices the held accounts can only shrink (a command drops one, a step closes one):
        each slice looks at ``slots`` as it is then.

        The Redis part (leases) runs every tick; the database part waits out a failure
        (``store_backoff()``). Neither failing drops an account."""
        metrics.imap_worker_tick(len(self.slots),
                                 sum(s.conn.client is not None for s in self.slots.values()))
        leased = yield from self._renew_leases()
        self._record_polls()
        yield "polls"
        if time.monotonic() < self.store_retry_at:
            return False
        try:
            close_old_connections()
            yield from self._beat()
            if leased:
                yield from self._free_gone_workers()
            changed = (yield from self._reconcile()) if leased else False
            self._sweep()
        except STORE_ERRORS as exc:
            self._store_failed(exc)
            return False
        self.store_failures = 0
        self._back("database")
        self._refreeze()
        return changed

    def _refreeze(self, force: bool = False) -> None:
        """Freeze the worker's long-lived objects (``collector.settle``) once a connect wave
        is over (``force``), and again once enough sessions were replaced or accounts let go
        since (``REFREEZE_CHURN``), or any were and ``REFREEZE_EVERY`` has passed: their
        frozen objects that refer to each other are garbage no collection sees until then."""
        if not self.gc_freeze or self.wave_waiting:
            return
        now = time.monotonic()
        if not (force or self.churn >= max(REFREEZE_CHURN, len(self.slots) // 10)
                or (self.churn and now - self.frozen_at >= REFREEZE_EVERY)):
            return
        collector.settle()
        self.churn, self.frozen_at = 0, time.monotonic()

    def _renew_leases(self) -> Generator[str, None, bool]:
        """Heartbeat, then our leases a chunk (``RENEW_CHUNK``) a slice, then the live
        workers; returns whether Redis answered all of it. An account let go of since the
        tick began is not renewed: renewing takes back a lease nobody holds, and its release
        made it nobody's."""
        held = list(self.slots)
        try:
            self.leases.heartbeat()
            yield "heartbeat"
            for start in range(0, len(held), RENEW_CHUNK):
                lost = self.leases.renew([pk for pk in held[start:start + RENEW_CHUNK]
                                          if pk in self.slots])
                for pk in lost:
                    logger.warning("account %s: lease lost to another worker", pk)
                    self.drop(pk, release=False)
                yield "renewal"
            self.workers = self.leases.workers()
            yield "workers"
        except Exception as exc:  # noqa: BLE001 - Redis down: keep every session, claim none
            self._fault("Redis", exc, "keeping every account, claiming none")
            return False
        self._back("Redis")
        return True

    def _record_polls(self) -> None:
        """Write the polls made since the last tick to Redis (``PollSchedule``), for whichever
        worker holds those accounts next. Not written (Redis down): they poll as they connect
        there, a poll early."""
        try:
            self.polls.flush()
        except Exception as exc:  # noqa: BLE001
            self._fault("Redis", exc, "polls made meanwhile are not recorded")

    def _gone_seen(self, now: float) -> bool:
        """Whether a worker has just been found gone (``Leases.gone_workers``) between claim
        ticks, so that the tick that frees and claims its accounts starts now. Looked at
        every ``PRESENCE_LOOK`` instead of each tick: a tick's look saw the absence up to a
        tick late and judged it up to a tick after it had lasted ``IMAP_WORKER_GONE_AFTER``,
        and at a 2 s interval (more where a tick of thousands of accounts is slow) that was
        3-4 s of every failover's time. Once per gone worker: a tick that could not free its
        accounts (Redis down) leaves them to the next regular tick, not one per look."""
        after = _gone_after()
        if now < self.next_presence_look or not after or len(self.workers) < 2:
            return False
        self.next_presence_look = now + PRESENCE_LOOK
        try:
            gone = set(self.leases.gone_workers(self.workers, after))
        except Exception:  # noqa: BLE001 - Redis down: the tick says so, and the leases lapse
            # Not again before the next tick: a Redis that hangs until the socket times out
            # must not hold the loop back more often than the tick's own calls do.
            self.next_presence_look = max(self.next_presence_look, self.next_claim)
            return False
        new = gone - self._ticked_for_gone
        self._ticked_for_gone = gone  # freed (no longer listed) or back: forgotten
        return bool(new)

    def _free_gone_workers(self) -> Generator[str, None, None]:
        """Free the leases of workers found gone (``Leases.gone_workers``: their presence in
        Redis has been missing for ``IMAP_WORKER_GONE_AFTER`` seconds), so this tick's claim
        takes their accounts seconds after a crash instead of a lease TTL after it. Which
        accounts they held is the database's holder rows; a lease a gone worker took but never
        recorded there runs out by itself."""
        after = _gone_after()
        if not after:
            return
        doing = "a dead worker's accounts are taken once its leases run out"
        try:
            gone = self.leases.gone_workers(self.workers, after)
        except Exception as exc:  # noqa: BLE001 - Redis down: the leases run out instead
            self._fault("Redis", exc, doing)
            return
        for worker_id in gone:
            pks = yield from self._off_loop("gone worker's accounts", holders.held_by, worker_id)
            try:
                freed = self.leases.forget(worker_id, pks)
            except Exception as exc:  # noqa: BLE001
                self._fault("Redis", exc, doing)
                return
            self.workers.pop(worker_id, None)
            logger.warning("imapworker %s: worker %s is gone (no presence in Redis for %.0f s); "
                           "%d of its accounts are free to claim now", self.worker_id, worker_id,
                           after, freed)

    @property
    def live_workers(self) -> int:
        """Workers sharing the accounts, this one included (as of the last tick)."""
        return max(1, len(self.workers))

    def _reconcile(self) -> Generator[str, None, bool]:
        """The database side: drop, rebalance, claim. A slice each: the comparison of the
        held accounts with the eligible ones (``eligible.held_changes``, made by PostgreSQL:
        a worker at its share reads no list of accounts), the drops and the rebalance, then,
        short of the share, the eligible accounts and claims of ``CLAIM_CHUNK`` of them each.
        Returns whether the set of held accounts changed."""
        changed = False
        count, changes = yield from self._off_loop("eligible", eligible.held_changes, {
            pk: slot.conn.config_version for pk, slot in self.slots.items()})
        ended = [pk for pk, version in changes.items() if version is None and pk in self.slots]
        stopped = (yield from self._off_loop("stopped tenants", eligible.of_stopped_tenants, ended)
                   ) if ended else set()
        for pk, version in changes.items():
            slot = self.slots.get(pk)
            if slot is None:
                continue
            if version is None:
                # deleted, paused, or its tenant stopped (trial over, suspended): then paused
                self.drop(pk, state=State.PAUSED if pk in stopped else None)
                changed = True
            elif slot.conn.config_version and version != slot.conn.config_version:
                self.reconnect(pk)  # settings or password changed
        share = min(self.max_accounts, math.ceil(count / self.live_workers))
        excess = len(self.slots) - share
        if excess > 0 and self.live_workers > 1:
            for pk in list(self.slots)[-excess:]:
                self.drop(pk)
                changed = True
        if len(self.slots) >= share:  # nothing to claim: no list of the others' accounts
            return changed
        yield "drops"
        free = [pk for pk in (yield from self._off_loop("eligible list", eligible.all_eligible))
                if pk not in self.slots]
        random.shuffle(free)
        for start in range(0, len(free), CLAIM_CHUNK):
            want = share - len(self.slots)
            if want <= 0:
                break
            taken: list[int] = []
            failed = None
            try:
                # Which are free, one MGET per chunk, not a SET each; then leased in
                # pipelines, and taken in the same slice: a lease is never left taken and
                # not held.
                part = self.leases.unheld([pk for pk in free[start:start + CLAIM_CHUNK]
                                           if pk not in self.slots])
                # Those leased before Redis failed (if it did) are taken all the same.
                taken.extend(self.leases.acquire_many(part, want))
            except Exception as exc:  # noqa: BLE001 - Redis went away mid-claim: next tick
                failed = exc
            if taken:
                self._take(taken)
                changed = True
            if failed is not None:
                self._fault("Redis", failed, "keeping every account, claiming no more")
                break
            yield "claim"
        return changed

    def _take(self, pks: list[int]) -> None:
        """Hold freshly leased accounts: the database names us their holder first (the fence
        of their state) and records them ``connecting`` (all in one statement), then connects
        start, best-known accounts first."""
        known: dict[int, tuple] = {}
        connecting: set[int] = set()
        try:
            known = {pk: (imap, initialized, failing)
                     for pk, imap, initialized, failing in EmailAccount.objects.filter(
                         pk__in=pks).values_list("pk", "imap", "initialized_at",
                                                 "connect_failing_since")}
            holders.claim(self.worker_id, list(known))
            connecting = holders.record_connecting(self.worker_id, list(known))
        except STORE_ERRORS:
            known = {}  # none recorded as ours: give every lease back
            raise
        finally:
            for pk in set(pks) - set(known):  # deleted meanwhile, or not recorded as ours
                try:
                    self.leases.release(pk)
                except Exception:  # noqa: BLE001 - it expires by itself
                    pass
        if known and not self.wave_waiting:
            self.wave_started, self.wave_taken = time.monotonic(), 0
        self.wave_waiting += len(known)
        self.wave_taken += len(known)
        polled = self._poll_records([pk for pk, (_, init, _) in known.items() if init])
        for pk, (imap, initialized, failing) in known.items():
            health = FAILING if failing else PROVEN if initialized else UNKNOWN
            conn = AccountConnection(pk, self.stop, self.worker_id, health, endpoint_of(imap),
                                     schedule=self.polls)
            if pk in polled:  # the last holder's poll schedule goes on (``poll_schedule``)
                conn.next_poll_in(*polled[pk])
            if pk in connecting:
                conn.state = State.CONNECTING  # recorded: its connect need not again
            slot = self.slots[pk] = Slot(conn)
            self._schedule(pk, slot, time.monotonic(), "connect")  # at once

    def _poll_records(self, pks: list[int]) -> dict[int, tuple[int, float]]:
        """When the accounts' folders were last polled, by whichever worker (``PollSchedule``);
        none known if Redis does not answer (they poll as they connect)."""
        try:
            return self.polls.due_in(pks) if pks else {}
        except Exception as exc:  # noqa: BLE001 - Redis down: an early poll, nothing lost
            self._fault("Redis", exc, "the accounts taken poll every folder as they connect")
            return {}

    def _arrived(self, slot: Slot) -> None:
        """A taken account is idling (or gone): once every account of the wave is, log how long
        they took, from the first take and from the worker's start."""
        if not slot.awaited:
            return
        slot.awaited = False
        self.wave_waiting -= 1
        if not self.wave_waiting:
            self._refreeze(force=True)  # before the trim: what it collects is freed too
            memory.trim()  # the connect storm's buffers, freed by now
            now = time.monotonic()
            logger.info("imapworker %s: %d accounts taken are connected (or given up) %.1f s "
                        "after the first was taken, %.1f s after the worker started",
                        self.worker_id, self.wave_taken, now - self.wave_started,
                        now - self.started_at)

    def _beat(self) -> Generator[str, None, None]:
        """Renew our heartbeat row. After a gap longer than it lasts, others may have written
        our accounts off as orphans: record again what we hold and how they are."""
        yield from self._off_loop("heartbeat row", holders.beat, self.worker_id,
                                  settings.IMAP_LEASE_TTL)
        now = time.monotonic()
        gap = None if self.last_beat is None else now - self.last_beat
        self.last_beat = now
        if gap is not None and gap > settings.IMAP_LEASE_TTL and self.slots:
            # The time first: a step that records a state after it stamps a later time
            # (``AccountConnection._set_state`` sets ``conn.state`` before it writes).
            # On the loop, as it was read: an account let go of meanwhile must not be
            # recorded as ours again.
            read_at = timezone.now()
            holders.restore(self.worker_id, {pk: slot.conn.state
                                             for pk, slot in self.slots.items()}, read_at)

    def _sweep(self) -> None:
        """Write ``disconnected`` over the active states of accounts no live worker holds.
        Only after this worker has reached the database for a full lease TTL: right after an
        outage, other live workers may not have renewed their heartbeats yet.

        On a thread of its own, not the loop's: when a worker holding thousands of accounts
        stopped (the failover bench's end, each survivor stopped in turn: a rolling restart),
        the others' sweeps of the hundreds it had let go of held their loops 0.7-3.1 s each,
        with every idling session's new mail unread meanwhile. One sweep at a time; a failed
        one is logged and the next interval's tries again."""
        now = time.monotonic()
        if now < self.next_sweep or now - self.store_ok_since < settings.IMAP_LEASE_TTL:
            return
        if self._sweeping is not None and not self._sweeping.done():
            return
        self.next_sweep = now + settings.IMAP_LEASE_TTL / 2
        self._sweeping = self._sweeper.submit(self._sweep_unheld)

    def _sweep_unheld(self) -> None:
        close_old_connections()
        try:
            count = holders.sweep()
            if count:
                logger.info("%d accounts no worker holds are now disconnected", count)
        except STORE_ERRORS as exc:
            logger.warning("imapworker %s: the sweep of accounts no worker holds failed "
                           "(%s); trying again in %.0f s", self.worker_id, exc,
                           settings.IMAP_LEASE_TTL / 2)
        except Exception:  # a bug: logged here, or it would stay in the future unseen
            logger.exception("imapworker %s: the sweep of accounts no worker holds crashed",
                             self.worker_id)
        finally:
            connections.close_all()

    def wait_for_sweep(self) -> None:
        """Until the sweep under way (if any) has ended (tests, tools, a stop)."""
        if self._sweeping is not None:
            self._sweeping.result()

    def _store_failed(self, exc: Exception) -> None:
        self.store_failures += 1
        delay = store_backoff().delay(self.store_failures)
        self.store_retry_at = time.monotonic() + delay
        self.store_ok_since = float("inf")
        self._fault("database", exc, f"keeping every account; trying again in {delay:.0f} s")
        try:
            connections.close_all()  # a broken connection is not reused
        except Exception:  # noqa: BLE001
            pass

    def _fault(self, what: str, exc: Exception, doing: str) -> None:
        if what not in self._down:
            self._down[what] = time.monotonic()
            logger.warning("imapworker %s: %s unavailable (%s); %s", self.worker_id, what,
                           exc, doing)
        else:
            logger.debug("imapworker %s: %s still unavailable: %s", self.worker_id, what, exc)

    def _back(self, what: str) -> None:
        since = self._down.pop(what, None)
        if since is not None:
            logger.warning("imapworker %s: %s reachable again after %.0f s", self.worker_id,
                           what, time.monotonic() - since)
            if what == "database":
                self.store_ok_since = time.monotonic()

    # --- commands from the API ------------------------------------------------------------

    def _start_pubsub(self) -> None:
        def listen():
            down = False
            while not self.stop.is_set():
                try:
                    pubsub = get_redis().pubsub(ignore_subscribe_messages=True)
                    pubsub.subscribe(account_changes_channel())
                    if down:
                        logger.warning("account change feed back")
                        down = False
                    while not self.stop.is_set():
                        message = pubsub.get_message(timeout=1.0)
                        if message and message.get("type") == "message":
                            self.commands.put(json.loads(message["data"]))
                            self._wake()
                except Exception as exc:  # noqa: BLE001 - polling the DB covers the gap
                    if not down:  # once per outage, not every two seconds
                        logger.warning("account change feed unavailable: %s", exc)
                    down = True
                    self.stop.wait(2.0)

        self._pubsub_thread = threading.Thread(target=listen, name="imap-pubsub", daemon=True)
        self._pubsub_thread.start()

    def handle_commands(self) -> bool:
        did = False
        while True:
            try:
                command = self.commands.get_nowait()
            except queue.Empty:
                return did
            did = True
            pk, action = command.get("id"), command.get("action")
            if action in ("added", "resumed"):
                self.next_claim = 0.0  # claim at once rather than at the next tick
            elif pk in self.slots:
                if action in ("deleted", "paused"):
                    self.drop(pk, state=State.PAUSED if action == "paused" else None)
                elif action in ("updated", "reconnect"):
                    self.reconnect(pk)
                elif action == "sync":
                    self.sync_now(pk)

    # --- scheduling steps -----------------------------------------------------------------

    def _submit(self, pk: int, step: str, timer: bool = False) -> None:
        slot = self.slots[pk]
        self._unregister(slot)
        self._unschedule(pk, slot)
        slot.busy = True
        slot.started = time.monotonic()
        if step == "connect":
            self.churn += 1  # a new session; the old one, if frozen, is garbage only we see
            self.connects.started(pk, slot.conn.endpoint, slot.conn.health)
            executor, kind = self.connects.pool, "connect"
        else:
            slot.timer_step = timer
            self.timer_steps += timer
            slot.slow_step = timer and self._slow(slot)
            self.slow_steps += slot.slow_step
            executor = self.pool
            kind = "timer" if timer else "wake" if step == "on_readable" else "other"
            if kind == "wake":
                slot.conn.woken_at = slot.started
        future = executor.submit(_timed_step, getattr(slot.conn, step), kind, slot.started)
        future.add_done_callback(lambda f, pk=pk, slot=slot: self._done(pk, slot, f))

    def _done(self, pk: int, slot: Slot, future) -> None:
        if future.cancelled():  # shutdown gave up waiting for it: nothing to log out
            self.results.put((pk, slot, Closed()))
            return
        try:
            outcome = future.result()
            if isinstance(outcome, Connected) and self.stop.is_set():
                outcome = slot.conn.close()  # logged in after the worker began to stop
        except Exception as exc:  # noqa: BLE001 - steps catch their own; this is a bug
            logger.exception("account %s: step crashed", pk)
            outcome = (Retry(time.monotonic() + CRASHED_STEP_RETRY)
                       if not isinstance(exc, SystemExit) else Closed())
        self.results.put((pk, slot, outcome))
        self._wake()

    def collect_results(self) -> bool:
        did = False
        while True:
            try:
                pk, slot, outcome = self.results.get_nowait()
            except queue.Empty:
                return did
            did = True
            slot.busy = False
            if pk in self.connects.in_flight:
                self.connects.finished(pk, slot.conn.answered)
            if slot.timer_step:
                slot.timer_step = False
                self.timer_steps -= 1
            if slot.slow_step:
                slot.slow_step = False
                self.slow_steps -= 1
            self._note_speed(slot, outcome)
            if self.slots.get(pk) is not slot:
                continue  # dropped meanwhile
            if isinstance(outcome, Closed):
                self._forget(pk, slot)
            elif slot.next_step == "close":
                self._submit(pk, "close")  # dropped while that step ran: now log out
            elif slot.next_step == "connect" and slot.wake_at is not None:
                # A reconnect was asked for while that step ran: its timer (which may have
                # come and gone while the slot was busy) fires now that the slot is free.
                self._schedule(pk, slot, slot.wake_at, "connect")
            elif isinstance(outcome, Connected):
                self._schedule(pk, slot, time.monotonic(), "sync")
                self._settle(slot, True)
            elif isinstance(outcome, Idle):
                self._arrived(slot)
                self._settle(slot, False)
                slot.registered = outcome.sock
                self.selector.register(outcome.sock, selectors.EVENT_READ, pk)
                self._schedule(pk, slot, outcome.wake_at, outcome.step)
                if slot.sync_asked:
                    self.sync_now(pk)
                if slot.conn.dropping:
                    self._submit(pk, "close")
                elif slot.conn.has_buffered_input():
                    self._submit(pk, "on_readable")
            elif isinstance(outcome, Retry):
                self._schedule(pk, slot, outcome.wake_at, outcome.step)
                if outcome.step == "connect":
                    self._settle(slot, False)  # the session was lost before it idled

    def run_due(self) -> bool:
        """Start what is due: timer steps on the pool (at most ``max_timer_steps`` at once),
        connects within the connect budget (best-known accounts first).

        Timers that come due (``timers``) wait in ``_due_steps`` / ``_due_connects`` until
        the limits let them start, in the order they came due: no look at every held
        account (at 10,000 that look was most of the loop thread's time)."""
        now = time.monotonic()
        for pk in self.timers.pop_due(now):
            slot = self.slots.get(pk)
            if slot is not None and not slot.busy:
                self._queue(pk, slot)
        did = self._start_steps()
        if self._due_connects:
            for pk in self.connects.choose(self._ranked_connects(), self._settling,
                                           endpoints=len(self._due_endpoints), ranked=True):
                self._submit(pk, "connect")
                did = True
        return did

    def _queue(self, pk: int, slot: Slot) -> None:
        if slot.next_step != "connect":
            self._due_steps[pk] = slot
            return
        self._due_connects[pk] = slot
        endpoint = slot.conn.endpoint
        self._due_endpoints[endpoint] = self._due_endpoints.get(endpoint, 0) + 1
        self._order_stale = True

    def _unqueue(self, pk: int, slot: Slot) -> None:
        """The account's due step started, was set again, or the account is gone."""
        self._due_steps.pop(pk, None)
        if self._due_connects.pop(pk, None) is not None:
            endpoint = slot.conn.endpoint
            left = self._due_endpoints[endpoint] - 1
            if left:
                self._due_endpoints[endpoint] = left
            else:
                del self._due_endpoints[endpoint]

    def _start_steps(self) -> bool:
        """Due timer steps, while the pool has timer threads free (those of the slow lane
        only while it has room)."""
        if not self._due_steps or self.timer_steps >= self.max_timer_steps:
            return False
        did = False
        for pk, slot in list(self._due_steps.items()):
            if self.timer_steps >= self.max_timer_steps:
                break
            if self.slow_steps >= self.max_slow_steps and self._slow(slot):
                continue
            self._submit(pk, slot.next_step, timer=True)
            did = True
        return did

    def _ranked_connects(self):
        """The due connects, best first (``ConnectBudget.rank``). Sorted again only when more
        came due or a server's answer changed its rank: at 10,000 due at once, sorting them
        on every turn of the loop cost as much as the look at every slot did."""
        answers = self.connects.answers_version
        if self._order_stale or answers != self._order_answers:
            self._connect_order = self.connects.rank(
                [(pk, slot.conn.health, slot.wake_at, slot.conn.endpoint)
                 for pk, slot in self._due_connects.items()])
            self._order_start, self._order_stale, self._order_answers = 0, False, answers
        order, due = self._connect_order, self._due_connects
        while self._order_start < len(order) and order[self._order_start][0] not in due:
            self._order_start += 1  # started since (they are taken from the front)
        return (entry for entry in itertools.islice(order, self._order_start, None)
                if entry[0] in due)

    def _slow(self, slot: Slot) -> bool:
        """Whether the account's timer steps take the slow lane."""
        return bool(slot.conn.slow) or slot.conn.endpoint in self.slow_endpoints

    def _note_speed(self, slot: Slot, outcome) -> None:
        """A step timed out on a slow command: its server joins the slow lane. A step that
        synced and entered IDLE (its commands got through) takes it out."""
        conn = slot.conn
        if conn.endpoint is None:
            return
        if conn.slow >= slot.started > 0:  # this step timed out
            if conn.endpoint not in self.slow_endpoints:
                logger.warning("imapworker %s: %s:%s did not answer a command within %s s; "
                               "its accounts sync on the slow lane until one gets through",
                               self.worker_id, *conn.endpoint, settings.IMAP_READ_TIMEOUT)
            self.slow_endpoints.add(conn.endpoint)
        elif (self.slow_endpoints and isinstance(outcome, Idle)
              and conn.idle_since >= slot.started):
            self.slow_endpoints.discard(conn.endpoint)

    def _next_timer(self) -> float:
        """Seconds the loop may wait for its timers: until the earliest is due, or, while a
        due step is held back by something a finishing step does not end (the slow lane, a
        stalled server, the connect pace), ``HELD_BACK_WAIT``."""
        if (self._due_steps and self.timer_steps < self.max_timer_steps) or (
                self._due_connects and len(self.connects.in_flight) < self.connects.threads):
            return HELD_BACK_WAIT
        at = self.timers.next_at()
        return 0.5 if at is None else max(0.0, at - time.monotonic())

    def _readable(self, pk: int) -> None:
        slot = self.slots.get(pk)
        if slot is not None and not slot.busy:
            self._submit(pk, "on_readable")

    # --- dropping and reconnecting --------------------------------------------------------

    def reconnect(self, pk: int) -> None:
        """Connect afresh (the ``connect`` step drops the old session) as soon as the
        connect budget allows."""
        slot = self.slots[pk]
        slot.conn.failures = 0
        slot.conn.last_poll = float("-inf")  # asked for (settings, flush, the API): poll too
        if slot.next_step == "close":
            return
        self._unregister(slot)
        self._schedule(pk, slot, time.monotonic(), "connect")
        self._settle(slot, False)

    def sync_now(self, pk: int) -> None:
        """EmailEngine's "sync now" (``PUT .../sync``): run the idle timer's step at once,
        with the poll of every folder it makes only every poll interval. A slot that is busy
        or not idle gets it when it next goes idle."""
        slot = self.slots[pk]
        if slot.busy or slot.next_step != "refresh":
            slot.sync_asked = True
            return
        slot.sync_asked = False
        slot.conn.last_poll = float("-inf")  # the refresh polls every folder
        self._schedule(pk, slot, time.monotonic(), slot.next_step)

    def drop(self, pk: int, release: bool = True, state: str | None = None) -> None:
        """Stop serving an account: log out (on the pool), then release its lease."""
        slot = self.slots.get(pk)
        if slot is None:
            return
        slot.conn.dropping = True
        slot.release_after_close = release
        slot.pause_state = state
        slot.next_step = "close"
        if not slot.busy:
            self._submit(pk, "close")

    def _forget(self, pk: int, slot: Slot) -> None:
        """The account is logged out: record it, give it up, then forget it (in that order:
        an account this worker no longer lists is one it no longer holds)."""
        self._unregister(slot)
        self._unschedule(pk, slot)
        self._settle(slot, False)
        self._arrived(slot)
        if slot.pause_state and slot.conn.has_account():
            try:
                account = slot.conn.account  # read again if the idling session let it go
                if account is not None:
                    account_state.set_state(account, slot.pause_state)
            except Exception:  # noqa: BLE001
                logger.exception("account %s: could not record pause", pk)
        if slot.release_after_close:
            try:
                holders.release(self.worker_id, pk)
            except Exception as exc:  # noqa: BLE001 - the sweep finds it once we are gone
                logger.warning("account %s: could not record the release: %s", pk, exc)
            try:
                self.leases.release(pk)
            except Exception as exc:  # noqa: BLE001 - it expires by itself
                logger.warning("account %s: lease release failed: %s", pk, exc)
        self.churn += 1
        del self.slots[pk]

    def _schedule(self, pk: int, slot: Slot, at: float, step: str) -> None:
        """Run ``step`` at ``at`` (in place of whatever the slot's timer was)."""
        self._unqueue(pk, slot)
        slot.wake_at, slot.next_step = at, step
        self.timers.set(pk, at)

    def _unschedule(self, pk: int, slot: Slot) -> None:
        self._unqueue(pk, slot)
        slot.wake_at = None
        self.timers.cancel(pk)

    def _settle(self, slot: Slot, settling: bool) -> None:
        """Whether the account is logged in and not idling yet (bounds new connects)."""
        if slot.settling != settling:
            slot.settling = settling
            self._settling += 1 if settling else -1

    def _unregister(self, slot: Slot) -> None:
        if slot.registered is not None:
            try:
                self.selector.unregister(slot.registered)
            except (KeyError, ValueError):
                pass
            slot.registered = None

    # --- stopping -------------------------------------------------------------------------

    def shutdown(self, timeout: float = 20.0) -> None:
        """Graceful stop: log every account out and release its lease."""
        self.stop.set()
        if self._ticking is not None:  # a claim tick under way: its slices left undone
            self._ticking.close()
            self._ticking = None
        for pk in list(self.slots):
            self.drop(pk)
        deadline = time.monotonic() + timeout
        while self.slots and time.monotonic() < deadline:
            self.collect_results()
            self._drain_wake()
            time.sleep(0.05)
        for slot in self.slots.values():
            if slot.busy:  # still waiting on a server (up to IMAP_READ_TIMEOUT): end it now
                slot.conn.abort()
        self.connects.shutdown()  # in-flight connects end within their phase deadlines
        self.pool.shutdown(wait=True, cancel_futures=True)
        self._sweeper.shutdown(wait=True)
        self._store.shutdown(wait=True)
        self.collect_results()
        self._record_polls()  # for whoever takes the accounts
        try:
            self.leases.retire()
        except Exception:  # noqa: BLE001
            pass
        try:
            holders.retire(self.worker_id)
        except Exception as exc:  # noqa: BLE001 - our heartbeat lapses by itself
            logger.warning("imapworker %s: could not record the stop: %s", self.worker_id, exc)
        connections.close_all()  # this thread's own (claim ticks)
        logger.info("imapworker %s stopped", self.worker_id)

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:  # BlockingIOError: a wake-up is pending anyway
            pass

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass
