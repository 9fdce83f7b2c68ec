"""``state`` tells the truth: only the worker holding an account records its state, and an
account no live worker holds is not ``connected`` (reads say ``disconnected`` at once, from
the moment the hold lapsed; live workers then write it down)."""

from __future__ import annotations

import signal
from datetime import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import services
from accounts import state as account_state
from accounts.models import EmailAccount
from mailboxes.models import AccountHolder
from mailboxes.worker import holders
from tests.base import wait_for
from tests.mailboxes.helpers import TTL, DrivenWorker, register

pytestmark = pytest.mark.django_db(transaction=True)
State = EmailAccount.State


def _shown(tenant, account) -> dict:
    response = tenant.client.get(f"/v1/account/{account.account_id}")
    assert response.status_code == 200, response.content
    return response.json()


def _listed(tenant, **query) -> dict:
    response = tenant.client.get("/v1/accounts", query)
    assert response.status_code == 200, response.content
    return {item["account"]: item for item in response.json()["accounts"]}


def _stored(account) -> EmailAccount:
    return EmailAccount.objects.get(pk=account.pk)


@pytest.mark.sqlite
def test_a_killed_workers_account_reads_disconnected_until_a_worker_holds_it(
        alice, mail_user, settings, start_worker, spawn_worker):
    settings.IMAP_LEASE_TTL, settings.IMAP_CLAIM_INTERVAL = TTL, 1
    account = register(alice.tenant, mail_user)
    victim = spawn_worker("victim")
    wait_for(lambda: _stored(account).state == State.CONNECTED, timeout=30)
    assert _shown(alice, account)["state"] == "connected"
    connected_at = _stored(account).state_changed_at
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)

    # The API reads the truth within the lease TTL, with the time the hold lapsed.
    shown = wait_for(lambda: (body := _shown(alice, account))["state"] == "disconnected"
                     and body, timeout=TTL + 10)
    lapsed = datetime.fromisoformat(shown["stateChanged"].replace("Z", "+00:00"))
    assert connected_at < lapsed
    assert _listed(alice)["box"]["state"] == "disconnected"
    assert "box" not in _listed(alice, state="connected")
    assert "box" in _listed(alice, state="disconnected")
    assert _stored(account).state == State.CONNECTED  # nobody alive has written it yet

    # A live worker's sweep writes down what reads already show.
    assert holders.sweep() == 1
    stored = _stored(account)
    assert stored.state == State.DISCONNECTED
    assert stored.state_changed_at == lapsed
    assert holders.sweep() == 0

    # Held again: connected, recorded by the worker that holds it.
    start_worker(worker_id="rescuer")
    wait_for(lambda: _shown(alice, account)["state"] == "connected", timeout=TTL + 20)
    assert AccountHolder.objects.get(email_account=account).worker_id == "rescuer"


def test_a_stopped_workers_accounts_read_disconnected_at_once(alice, mail_user, settings):
    settings.IMAP_LEASE_TTL, settings.IMAP_CLAIM_INTERVAL = 20, 1
    account = register(alice.tenant, mail_user)
    worker = DrivenWorker(worker_id="leaving")
    try:
        worker.claim()
        worker.until(lambda: _shown(alice, account)["state"] == "connected", timeout=30)
    finally:
        worker.shutdown()
    assert _shown(alice, account)["state"] == "disconnected"  # not 20 s later


def test_only_the_holder_records_a_state(alice, mail_user):
    account = register(alice.tenant, mail_user)
    holders.beat("w1", 60)
    holders.beat("w2", 60)
    holders.claim("w1", [account.pk])
    assert not account_state.set_state(account, State.CONNECTED, fence=holders.Fence("w2", account.pk))
    assert _stored(account).state == State.INIT
    assert account_state.set_state(account, State.CONNECTED, fence=holders.Fence("w1", account.pk))
    assert _stored(account).state == State.CONNECTED

    holders.claim("w2", [account.pk])  # taken over (w1 was partitioned, say)
    assert not account_state.set_state(account, State.DISCONNECTED, fence=holders.Fence("w1", account.pk))
    assert _stored(account).state == State.CONNECTED

    services.pause_account(_stored(account))  # the API's word stands
    assert not account_state.set_state(account, State.CONNECTED, fence=holders.Fence("w2", account.pk))
    assert _stored(account).state == State.PAUSED


