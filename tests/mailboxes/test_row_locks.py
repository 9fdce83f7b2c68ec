"""The row locks two hand-written statements take on PostgreSQL (``emailapi.lib.rows.locking``):

- the holder fence locks the account's holder row while a worker records a state, so a
  takeover cannot commit between the check and the write (``holders.still_holds``), also
  where the check is a condition of the state's one UPDATE (``holders.Fence.condition``);
- a sync pass locks the account's folder rows while it mirrors the folder list, so two passes
  cannot number new folders alike (``index._locked_folders``).

Each is proven from a second connection, which cannot lock what the first holds until the
first's transaction ends. (SQLite has no row locks: the statements there are plain reads.)
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import OperationalError, connection, transaction
from django.test.utils import CaptureQueriesContext

from accounts import state as account_state
from accounts.models import EmailAccount
from mailboxes.models import AccountHolder, Folder
from mailboxes.sync import index
from mailboxes.worker import holders
from tests.base import sessions_waiting_on_a_lock, wait_for
from tests.mailboxes.helpers import register

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.skipif("connection.vendor != 'postgresql'",
                                 reason="row locks are PostgreSQL's")]


def _locked_elsewhere(model, account_pk: int) -> bool:
    """Whether another connection is refused a lock on the account's rows of ``model``
    (``FOR UPDATE NOWAIT``): they are locked by a transaction still open."""
    sql = f"SELECT 1 FROM {model._meta.db_table} WHERE email_account_id = %s FOR UPDATE NOWAIT"

    def attempt() -> bool:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(sql, [account_pk])
                assert cursor.fetchall(), "no row to lock: the test would prove nothing"
            return False
        except OperationalError:  # psycopg's LockNotAvailable, wrapped by Django
            return True
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as other:  # its own database connection
        return other.submit(attempt).result(timeout=60)


def test_the_fence_locks_the_holder_row_until_the_transaction_ends(alice, mail_user):
    account = register(alice.tenant, mail_user)
    holders.beat("w1", 60)
    holders.claim("w1", [account.pk])
    with transaction.atomic():
        assert holders.Fence("w1", account.pk)()
        assert _locked_elsewhere(AccountHolder, account.pk)
    assert not _locked_elsewhere(AccountHolder, account.pk)
    with transaction.atomic():
        assert holders.still_holds("w1", account.pk)  # a plain check locks nothing
        assert not _locked_elsewhere(AccountHolder, account.pk)


def test_a_state_alone_is_one_fenced_statement_that_locks_the_holder_row(alice, mail_user):
    account = register(alice.tenant, mail_user)
    holders.beat("w1", 60)
    holders.claim("w1", [account.pk])
    with transaction.atomic():
        with CaptureQueriesContext(connection) as queries:
            assert account_state.set_state(account, EmailAccount.State.CONNECTED,
                                           fence=holders.Fence("w1", account.pk))
        # No transaction of its own, no separate check: the UPDATE carries the fence.
        assert [q["sql"].split()[0] for q in queries.captured_queries] == ["UPDATE"]
        assert _locked_elsewhere(AccountHolder, account.pk)
    assert not _locked_elsewhere(AccountHolder, account.pk)
    assert EmailAccount.objects.get(pk=account.pk).state == EmailAccount.State.CONNECTED


def test_a_takeover_in_flight_refuses_the_state_it_was_committing_against(alice, mail_user):
    """The worker's one-statement write waits for a takeover that has the holder row, and
    once that commits finds the row names another worker: nothing is written."""
    account = register(alice.tenant, mail_user)
    holders.beat("w1", 60)
    holders.beat("w2", 60)
    holders.claim("w1", [account.pk])
    taking = threading.Event()

    def take_over() -> None:
        try:
            with transaction.atomic():
                AccountHolder.objects.filter(email_account_id=account.pk).update(worker_id="w2")
                taking.set()
                # Commit only once the first worker's write waits on the holder row.
                wait_for(lambda: sessions_waiting_on_a_lock() > 0, timeout=30)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as other:
        done = other.submit(take_over)
        assert taking.wait(30)
        written = account_state.set_state(account, EmailAccount.State.CONNECTED,
                                          fence=holders.Fence("w1", account.pk))
        done.result(timeout=60)
    assert written is False
    assert EmailAccount.objects.get(pk=account.pk).state == EmailAccount.State.INIT


def test_a_sync_pass_locks_the_accounts_folder_rows(alice, mail_user):
    account = register(alice.tenant, mail_user)
    Folder.objects.create(email_account=account, path="INBOX", name="INBOX", number=1)
    with transaction.atomic():
        assert [f.path for f in index._locked_folders(account.pk)] == ["INBOX"]
        assert _locked_elsewhere(Folder, account.pk)
    assert not _locked_elsewhere(Folder, account.pk)
