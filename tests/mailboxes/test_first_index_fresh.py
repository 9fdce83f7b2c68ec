"""A new account's first index against real Dovecot: its folders are empty or small, so each
is complete after one SELECT, and a change that arrives after a folder's first pass is still
found in the same account pass (one STATUS instead of a second SELECT and sync)."""

from __future__ import annotations

import pytest

from mailboxes.models import Folder, Message
from mailboxes.sync.account import sync_account
from tests.mailboxes.helpers import events_of, open_session, register
from tests.servers import seed

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite]


def test_empty_folders_are_complete_with_their_counters_after_the_first_index(
        alice, mail_user):
    account = register(alice.tenant, mail_user)
    session = open_session(account)
    try:
        assert sync_account(session, account).complete
    finally:
        session.client.logout()
    folders = list(Folder.objects.filter(email_account=account, no_select=False))
    assert len(folders) > 1
    for folder in folders:
        assert folder.backfill_below == 0, folder.path
        assert folder.synced_uidnext == folder.uidnext, folder.path
        assert folder.uidvalidity, folder.path
        assert folder.messages == 0, folder.path
        assert folder.unseen == 0, folder.path
        assert folder.last_synced_at is not None, folder.path
    assert len(events_of(account, "accountInitialized")) == 1


def test_a_fresh_account_selects_each_folder_once(alice, mail_user):
    """Only the folder left selected at the end of the first pass is synced again (its sync
    needs no STATUS); every other folder the first pass completed is checked by STATUS."""
    account = register(alice.tenant, mail_user)
    session = open_session(account)
    selected, statused = [], []
    select, status = session.select, session.status
    session.select = lambda path: (selected.append(path), select(path))[1]
    session.status = lambda path: (statused.append(path), status(path))[1]
    try:
        assert sync_account(session, account).complete
    finally:
        session.client.logout()
    paths = set(Folder.objects.filter(email_account=account, no_select=False)
                .values_list("path", flat=True))
    assert set(selected) == paths
    assert len(selected) == len(paths) + 1
    assert set(statused) == paths - {selected[-1]}


def test_mail_arriving_after_a_folders_first_pass_is_indexed_in_the_same_pass(
        alice, mail_user):
    with mail_user.imap_client() as other:
        count = len([f for f in other.list_folders() if b"\\Noselect" not in f[0]])
    account = register(alice.tenant, mail_user)
    session = open_session(account)
    calls = []

    def deliver_after_the_first_pass() -> bool:
        # Called once before each folder of the first pass, then before each of the second.
        calls.append(1)
        if len(calls) == count + 1:
            seed.seed_mailbox(mail_user, folder="Sent",
                              messages=[seed.make_message(subject="Late arrival")])
        return False

    try:
        assert sync_account(session, account, deliver_after_the_first_pass).complete
    finally:
        session.client.logout()
    assert len(calls) > count
    sent = Folder.objects.get(email_account=account, path="Sent")
    assert list(Message.objects.filter(folder=sent).values_list("subject", flat=True)) == [
        "Late arrival"]
    assert sent.messages == 1
