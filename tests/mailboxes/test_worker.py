"""The IMAP worker against real Dovecot: connect, IDLE, states, failures, pause, leases.

Most tests drive the worker's loop themselves (``DrivenWorker``: claim ticks and the loop's
other steps called from the test, waiting on conditions); a few run the real ``run`` loop in a
thread, end to end. Steps run on the worker's threads, so the database is used
transactionally: they see committed rows.
"""

from __future__ import annotations

import threading
import time

import pytest

from accounts import services
from accounts.models import EmailAccount
from mailboxes.imap import client as imap_client
from mailboxes.imap import underlying
from mailboxes.models import Folder, Message
from tests.base import wait_for
from tests.mailboxes.helpers import DrivenWorker, counted, events_of, register
from tests.servers import seed

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("fast_worker_settings")]




def state_of(account) -> str:
    return EmailAccount.objects.get(pk=account.pk).state


def connected(worker: DrivenWorker, *accounts) -> None:
    """Claim, then turn the loop until every account is connected and idling."""
    worker.claim()
    worker.until(lambda: all(state_of(a) == "connected" and worker.idle(a.pk) for a in accounts))


@pytest.mark.sqlite
def test_it_connects_syncs_and_sees_new_mail_through_idle(alice, mail_user, start_worker):
    seed.seed_mailbox(mail_user, messages=seed.build_messages()[:2])
    account = register(alice.tenant, mail_user)
    worker = start_worker()
    wait_for(lambda: state_of(account) == "connected")
    assert len(events_of(account, "accountInitialized")) == 1
    assert len(events_of(account, "authenticationSuccess")) == 1
    assert Message.objects.filter(email_account=account).count() == 2
    assert not events_of(account, "messageNew")

    appended = time.monotonic()
    [uid] = seed.seed_mailbox(mail_user, messages=[seed.make_message(subject="Live one")])
    event = wait_for(lambda: events_of(account, "messageNew"), timeout=10)[0]
    latency = time.monotonic() - appended
    assert event.data["uid"] == uid
    assert event.data["subject"] == "Live one"
    assert latency < 20, latency  # IDLE, not the STATUS poll (a minute), even on a busy machine
    assert worker.leases.holder(account.pk) == worker.worker_id


@pytest.mark.sqlite
def test_flag_change_and_expunge_by_another_client(alice, mail_user, driven_worker):
    uids = seed.seed_mailbox(mail_user, messages=seed.build_messages()[:3])
    account = register(alice.tenant, mail_user)
    worker = driven_worker()
    connected(worker, account)
    with mail_user.imap_client() as other:
        other.select_folder("INBOX")
        other.add_flags([uids[0]], [b"\\Seen"])
    updated = worker.until(lambda: events_of(account, "messageUpdated"))[0]
    assert updated.data["changes"]["flags"]["added"] == ["\\Seen"]
    with mail_user.imap_client() as other:
        other.select_folder("INBOX")
        other.delete_messages([uids[1]])
        other.expunge()
    deleted = worker.until(lambda: events_of(account, "messageDeleted"))[0]
    assert deleted.data["uid"] == uids[1]


def test_other_folders_are_watched_through_notify(alice, mail_user, driven_worker):
    """Archive is not the IDLE folder and the STATUS poll is a minute away: only NOTIFY can
    announce these within seconds (a created folder, then a message in it)."""
    account = register(alice.tenant, mail_user)
    worker = driven_worker()
    connected(worker, account)
    assert worker.slots[account.pk].conn.notifying
    [uid] = seed.seed_mailbox(mail_user, folder="Archive",
                              messages=[seed.make_message(subject="Filed away")])
    event = worker.until(lambda: events_of(account, "messageNew"), timeout=10)[0]
    assert event.data["path"] == "Archive"
    assert event.data["uid"] == uid
    with mail_user.imap_client() as other:
        other.create_folder("Projects")
    created = worker.until(lambda: events_of(account, "mailboxNew"), timeout=10)[0]
    assert created.data["path"] == "Projects"


def test_the_idle_folder_follows_watch_folders(alice, mail_user, driven_worker, settings):
    settings.IMAP_POLL_INTERVAL = 3600
    account = register(alice.tenant, mail_user, watchFolders=["Archive"])
    worker = driven_worker()
    connected(worker, account)
    assert worker.slots[account.pk].conn.watched == "Archive"
    seed.seed_mailbox(mail_user, folder="Archive", messages=[seed.make_message(subject="A")])
    assert worker.until(lambda: events_of(account, "messageNew"))[0].data["path"] == "Archive"
    services.update_account(EmailAccount.objects.get(pk=account.pk),
                            {"watchFolders": ["No such folder"]})
    worker.until(lambda: worker.slots[account.pk].conn.watched == "INBOX")
    worker.until(lambda: state_of(account) == "connected")


