"""The API's index writes racing the worker's: whoever commits first announces the change, the
other finds it done and announces nothing (real Dovecot for the mailbox, real PostgreSQL
transactions in two threads for the race)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from mailboxes import ids
from mailboxes.command_pool import pool
from mailboxes.imap import fetch, message_ops
from mailboxes.models import Folder, Message
from mailboxes.sync import index
from mailboxes.sync.account import sync_account
from tests.base import wait_for
from tests.mailboxes.helpers import events_of, open_session, register
from tests.servers import seed

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def inbox(alice, mail_user):
    uids = seed.seed_mailbox(mail_user, messages=[seed.make_message(subject="Raced")])
    account = register(alice.tenant, mail_user)
    session = open_session(account)
    sync_account(session, account)
    yield account, Folder.objects.get(email_account=account, path="INBOX"), uids[0]
    session.client.logout()
    pool.close_all()


def _in_thread(target, results: list) -> threading.Thread:
    def run():
        try:
            results.append(target())
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _blocked_or_done(thread: threading.Thread) -> bool:
    """The thread is waiting for a lock held by another session of this test database (or,
    taking no lock, has finished): a condition to wait on instead of a guess of how long it
    takes to get there."""
    if not thread.is_alive():
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                       "current_database() AND wait_event_type = 'Lock'")
        return cursor.fetchone()[0] > 0


def test_an_expunge_the_worker_is_committing_is_announced_once(inbox):
    """The worker has removed the row (and recorded ``messageDeleted``) but not committed when
    the API indexes the same expunge: the API waits for that commit and adds nothing."""
    account, folder, uid = inbox
    removed, release = threading.Event(), threading.Event()

    def worker():
        with transaction.atomic():
            count = index.remove_messages(folder, [uid])
            removed.set()
            release.wait(60)
        return count

    worker_result, api_result = [], []
    worker_thread = _in_thread(worker, worker_result)
    assert removed.wait(60)
    api_thread = _in_thread(lambda: index.record_expunge(folder, [uid]), api_result)
    # The API is now waiting on the worker's row lock (or, unlocked, past it).
    wait_for(lambda: _blocked_or_done(api_thread), timeout=10)
    release.set()
    worker_thread.join(60)
    api_thread.join(60)
    assert worker_result == [1]
    assert api_result == [0]
    assert not Message.objects.filter(folder=folder, uid=uid).exists()
    assert [e.data["uid"] for e in events_of(account, "messageDeleted")] == [uid]


def test_a_move_whose_destination_the_worker_is_indexing_is_announced_once(inbox, mail_user):
    """The message was moved on the server and the worker is inserting its new row (with
    ``messageNew``, not committed) when the API indexes the move: the API's insert loses on the
    unique (folder, uid), it runs again, finds the row and announces only the source's end."""
    account, folder, uid = inbox
    archive = Folder.objects.get(email_account=account, path="Archive")
    with mail_user.imap_client() as other:
        other.select_folder("INBOX")
        new_uid = message_ops.move(other, [uid], "Archive").uid_map[uid]
        other.select_folder("Archive", readonly=True)
        meta = fetch.fetch_meta(other, str(new_uid))
    inserted, release = threading.Event(), threading.Event()

    def worker():
        with transaction.atomic():
            rows = index.add_messages(archive, meta, notify=True)
            inserted.set()
            release.wait(60)
        return len(rows)

    worker_result, api_result = [], []
    worker_thread = _in_thread(worker, worker_result)
    assert inserted.wait(60)
    api_thread = _in_thread(
        lambda: index.record_transfer(folder, archive, {uid: new_uid}, keep_source=False),
        api_result)
    # The API's insert now waits on the worker's uncommitted one.
    wait_for(lambda: _blocked_or_done(api_thread), timeout=10)
    release.set()
    worker_thread.join(60)
    api_thread.join(60)
    assert worker_result == [1]
    assert api_result == [{uid: ids.message_id_for(archive, new_uid)}]
    assert not Message.objects.filter(folder=folder, uid=uid).exists()
    assert Message.objects.filter(folder=archive, uid=new_uid).count() == 1
    kinds = sorted(e.event for e in events_of(account) if e.event.startswith("message"))
    assert kinds == ["messageDeleted", "messageNew"]
