"""The stream hub outlives database and Redis outages: a real daphne reaches PostgreSQL and
Redis through loopback proxies (its outages are its own). A live SSE client connected before a
storm of terminated sessions, an unreachable database and an unreachable Redis receives every
event published before, during and after, once each and in order; a new client after the storm
is served too."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest
from django.db import connection

from tests.base import wait_for
from tests.servers.tcp_proxy import TcpProxy
from tests.webhooks.stream_clients import Daphne, EventStream
from tests.webhooks.test_stream import SERVER_ENV, publish
from webhooks import feed

pytestmark = pytest.mark.django_db(transaction=True)


def _terminate(ports: list[int]) -> int:
    """End the server's database sessions: this test database's, from the proxy's ports."""
    if not ports:
        return 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND client_port = ANY(%s)", [ports])
        return cursor.fetchone()[0]


def _receive(stream: EventStream, count: int) -> list[int]:
    seqs = []
    while len(seqs) < count:
        event = stream.next_event()
        assert event is not None, f"the stream ended after {seqs}"
        seqs.append(int(event["id"]))
    return seqs


def test_a_live_client_gets_every_event_across_database_and_redis_outages(alice, settings):
    db = connection.settings_dict
    redis_port = urlsplit(settings.REDIS_URL).port or 6379
    with TcpProxy(int(db["PORT"] or 5432), db["HOST"] or "127.0.0.1").start() as db_proxy, \
            TcpProxy(redis_port).start() as redis_proxy:
        server = Daphne(
            settings, **{**SERVER_ENV, "EMAILAPI_STREAM_POLL_INTERVAL": "1",
                         "DATABASE_URL": f"postgres://{db['USER']}@127.0.0.1:{db_proxy.port}"
                                         f"/{db['NAME']}",
                         "REDIS_URL": f"redis://127.0.0.1:{redis_proxy.port}"
                                      f"{urlsplit(settings.REDIS_URL).path}"})
        try:
            start = feed.head()
            stream = EventStream(server.port, f"/v1/stream?since={start}",
                                 {"Authorization": f"Bearer {alice.token}"}, timeout=60)
            assert stream.status == 200
            publish(alice.tenant, 2)
            published = 2
            assert len(_receive(stream, 2)) == 2

            terminated = 0
            for round_ in range(25):
                terminated += _terminate(db_proxy.upstream_ports())
                if round_ % 5 == 0:
                    publish(alice.tenant, 1)
                    published += 1
                time.sleep(0.2)  # the storm's pace, not a wait for anything
            assert terminated, "the server held no database session to terminate"
            db_proxy.cut()
            publish(alice.tenant, 2)
            published += 2
            time.sleep(4)  # the database outage's length
            db_proxy.restore()
            redis_proxy.cut()
            publish(alice.tenant, 2)
            published += 2
            time.sleep(4)  # the Redis outage's length
            redis_proxy.restore()
            publish(alice.tenant, 2)
            published += 2

            seqs = _receive(stream, published - 2)
            assert seqs == sorted(set(seqs)), "an event came twice or out of order"
            assert server.process.poll() is None, server.log()[-3000:]

            def opened():
                # A request may still be handed a pooled connection the storm killed (the web
                # pool's business, not the hub's): such a request fails, the next one works.
                client = EventStream(server.port, f"/v1/stream?since={start}",
                                     {"Authorization": f"Bearer {alice.token}"}, timeout=60)
                if client.status == 200:
                    return client
                client.close()
                return None

            fresh = wait_for(opened, timeout=30)
            assert len(_receive(fresh, published)) == published
            stream.close()
            fresh.close()
        finally:
            server.stop()
