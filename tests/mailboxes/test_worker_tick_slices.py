"""The loop runs a claim tick a slice at a time (about one round trip to Redis or the database
each) and reads its sockets between slices: run whole, a survivor's tick held the loop 330-675
ms under a failover's load, and every new mail of its idling accounts waited as long."""

from __future__ import annotations

import select
import threading
import time
from concurrent.futures import wait
from urllib.parse import urlsplit

import pytest
import redis

from accounts.models import EmailAccount
from emailapi.lib.redis import get_redis
from mailboxes.worker import eligible, imap_worker
from mailboxes.worker.leases import LEASE_PREFIX, Leases
from tests.base import TIMEOUT_FACTOR, wait_for
from tests.mailboxes.helpers import claimed_and_idle, events_of, held_back, register
from tests.servers import seed
from tests.servers.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("fast_worker_settings")]


def _turn(worker) -> None:
    """One turn of the loop that runs a slice of the tick, once the database has answered
    the last one (read on the store thread): the loop's turns meanwhile run none."""
    awaited = worker.worker._awaited
    if awaited is not None:
        wait([awaited], timeout=20 * TIMEOUT_FACTOR)
    worker.turn(wait=0)


def _start_tick(worker) -> None:
    """Make a tick due and run the loop's first turn of it (its first slice)."""
    worker.worker.next_claim = 0.0
    worker.turn(wait=0)
    assert worker.worker._ticking is not None


def test_the_loop_renews_a_chunk_of_leases_a_turn(alice, dovecot, driven_worker, monkeypatch):
    monkeypatch.setattr(imap_worker, "RENEW_CHUNK", 2)
    accounts = [register(alice.tenant, dovecot.add_user(), f"slice{i}") for i in range(5)]
    worker = driven_worker()
    claimed_and_idle(worker, accounts)
    renewed: list[list[int]] = []
    renew = worker.leases.renew
    monkeypatch.setattr(worker.leases, "renew",
                        lambda pks, **kw: renewed.append(list(pks)) or renew(pks, **kw))
    _start_tick(worker)
    assert renewed == []  # the heartbeat's slice
    turns = 1
    while worker.worker._ticking is not None:
        before = len(renewed)
        _turn(worker)
        turns += 1
        assert len(renewed) - before <= 1  # never two chunks in one turn
        assert turns < 50
    assert [len(chunk) for chunk in renewed] == [2, 2, 1]
    assert sorted(pk for chunk in renewed for pk in chunk) == sorted(a.pk for a in accounts)
    assert turns >= 3 + 3  # heartbeat, three chunks, the heartbeat row, the comparison
    assert worker.worker.next_claim < float("inf")  # the next one is due an interval on


def test_mail_during_a_claim_tick_is_read_before_the_tick_ends(alice, dovecot, driven_worker,
                                                               monkeypatch):
    monkeypatch.setattr(imap_worker, "RENEW_CHUNK", 1)
    users = [dovecot.add_user() for _ in range(4)]
    accounts = [register(alice.tenant, user, f"mid{i}") for i, user in enumerate(users)]
    worker = driven_worker()
    claimed_and_idle(worker, accounts)
    target = accounts[0]
    sock = worker.slots[target.pk].registered
    _start_tick(worker)
    seed.seed_mailbox(users[0], messages=[seed.make_message(subject="Mid-tick")])
    readable, _, _ = select.select([sock], [], [], 10.0)  # Dovecot's EXISTS has come in
    assert readable
    worker.turn(wait=0)  # a slice, then the sockets
    assert worker.worker._ticking is not None  # slices of the tick are left
    slot = worker.slots[target.pk]
    assert slot.busy  # its socket was read: the sync is under way
    assert not slot.timer_step  # not a timer's step
    event = worker.until(lambda: events_of(target, "messageNew"))[0]
    assert event.data["subject"] == "Mid-tick"