def test_big_history_fills_in_behind_while_idling(alice, mail_user, driven_worker,
                                                  monkeypatch):
    """Old mail is indexed in slices between IDLEs: the account is connected (and new mail
    announced) long before its history is complete; accountInitialized comes once, at the end."""
    from mailboxes.sync import folder as folder_sync
    from mailboxes.worker import connection

    monkeypatch.setattr(folder_sync, "FIRST_BATCH", 2)
    monkeypatch.setattr(folder_sync, "BATCH", 2)
    monkeypatch.setattr(connection, "BACKFILL_SLICE", 1)
    old = seed.seed_mailbox(mail_user, messages=[seed.make_message(subject=f"old {i}")
                                                 for i in range(12)])
    account = register(alice.tenant, mail_user)
    worker = driven_worker()
    worker.claim()
    worker.until(lambda: state_of(account) == "connected")
    inbox = lambda: Message.objects.filter(email_account=account, folder__path="INBOX")  # noqa: E731
    [new_uid] = seed.seed_mailbox(mail_user, messages=[seed.make_message(subject="fresh")])
    worker.until(lambda: events_of(account, "accountInitialized"), timeout=20)
    worker.until(lambda: inbox().count() == len(old) + 1)
    assert sorted(inbox().values_list("uid", flat=True)) == sorted([*old, new_uid])
    [new] = events_of(account, "messageNew")
    assert new.data["uid"] == new_uid
    [initialized] = events_of(account, "accountInitialized")
    connected_at = EmailAccount.objects.get(pk=account.pk).state_changed_at
    last_old = max(inbox().filter(uid__in=old).values_list("indexed_at", flat=True))
    assert connected_at < last_old
    assert connected_at < initialized.created_at


def test_wrong_password_reports_once_and_a_fix_reconnects(alice, mail_user, driven_worker):
    account = register(alice.tenant, mail_user)
    services.update_account(account, {"imap": {"auth": {"pass": "wrong-password"}}})
    worker = driven_worker()
    worker.claim()
    slot = worker.slots[account.pk]
    connects = counted(slot.conn, "connect")
    worker.until(lambda: connects and not slot.busy)
    assert state_of(account) == "authenticationError"
    row = EmailAccount.objects.get(pk=account.pk)
    assert row.last_error["code"] == "AuthenticationFailed"
    # When the next try is, for the dashboard: after the failure (auth retries wait minutes).
    assert row.last_error["nextRetry"] > row.last_error["time"]
    services.request_reconnect(row)  # a second failed try in the same streak
    worker.until(lambda: len(connects) == 2 and not slot.busy)
    assert state_of(account) == "authenticationError"
    assert len(events_of(account, "authenticationError")) == 1

    services.update_account(row, {"imap": {"auth": {"pass": mail_user.password}}})
    worker.until(lambda: state_of(account) == "connected")
    assert len(events_of(account, "authenticationSuccess")) == 1
    assert EmailAccount.objects.get(pk=account.pk).auth_failing_since is None


def test_pause_logs_out_and_resume_catches_up(alice, mail_user, driven_worker):
    account = register(alice.tenant, mail_user)
    worker = driven_worker()
    connected(worker, account)
    services.pause_account(EmailAccount.objects.get(pk=account.pk))
    worker.until(lambda: account.pk not in worker.slots)
    assert state_of(account) == "paused"
    seed.seed_mailbox(mail_user, messages=[seed.make_message(subject="While paused")])
    assert not worker.claim()  # a paused account is not claimed again
    assert account.pk not in worker.slots
    assert not events_of(account, "messageNew")
    services.resume_account(EmailAccount.objects.get(pk=account.pk))
    # "resumed" asks the loop for a claim tick at once
    event = worker.until(lambda: events_of(account, "messageNew"))[0]
    assert event.data["subject"] == "While paused"
    worker.until(lambda: state_of(account) == "connected")


def test_a_deleted_account_is_dropped(alice, mail_user, driven_worker):
    account = register(alice.tenant, mail_user)
    worker = driven_worker()
    connected(worker, account)
    services.delete_account(EmailAccount.objects.get(pk=account.pk))
    worker.until(lambda: account.pk not in worker.slots)
    assert worker.leases.holder(account.pk) is None


def test_accounts_spread_over_two_workers(alice, dovecot, driven_worker):
    accounts = [register(alice.tenant, dovecot.add_user(), f"box{i}") for i in range(4)]
    first = driven_worker(worker_id="w1")
    first.claim()  # alone: it takes all four
    assert len(first.slots) == 4
    second = driven_worker(worker_id="w2")
    assert not second.claim()  # two live workers now, but none is free
    first.claim()  # its fair share is two: it gives two up
    first.until(lambda: len(first.slots) == 2)
    assert second.claim()  # and the second takes them
    assert len(second.slots) == 2
    for worker in (first, second):
        worker.until(lambda worker=worker: all(state_of(a) == "connected" and worker.idle(a.pk)
                                               for a in accounts if a.pk in worker.slots))
    assert set(first.slots) | set(second.slots) == {a.pk for a in accounts}


