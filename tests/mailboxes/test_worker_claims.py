"""Claiming among several workers at scale: a worker short of its share asks Redis once per
thousand accounts which are free, instead of trying a lease on every account the others hold
on each claim tick (thousands of round trips on its main loop at 10,000 accounts over three
workers, which stalled its connects)."""

from __future__ import annotations

import pytest

from emailapi.lib.redis import get_redis
from mailboxes.worker.leases import LEASE_PREFIX, Leases
from tests.mailboxes.helpers import register

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("fast_worker_settings")]


def test_unheld_names_the_accounts_without_a_lease_in_their_order():
    mine = Leases(get_redis(), "claims-a", 60)
    other = Leases(get_redis(), "claims-b", 60)
    pks = [990001, 990002, 990003, 990004, 990005]
    try:
        assert mine.acquire(990002)
        assert other.acquire(990004)
        assert mine.unheld(pks, chunk=2) == [990001, 990003, 990005]
        assert other.unheld(list(reversed(pks))) == [990005, 990003, 990001]
    finally:
        mine.release(990002)
        other.release(990004)
    assert mine.unheld(pks) == pks


def test_renewing_in_chunks_names_every_lease_lost_and_keeps_the_rest():
    """Renewed a few hundred at a time (a script over thousands held Redis for 50-73 ms):
    a lease another worker took is named whichever chunk it falls in, ours are extended, and
    one that expired unclaimed is taken back."""
    mine = Leases(get_redis(), "renew-a", 60)
    other = Leases(get_redis(), "renew-b", 60)
    pks = [990011, 990012, 990013, 990014, 990015]
    redis = get_redis()
    try:
        for pk in (990011, 990012, 990013, 990015):
            assert mine.acquire(pk)
        assert other.acquire(990014)
        redis.pexpire(Leases.key(990011), 50)  # about to run out
        redis.delete(Leases.key(990015))  # ran out, nobody took it
        assert mine.renew(pks, chunk=2) == {990014}
        for pk in (990011, 990012, 990013, 990015):
            assert mine.holder(pk) == "renew-a"
            assert redis.pttl(Leases.key(pk)) > 50_000
        assert other.holder(990014) == "renew-b"
    finally:
        for pk in pks:
            mine.release(pk)
            other.release(pk)
    assert mine.renew([]) == set()


class _Watched:
    """A Redis client that notes the account of each lease ``SET`` sent through its
    pipelines."""

    def __init__(self, client, tried: list[int]):
        self._client, self._tried = client, tried

    def __getattr__(self, name):
        return getattr(self._client, name)

    def pipeline(self, *args, **kwargs):
        pipe = self._client.pipeline(*args, **kwargs)
        set_ = pipe.set

        def noted(name, *rest, **options):
            if name.startswith(LEASE_PREFIX):  # not the heartbeat's
                self._tried.append(int(name[len(LEASE_PREFIX):]))
            return set_(name, *rest, **options)

        pipe.set = noted
        return pipe


def tried_leases(leases: Leases) -> list[int]:
    """The accounts ``leases`` tries to lease from now on (each ``SET NX`` it sends)."""
    tried: list[int] = []
    leases.redis = _Watched(leases.redis, tried)
    return tried


def test_acquire_many_leases_only_as_many_as_wanted_in_order():
    """Pipelines of ``SET NX``, each of as many as are still wanted: a lease another worker
    holds is skipped and the next tried, and none is taken beyond ``want``."""
    mine = Leases(get_redis(), "many-a", 60)
    other = Leases(get_redis(), "many-b", 60)
    pks = [990021, 990022, 990023, 990024, 990025, 990026]
    try:
        assert other.acquire(990022)
        assert other.acquire(990023)
        tried = tried_leases(mine)
        assert list(mine.acquire_many(pks, 3, chunk=2)) == [990021, 990024, 990025]
        assert tried == [990021, 990022, 990023, 990024, 990025]  # 990026 never tried
        assert [mine.holder(pk) for pk in pks] == [
            "many-a", "many-b", "many-b", "many-a", "many-a", None]
        assert get_redis().pttl(Leases.key(990021)) > 50_000
        assert list(mine.acquire_many(pks, 0)) == []
        assert list(mine.acquire_many([], 5)) == []
    finally:
        for pk in pks:
            mine.release(pk)
            other.release(pk)


def test_a_worker_short_of_its_share_tries_no_lease_another_worker_holds(
        alice, dovecot, driven_worker):
    accounts = [register(alice.tenant, dovecot.add_user(), f"box{i}") for i in range(6)]
    other = Leases(get_redis(), "claims-other", 60)
    other.heartbeat()  # two live workers: a share of 3 each
    held = [a.pk for a in accounts[:4]]  # the other holds more than its share
    try:
        for pk in held:
            assert other.acquire(pk)
        worker = driven_worker()
        tried = tried_leases(worker.leases)
        worker.claim()
        assert sorted(worker.slots) == sorted(a.pk for a in accounts[4:])
        assert sorted(tried) == sorted(a.pk for a in accounts[4:])  # none of the other's
        worker.claim()  # still short of its share, nothing free
        assert sorted(tried) == sorted(a.pk for a in accounts[4:])
        assert sorted(worker.slots) == sorted(a.pk for a in accounts[4:])
    finally:
        for pk in held:
            other.release(pk)
        other.retire()


def test_a_claim_tick_longer_than_the_interval_leaves_the_loop_the_interval(
        settings, monkeypatch):
    """The next tick is due an interval after the last one ended, not after it started: at
    10,000 accounts on a loaded machine a tick can outlast the interval, and ticks back to
    back left no turn of the loop to start connects or collect finished steps."""
    import time

    from mailboxes.worker.imap_worker import ImapWorker

    settings.IMAP_CLAIM_INTERVAL = 1
    worker = ImapWorker(worker_id="claims-slow")
    ticks = []

    def slow_tick():
        ticks.append(time.monotonic())
        time.sleep(1.2)  # the tick's own length, longer than the interval
        return False
        yield  # a generator, as the tick is

    monkeypatch.setattr(worker, "_tick", slow_tick)
    try:
        worker.next_claim = 0.0
        worker.step(timeout=0)
        ended = time.monotonic()
        worker.step(timeout=0)
        assert len(ticks) == 1
        assert worker.next_claim >= ended + 0.9
    finally:
        worker.shutdown()
