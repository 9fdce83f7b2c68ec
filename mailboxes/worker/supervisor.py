"""The IMAP worker: many accounts' connections in one process.

One thread (``run``) owns a selector holding every idling connection's socket, the timers,
and the leases. Work that talks to a server or the database (connect, sync, leave and re-enter
IDLE) runs on a small thread pool, one step at a time per account. So 1,000 idling accounts
cost 1,000 sockets and small objects, not 1,000 threads.

Each loop iteration does, in order (each a small method returning whether it did anything):
``claim_tick`` (every ``IMAP_CLAIM_INTERVAL``: renew leases, drop accounts that were deleted,
paused or lost, rebalance to a fair share, claim free accounts), ``handle_commands`` (account
changes announced on Redis pub/sub), ``collect_results`` (finished steps: register the socket
or schedule a retry), ``run_due`` (timers), then waits on the selector.
"""

from __future__ import annotations

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
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import close_old_connections, connections

from accounts import plans
from accounts.models import EmailAccount
from accounts.services import account_changes_channel
from emailapi.redis import get_redis
from mailboxes.sync import index
from mailboxes.worker.connection import AccountConnection, Closed, Idle, Retry
from mailboxes.worker.leases import Leases

logger = logging.getLogger(__name__)
State = EmailAccount.State


class Slot:
    """Supervisor-side bookkeeping of one held account."""

    def __init__(self, conn: AccountConnection):
        self.conn = conn
        self.busy = False  # a step is running on the pool
        self.registered: socket.socket | None = None
        self.wake_at: float | None = time.monotonic()  # start at once
        self.next_step = "start"
        self.release_after_close = True
        self.pause_state: str | None = None
        self.timer_step = False  # the running step was started by a timer


