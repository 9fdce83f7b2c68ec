"""Finding a dead worker by its presence in Redis (``Leases.gone_workers``), so that its
accounts are claimed seconds after a crash rather than a lease TTL after it; real Redis."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest
import redis

from emailapi.lib.redis import get_redis
from mailboxes.worker.leases import PRESENT, WORKER_PREFIX, WORKERS_KEY, Leases
from tests.base import wait_for
from tests.mailboxes.helpers import counted
from tests.servers.tcp_proxy import TcpProxy

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def leases():
    made: list[Leases] = []

    def make(worker_id: str) -> Leases:
        made.append(Leases(get_redis(), worker_id, 60))
        return made[-1]

    yield make
    for each in made:
        each.retire()


def test_a_worker_whose_presence_is_gone_is_named_once_absent_long_enough(leases):
    me, other = leases("gone-me"), leases("gone-other")
    me.heartbeat()
    other.heartbeat()
    assert me.gone_workers(me.workers(), after=0) == []  # subscribed: present
    other._leave()  # its connection closes, as a killed process's does
    assert me.gone_workers(me.workers(), after=60) == []  # absent, not for long yet
    assert me.gone_workers(me.workers(), after=0) == ["gone-other"]
    other.heartbeat()  # back (a blip): its absence starts over
    assert me.gone_workers(me.workers(), after=0) == []
    assert me._absent_since == {}


def test_nobody_is_judged_while_this_workers_own_presence_is_missing(leases):
    me, other = leases("gone-me"), leases("gone-other")
    me.heartbeat()
    other.heartbeat()
    me._leave()
    other._leave()
    assert me.gone_workers(me.workers(), after=0) == []


def test_a_worker_that_keeps_no_presence_is_never_judged(leases):
    """A worker of an earlier version (heartbeat "1", no subscription) keeps its leases until
    they run out, as before."""
    me = leases("gone-me")
    me.heartbeat()
    get_redis().set(f"{WORKER_PREFIX}gone-old", "1", px=60_000)
    try:
        assert "gone-old" in me.workers()  # a scan found it, and entered it in the index
        assert b"gone-old" in get_redis().smembers(WORKERS_KEY)
        assert me.gone_workers(me.workers(), after=0) == []
    finally:
        get_redis().delete(f"{WORKER_PREFIX}gone-old")
    assert "gone-old" not in me.workers()
    assert b"gone-old" not in get_redis().smembers(WORKERS_KEY)


def test_live_workers_are_read_from_their_index_not_a_scan(leases, monkeypatch):
    """A SCAN of the database each claim tick was 40-odd round trips at 20,000 accounts (their
    leases and poll records): the live workers are an index's members whose heartbeat key
    lives; the keys are scanned only every ``WORKER_SCAN_EVERY`` (earlier versions)."""
    me, other = leases("gone-me"), leases("gone-other")
    me.heartbeat()
    other.heartbeat()
    scans = []
    scan_iter = me.redis.scan_iter
    monkeypatch.setattr(me.redis, "scan_iter",
                        lambda *a, **kw: scans.append(kw.get("match")) or scan_iter(*a, **kw))
    assert set(me.workers()) == {"gone-me", "gone-other"}
    assert len(scans) == 1  # the first look scans once
    assert set(me.workers()) == {"gone-me", "gone-other"}
    assert len(scans) == 1
    get_redis().delete(f"{WORKER_PREFIX}gone-other")  # its heartbeat ran out
    assert set(me.workers()) == {"gone-me"}
    assert b"gone-other" not in get_redis().smembers(WORKERS_KEY)
    other.heartbeat()  # back: its heartbeat enters it again
    assert set(me.workers()) == {"gone-me", "gone-other"}
    other.retire()
    assert set(me.workers()) == {"gone-me"}
    assert len(scans) == 1


def test_forget_frees_only_the_leases_the_gone_worker_still_holds(leases):
    me, other = leases("gone-me"), leases("gone-other")
    other.heartbeat()
    pks = [991001, 991002, 991003]
    try:
        assert other.acquire(991001)
        assert other.acquire(991002)
        assert me.acquire(991003)  # claimed by another meanwhile: stays
        assert me.forget("gone-other", pks, chunk=2) == 2
        assert "gone-other" not in me.workers()
        assert me.unheld(pks) == [991001, 991002]
        assert me.holder(991003) == "gone-me"
    finally:
        me.release(991003)


def test_presence_comes_back_after_redis_dropped_the_connection(leases):
    """Redis closing the subscription (a restart, ``CLIENT KILL``) does not leave a live worker
    looking gone: its next heartbeat subscribes again."""
    me, other = leases("gone-me"), leases("gone-other")
    me.heartbeat()
    other.heartbeat()
    host, port = other._presence.connection._sock.getsockname()[:2]
    get_redis().execute_command("CLIENT", "KILL", "ADDR", f"{host}:{port}")
    channel = other.presence_channel("gone-other")
    wait_for(lambda: get_redis().pubsub_numsub(channel)[0][1] == 0)
    wait_for(lambda: other.heartbeat() is None
             and get_redis().pubsub_numsub(channel)[0][1] == 1
             and me.workers()["gone-other"] == PRESENT)
    assert me.gone_workers(me.workers(), after=0) == []


def _look(worker) -> bool:
    """One presence look of the worker's loop (``ImapWorker._gone_seen``), due now."""
    worker.next_presence_look = 0.0
    return worker._gone_seen(time.monotonic())


