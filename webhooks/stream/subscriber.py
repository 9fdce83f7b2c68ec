"""One stream client's view of the events: its backlog replayed from the outbox, then live.

    replaying ──(cursor >= hub.top: join, no await between check and join)──> live ──> closed
        │ pages of REPLAY_PAGE from webhooks.feed                    │ buffer full
        └─ the client's own pace: the next page is read              └──> dropped
           only when the previous one was written

``cursor`` is the highest seq this client has been given (or scanned past, for a filtered
client). Replay reads ``seq > cursor`` up to a horizon; live items come from the hub, which has
offered everything up to ``hub.top`` already and offers everything after it from then on. Joining
only when ``cursor >= hub.top`` means nothing falls between the two, and ``seq > cursor`` on
every live item means nothing is given twice: each event exactly once, in seq order.
"""

from __future__ import annotations

import asyncio
from collections import deque

from webhooks.feed import Filter
from webhooks.stream.hub import Hub, Item, read_items

REPLAY_PAGE = 500


class Subscriber:
    def __init__(self, hub: Hub, flt: Filter, since: int | None, max_queue: int):
        self.hub = hub
        self.filter = flt
        self.cursor = since
        self.dropped = False
        self.closed = False
        self._max_queue = max_queue
        self._queue: deque[Item] = deque()
        self._ready = asyncio.Event()

    def offer(self, item: Item) -> None:
        """Called by the hub for every new event; never waits."""
        if self.closed or item.seq <= self.cursor:
            return
        if not self.filter.matches(item.tenant_id, item.account, item.event):
            return
        if len(self._queue) >= self._max_queue:
            self.drop()
            return
        self._queue.append(item)
        self._ready.set()

    def drop(self) -> None:
        """Give up on a client that does not keep up; it resumes with its last id."""
        self.dropped = True
        self.close()

    def close(self) -> None:
        self.closed = True
        self.hub.leave(self)
        self._queue.clear()
        self._ready.set()

    async def items(self, idle: float):
        """Yield every matching event after ``since`` (from now when None), oldest first, and
        ``None`` after ``idle`` seconds without one (time for a keep-alive)."""
        await self.hub.ready()
        if self.cursor is None:
            self.cursor = self.hub.top
        try:
            while not self.closed and not self.hub.join(self):
                items, page = await read_items(self.filter, self.cursor, REPLAY_PAGE)
                for item in items:
                    if self.closed:
                        return
                    self.cursor = item.seq
                    yield item
                self.cursor = max(self.cursor, page.horizon)
            while not self.closed:
                if not self._queue:
                    self._ready.clear()
                    try:
                        await asyncio.wait_for(self._ready.wait(), idle)
                    except asyncio.TimeoutError:
                        yield None
                        continue
                if self._queue:
                    item = self._queue.popleft()
                    self.cursor = item.seq
                    yield item
        finally:
            self.hub.leave(self)
