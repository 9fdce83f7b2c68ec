"""The garbage collector in a worker holding thousands of sessions (``mailboxes.worker.
collector``): long collections are timed and logged, and what a connect wave leaves alive is
frozen out of later full collections, while its garbage is still collected."""

from __future__ import annotations

import gc
import weakref

import pytest

from mailboxes.worker import collector
from tests.mailboxes.helpers import DrivenWorker, register


class Node:
    def __init__(self):
        self.other = self


def tracked(thing) -> bool:
    """Whether a collection walks ``thing`` (frozen objects are in no generation)."""
    return any(obj is thing for obj in gc.get_objects())


@pytest.fixture
def thawed():
    """Whatever a test freezes is thawed after it (the rest of the suite is not frozen)."""
    yield
    gc.unfreeze()


def test_collections_are_timed_and_the_long_ones_kept_until_taken():
    pauses = collector.PauseLog(logged=0.0)  # every collection counts as long
    gc.callbacks.append(pauses)
    try:
        gc.collect()
    finally:
        gc.callbacks.remove(pauses)
    assert pauses.full == 1
    assert pauses.full_seconds > 0
    [(generation, took)] = pauses.take_long()
    assert generation == 2
    assert took == pytest.approx(pauses.full_seconds)
    assert pauses.take_long() == []


def test_short_collections_are_not_kept():
    pauses = collector.PauseLog(logged=60.0)
    gc.callbacks.append(pauses)
    try:
        gc.collect()
    finally:
        gc.callbacks.remove(pauses)
    assert pauses.full == 1
    assert pauses.take_long() == []


@pytest.mark.usefixtures("thawed")
def test_settle_collects_the_garbage_then_freezes_what_lives():
    alive = Node()
    garbage = weakref.ref(Node())  # a cycle only a collection frees
    assert garbage() is not None
    first = collector.settle()
    assert garbage() is None
    assert first > 0
    # Only a freeze adds to the count; another thread of the test process may meanwhile
    # free a frozen object, which takes one off.
    assert 0 < gc.get_freeze_count() <= first
    assert not tracked(alive)  # out of every generation's walk

    # A later settle thaws first: a cycle frozen meanwhile is collected then.
    frozen_garbage = weakref.ref(Node())
    gc.freeze()
    gc.collect()
    assert frozen_garbage() is not None  # what freezing costs until the next settle
    collector.settle()
    assert frozen_garbage() is None


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fast_worker_settings", "thawed")
def test_a_worker_freezes_once_its_connect_wave_is_over(alice, dovecot, settings):
    settings.IMAP_LEASE_TTL = 60
    accounts = [register(alice.tenant, dovecot.add_user(), f"box{i}") for i in range(2)]
    gc.unfreeze()
    worker = DrivenWorker(gc_freeze=True)
    try:
        worker.claim()
        worker.until(lambda: all(worker.idle(a.pk) for a in accounts), timeout=60)
        worker.until(lambda: worker.wave_waiting == 0)
        assert gc.get_freeze_count() > 0
        session = worker.slots[accounts[0].pk].conn.session
        assert session is not None
        assert not tracked(session)  # frozen with the rest
    finally:
        worker.shutdown()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fast_worker_settings", "thawed")
def test_a_worker_freezes_again_once_sessions_were_replaced(alice, mail_user, settings,
                                                            monkeypatch):
    """A replaced session's frozen objects that refer to each other are garbage only a new
    settle collects: after ``REFREEZE_CHURN`` new sessions, the next claim tick does it."""
    from mailboxes.worker import imap_worker

    settings.IMAP_LEASE_TTL = 60
    monkeypatch.setattr(imap_worker, "REFREEZE_CHURN", 1)
    account = register(alice.tenant, mail_user)
    worker = DrivenWorker(gc_freeze=True)
    try:
        worker.claim()
        worker.until(lambda: worker.idle(account.pk) and worker.wave_waiting == 0)
        old_session = weakref.ref(worker.slots[account.pk].conn.session)
        stale = weakref.ref(Node())  # stands for garbage frozen with the first wave
        gc.freeze()
        worker.claim()
        assert stale() is not None  # nothing replaced yet: no new settle
        worker.reconnect(account.pk)
        worker.until(lambda: worker.idle(account.pk)
                     and worker.slots[account.pk].conn.session is not old_session())
        worker.claim()
        assert stale() is None
        assert worker.churn == 0
    finally:
        worker.shutdown()
