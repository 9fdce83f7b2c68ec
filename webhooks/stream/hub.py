"""One reader of newly published events per process, fanning them out to live subscribers.

However many clients are connected, a process holds one Redis subscription (the doorbell
``sequencer.events_channel()``) and runs one query per wake-up: each new event is read and
rendered to JSON once, then offered to every live subscriber whose filter matches. Offering
never waits: a subscriber whose buffer is full is dropped (``Subscriber.offer``), so a slow
client can cost only itself. The doorbell may be lost (Redis down, flushed, restarted): the hub
also polls every ``STREAM_POLL_INTERVAL`` seconds, so nothing is missed, only later. A database
that fails is tried again after a pause that doubles up to ``RETRY_MAX`` (a doorbell ends it):
live subscribers stay connected meanwhile and get what was published once it answers.

``top`` is the invariant the subscribers rely on: every published event with ``seq <= top`` has
already been offered to every subscriber that was live at the time. It moves with the offers,
event by event, in the event loop (the hub yields between chunks of a burst, so writers drain
meanwhile), so a subscriber that catches up to ``top`` and joins at any await of the hub misses
nothing (``webhooks.stream.subscriber``).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import weakref
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection

from emailapi.lib.backoff import Schedule
from webhooks import feed, sequencer
from webhooks.payloads import event_payload

logger = logging.getLogger(__name__)
BATCH = 1000
CHUNK = 100
RETRY_MAX = 8  # seconds between tries while the database fails (1, 2, 4, 8, 8 ...)
DB_RETRY = Schedule(base=1.0, factor=2.0, cap=RETRY_MAX)
# Between reconnects of the Redis doorbell: 0.5 s doubling to 30 s.
DOORBELL_RETRY = Schedule(base=0.5, factor=2.0, cap=30.0)
_hubs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Item:
    """A published event ready to be written: rendered once, shared by every subscriber."""

    seq: int
    tenant_id: int
    account: str
    event: str
    json: str

    @classmethod
    def of(cls, row) -> Item:
        return cls(row.seq, row.tenant_id, row.account_id, row.event,
                   json.dumps(event_payload(row), separators=(",", ":"), default=str))


def in_db_thread(func, *args):
    """Run a read in the shared thread pool (never a thread per client), and drop the
    connection when it failed so the next call reconnects."""

    def call():
        try:
            return func(*args)
        except Exception:
            connection.close()
            raise

    return sync_to_async(call, thread_sensitive=False)()


def read_page(flt: feed.Filter, after: int, limit: int) -> tuple[list[Item], feed.Page]:
    page = feed.read_published(flt, after, limit)
    return [Item.of(row) for row in page.rows], page


async def read_items(flt: feed.Filter, after: int, limit: int):
    return await in_db_thread(read_page, flt, after, limit)


def get_hub() -> Hub:
    """The hub of the running event loop (daphne has one; tests may run several)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = Hub()
    return hub


class Hub:
    def __init__(self):
        self.top: int | None = None
        self.live: dict[int, set] = {}  # tenant id -> its live subscribers
        self._wake = asyncio.Event()
        self._started: asyncio.Future | None = None
        self._tasks: list[asyncio.Task] = []

    async def ready(self) -> None:
        """Start the hub on first use and wait until ``top`` is known."""
        if self._started is None:
            self._started = asyncio.get_running_loop().create_future()
            # A fresh context: the hub outlives the request that started it.
            self._tasks = [asyncio.create_task(self._run(), context=contextvars.Context()),
                           asyncio.create_task(self._listen(), context=contextvars.Context())]
        await asyncio.shield(self._started)

    def join(self, subscriber) -> bool:
        """Make ``subscriber`` live if it has read everything up to ``top`` (no await here:
        the check and the joining happen between two of the hub's steps)."""
        if self.top is None or subscriber.cursor < self.top:
            return False
        self.live.setdefault(subscriber.filter.tenant_id, set()).add(subscriber)
        return True

    def leave(self, subscriber) -> None:
        tenant_id = subscriber.filter.tenant_id
        subscribers = self.live.get(tenant_id)
        if subscribers is not None:
            subscribers.discard(subscriber)
            if not subscribers:
                del self.live[tenant_id]

    def ring(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                if self.top is None:
                    self.top = await in_db_thread(feed.head)
                    self._started.set_result(None)
                await self._step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the database may come back: keep going
                failures += 1
                pause = DB_RETRY.delay(failures)
                if failures == 1:
                    logger.warning("event stream: reading published events failed: %s; "
                                   "retrying", exc)
                else:
                    logger.debug("event stream: still failing (%s); next try in %s s", exc,
                                 pause)
                # Back off, but a doorbell (someone published: the database answers) ends it.
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), pause)
                except asyncio.TimeoutError:
                    pass
                continue
            if failures:
                logger.warning("event stream: reading published events again after %d "
                               "failures", failures)
                failures = 0
            try:
                await asyncio.wait_for(self._wake.wait(), settings.STREAM_POLL_INTERVAL)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()

    async def _step(self) -> None:
        """Offer every event published after ``top`` to the live subscribers."""
        everyone = feed.Filter(tenant_id=None)
        while True:
            if not self.live:
                newest = await in_db_thread(feed.head)
                if not self.live:  # nobody joined while we asked: skip the rows
                    self.top = newest
                    return
            items, page = await read_items(everyone, self.top, BATCH)
            if page.upper < self.top:
                self._renumbered(page.upper)
                return
            for start in range(0, len(items), CHUNK):
                for item in items[start:start + CHUNK]:
                    for subscriber in list(self.live.get(item.tenant_id, ())):
                        subscriber.offer(item)
                    self.top = item.seq
                await asyncio.sleep(0)  # let writers drain between chunks of a burst
            self.top = max(self.top, page.horizon)
            if not page.has_more:
                return

    def _renumbered(self, upper: int) -> None:
        """The highest seq went down (the outbox was emptied and numbering restarted, or the
        database was restored): every client's last id now means something else, so drop them
        all; on reconnecting, their ids are beyond the highest seq and answer CursorExpired."""
        logger.warning("event stream: published seq went back from %s to %s; dropping clients",
                       self.top, upper)
        for subscribers in list(self.live.values()):
            for subscriber in list(subscribers):
                subscriber.drop()
        self.top = upper

    async def _listen(self) -> None:
        """Ring on every doorbell message; reconnect to Redis with a growing pause."""
        from redis import asyncio as aioredis

        retry = 0
        while True:
            client = aioredis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2)
            try:
                pubsub = client.pubsub()
                await pubsub.subscribe(sequencer.events_channel())
                self.ring()  # anything published while we were not listening
                retry = 0
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self.ring()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a doorbell: the poll covers its absence
                logger.warning("event stream: Redis doorbell lost (%s); polling meanwhile", exc)
                retry += 1
                await asyncio.sleep(DOORBELL_RETRY.delay(retry))
            finally:
                try:
                    await client.aclose()
                except Exception:  # noqa: BLE001
                    pass