class ImapWorker:
    def __init__(self, worker_id: str | None = None, max_accounts: int | None = None,
                 pool_size: int | None = None):
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.max_accounts = max_accounts or settings.IMAP_MAX_ACCOUNTS
        self.stop = threading.Event()
        self.leases = Leases(get_redis(), self.worker_id, settings.IMAP_LEASE_TTL)
        size = pool_size or settings.IMAP_POOL_SIZE
        # Timer work (connects, polls, IDLE renewals, history slices) may fill all but two
        # pool threads: a mailbox that just said "new mail" never queues behind a thousand
        # scheduled polls (that cost p99 latency of seconds at 1,000 accounts).
        self.max_timer_steps = max(1, size - 2)
        self.timer_steps = 0
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
        self.last_renewed = time.monotonic()
        self._pubsub_thread: threading.Thread | None = None

    # --- main loop ------------------------------------------------------------------------

    def run(self) -> None:
        logger.info("imapworker %s starting (max %d accounts)", self.worker_id, self.max_accounts)
        self._start_pubsub()
        try:
            while not self.stop.is_set():
                self.step()
        finally:
            self.shutdown()

    def step(self, timeout: float = 0.5) -> None:
        now = time.monotonic()
        if now >= self.next_claim:
            self.claim_tick()
            self.next_claim = now + settings.IMAP_CLAIM_INTERVAL
        self.handle_commands()
        self.collect_results()
        self.run_due()
        wait = min(timeout, max(0.0, self.next_claim - time.monotonic()), self._next_timer())
        for key, _ in self.selector.select(wait):
            if key.data is None:
                self._drain_wake()
            else:
                self._readable(key.data)

    # --- leases and claiming --------------------------------------------------------------

    def claim_tick(self) -> bool:
        """Renew, drop, rebalance, claim. Returns whether the set of held accounts changed."""
        close_old_connections()
        try:
            self.leases.heartbeat()
            lost = self.leases.renew(list(self.slots))
            self.last_renewed = time.monotonic()
            live = max(1, self.leases.live_workers())
        except Exception as exc:  # noqa: BLE001 - Redis down: keep going until TTL is near
            logger.warning("lease renewal failed: %s", exc)
            if time.monotonic() - self.last_renewed > settings.IMAP_LEASE_TTL * 0.8:
                for pk in list(self.slots):
                    self.drop(pk, release=False)
            return False
        changed = False
        for pk in lost:
            logger.warning("account %s: lease lost to another worker", pk)
            self.drop(pk, release=False)
            changed = True
        wanted = dict(self._eligible_accounts())
        stopped = self._of_stopped_tenants([pk for pk in self.slots if pk not in wanted])
        for pk, slot in list(self.slots.items()):
            if pk not in wanted:
                # deleted, paused, or its tenant stopped (trial over, suspended): then paused
                self.drop(pk, state=State.PAUSED if pk in stopped else None)
                changed = True
            elif slot.conn.config_version and wanted[pk] != slot.conn.config_version:
                self.reconnect(pk)  # settings or password changed
        share = min(self.max_accounts, math.ceil(len(wanted) / live))
        excess = len(self.slots) - share
        if excess > 0 and live > 1:
            for pk in list(self.slots)[-excess:]:
                self.drop(pk)
                changed = True
        free = [pk for pk in wanted if pk not in self.slots]
        random.shuffle(free)
        for pk in free:
            if len(self.slots) >= share:
                break
            if self.leases.acquire(pk):
                self.slots[pk] = Slot(AccountConnection(pk, self.stop))
                changed = True
        return changed

    def _eligible_accounts(self) -> list[tuple[int, int]]:
        return list(
            EmailAccount.objects.filter(paused=False, imap__isnull=False)
            .exclude(plans.stopped_tenants_q())
            .values_list("pk", "config_version")
        )

    @staticmethod
    def _of_stopped_tenants(pks: list[int]) -> set[int]:
        if not pks:
            return set()
        return set(EmailAccount.objects.filter(pk__in=pks).filter(plans.stopped_tenants_q())
                   .values_list("pk", flat=True))

    # --- commands from the API ------------------------------------------------------------

    def _start_pubsub(self) -> None:
        def listen():
            while not self.stop.is_set():
                try:
                    pubsub = get_redis().pubsub(ignore_subscribe_messages=True)
                    pubsub.subscribe(account_changes_channel())
                    while not self.stop.is_set():
                        message = pubsub.get_message(timeout=1.0)
                        if message and message.get("type") == "message":
                            self.commands.put(json.loads(message["data"]))
                            self._wake()
                except Exception as exc:  # noqa: BLE001 - polling the DB covers the gap
                    logger.warning("account change feed unavailable: %s", exc)
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

    # --- scheduling steps -----------------------------------------------------------------

    def _submit(self, pk: int, step: str, timer: bool = False) -> None:
        slot = self.slots[pk]
        self._unregister(slot)
        slot.busy = True
        slot.timer_step = timer
        self.timer_steps += timer
        slot.wake_at = None
        future = self.pool.submit(getattr(slot.conn, step))
        future.add_done_callback(lambda f, pk=pk, slot=slot: self._done(pk, slot, f))

    def _done(self, pk: int, slot: Slot, future) -> None:
        if future.cancelled():  # shutdown gave up waiting for it: nothing to log out
            self.results.put((pk, slot, Closed()))
            return
        try:
            outcome = future.result()
        except Exception as exc:  # noqa: BLE001 - steps catch their own; this is a bug
            logger.exception("account %s: step crashed", pk)
            outcome = Retry(time.monotonic() + 5.0) if not isinstance(exc, SystemExit) else Closed()
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
            if slot.timer_step:
                slot.timer_step = False
                self.timer_steps -= 1
            if self.slots.get(pk) is not slot:
                continue  # dropped meanwhile
            if isinstance(outcome, Closed):
                self._forget(pk, slot)
            elif slot.next_step == "close":
                self._submit(pk, "close")  # dropped while that step ran: now log out
            elif isinstance(outcome, Idle):
                slot.registered = outcome.sock
                self.selector.register(outcome.sock, selectors.EVENT_READ, pk)
                slot.wake_at, slot.next_step = outcome.wake_at, "refresh"
                if slot.conn.dropping:
                    self._submit(pk, "close")
                elif slot.conn.has_buffered_input():
                    self._submit(pk, "on_readable")
            elif isinstance(outcome, Retry):
                slot.wake_at, slot.next_step = outcome.wake_at, "start"

    def run_due(self) -> bool:
        now = time.monotonic()
        did = False
        for pk, slot in list(self.slots.items()):
            if self.timer_steps >= self.max_timer_steps:
                break  # the rest stay due; the next loop picks them up
            if not slot.busy and slot.wake_at is not None and slot.wake_at <= now:
                self._submit(pk, slot.next_step, timer=True)
                did = True
        return did

    def _next_timer(self) -> float:
        if self.timer_steps >= self.max_timer_steps:
            return 0.5  # a finishing step wakes the loop; do not spin on due timers
        times = [s.wake_at for s in self.slots.values() if not s.busy and s.wake_at is not None]
        return max(0.0, min(times) - time.monotonic()) if times else 0.5

    def _readable(self, pk: int) -> None:
        slot = self.slots.get(pk)
        if slot is not None and not slot.busy:
            self._submit(pk, "on_readable")

    # --- dropping and reconnecting --------------------------------------------------------

    def reconnect(self, pk: int) -> None:
        slot = self.slots[pk]
        slot.conn.failures = 0
        slot.next_step = "start"
        if not slot.busy:
            self._submit(pk, "start")
        else:
            slot.wake_at = time.monotonic()

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
        self._unregister(slot)
        del self.slots[pk]
        if slot.pause_state and slot.conn.account is not None:
            try:
                index.set_state(slot.conn.account, slot.pause_state)
            except Exception:  # noqa: BLE001
                logger.exception("account %s: could not record pause", pk)
        if slot.release_after_close:
            try:
                self.leases.release(pk)
            except Exception as exc:  # noqa: BLE001 - it expires by itself
                logger.warning("account %s: lease release failed: %s", pk, exc)

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
        for pk in list(self.slots):
            self.drop(pk)
        deadline = time.monotonic() + timeout
        while self.slots and time.monotonic() < deadline:
            self.collect_results()
            self._drain_wake()
            time.sleep(0.05)
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.collect_results()
        try:
            self.leases.retire()
        except Exception:  # noqa: BLE001
            pass
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
