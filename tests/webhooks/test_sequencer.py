"""Publishing outbox events: committed events get one gap-free order, uncommitted ones wait."""

from __future__ import annotations

import socket
import threading

import pytest
from django.db import connection, transaction

from tests.base import wait_for
from tests.servers.tcp_proxy import TcpProxy
from webhooks import events, sequencer
from webhooks.models import Event

pytestmark = pytest.mark.django_db(transaction=True)


def test_published_in_creation_order_once(alice):
    first = events.record(alice.tenant, events.MESSAGE_NEW, "box", {"n": 1})
    second = events.record(alice.tenant, events.MESSAGE_NEW, "box", {"n": 2})
    assert sequencer.publish_pending() == 2
    assert sequencer.publish_pending() == 0
    first.refresh_from_db()
    second.refresh_from_db()
    assert second.seq == first.seq + 1
    assert first.dispatched_at is not None
    third = events.record(alice.tenant, events.MESSAGE_DELETED, "box")
    assert sequencer.publish_pending() == 1
    third.refresh_from_db()
    assert third.seq == second.seq + 1


def test_an_uncommitted_event_is_not_skipped_by_a_later_one(alice):
    """A transaction that recorded an event but has not committed does not lose its place:
    events published meanwhile take lower numbers, and it takes the next one when it commits."""
    recorded, release = threading.Event(), threading.Event()

    def slow_writer():
        with transaction.atomic():
            events.record(alice.tenant, events.MESSAGE_NEW, "box", {"slow": True})
            recorded.set()
            release.wait(10)
        connection.close()

    writer = threading.Thread(target=slow_writer)
    writer.start()
    assert recorded.wait(10)
    fast = events.record(alice.tenant, events.MESSAGE_NEW, "box", {"fast": True})
    assert sequencer.publish_pending() == 1
    release.set()
    writer.join(10)
    assert sequencer.publish_pending() == 1
    fast.refresh_from_db()
    slow = Event.objects.get(data__slow=True)
    assert slow.seq == fast.seq + 1


def test_a_transaction_rings_the_doorbell_once_after_commit(alice, redis_db):
    pubsub = redis_db.pubsub()
    pubsub.subscribe(sequencer.new_events_channel())
    pubsub.get_message(timeout=10)  # the subscribe confirmation
    with transaction.atomic():
        for n in range(5):
            events.record(alice.tenant, events.MESSAGE_NEW, "box", {"n": n})
        assert pubsub.get_message(timeout=0.2) is None  # not before commit
    rung = [pubsub.get_message(timeout=10), pubsub.get_message(timeout=0.3)]
    assert rung[0] is not None
    assert rung[0]["type"] == "message"
    assert rung[1] is None
    pubsub.close()


def test_with_redis_down_a_ring_costs_one_try_and_the_next_rings_wait(settings):
    """A doorbell is best effort (pollers find every event): a ring must not cost whoever
    rings (the dispatcher's loop, a request that recorded an event) a client's retries."""
    redis_port = int(settings.REDIS_URL.rsplit(":", 1)[1].split("/")[0])
    proxy = TcpProxy(redis_port).start()
    proxy.cut()  # every connection accepted and closed at once: Redis is down
    try:
        settings.REDIS_URL = f"redis://127.0.0.1:{proxy.port}/0"
        sequencer.ring_recorded()
        wait_for(lambda: proxy.accepted >= 1, timeout=10)
        sequencer.ring_recorded()  # within RING_PAUSE: not even tried
        # A connection of ours, accepted after any the ring could have made.
        try:
            socket.create_connection(("127.0.0.1", proxy.port), timeout=5).close()
        except ConnectionResetError:
            pass  # the cut proxy resets it, maybe before the connect returns
        wait_for(lambda: proxy.accepted >= 2, timeout=10)
        assert proxy.accepted == 2
    finally:
        proxy.stop()

