"""Publishing outbox events: giving each committed event its place in one global order.

Events are written by many processes (IMAP workers, web processes) in their own transactions,
which commit in any order; a reader that followed ``created_at`` or an insert-time sequence
could pass over an event whose transaction commits a moment after a later one. So order is
assigned here instead, after commit: ``publish_pending`` takes the committed, unpublished
events under a lock (one publisher at a time, across machines), numbers them ``seq`` in
creation order and stamps ``dispatched_at``, all in one transaction. Every ``seq`` a reader can
see was therefore committed after every smaller one: a cursor over ``seq`` never skips.

After each publication the Redis channel ``events_channel()`` carries the highest ``seq``
published, to wake the delivery dispatcher and live streams at once; they also poll, since
Redis is only a doorbell and losing it loses no event.
"""

from __future__ import annotations

import logging
import time
from functools import lru_cache

import redis
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, Q
from django.utils import timezone
from redis.backoff import NoBackoff
from redis.retry import Retry

from emailapi.lib import metrics
from webhooks.models import Event

logger = logging.getLogger(__name__)

# pg_advisory_xact_lock key: one publisher at a time, whichever process runs it.
_LOCK_KEY = 0x656D_6169_6C00  # "email\0"


def events_channel() -> str:
    """Pub/sub channel of published events (Redis channels ignore the DB number)."""
    return f"{settings.EMAILAPI_REDIS_PREFIX}:events"


def new_events_channel() -> str:
    """Pub/sub channel rung when an event is recorded (before it is published)."""
    return f"{settings.EMAILAPI_REDIS_PREFIX}:events-recorded"


def publish_pending(limit: int = 2000) -> int:
    """Number and publish up to ``limit`` committed events; return how many."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                # Flushed before anyone sees it, even from a session that commits without
                # waiting (the dispatcher's): a seq once read must never be handed out again.
                cursor.execute("SET LOCAL synchronous_commit TO ON")
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        ids = list(Event.objects.select_for_update()
                   .filter(dispatched_at__isnull=True)
                   .filter(Q(held_until__isnull=True) | Q(held_until__lt=timezone.now()))
                   .order_by("created_at", "id").values_list("id", flat=True)[:limit])
        if not ids:
            return 0
        top = Event.objects.aggregate(top=Max("seq"))["top"] or 0
        _number(ids, top, timezone.now())
        last = top + len(ids)
        transaction.on_commit(lambda: _ring(events_channel(), last))
        transaction.on_commit(lambda: metrics.events_published(len(ids)))
    return len(ids)


def _number(ids: list, top: int, now) -> None:
    """Give the events ``ids`` (in order) the seqs after ``top``, stamped ``now``. One UPDATE
    of two arrays on PostgreSQL: ``bulk_update``'s CASE expressions cost the dispatcher's loop
    some 20 ms of CPU per 1,000 events, time its delivery threads wait for."""
    seqs = list(range(top + 1, top + 1 + len(ids)))
    if connection.vendor != "postgresql":
        rows = [Event(id=pk, seq=seq, dispatched_at=now) for pk, seq in zip(ids, seqs, strict=True)]
        Event.objects.bulk_update(rows, ["seq", "dispatched_at"], batch_size=500)
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Event._meta.db_table} AS e SET seq = v.seq, dispatched_at = %s "
            "FROM unnest(%s::uuid[], %s::bigint[]) AS v(id, seq) WHERE e.id = v.id",
            [now, ids, seqs])


def ring_recorded() -> None:
    """Called (once per transaction) after a transaction that recorded events commits."""
    _ring(new_events_channel(), 0)


# After a failed ring, the next ones are skipped this long: with Redis down (or hanging), a
# ring would cost every caller a connect attempt (the dispatcher's loop, web requests that
# record events), while the pollers deliver everything anyway.
RING_PAUSE = 5.0
_silent_until: dict[str, float] = {}  # Redis URL -> monotonic time


@lru_cache(maxsize=4)
def _doorbell(url: str):
    """A Redis client for rings only: one try, short timeouts (the shared client retries a
    failed command ten times, seconds in all, which a doorbell must never cost)."""
    return redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1,
                                retry=Retry(NoBackoff(), 0))


def _ring(channel: str, value: int) -> None:
    url = settings.REDIS_URL
    if time.monotonic() < _silent_until.get(url, 0.0):
        return
    try:
        _doorbell(url).publish(channel, str(value))
    except Exception as exc:  # noqa: BLE001 - a doorbell: pollers pick the event up anyway
        _silent_until[url] = time.monotonic() + RING_PAUSE
        logger.warning("could not publish to %s (%s); not trying again for %.0f s", channel,
                       exc, RING_PAUSE)