def test_an_account_let_go_of_during_a_tick_is_not_leased_again(alice, dovecot, driven_worker,
                                                                 monkeypatch):
    """Renewing takes back a lease nobody holds: an account dropped (and its lease released)
    after the tick began must not be renewed by its later slices, or nobody could claim it
    until that lease ran out."""
    monkeypatch.setattr(imap_worker, "RENEW_CHUNK", 1)
    accounts = [register(alice.tenant, dovecot.add_user(), f"gone{i}") for i in range(3)]
    worker = driven_worker()
    claimed_and_idle(worker, accounts)
    last = list(worker.slots)[-1]  # the tick renews in this order: its chunk comes last
    _start_tick(worker)  # the heartbeat: every held account is still to be renewed
    reader = Leases(get_redis(), "reader", 60)
    assert reader.holder(last) == worker.worker_id
    EmailAccount.objects.filter(pk=last).update(paused=True)  # not to be claimed again
    worker.drop(last)
    # Logged out and released, with the loop's tick left where it was.
    wait_for(lambda: worker.worker.collect_results() or last not in worker.slots)
    assert reader.holder(last) is None
    while worker.worker._ticking is not None:
        _turn(worker)
    assert reader.holder(last) is None
    assert sorted(worker.slots) == sorted(a.pk for a in accounts if a.pk != last)


def test_a_command_asking_for_a_tick_during_one_gets_another(alice, dovecot, driven_worker):
    """An account added while a tick runs may have been missed by its read: the loop starts
    the next tick as soon as this one ends, not an interval later."""
    accounts = [register(alice.tenant, dovecot.add_user(), "first")]
    worker = driven_worker()
    claimed_and_idle(worker, accounts)
    _start_tick(worker)
    worker.worker.commands.put({"id": None, "action": "added"})
    while worker.worker._ticking is not None:
        _turn(worker)
    assert worker.worker.next_claim == 0.0


def _slices(worker) -> list[tuple[str, list[int]]]:
    """Run the tick under way to its end; each slice's name and the accounts it took."""
    done = []
    while worker.worker._ticking is not None:
        before = set(worker.slots)
        _turn(worker)
        done.append((worker.worker._slice, sorted(set(worker.slots) - before)))
    return done


def test_a_worker_short_of_its_share_claims_a_chunk_of_candidates_a_slice(
        alice, dovecot, driven_worker, monkeypatch):
    """Which of the eligible accounts are free, leasing them and taking them: a slice per
    ``CLAIM_CHUNK`` candidates (one over a dead worker's 15,000 held a survivor's loop for
    1.0-1.5 s)."""
    monkeypatch.setattr(imap_worker, "CLAIM_CHUNK", 2)
    accounts = [register(alice.tenant, dovecot.add_user(), f"chunk{i}") for i in range(5)]
    worker = driven_worker()
    _start_tick(worker)
    slices = _slices(worker)
    claims = [taken for name, taken in slices if taken]
    assert [len(taken) for taken in claims] == [2, 2, 1]
    assert [name for name, taken in slices if taken] == ["claim"] * 3
    assert sorted(worker.slots) == sorted(a.pk for a in accounts)


def test_redis_gone_mid_claim_keeps_what_was_leased_and_leases_no_more(
        alice, dovecot, driven_worker, monkeypatch, settings):
    """The accounts leased before Redis went away are taken (none is left leased and not
    held); the others stay free for whoever claims next, and the loop goes on."""
    monkeypatch.setattr(imap_worker, "CLAIM_CHUNK", 2)
    accounts = [register(alice.tenant, dovecot.add_user(), f"cut{i}") for i in range(5)]
    worker = driven_worker(worker_id="mid-claim")
    url = urlsplit(settings.REDIS_URL)
    reader = Leases(get_redis(), "reader", 60)
    with TcpProxy(url.port or 6379).start() as proxy:
        worker.worker.leases = Leases(redis.Redis.from_url(
            f"redis://127.0.0.1:{proxy.port}{url.path}", socket_timeout=2), "mid-claim", 60)
        _start_tick(worker)
        while not set(worker.slots):  # up to the first claim
            _turn(worker)
        assert worker.worker._slice == "claim"
        first = sorted(worker.slots)
        proxy.cut()
        rest = _slices(worker)
    assert len(first) == 2
    assert all(not taken for _, taken in rest)
    assert sorted(worker.slots) == first
    assert "Redis" in worker.worker._down
    assert {pk: reader.holder(pk) for pk in first} == {pk: "mid-claim" for pk in first}
    assert [reader.holder(a.pk) for a in accounts if a.pk not in first] == [None] * 3


