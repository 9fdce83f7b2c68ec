"""Sync against a Dovecot that advertises neither CONDSTORE nor QRESYNC: the engine must fall
back to comparing UIDs and flags, and still see every change exactly once."""

from __future__ import annotations

import pytest

from mailboxes.models import Folder, Message
from mailboxes.sync import folder as folder_sync
from mailboxes.sync.account import sync_account
from mailboxes.sync.folder import sync_folder
from tests.mailboxes.helpers import events_of, open_session, register
from tests.servers import seed
from tests.servers.dovecot import Dovecot

pytestmark = pytest.mark.django_db

PLAIN_CAPABILITIES = ("imap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE "
                      "LITERAL+ UIDPLUS NAMESPACE SPECIAL-USE")


@pytest.fixture(scope="module")
def plain_dovecot():
    server = Dovecot(extra_config=PLAIN_CAPABILITIES).start()
    yield server
    server.stop()


def test_changes_are_found_by_comparison(alice, plain_dovecot, monkeypatch):
    monkeypatch.setattr(folder_sync, "FLAG_BATCH", 2)  # several comparison rounds
    user = plain_dovecot.add_user()
    uids = seed.seed_mailbox(user, messages=seed.build_messages()[:4])
    account = register(alice.tenant, user)
    session = open_session(account)
    try:
        assert not session.condstore
        assert not session.qresync
        assert sync_account(session, account).complete
        inbox = Folder.objects.get(email_account=account, path="INBOX")
        assert inbox.highestmodseq is None
        assert inbox.messages == 4
        was_seen = "\\Seen" in Message.objects.get(folder=inbox, uid=uids[1]).flags

        [new_uid] = seed.seed_mailbox(user, messages=[seed.make_message(subject="Plain news")])
        with user.imap_client() as other:
            other.select_folder("INBOX")
            other.add_flags([uids[3]], [b"\\Flagged"])
            other.remove_flags([uids[1]], [b"\\Seen"])
            other.delete_messages([uids[2]])
            other.expunge()
        result = sync_folder(session, inbox)
        assert (result.new, result.updated, result.deleted) == (1, 1 + was_seen, 1)
        assert sync_folder(session, Folder.objects.get(pk=inbox.pk)).updated == 0

        [new] = events_of(account, "messageNew")
        assert new.data["uid"] == new_uid
        assert new.data["subject"] == "Plain news"
        updates = {e.data["uid"]: e.data["changes"]["flags"] for e in
                   events_of(account, "messageUpdated")}
        assert updates[uids[3]]["added"] == ["\\Flagged"]
        [deleted] = events_of(account, "messageDeleted")
        assert deleted.data["uid"] == uids[2]
        assert sorted(Message.objects.filter(folder=inbox).values_list("uid", flat=True)) == \
            sorted([uids[0], uids[1], uids[3], new_uid])
    finally:
        session.client.logout()