def test_graceful_stop_logs_out_and_releases_leases(alice, mail_user, start_worker):
    account = register(alice.tenant, mail_user)
    worker = start_worker()
    wait_for(lambda: state_of(account) == "connected")
    worker.stop.set()
    wait_for(lambda: worker.leases.holder(account.pk) is None, timeout=20)


@pytest.fixture
def own_dovecot():
    from tests.servers.dovecot import Dovecot

    server = Dovecot().start()
    yield server
    server.stop()


def test_dovecot_restart_reconnects_and_misses_nothing(alice, own_dovecot, driven_worker):
    users = [own_dovecot.add_user() for _ in range(3)]
    accounts = [register(alice.tenant, user, f"box{i}") for i, user in enumerate(users)]
    worker = driven_worker()
    connected(worker, *accounts)
    own_dovecot.kill()
    worker.until(lambda: all(state_of(a) in ("disconnected", "connectError") for a in accounts))
    subjects = [f"during outage {i}" for i in range(2)]
    for user in users:
        for subject in subjects:
            own_dovecot.deliver_to_maildir(user, seed.make_message(subject=subject))
    own_dovecot.revive()
    for account in accounts:
        worker.until(lambda account=account: len(events_of(account, "messageNew")) >= 2,
                     timeout=30)
    # Every session back and idling: whatever a reconnect's sync would add is in by now.
    worker.until(lambda: all(state_of(a) == "connected" and worker.idle(a.pk) for a in accounts))
    for account in accounts:
        news = events_of(account, "messageNew")
        assert sorted(e.data["subject"] for e in news) == sorted(subjects)
        inbox = Folder.objects.get(email_account=account, path="INBOX")
        assert Message.objects.filter(folder=inbox).count() == 2


@pytest.fixture
def chatty_dovecot():
    """A Dovecot that says "* OK Still here" to IDLE sessions every second (2 minutes by
    default)."""
    from tests.servers.dovecot import Dovecot

    server = Dovecot(extra_config="imap_idle_notify_interval = 1 secs\n").start()
    yield server
    server.stop()


def test_keepalives_during_idle_cost_no_commands(alice, chatty_dovecot, driven_worker,
                                                 imap_commands):
    user = chatty_dovecot.add_user()
    account = register(alice.tenant, user)
    worker = driven_worker()
    connected(worker, account)  # idling: its first sync is done
    assert imap_commands[-1].rstrip().upper().endswith(b" IDLE")
    imap_commands.clear()
    wakes = counted(worker.slots[account.pk].conn, "on_readable")
    worker.until(lambda: len(wakes) >= 3 and worker.idle(account.pk))  # three keepalives
    assert imap_commands == [], imap_commands  # no DONE, SELECT or sync pass for one
    # Reading one makes the session a read buffer; it is let go of again (Dovecot sends
    # them to every idling session: a worker's 10,000 sessions would all keep one).
    reader = underlying.connection(worker.slots[account.pk].conn.client)._file
    assert reader is imap_client._PARKED
    chatty_dovecot.deliver_to_maildir(user, seed.make_message(subject="After keepalives"))
    event = worker.until(lambda: events_of(account, "messageNew"), timeout=10)[0]
    assert event.data["subject"] == "After keepalives"


def test_a_change_already_in_the_read_buffer_is_synced_not_left_there(alice, mail_user):
    """The selector (and ``idle_check``'s poll) watch the socket; an EXISTS already read into
    imaplib's buffer is invisible to both. A wake-up that finds nothing on the socket must
    still read through the buffer (DONE does), never go back to idling past it."""
    import select

    from mailboxes.worker.connection import AccountConnection, Idle

    account = register(alice.tenant, mail_user)
    conn = AccountConnection(account.pk, threading.Event())
    outcome = conn.start()
    try:
        assert isinstance(outcome, Idle)
        [uid] = seed.seed_mailbox(mail_user, messages=[seed.make_message(subject="Buffered")])
        assert select.select([outcome.sock], [], [], 10)[0], "no EXISTS from Dovecot"
        # The idling session let go of its reader; a read makes a new one, and peeking
        # pulls the EXISTS (once all of it has come) into its buffer.
        imap = underlying.connection(conn.client)
        wait_for(lambda: imap.file.peek(1), timeout=2)
        assert conn.has_buffered_input()
        assert not select.select([outcome.sock], [], [], 0.2)[0]  # the socket is empty now
        assert isinstance(conn.on_readable(), Idle)
        assert [e.data["uid"] for e in events_of(account, "messageNew")] == [uid]
    finally:
        conn.close()