class _RacedThenCut:
    """A Redis client for one worker's leases, through ``proxy``: after its first ``MGET``
    (the claim's look at which candidates are free) another worker (``racer``) leases the
    first of them, so the first pipeline of ``SET NX`` falls one short and a second one is
    needed; creating that second pipeline cuts the proxy, so it fails as Redis going away
    between two pipelines would."""

    def __init__(self, client, proxy, racer: Leases):
        self._client, self._proxy, self._racer = client, proxy, racer
        self.raced: int | None = None
        self.pipelines = 0  # since the race

    def __getattr__(self, name):
        return getattr(self._client, name)

    def mget(self, keys, *args):
        values = self._client.mget(keys, *args)
        if self.raced is None and keys[0].startswith(LEASE_PREFIX):  # not the heartbeats'
            self.raced = int(keys[0][len(LEASE_PREFIX):])
            assert self._racer.acquire(self.raced)
        return values

    def pipeline(self, *args, **kwargs):
        self.pipelines += self.raced is not None  # the claim's, not the heartbeat's
        if self.pipelines == 2:
            self._proxy.cut()
        return self._client.pipeline(*args, **kwargs)


def test_redis_gone_between_two_pipelines_of_one_claim_keeps_the_first_ones_leases(
        alice, dovecot, driven_worker, settings):
    """``acquire_many`` yields each pipeline's leases as it answers: when Redis goes away
    before the next pipeline, the leases the first one took are held and connected (never
    left leased by a worker that does not serve them), and nothing more is leased."""
    accounts = [register(alice.tenant, dovecot.add_user(), f"pipe{i}") for i in range(6)]
    other = Leases(get_redis(), "pipes-other", 60)
    other.heartbeat()  # two live workers: a share of 3 each
    racer = Leases(get_redis(), "pipes-racer", 60)
    reader = Leases(get_redis(), "reader", 60)
    url = urlsplit(settings.REDIS_URL)
    worker = driven_worker(worker_id="mid-pipe")
    try:
        with TcpProxy(url.port or 6379).start() as proxy:
            client = _RacedThenCut(redis.Redis.from_url(
                f"redis://127.0.0.1:{proxy.port}{url.path}", socket_timeout=2), proxy, racer)
            worker.worker.leases = Leases(client, "mid-pipe", 60)
            _start_tick(worker)
            _slices(worker)
            assert client.pipelines == 2  # the second was the one cut
        taken = sorted(worker.slots)
        assert len(taken) == 2  # the first pipeline's three, less the one raced away
        assert client.raced not in taken
        assert "Redis" in worker.worker._down
        holder_of = {a.pk: reader.holder(a.pk) for a in accounts}
        assert holder_of == {a.pk: "mid-pipe" if a.pk in taken
                             else "pipes-racer" if a.pk == client.raced else None
                             for a in accounts}
        worker.until(lambda: all(
            EmailAccount.objects.get(pk=pk).state == "connected" for pk in taken))
    finally:
        for account in accounts:
            racer.release(account.pk)
        other.retire()


