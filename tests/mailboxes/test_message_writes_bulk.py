"""Bulk changes through the API against real Dovecot: 5,000 messages in batched commands, ids
or search, and the events of each change once."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from mailboxes.command_pool import pool
from mailboxes.sync.account import sync_account
from tests.mailboxes.helpers import events_of, open_session, register
from tests.servers import seed

pytestmark = pytest.mark.django_db

BOX = "/v1/account/bulk"


def test_a_bulk_update_of_5000_messages_stores_in_batches_of_1000(alice, dovecot,
                                                                 imap_commands):
    user = dovecot.add_user()
    with user.imap_client() as first_login:
        first_login.select_folder("INBOX")
    for number in range(5000):
        dovecot.deliver_to_maildir(user, seed.make_message(subject=f"bulk {number}"))
    account = register(alice.tenant, user, "bulk")
    session = open_session(account)
    try:
        assert sync_account(session, account).complete
        imap_commands.clear()
        with CaptureQueriesContext(connection) as queries:
            response = alice.client.put(f"{BOX}/messages?path=INBOX", {
                "search": {"seen": False}, "update": {"flags": {"add": ["\\Seen"]}}},
                format="json")
        assert response.status_code == 200, response.json()
        # Stored and announced a batch at a time, not two statements per message.
        assert len(queries) < 100, len(queries)
        assert response.json() == {"flags": {"add": True}, "matched": 5000, "updated": 5000,
                                   "changed": 5000}
        stores = [c for c in imap_commands if b" STORE " in c.upper()]
        assert len(stores) == 5, [c[:60] for c in stores]
        listed = alice.client.get(f"{BOX}/messages?path=INBOX&pageSize=1000&page=4").json()
        assert all(not m["unseen"] for m in listed["messages"])
        with user.imap_client() as other:
            other.select_folder("INBOX", readonly=True)
            assert other.search(["UNSEEN"]) == []
        sync_account(session, account)
        assert len(events_of(account, "messageUpdated")) == 5000
    finally:
        session.client.logout()
        pool.close_all()


@pytest.fixture
def small(alice, mail_user):
    uids = seed.seed_mailbox(mail_user, messages=[
        seed.make_message(subject=f"Note {n}") for n in range(6)])
    account = register(alice.tenant, mail_user, "bulk")
    session = open_session(account)
    sync_account(session, account)
    listed = alice.client.get(f"{BOX}/messages?path=INBOX").json()["messages"]
    by_uid = {m["uid"]: m["id"] for m in listed}
    yield account, session, [by_uid[uid] for uid in uids]
    session.client.logout()
    pool.close_all()


def test_bulk_move_by_ids_and_bulk_delete_by_search(alice, small, mail_user):
    account, session, ids = small
    moved = alice.client.put(f"{BOX}/messages/move?path=INBOX",
                             {"ids": ids[:2], "path": "Archive"}, format="json")
    assert moved.status_code == 200, moved.json()
    body = moved.json()
    assert body["matched"] == 2
    assert body["moved"] == 2
    assert body["path"] == "Archive"
    assert sorted(old for old, _ in body["idMap"]) == sorted(ids[:2])
    archive = alice.client.get(f"{BOX}/messages?path=Archive").json()["messages"]
    assert sorted(m["id"] for m in archive) == sorted(new for _, new in body["idMap"])
    deleted = alice.client.post(f"{BOX}/messages/delete?path=INBOX",
                                {"search": {"subject": "Note 5"}}, format="json")
    assert deleted.status_code == 200, deleted.json()
    assert deleted.json()["deleted"] is False
    assert deleted.json()["moved"]["moved"] == 1
    forced = alice.client.put(f"{BOX}/messages/delete?path=INBOX",
                              {"ids": ids[2:4], "force": True}, format="json")
    assert forced.json() == {"deleted": True, "matched": 2, "expunged": 2}
    with mail_user.imap_client() as other:
        other.select_folder("INBOX", readonly=True)
        assert len(other.search("ALL")) == 1
        other.select_folder("Trash", readonly=True)
        assert len(other.search("ALL")) == 1
    sync_account(session, account)
    kinds = sorted(e.event for e in events_of(account) if e.event.startswith("message"))
    assert kinds == ["messageDeleted"] * 2 + ["messageMoved"] * 3


def test_bulk_requests_are_checked_before_anything_changes(alice, outsider, small, mail_user):
    _, _, ids = small
    cases = [
        ({"ids": ids, "search": {"seen": False}, "path": "Archive"}, 400),  # both
        ({"path": "Archive"}, 400),  # neither
        ({"ids": ids + ["forged-id"], "path": "Archive"}, 400),
        ({"ids": ids, "path": "Nowhere"}, 404),
        ({"search": {"subject": 5}, "path": "Archive"}, 400),
    ]
    for body, expected in cases:
        response = alice.client.put(f"{BOX}/messages/move?path=INBOX", body, format="json")
        assert response.status_code == expected, (body, response.json())
    assert alice.client.put(f"{BOX}/messages/move?path=Nope", {"ids": ids, "path": "Archive"},
                            format="json").status_code == 404
    foreign = outsider.client.post(f"{BOX}/messages/delete?path=INBOX", {"ids": ids},
                                   format="json")
    assert foreign.status_code == 404
    with outsider.mail_user.imap_client() as other:
        other.select_folder("INBOX", readonly=True)
        assert len(other.search("ALL")) == 1
    with mail_user.imap_client() as other:
        other.select_folder("INBOX", readonly=True)
        assert len(other.search("ALL")) == 6