def test_a_worker_found_gone_between_ticks_starts_one_tick_for_it(driven_worker, leases,
                                                                   settings):
    settings.IMAP_WORKER_GONE_AFTER = 1
    worker = driven_worker(worker_id="gone-looker").worker
    other = leases("gone-other")
    worker.leases.heartbeat()
    other.heartbeat()
    worker.workers = worker.leases.workers()
    assert not _look(worker)  # present
    other._leave()
    wait_for(lambda: _look(worker), timeout=10)  # absent for a second: a tick now
    assert not _look(worker)  # the same death starts no second tick
    other.heartbeat()  # back (a blip): forgotten
    assert not _look(worker)
    assert worker._ticked_for_gone == set()
    other._leave()
    wait_for(lambda: _look(worker), timeout=10)  # gone again: a tick again


def test_a_look_redis_does_not_answer_waits_for_the_next_tick(driven_worker, settings):
    """A Redis that does not answer holds the loop back no more often than the tick's own
    calls do: after a failed look, none until the next tick is due."""
    worker = driven_worker(worker_id="gone-looker").worker
    worker.leases.heartbeat()
    worker.workers = {"gone-looker": PRESENT, "gone-other": PRESENT}
    url = urlsplit(settings.REDIS_URL)
    with TcpProxy(url.port or 6379).start() as proxy:
        worker.leases = Leases(redis.Redis.from_url(
            f"redis://127.0.0.1:{proxy.port}{url.path}", socket_timeout=2), "gone-looker", 60)
        looks = counted(worker.leases, "gone_workers")
        proxy.cut()
        worker.next_claim = time.monotonic() + 30
        assert not _look(worker)
        assert looks == ["gone_workers"]
        assert worker.next_presence_look == worker.next_claim
        assert not worker._gone_seen(time.monotonic())
        assert looks == ["gone_workers"]  # not looked again before the tick


@pytest.mark.parametrize("gone_after, ttl", [(0, 60), (2, 2)])
def test_no_look_starts_a_tick_where_presence_is_off(driven_worker, leases, settings,
                                                     gone_after, ttl):
    """``IMAP_WORKER_GONE_AFTER`` 0, or not under the lease TTL: leases only, as documented."""
    worker = driven_worker(worker_id="gone-looker").worker
    other = leases("gone-other")
    worker.leases.heartbeat()
    other.heartbeat()
    worker.workers = worker.leases.workers()
    settings.IMAP_WORKER_GONE_AFTER, settings.IMAP_LEASE_TTL = gone_after, ttl
    other._leave()
    wait_for(lambda: worker.leases.gone_workers(worker.workers, after=2) == ["gone-other"],
             timeout=10)  # absent long enough for a 2 s judgement
    assert not _look(worker)
