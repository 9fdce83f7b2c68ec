"""A worker restart's sync of an account already indexed: the folder list and every folder's
STATUS in one LIST-STATUS command (RFC 5819) where the server has it, instead of LSUB, LIST
and a STATUS per folder (half of a restarted account's sync at 3,000 accounts); the folder rows
read for it serve the SELECT's check before IDLE. What changed while no worker watched is
still found by a connection with no poll on record (one polled within the interval keeps its
schedule: ``test_poll_schedule``)."""

from __future__ import annotations

import threading

import pytest

from mailboxes.models import Folder, Message
from mailboxes.sync.folder import status_differs
from mailboxes.worker.connection import AccountConnection, Idle
from tests.mailboxes.helpers import open_session, register
from tests.servers import seed


@pytest.fixture
def folders(mail_user):
    """INBOX, a subscribed Archive, an unsubscribed folder with a non-ASCII name."""
    seed.seed_mailbox(mail_user, messages=[seed.make_message(subject="Inbox one")])
    seed.seed_mailbox(mail_user, "Archive", messages=[seed.make_message(subject="Old")])
    client = mail_user.imap_client()
    try:
        client.subscribe_folder("Archive")
        client.create_folder("Résumés")
    finally:
        client.logout()


def _restarted(account) -> tuple[AccountConnection, object]:
    """A fresh connection to the account, as a restarted worker's (connect, then sync)."""
    conn = AccountConnection(account.pk, threading.Event())
    return conn, conn.start()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("folders")
def test_list_status_lists_what_list_and_status_do(alice, mail_user):
    """Its answer is read by ``parse.parse_tokens``, the plain LIST's by imapclient: quoted
    names with spaces and escaped quotes, UTF-7 names, flags and numbers come out alike."""
    client = mail_user.imap_client()
    try:
        client.create_folder('Old "Q3" mail')
    finally:
        client.logout()
    session = open_session(register(alice.tenant, mail_user))
    try:
        listings, statuses = session.list_folders_and_status()
        assert sorted(listings, key=str) == sorted(session.list_folders(), key=str)
        selectable = [f.path for f in listings if not f.no_select]
        assert statuses == {path: session.status(path) for path in selectable}
    finally:
        session.client.logout()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("folders")
def test_a_restart_sync_asks_no_status_per_folder(alice, mail_user, imap_commands):
    account = register(alice.tenant, mail_user)
    first, _ = _restarted(account)  # the first index
    first.close()
    imap_commands.clear()
    conn, outcome = _restarted(account)
    try:
        assert isinstance(outcome, Idle)
        sent = [c.split(b" ", 2)[1].upper() for c in imap_commands if b" " in c]
        assert sent.count(b"STATUS") == 0
        assert sent.count(b"LSUB") == 0
    finally:
        conn.close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("folders")
@pytest.mark.parametrize(("folder", "subject", "expected"), [
    ("Archive", "While away", {"Old", "While away"}),  # another folder: found by its status
    ("INBOX", "Inbox two", {"Inbox one", "Inbox two"}),  # the watched one, before IDLE
])
def test_a_restart_sync_finds_mail_that_came_meanwhile(alice, mail_user, folder, subject,
                                                       expected):
    account = register(alice.tenant, mail_user)
    first, _ = _restarted(account)
    first.close()
    seed.seed_mailbox(mail_user, folder, messages=[seed.make_message(subject=subject)])
    conn, outcome = _restarted(account)
    try:
        assert isinstance(outcome, Idle)
        synced = Folder.objects.get(email_account=account, path=folder)
        subjects = set(Message.objects.filter(folder=synced).values_list("subject", flat=True))
        assert subjects == expected
    finally:
        conn.close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("folders")
def test_a_folder_with_history_left_is_synced_without_asking_its_status(alice, mail_user,
                                                                       imap_commands):
    """Every pass of a first index syncs a folder with history left anyway: its STATUS was a
    round trip per pass for nothing. A folder in step still gets the one STATUS that says so."""
    account = register(alice.tenant, mail_user)
    first, _ = _restarted(account)  # the first index: every folder in step
    first.close()
    archive = Folder.objects.get(email_account=account, path="Archive")
    session = open_session(account)
    try:
        imap_commands.clear()
        assert not status_differs(session, archive)
        assert [c for c in imap_commands if b" STATUS " in c.upper()] != []
        archive.backfill_below = 5
        imap_commands.clear()
        assert status_differs(session, archive)
        assert [c for c in imap_commands if b" STATUS " in c.upper()] == []
    finally:
        session.client.logout()
