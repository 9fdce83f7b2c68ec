"""The webhook dispatcher: publishes outbox events, fans them out to deliveries, delivers.

One loop (``run``) does, each time it wakes:

1. ``sequencer.publish_pending`` (events get their ``seq``; the live stream and the change
   feed follow that order too, so this must happen promptly: tens of ms after a commit),
2. ``delivery_state.fan_out`` (a delivery row per interested subscription),
3. hands due lanes to a pool of ``WEBHOOK_CONCURRENCY`` threads, each of which reads runs of
   its lane's due deliveries (``delivery_state.claim_run``, up to ``RUN_LENGTH`` at once) and
   sends them one after another, in seq order, until the lane is empty or an attempt fails;
   each outcome is recorded in the statement that claims the next delivery for its request
   (``delivery_state.advance``; the lanes that advance at the same moment share one
   statement, ``webhooks.group_commit``), so a dispatcher killed at any moment leaves at most
   one delivery per lane sent and unrecorded, and ``attempts`` counts requests that went out,
4. now and then ``delivery_state.prune``.

A thread of its own drains the tracking spool: the opens and clicks kept in Redis while the
database was unavailable (``mailboxes.tracking_spool``), recorded once it answers again.

It wakes on the Redis doorbell (``sequencer.new_events_channel``, rung after every commit
that recorded events), when a lane finishes, and at least every ``WEBHOOK_POLL_INTERVAL``
seconds or when the next retry falls due. Redis is only the doorbell: with Redis gone or
flushed, polling finds everything, since all state is in the database.

Why a thread pool here and not an rq job per delivery: rq forks a process per job (tens of
ms each, far from hundreds of deliveries a second) and one rq worker runs one job at a time,
so a receiver that answers after 10 s would stall every other subscription behind it. Here a
slow lane holds one thread, and a subscription that is failing may hold only one thread at a
time (a healthy one half the pool, or more while no other subscription has a lane waiting,
each extra lane then ending after one run), so other subscriptions always have threads to
run on.
Several dispatchers (on several machines) may run: publishing is locked, fan-out serialised
on its cursor row, and each delivery claimed with a conditional UPDATE.

Outages: a pass that fails (database unreachable, sessions terminated, pool exhausted) is
retried on fresh connections after a backoff (``OUTAGE``: 0.25 s doubling to 5 s), and a
lane whose database work fails ends, to be taken up by a later pass; an outcome already
received from a receiver is written down through the outage instead, while the claim lasts
(else the delivery would be sent again). The doorbell reconnects the same way.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import Error as DatabaseError
from django.db import close_old_connections, connection
from django.utils import timezone

from emailapi.lib import metrics
from emailapi.lib.backoff import Schedule
from emailapi.lib.redis import get_redis
from mailboxes import tracking_events, tracking_spool
from webhooks import delivery_state, sequencer
from webhooks.signed_request import Sender

logger = logging.getLogger(__name__)

PRUNE_INTERVAL = 600.0
SPOOL_STOP_WAIT = 10.0  # seconds a stopping dispatcher waits for the tracking spool's drain
SLOW_ANSWER_MS = 1000
# Between tries while the database or Redis is unreachable: quick at first (one dead pooled
# connection after a failover is not an outage), then slower, never so slow that delivery
# waits long once it is back.
OUTAGE = Schedule(base=0.25, factor=2.0, cap=5.0, jitter=0.2)


def describe(exc: BaseException) -> str:
    """One line for the log: what failed, without a traceback (an outage is expected)."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:300]


def reset_connections() -> None:
    """After a database error: give this thread's connection back (a broken one is
    discarded) and have the pool test its idle connections, so that a storm of terminated
    sessions costs one failed try, not one per dead connection in the pool."""
    try:
        connection.close()
    except DatabaseError:
        pass
    pool = getattr(connection, "pool", None)
    if pool is not None:
        try:
            pool.check()
        except Exception as exc:  # noqa: BLE001 - the next try reconnects anyway
            logger.debug("could not check the database pool: %s", describe(exc))