def test_a_tick_acts_on_what_the_database_reports_without_an_announcement(
        alice, bob, dovecot, driven_worker):
    """Changes the API's announcements missed (Redis away, a row written by hand): the tick's
    comparison (``eligible.held_changes``) reconnects an account with new settings, lets go
    of a paused one, and records a stopped tenant's account ``paused``."""
    from datetime import timedelta

    from django.utils import timezone

    from accounts.models import Tenant

    updated, paused, kept = (register(alice.tenant, dovecot.add_user(), f"db{i}")
                             for i in range(3))
    stopped = register(bob.tenant, dovecot.add_user(), "bobs")
    worker = driven_worker()
    claimed_and_idle(worker, [updated, paused, kept, stopped])
    version = worker.slots[updated.pk].conn.config_version
    EmailAccount.objects.filter(pk=updated.pk).update(config_version=version + 1)
    EmailAccount.objects.filter(pk=paused.pk).update(paused=True)
    Tenant.objects.filter(pk=bob.tenant.pk).update(
        status=Tenant.Status.TRIAL, trial_ends_at=timezone.now() - timedelta(minutes=1))
    assert worker.claim()
    assert worker.slots[updated.pk].next_step == "connect"  # reconnecting
    assert worker.slots[kept.pk].next_step == "refresh"  # idling as before
    worker.until(lambda: paused.pk not in worker.slots and stopped.pk not in worker.slots
                 and worker.slots[updated.pk].conn.config_version == version + 1
                 and worker.idle(updated.pk))
    assert EmailAccount.objects.get(pk=stopped.pk).state == "paused"
    assert EmailAccount.objects.get(pk=paused.pk).state != "paused"  # not a tenant's stop
    assert Leases(get_redis(), "reader", 60).holder(paused.pk) is None


def test_the_loop_reads_new_mail_while_the_tick_waits_for_the_database(alice, dovecot,
                                                                        driven_worker,
                                                                        monkeypatch):
    """The tick's reads run on the store thread (``_off_loop``): while the comparison with the
    eligible accounts waits for PostgreSQL (in a failover, on its load: up to 662 ms a turn;
    here held back until the test lets it go), the loop reads its sockets, and a new mail is
    indexed and announced before the tick has its answer. A tick asked for meanwhile (an
    account added) comes after this one: the loop keeps waiting on its sockets, it does not
    spin."""
    users = [dovecot.add_user() for _ in range(2)]
    held = register(alice.tenant, users[0], "held")
    worker = driven_worker()
    claimed_and_idle(worker, [held])
    answer = held_back(monkeypatch, eligible, "held_changes")
    waits: list[float] = []
    select = worker.worker.selector.select
    monkeypatch.setattr(worker.worker.selector, "select",
                        lambda timeout=None: waits.append(timeout) or select(timeout))
    try:
        _start_tick(worker)
        # Up to the comparison, each turn from a thread: one that waited for the answer
        # itself fails this test instead of hanging it.
        while worker.worker._slice != "eligible":
            call = threading.Thread(target=_turn, args=(worker,))
            call.start()
            call.join(timeout=5.0)
            assert not call.is_alive()
        comparison = worker.worker._awaited
        new = register(alice.tenant, users[1], "new")  # asks for a tick (``added``)
        seed.seed_mailbox(users[0], messages=[seed.make_message(subject="Tick waiting")])
        waits.clear()
        deadline = time.monotonic() + 30 * TIMEOUT_FACTOR
        while not events_of(held, "messageNew"):
            worker.turn(wait=0.05)
            assert time.monotonic() < deadline
        assert worker.worker.next_claim == 0.0  # the tick asked for is due
        assert max(waits) > 0  # and the loop waited on its sockets all the same
        assert not comparison.done()  # still waiting for its answer
        assert worker.worker._ticking is not None
    finally:
        answer.set()
    while worker.worker._ticking is not None:
        _turn(worker)
    assert worker.worker._down == {}
    assert worker.worker.next_claim == 0.0  # the next tick at once: it claims the new one
    worker.until(lambda: new.pk in worker.slots and worker.idle(new.pk), claim=True)