def test_a_restore_after_an_outage_never_writes_over_a_newer_state(alice, dovecot):
    """A worker back from a database outage rewrites the states it read from its connections;
    a connection whose sync ended after that read has recorded ``connected`` by then."""
    swept, finished = (register(alice.tenant, dovecot.add_user(), name) for name in ("a", "b"))
    holders.beat("w1", 60)
    holders.claim("w1", [swept.pk, finished.pk])
    for account in (swept, finished):  # written off by others while w1 was cut off
        account_state.set_state(account, State.DISCONNECTED)
    read_at = timezone.now()  # w1 reads its connections' states: both still syncing
    assert account_state.set_state(finished, State.CONNECTED,
                                   fence=holders.Fence("w1", finished.pk))  # its sync ended
    holders.restore("w1", {swept.pk: State.SYNCING, finished.pk: State.SYNCING}, read_at)
    assert _stored(swept).state == State.SYNCING
    assert _stored(finished).state == State.CONNECTED


def test_accounts_taken_are_recorded_connecting_at_once_only_where_the_worker_holds_them(
        alice, dovecot):
    """A worker records ``connecting`` for all the accounts it has just taken in one write,
    fenced as a single state write is: not for an account another worker has taken over since,
    nor for a paused one."""
    ours, lost, paused = (register(alice.tenant, dovecot.add_user(), name)
                          for name in ("a", "b", "c"))
    holders.beat("w1", 60)
    holders.beat("w2", 60)
    holders.claim("w1", [ours.pk, lost.pk, paused.pk])
    holders.claim("w2", [lost.pk])  # taken over (w1 was partitioned, say)
    services.pause_account(_stored(paused))
    assert holders.record_connecting("w1", [ours.pk, lost.pk, paused.pk]) == {ours.pk}
    assert _stored(ours).state == State.CONNECTING
    assert _stored(lost).state == State.INIT
    assert _stored(paused).state == State.PAUSED


def test_the_sweep_leaves_held_accounts_alone(alice, dovecot):
    held, orphan, released, never = (register(alice.tenant, dovecot.add_user(), name)
                                     for name in ("a", "b", "c", "d"))
    holders.beat("alive", 60)
    holders.claim("alive", [held.pk, released.pk])
    holders.beat("dead", 60)
    holders.claim("dead", [orphan.pk])
    for account in (held, orphan, released, never):  # ``never``: no holder row at all
        account_state.set_state(account, State.CONNECTED)
    holders.release("alive", released.pk)
    holders.beat("dead", -1)  # its heartbeat lapsed a second ago
    assert holders.sweep() == 3
    assert _stored(held).state == State.CONNECTED
    for account in (orphan, released, never):
        assert _stored(account).state == State.DISCONNECTED
    assert _listed(alice, state="connected").keys() == {"a"}


def test_the_sweep_decides_what_is_held_from_one_join_without_an_anti_join(alice, dovecot):
    """PostgreSQL planned the sweep's ``NOT EXISTS`` as a nested loop over every (account,
    holder) pair when its statistics lagged: 3 s at 10,000 accounts on the worker's loop
    thread. With every account held, one read and no write."""
    accounts = [register(alice.tenant, dovecot.add_user(), f"a{i}") for i in range(3)]
    holders.beat("alive", 60)
    holders.claim("alive", [a.pk for a in accounts])
    for account in accounts:
        account_state.set_state(account, State.CONNECTED)
    with CaptureQueriesContext(connection) as queries:
        assert holders.sweep() == 0
    statements = [q["sql"] for q in queries.captured_queries]
    assert not any("EXISTS" in sql for sql in statements)
    assert [sql.split()[0] for sql in statements if sql.split()[0] in (
        "SELECT", "UPDATE", "DELETE")] == ["SELECT", "DELETE"]  # the DELETE: old heartbeats
    # The held rows stay in the database: at 20,000 accounts, reading them all to skip
    # them in Python cost every worker 0.4 s of its loop thread per sweep.
    select = next(sql for sql in statements if sql.startswith("SELECT"))
    assert '"expires_at" >' in select.partition(" WHERE ")[2]