class Dispatcher:
    def __init__(self, concurrency: int | None = None, poll_interval: float | None = None):
        self.concurrency = concurrency or settings.WEBHOOK_CONCURRENCY
        self.poll_interval = poll_interval or settings.WEBHOOK_POLL_INTERVAL
        self.stop = threading.Event()
        self.wake = threading.Event()
        self.pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="webhook")
        self._lock = threading.Lock()
        self._running: set[tuple] = set()  # lanes (subscription id, account) in a thread
        self._next_prune = 0.0
        self._failures = 0  # passes failed in a row

    # --- the loop -------------------------------------------------------------------------

    def run(self) -> None:
        bell = threading.Thread(target=self._listen, name="webhook-doorbell", daemon=True)
        bell.start()
        spool = threading.Thread(target=self._drain_tracking_spool, name="tracking-spool",
                                 daemon=True)
        spool.start()
        try:
            while not self.stop.is_set():
                self.wake.clear()
                wait = self.step()
                # After a failed pass, the backoff holds whatever rings meanwhile.
                (self.stop if self._failures else self.wake).wait(wait)
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)
            spool.join(SPOOL_STOP_WAIT)  # it stops between two fetches
            connection.close()

    def step(self) -> float:
        """One pass; return how long to sleep unless woken. A failed pass (the database
        unreachable, its sessions terminated) is retried with backoff (``OUTAGE``) on fresh
        connections; nothing is lost meanwhile, since all state is in the database."""
        try:
            close_old_connections()
            self.publish()
            metrics.observe_db_pool(every=5.0)
            wait = self.schedule()
            if time.monotonic() >= self._next_prune:
                self._next_prune = time.monotonic() + PRUNE_INTERVAL
                pruned = delivery_state.prune()
                if any(pruned):
                    logger.info("pruned %d deliveries and %d events", *pruned)
        except Exception as exc:  # noqa: BLE001 - keep dispatching once the outage ends
            self._failures += 1
            delay = OUTAGE.delay(self._failures)
            if isinstance(exc, DatabaseError):
                logger.warning("webhook dispatcher pass failed (%s); retrying in %.1f s",
                               describe(exc), delay)
            else:
                logger.exception("webhook dispatcher pass failed; retrying in %.1f s", delay)
            reset_connections()
            return delay
        if self._failures:
            logger.info("webhook dispatcher going on after %d failed passes", self._failures)
            self._failures = 0
        return wait

    def publish(self) -> int:
        """Publish and fan out everything committed so far."""
        total = 0
        while True:
            published = sequencer.publish_pending()
            total += published
            if published < 2000:
                break
        while delivery_state.fan_out() == 1000:
            pass
        return total

    def schedule(self) -> float:
        """Start a thread for each due lane not already running, within the pool's size and
        the per-subscription share; return seconds until the next retry falls due."""
        now = timezone.now()
        heads, next_due = delivery_state.due_heads(now)
        with self._lock:
            per_subscription: dict = {}
            for subscription_id, _ in self._running:
                per_subscription[subscription_id] = per_subscription.get(subscription_id, 0) + 1
            # Threads no other subscription's due lane wants may go to a healthy
            # subscription beyond its half of the pool, one run (``RUN_LENGTH``) per lane at a
            # time: another subscription's lane waits at most that long for a thread.
            wanting = {head.subscription_id for head in heads
                       if (head.subscription_id, head.account) not in self._running}
            for head in heads:
                lane = (head.subscription_id, head.account)
                share = 1 if head.failing else max(1, self.concurrency // 2)
                if len(self._running) >= self.concurrency:
                    break
                if lane in self._running:
                    continue
                taken = per_subscription.get(head.subscription_id, 0)
                spare = not head.failing and wanting == {head.subscription_id}
                if taken >= share and not spare:
                    continue
                self._running.add(lane)
                per_subscription[head.subscription_id] = taken + 1
                self.pool.submit(self._run_lane, lane, taken >= share)
        wait = self.poll_interval
        if next_due is not None:
            wait = min(wait, max(0.01, (next_due - timezone.now()).total_seconds()))
        return wait

    # --- one lane, in a pool thread ---------------------------------------------------------

    def _run_lane(self, lane: tuple, one_run: bool = False) -> None:
        try:
            close_old_connections()
            while not self.stop.is_set() and self.deliver_run(*lane) and not one_run:
                pass
        except DatabaseError as exc:  # the lane is taken up again by a later pass
            logger.warning("webhook lane %s stopped: %s", lane, describe(exc))
            reset_connections()
        except Exception:  # noqa: BLE001 - the lane is retried at the next pass
            logger.exception("webhook lane %s failed", lane)
        finally:
            try:
                connection.close()  # back to the pool: an idle thread holds no connection
            except DatabaseError:
                pass
            with self._lock:
                self._running.discard(lane)
            self.wake.set()

    def deliver_run(self, subscription_id, account: str) -> bool:
        """Claim the lane's due deliveries and send them in order; True when every one was
        delivered (the lane may have more: go on).

        Each outcome is recorded as it comes, in the same statement that claims the next
        delivery for its request (``delivery_state.advance``): a dispatcher killed at any moment
        leaves at most one delivery of the lane sent but unrecorded."""
        run = delivery_state.claim_run(subscription_id, account)
        if not run:
            return False
        subscription = run[0].subscription
        sender = Sender(subscription)
        attempts = metrics.WebhookAttempts(subscription)
        for index, delivery in enumerate(run):
            outcome = sender.send_delivery(delivery)
            answered = time.monotonic()
            attempts.record(outcome.ok, outcome.duration_ms)
            if outcome.duration_ms > SLOW_ANSWER_MS:
                # A slow receiver must not keep a database connection idle meanwhile.
                connection.close()
            if not outcome.ok:
                logger.info("webhook %s delivery %s failed (attempt %d): %s", subscription_id,
                            delivery.pk, delivery.attempts, outcome.error)
                self._record(answered, delivery_state.record_failure, delivery, outcome)
                return False
            following = None
            if index + 1 < len(run) and not self.stop.is_set():
                following = run[index + 1]
            lease = delivery_state.lease_until(timezone.now())
            ours = self._record(answered, delivery_state.advance, delivery, outcome, following,
                                lease)
            if index == 0 and subscription.failing_since is not None:
                if self._record(answered, delivery_state.recovered, subscription_id):
                    self.wake.set()  # its other lanes are due now
            if following is None:
                return ours and index + 1 == len(run)  # all delivered: the lane may have more
            if not ours:
                return False
        return True

    def _record(self, answered: float, write, *args):
        """Write down what an attempt made. Its request has gone out, so the write is retried
        through a database outage (with backoff) while the claim surely holds: for
        ``LEASE_MARGIN`` seconds after the answer (the lease covers the request's timeouts
        and that margin; a following delivery claimed by the write keeps as much for its own
        request). Given up, the delivery is sent again once its lease lapses. Raises when it
        cannot be done."""
        failures = 0
        while True:
            try:
                return write(*args)
            except DatabaseError as exc:
                failures += 1
                delay = OUTAGE.delay(failures)
                reset_connections()
                left = delivery_state.LEASE_MARGIN - (time.monotonic() - answered)
                if self.stop.is_set() or delay >= left:
                    raise
                logger.warning("webhook dispatcher: could not record a delivery (%s); "
                               "retrying in %.1f s", describe(exc), delay)
                if self.stop.wait(delay):
                    raise

    # --- the tracking spool --------------------------------------------------------------------

    def _drain_tracking_spool(self) -> None:
        """Record the tracking fetches kept in Redis during a database outage
        (``mailboxes.tracking_spool``), in a thread of its own: a Redis or database outage
        here never holds up publishing. A look every ``tracking_spool.POLL_INTERVAL`` seconds
        (one EXISTS) while the spool is empty; after a failed drain, the ``OUTAGE`` backoff.
        Several dispatchers take turns (the spool's lock)."""
        failures = 0
        while not self.stop.is_set():
            try:
                drained = tracking_events.drain_spool(self.stop)
            except Exception as exc:  # noqa: BLE001 - the spool keeps what was not recorded
                failures += 1
                delay = OUTAGE.delay(failures)
                if failures == 1:
                    logger.warning("tracking spool: could not drain (%s); trying again until "
                                   "it can", describe(exc))
                reset_connections()
                self.stop.wait(delay)
                continue
            if failures:
                logger.info("tracking spool: draining again after %d failed tries", failures)
                failures = 0
            if drained:
                logger.info("tracking spool: took off %d fetches kept during a database outage",
                            drained)
                connection.close()  # back to the pool: an idle thread holds no connection
            self.stop.wait(tracking_spool.POLL_INTERVAL)
        try:
            connection.close()
        except DatabaseError:
            pass

    # --- the doorbell -------------------------------------------------------------------------

    def _listen(self) -> None:
        """Set ``wake`` whenever events are recorded; reconnect quietly after Redis trouble
        (polling covers the gap)."""
        failures = 0
        while not self.stop.is_set():
            pubsub = None
            try:
                pubsub = get_redis().pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(sequencer.new_events_channel())
                if failures:
                    logger.info("webhook doorbell back")
                failures = 0
                self.wake.set()  # anything rung while we were not listening
                while not self.stop.is_set():
                    if pubsub.get_message(timeout=1.0):
                        self.wake.set()
            except Exception as exc:  # noqa: BLE001 - polling covers the gap
                failures += 1
                delay = OUTAGE.delay(failures)
                if failures == 1:
                    logger.warning("webhook doorbell lost (%s); polling meanwhile",
                                   describe(exc))
                self.stop.wait(delay)
            finally:
                if pubsub is not None:
                    try:
                        pubsub.close()
                    except Exception:  # noqa: BLE001, S110 - it is being dropped anyway
                        pass
