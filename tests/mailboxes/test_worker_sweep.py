"""A worker's sweep (``disconnected`` written over the accounts no live worker holds) runs on
a thread of its own: when a worker holding thousands of accounts stopped, the others' sweeps of
the accounts it let go of held their loops 0.7-3.1 s each in the failover bench, and no idling
session's new mail was read meanwhile. Here a row lock (another session's, as a worker writing
that account's state holds one) keeps the sweep waiting while the loop reads new mail."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from django.db import connection

from accounts import state as account_state
from accounts.models import EmailAccount
from accounts.state import State
from mailboxes.worker import holders
from tests.base import wait_for
from tests.mailboxes.helpers import claimed_and_idle, events_of, register
from tests.servers import seed

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("fast_worker_settings")]


def _row_locked(pk: int) -> psycopg.Connection:
    """Another session of the same database holding the account's row, as a worker writing
    its state does for a moment (here until the test lets go)."""
    db = connection.settings_dict
    other = psycopg.connect(dbname=db["NAME"], user=db["USER"], password=db["PASSWORD"] or None,
                            host=db["HOST"], port=db["PORT"] or None)
    other.execute("SELECT 1 FROM accounts_emailaccount WHERE id = %s FOR UPDATE", [pk])
    return other


def _waiting_for_a_lock(other: psycopg.Connection) -> bool:
    return bool(other.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock'").fetchone()[0])


def test_a_slow_sweep_leaves_the_loop_reading_new_mail(alice, dovecot, driven_worker, settings):
    user = dovecot.add_user()
    watched = register(alice.tenant, user, "watched")
    worker = driven_worker()
    claimed_and_idle(worker, [watched])
    worker.worker.max_accounts = 1  # a tick its registration asks for does not claim it
    # Left connected by a worker that died: nobody holds it.
    orphan = register(alice.tenant, dovecot.add_user(), "orphan")
    holders.beat("dead", 60)
    holders.claim("dead", [orphan.pk])
    account_state.set_state(orphan, State.CONNECTED)
    holders.beat("dead", -1)  # its heartbeat lapsed: nobody holds the orphan now
    locker = _row_locked(orphan.pk)
    try:
        worker.worker.store_ok_since = time.monotonic() - settings.IMAP_LEASE_TTL - 1
        worker.worker.next_sweep = 0.0
        # As the tick's last slice calls it (here from a thread, so that a sweep run in
        # the caller's thread fails this test instead of hanging it on the row lock).
        call = threading.Thread(target=worker.worker._sweep)
        call.start()
        call.join(timeout=5.0)
        assert not call.is_alive()  # returned at once
        sweeping = worker.worker._sweeping
        assert sweeping is not None
        wait_for(lambda: _waiting_for_a_lock(locker), timeout=20)  # the sweep's UPDATE
        assert not sweeping.done()  # waiting for the row, off the loop
        seed.seed_mailbox(user, messages=[seed.make_message(subject="During the sweep")])
        deadline = time.monotonic() + 30
        while not events_of(watched, "messageNew"):
            worker.turn(wait=0.05)
            assert time.monotonic() < deadline
        assert not sweeping.done()
        worker.worker._sweep()  # due again: never a second one while the first runs
        assert worker.worker._sweeping is sweeping
    finally:
        locker.rollback()
        locker.close()
    worker.worker.wait_for_sweep()
    assert EmailAccount.objects.get(pk=orphan.pk).state == State.DISCONNECTED
